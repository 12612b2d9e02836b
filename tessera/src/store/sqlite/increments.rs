//! Increments that wait for the writer run together.
//!
//! Every write goes through the one writer connection, and between two
//! writes that connection sat idle: its worker thread answered one caller,
//! that caller's task had to run to give the connection back, and the next
//! waiting task had to run to send its statement. Under concurrent requests
//! that gap, not the CPU, bounded the store (a core partly idle while
//! requests queued). So an increment joins a queue and then waits for the
//! writer; whichever caller gets it takes every increment queued by then and
//! runs them one after another in one transaction, without a task switch or
//! a commit between them, while the callers whose increments it took wait
//! for their answers. Each statement sees the ones before it, as if each
//! caller had taken the writer in turn, and they commit together.
//!
//! The batch runs in a task of its own, so a caller that goes away (its
//! request cancelled) never cuts a transaction short; one that goes away
//! before a batch took its increment withdraws it, rather than leave it to
//! land whenever the next caller comes. If anything in a
//! batch of several fails, the transaction rolls back and each caller runs
//! its increment alone, so one caller's error is never another's; but if
//! the write lock could not be had (another process held the file past the
//! busy timeout), every caller gets that error at once, since each alone
//! would only wait the same timeout again, one after another.

use std::future::{poll_fn, Future as _};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;

use sqlx::Connection as _;
use tokio::sync::oneshot;

use super::connections::{Connections, Lease, LeaseError};
use super::INCREMENT_AT_ONCE;

/// At most this many increments share a transaction, so the write lock is
/// never held long; the rest wait for the next caller to get the writer.
const MAX_BATCH: usize = 64;

/// What the one-statement increment answered: the new value's text, or
/// `None` when the statement wrote nothing (no live session, another type,
/// an overflow), which the caller settles in a transaction of its own.
pub(super) type AtOnce = Option<String>;

/// Increments waiting for the writer connection of one file.
#[derive(Debug, Default)]
pub(super) struct IncrementQueue {
    waiting: Mutex<Vec<Queued>>,
    next_ticket: AtomicU64,
    /// Batches of several that failed, for the tests to see that path run.
    #[cfg(test)]
    pub(super) failed_batches: AtomicU64,
}

#[derive(Debug)]
struct Queued {
    ticket: u64,
    increment: Increment,
    answer: oneshot::Sender<Answer>,
}

/// The parameters of [`INCREMENT_AT_ONCE`], in order.
#[derive(Debug)]
pub(super) struct Increment {
    pub(super) id: String,
    pub(super) key: String,
    pub(super) by: i64,
    pub(super) now: i64,
}

#[derive(Debug)]
enum Answer {
    Done(AtOnce),
    /// The batch failed and rolled back: run the increment alone.
    RunAlone(Increment),
    /// The batch never got the write lock: nor would the increment alone.
    Locked(Arc<sqlx::Error>),
}

/// How a queued increment ended for its caller.
#[derive(Debug)]
pub(super) enum Outcome {
    Done(AtOnce),
    /// Run the increment alone: its batch failed and wrote nothing.
    RunAlone(Increment),
    /// It ran alone, and this is its error.
    Failed(sqlx::Error),
    /// Its batch never got the write lock, held elsewhere past the busy
    /// timeout; the increment was not run.
    Locked(Arc<sqlx::Error>),
    /// No writer came free; the increment was taken back, never run.
    NoWriter(LeaseError),
    /// Its batch ended without an answer (its task dropped as the runtime
    /// shuts down), maybe after committing: whether it counted is unknown.
    Unanswered(BatchUnanswered),
}

/// The error of [`Outcome::Unanswered`].
#[derive(Debug, thiserror::Error)]
#[error("the batch of SQLite increments this one joined ended without answering")]
pub(super) struct BatchUnanswered;

impl IncrementQueue {
    /// Runs `increment` through the writer of `writer`, in a batch with
    /// any others waiting for it.
    pub(super) async fn run(&self, writer: &Arc<Connections>, increment: Increment) -> Outcome {
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let (answer, mut answered) = oneshot::channel();
        self.waiting().push(Queued {
            ticket,
            increment,
            answer,
        });
        // A caller that goes away takes its increment back if no batch has
        // taken it yet: otherwise it would wait for the next caller, however
        // late, and land then.
        let _withdraw = Withdraw {
            queue: self,
            ticket,
        };
        loop {
            let acquire = writer.acquire();
            let mut acquire = pin!(acquire);
            let first = poll_fn(|context| {
                // Another caller's batch took this increment: its answer
                // comes when that batch ends.
                if let Poll::Ready(answer) = Pin::new(&mut answered).poll(context) {
                    return Poll::Ready(Err(answer));
                }
                acquire.as_mut().poll(context).map(Ok)
            })
            .await;
            let lease = match first {
                Ok(Ok(lease)) => lease,
                Ok(Err(error)) => {
                    if self.withdraw(ticket) {
                        return Outcome::NoWriter(error);
                    }
                    return outcome(answered.await);
                }
                Err(answer) => return outcome(answer),
            };
            let (batch, still_queued) = {
                let mut waiting = self.waiting();
                let take = waiting.len().min(MAX_BATCH);
                let batch: Vec<Queued> = waiting.drain(..take).collect();
                let still_queued = waiting.iter().any(|queued| queued.ticket == ticket);
                (batch, still_queued)
            };
            if let [only] = batch.as_slice() {
                if only.ticket == ticket {
                    // Alone: one statement, committing by itself, as before
                    // any batching; the caller sees its error as it is.
                    let mut lease = lease;
                    return match at_once(&mut lease, &only.increment).await {
                        Ok(done) => Outcome::Done(done),
                        Err(error) => Outcome::Failed(error),
                    };
                }
            }
            if batch.is_empty() {
                drop(lease);
            } else {
                // Answering callers on other threads: where it runs to its end.
                let batch = crate::store::background::spawn(run_batch(lease, batch));
                #[cfg(test)]
                if matches!(batch.await, Ok(false)) {
                    self.failed_batches.fetch_add(1, Ordering::Relaxed);
                }
                #[cfg(not(test))]
                drop(batch);
            }
            if !still_queued {
                // In this batch or one before: its answer comes when that
                // batch ends.
                return outcome(answered.await);
            }
            // Still queued behind the batch just run for others: wait for
            // the writer again, as no one else may be waiting for it.
        }
    }

    /// Takes the increment of `ticket` out of the queue; false if a batch
    /// took it already.
    fn withdraw(&self, ticket: u64) -> bool {
        let mut waiting = self.waiting();
        let at = waiting.iter().position(|queued| queued.ticket == ticket);
        at.map(|at| waiting.remove(at)).is_some()
    }

    fn waiting(&self) -> MutexGuard<'_, Vec<Queued>> {
        // Pushes and drains leave the list whole, so a panic elsewhere while
        // it was locked leaves nothing half done.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Withdraws a queued increment when its caller's future is dropped.
struct Withdraw<'a> {
    queue: &'a IncrementQueue,
    ticket: u64,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.queue.withdraw(self.ticket);
    }
}

fn outcome(answer: Result<Answer, oneshot::error::RecvError>) -> Outcome {
    match answer {
        Ok(Answer::Done(done)) => Outcome::Done(done),
        Ok(Answer::RunAlone(increment)) => Outcome::RunAlone(increment),
        Ok(Answer::Locked(error)) => Outcome::Locked(error),
        // Running it again could count it twice.
        Err(_) => Outcome::Unanswered(BatchUnanswered),
    }
}

/// Runs `batch` in one transaction and answers each caller; false if it
/// failed and rolled back.
async fn run_batch(mut writer: Lease, batch: Vec<Queued>) -> bool {
    let results = async {
        let mut transaction = writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut results = Vec::with_capacity(batch.len());
        for queued in &batch {
            results.push(at_once(&mut transaction, &queued.increment).await?);
        }
        transaction.commit().await?;
        Ok::<_, sqlx::Error>(results)
    }
    .await;
    // The writer goes back before the answers, so the callers' next writes
    // find it free.
    drop(writer);
    match results {
        Ok(results) => {
            for (queued, result) in batch.into_iter().zip(results) {
                let _ = queued.answer.send(Answer::Done(result));
            }
            true
        }
        Err(error) if super::is_busy_error(&error) => {
            let error = Arc::new(error);
            for queued in batch {
                let _ = queued.answer.send(Answer::Locked(error.clone()));
            }
            false
        }
        Err(error) => {
            tracing::debug!(%error, size = batch.len(), "a batch of increments failed; each runs alone");
            for queued in batch {
                let _ = queued.answer.send(Answer::RunAlone(queued.increment));
            }
            false
        }
    }
}

/// [`INCREMENT_AT_ONCE`] for one increment.
pub(super) async fn at_once(
    connection: &mut sqlx::SqliteConnection,
    increment: &Increment,
) -> Result<AtOnce, sqlx::Error> {
    // The values the current one may hold for `+ by` not to overflow.
    let by = increment.by;
    let (lowest, highest) = if by >= 0 {
        (i64::MIN, i64::MAX - by)
    } else {
        (i64::MIN - by, i64::MAX)
    };
    // All rows rather than the first: a statement committing by itself
    // commits as it ends, after its row came, and only a statement run to
    // its end reports a commit that failed (a full disk) instead of a value
    // never stored.
    let rows: Vec<String> = sqlx::query_scalar(INCREMENT_AT_ONCE)
        .bind(increment.id.as_str())
        .bind(increment.key.as_str())
        .bind(by.to_string())
        .bind(increment.now)
        .bind(by)
        .bind(lowest)
        .bind(highest)
        .fetch_all(connection)
        .await?;
    Ok(rows.into_iter().next())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::live_record;
    use super::super::SqliteStore;
    use super::*;
    use crate::store::{SessionId, SessionStore as _};

    fn increment_of(id: &SessionId) -> Increment {
        Increment {
            id: id.as_str().to_owned(),
            key: "n".to_owned(),
            by: 1,
            now: 2,
        }
    }

    /// With the file's write lock held by another process past the busy
    /// timeout, increments queued together all fail together, with the
    /// batch: each run alone would wait the same timeout again, one after
    /// another (15 to 20 s for four). One that got the writer first waits
    /// the timeout alone, and those queued behind it one timeout more, in
    /// one batch. Nothing counts, and the store works once the lock is let
    /// go.
    #[tokio::test]
    async fn a_batch_that_cannot_get_the_write_lock_fails_every_caller_at_once() {
        use sqlx::Connection as _;
        let dir =
            std::env::temp_dir().join(format!("tessera-sqlite-locked-{}", std::process::id()));
        let path = dir.join("sessions.db");
        let store = Arc::new(SqliteStore::open(&path).await.expect("open"));
        // Sessions of their own: increments of one session are combined
        // before they reach the store.
        let ids: Vec<SessionId> = (0..4).map(|_| SessionId::generate()).collect();
        for id in &ids {
            assert!(store.create(id, &live_record()).await.expect("create"));
        }
        let mut locker = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("another connection");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut locker)
            .await
            .expect("the write lock");
        let started = std::time::Instant::now();
        let callers: Vec<_> = ids
            .iter()
            .map(|id| {
                let store = store.clone();
                let id = id.clone();
                tokio::spawn(async move { store.increment(&id, "n", 1, 2).await })
            })
            .collect();
        for caller in callers {
            let result = caller.await.expect("no panic");
            assert!(
                matches!(result, Err(crate::store::StoreError::Unavailable(_))),
                "{result:?}"
            );
        }
        let waited = started.elapsed();
        assert!(
            waited < super::super::BUSY_TIMEOUT * 3,
            "{waited:?} for four increments"
        );
        sqlx::query("ROLLBACK")
            .execute(&mut locker)
            .await
            .expect("let go");
        for id in &ids {
            assert_eq!(
                store.increment(id, "n", 1, 2).await.expect("works"),
                Some(1)
            );
        }
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A caller that gets the writer while a full batch of others' increments
    /// is queued ahead of its own runs that batch, then, with no one else
    /// waiting, its own.
    #[tokio::test]
    async fn a_caller_queued_behind_a_full_batch_it_ran_is_answered() {
        let dir =
            std::env::temp_dir().join(format!("tessera-sqlite-behind-{}", std::process::id()));
        let store = SqliteStore::open(dir.join("sessions.db"))
            .await
            .expect("open");
        let id = SessionId::generate();
        assert!(store.create(&id, &live_record()).await.expect("create"));
        let connections = store.connections().await.expect("open");
        let queue = IncrementQueue::default();
        let mut ahead = Vec::new();
        for at in 0..MAX_BATCH {
            let (answer, answered) = oneshot::channel();
            queue.waiting().push(Queued {
                ticket: u64::MAX - at as u64,
                increment: increment_of(&id),
                answer,
            });
            ahead.push(answered);
        }
        let own = tokio::time::timeout(
            Duration::from_secs(10),
            queue.run(&connections.write, increment_of(&id)),
        )
        .await
        .expect("answered");
        let expected = (MAX_BATCH + 1).to_string();
        assert!(
            matches!(&own, Outcome::Done(Some(total)) if *total == expected),
            "{own:?}"
        );
        for (at, answered) in ahead.into_iter().enumerate() {
            let total = (at + 1).to_string();
            assert!(
                matches!(answered.await, Ok(Answer::Done(Some(ref got))) if *got == total),
                "increment {at} ahead"
            );
        }
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
