//! Sessions in process memory: for tests, development and single-process apps.

use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{
    append_in_map, incremented, worth_keeping, Changes, Record, SessionId, SessionInfo,
    SessionStore, StoreError, UpdateOutcome,
};
use crate::value::Value;

/// The default bound on stored sessions.
pub const DEFAULT_MAX_SESSIONS: usize = 100_000;

/// The default bound on the memory the stored sessions take, as the store
/// estimates it (see [`MemoryStore::with_max_bytes`]): 256 MiB. The bound
/// on sessions alone let sessions of 64 KiB each (what the demo lets a
/// visitor store) take 6.4 GB.
pub const DEFAULT_MAX_BYTES: usize = 256 * 1024 * 1024;

/// The least byte bound [`MemoryStore::with_max_bytes`] takes.
pub(crate) const MIN_MAX_BYTES: usize = 4096;

/// What an entry in the store's map and indexes costs beside its record's
/// values, estimated: the id (twice, in the map and the deadline index),
/// the record's fields, the map's and index's own share.
const RECORD_OVERHEAD: usize = 256;

/// How many expired sessions a creation in a full store purges at most.
const MAKE_ROOM_PURGE: usize = 64;

/// The log of evictions from full stores, for the whole process.
static EVICTIONS: super::OutageLog =
    super::OutageLog::of_events("memory session store full", "evictions");

/// A [`SessionStore`] in a `HashMap`, bounded in sessions and in bytes.
///
/// When full (as many sessions as its bound, or its sessions' estimated
/// size over its byte bound), expired sessions are purged first (a few at a
/// time); if none are, the sessions closest to expiry are evicted, so memory
/// stays bounded under any load. The session being written is never the
/// one evicted: one larger than the whole byte bound stays, alone.
/// Everything is lost when the process exits. `Debug` shows how many
/// sessions it holds, never what they hold.
pub struct MemoryStore {
    inner: Mutex<Inner>,
    max_sessions: usize,
    max_bytes: usize,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("sessions", &self.len())
            .field("max_sessions", &self.max_sessions)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

#[derive(Default)]
struct Inner {
    records: HashMap<SessionId, Stored>,
    /// The records' estimated sizes (`Stored::bytes`), added up.
    bytes: usize,
    /// One entry per record, `(indexed, id)`, so purging and eviction take
    /// the dead and the soonest to die without scanning every session.
    by_deadline: BTreeSet<(Indexed, SessionId)>,
    /// The next entry's place among those of the same deadline.
    next_order: u64,
    /// Ids removed recently, so none is handed out again. Bounded by
    /// forgetting the oldest once it holds as many as the session bound.
    retired: HashSet<SessionId>,
    retired_order: VecDeque<SessionId>,
    /// `(user, id)` of each record that has a user, so a user's are
    /// together in id order: a user's listing and "log out everywhere" read
    /// these, not every session. (One set for all: a set per user cost
    /// some 470 bytes for each user's first session.)
    by_user: BTreeSet<(String, SessionId)>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_SESSIONS)
    }
}

impl MemoryStore {
    /// `changes` applied under the lock, and the record deleted if asked
    /// and left with no data and no owner.
    fn apply(
        &self,
        id: &SessionId,
        changes: &Changes,
        now: u64,
        delete_if_empty: bool,
    ) -> UpdateOutcome {
        let mut inner = self.lock();
        let Some(record) = inner.live_mut(id, now) else {
            return UpdateOutcome::Vanished;
        };
        let extends = changes.expires_at.is_none_or(|at| at >= record.expires_at)
            && changes.absolute_expires_at.is_none();
        let owner_before = changes.user_id.is_some().then(|| record.user_id.clone());
        // What the changed keys and the owner took, and take now: a write
        // costs what it changes, not a walk of the whole session.
        let changed = ChangedKeys::of(changes);
        let before = changed.bytes(record);
        changes.apply_to(record);
        let after = changed.bytes(record);
        let keep = !delete_if_empty || worth_keeping(&record.data, record.user_id.as_deref());
        let owner_change = owner_before
            .filter(|before| *before != record.user_id)
            .map(|before| (before, record.user_id.clone()));
        if let Some((before, after)) = owner_change {
            inner.unindex_user(id, before.as_deref());
            inner.index_user(id, after);
        }
        if !keep {
            inner.remove(id);
            inner.retire(id.clone(), self.max_sessions);
            return UpdateOutcome::Deleted;
        }
        if !extends {
            inner.reindex_if_earlier(id);
        }
        inner.resized(id, before, after, now, self.max_bytes);
        UpdateOutcome::Updated
    }

    /// A store holding at most `max_sessions` sessions (0 counts as 1), in
    /// at most [`DEFAULT_MAX_BYTES`].
    pub fn new(max_sessions: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_sessions: max_sessions.max(1),
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    /// The same store with its sessions kept in at most `max_bytes`, as
    /// estimated from their contents (the text of keys and values, a fixed
    /// share per value and per session for the structures that hold them):
    /// what the process holds for them is of that order, not exactly it.
    /// A session whose write takes the store over it stays, and those
    /// closest to expiry go. Less than 4096 counts as 4096: room for a
    /// small session or so (less would have every write evict every other
    /// session).
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes.max(MIN_MAX_BYTES);
        self
    }

    /// How many records are held, live or not yet purged.
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Whether no records are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every operation leaves the map consistent, even if it panicked.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A record and where the deadline index has it.
struct Stored {
    record: Record,
    /// The record's estimated size (see [`approximate_bytes`]).
    bytes: usize,
    /// Never later than the record's deadline: a save that extends the
    /// expiry, the usual case, leaves the index alone, and the entry is moved
    /// only when it comes up (in a purge or an eviction) too early.
    indexed: Indexed,
}

/// Where the deadline index has a record: a time no later than its
/// deadline, then the order in which entries came into the index (a
/// creation, a new id, or the index catching up with an expiry a save
/// extended, which it does lazily). Of sessions created in the same second,
/// and not saved since, the first goes first: ordered by id, a flood's
/// evictions took a session acknowledged a moment before as soon as one
/// acknowledged seconds before.
type Indexed = (u64, u64);

impl Inner {
    fn insert(&mut self, id: SessionId, record: Record) {
        let due = record.deadline();
        let owner = record.user_id.clone();
        let bytes = approximate_bytes(&record);
        self.bytes += bytes;
        let indexed = (due, self.next_order);
        self.next_order += 1;
        let stored = Stored {
            record,
            bytes,
            indexed,
        };
        if let Some(replaced) = self.records.insert(id.clone(), stored) {
            self.bytes -= replaced.bytes;
            self.by_deadline.remove(&(replaced.indexed, id.clone()));
            self.unindex_user(&id, replaced.record.user_id.as_deref());
        }
        self.index_user(&id, owner);
        self.by_deadline.insert((indexed, id));
    }

    fn remove(&mut self, id: &SessionId) -> Option<Record> {
        let stored = self.records.remove(id)?;
        self.bytes -= stored.bytes;
        self.by_deadline.remove(&(stored.indexed, id.clone()));
        self.unindex_user(id, stored.record.user_id.as_deref());
        Some(stored.record)
    }

    fn index_user(&mut self, id: &SessionId, owner: Option<String>) {
        if let Some(owner) = owner {
            self.by_user.insert((owner, id.clone()));
        }
    }

    fn unindex_user(&mut self, id: &SessionId, owner: Option<&str>) {
        if let Some(owner) = owner {
            self.by_user.remove(&(owner.to_owned(), id.clone()));
        }
    }

    /// The ids of `user`'s records after `after`, in id order.
    fn ids_of<'a>(
        &'a self,
        user: &'a str,
        after: Option<&SessionId>,
    ) -> impl Iterator<Item = &'a SessionId> + 'a {
        use std::ops::Bound;
        let start = match after {
            Some(after) => Bound::Excluded((user.to_owned(), after.clone())),
            // No id sorts before the empty one.
            None => Bound::Included((user.to_owned(), SessionId(Arc::from("")))),
        };
        self.by_user
            .range((start, Bound::Unbounded))
            .take_while(move |(owner, _)| owner == user)
            .map(|(_, id)| id)
    }

    /// Keeps the index entry of `id` no later than its deadline.
    fn reindex_if_earlier(&mut self, id: &SessionId) {
        let Some(stored) = self.records.get_mut(id) else {
            return;
        };
        let due = stored.record.deadline();
        if due < stored.indexed.0 {
            self.by_deadline.remove(&(stored.indexed, id.clone()));
            stored.indexed = (due, self.next_order);
            self.next_order += 1;
            self.by_deadline.insert((stored.indexed, id.clone()));
        }
    }

    /// The index's first entry, moved to its record's deadline until it is
    /// there: the record that dies soonest, and when. An entry is moved at
    /// most once per extension of its session, when its old deadline comes
    /// up, so the moves cost what updating the index on every save would,
    /// but only for sessions still alive then, and never on the request path
    /// of a save.
    fn soonest(&mut self) -> Option<(u64, SessionId)> {
        loop {
            let (indexed, id) = self.by_deadline.first().cloned()?;
            let Some(stored) = self.records.get_mut(&id) else {
                // Cannot happen (every removal takes its entry); never loop on it.
                self.by_deadline.pop_first();
                continue;
            };
            let due = stored.record.deadline();
            if due == indexed.0 {
                return Some((due, id));
            }
            self.by_deadline.pop_first();
            stored.indexed = (due, self.next_order);
            self.next_order += 1;
            self.by_deadline.insert((stored.indexed, id));
        }
    }

    /// Removes up to `batch` records dead at `now`; how many.
    fn purge(&mut self, now: u64, batch: usize) -> usize {
        let mut purged = 0;
        while purged < batch {
            match self.soonest() {
                Some((due, id)) if due <= now => {
                    self.remove(&id);
                    purged += 1;
                }
                _ => break,
            }
        }
        purged
    }

    fn live_mut(&mut self, id: &SessionId, now: u64) -> Option<&mut Record> {
        self.records
            .get_mut(id)
            .map(|stored| &mut stored.record)
            .filter(|record| record.is_live(now))
    }

    fn retire(&mut self, id: SessionId, bound: usize) {
        if self.retired.insert(id.clone()) {
            self.retired_order.push_back(id);
        }
        while self.retired_order.len() > bound {
            if let Some(oldest) = self.retired_order.pop_front() {
                self.retired.remove(&oldest);
            }
        }
    }

    fn is_taken(&self, id: &SessionId) -> bool {
        self.records.contains_key(id) || self.retired.contains(id)
    }

    /// Takes a change in place of `id`'s record into its size and the
    /// total (the part it changed took `before` bytes and takes `after`),
    /// and brings the total back under `max_bytes` if it went over.
    fn resized(&mut self, id: &SessionId, before: usize, after: usize, now: u64, max_bytes: usize) {
        let Some(stored) = self.records.get_mut(id) else {
            return;
        };
        let bytes = stored.bytes - before + after;
        self.bytes = self.bytes - stored.bytes + bytes;
        stored.bytes = bytes;
        self.shed_bytes(id, now, max_bytes);
    }

    /// Purges, then evicts the sessions closest to expiry, until the total
    /// is within `max_bytes`, never evicting `kept` (the session just
    /// written, which would otherwise lose the write it was answered for).
    fn shed_bytes(&mut self, kept: &SessionId, now: u64, max_bytes: usize) {
        if self.bytes <= max_bytes {
            return;
        }
        self.purge(now, MAKE_ROOM_PURGE);
        // Out of the deadline index meanwhile, so that it is never the
        // soonest.
        let kept_entry = self
            .records
            .get(kept)
            .map(|stored| (stored.indexed, kept.clone()));
        if let Some(entry) = &kept_entry {
            self.by_deadline.remove(entry);
        }
        while self.bytes > max_bytes {
            let Some((_, id)) = self.soonest() else {
                break;
            };
            log_eviction(&id);
            self.remove(&id);
        }
        if let Some(entry) = kept_entry {
            self.by_deadline.insert(entry);
        }
    }

    fn make_room(&mut self, now: u64, max: usize) {
        if self.records.len() < max {
            return;
        }
        // A batch, not every expired session: under the store's one lock,
        // purging a full store of 100,000 expired ones held every request
        // for a tenth of a second. The next creations and the sweeper take
        // the rest.
        self.purge(now, MAKE_ROOM_PURGE);
        while self.records.len() >= max {
            let Some((_, id)) = self.soonest() else {
                break;
            };
            log_eviction(&id);
            self.remove(&id);
        }
    }
}

fn log_eviction(id: &SessionId) {
    // Under a flood of new sessions, every creation evicts one: a line each
    // was a million lines a minute.
    if let Some(not_logged) = EVICTIONS.due_or_counted_later() {
        tracing::warn!(
            session = ?id,
            not_logged,
            "memory session store is full; evicting the session closest to expiry \
             (at most one such line a second: not_logged counts the others since the last)"
        );
    }
}

/// What `record` costs the store, estimated: the text of its keys and
/// values, a value's own size for each, and [`RECORD_OVERHEAD`].
fn approximate_bytes(record: &Record) -> usize {
    RECORD_OVERHEAD + ChangedKeys::All.bytes(record)
}

fn entry_bytes(key: &str, value: &Value) -> usize {
    key.len() + value_bytes(value)
}

fn owner_bytes(record: &Record) -> usize {
    record.user_id.as_ref().map_or(0, String::len)
}

/// The part of a record that `Changes` may change: its keys (each once,
/// or all of them if the changes clear the record) and its owner.
enum ChangedKeys<'a> {
    All,
    Some(BTreeSet<&'a str>),
}

impl<'a> ChangedKeys<'a> {
    fn of(changes: &'a Changes) -> Self {
        if changes.cleared {
            return Self::All;
        }
        let keys = changes
            .set
            .keys()
            .chain(changes.removed.iter().map(String::as_str))
            .chain(changes.list_edit.iter().map(|edit| edit.key.as_str()))
            .collect();
        Self::Some(keys)
    }

    /// What that part of `record` takes, estimated as `approximate_bytes`
    /// counts it (all of it but the fixed share).
    fn bytes(&self, record: &Record) -> usize {
        let data: usize = match self {
            Self::All => record
                .data
                .iter()
                .map(|(key, value)| entry_bytes(key, value))
                .sum(),
            Self::Some(keys) => keys
                .iter()
                .filter_map(|key| Some(entry_bytes(key, record.data.get(key)?)))
                .sum(),
        };
        owner_bytes(record) + data
    }

    /// One key's part, for an increment or an append.
    fn one(record: &Record, key: &str) -> usize {
        record
            .data
            .get(key)
            .map_or(0, |value| entry_bytes(key, value))
    }
}

fn value_bytes(value: &Value) -> usize {
    std::mem::size_of::<Value>()
        + match value {
            Value::String(text) | Value::Markup(text) => text.len(),
            Value::Bytes(bytes) => bytes.len(),
            Value::List(items) | Value::Tuple(items) => items.iter().map(value_bytes).sum(),
            Value::Dict(map) => map
                .iter()
                .map(|(key, value)| key.len() + value_bytes(value))
                .sum(),
            // Inline up to 24 bytes.
            Value::Number(number) => number.as_str().len().saturating_sub(24),
            Value::Null | Value::Bool(_) | Value::Uuid(_) | Value::DateTime(_) => 0,
        }
}

#[async_trait::async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, id: &SessionId, now: u64) -> Result<Option<Record>, StoreError> {
        Ok(self.lock().live_mut(id, now).map(|record| record.clone()))
    }

    async fn create(&self, id: &SessionId, record: &Record) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if inner.is_taken(id) {
            return Ok(false);
        }
        inner.make_room(record.created_at, self.max_sessions);
        inner.insert(id.clone(), record.clone());
        inner.shed_bytes(id, record.created_at, self.max_bytes);
        Ok(true)
    }

    async fn update(
        &self,
        id: &SessionId,
        changes: &Changes,
        now: u64,
    ) -> Result<bool, StoreError> {
        Ok(self.apply(id, changes, now, false) != UpdateOutcome::Vanished)
    }

    async fn update_or_delete_if_empty(
        &self,
        id: &SessionId,
        changes: &Changes,
        now: u64,
    ) -> Result<UpdateOutcome, StoreError> {
        Ok(self.apply(id, changes, now, true))
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let existed = inner.remove(id).is_some();
        if existed {
            inner.retire(id.clone(), self.max_sessions);
        }
        Ok(existed)
    }

    async fn cycle_id(
        &self,
        old: &SessionId,
        new: &SessionId,
        now: u64,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if inner.is_taken(new) || inner.live_mut(old, now).is_none() {
            return Ok(false);
        }
        let Some(record) = inner.remove(old) else {
            return Ok(false);
        };
        inner.insert(new.clone(), record);
        inner.retire(old.clone(), self.max_sessions);
        Ok(true)
    }

    async fn increment(
        &self,
        id: &SessionId,
        key: &str,
        by: i64,
        now: u64,
    ) -> Result<Option<i64>, StoreError> {
        let mut inner = self.lock();
        let Some(record) = inner.live_mut(id, now) else {
            return Ok(None);
        };
        let next = incremented(key, record.data.get(key), by)?;
        let before = ChangedKeys::one(record, key);
        record.data.insert_borrowed(key, Value::from(next));
        let after = ChangedKeys::one(record, key);
        inner.resized(id, before, after, now, self.max_bytes);
        Ok(Some(next))
    }

    async fn append(
        &self,
        id: &SessionId,
        key: &str,
        value: &Value,
        now: u64,
    ) -> Result<Option<usize>, StoreError> {
        let mut inner = self.lock();
        let Some(record) = inner.live_mut(id, now) else {
            return Ok(None);
        };
        // A list grows by the item, without a walk of what it held (a run
        // of appends would cost the square of the list's length); anything
        // else becomes a list of the item, or stays as it was.
        let held_list = matches!(record.data.get(key), Some(Value::List(_)));
        let before = if held_list {
            0
        } else {
            ChangedKeys::one(record, key)
        };
        let length = append_in_map(&mut record.data, key, value)?;
        let after = if held_list {
            value_bytes(value)
        } else {
            ChangedKeys::one(record, key)
        };
        inner.resized(id, before, after, now, self.max_bytes);
        Ok(Some(length))
    }

    async fn list(
        &self,
        user_id: Option<&str>,
        after: Option<&SessionId>,
        limit: usize,
        now: u64,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        let inner = self.lock();
        let info = |id: &SessionId, record: &Record| SessionInfo {
            id: id.clone(),
            user_id: record.user_id.clone(),
            created_at: record.created_at,
            expires_at: record.expires_at,
            absolute_expires_at: record.absolute_expires_at,
        };
        if let Some(user) = user_id {
            return Ok(inner
                .ids_of(user, after)
                .filter_map(|id| Some((id, &inner.records.get(id)?.record)))
                .filter(|(_, record)| record.is_live(now))
                .take(limit)
                .map(|(id, record)| info(id, record))
                .collect());
        }
        // The `limit` smallest ids that match, in a heap whose top is the
        // largest of them: sorting every match (a page of a full store of a
        // million) held the store's lock for most of a second.
        let mut page: BinaryHeap<&SessionId> = BinaryHeap::new();
        let matching = inner.records.iter().filter(|(id, stored)| {
            stored.record.is_live(now) && after.is_none_or(|after| *id > after)
        });
        for (id, _) in matching {
            if page.len() < limit {
                page.push(id);
            } else if page.peek().is_some_and(|largest| id < *largest) {
                page.pop();
                page.push(id);
            }
        }
        Ok(page
            .into_sorted_vec()
            .into_iter()
            .filter_map(|id| Some((id, &inner.records.get(id)?.record)))
            .map(|(id, record)| info(id, record))
            .collect())
    }

    async fn delete_user(&self, user_id: &str) -> Result<u64, StoreError> {
        // Those already dead go too, uncounted: the user saw them no more.
        let now = crate::server::unix_now();
        let mut inner = self.lock();
        let ids: Vec<SessionId> = inner.ids_of(user_id, None).cloned().collect();
        let mut ended = 0;
        for id in ids {
            if inner.remove(&id).is_some_and(|record| record.is_live(now)) {
                ended += 1;
            }
            inner.retire(id, self.max_sessions);
        }
        Ok(ended)
    }

    async fn purge_expired(&self, now: u64, batch: usize) -> Result<u64, StoreError> {
        Ok(self.lock().purge(now, batch) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(expires_at: u64, absolute_expires_at: Option<u64>) -> Record {
        Record {
            data: Default::default(),
            user_id: None,
            created_at: 10,
            expires_at,
            absolute_expires_at,
        }
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(future)
    }

    /// The index of each user's sessions follows every change of owner,
    /// id and existence, so a user's listing and "log out everywhere" read
    /// it rather than every session (a page of a user's sessions scanned a
    /// million records under the store's lock), and it keeps nothing of
    /// sessions gone.
    #[test]
    fn the_user_index_follows_every_change() {
        block_on(async {
            let store = MemoryStore::new(100);
            let listed = |user: &'static str| {
                let store = &store;
                async move {
                    store
                        .list(Some(user), None, 10, 20)
                        .await
                        .expect("list")
                        .into_iter()
                        .map(|info| info.id)
                        .collect::<Vec<_>>()
                }
            };
            let owner = |user: Option<&str>| Changes {
                user_id: Some(user.map(str::to_owned)),
                ..Changes::default()
            };
            let id = SessionId::generate();
            store.create(&id, &record(100, None)).await.expect("create");
            assert!(listed("alice").await.is_empty());
            assert!(store
                .update(&id, &owner(Some("alice")), 20)
                .await
                .expect("login"));
            assert_eq!(listed("alice").await, std::slice::from_ref(&id));
            assert!(store
                .update(&id, &owner(Some("bob")), 20)
                .await
                .expect("another"));
            assert!(listed("alice").await.is_empty());
            assert_eq!(listed("bob").await, std::slice::from_ref(&id));

            let moved = SessionId::generate();
            assert!(store.cycle_id(&id, &moved, 20).await.expect("cycle"));
            assert_eq!(listed("bob").await, std::slice::from_ref(&moved));
            assert!(store
                .update(&moved, &owner(None), 20)
                .await
                .expect("logout"));
            assert!(listed("bob").await.is_empty());
            assert!(store.lock().by_user.is_empty());

            let mut owned = record(100, None);
            owned.user_id = Some("carol".to_owned());
            // Live by the clock, by which "log out everywhere" counts them.
            let live = Record {
                expires_at: crate::server::unix_now() + 3600,
                ..owned.clone()
            };
            let mut carols: Vec<SessionId> = (0..3).map(|_| SessionId::generate()).collect();
            for carol in &carols {
                store.create(carol, &live).await.expect("create");
            }
            carols.sort();
            assert_eq!(listed("carol").await, carols);
            let page = store
                .list(Some("carol"), Some(&carols[0]), 1, 20)
                .await
                .expect("a page");
            assert_eq!(page.len(), 1);
            assert_eq!(page[0].id, carols[1]);
            assert_eq!(store.delete_user("carol").await.expect("delete"), 3);
            assert!(listed("carol").await.is_empty());

            assert!(store
                .create(&SessionId::generate(), &owned)
                .await
                .expect("create"));
            assert_eq!(store.purge_expired(1000, 10).await.expect("purge"), 2);
            assert!(store.lock().by_user.is_empty());
        });
    }

    /// A creation in a full store of expired sessions purges a batch of
    /// them, not all: the store's one lock is held meanwhile, and purging
    /// 100,000 held every request for a tenth of a second. No live session
    /// is evicted while expired ones remain.
    #[test]
    fn a_full_store_of_expired_sessions_is_purged_a_batch_at_a_time() {
        block_on(async {
            const MAX: usize = 1000;
            let store = MemoryStore::new(MAX);
            let live = SessionId::generate();
            store
                .create(&live, &record(10_000, None))
                .await
                .expect("create");
            for _ in 1..MAX {
                store
                    .create(&SessionId::generate(), &record(100, None))
                    .await
                    .expect("create");
            }
            assert_eq!(store.len(), MAX);
            let mut newcomer = record(10_000, None);
            newcomer.created_at = 200;
            store
                .create(&SessionId::generate(), &newcomer)
                .await
                .expect("create");
            assert_eq!(store.len(), MAX - MAKE_ROOM_PURGE + 1);
            assert!(store.load(&live, 200).await.expect("load").is_some());
            let expired = MAX - 1 - MAKE_ROOM_PURGE;
            assert_eq!(
                store.purge_expired(200, usize::MAX).await.expect("purge"),
                expired as u64
            );
        });
    }

    /// The deadline index follows every change of expiry, so eviction takes
    /// the session that dies soonest and purging finds exactly the dead.
    #[test]
    fn the_deadline_index_follows_every_change() {
        block_on(async {
            let store = MemoryStore::new(3);
            let ids: Vec<SessionId> = (0..3).map(|_| SessionId::generate()).collect();
            store
                .create(&ids[0], &record(100, None))
                .await
                .expect("create");
            store
                .create(&ids[1], &record(300, Some(200)))
                .await
                .expect("create");
            store
                .create(&ids[2], &record(300, None))
                .await
                .expect("create");
            // ids[0] now lives longest; ids[1] dies first (its absolute expiry).
            let later = Changes {
                expires_at: Some(400),
                ..Changes::default()
            };
            assert!(store.update(&ids[0], &later, 50).await.expect("update"));

            let newcomer = SessionId::generate();
            store
                .create(&newcomer, &record(500, None))
                .await
                .expect("create");
            assert_eq!(store.len(), 3);
            assert!(
                store.load(&ids[1], 50).await.expect("load").is_none(),
                "evicted"
            );
            assert!(store.load(&ids[0], 50).await.expect("load").is_some());

            // At 350 only ids[2] (300) is dead; a cycled id keeps its deadline.
            let cycled = SessionId::generate();
            assert!(store.cycle_id(&ids[0], &cycled, 50).await.expect("cycle"));
            assert_eq!(store.purge_expired(350, 10).await.expect("purge"), 1);
            assert_eq!(store.len(), 2);
            assert_eq!(store.purge_expired(450, 10).await.expect("purge"), 1);
            assert!(store.load(&newcomer, 450).await.expect("load").is_some());
            let indexed = store.lock().by_deadline.len();
            assert_eq!(indexed, store.len());
        });
    }

    /// An expiry moved earlier is found by the purge at its new time.
    #[test]
    fn a_shortened_expiry_is_purged_on_time() {
        block_on(async {
            let store = MemoryStore::new(10);
            let id = SessionId::generate();
            store
                .create(&id, &record(1000, None))
                .await
                .expect("create");
            let sooner = Changes {
                expires_at: Some(150),
                ..Changes::default()
            };
            assert!(store.update(&id, &sooner, 50).await.expect("update"));
            assert_eq!(store.purge_expired(149, 10).await.expect("purge"), 0);
            assert_eq!(store.purge_expired(150, 10).await.expect("purge"), 1);
            assert!(store.is_empty());
        });
    }

    /// Of sessions that die in the same second, those written first are
    /// evicted first, by the bound on sessions and by the bound on bytes.
    #[test]
    fn sessions_of_one_deadline_are_evicted_in_the_order_they_came() {
        block_on(async {
            for store in [
                MemoryStore::new(5),
                MemoryStore::new(1000).with_max_bytes(5 * approximate_bytes(&holding(1000, 0))),
            ] {
                let mut ids = Vec::new();
                for _ in 0..20 {
                    let id = SessionId::generate();
                    store
                        .create(&id, &holding(1000, 5000))
                        .await
                        .expect("create");
                    ids.push(id);
                }
                assert_eq!(store.len(), 5, "{store:?}");
                for (at, id) in ids.iter().enumerate() {
                    let kept = store.load(id, 50).await.expect("load").is_some();
                    assert_eq!(kept, at >= 15, "session {at}");
                }
            }
        });
    }

    fn holding(text_bytes: usize, expires_at: u64) -> Record {
        let mut held = record(expires_at, None);
        held.data
            .insert("text".to_owned(), Value::from("x".repeat(text_bytes)));
        held
    }

    /// The estimated bytes of what the store holds, checked against the
    /// total it keeps.
    fn held_bytes(store: &MemoryStore) -> usize {
        let inner = store.lock();
        let total: usize = inner
            .records
            .values()
            .map(|stored| approximate_bytes(&stored.record))
            .sum();
        assert_eq!(total, inner.bytes, "the running total is the sum");
        total
    }

    /// Sessions are bounded in bytes too: a client making large sessions
    /// (4 keys of 16,000 characters each, through the demo's API) took
    /// about 66 KB a session, 6.6 GB before the bound on sessions came.
    /// Past the byte bound, the sessions closest to expiry go, whether the
    /// bytes came with a new session, a write, an increment or an append,
    /// and never the session being written, even larger than the bound.
    #[test]
    fn the_store_is_bounded_in_bytes_evicting_the_soonest_to_expire() {
        block_on(async {
            const MAX_BYTES: usize = 64 * 1024;
            let store = MemoryStore::new(1000).with_max_bytes(MAX_BYTES);
            let mut ids = Vec::new();
            for expires_at in 1000..1100 {
                let id = SessionId::generate();
                store
                    .create(&id, &holding(2000, expires_at))
                    .await
                    .expect("create");
                ids.push(id);
                assert!(held_bytes(&store) <= MAX_BYTES);
            }
            let kept = store.len();
            assert!((20..40).contains(&kept), "{kept} sessions of about 2 KB");
            // The newest, which expire last, are the ones kept.
            for (at, id) in ids.iter().enumerate() {
                let live = store.load(id, 50).await.expect("load").is_some();
                assert_eq!(live, at >= ids.len() - kept, "session {at}");
            }

            // A write that grows a session that expires soonest of all: the
            // others go, it stays.
            let soonest = ids[ids.len() - kept].clone();
            let grow = Changes {
                set: crate::map::Map::from([("big", Value::from("y".repeat(40_000)))]),
                ..Changes::default()
            };
            assert!(store.update(&soonest, &grow, 50).await.expect("update"));
            assert!(held_bytes(&store) <= MAX_BYTES);
            assert!(store.len() < kept);
            let record = store.load(&soonest, 50).await.expect("load").expect("kept");
            assert_eq!(
                record.data.get("big").and_then(Value::as_str).map(str::len),
                Some(40_000)
            );

            // Larger than the whole bound: it stays, alone.
            let huge = Changes {
                set: crate::map::Map::from([("huge", Value::from("z".repeat(2 * MAX_BYTES)))]),
                ..Changes::default()
            };
            assert!(store.update(&soonest, &huge, 50).await.expect("update"));
            assert_eq!(store.len(), 1);
            assert!(store.load(&soonest, 50).await.expect("load").is_some());

            // Shrunk again, the bytes it freed count: new sessions fit.
            let shrink = Changes {
                removed: vec!["huge".to_owned(), "big".to_owned()],
                ..Changes::default()
            };
            assert!(store.update(&soonest, &shrink, 50).await.expect("update"));
            for _ in 0..5 {
                store
                    .create(&SessionId::generate(), &holding(2000, 5000))
                    .await
                    .expect("create");
            }
            assert_eq!(store.len(), 6);

            // Appends and increments grow sessions too.
            let appended = SessionId::generate();
            store
                .create(&appended, &holding(0, 9000))
                .await
                .expect("create");
            // To about 57 KB, within the bound alone.
            for _ in 0..28 {
                store
                    .append(&appended, "list", &Value::from("w".repeat(2000)), 50)
                    .await
                    .expect("append");
                assert!(held_bytes(&store) <= MAX_BYTES);
            }
            assert!(store.load(&appended, 50).await.expect("load").is_some());
            assert!(
                store.load(&soonest, 50).await.expect("load").is_none(),
                "evicted"
            );
            assert_eq!(
                store
                    .increment(&appended, "n", 1, 50)
                    .await
                    .expect("increment"),
                Some(1)
            );
            assert!(held_bytes(&store) <= MAX_BYTES);

            // Owners, list edits and clearing keep the total exact too.
            let owned = Changes {
                user_id: Some(Some("alice".to_owned())),
                list_edit: Some(super::super::ListEdit {
                    key: "_flashes".to_owned(),
                    taken: Vec::new(),
                    added: vec![Value::from("hello")],
                }),
                ..Changes::default()
            };
            assert!(store.update(&appended, &owned, 50).await.expect("update"));
            held_bytes(&store);
            let cleared = Changes {
                cleared: true,
                set: crate::map::Map::from([("a", Value::from("b"))]),
                user_id: Some(None),
                ..Changes::default()
            };
            assert!(store.update(&appended, &cleared, 50).await.expect("update"));
            held_bytes(&store);

            // Deleting and moving sessions keeps the total exact.
            let moved = SessionId::generate();
            assert!(store.cycle_id(&appended, &moved, 50).await.expect("cycle"));
            held_bytes(&store);
            assert!(store.delete(&moved).await.expect("delete"));
            held_bytes(&store);
            store
                .purge_expired(u64::MAX - 1, usize::MAX)
                .await
                .expect("purge");
            assert_eq!(held_bytes(&store), 0);
        });
    }
}
