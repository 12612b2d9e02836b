//! The connections of one SQLite file, lent out without sqlx's pool.
//!
//! sqlx's pool pings every connection it takes back: a round trip to the
//! connection's worker thread, in a task of its own, meant to catch network
//! connections that broke mid-statement. An in-process database has no such
//! failure, yet paid for a ping after every operation (a request that reads
//! and increments its session made two), and with a single writer
//! connection every write waited for the ping of the one before. Here a connection goes straight back to the idle list
//! when its lease is dropped.
//!
//! A connection whose lease was dropped mid-statement is safe to lend again:
//! its worker thread runs commands in the order they were sent, a statement
//! whose rows nobody reads stops at its next row, and a transaction dropped
//! before its end queues its rollback ahead of anything the next holder
//! sends.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::ConnectOptions as _;
use sqlx::Connection as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Up to a fixed number of connections to one file, opened when first
/// needed and kept open until [`close`](Self::close).
#[derive(Debug)]
pub(super) struct Connections {
    options: SqliteConnectOptions,
    /// One permit per connection that may be lent; tokio's semaphore is
    /// fair, so waiting operations are served in the order they came.
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<SqliteConnection>>,
    max_connections: u32,
    acquire_timeout: Duration,
}

/// Why no connection was lent.
#[derive(Debug, thiserror::Error)]
pub(super) enum LeaseError {
    #[error("no SQLite connection came free within {0:?}")]
    TimedOut(Duration),
    #[error("the SQLite session store was closed")]
    Closed,
    #[error(transparent)]
    Connect(#[from] sqlx::Error),
}

impl Connections {
    pub(super) fn new(
        options: SqliteConnectOptions,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            options,
            permits: Arc::new(Semaphore::new(max_connections as usize)),
            idle: Mutex::new(Vec::new()),
            max_connections,
            acquire_timeout,
        })
    }

    /// A connection of its own until the lease is dropped: an idle one, or
    /// a new one while fewer than the maximum are open.
    pub(super) async fn acquire(self: &Arc<Self>) -> Result<Lease, LeaseError> {
        let permit =
            tokio::time::timeout(self.acquire_timeout, self.permits.clone().acquire_owned())
                .await
                .map_err(|_| LeaseError::TimedOut(self.acquire_timeout))?
                .map_err(|_| LeaseError::Closed)?;
        let idle = self.idle().pop();
        let connection = match idle {
            Some(connection) => self.usable(connection).await?,
            None => self.options.connect().await?,
        };
        Ok(Lease {
            connection: Some(connection),
            connections: Arc::clone(self),
            _permit: permit,
        })
    }

    /// Waits for the connections lent out to come back, closes them all and
    /// makes every later [`acquire`](Self::acquire) fail. Operations already
    /// waiting for a connection are served first: the semaphore is fair.
    pub(super) async fn close(&self) {
        for connection in self.take_all().await {
            // Closing waits for the worker thread to finish; an error means
            // it is gone already, which is what closing wants.
            let _ = connection.close().await;
        }
    }

    /// As [`close`](Self::close), but the connections are left open, to end
    /// with the process: closing the last one checkpoints the log with this
    /// process's index of it and deletes it, which after the `-shm` file was
    /// replaced would lose what other processes wrote there since.
    pub(super) async fn abandon(&self) {
        for connection in self.take_all().await {
            std::mem::forget(connection);
        }
    }

    /// Every connection, once none is lent, with nothing lent from then on.
    async fn take_all(&self) -> Vec<SqliteConnection> {
        // Taken only to wait; the semaphore is closed while they are held.
        let _all = self.permits.acquire_many(self.max_connections).await;
        self.permits.close();
        std::mem::take(&mut *self.idle())
    }

    /// `connection`, or a new one in its place if it is stuck in a
    /// transaction. A transaction dropped midway has queued its rollback,
    /// which its worker runs before anything sent after it; still in a
    /// transaction once that has run means the rollback failed: SQLite had
    /// rolled back by itself, as it does when a `COMMIT` fails on a full disk
    /// or an I/O error, and sqlx, which counts transactions apart from
    /// SQLite, would refuse every later `BEGIN` on this connection.
    async fn usable(
        &self,
        mut connection: SqliteConnection,
    ) -> Result<SqliteConnection, sqlx::Error> {
        if !connection.is_in_transaction() {
            return Ok(connection);
        }
        // Runs after the queued rollback.
        let _ = connection.ping().await;
        if !connection.is_in_transaction() {
            return Ok(connection);
        }
        // Closing rolls back whatever SQLite may still hold open.
        let _ = connection.close().await;
        self.options.connect().await
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<SqliteConnection>> {
        // The list is consistent between any two statements, so a panic
        // elsewhere while it was locked leaves nothing half done.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One connection, lent until dropped.
#[derive(Debug)]
pub(super) struct Lease {
    /// `Some` until the lease is dropped.
    connection: Option<SqliteConnection>,
    connections: Arc<Connections>,
    /// Dropped after the connection is back on the idle list (fields drop
    /// after [`Drop::drop`]), so the next holder finds it there.
    _permit: OwnedSemaphorePermit,
}

impl Deref for Lease {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        self.connection
            .as_ref()
            .expect("a lease holds its connection until dropped")
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.connection
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            // After `close`, dropping the connection ends its worker thread.
            if !self.connections.permits.is_closed() {
                self.connections.idle().push(connection);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_memory() -> SqliteConnectOptions {
        SqliteConnectOptions::new().in_memory(true)
    }

    #[tokio::test]
    async fn connections_are_reused_and_bounded() {
        let connections = Connections::new(in_memory(), 2, Duration::from_millis(50));
        let mut first = connections.acquire().await.expect("first");
        // A TEMP table lives on its connection: seeing it again later
        // shows the same connection was lent again.
        sqlx::query("CREATE TEMP TABLE marker (x)")
            .execute(&mut *first)
            .await
            .expect("create");
        let second = connections.acquire().await.expect("second");
        assert!(matches!(
            connections.acquire().await,
            Err(LeaseError::TimedOut(_))
        ));
        drop(second);
        drop(first);
        // The most recently returned first: `first`'s connection.
        let mut again = connections.acquire().await.expect("again");
        sqlx::query("SELECT x FROM marker")
            .fetch_all(&mut *again)
            .await
            .expect("the same connection");
    }

    #[tokio::test]
    async fn a_waiting_operation_gets_the_connection_given_back() {
        let connections = Connections::new(in_memory(), 1, Duration::from_secs(5));
        let held = connections.acquire().await.expect("held");
        let waiting = tokio::spawn({
            let connections = Arc::clone(&connections);
            async move { connections.acquire().await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(held);
        waiting.await.expect("task").expect("lent once given back");
    }

    #[tokio::test]
    async fn a_transaction_dropped_midway_is_rolled_back_before_the_next_holder() {
        let connections = Connections::new(in_memory(), 1, Duration::from_secs(5));
        let mut lease = connections.acquire().await.expect("lease");
        sqlx::query("CREATE TABLE t (x)")
            .execute(&mut *lease)
            .await
            .expect("create");
        {
            let mut tx = lease.begin_with("BEGIN IMMEDIATE").await.expect("begin");
            sqlx::query("INSERT INTO t VALUES (1)")
                .execute(&mut *tx)
                .await
                .expect("insert");
        }
        drop(lease);
        let mut next = connections.acquire().await.expect("next");
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&mut *next)
            .await
            .expect("count");
        assert_eq!(count, 0);
        // Not left inside a transaction: this one would fail if it were.
        let tx = next
            .begin_with("BEGIN IMMEDIATE")
            .await
            .expect("begin again");
        tx.commit().await.expect("commit");
    }

    #[tokio::test]
    async fn a_connection_whose_rollback_failed_is_replaced() {
        let connections = Connections::new(in_memory(), 1, Duration::from_secs(5));
        let mut lease = connections.acquire().await.expect("lease");
        {
            let mut tx = lease.begin_with("BEGIN IMMEDIATE").await.expect("begin");
            // SQLite's transaction ends behind sqlx's back, as when a failed
            // COMMIT rolls back by itself: the rollback sqlx queues when the
            // transaction is dropped then fails.
            sqlx::query("ROLLBACK")
                .execute(&mut *tx)
                .await
                .expect("rollback");
        }
        drop(lease);
        let mut next = connections.acquire().await.expect("next");
        let tx = next
            .begin_with("BEGIN IMMEDIATE")
            .await
            .expect("a transaction begins on the connection lent next");
        tx.commit().await.expect("commit");
    }

    #[tokio::test]
    async fn close_waits_for_lent_connections_then_lends_nothing() {
        let connections = Connections::new(in_memory(), 2, Duration::from_secs(5));
        let idle = connections.acquire().await.expect("idle");
        let lent = connections.acquire().await.expect("lent");
        drop(idle);
        let closing = tokio::spawn({
            let connections = Arc::clone(&connections);
            async move { connections.close().await }
        });
        tokio::task::yield_now().await;
        assert!(!closing.is_finished());
        drop(lent);
        closing.await.expect("closed");
        assert!(matches!(
            connections.acquire().await,
            Err(LeaseError::Closed)
        ));
        assert!(connections.idle().is_empty());
    }
}
