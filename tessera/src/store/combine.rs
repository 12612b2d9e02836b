//! Concurrent increments of one counter, combined.
//!
//! On a server-side store each increment is one atomic statement, script or
//! compare-and-set, and concurrent increments of the same counter (a
//! visitor's parallel requests, or many requests sharing one session) wait
//! for each other: PostgreSQL queues them on the value's row lock, each in a
//! transaction of its own, SQLite on its one writer, Redis runs a script for
//! each, and Flask-Session's layout takes a read and a write for each. So
//! while an increment of a counter is on its way, this process holds back
//! the next ones of the same counter; when it is answered, those that
//! queued meanwhile go to the store as one increment by their sum, and each
//! caller gets the value it would have seen had they run one after another
//! in the order they came. A queued caller thus waits for at most two
//! increments, the one on its way and its own group, where it would have
//! waited for every one before it. Different counters never wait for each
//! other, and an increment with none on its way goes at once.
//!
//! Only increments of one sign are summed, so that each caller's value lies
//! between the counter's value before and after the sum, and none overflows
//! when the sum does not. If the store refuses the sum (the key holds
//! another type, or the sum would overflow), each increment runs alone in
//! turn, so that a caller gets the answer or the error its own increment
//! gets. Any other error is every caller's: whether the sum landed is not
//! known, so running the increments again could count them twice.
//!
//! The queued increments run in a task of their own, so the caller whose
//! increment went first can go away without stranding them; a caller that
//! goes away while its increment is still queued takes it back.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use super::{SessionId, StoreError};

/// What [`SessionStore::increment`](super::SessionStore::increment) answers.
type Answer = Result<Option<i64>, StoreError>;

/// A store whose concurrent increments of one counter are combined.
pub(crate) trait CombinedIncrements: Send + Sync + Sized + 'static {
    /// The counters with an increment on its way, shared by every handle
    /// on the store.
    fn combiner(&self) -> &IncrementCombiner;

    /// Another handle on the same store, for the task that runs the
    /// increments queued behind one.
    fn handle(&self) -> Self;

    /// One increment, as [`SessionStore::increment`](super::SessionStore::increment) describes it.
    fn increment_alone(
        &self,
        id: &SessionId,
        key: &str,
        by: i64,
        now: u64,
    ) -> impl Future<Output = Answer> + Send;
}

/// The increments held back behind the one on its way, by counter. A
/// counter is in the map exactly while an increment of it is on its way.
#[derive(Default)]
pub(crate) struct IncrementCombiner {
    counters: Mutex<HashMap<Counter, Vec<Waiting>>>,
    next_ticket: AtomicU64,
    /// Increments that went to the store, for the tests to count.
    #[cfg(test)]
    sent: AtomicU64,
}

/// A session's id and a key in it.
type Counter = (SessionId, String);

struct Waiting {
    ticket: u64,
    by: i64,
    now: u64,
    answer: oneshot::Sender<Answer>,
}

/// The error of an increment whose combined run ended without answering
/// (its task was dropped as the runtime shut down, or panicked), maybe
/// after the store counted it.
#[derive(Debug, thiserror::Error)]
#[error("the combined increment this one joined ended without answering; it may have counted")]
struct Unanswered;

/// A store's error, one for each caller of a combined increment: the
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

/// How many counters have an increment on their way: not the keys, which
/// stores' own `Debug` leave out too.
impl std::fmt::Debug for IncrementCombiner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncrementCombiner")
            .field("counters_on_their_way", &self.counters().len())
            .finish_non_exhaustive()
    }
}

impl IncrementCombiner {
    fn counters(&self) -> MutexGuard<'_, HashMap<Counter, Vec<Waiting>>> {
        // Every change under the lock leaves the map whole, so a panic
        // elsewhere while it was locked left nothing half done.
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the increment of `ticket` back, unless a run took it already.
    fn withdraw(&self, counter: &Counter, ticket: u64) {
        let mut counters = self.counters();
        if let Some(waiting) = counters.get_mut(counter) {
            waiting.retain(|queued| queued.ticket != ticket);
        }
    }
}

/// Increments `key` of `id` by `by` in `store`, combined with the other
/// increments of it that come while one is on its way.
pub(crate) async fn increment<S: CombinedIncrements>(
    store: &S,
    id: &SessionId,
    key: &str,
    by: i64,
    now: u64,
) -> Answer {
    let combiner = store.combiner();
    let counter = (id.clone(), key.to_owned());
    // Queued behind the increment on its way, if one is.
    let queued = {
        let mut counters = combiner.counters();
        match counters.get_mut(&counter) {
            Some(waiting) => {
                let ticket = combiner.next_ticket.fetch_add(1, Ordering::Relaxed);
                let (answer, answered) = oneshot::channel();
                waiting.push(Waiting {
                    ticket,
                    by,
                    now,
                    answer,
                });
                Some((ticket, answered))
            }
            None => {
                counters.insert(counter.clone(), Vec::new());
                None
            }
        }
    };
    if let Some((ticket, answered)) = queued {
        let withdraw = Withdraw {
            combiner,
            counter,
            ticket,
        };
        let answer = answered.await;
        drop(withdraw);
        return answer.unwrap_or_else(|_| Err(StoreError::unavailable(Unanswered)));
    }
    let lead = Lead {
        store,
        counter: Some(counter),
    };
    #[cfg(test)]
    combiner.sent.fetch_add(1, Ordering::Relaxed);
    let answer = store.increment_alone(id, key, by, now).await;
    drop(lead);
    answer
}

/// Takes a queued increment back when its caller's future is dropped.
struct Withdraw<'a> {
    combiner: &'a IncrementCombiner,
    counter: Counter,
    ticket: u64,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.combiner.withdraw(&self.counter, self.ticket);
    }
}

/// Held by the caller whose increment is on its way: when it is answered,
/// or the caller goes away, the increments queued meanwhile go next.
struct Lead<'a, S: CombinedIncrements> {
    store: &'a S,
    counter: Option<Counter>,
}

impl<S: CombinedIncrements> Drop for Lead<'_, S> {
    fn drop(&mut self) {
        let Some(counter) = self.counter.take() else {
            return;
        };
        let Some(queued) = next_or_done(self.store.combiner(), &counter) else {
            return;
        };
        let serving = Serving {
            store: self.store.handle(),
            counter,
            in_map: true,
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(serve(serving, queued))),
            // Nothing to run them on: dropping `serving` answers them
            // `Unanswered`, and the counter starts afresh.
            Err(_) => drop((serving, queued)),
        }
    }
}

/// The increments queued for `counter`, or `None` after taking `counter`
/// out of the map when none are.
fn next_or_done(combiner: &IncrementCombiner, counter: &Counter) -> Option<Vec<Waiting>> {
    let mut counters = combiner.counters();
    match counters.get_mut(counter) {
        Some(waiting) if !waiting.is_empty() => Some(std::mem::take(waiting)),
        _ => {
            counters.remove(counter);
            None
        }
    }
}

/// Owns a counter's place in the map while its queued increments run; if
/// the task running them ends early (dropped, or a panic), the counter
/// leaves the map and the increments queued for it are answered
/// `Unanswered`, so that later ones do not wait for a task that is gone.
struct Serving<S: CombinedIncrements> {
    store: S,
    counter: Counter,
    /// Whether the counter's entry in the map is still this task's.
    in_map: bool,
}

impl<S: CombinedIncrements> Drop for Serving<S> {
    fn drop(&mut self) {
        if self.in_map {
            self.store.combiner().counters().remove(&self.counter);
        }
    }
}

/// Runs the increments queued for a counter, and those queued while they
/// run, until none are left.
async fn serve<S: CombinedIncrements>(mut serving: Serving<S>, mut queued: Vec<Waiting>) {
    loop {
        let (id, key) = &serving.counter;
        run(&serving.store, id, key, queued).await;
        match next_or_done(serving.store.combiner(), &serving.counter) {
            Some(next) => queued = next,
            None => {
                // Out of the map already: another caller may have put it
                // back, and that entry is not this task's to remove.
                serving.in_map = false;
                return;
            }
        }
    }
}

/// Runs `queued` in order, as few increments as the signs allow, and
/// answers each caller.
async fn run<S: CombinedIncrements>(store: &S, id: &SessionId, key: &str, queued: Vec<Waiting>) {
    let mut queued = queued.into_iter().peekable();
    while let Some(first) = queued.next() {
        let negative = first.by < 0;
        let mut sum = first.by;
        let mut group = vec![first];
        while let Some(next) = queued.peek() {
            match sum.checked_add(next.by) {
                Some(more) if (next.by < 0) == negative => {
                    sum = more;
                    group.extend(queued.next());
                }
                _ => break,
            }
        }
        run_group(store, id, key, group, sum).await;
    }
}

/// Runs `group` (of one sign, adding up to `sum`) as one increment.
async fn run_group<S: CombinedIncrements>(
    store: &S,
    id: &SessionId,
    key: &str,
    group: Vec<Waiting>,
    sum: i64,
) {
    if group.len() > 1 {
        let now = group.iter().map(|queued| queued.now).max().unwrap_or(0);
        #[cfg(test)]
        store.combiner().sent.fetch_add(1, Ordering::Relaxed);
        match store.increment_alone(id, key, sum, now).await {
            Ok(Some(total)) => {
                // Each caller's value, as if each had run in turn: what the
                // counter held before the sum, plus the increments up to
                // and including its own.
                let mut value = total.checked_sub(sum);
                for queued in group {
                    value = value.and_then(|value| value.checked_add(queued.by));
                    let answer = value.map(Some).ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "incrementing {key:?} by {sum} gave {total}, out of range"
                        ))
                    });
                    let _ = queued.answer.send(answer);
                }
                return;
            }
            Ok(None) => {
                for queued in group {
                    let _ = queued.answer.send(Ok(None));
                }
                return;
            }
            // Refused, so nothing landed: each runs alone below, for its
            // own answer.
            Err(StoreError::WrongType { .. } | StoreError::Unrepresentable(_)) => {}
            Err(error) => {
                let each = for_each_caller(error);
                for queued in group {
                    let _ = queued.answer.send(Err(each()));
                }
                return;
            }
        }
    }
    for queued in group {
        #[cfg(test)]
        store.combiner().sent.fetch_add(1, Ordering::Relaxed);
        let answer = store.increment_alone(id, key, queued.by, queued.now).await;
        let _ = queued.answer.send(answer);
    }
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

fn copy_of(error: &StoreError) -> StoreError {
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
        StoreError::Corrupt(why) => StoreError::Corrupt(why.clone()),
        StoreError::Unrepresentable(why) => StoreError::Unrepresentable(why.clone()),
        StoreError::Config(why) => StoreError::Config(why.clone()),
    }
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

    /// A memory store whose increments wait at a gate the test holds, so
    /// that others queue behind them, and fail while `down` is set.
    #[derive(Clone)]
    struct Gated {
        memory: Arc<MemoryStore>,
        combiner: Arc<IncrementCombiner>,
        gate: Arc<RwLock<()>>,
        down: Arc<AtomicBool>,
    }

    impl CombinedIncrements for Gated {
        fn combiner(&self) -> &IncrementCombiner {
            &self.combiner
        }

        fn handle(&self) -> Self {
            self.clone()
        }

        async fn increment_alone(&self, id: &SessionId, key: &str, by: i64, now: u64) -> Answer {
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
        store.combiner.counters().values().map(Vec::len).sum()
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
    ) -> Vec<tokio::task::JoinHandle<Answer>> {
        let mut tasks = Vec::new();
        for (at, &by) in by.iter().enumerate() {
            let (caller, id) = (store.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                increment(&caller, &id, "n", by, 2).await
            }));
            // Until this one is on its way or queued, so the order is `by`'s.
            while store_sent_or_queued(store) < at + 1 {
                tokio::task::yield_now().await;
            }
        }
        tasks
    }

    fn store_sent_or_queued(store: &Gated) -> usize {
        let on_its_way = store.combiner.counters().len();
        on_its_way + queued(store)
    }

    async fn answers(tasks: Vec<tokio::task::JoinHandle<Answer>>) -> Vec<Answer> {
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("no panic"));
        }
        answers
    }

    fn values(answers: &[Answer]) -> Vec<Option<i64>> {
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
        assert!(store.combiner.counters().is_empty());
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
            "the first alone, the rest as one, none again"
        );
        store.down.store(false, Ordering::Relaxed);
        let after = increment(&store, &id, "n", 1, 2).await.expect("back");
        assert_eq!(after, Some(1));
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
        assert!(store.combiner.counters().is_empty());
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
        while store.combiner.counters().len() < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(queued(&store), 0);
        drop(gate);
        assert_eq!(values(&answers(first).await), vec![Some(1)]);
        assert_eq!(second.await.expect("no panic").expect("answered"), Some(1));
    }
}
