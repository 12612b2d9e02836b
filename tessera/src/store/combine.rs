//! Concurrent loads of one session, and concurrent increments of one
//! counter, combined.
//!
//! On a server-side store every load and every increment is a round trip,
//! and a visitor's parallel requests (or many requests sharing one session)
//! make them side by side: the same session read again and again, the same
//! counter's increments queued on its row lock (PostgreSQL), on the one
//! writer (SQLite), one script after another (Redis) or as a read and a
//! write each (Flask-Session's layout). So while a load of a session, or an
//! increment of a counter, is on its way, this process holds back the next
//! ones of the same session or counter; when it is answered, those that
//! queued meanwhile go to the store as one. A queued caller thus waits for
//! at most two round trips, the one on its way and its own group's, where
//! it would have waited for every one before it (or, for loads, shared the
//! store's time with them). Different sessions and counters never wait for
//! each other, and an operation with none on its way goes at once. If the
//! store fails the one on its way with an outage after a wait (it timed
//! out, say), those queued behind it get that error at once rather than
//! each waiting out a timeout of its own after it.
//!
//! That is [`Batching::BehindOneOnItsWay`], for stores that would serve
//! concurrent operations on one session one after another anyway. A store
//! that serves them side by side (Redis on a pipelined connection,
//! PostgreSQL on a pool) uses [`Batching::PerTurn`] instead: the operations
//! of a session or counter that come while the scheduler runs through its
//! other ready tasks go as one, and none waits for one on its way. Callers
//! woken together (by the answer to one load, say) then go on together, at
//! the cost of a turn of the scheduler instead of a round trip. Only a
//! session or counter whose operations met lately (in the last second)
//! waits that turn: one that did not (many visitors, each one request at a
//! time) goes at once, and the next one that comes while it is on its way
//! waits behind it, as under [`Batching::BehindOneOnItsWay`].
//!
//! **Loads.** The loads that queued are made again, as one load, after all
//! of them came: never answered from the load that was already on its way,
//! which may have read the session before a write that one of them must see
//! (its own request's previous one, answered by another instance). Each
//! caller gets its own copy of what that one load read. Loads are grouped
//! by the time they ask about, so each caller is answered for its own.
//!
//! **Increments.** The increments that queued go as one increment by their
//! sum, and each caller gets the value it would have seen had they run one
//! after another in the order they came. Only increments of one sign are
//! summed, so that each caller's value lies between the counter's value
//! before and after the sum, and none overflows when the sum does not. If
//! the store refuses the sum (the key holds another type, or the sum would
//! overflow), each increment runs alone in turn, so that a caller gets the
//! answer or the error its own increment gets. Any other error is every
//! caller's: whether the sum landed is not known, so running the increments
//! again could count them twice.
//!
//! The queued operations run in a task of their own, so the caller whose
//! operation went first can go away without stranding them, and on a
//! runtime that keeps running (see `background`: not a single-threaded one
//! that may stop being driven once that caller is done); a caller that
//! goes away while its operation is still queued takes it back. (Under
//! [`Batching::PerTurn`] an operation that no other joined runs in its
//! caller's task, as if alone.)

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use compact_str::CompactString;
use tokio::sync::oneshot;

use super::background;
use super::{monotonic_millis, Record, SessionId, StoreError};

/// What [`SessionStore::increment`](super::SessionStore::increment) answers.
type IncrementAnswer = Result<Option<i64>, StoreError>;

/// What [`SessionStore::load`](super::SessionStore::load) answers.
type LoadAnswer = Result<Option<Record>, StoreError>;

/// A store whose concurrent loads of one session and increments of one
/// counter are combined.
pub(crate) trait Combining: Send + Sync + Sized + 'static {
    /// How this store's operations of one session or counter are grouped.
    const BATCHING: Batching = Batching::BehindOneOnItsWay;

    /// The sessions and counters with an operation on its way, shared by
    /// every handle on the store.
    fn combiner(&self) -> &Combiner;

    /// Another handle on the same store, for the task that runs the
    /// operations queued behind one.
    fn handle(&self) -> Self;

    /// One load, as [`SessionStore::load`](super::SessionStore::load) describes it.
    fn load_alone(&self, id: &SessionId, now: u64) -> impl Future<Output = LoadAnswer> + Send;

    /// One increment, as [`SessionStore::increment`](super::SessionStore::increment) describes it.
    fn increment_alone(
        &self,
        id: &SessionId,
        key: &str,
        by: i64,
        now: u64,
    ) -> impl Future<Output = IncrementAnswer> + Send;
}

/// How the operations of one session, or one counter, are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Batching {
    /// While one is on its way, the next ones wait; when it is answered,
    /// those go as one. The fewest operations reach the store, each waiting
    /// up to a round trip more: for a store that would take concurrent
    /// operations on one session one after another anyway (SQLite's one
    /// writer, Flask-Session's layout retrying its optimistic transaction).
    BehindOneOnItsWay,
    /// The first one waits for one turn of the scheduler (its other ready
    /// tasks run), and those that came meanwhile go with it, whatever is on
    /// its way. Measured on two cores with the HTTP benchmark's route (16
    /// clients sharing one session, each loading it and incrementing a
    /// counter), against [`BehindOneOnItsWay`](Self::BehindOneOnItsWay):
    /// Redis 1.19× the throughput and PostgreSQL 1.29×, SQLite 0.94×. Only
    /// for keys whose operations met lately: with many sessions, one
    /// request at a time each, the turn cost Redis and PostgreSQL 7–10% of
    /// their throughput, for nothing to join.
    PerTurn,
}

/// The operations held back behind the one on their way, by session and by
/// counter (or, under [`Batching::PerTurn`], gathering for their turn).
#[derive(Default)]
pub(crate) struct Combiner {
    loads: Queues<Loads>,
    increments: Queues<Increments>,
    next_ticket: AtomicU64,
    /// Operations that went to the store, for the tests to count.
    #[cfg(test)]
    loads_sent: AtomicU64,
    #[cfg(test)]
    sent: AtomicU64,
}

/// How many sessions and counters have an operation on its way: not the
/// ids nor the keys, which stores' own `Debug` leave out too.
impl std::fmt::Debug for Combiner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Combiner")
            .field("sessions_loading", &self.loads.lock().len())
            .field("counters_incrementing", &self.increments.lock().len())
            .finish_non_exhaustive()
    }
}

/// A kind of operation that is combined.
trait Kind: Sized + Send + 'static {
    /// What operations of this kind wait for one another on.
    type Key: Hash + Eq + Clone + Send + Sync + 'static;
    /// What a caller asks, besides the key.
    type Request: Copy + Send + 'static;
    /// What a caller is answered, besides an error.
    type Value: Send + 'static;

    fn queues(combiner: &Combiner) -> &Queues<Self>;

    /// Runs `queued` (in the order they came) and answers each caller.
    /// Once the store fails one with an outage it waited out (see
    /// [`waited_out`]), the callers left get copies of it rather than a run
    /// of their own, and so does the caller: it is returned.
    fn run<S: Combining>(
        store: &S,
        key: &Self::Key,
        queued: Vec<Waiting<Self>>,
    ) -> impl Future<Output = Option<StoreError>> + Send;
}

/// How long an operation failed with an outage must have waited for the
/// callers queued behind it to get its error rather than a run of their
/// own: a store that did not answer (a frozen server, a lock held
/// elsewhere) would have them wait as long again, each, their timeouts
/// adding up (twice the stated one for a caller queued behind another). An
/// outage met at once (a connection the server ended, a serialization
/// failure) is the operation's own: theirs may well go through.
const WAITED_OUT: std::time::Duration = if cfg!(test) {
    std::time::Duration::from_millis(500)
} else {
    std::time::Duration::from_secs(1)
};

/// Whether `error` is an outage met after waiting since `started` for at
/// least [`WAITED_OUT`].
fn waited_out(error: &StoreError, started: tokio::time::Instant) -> bool {
    error.is_outage() && started.elapsed() >= WAITED_OUT
}

/// Answers `queued` with copies of an outage (see [`WAITED_OUT`]), made by
/// `each`.
fn fail_all<K: Kind>(queued: impl IntoIterator<Item = Waiting<K>>, each: &dyn Fn() -> StoreError) {
    for waiting in queued {
        let _ = waiting.answer.send(Err(each()));
    }
}

/// A caller held back.
struct Waiting<K: Kind> {
    ticket: u64,
    request: K::Request,
    answer: oneshot::Sender<Result<K::Value, StoreError>>,
}

/// The callers held back, by key. A key is in the map exactly while an
/// operation on it is on its way.
struct Queues<K: Kind> {
    waiting: Mutex<HashMap<K::Key, Vec<Waiting<K>>>>,
    /// Keys whose operations met one another lately (one came while another
    /// was on its way or gathering), with when, in [`monotonic_millis`]:
    /// under [`Batching::PerTurn`] only their leads wait a turn for others
    /// to join. A key not met lately (many visitors, each one request at a
    /// time) goes at once: the turn cost each of its operations a wake-up
    /// and 7–10% of the throughput, for nothing to join.
    contended: Mutex<HashMap<K::Key, u64>>,
}

/// How long a key counts as contended after its operations last met.
const CONTENDED_FOR_MS: u64 = 1000;

/// Keys kept as contended before the stale ones are dropped.
const CONTENDED_KEPT: usize = 4096;

impl<K: Kind> Default for Queues<K> {
    fn default() -> Self {
        Self {
            waiting: Mutex::default(),
            contended: Mutex::default(),
        }
    }
}

impl<K: Kind> Queues<K> {
    fn lock(&self) -> MutexGuard<'_, HashMap<K::Key, Vec<Waiting<K>>>> {
        // Every change under the lock leaves the map whole, so a panic
        // elsewhere while it was locked left nothing half done.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn contended(&self) -> MutexGuard<'_, HashMap<K::Key, u64>> {
        self.contended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes that operations of `key` met.
    fn note_contended(&self, key: &K::Key) {
        let now = monotonic_millis();
        let mut contended = self.contended();
        if contended.len() >= CONTENDED_KEPT && !contended.contains_key(key) {
            contended.retain(|_, at| now.saturating_sub(*at) <= CONTENDED_FOR_MS);
            if contended.len() >= CONTENDED_KEPT {
                // As many met within the second (concurrent requests with
                // many made-up ids, say): forgotten, their leads go at once
                // until they meet again.
                contended.clear();
            }
        }
        contended.insert(key.clone(), now);
    }

    /// Whether operations of `key` met within [`CONTENDED_FOR_MS`].
    fn contended_lately(&self, key: &K::Key) -> bool {
        let mut contended = self.contended();
        match contended.get(key) {
            Some(at) if monotonic_millis().saturating_sub(*at) <= CONTENDED_FOR_MS => true,
            Some(_) => {
                contended.remove(key);
                false
            }
            None => false,
        }
    }

    /// Takes the operation of `ticket` back, unless a run took it already.
    fn withdraw(&self, key: &K::Key, ticket: u64) {
        if let Some(waiting) = self.lock().get_mut(key) {
            waiting.retain(|queued| queued.ticket != ticket);
        }
    }

    /// The callers queued on `key`, or `None` after taking `key` out of
    /// the map when none are.
    fn next_or_done(&self, key: &K::Key) -> Option<Vec<Waiting<K>>> {
        let mut queues = self.lock();
        match queues.get_mut(key) {
            Some(waiting) if !waiting.is_empty() => Some(std::mem::take(waiting)),
            _ => {
                queues.remove(key);
                None
            }
        }
    }
}

/// The error of an operation whose combined run ended without answering
/// (its task was dropped as the runtime shut down, or panicked), maybe
/// after the store carried it out.
#[derive(Debug, thiserror::Error)]
#[error("the combined store operation this one joined ended without answering; it may have been carried out")]
struct Unanswered;

/// A store's error, one for each caller of a combined operation: the
/// message and the source of the one error the store gave.
#[derive(Debug, Clone)]
struct SharedCause(Arc<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for SharedCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Loads `id` from `store`, combined with the other loads of it that come
/// meanwhile (see [`Batching`]).
pub(crate) async fn load<S: Combining>(store: &S, id: &SessionId, now: u64) -> LoadAnswer {
    let alone = || {
        #[cfg(test)]
        store.combiner().loads_sent.fetch_add(1, Ordering::Relaxed);
        store.load_alone(id, now)
    };
    take_turn(|| turn::<S, Loads>(store, id.clone(), now), now, alone).await
}

/// Increments `key` of `id` by `by` in `store`, combined with the other
/// increments of it that come meanwhile (see [`Batching`]).
pub(crate) async fn increment<S: Combining>(
    store: &S,
    id: &SessionId,
    key: &str,
    by: i64,
    now: u64,
) -> IncrementAnswer {
    let alone = || {
        #[cfg(test)]
        store.combiner().sent.fetch_add(1, Ordering::Relaxed);
        store.increment_alone(id, key, by, now)
    };
    let request = IncrementRequest { by, now };
    let counter = || (id.clone(), CompactString::from(key));
    take_turn(
        || turn::<S, Increments>(store, counter(), request),
        request,
        alone,
    )
    .await
}

/// The caller's operation, `request`, made at its turn (`turn_of` takes
/// it): answered by a combined run it queued for, or made by `alone` if it
/// leads (under [`Batching::PerTurn`], with those that joined it, if any
/// did).
///
/// The turn is taken here rather than passed in, and `alone` awaited at
/// one place, so that the caller's future holds the turn and the store's
/// future once each (its size matters, see [`Turn`]).
async fn take_turn<'a, S: Combining, K: Kind, F>(
    turn_of: impl FnOnce() -> Turn<'a, S, K>,
    request: K::Request,
    alone: impl FnOnce() -> F,
) -> Result<K::Value, StoreError>
where
    F: Future<Output = Result<K::Value, StoreError>>,
{
    let mut lead = match turn_of() {
        Turn::Queued(queued) => return queued.answer().await,
        Turn::Lead(lead) => lead,
    };
    if S::BATCHING == Batching::PerTurn && lead.contended_lately() {
        // The scheduler's other ready tasks run first: those woken with
        // this one make their operations now, and join it.
        tokio::task::yield_now().await;
        if let Some(answered) = lead.close(request) {
            return answered
                .await
                .unwrap_or_else(|_| Err(StoreError::unavailable(Unanswered)));
        }
    }
    let started = tokio::time::Instant::now();
    let answer = match alone().await {
        Err(error) if waited_out(&error, started) => {
            let each = for_each_caller(error);
            lead.fail_queued(&each);
            Err(each())
        }
        answer => answer,
    };
    drop(lead);
    answer
}

/// Whether a caller's operation goes at once or waits for a combined run.
///
/// Decided before any future of the operation exists, so that the caller's
/// future holds either the operation's or the wait's, never both: the
/// stores' futures are boxed, and one of more than a kilobyte costs every
/// request glibc's consolidation of its small free chunks.
enum Turn<'a, S: Combining, K: Kind> {
    /// Nothing on `key` was on its way: the caller's operation goes now,
    /// and those queued behind it go when this is dropped.
    Lead(Lead<'a, S, K>),
    Queued(Queued<'a, K>),
}

fn turn<S: Combining, K: Kind>(store: &S, key: K::Key, request: K::Request) -> Turn<'_, S, K> {
    let combiner = store.combiner();
    let queues = K::queues(combiner);
    let mut waiting = queues.lock();
    if let Some(queued) = waiting.get_mut(&key) {
        let ticket = combiner.next_ticket.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        queued.push(Waiting {
            ticket,
            request,
            answer,
        });
        drop(waiting);
        if S::BATCHING == Batching::PerTurn {
            queues.note_contended(&key);
        }
        return Turn::Queued(Queued {
            withdraw: Withdraw {
                queues,
                key,
                ticket,
                queued: true,
            },
            answered,
        });
    }
    waiting.insert(key.clone(), Vec::new());
    Turn::Lead(Lead {
        store,
        key: Some(key),
    })
}

/// A caller waiting for a combined run to answer it.
struct Queued<'a, K: Kind> {
    withdraw: Withdraw<'a, K>,
    answered: oneshot::Receiver<Result<K::Value, StoreError>>,
}

impl<K: Kind> Queued<'_, K> {
    async fn answer(self) -> Result<K::Value, StoreError> {
        let Self {
            mut withdraw,
            answered,
        } = self;
        let answer = answered.await;
        // Answered or not, the run took this caller out of the queue (the
        // sender lived in it): nothing to look for, which with many callers
        // queued on one key would cost each of them a pass over the rest.
        withdraw.queued = false;
        answer.unwrap_or_else(|_| Err(StoreError::unavailable(Unanswered)))
    }
}

/// Takes a queued operation back when its caller's future is dropped.
struct Withdraw<'a, K: Kind> {
    queues: &'a Queues<K>,
    key: K::Key,
    ticket: u64,
    /// Whether the operation may still be in the queue.
    queued: bool,
}

impl<K: Kind> Drop for Withdraw<'_, K> {
    fn drop(&mut self) {
        if self.queued {
            self.queues.withdraw(&self.key, self.ticket);
        }
    }
}

/// Held by the caller whose operation is on its way: when it is answered,
/// or the caller goes away, the operations queued meanwhile go next.
struct Lead<'a, S: Combining, K: Kind> {
    store: &'a S,
    key: Option<K::Key>,
}

impl<S: Combining, K: Kind> Lead<'_, S, K> {
    /// Whether operations of this key met lately (see `Queues::contended`).
    fn contended_lately(&self) -> bool {
        self.key
            .as_ref()
            .is_some_and(|key| K::queues(self.store.combiner()).contended_lately(key))
    }

    /// The callers queued behind this one's operation, which the store
    /// failed with an outage it waited out, get copies of it made by `each`
    /// (see [`WAITED_OUT`]); the key leaves the map, so that the next
    /// callers go afresh.
    fn fail_queued(&mut self, each: &dyn Fn() -> StoreError) {
        let Some(key) = self.key.take() else {
            return;
        };
        let queued = K::queues(self.store.combiner()).lock().remove(&key);
        fail_all(queued.into_iter().flatten(), each);
    }

    /// Ends the gathering of a batch: the key leaves the map, so that the
    /// callers that come from now on start the next one. If any joined,
    /// the caller's `request` and theirs go as one, in a task of their own
    /// (so that the caller can go away without stranding them), and the
    /// caller's answer comes through the receiver returned; if none did,
    /// the caller makes its operation alone.
    fn close(
        &mut self,
        request: K::Request,
    ) -> Option<oneshot::Receiver<Result<K::Value, StoreError>>> {
        let key = self.key.take()?;
        let combiner = self.store.combiner();
        let mut joined = K::queues(combiner).lock().remove(&key)?;
        if joined.is_empty() {
            return None;
        }
        let (answer, answered) = oneshot::channel();
        let ticket = combiner.next_ticket.fetch_add(1, Ordering::Relaxed);
        joined.insert(
            0,
            Waiting {
                ticket,
                request,
                answer,
            },
        );
        let store = self.store.handle();
        drop(background::spawn(async move {
            let _outage = K::run(&store, &key, joined).await;
        }));
        Some(answered)
    }
}

impl<S: Combining, K: Kind> Drop for Lead<'_, S, K> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else {
            return;
        };
        if S::BATCHING == Batching::PerTurn {
            // A lead that went at once (its key had not met others lately):
            // those that queued behind it go as one, and the key leaves the
            // map with them, so that the next ones gather by turns again
            // rather than queue behind this batch, and the next, for as
            // long as they keep coming.
            let queued = K::queues(self.store.combiner()).lock().remove(&key);
            let Some(queued) = queued.filter(|queued| !queued.is_empty()) else {
                return;
            };
            let store = self.store.handle();
            drop(background::spawn(async move {
                let _outage = K::run(&store, &key, queued).await;
            }));
            return;
        }
        let Some(queued) = K::queues(self.store.combiner()).next_or_done(&key) else {
            return;
        };
        let serving = Serving::<S, K> {
            store: self.store.handle(),
            key,
            in_map: true,
        };
        drop(background::spawn(serve(serving, queued)));
    }
}

/// Owns a key's place in the map while its queued operations run; if the
/// task running them ends early (dropped, or a panic), the key leaves the
/// map and the operations queued on it are answered `Unanswered`, so that
/// later ones do not wait for a task that is gone.
struct Serving<S: Combining, K: Kind> {
    store: S,
    key: K::Key,
    /// Whether the key's entry in the map is still this task's.
    in_map: bool,
}

impl<S: Combining, K: Kind> Drop for Serving<S, K> {
    fn drop(&mut self) {
        if self.in_map {
            K::queues(self.store.combiner()).lock().remove(&self.key);
        }
    }
}

/// Runs the operations queued on a key, and those queued while they run,
/// until none are left.
async fn serve<S: Combining, K: Kind>(mut serving: Serving<S, K>, mut queued: Vec<Waiting<K>>) {
    loop {
        let outage = K::run(&serving.store, &serving.key, queued).await;
        loop {
            let Some(next) = K::queues(serving.store.combiner()).next_or_done(&serving.key) else {
                // Out of the map already: another caller may have put it
                // back, and that entry is not this task's to remove.
                serving.in_map = false;
                return;
            };
            match &outage {
                // They queued while the store failed the run before.
                Some(outage) => fail_all(next, &|| copy_of(outage)),
                None => {
                    queued = next;
                    break;
                }
            }
        }
    }
}

/// Loads of one session.
struct Loads;

impl Kind for Loads {
    type Key = SessionId;
    /// The time the caller asks about.
    type Request = u64;
    type Value = Option<Record>;

    fn queues(combiner: &Combiner) -> &Queues<Self> {
        &combiner.loads
    }

    /// One load for each run of callers asking about the same time (in a
    /// busy second, all of them), each answered with its own copy.
    async fn run<S: Combining>(
        store: &S,
        id: &SessionId,
        queued: Vec<Waiting<Self>>,
    ) -> Option<StoreError> {
        let mut queued = queued.into_iter().peekable();
        while let Some(first) = queued.next() {
            let now = first.request;
            let mut group = vec![first];
            while let Some(next) = queued.next_if(|next| next.request == now) {
                group.push(next);
            }
            #[cfg(test)]
            store.combiner().loads_sent.fetch_add(1, Ordering::Relaxed);
            let started = tokio::time::Instant::now();
            match store.load_alone(id, now).await {
                Ok(record) => {
                    let last = group.pop();
                    for queued in group {
                        let _ = queued.answer.send(Ok(record.clone()));
                    }
                    if let Some(last) = last {
                        let _ = last.answer.send(Ok(record));
                    }
                }
                Err(error) => {
                    let waited = waited_out(&error, started);
                    let each = for_each_caller(error);
                    for queued in group {
                        let _ = queued.answer.send(Err(each()));
                    }
                    if waited {
                        fail_all(queued, &each);
                        return Some(each());
                    }
                }
            }
        }
        None
    }
}

/// Increments of one counter.
struct Increments;

/// What an increment asks, besides its counter.
#[derive(Clone, Copy)]
struct IncrementRequest {
    by: i64,
    now: u64,
}

/// A session's id and a key in it; a key of up to 24 bytes is held inline,
/// so that an increment with none on its way allocates nothing for it.
type Counter = (SessionId, CompactString);

impl Kind for Increments {
    type Key = Counter;
    type Request = IncrementRequest;
    type Value = Option<i64>;

    fn queues(combiner: &Combiner) -> &Queues<Self> {
        &combiner.increments
    }

    /// As few increments as the signs allow, in order.
    async fn run<S: Combining>(
        store: &S,
        counter: &Counter,
        queued: Vec<Waiting<Self>>,
    ) -> Option<StoreError> {
        let (id, key) = counter;
        let mut queued = queued.into_iter().peekable();
        while let Some(first) = queued.next() {
            let negative = first.request.by < 0;
            let mut sum = first.request.by;
            let mut group = vec![first];
            while let Some(next) = queued.peek() {
                match sum.checked_add(next.request.by) {
                    Some(more) if (next.request.by < 0) == negative => {
                        sum = more;
                        group.extend(queued.next());
                    }
                    _ => break,
                }
            }
            if let Some(outage) = run_increments(store, id, key, group, sum).await {
                fail_all(queued, &|| copy_of(&outage));
                return Some(outage);
            }
        }
        None
    }
}

/// Runs `group` (of one sign, adding up to `sum`) as one increment; the
/// outage that failed it, if one did (see [`Kind::run`]).
async fn run_increments<S: Combining>(
    store: &S,
    id: &SessionId,
    key: &str,
    group: Vec<Waiting<Increments>>,
    sum: i64,
) -> Option<StoreError> {
    if group.len() > 1 {
        let now = group
            .iter()
            .map(|queued| queued.request.now)
            .max()
            .unwrap_or(0);
        #[cfg(test)]
        store.combiner().sent.fetch_add(1, Ordering::Relaxed);
        let started = tokio::time::Instant::now();
        match store.increment_alone(id, key, sum, now).await {
            Ok(Some(total)) => {
                // Each caller's value, as if each had run in turn: what the
                // counter held before the sum, plus the increments up to
                // and including its own.
                let mut value = total.checked_sub(sum);
                for queued in group {
                    value = value.and_then(|value| value.checked_add(queued.request.by));
                    let answer = value.map(Some).ok_or_else(|| {
                        StoreError::corrupt(format!(
                            "incrementing {key:?} by {sum} gave {total}, out of range"
                        ))
                    });
                    let _ = queued.answer.send(answer);
                }
                return None;
            }
            Ok(None) if group.iter().all(|queued| queued.request.now == now) => {
                for queued in group {
                    let _ = queued.answer.send(Ok(None));
                }
                return None;
            }
            // Ended by the latest caller's clock, not necessarily by the
            // others' (a session expiring in that second): nothing landed,
            // and each runs alone below, by its own clock.
            Ok(None) => {}
            // Refused, so nothing landed: each runs alone below, for its
            // own answer.
            Err(StoreError::WrongType { .. } | StoreError::Unrepresentable(_)) => {}
            Err(error) => {
                let waited = waited_out(&error, started);
                let each = for_each_caller(error);
                for queued in group {
                    let _ = queued.answer.send(Err(each()));
                }
                return waited.then(each);
            }
        }
    }
    let mut group = group.into_iter();
    while let Some(queued) = group.next() {
        #[cfg(test)]
        store.combiner().sent.fetch_add(1, Ordering::Relaxed);
        let IncrementRequest { by, now } = queued.request;
        let started = tokio::time::Instant::now();
        match store.increment_alone(id, key, by, now).await {
            Err(error) if waited_out(&error, started) => {
                let each = for_each_caller(error);
                let _ = queued.answer.send(Err(each()));
                fail_all(group, &each);
                return Some(each());
            }
            answer => {
                let _ = queued.answer.send(answer);
            }
        }
    }
    None
}

/// Copies of `error` for every caller, each with its message and source.
fn for_each_caller(error: StoreError) -> impl Fn() -> StoreError {
    let error = match error {
        StoreError::Unavailable(source) => {
            StoreError::Unavailable(Box::new(SharedCause(Arc::from(source))))
        }
        other => other,
    };
    move || copy_of(&error)
}

pub(super) fn copy_of(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable(source) => {
            StoreError::Unavailable(match source.downcast_ref::<SharedCause>() {
                Some(shared) => Box::new(shared.clone()),
                None => source.to_string().into(),
            })
        }
        StoreError::WrongType {
            key,
            expected,
            found,
        } => StoreError::WrongType {
            key: key.clone(),
            expected,
            found,
        },
        StoreError::Corrupt(why) => StoreError::corrupt(why.clone()),
        StoreError::Unrepresentable(why) => StoreError::unrepresentable(why.clone()),
        StoreError::Config(why) => StoreError::config(why.clone()),
    }
}

/// Three increments of `key` by one at `now`, joined, checked to answer
/// the three values after `before` (for the stores' own tests of what
/// follows them).
#[cfg(all(test, any(feature = "redis", feature = "postgres")))]
pub(crate) async fn three_increments_at_once(
    store: &impl super::SessionStore,
    id: &SessionId,
    key: &str,
    now: u64,
    before: i64,
) {
    let (a, b, c) = tokio::join!(
        store.increment(id, key, 1, now),
        store.increment(id, key, 1, now),
        store.increment(id, key, 1, now),
    );
    let mut seen = [a, b, c].map(|answer| answer.expect("increment").expect("live"));
    seen.sort_unstable();
    assert_eq!(seen, [1, 2, 3].map(|n| before + n));
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use tokio::sync::RwLock;

    use super::*;
    use crate::map::Map;
    use crate::store::memory::MemoryStore;
    use crate::store::{Record, SessionStore as _};
    use crate::value::Value;

    /// A memory store whose loads and increments wait at a gate the test
    /// holds, so that others queue behind them, and fail while `down` is
    /// set.
    #[derive(Clone)]
    struct Gated {
        memory: Arc<MemoryStore>,
        combiner: Arc<Combiner>,
        gate: Arc<RwLock<()>>,
        down: Arc<AtomicBool>,
    }

    impl Combining for Gated {
        fn combiner(&self) -> &Combiner {
            &self.combiner
        }

        fn handle(&self) -> Self {
            self.clone()
        }

        /// Reads, then waits at the gate: a load on its way has read what
        /// it answers.
        async fn load_alone(&self, id: &SessionId, now: u64) -> LoadAnswer {
            let read = self.memory.load(id, now).await;
            let _open = self.gate.read().await;
            if self.down.load(Ordering::Relaxed) {
                return Err(StoreError::unavailable(std::io::Error::other("store down")));
            }
            read
        }

        async fn increment_alone(
            &self,
            id: &SessionId,
            key: &str,
            by: i64,
            now: u64,
        ) -> IncrementAnswer {
            let _open = self.gate.read().await;
            if self.down.load(Ordering::Relaxed) {
                return Err(StoreError::unavailable(std::io::Error::other("store down")));
            }
            self.memory.increment(id, key, by, now).await
        }
    }

    async fn gated() -> (Gated, SessionId) {
        let store = Gated {
            memory: Arc::new(MemoryStore::default()),
            combiner: Arc::default(),
            gate: Arc::default(),
            down: Arc::default(),
        };
        let id = SessionId::generate();
        let record = Record {
            data: Map::from([("n", Value::from(0))]),
            user_id: None,
            created_at: 1,
            expires_at: u64::MAX / 4,
            absolute_expires_at: None,
        };
        assert!(store.memory.create(&id, &record).await.expect("create"));
        (store, id)
    }

    fn sent(store: &Gated) -> u64 {
        store.combiner.sent.load(Ordering::Relaxed)
    }

    fn queued(store: &Gated) -> usize {
        store
            .combiner
            .increments
            .lock()
            .values()
            .map(Vec::len)
            .sum()
    }

    /// `on_their_way()` once it is 0, or after 10 s: the combined run that
    /// answered the callers takes its key out of the map just after, on a
    /// thread of its own when the test's runtime is single-threaded.
    async fn none_left(on_their_way: impl Fn() -> usize) -> usize {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while on_their_way() > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        on_their_way()
    }

    fn counters_on_their_way(store: &Gated) -> usize {
        store.combiner.increments.lock().len()
    }

    async fn stored(store: &Gated, id: &SessionId) -> Option<Value> {
        let record = store.memory.load(id, 2).await.expect("load").expect("live");
        record.data.get("n").cloned()
    }

    /// Starts an increment of `n` by each of `by`, in order: the first goes
    /// to the store and waits at the closed gate, the others queue behind it.
    async fn start(
        store: &Gated,
        id: &SessionId,
        by: &[i64],
    ) -> Vec<tokio::task::JoinHandle<IncrementAnswer>> {
        let at_two: Vec<(i64, u64)> = by.iter().map(|&by| (by, 2)).collect();
        start_at(store, id, &at_two).await
    }

    /// [`start`], each increment by its own clock: `(by, now)`.
    async fn start_at(
        store: &Gated,
        id: &SessionId,
        calls: &[(i64, u64)],
    ) -> Vec<tokio::task::JoinHandle<IncrementAnswer>> {
        let mut tasks = Vec::new();
        for (at, &(by, now)) in calls.iter().enumerate() {
            let (caller, id) = (store.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                increment(&caller, &id, "n", by, now).await
            }));
            // Until this one is on its way or queued, so the order is `by`'s.
            while store_sent_or_queued(store) < at + 1 {
                tokio::task::yield_now().await;
            }
        }
        tasks
    }

    fn store_sent_or_queued(store: &Gated) -> usize {
        counters_on_their_way(store) + queued(store)
    }

    async fn answers(tasks: Vec<tokio::task::JoinHandle<IncrementAnswer>>) -> Vec<IncrementAnswer> {
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("no panic"));
        }
        answers
    }

    fn values(answers: &[IncrementAnswer]) -> Vec<Option<i64>> {
        answers
            .iter()
            .map(|answer| *answer.as_ref().expect("answered"))
            .collect()
    }

    #[tokio::test]
    async fn increments_queued_behind_one_go_as_one_and_each_sees_its_own_value() {
        let (store, id) = gated().await;
        let gate = store.gate.write().await;
        let tasks = start(&store, &id, &[1; 50]).await;
        assert_eq!(queued(&store), 49);
        drop(gate);
        let answers = answers(tasks).await;
        assert_eq!(values(&answers), (1..=50).map(Some).collect::<Vec<_>>());
        assert_eq!(stored(&store, &id).await, Some(Value::from(50)));
        assert_eq!(
            sent(&store),
            2,
            "the first alone, then the 49 queued as one"
        );
        assert_eq!(none_left(|| counters_on_their_way(&store)).await, 0);
    }

    #[tokio::test]
    async fn only_increments_of_one_sign_are_summed() {
        let (store, id) = gated().await;
        let gate = store.gate.write().await;
        let tasks = start(&store, &id, &[1, 2, 3, -4, -1, 0, 5]).await;
        drop(gate);
        let answers = answers(tasks).await;
        assert_eq!(
            values(&answers),
            [1, 3, 6, 2, 1, 1, 6].map(Some).to_vec(),
            "the values of the increments run one after another"
        );
        assert_eq!(sent(&store), 4, "1; 2 + 3; -4 - 1; 0 + 5");
        assert_eq!(stored(&store, &id).await, Some(Value::from(6)));
    }

    /// A sum the store refuses runs increment by increment, so each caller
    /// gets what its own increment would: here the last one overflows.
    #[tokio::test]
    async fn a_refused_sum_runs_each_alone() {
        let (store, id) = gated().await;
        store
            .memory
            .increment(&id, "n", i64::MAX - 3, 2)
            .await
            .expect("set");
        let gate = store.gate.write().await;
        let tasks = start(&store, &id, &[1, 1, 1, 1]).await;
        drop(gate);
        let answers = answers(tasks).await;
        assert_eq!(
            values(&answers[..3]),
            [i64::MAX - 2, i64::MAX - 1, i64::MAX].map(Some).to_vec()
        );
        assert!(
            matches!(answers[3], Err(StoreError::WrongType { .. })),
            "{:?}",
            answers[3]
        );
        assert_eq!(sent(&store), 1 + 1 + 3);
        assert_eq!(stored(&store, &id).await, Some(Value::from(i64::MAX)));
    }

    /// A failure that may have counted is every caller's, and nothing is run
    /// again.
    #[tokio::test]
    async fn a_store_out_of_reach_fails_every_caller_once() {
        let (store, id) = gated().await;
        let gate = store.gate.write().await;
        let tasks = start(&store, &id, &[1, 1, 1, 1]).await;
        store.down.store(true, Ordering::Relaxed);
        drop(gate);
        let answers = answers(tasks).await;
        for answer in &answers {
            match answer {
                Err(error @ StoreError::Unavailable(_)) => {
                    assert!(error.to_string().contains("store down"), "{error}");
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            sent(&store),
            2,
            "the first alone, the rest as one (its outage came at once), none again"
        );
        store.down.store(false, Ordering::Relaxed);
        let after = increment(&store, &id, "n", 1, 2).await.expect("back");
        assert_eq!(after, Some(1));
    }

    /// An outage that the store made the caller wait for (a frozen server,
    /// a lock held elsewhere) fails the callers queued behind it too, at
    /// once: run after it, each waited as long again (a frozen Redis held
    /// them 10 s where its timeout is 5). Loads as increments.
    #[tokio::test]
    async fn an_outage_waited_out_fails_the_queued_callers_without_a_run() {
        let (store, id) = gated().await;
        let gate = store.gate.write().await;
        let increments = start(&store, &id, &[1, 1, 1]).await;
        let loads = start_loads(&store, &id, &[2, 2, 2]).await;
        store.down.store(true, Ordering::Relaxed);
        tokio::time::sleep(WAITED_OUT + std::time::Duration::from_millis(20)).await;
        drop(gate);
        for answer in answers(increments).await {
            assert!(
                matches!(answer, Err(StoreError::Unavailable(_))),
                "{answer:?}"
            );
        }
        for task in loads {
            let answer = task.await.expect("no panic");
            assert!(
                matches!(answer, Err(StoreError::Unavailable(_))),
                "{answer:?}"
            );
        }
        assert_eq!(sent(&store), 1, "the first increment alone");
        assert_eq!(loads_sent(&store), 1, "the first load alone");
        store.down.store(false, Ordering::Relaxed);
        assert_eq!(
            increment(&store, &id, "n", 1, 2).await.expect("back"),
            Some(1)
        );
        assert_eq!(none_left(|| loads_on_their_way(&store)).await, 0);
    }

    #[tokio::test]
    async fn increments_of_a_session_gone_are_answered_none() {
        let (store, _) = gated().await;
        let gone = SessionId::generate();
        let gate = store.gate.write().await;
        let tasks = start(&store, &gone, &[1, 2, 3]).await;
        drop(gate);
        assert_eq!(values(&answers(tasks).await), vec![None; 3]);
    }

    /// Queued callers whose clocks straddle the session's expiry are each
    /// answered by their own: the one before it counts, though the group's
    /// sum, run by the latest clock, found the session ended.
    #[tokio::test]
    async fn queued_increments_at_the_expiry_are_answered_by_their_own_clocks() {
        let (store, _) = gated().await;
        let id = SessionId::generate();
        let record = Record {
            data: Map::new(),
            user_id: None,
            created_at: 1,
            expires_at: 10,
            absolute_expires_at: None,
        };
        assert!(store.memory.create(&id, &record).await.expect("create"));
        let gate = store.gate.write().await;
        let tasks = start_at(&store, &id, &[(1, 8), (1, 9), (1, 10)]).await;
        drop(gate);
        assert_eq!(
            values(&answers(tasks).await),
            [Some(1), Some(2), None],
            "live before 10, ended at 10"
        );
        let record = store
            .memory
            .load(&id, 9)
            .await
            .expect("load")
            .expect("live");
        assert_eq!(record.data.get("n"), Some(&Value::from(2)));
    }

    /// The caller whose increment is on its way goes away: those queued
    /// behind it are still run and answered.
    #[tokio::test]
    async fn a_first_caller_that_goes_away_strands_no_one() {
        let (store, id) = gated().await;
        let gate = store.gate.write().await;
        let mut tasks = start(&store, &id, &[1, 1, 1]).await;
        tasks.remove(0).abort();
        // The abort lands before the gate opens.
        tokio::task::yield_now().await;
        drop(gate);
        let answers = answers(tasks).await;
        assert_eq!(values(&answers), [1, 2].map(Some).to_vec());
        assert_eq!(stored(&store, &id).await, Some(Value::from(2)));
        assert_eq!(none_left(|| counters_on_their_way(&store)).await, 0);
    }

    /// A caller that goes away while its increment is queued takes it back.
    #[tokio::test]
    async fn a_queued_caller_that_goes_away_takes_its_increment_back() {
        let (store, id) = gated().await;
        let gate = store.gate.write().await;
        let mut tasks = start(&store, &id, &[1, 10, 100]).await;
        tasks.remove(1).abort();
        while queued(&store) != 1 {
            tokio::task::yield_now().await;
        }
        drop(gate);
        assert_eq!(values(&answers(tasks).await), [1, 101].map(Some).to_vec());
        assert_eq!(stored(&store, &id).await, Some(Value::from(101)));
    }

    /// Different counters never wait for each other.
    #[tokio::test]
    async fn increments_of_other_keys_do_not_queue() {
        let (store, id) = gated().await;
        let gate = store.gate.write().await;
        let first = start(&store, &id, &[1]).await;
        let (other, id_other) = (store.clone(), id.clone());
        let second = tokio::spawn(async move { increment(&other, &id_other, "m", 1, 2).await });
        while counters_on_their_way(&store) < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(queued(&store), 0);
        drop(gate);
        assert_eq!(values(&answers(first).await), vec![Some(1)]);
        assert_eq!(second.await.expect("no panic").expect("answered"), Some(1));
    }

    fn loads_queued(store: &Gated) -> usize {
        store.combiner.loads.lock().values().map(Vec::len).sum()
    }

    fn loads_on_their_way(store: &Gated) -> usize {
        store.combiner.loads.lock().len()
    }

    fn loads_sent(store: &Gated) -> u64 {
        store.combiner.loads_sent.load(Ordering::Relaxed)
    }

    /// Starts a load of `id` asking about each of `nows`, in order: the
    /// first goes to the store and waits at the closed gate, the others
    /// queue behind it.
    async fn start_loads(
        store: &Gated,
        id: &SessionId,
        nows: &[u64],
    ) -> Vec<tokio::task::JoinHandle<LoadAnswer>> {
        let mut tasks = Vec::new();
        for (at, &now) in nows.iter().enumerate() {
            let (caller, id) = (store.clone(), id.clone());
            tasks.push(tokio::spawn(async move { load(&caller, &id, now).await }));
            while loads_on_their_way(store) + loads_queued(store) < at + 1 {
                tokio::task::yield_now().await;
            }
        }
        tasks
    }

    /// The value of `n` each load answered (`None` for no session).
    async fn loaded(tasks: Vec<tokio::task::JoinHandle<LoadAnswer>>) -> Vec<Option<Value>> {
        let mut values = Vec::new();
        for task in tasks {
            let record = task.await.expect("no panic").expect("answered");
            values.push(record.map(|record| record.data.get("n").cloned().expect("n")));
        }
        values
    }

    #[tokio::test]
    async fn loads_queued_behind_one_go_as_one_and_each_gets_its_copy() {
        let (store, id) = gated().await;
        let gate = store.gate.write().await;
        let tasks = start_loads(&store, &id, &[2; 30]).await;
        assert_eq!(loads_queued(&store), 29);
        drop(gate);
        assert_eq!(loaded(tasks).await, vec![Some(Value::from(0)); 30]);
        assert_eq!(loads_sent(&store), 2, "the first alone, then the 29 as one");
        assert_eq!(none_left(|| loads_on_their_way(&store)).await, 0);
    }

    /// Queued loads are made again after they came, not answered from the
    /// load already on its way, which read before a write they must see
    /// (say, their own request's previous one, through another instance).
    #[tokio::test]
    async fn queued_loads_see_what_was_written_before_they_came() {
        let (store, id) = gated().await;
        let gate = store.gate.write().await;
        let mut tasks = start_loads(&store, &id, &[2]).await;
        // The first load has read 0 and waits at the gate; then a write
        // lands, and then two more loads come.
        store.memory.increment(&id, "n", 7, 2).await.expect("write");
        tasks.extend(start_loads(&store, &id, &[2, 2]).await);
        drop(gate);
        assert_eq!(
            loaded(tasks).await,
            [0, 7, 7].map(|n| Some(Value::from(n))).to_vec()
        );
    }

    /// Each caller is answered for the time it asks about: a session that
    /// ends at 4 is live at 2 and gone at 5, whatever else is queued.
    #[tokio::test]
    async fn queued_loads_are_answered_for_their_own_time() {
        let (store, _) = gated().await;
        let id = SessionId::generate();
        let record = Record {
            data: Map::from([("n", Value::from(0))]),
            user_id: None,
            created_at: 1,
            expires_at: 4,
            absolute_expires_at: None,
        };
        assert!(store.memory.create(&id, &record).await.expect("create"));
        let gate = store.gate.write().await;
        let tasks = start_loads(&store, &id, &[2, 2, 2, 5, 5, 2]).await;
        drop(gate);
        let live = Some(Value::from(0));
        assert_eq!(
            loaded(tasks).await,
            vec![live.clone(), live.clone(), live.clone(), None, None, live]
        );
        assert_eq!(loads_sent(&store), 4, "2; 2 + 2; 5 + 5; 2");
    }

    #[tokio::test]
    async fn a_failed_load_fails_every_queued_caller_and_the_next_go_afresh() {
        let (store, id) = gated().await;
        let gate = store.gate.write().await;
        let tasks = start_loads(&store, &id, &[2, 2, 2]).await;
        store.down.store(true, Ordering::Relaxed);
        drop(gate);
        for task in tasks {
            match task.await.expect("no panic") {
                Err(error @ StoreError::Unavailable(_)) => {
                    assert!(error.to_string().contains("store down"), "{error}");
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            loads_sent(&store),
            2,
            "its outage came at once: the rest as one"
        );
        store.down.store(false, Ordering::Relaxed);
        let after = load(&store, &id, 2).await.expect("back").expect("live");
        assert_eq!(after.data.get("n"), Some(&Value::from(0)));
        assert_eq!(none_left(|| loads_on_their_way(&store)).await, 0);
    }

    #[tokio::test]
    async fn a_first_loader_that_goes_away_strands_no_one() {
        let (store, id) = gated().await;
        let gate = store.gate.write().await;
        let mut tasks = start_loads(&store, &id, &[2, 2, 2]).await;
        tasks.remove(0).abort();
        tokio::task::yield_now().await;
        drop(gate);
        assert_eq!(loaded(tasks).await, vec![Some(Value::from(0)); 2]);
        assert_eq!(none_left(|| loads_on_their_way(&store)).await, 0);
    }

    #[tokio::test]
    async fn a_queued_loader_that_goes_away_is_not_loaded_for() {
        let (store, id) = gated().await;
        let gate = store.gate.write().await;
        let mut tasks = start_loads(&store, &id, &[2, 5]).await;
        tasks.remove(1).abort();
        while loads_queued(&store) != 0 {
            tokio::task::yield_now().await;
        }
        drop(gate);
        assert_eq!(loaded(tasks).await, vec![Some(Value::from(0))]);
        assert_eq!(loads_sent(&store), 1);
    }

    /// Loads of other sessions, and increments of the same one, never wait
    /// for a load.
    #[tokio::test]
    async fn loads_of_other_sessions_do_not_queue() {
        let (store, id) = gated().await;
        let other_id = SessionId::generate();
        let gate = store.gate.write().await;
        let first = start_loads(&store, &id, &[2]).await;
        let second = start_loads(&store, &other_id, &[2]).await;
        while loads_on_their_way(&store) < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(loads_queued(&store), 0);
        let counted = increment(&store, &id, "m", 1, 2);
        drop(gate);
        assert_eq!(counted.await.expect("answered"), Some(1));
        assert_eq!(loaded(first).await, vec![Some(Value::from(0))]);
        assert_eq!(loaded(second).await, vec![None]);
    }

    /// The gated store, grouping its operations by turns of the scheduler.
    #[derive(Clone)]
    struct PerTurn(Gated);

    impl Combining for PerTurn {
        const BATCHING: Batching = Batching::PerTurn;

        fn combiner(&self) -> &Combiner {
            &self.0.combiner
        }

        fn handle(&self) -> Self {
            self.clone()
        }

        async fn load_alone(&self, id: &SessionId, now: u64) -> LoadAnswer {
            self.0.load_alone(id, now).await
        }

        async fn increment_alone(
            &self,
            id: &SessionId,
            key: &str,
            by: i64,
            now: u64,
        ) -> IncrementAnswer {
            self.0.increment_alone(id, key, by, now).await
        }
    }

    /// A store grouping by turns, and a session whose loads and counter
    /// `n` met other operations lately: their leads wait a turn.
    async fn per_turn() -> (PerTurn, SessionId) {
        let (store, id) = gated().await;
        store.combiner.loads.note_contended(&id);
        store
            .combiner
            .increments
            .note_contended(&(id.clone(), CompactString::from("n")));
        (PerTurn(store), id)
    }

    /// A key whose operations did not meet lately goes at once, without a
    /// turn's wait (the wait cost each request of many visitors a wake-up,
    /// for nothing to join); one that comes while it is on its way waits
    /// behind it, and from then on the key's leads wait a turn again.
    #[tokio::test]
    async fn per_turn_a_key_not_met_lately_goes_at_once() {
        let (store, id) = gated().await;
        let store = PerTurn(store);
        let gate = store.0.gate.write().await;
        let first = spawn_increments(&store, &id, &[1]);
        let second = spawn_increments(&store, &id, &[2]);
        while sent(&store.0) < 1 {
            tokio::task::yield_now().await;
        }
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(sent(&store.0), 1, "the second waits behind the first");
        drop(gate);
        assert_eq!(
            values(&answers(first.into_iter().chain(second).collect()).await),
            vec![Some(1), Some(3)]
        );
        assert_eq!(sent(&store.0), 2);
        // Met now: two that come together go as one.
        let together = spawn_increments(&store, &id, &[1, 1]);
        assert_eq!(values(&answers(together).await), vec![Some(4), Some(5)]);
        assert_eq!(sent(&store.0), 3);
    }

    /// The keys kept as contended stay bounded, however many meet within
    /// a second (concurrent requests with made-up ids).
    #[test]
    fn contended_keys_are_bounded() {
        let queues = Queues::<Loads>::default();
        let id = SessionId::generate();
        queues.note_contended(&id);
        assert!(queues.contended_lately(&id));
        for _ in 0..CONTENDED_KEPT * 3 {
            queues.note_contended(&SessionId::generate());
            assert!(queues.contended().len() <= CONTENDED_KEPT);
        }
    }

    /// Increments of `n` by each of `by`, started together in this turn.
    fn spawn_increments(
        store: &PerTurn,
        id: &SessionId,
        by: &[i64],
    ) -> Vec<tokio::task::JoinHandle<IncrementAnswer>> {
        by.iter()
            .map(|&by| {
                let (caller, id) = (store.clone(), id.clone());
                tokio::spawn(async move { increment(&caller, &id, "n", by, 2).await })
            })
            .collect()
    }

    #[tokio::test]
    async fn per_turn_increments_that_come_together_go_as_one_in_order() {
        let (store, id) = per_turn().await;
        let tasks = spawn_increments(&store, &id, &[1, 2, 3]);
        assert_eq!(
            values(&answers(tasks).await),
            vec![Some(1), Some(3), Some(6)]
        );
        assert_eq!(sent(&store.0), 1);
        assert_eq!(stored(&store.0, &id).await, Some(Value::from(6)));
        assert_eq!(none_left(|| counters_on_their_way(&store.0)).await, 0);
    }

    #[tokio::test]
    async fn per_turn_loads_that_come_together_go_as_one() {
        let (store, id) = per_turn().await;
        let tasks = [2, 2, 2].map(|now| {
            let (caller, id) = (store.clone(), id.clone());
            tokio::spawn(async move { load(&caller, &id, now).await })
        });
        assert_eq!(loaded(tasks.into()).await, vec![Some(Value::from(0)); 3]);
        assert_eq!(loads_sent(&store.0), 1);
    }

    /// Nothing waits for an operation on its way: the next turn's goes too.
    #[tokio::test]
    async fn per_turn_an_increment_does_not_wait_for_one_on_its_way() {
        let (store, id) = per_turn().await;
        let gate = store.0.gate.write().await;
        let first = spawn_increments(&store, &id, &[1]);
        while sent(&store.0) < 1 {
            tokio::task::yield_now().await;
        }
        let second = spawn_increments(&store, &id, &[1]);
        let both_sent = async {
            while sent(&store.0) < 2 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), both_sent)
            .await
            .expect("the second increment went while the first was on its way");
        drop(gate);
        let mut seen = values(&answers(first.into_iter().chain(second).collect()).await);
        seen.sort_unstable();
        assert_eq!(seen, vec![Some(1), Some(2)]);
    }

    #[tokio::test]
    async fn per_turn_a_store_out_of_reach_fails_every_caller_once() {
        let (store, id) = per_turn().await;
        store.0.down.store(true, Ordering::Relaxed);
        let tasks = spawn_increments(&store, &id, &[1, 1]);
        for answer in answers(tasks).await {
            assert!(
                matches!(answer, Err(StoreError::Unavailable(_))),
                "{answer:?}"
            );
        }
        assert_eq!(sent(&store.0), 1);
        assert_eq!(stored(&store.0, &id).await, Some(Value::from(0)));
    }

    /// The first caller goes away during its turn, before its batch went:
    /// the one that joined it still runs, and the first's own does not.
    #[tokio::test]
    async fn per_turn_a_first_caller_that_goes_away_strands_no_one() {
        let (store, id) = per_turn().await;
        let mut first = Box::pin(increment(&store, &id, "n", 5, 2));
        std::future::poll_fn(|cx| {
            assert!(first.as_mut().poll(cx).is_pending(), "waits for its turn");
            std::task::Poll::Ready(())
        })
        .await;
        assert_eq!(counters_on_their_way(&store.0), 1);
        let second = spawn_increments(&store, &id, &[1]);
        while queued(&store.0) < 1 {
            tokio::task::yield_now().await;
        }
        drop(first);
        assert_eq!(values(&answers(second).await), vec![Some(1)]);
        assert_eq!(stored(&store.0, &id).await, Some(Value::from(1)));
        assert_eq!(none_left(|| counters_on_their_way(&store.0)).await, 0);
    }

    fn single_threaded() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    }

    /// Blocks until `done()`, failing the test after [`STRANDED`].
    fn wait_until(done: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + STRANDED;
        while !done() {
            assert!(std::time::Instant::now() < deadline, "waited too long");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// How long a test waits for an answer that only a stranded caller
    /// would not get in time.
    const STRANDED: std::time::Duration = std::time::Duration::from_secs(20);

    /// Two callers of `operation` on `store`, each on a single-threaded
    /// runtime of its own (two actix-web workers, two threads calling
    /// `block_on`), while `gate` holds the first one's operation: once the
    /// leading caller is answered, its runtime is kept but no longer driven,
    /// as a thread's is when its `block_on` has returned, or a worker's
    /// while a handler blocks its thread. Their answers, the leading
    /// caller's first; the test fails if the queued one is not answered
    /// within [`STRANDED`].
    fn lead_and_queued_on_two_runtimes<S, F>(
        store: &S,
        gate: tokio::sync::OwnedRwLockWriteGuard<()>,
        operation: impl Fn(S) -> F + Clone + Send + 'static,
        on_its_way: impl Fn() -> bool,
        queued: impl Fn() -> bool,
    ) -> (F::Output, F::Output)
    where
        S: Clone + Send + 'static,
        F: Future,
        F::Output: Send + 'static,
    {
        use std::sync::mpsc;
        let (release, released) = mpsc::channel::<()>();
        let lead = std::thread::spawn({
            let (store, operation) = (store.clone(), operation.clone());
            move || {
                let runtime = single_threaded();
                let answer = runtime.block_on(operation(store));
                // Kept, not driven, until the test is done.
                let _ = released.recv_timeout(2 * STRANDED);
                answer
            }
        });
        wait_until(on_its_way);
        let (answer, answered) = mpsc::channel();
        std::thread::spawn({
            let store = store.clone();
            move || {
                let _ = answer.send(single_threaded().block_on(operation(store)));
            }
        });
        wait_until(queued);
        drop(gate);
        let queued = answered.recv_timeout(STRANDED).expect(
            "the queued caller is answered while the leading caller's runtime is not driven",
        );
        let _ = release.send(());
        (lead.join().expect("the leading caller"), queued)
    }

    /// A load queued behind another caller's, across two single-threaded
    /// runtimes, the leading one no longer driven once its caller is
    /// answered: the queued load is answered all the same, as it runs on a
    /// runtime that keeps running, not on the leading caller's.
    #[test]
    fn a_load_queued_behind_a_runtime_no_longer_driven_is_answered() {
        let setup = single_threaded();
        let (store, id) = setup.block_on(gated());
        let gate = setup.block_on(store.gate.clone().write_owned());
        drop(setup);
        let (first, queued) = lead_and_queued_on_two_runtimes(
            &store,
            gate,
            move |store: Gated| {
                let id = id.clone();
                async move { load(&store, &id, 2).await }
            },
            || loads_on_their_way(&store) > 0,
            || loads_queued(&store) > 0,
        );
        for answer in [first, queued] {
            let record = answer.expect("loaded").expect("live");
            assert_eq!(record.data.get("n"), Some(&Value::from(0)));
        }
    }

    /// The same for an increment queued behind another, grouped by turns
    /// (Redis, PostgreSQL): it is made, and answered the value after both.
    #[test]
    fn an_increment_queued_behind_a_runtime_no_longer_driven_is_made() {
        let setup = single_threaded();
        let (store, id) = setup.block_on(gated());
        let gate = setup.block_on(store.gate.clone().write_owned());
        drop(setup);
        let store = PerTurn(store);
        let (first, queued) = lead_and_queued_on_two_runtimes(
            &store,
            gate,
            {
                let id = id.clone();
                move |store: PerTurn| {
                    let id = id.clone();
                    async move { increment(&store, &id, "n", 1, 2).await }
                }
            },
            || counters_on_their_way(&store.0) > 0,
            || self::queued(&store.0) > 0,
        );
        assert_eq!(first.expect("made"), Some(1));
        assert_eq!(queued.expect("made"), Some(2));
        assert_eq!(
            single_threaded().block_on(stored(&store.0, &id)),
            Some(Value::from(2))
        );
    }
}
