//! A store for the layer tests that counts every call it delegates, and can
//! be switched off to act like a store that is down.

// Each test file that includes this uses a part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tessera::{
    Changes, MemoryStore, Record, SessionId, SessionInfo, SessionStore, StoreError, UpdateOutcome,
    Value,
};

#[derive(Debug)]
pub(crate) struct CountingStore<S: ?Sized = dyn SessionStore> {
    /// The store every call goes to.
    pub(crate) inner: Arc<S>,
    loads: AtomicUsize,
    writes: AtomicUsize,
    /// While set, every call but the sweep fails as if the store were down.
    pub(crate) down: AtomicBool,
    /// While set, updates fail as if the store went down just before them.
    pub(crate) updates_down: AtomicBool,
    /// While set, every call but the sweep fails as a store that answers but
    /// cannot be used as configured (tables of another shape, say).
    pub(crate) misconfigured: AtomicBool,
    /// While set, updates fail so.
    pub(crate) updates_misconfigured: AtomicBool,
    /// While set, deletions fail as if the store went down just before them.
    pub(crate) deletes_down: AtomicBool,
    /// While set, deletions fail as on tables of another shape.
    pub(crate) deletes_misconfigured: AtomicBool,
    /// When set, the next create is made but answered as failed, as when
    /// the store goes down before its answer arrives (and the switch goes
    /// off).
    pub(crate) next_create_answer_lost: AtomicBool,
    /// When set, the next move (`cycle_id`) is made but answered as failed
    /// (and the switch goes off).
    pub(crate) next_cycle_answer_lost: AtomicBool,
    /// When set, the next load fails as if the store went down just then
    /// (and the switch goes off).
    pub(crate) next_load_fails: AtomicBool,
    /// While set, updates wait (a row locked elsewhere, a stalled server);
    /// those waiting go on once it is cleared.
    pub(crate) updates_stall: AtomicBool,
    /// While set, a session moved by `cycle_id` ends right after the move,
    /// as if logged out everywhere from another device at that moment.
    pub(crate) ends_after_a_move: AtomicBool,
    /// While set, a session appended to moves to a new id right after the
    /// append, as if a login in another tab moved it at that moment.
    pub(crate) moves_after_an_append: AtomicBool,
    /// While set, creates, moves, increments and appends let other tasks
    /// run first, as a store across the network does while it waits.
    pub(crate) writes_wait: AtomicBool,
    /// Sweepers started on this store (each asks for the setup warnings
    /// first).
    sweepers_started: AtomicUsize,
}

/// Counting in front of a memory store.
impl Default for CountingStore<MemoryStore> {
    fn default() -> Self {
        Self::new(Arc::new(MemoryStore::default()))
    }
}

impl<S: SessionStore + ?Sized> CountingStore<S> {
    pub(crate) fn new(inner: Arc<S>) -> Self {
        Self {
            inner,
            loads: AtomicUsize::new(0),
            writes: AtomicUsize::new(0),
            down: AtomicBool::new(false),
            updates_down: AtomicBool::new(false),
            misconfigured: AtomicBool::new(false),
            updates_misconfigured: AtomicBool::new(false),
            deletes_down: AtomicBool::new(false),
            deletes_misconfigured: AtomicBool::new(false),
            updates_stall: AtomicBool::new(false),
            next_load_fails: AtomicBool::new(false),
            next_create_answer_lost: AtomicBool::new(false),
            next_cycle_answer_lost: AtomicBool::new(false),
            ends_after_a_move: AtomicBool::new(false),
            moves_after_an_append: AtomicBool::new(false),
            writes_wait: AtomicBool::new(false),
            sweepers_started: AtomicUsize::new(0),
        }
    }

    /// Sweepers started on this store so far.
    pub(crate) fn sweepers_started(&self) -> usize {
        self.sweepers_started.load(Ordering::SeqCst)
    }

    /// Reads (loads and listings) so far.
    pub(crate) fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }

    /// Reads and writes so far.
    pub(crate) fn calls(&self) -> (usize, usize) {
        (self.loads(), self.writes.load(Ordering::SeqCst))
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::unavailable(std::io::Error::other(
                "store is down",
            )))
        } else if self.misconfigured.load(Ordering::SeqCst) {
            Err(misconfigured())
        } else {
            Ok(())
        }
    }

    fn read(&self) -> Result<(), StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.check()
    }

    fn wrote(&self) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.check()
    }

    /// Lets other tasks run a few turns while `writes_wait` is set.
    async fn waiting(&self) {
        if self.writes_wait.load(Ordering::SeqCst) {
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
        }
    }

    /// An update's write, waiting or failing as the update switches say.
    async fn updating(&self) -> Result<(), StoreError> {
        self.wrote()?;
        while self.updates_stall.load(Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        if self.updates_down.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable(std::io::Error::other(
                "store is down",
            )));
        }
        if self.updates_misconfigured.load(Ordering::SeqCst) {
            return Err(misconfigured());
        }
        Ok(())
    }
}

fn misconfigured() -> StoreError {
    StoreError::config("the session tables are not as tessera makes them")
}

#[async_trait::async_trait]
impl<S: SessionStore + ?Sized> SessionStore for CountingStore<S> {
    async fn load(&self, id: &SessionId, now: u64) -> Result<Option<Record>, StoreError> {
        self.read()?;
        if self.next_load_fails.swap(false, Ordering::SeqCst) {
            return Err(StoreError::unavailable(std::io::Error::other(
                "store is down",
            )));
        }
        self.inner.load(id, now).await
    }
    async fn create(&self, id: &SessionId, record: &Record) -> Result<bool, StoreError> {
        self.wrote()?;
        self.waiting().await;
        let created = self.inner.create(id, record).await?;
        if self.next_create_answer_lost.swap(false, Ordering::SeqCst) {
            return Err(StoreError::unavailable(std::io::Error::other(
                "the connection dropped before the answer",
            )));
        }
        Ok(created)
    }
    async fn update(
        &self,
        id: &SessionId,
        changes: &Changes,
        now: u64,
    ) -> Result<bool, StoreError> {
        self.updating().await?;
        self.inner.update(id, changes, now).await
    }
    async fn update_or_delete_if_empty(
        &self,
        id: &SessionId,
        changes: &Changes,
        now: u64,
    ) -> Result<UpdateOutcome, StoreError> {
        self.updating().await?;
        self.inner.update_or_delete_if_empty(id, changes, now).await
    }
    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.wrote()?;
        if self.deletes_down.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable(std::io::Error::other(
                "store is down",
            )));
        }
        if self.deletes_misconfigured.load(Ordering::SeqCst) {
            return Err(misconfigured());
        }
        self.inner.delete(id).await
    }
    async fn cycle_id(
        &self,
        old: &SessionId,
        new: &SessionId,
        now: u64,
    ) -> Result<bool, StoreError> {
        self.wrote()?;
        self.waiting().await;
        let moved = self.inner.cycle_id(old, new, now).await?;
        if moved && self.ends_after_a_move.load(Ordering::SeqCst) {
            self.inner.delete(new).await?;
        }
        if self.next_cycle_answer_lost.swap(false, Ordering::SeqCst) {
            return Err(StoreError::unavailable(std::io::Error::other(
                "the connection dropped before the answer",
            )));
        }
        Ok(moved)
    }
    async fn increment(
        &self,
        id: &SessionId,
        key: &str,
        by: i64,
        now: u64,
    ) -> Result<Option<i64>, StoreError> {
        self.wrote()?;
        self.waiting().await;
        self.inner.increment(id, key, by, now).await
    }
    async fn append(
        &self,
        id: &SessionId,
        key: &str,
        value: &Value,
        now: u64,
    ) -> Result<Option<usize>, StoreError> {
        self.wrote()?;
        self.waiting().await;
        let length = self.inner.append(id, key, value, now).await?;
        if length.is_some() && self.moves_after_an_append.load(Ordering::SeqCst) {
            self.inner.cycle_id(id, &SessionId::generate(), now).await?;
        }
        Ok(length)
    }
    async fn list(
        &self,
        user_id: Option<&str>,
        after: Option<&SessionId>,
        limit: usize,
        now: u64,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        self.read()?;
        self.inner.list(user_id, after, limit, now).await
    }
    async fn delete_user(&self, user_id: &str) -> Result<u64, StoreError> {
        self.wrote()?;
        self.inner.delete_user(user_id).await
    }
    async fn purge_expired(&self, now: u64, batch: usize) -> Result<u64, StoreError> {
        self.inner.purge_expired(now, batch).await
    }

    async fn setup_warnings(&self) -> Result<Vec<String>, StoreError> {
        self.sweepers_started.fetch_add(1, Ordering::SeqCst);
        self.inner.setup_warnings().await
    }
}
