//! Server-side sessions: the cookie holds an id, the data lives in a store.
//!
//! A session is loaded from the store only when first used, changes are
//! merged into the store key by key when the response is ready, and expiry
//! slides without writing on every request: the record's expiry is moved
//! only when a change is saved, when it has fallen behind by a refresh
//! granularity (a tenth of the lifetime, at most a day), or when it lies
//! beyond a whole lifetime from now (set under a longer one).

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use crate::map::Map;
use crate::session::{Session, SessionError, State, FLASHES_KEY, PERMANENT_KEY};
use crate::store::{
    worth_keeping, Changes, ListEdit, Record, SessionId, SessionInfo, SessionStore, StoreError,
    UpdateOutcome,
};
use crate::value::Value;

/// How many times a fresh id is drawn before giving up (a collision of
/// 256-bit random ids means the random source is broken).
const ID_ATTEMPTS: usize = 4;

/// The configuration server-side sessions need, shared by every request.
#[derive(Debug)]
pub(crate) struct ServerSettings {
    pub(crate) store: Arc<dyn SessionStore>,
    /// Idle lifetime: `PERMANENT_SESSION_LIFETIME`, for every record.
    pub(crate) idle_secs: u64,
    /// Absolute lifetime from creation, if any.
    pub(crate) absolute_secs: Option<u64>,
    pub(crate) refresh_each_request: bool,
    /// `SESSION_PERMANENT`: new sessions are permanent.
    pub(crate) session_permanent: bool,
}

impl ServerSettings {
    /// How far a record's expiry may fall behind before a read-only request
    /// moves it: a tenth of the lifetime, between one second and one day.
    fn refresh_granularity(&self) -> u64 {
        (self.idle_secs / 10).clamp(1, 86_400)
    }

    /// The idle expiry of a record used at `now`. Times are whole seconds
    /// (truncated) and a record is live while the time is before its
    /// expiry, so the one second more makes every record last at least its
    /// whole lifetime, and less than a second more, as Flask's cookies do;
    /// without it, a record written late in a second lost most of a second.
    fn idle_expiry(&self, now: u64) -> u64 {
        now.saturating_add(self.idle_secs).saturating_add(1)
    }

    /// The absolute expiry of a record created at `now`, counted the same way.
    fn absolute_expiry(&self, now: u64) -> Option<u64> {
        // `now` may be a stored creation time, which a store's other
        // writers could have set to anything.
        self.absolute_secs
            .map(|secs| now.saturating_add(secs).saturating_add(1))
    }
}

/// The stored record's timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordTimes {
    pub(crate) created_at: u64,
    pub(crate) expires_at: u64,
    pub(crate) absolute_expires_at: Option<u64>,
}

/// Per-request server-side state of a [`Session`].
#[derive(Debug)]
pub(crate) struct ServerState {
    pub(crate) settings: Arc<ServerSettings>,
    /// The ids the client presented, in order, before they are looked up:
    /// the first one naming a live record is the session.
    incoming: Vec<SessionId>,
    loaded: bool,
    /// The id of the live record this session is saved to.
    pub(crate) id: Option<SessionId>,
    pub(crate) times: Option<RecordTimes>,
    /// The absolute expiry in `times` comes from the absolute lifetime, not
    /// from the store: the record was stored without it (by Flask-Session,
    /// or before the lifetime was set). Stored with the next write.
    absolute_unstored: bool,
    user_id: Option<String>,
    user_changed: bool,
    /// The stored session belonged to a user when this request loaded it.
    owned_when_loaded: bool,
    /// The stored session held data (more than flash messages and its
    /// permanence) when this request loaded it.
    held_data_when_loaded: bool,
    /// The client must be sent the (new) id.
    pub(crate) id_changed: bool,
    /// `cycle_id` asked for a new id, given when the response is saved.
    cycle_pending: bool,
    /// The record's expiry moved in this request.
    pub(crate) expiry_moved: bool,
    /// `_permanent` was written in this request.
    pub(crate) permanence_changed: bool,
    /// The record was deleted in this request: the cookie must go.
    pub(crate) revoked: bool,
    /// The client sent a session cookie.
    pub(crate) had_cookie: bool,
    /// `mark_modified` asked for the expiry to move.
    refresh_forced: bool,
    /// An atomic operation (`increment`, `append`) changed the record, in
    /// the store and without moving its expiry.
    changed_atomically: bool,
    /// The record went away while this request used it (`mark_vanished`).
    vanished: bool,
    /// An `increment` or `append` of this request found the session ended
    /// (or moved) elsewhere, and said so (`Revoked`): the later ones fail
    /// so too, rather than start a fresh session whose cookie would come
    /// with the 409 (a `join!` of two, in the losing click of a double-click
    /// login) and log the visitor out. A `clear` or `destroy` of the
    /// request's own starts afresh, and lifts it.
    ended_elsewhere: bool,
    /// A `destroy` waits for its turn: if it is cancelled meanwhile (a
    /// timeout around it), the save still ends the session, as a `clear`
    /// made at once would have had it.
    end_requested: bool,
    /// A save found the record gone (revoked, expired) and so did not store
    /// what the request wrote; the request has not been told yet.
    writes_lost: bool,
    /// A store call made before the response (an increment's, say) failed
    /// with an outage: the save does not call the store again, which would
    /// hold the request for a second timeout; it answers 503 if there is
    /// anything to write.
    outage_met: bool,
    /// A create whose answer was lost, under this id: tried again with it,
    /// or deleted by the save.
    create_again: Option<SessionId>,
    /// A move (`cycle_id`) whose answer was lost, to this id: tried again
    /// with it, or deleted by the save.
    cycle_again: Option<SessionId>,
    /// `destroy` failed (with an outage, or not), so the record may or may
    /// not be gone. The save does not try the deletion again: a store that
    /// timed out (a lock held elsewhere) would hold the request for a
    /// second timeout.
    end_failed: Option<EndFailure>,
    /// Presented ids whose signature a fallback key made
    /// (`SECRET_KEY_FALLBACKS`): the one in use is signed again with the
    /// current key, since Flask-Session checks only that one.
    signed_with_old_key: Vec<SessionId>,
    /// The session was read before it was loaded (and the read was logged).
    read_before_load: bool,
}

impl ServerState {
    pub(crate) fn new(
        settings: Arc<ServerSettings>,
        incoming: Vec<SessionId>,
        had_cookie: bool,
    ) -> Self {
        Self {
            settings,
            incoming,
            loaded: false,
            id: None,
            times: None,
            absolute_unstored: false,
            user_id: None,
            user_changed: false,
            owned_when_loaded: false,
            held_data_when_loaded: false,
            id_changed: false,
            cycle_pending: false,
            expiry_moved: false,
            permanence_changed: false,
            revoked: false,
            had_cookie,
            refresh_forced: false,
            changed_atomically: false,
            vanished: false,
            ended_elsewhere: false,
            end_requested: false,
            writes_lost: false,
            end_failed: None,
            outage_met: false,
            create_again: None,
            cycle_again: None,
            signed_with_old_key: Vec::new(),
            read_before_load: false,
        }
    }

    /// Whether a read now misses the stored session because nothing has
    /// loaded it, though the client presented an id: true once per request.
    pub(crate) fn first_read_before_load(&mut self) -> bool {
        let first = !self.loaded && !self.incoming.is_empty() && !self.read_before_load;
        self.read_before_load |= first;
        first
    }

    pub(crate) fn signed_with_old_key(mut self, ids: Vec<SessionId>) -> Self {
        self.signed_with_old_key = ids;
        self
    }

    pub(crate) fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// Not loaded yet, while the client presented an id: what this request
    /// sees is not what the store may hold.
    pub(crate) fn unread(&self) -> bool {
        !self.loaded && !self.incoming.is_empty()
    }

    /// The record's expiry is to move at the end of the request, as after a
    /// write (`mark_modified`).
    pub(crate) fn force_refresh(&mut self) {
        self.refresh_forced = true;
    }

    /// The session no longer belongs to its user (`clear`).
    pub(crate) fn forget_user(&mut self) {
        // Not loaded yet, the stored session may have a user.
        self.user_changed |= self.user_id.is_some() || self.unread();
        self.user_id = None;
        // A deliberate new start: what follows goes into a fresh session.
        self.ended_elsewhere = false;
    }
}

pub(crate) fn unix_now() -> u64 {
    crate::signing::unix_seconds(SystemTime::now())
}

/// Refuses a value that, stored, would make its session unreadable.
fn unwritable(key: &str, problem: crate::tagged::Unwritable) -> StoreError {
    StoreError::unrepresentable(format!("session key {key:?}: {problem}"))
}

/// Puts `cycle_id`'s request back when dropped armed: the move failed or
/// was cancelled before the store answered.
struct CyclePending<'a> {
    session: &'a Session,
    armed: bool,
    /// The id of the move on its way: one whose answer was lost may have
    /// been made, so the next try moves to it again, and finds it there.
    moving_to: Option<SessionId>,
}

impl Drop for CyclePending<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Some(server) = self.session.lock().server.as_mut() {
                server.cycle_pending = true;
                server.cycle_again = self.moving_to.take();
            }
        }
    }
}

/// How ending the session (`destroy`, "log out everywhere") failed, for
/// the save that follows. A `destroy` that succeeds afterwards clears it: a
/// handler that falls back to ending this session alone chose its answer.
#[derive(Debug)]
pub(crate) struct EndFailure {
    /// Whether the store was out of reach (answered 503) rather than
    /// refusing (500).
    outage: bool,
    message: String,
}

/// What a flush took out of the session's state to write.
struct Pending {
    touched: BTreeSet<String>,
    flash_edit: Option<ListEdit>,
    cleared: bool,
    user_changed: bool,
    refresh_forced: bool,
    changed_atomically: bool,
}

/// Puts a flush's [`Pending`] changes back into the session when dropped
/// before [`stored`](Self::stored): the store call failed or was cancelled,
/// and without them the save at the end of the request would find nothing
/// to write and acknowledge writes that were never stored.
struct Taken<'a> {
    session: &'a Session,
    pending: Option<Pending>,
    /// The id of the record being created (or deleted): one whose answer
    /// was lost (an error, a cancellation) may exist all the same, so the
    /// next try uses that id again, to find it, and the save deletes it if
    /// nothing did: never a second record, nor one left behind.
    creating: Option<SessionId>,
}

impl Taken<'_> {
    /// The store has the changes (or the plan needed none).
    fn stored(&mut self) {
        self.pending = None;
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let mut guard = self.session.lock();
        let state = &mut *guard;
        if pending.touched.contains(FLASHES_KEY) {
            // Edited again since (a task holding the session): the two
            // edits are not merged; the list is saved whole instead.
            state.flash_edit = if state.touched.contains(FLASHES_KEY) {
                None
            } else {
                pending.flash_edit
            };
        }
        state.touched.extend(pending.touched);
        state.cleared |= pending.cleared;
        if let Some(server) = state.server.as_mut() {
            server.user_changed |= pending.user_changed;
            server.refresh_forced |= pending.refresh_forced;
            server.changed_atomically |= pending.changed_atomically;
            if let Some(id) = self.creating.take() {
                server.create_again = Some(id);
            }
        }
    }
}

/// The store work one flush needs, decided under the lock.
enum Plan {
    Nothing,
    /// A changed value would not read back (nested too deep, a datetime
    /// out of range): stored, it would make the session unreadable, so
    /// nothing is written.
    Unwritable {
        key: String,
        problem: crate::tagged::Unwritable,
    },
    Create {
        record: Record,
    },
    Update {
        id: SessionId,
        changes: Changes,
        /// The changes leave this request's view of the session empty: the
        /// record goes too if nothing was written to it meanwhile.
        delete_if_empty: bool,
    },
    Delete {
        id: SessionId,
    },
    /// Cleared, then written to: the old record goes, as after a bare
    /// `clear`, and the new content gets a record of its own.
    Replace {
        id: SessionId,
    },
}

impl Session {
    fn server_settings(&self) -> Option<Arc<ServerSettings>> {
        self.lock()
            .server
            .as_ref()
            .map(|server| server.settings.clone())
    }

    /// Loads a server-side session from its store; a no-op for cookie
    /// sessions and for sessions already loaded. The `Session` extractor
    /// calls this, so handlers never need to; middleware that takes the
    /// session from the request's extensions must call it before reading.
    /// (Writes need no load: what was written before it is merged over the
    /// stored session, at the latest when the response is saved. When this
    /// load fails with an outage, the save does not call the store again,
    /// which would hold the request for a second timeout: the response is
    /// then a 503 if anything was written, as after a failed `increment`.)
    pub async fn load(&self) -> Result<(), StoreError> {
        if !self.server_is(|server| !server.loaded) {
            return Ok(());
        }
        let _turn = self.store_turn().await;
        let loaded = self.load_in_turn().await;
        self.noting_outage(loaded)
    }

    /// [`load`](Self::load), for an operation that holds the store turn.
    async fn load_in_turn(&self) -> Result<(), StoreError> {
        let settings = match &self.lock().server {
            Some(server) if !server.loaded => server.settings.clone(),
            _ => return Ok(()),
        };
        let now = unix_now();
        let mut found = None;
        let mut absolute_unstored = false;
        // One presented id at a time, rather than a copy of the list: they
        // never change, and most requests present one.
        for index in 0.. {
            let Some(id) = self.incoming_id(index) else {
                break;
            };
            let loaded = settings.store.load(&id, now).await;
            if loaded.is_ok() {
                crate::store::note_store_answered();
            }
            let mut record = match loaded {
                Ok(Some(record)) => record,
                Ok(None) => continue,
                // Unreadable for good (a value written by something else, or
                // by an older version without the depth check): answering
                // 503 would fail every request of this visitor until the
                // record expired. As in the Flask-Session layout, the
                // session counts as absent; the record is left for a look.
                Err(StoreError::Corrupt(reason)) => {
                    tracing::error!(
                        session = %id.fingerprint(),
                        %reason,
                        "stored session is unreadable; starting a new one"
                    );
                    continue;
                }
                Err(error) => return Err(error),
            };
            // An absolute lifetime set (or shortened) after the record was
            // created holds for it too, counted from its creation.
            if let Some(cap) = settings.absolute_expiry(record.created_at) {
                if record.absolute_expires_at.is_none_or(|at| at > cap) {
                    if now >= cap {
                        // Over: ended for the lists and the CLI as well.
                        settings.store.delete(&id).await?;
                        continue;
                    }
                    record.absolute_expires_at = Some(cap);
                    absolute_unstored = true;
                }
            }
            found = Some((id, record));
            break;
        }
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(server) = state.server.as_mut() else {
            return Ok(());
        };
        if server.loaded {
            return Ok(());
        }
        server.loaded = true;
        match found {
            Some((id, record)) => {
                if server.signed_with_old_key.contains(&id) {
                    server.id_changed = true;
                }
                server.held_data_when_loaded = record
                    .data
                    .keys()
                    .any(|key| key != PERMANENT_KEY && key != FLASHES_KEY);
                // Writes made before loading win over what was stored. A
                // `clear` keeps the permanence, as it does once loaded.
                let mut data = if state.cleared {
                    // This request's own, set before the `clear`, first.
                    let permanent = state
                        .data
                        .get(PERMANENT_KEY)
                        .or_else(|| record.data.get(PERMANENT_KEY));
                    let mut kept = Map::new();
                    if let Some(permanent) = permanent {
                        kept.insert(PERMANENT_KEY.to_owned(), permanent.clone());
                    }
                    kept
                } else {
                    record.data
                };
                for key in &state.touched {
                    let value = match &state.flash_edit {
                        // Flashed (or taken, reading nothing) before loading:
                        // the stored messages stay.
                        Some(edit) if *key == edit.key => edit.apply(data.get(key)),
                        _ => state.data.get(key).cloned(),
                    };
                    match value {
                        Some(value) => data.insert(key.clone(), value),
                        None => data.remove(key),
                    };
                }
                state.data = data;
                state.new = false;
                server.id = Some(id);
                server.owned_when_loaded = record.user_id.is_some();
                if !server.user_changed {
                    // A login or logout made before loading stands.
                    server.user_id = record.user_id;
                }
                server.times = Some(RecordTimes {
                    created_at: record.created_at,
                    expires_at: record.expires_at,
                    absolute_expires_at: record.absolute_expires_at,
                });
                server.absolute_unstored = absolute_unstored;
            }
            None => {
                state.new = true;
                if server.settings.session_permanent
                    && !state.touched.contains(PERMANENT_KEY)
                    && !state.cleared
                {
                    state
                        .data
                        .insert(PERMANENT_KEY.to_owned(), Value::Bool(true));
                }
            }
        }
        Ok(())
    }

    /// Writes this request's changes to the store: creates the record (if
    /// there is something to store, or `create` is set), merges changed keys
    /// into it, moves its expiry when due, or deletes it when the session was
    /// emptied.
    pub(crate) async fn flush(&self, now: u64, create: bool) -> Result<(), StoreError> {
        let Some(settings) = self.server_settings() else {
            return Ok(());
        };
        for _ in 0..ID_ATTEMPTS {
            // Until the store has the changes, they stay the request's: a
            // store call that fails, or is cancelled (a timeout layer), puts
            // them back for the save at the end of the request, which then
            // stores them or answers that it could not.
            let mut taken = Taken {
                session: self,
                pending: None,
                creating: None,
            };
            let plan = self.plan_flush(&settings, now, create, &mut taken);
            match plan {
                Plan::Nothing => {
                    taken.stored();
                    return Ok(());
                }
                Plan::Unwritable { key, problem } => return Err(unwritable(&key, problem)),
                Plan::Create { record } => {
                    let again = self
                        .lock()
                        .server
                        .as_mut()
                        .and_then(|server| server.create_again.take());
                    let id = again.clone().unwrap_or_else(SessionId::generate);
                    taken.creating = Some(id.clone());
                    let created = settings.store.create(&id, &record).await?;
                    taken.creating = None;
                    if !created && again.is_some() {
                        // Taken on a second try of the same id: the lost
                        // create made it (ids are 256 random bits), with
                        // what this request held then, which it may have
                        // changed or ended since (`destroy`, `clear`). It
                        // goes, and the next round makes the session anew
                        // under a fresh id with what the request holds now.
                        taken.creating = Some(id.clone());
                        settings.store.delete(&id).await?;
                        taken.creating = None;
                        continue;
                    }
                    if created {
                        taken.stored();
                        let mut state = self.lock();
                        if let Some(server) = state.server.as_mut() {
                            server.id = Some(id);
                            server.id_changed = true;
                            server.revoked = false;
                            server.expiry_moved = true;
                            server.times = Some(RecordTimes {
                                created_at: record.created_at,
                                expires_at: record.expires_at,
                                absolute_expires_at: record.absolute_expires_at,
                            });
                        }
                        return Ok(());
                    }
                    // The id was taken: the changes go back (as `taken`
                    // drops) and another id is drawn.
                }
                Plan::Update {
                    id,
                    changes,
                    delete_if_empty,
                } => {
                    let result = if delete_if_empty {
                        let store = &settings.store;
                        store.update_or_delete_if_empty(&id, &changes, now).await
                    } else {
                        settings
                            .store
                            .update(&id, &changes, now)
                            .await
                            .map(|updated| {
                                if updated {
                                    UpdateOutcome::Updated
                                } else {
                                    UpdateOutcome::Vanished
                                }
                            })
                    };
                    let outcome = match result {
                        Ok(outcome) => outcome,
                        Err(error)
                            if error.is_outage()
                                && !create
                                && only_refreshes(&changes, taken.pending.as_ref()) =>
                        {
                            // The session's expiry was due to move (a read
                            // under SESSION_REFRESH_EACH_REQUEST, a shortened
                            // lifetime, or after an `increment` or `append`,
                            // stored already), and nothing else: a store that
                            // reads but does not write (a full disk, a
                            // read-only replica, an outage begun after the
                            // load) answers the request as if the move were
                            // not due yet. The session lives until its stored
                            // expiry, and a cookie, sent only if it was due
                            // anyway (a new id), says the same.
                            crate::store::STORE_OUTAGES.log_with_outcome(
                                &error,
                                "could not move the session's expiry (its refresh)",
                                crate::store::Outcome::AnsweredWithout,
                            );
                            taken.stored();
                            return Ok(());
                        }
                        Err(error) => return Err(error),
                    };
                    let wrote = loses_writes(&changes);
                    if outcome == UpdateOutcome::Vanished
                        && wrote
                        && self.held_only_flashes(taken.pending.as_ref().map(|p| &p.touched))
                    {
                        // Emptied by a concurrent request that showed its
                        // flashes, most likely: the writes go back to the
                        // request (as `taken` drops), and into a fresh
                        // session that the next round creates.
                        drop(taken);
                        self.restart_with_own_writes();
                        continue;
                    }
                    taken.stored();
                    if outcome == UpdateOutcome::Deleted {
                        self.mark_revoked();
                        if !create {
                            return Ok(());
                        }
                        // An atomic operation follows: the next round
                        // creates a record for it.
                        continue;
                    }
                    if outcome == UpdateOutcome::Vanished {
                        // Revoked elsewhere (or expired) meanwhile: never resurrect it.
                        self.mark_vanished();
                        self.update_server(|server| server.writes_lost |= wrote);
                        return Ok(());
                    }
                    {
                        let mut state = self.lock();
                        if let Some(server) = state.server.as_mut() {
                            if let (Some(times), Some(expires_at)) =
                                (server.times.as_mut(), changes.expires_at)
                            {
                                times.expires_at = expires_at;
                                server.expiry_moved = true;
                            }
                            if changes.absolute_expires_at.is_some() {
                                server.absolute_unstored = false;
                            }
                        }
                    }
                    if let Some(edit) = changes.list_edit.as_ref().filter(|_| create) {
                        // Saved before the request ends (an atomic operation
                        // follows): it goes on with the list as stored now,
                        // its messages among those flashed meanwhile, so that
                        // what it takes later is a run at the list's front.
                        self.reread_key(&settings, &id, &edit.key, now).await?;
                    }
                    return Ok(());
                }
                Plan::Delete { id } => {
                    settings.store.delete(&id).await?;
                    taken.stored();
                    self.mark_revoked();
                    if !create {
                        return Ok(());
                    }
                    // An atomic operation after `clear`: it needs a record,
                    // a new one (the next round creates it).
                }
                Plan::Replace { id } => {
                    settings.store.delete(&id).await?;
                    // The old record is gone; what the new one stores is
                    // still to write: the data (below) and a tie to a user
                    // made after the clear, which may be all there is.
                    let user_changed = taken
                        .pending
                        .as_ref()
                        .is_some_and(|pending| pending.user_changed);
                    taken.stored();
                    let mut guard = self.lock();
                    let state = &mut *guard;
                    if let Some(server) = state.server.as_mut() {
                        server.user_changed |= user_changed;
                        server.id = None;
                        server.times = None;
                        // Until the new record exists, a failed save must
                        // still delete the client's cookie.
                        server.revoked = true;
                    }
                    let keys: Vec<String> = state.data.keys().map(str::to_owned).collect();
                    state.touched.extend(keys);
                    // The next round creates it.
                }
            }
        }
        Err(StoreError::corrupt("could not draw an unused session id"))
    }

    /// Decides the store work and takes the pending changes out of the
    /// state; they are put back when `taken` is dropped armed (see
    /// [`Taken`]).
    fn plan_flush<'a>(
        &'a self,
        settings: &ServerSettings,
        now: u64,
        create: bool,
        taken: &mut Taken<'a>,
    ) -> Plan {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(server) = state.server.as_mut() else {
            return Plan::Nothing;
        };
        if !server.loaded {
            return Plan::Nothing;
        }
        // Checked before the changes are taken, so that a later save still
        // has them (and refuses them again) rather than dropping them.
        let unwritable = state.touched.iter().find_map(|key| {
            let problem = crate::tagged::value_unwritable(state.data.get(key.as_str())?)?;
            Some((key, problem))
        });
        if let Some((key, problem)) = unwritable {
            return Plan::Unwritable {
                key: key.clone(),
                problem,
            };
        }
        let touched = std::mem::take(&mut state.touched);
        let mut flash_edit = state.flash_edit.take();
        let cleared = std::mem::take(&mut state.cleared);
        if touched.contains(PERMANENT_KEY) || cleared {
            server.permanence_changed = true;
        }
        let user_changed = std::mem::take(&mut server.user_changed);
        let refresh_forced = std::mem::take(&mut server.refresh_forced);
        let changed_atomically = std::mem::take(&mut server.changed_atomically);
        taken.pending = Some(Pending {
            touched: touched.clone(),
            flash_edit: flash_edit.clone(),
            cleared,
            user_changed,
            refresh_forced,
            changed_atomically,
        });
        let data_changed = cleared || !touched.is_empty();
        let keep = worth_keeping(&state.data, server.user_id.as_deref());
        match (&server.id, server.times) {
            (Some(id), Some(times)) => {
                let emptied = data_changed && !keep;
                if emptied && cleared {
                    // A logout: the record goes, whatever was written to it
                    // meanwhile.
                    return Plan::Delete { id: id.clone() };
                }
                if cleared {
                    return Plan::Replace { id: id.clone() };
                }
                let behind = settings.idle_expiry(now).saturating_sub(times.expires_at);
                // An atomic change is a change, which moves the expiry also
                // without SESSION_REFRESH_EACH_REQUEST; as the store did not,
                // that costs a write of its own, so only once behind, as a
                // read's refresh.
                let refresh_due = (settings.refresh_each_request || changed_atomically)
                    && behind >= settings.refresh_granularity();
                // Beyond a whole lifetime from now: set under a longer
                // PERMANENT_SESSION_LIFETIME than today's, brought in at its
                // first use (a read included), as Flask-Session's next save
                // does, however little shorter today's is. No tolerance, unlike
                // the refresh: the store cannot tell a longer lifetime from a
                // server whose clock is ahead, and any tolerance would keep
                // part of the longer one. The cost is with such clocks: the
                // server behind brings back each refresh of the one ahead,
                // and once they differ by the granularity or more, both write
                // on every request.
                let lifetime_shortened = times.expires_at > settings.idle_expiry(now);
                let expires_at = (data_changed
                    || user_changed
                    || refresh_due
                    || refresh_forced
                    || lifetime_shortened)
                    .then(|| settings.idle_expiry(now));
                let mut changes = Changes {
                    cleared,
                    expires_at,
                    // Only with a write made anyway (`create`: an atomic
                    // operation is about to write): a read-only request
                    // makes none.
                    absolute_expires_at: times
                        .absolute_expires_at
                        .filter(|_| server.absolute_unstored && (expires_at.is_some() || create)),
                    user_id: user_changed.then(|| server.user_id.clone()),
                    ..Changes::default()
                };
                for key in touched {
                    if let Some(edit) = flash_edit.take_if(|edit| edit.key == key) {
                        changes.list_edit = Some(edit);
                        continue;
                    }
                    match state.data.get(&key) {
                        Some(value) => {
                            changes.set.insert(key, value.clone());
                        }
                        None => changes.removed.push(key),
                    }
                }
                // Removals this request made may empty the record together
                // with another request's, though neither saw it emptied: the
                // store checks. Not before an atomic operation (`create`),
                // which writes to the record anyway.
                let removes = !changes.removed.is_empty()
                    || changes.user_id == Some(None)
                    || changes
                        .list_edit
                        .as_ref()
                        .is_some_and(|edit| !edit.taken.is_empty());
                if changes.is_empty() {
                    Plan::Nothing
                } else {
                    Plan::Update {
                        id: id.clone(),
                        changes,
                        delete_if_empty: emptied || (removes && !create),
                    }
                }
            }
            _ => {
                if !(create || ((data_changed || user_changed) && keep)) {
                    return Plan::Nothing;
                }
                Plan::Create {
                    record: Record {
                        data: state.data.clone(),
                        user_id: server.user_id.clone(),
                        created_at: now,
                        expires_at: settings.idle_expiry(now),
                        absolute_expires_at: settings.absolute_expiry(now),
                    },
                }
            }
        }
    }

    /// Replaces this request's view of `key` with the stored value, unless
    /// the request wrote it since.
    async fn reread_key(
        &self,
        settings: &ServerSettings,
        id: &SessionId,
        key: &str,
        now: u64,
    ) -> Result<(), StoreError> {
        let Some(mut record) = settings.store.load(id, now).await? else {
            // Ended meanwhile: the next store call finds out.
            return Ok(());
        };
        let mut state = self.lock();
        if !state.touched.contains(key) {
            match record.data.remove(key) {
                Some(value) => state.data.insert_borrowed(key, value),
                None => state.data.remove(key),
            };
        }
        Ok(())
    }

    /// Whether the session is kept in a store rather than in the cookie:
    /// only such a session has an id and a user, and can be listed or ended
    /// from the server. Not an access: the answer is the same for every
    /// visitor.
    pub fn is_server_side(&self) -> bool {
        self.lock().server.is_some()
    }

    /// The session's id, once it has a stored record (server-side only).
    /// Counts as an access: a response that shows it depends on the cookie
    /// (`Vary: Cookie`). `None` after [`clear`](Self::clear): that record is
    /// deleted at the end of the request, and what is written after the
    /// clear gets a new id then. After [`cycle_id`](Self::cycle_id), still
    /// the old id until the response is saved.
    pub fn id(&self) -> Option<SessionId> {
        if self.lock().cleared {
            return None;
        }
        self.record_id()
    }

    /// The `index`th id the client presented.
    fn incoming_id(&self, index: usize) -> Option<SessionId> {
        self.lock()
            .server
            .as_ref()
            .and_then(|server| server.incoming.get(index).cloned())
    }

    /// The id of the stored record this request loaded or created, cleared
    /// or not.
    fn record_id(&self) -> Option<SessionId> {
        let mut state = self.lock();
        state.note_read();
        state.server.as_ref().and_then(|server| server.id.clone())
    }

    /// The user this session belongs to (server-side only). Counts as an
    /// access, as [`id`](Self::id) does; so does
    /// [`user_sessions`](Self::user_sessions), which reads it.
    pub fn user_id(&self) -> Option<String> {
        let mut state = self.lock();
        state.note_read();
        state
            .server
            .as_ref()
            .and_then(|server| server.user_id.clone())
    }

    /// Ties the session to a user, so it can be listed among the user's
    /// sessions and ended by [`log_out_everywhere`](Self::log_out_everywhere).
    /// Call it with [`cycle_id`](Self::cycle_id) on login. A session tied
    /// to a user is stored, and kept, even with no data. Ignored by cookie
    /// sessions, which cannot be listed or revoked.
    pub fn set_user_id(&self, user_id: Option<&str>) {
        let mut state = self.lock();
        state.accessed = true;
        if state.server.is_some() {
            state.note_if_late();
        }
        if let Some(server) = state.server.as_mut() {
            server.user_id = user_id.map(str::to_owned);
            server.user_changed = true;
        }
    }

    /// Gives the session a fresh id and kills the old one, atomically, keeping
    /// the data: call it on login so an id planted before login (session
    /// fixation) is worthless. Cookie sessions need nothing: they have no id.
    ///
    /// The session keeps its creation time, and so its absolute expiry
    /// (`TESSERA_SESSION_ABSOLUTE_LIFETIME`): moving it, at login or now and
    /// then, never extends that bound, and a login late in an anonymous
    /// session's life ends when that session would have. For a login that
    /// counts the absolute lifetime from itself, [`clear`](Self::clear) the
    /// session and put back what the login carries over: what is saved then
    /// is a new session, under a new id.
    ///
    /// The move happens when the response is saved, with the request's
    /// writes, so a request whose response is never made (a timeout or a
    /// panic in a layer outside the session's, a client that went away)
    /// leaves the session where it was, under the id the browser still has.
    /// Until then [`id`](Self::id) is the old id. An operation that stores
    /// the session before the response (`increment`, `append`, and
    /// `user_sessions` or `log_out_everywhere` after `set_user_id`) moves it
    /// first: what this request wrote never goes under the old id, which
    /// an attacker may have planted (that request's browser then keeps an
    /// id that is gone if its response is never made). If the session ends or
    /// moves elsewhere first, one that belonged to a user (logged out
    /// everywhere) or held data (a cart, moved by the other login of a
    /// double click) is answered 409, as for any write to a session that
    /// ended, and the browser keeps the cookie it has (the other login's);
    /// an anonymous one that held only flash messages (emptied by a
    /// concurrent request that showed them, expired) is not: what this
    /// request wrote goes into a fresh session, and nothing else of the
    /// ended one.
    pub async fn cycle_id(&self) -> Result<(), SessionError> {
        if self.server_settings().is_none() {
            return Ok(());
        }
        let _turn = self.store_turn().await;
        self.load_in_turn().await?;
        let mut state = self.lock();
        state.accessed = true;
        state.note_if_late();
        if let Some(server) = state.server.as_mut() {
            // Not stored yet: it gets a fresh id when saved anyway.
            server.cycle_pending = server.id.is_some();
        }
        Ok(())
    }

    /// Moves the record to a fresh id if `cycle_id` asked for it.
    async fn cycle_if_pending(
        &self,
        settings: &ServerSettings,
        now: u64,
    ) -> Result<(), StoreError> {
        let old = {
            let mut guard = self.lock();
            let state = &mut *guard;
            let Some(server) = state.server.as_mut() else {
                return Ok(());
            };
            let pending = std::mem::take(&mut server.cycle_pending);
            // After `clear`, the save deletes the record and stores what
            // follows under a new id anyway.
            match &server.id {
                Some(id) if pending && !state.cleared => id.clone(),
                _ => return Ok(()),
            }
        };
        // Until the store answers, the move is still to make: a failed or
        // cancelled one is tried again by the save, rather than the writes
        // going under the old id.
        let mut still_pending = CyclePending {
            session: self,
            armed: true,
            moving_to: None,
        };
        let mut again = self
            .lock()
            .server
            .as_mut()
            .and_then(|server| server.cycle_again.take());
        for _ in 0..ID_ATTEMPTS {
            let retried = again.take();
            let new = retried.clone().unwrap_or_else(SessionId::generate);
            still_pending.moving_to = Some(new.clone());
            let moved = settings.store.cycle_id(&old, &new, now).await?
                // The move whose answer was lost had been made: the session
                // is under the new id already (ids are 256 random bits).
                || (retried.is_some() && settings.store.load(&new, now).await?.is_some());
            if moved {
                still_pending.armed = false;
                let mut state = self.lock();
                if let Some(server) = state.server.as_mut() {
                    server.id = Some(new);
                    server.id_changed = true;
                }
                return Ok(());
            }
            if settings.store.load(&old, now).await?.is_none() {
                still_pending.armed = false;
                self.cycle_found_it_ended();
                return Ok(());
            }
        }
        Err(StoreError::corrupt("could not draw an unused session id"))
    }

    /// The session ended before this request's `cycle_id` could move it:
    /// emptied and deleted by a concurrent request (one that showed its last
    /// flashes), expired, revoked, or moved by a concurrent login. A login
    /// on an anonymous session that held nothing a login carries over (only
    /// flash messages and its permanence) stands: what this request wrote
    /// itself (and whether the session is permanent) goes into a fresh
    /// session, which gives the visitor nothing it could not have had by
    /// coming without a cookie. Nothing else of the ended session carries
    /// over. A session that belonged to a user, or held data (a cart), is
    /// never restarted: nothing this request wrote is stored, and the
    /// response says so (409) and leaves the cookie alone. Restarted, the
    /// second login of a double click would leave the visitor, whose
    /// browser keeps the cookie that comes last, in a session without the
    /// data the first login carried, and an extra session in the user's
    /// list.
    fn cycle_found_it_ended(&self) {
        if self.held_only_flashes(None) {
            self.restart_with_own_writes();
        } else {
            self.mark_vanished();
            self.update_server(|server| server.writes_lost = true);
        }
    }

    /// Whether the session was anonymous when loaded and held nothing but
    /// flash messages and its permanence, and this request stored nothing
    /// in it either (by a flush before an atomic operation, or an
    /// `increment` or `append`): all the data it has is writes still to
    /// make (`written` too: writes a flush has taken). Ended meanwhile,
    /// such a session was most likely emptied and deleted by a concurrent
    /// request that showed its flashes, and restarting it with this
    /// request's writes gives the visitor nothing they could not have had
    /// by coming without a cookie. A key the request overwrites counts as
    /// held: the session held it (a pet's name that a form post changes
    /// while a login moves the session was restarted, alone in a fresh
    /// session whose cookie replaced the login's). (A login in another tab
    /// that moved a session of flashes alone looks the same to the store:
    /// the restarted session's cookie may then replace the login's.)
    fn held_only_flashes(&self, written: Option<&BTreeSet<String>>) -> bool {
        let state = self.lock();
        let Some(server) = state.server.as_ref() else {
            return false;
        };
        let stored_data = state.data.keys().any(|key| {
            key != PERMANENT_KEY
                && key != FLASHES_KEY
                && !state.touched.contains(key)
                && !written.is_some_and(|written| written.contains(key))
        });
        !server.owned_when_loaded && !server.held_data_when_loaded && !stored_data
    }

    /// Starts over in a fresh, anonymous session holding what this request
    /// wrote itself (and whether the session is permanent), which the next
    /// store call creates: nothing else of the ended session carries over.
    fn restart_with_own_writes(&self) {
        let own_writes = {
            let state = self.lock();
            let Some(server) = state.server.as_ref() else {
                return;
            };
            {
                let permanence =
                    (!state.touched.contains(PERMANENT_KEY)).then(|| PERMANENT_KEY.to_owned());
                let written: Vec<(String, Option<Value>)> = state
                    .touched
                    .iter()
                    .cloned()
                    .chain(permanence)
                    .map(|key| {
                        let value = match &state.flash_edit {
                            // Only the messages this request flashed: those
                            // it took were the ended session's.
                            Some(edit) if key == edit.key => edit.apply(None),
                            _ => state.data.get(&key).cloned(),
                        };
                        (key, value)
                    })
                    .collect();
                let user = server.user_changed.then(|| server.user_id.clone());
                (written, user)
            }
        };
        self.mark_vanished();
        let mut guard = self.lock();
        let state = &mut *guard;
        let (written, user) = own_writes;
        for (key, value) in written {
            match value {
                Some(value) => state.data.insert(key.clone(), value),
                None => state.data.remove(&key),
            };
            state.touched.insert(key);
        }
        if let (Some(server), Some(user)) = (state.server.as_mut(), user) {
            server.user_id = user;
            server.user_changed = true;
        }
    }

    /// The stored session went away while this request used it: revoked or
    /// expired, or moved to a new id by a concurrent login (`cycle_id`),
    /// whose response gave the browser the new id. So, unlike after this
    /// request's own `destroy`, the response leaves the browser's cookie
    /// alone: deleting it would log that login out again, and a dead id
    /// finds nothing on the next request anyway.
    fn mark_vanished(&self) {
        self.mark_revoked();
        self.update_server(|server| server.vanished = true);
    }

    /// The stored session is gone: from now on this is a fresh, empty,
    /// anonymous session (nothing of the revoked one may resurface), which is
    /// stored under a new id only if something is written to it.
    fn mark_revoked(&self) {
        let mut guard = self.lock();
        let state = &mut *guard;
        state.accessed = true;
        let Some(server) = state.server.as_mut() else {
            return;
        };
        server.id = None;
        server.times = None;
        server.user_id = None;
        server.user_changed = false;
        server.cycle_pending = false;
        server.revoked = true;
        server.vanished = false;
        state.data.clear();
        state.touched.clear();
        state.flash_edit = None;
        state.cleared = false;
        if server.settings.session_permanent {
            state
                .data
                .insert(PERMANENT_KEY.to_owned(), Value::Bool(true));
        }
    }

    /// Atomically adds `by` to the integer under `key` (absent or null,
    /// Python's `None`, counts as 0)
    /// and returns the new value. Server-side, concurrent requests never lose
    /// an increment; a cookie session can only do this within one request.
    pub async fn increment(&self, key: &str, by: i64) -> Result<i64, SessionError> {
        let Some(settings) = self.server_settings() else {
            let next = crate::store::incremented(key, self.get_value(key).as_ref(), by)?;
            self.insert_value(key, next);
            return Ok(next);
        };
        let _turn = self.store_turn().await;
        let store = &settings.store;
        let (next, _, _) = self
            .on_stored_record(|id, now| async move { store.increment(&id, key, by, now).await })
            .await?;
        self.apply_atomic(key, next.map(Value::from))?;
        next.ok_or(SessionError::Revoked)
    }

    /// Atomically appends `value` to the list under `key` (absent or null
    /// counts as empty) and returns the new length; server-side, concurrent appends are
    /// all kept. Any `Serialize` item goes in through
    /// [`Value::from_serialize`]. An item that would nest deeper than a
    /// session is read back with is refused as
    /// [`insert`](Self::insert) refuses it.
    pub async fn append(&self, key: &str, value: impl Into<Value>) -> Result<usize, SessionError> {
        let value = value.into();
        if let Some(problem) = crate::tagged::list_item_under_unwritable(key, &value) {
            return Err(SessionError::Serialize {
                key: key.to_owned(),
                source: crate::session::unwritable(problem),
            });
        }
        let Some(settings) = self.server_settings() else {
            let mut state = self.lock();
            // Read as `increment` reads it: a refused append writes nothing,
            // so the session is not modified.
            state.note_read();
            let length = crate::store::append_in_map(&mut state.data, key, &value)?;
            state.touch(key);
            return Ok(length);
        };
        let _turn = self.store_turn().await;
        let store = &settings.store;
        let item = &value;
        let (appended, id, now) = self
            .on_stored_record(|id, now| async move { store.append(&id, key, item, now).await })
            .await?;
        let Some(length) = appended else {
            self.apply_atomic(key, None)?;
            return Err(SessionError::Revoked);
        };
        // Read the list back so this request sees what others appended.
        // A read that fails leaves the append standing too (answering the
        // error would have the item added twice by a retry).
        let stored = settings
            .store
            .load(&id, now)
            .await
            .ok()
            .flatten()
            .and_then(|mut record| record.data.remove(key));
        // A login or logout elsewhere may have moved or ended the session
        // since, taking the item with it: the append stands (answering
        // `Revoked` would have the item added twice by a retry), and this
        // request sees the list as it knew it, with the item.
        let list = stored.unwrap_or_else(|| self.list_as_known_with(key, &value));
        self.apply_atomic(key, Some(list))?;
        Ok(length)
    }

    /// The list under `key` as this request knows it, with `item` appended.
    fn list_as_known_with(&self, key: &str, item: &Value) -> Value {
        let mut view = Map::new();
        if let Some(current) = self.lock().data.get(key) {
            view.insert(key.to_owned(), current.clone());
        }
        match crate::store::append_in_map(&mut view, key, item) {
            Ok(_) => view.remove(key).unwrap_or(Value::Null),
            Err(_) => Value::List(vec![item.clone()]),
        }
    }

    /// Runs the atomic `operation` on the stored record (created first if
    /// there is none yet), with its id and time; `None` if the record is
    /// gone. One that held only flash messages when loaded, ended unchanged
    /// (nothing was added to it), is run again in a fresh session instead,
    /// as a save stores the request's writes (see `held_only_flashes`).
    async fn on_stored_record<T, F>(
        &self,
        operation: impl Fn(SessionId, u64) -> F,
    ) -> Result<(Option<T>, SessionId, u64), SessionError>
    where
        F: Future<Output = Result<Option<T>, StoreError>>,
    {
        let (id, now) = self.stored_id().await?;
        let done = self.noting_outage(operation(id.clone(), now).await)?;
        if done.is_some() || !self.held_only_flashes(None) {
            return Ok((done, id, now));
        }
        self.restart_with_own_writes();
        let (id, now) = self.stored_id().await?;
        let done = self.noting_outage(operation(id.clone(), now).await)?;
        Ok((done, id, now))
    }

    /// The stored record's id, creating the record (with everything written
    /// so far) if there is none yet.
    async fn stored_id(&self) -> Result<(SessionId, u64), SessionError> {
        if self.server_is(|server| server.ended_elsewhere) {
            return Err(SessionError::Revoked);
        }
        self.load_in_turn().await?;
        // No record yet, or a new one after a `clear`: made now (a spawned
        // task's increment on a new visitor), it would be one no cookie
        // names.
        if self.lock().response_saved && self.id().is_none() {
            self.lock().note_if_late();
            return Err(SessionError::Revoked);
        }
        let now = unix_now();
        let stored = self.store_now(now, true).await;
        self.noting_outage(stored)?;
        let id = self.id();
        if id.is_none() {
            // The caller is told, with the error below.
            self.update_server(|server| {
                // Not after this request's own `clear` (a spawned task's,
                // landing meanwhile), which `id` also answers `None` for.
                server.ended_elsewhere |= server.vanished || server.writes_lost;
                server.writes_lost = false;
            });
        }
        id.map(|id| (id, now)).ok_or(SessionError::Revoked)
    }

    /// Shows an atomic operation's result in this request's view of the data
    /// without scheduling a write of it.
    fn apply_atomic(&self, key: &str, value: Option<Value>) -> Result<(), SessionError> {
        match value {
            Some(value) => {
                let mut state = self.lock();
                state.accessed = true;
                state.modified = true;
                state.data.insert_borrowed(key, value);
                if let Some(server) = state.server.as_mut() {
                    server.changed_atomically = true;
                }
                Ok(())
            }
            None => {
                self.mark_vanished();
                self.update_server(|server| server.ended_elsewhere = true);
                Err(SessionError::Revoked)
            }
        }
    }

    /// Ends this session now: the record is deleted, so a copy of the cookie
    /// is worthless at once, and the response deletes the cookie. (In
    /// Flask-Session's layout, shared with a Flask app, a Flask request
    /// running meanwhile may write the session back: Flask-Session saves
    /// without checking; the README's Flask-Session section says how to
    /// avoid it.)
    ///
    /// When it fails, the request's writes are not saved and the response is
    /// answered as a failed save (503 for an outage), whatever the handler
    /// returns: the session was not ended, and ending it is not tried again.
    pub async fn destroy(&self) -> Result<(), SessionError> {
        if self.server_settings().is_none() {
            self.clear();
            return Ok(());
        }
        self.set_end_requested(true);
        let _turn = self.store_turn().await;
        self.set_end_requested(false);
        self.destroy_in_turn().await
    }

    fn set_end_requested(&self, requested: bool) {
        self.update_server(|server| server.end_requested = requested);
    }

    /// [`destroy`](Self::destroy), for an operation that holds the store
    /// turn. Cleared only now, in its turn: an operation before it (in a
    /// `join!`) still sees the session.
    async fn destroy_in_turn(&self) -> Result<(), SessionError> {
        self.clear();
        let Some(settings) = self.server_settings() else {
            return Ok(());
        };
        let deleted = async {
            self.load_in_turn().await?;
            if let Some(id) = self.record_id() {
                settings.store.delete(&id).await?;
            }
            self.delete_lost_records().await?;
            Ok::<_, StoreError>(())
        }
        .await;
        if let Err(error) = deleted {
            self.note_end_failed(&error);
            return Err(error.into());
        }
        self.update_server(|server| {
            // Tried again by the handler, and done; the store answers.
            server.end_failed = None;
            server.outage_met = false;
        });
        self.mark_revoked();
        Ok(())
    }

    /// Deletes what a create or a move whose answer was lost may have made
    /// and nothing took up since (this session ended, or was cleared): not
    /// left as an orphan among the user's sessions, nor with the data.
    async fn delete_lost_records(&self) -> Result<(), StoreError> {
        let lost: Vec<SessionId> = {
            let mut state = self.lock();
            let Some(server) = state.server.as_mut() else {
                return Ok(());
            };
            server
                .create_again
                .take()
                .into_iter()
                .chain(server.cycle_again.take())
                .collect()
        };
        if lost.is_empty() {
            return Ok(());
        }
        let Some(settings) = self.server_settings() else {
            return Ok(());
        };
        for id in lost {
            settings.store.delete(&id).await?;
        }
        Ok(())
    }

    /// Notes an outage met by a store call made before the response, for
    /// the save (see `outage_met`).
    fn noting_outage<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        let outage = result.as_ref().is_err_and(StoreError::is_outage);
        // A later call that the store answered (the handler tried again)
        // finds it back: the save may call it.
        self.update_server(|server| server.outage_met = outage);
        result
    }

    /// A store call of this request failed already, so the save will not
    /// call the store (its failure was the handler's to log).
    pub(crate) fn failed_earlier(&self) -> bool {
        self.server_is(|server| server.outage_met || server.end_failed.is_some())
    }

    /// Whether this is a server-side session whose state passes `test`.
    fn server_is(&self, test: impl FnOnce(&ServerState) -> bool) -> bool {
        self.lock().server.as_ref().is_some_and(test)
    }

    /// Applies `change` to the server-side state, if the session has one.
    fn update_server(&self, change: impl FnOnce(&mut ServerState)) {
        if let Some(server) = self.lock().server.as_mut() {
            change(server);
        }
    }

    /// Stores now a tie to a user that this request made (`set_user_id`,
    /// with the request's other writes): the store's listing and
    /// `delete_user` go by what is stored, so a login followed by "your
    /// devices" in one request would miss this session.
    async fn store_user_tie(&self) -> Result<(), StoreError> {
        if self.server_is(|server| server.user_changed) {
            self.store_now(unix_now(), false).await?;
        }
        Ok(())
    }

    /// Writes what this request wrote so far to the store before the end of
    /// the request (for an operation that needs it there), moving the
    /// session to its new id first if `cycle_id` asked: written under the
    /// old id, a login's user would be the planted id's until the save
    /// moved it, and for good if the response were never made.
    async fn store_now(&self, now: u64, create: bool) -> Result<(), StoreError> {
        if let Some(settings) = self.server_settings() {
            if self.server_is(|server| server.ended_elsewhere) {
                // Written on after a `Revoked` without starting over: not
                // stored (the save answers 409, see
                // `note_writes_after_ended_elsewhere`).
                return Ok(());
            }
            self.cycle_if_pending(&settings, now).await?;
            if self.server_is(|server| server.writes_lost) {
                // The session ended (or moved) before the move, and this
                // request's writes go nowhere: not into a fresh record,
                // whose cookie would replace the other login's.
                return Ok(());
            }
        }
        self.flush(now, create).await
    }

    /// At the save: if the session was found ended elsewhere
    /// (`ended_elsewhere`) and the handler wrote on without starting over,
    /// those writes went nowhere (`store_now` stores nothing then), and the
    /// response is answered as for writes to a session that ended (409).
    /// Stored, they would have started a fresh session whose cookie, coming
    /// with the response, would log the visitor out of the other click's
    /// login. Noted only here: a `clear` or `destroy` before the save
    /// starts over, and its fresh session is saved.
    fn note_writes_after_ended_elsewhere(&self) {
        let mut state = self.lock();
        let wrote = !state.touched.is_empty();
        if let Some(server) = state
            .server
            .as_mut()
            .filter(|server| server.ended_elsewhere)
        {
            server.writes_lost |= wrote || server.user_changed;
        }
    }

    /// Every live session of this session's user (for a "your devices" page).
    pub async fn user_sessions(&self) -> Result<Vec<SessionInfo>, SessionError> {
        let settings = self
            .server_settings()
            .ok_or(SessionError::NotServerSide("listing a user's sessions"))?;
        let _turn = self.store_turn().await;
        let loaded = self.load_in_turn().await;
        self.noting_outage(loaded)?;
        let tied = self.store_user_tie().await;
        self.noting_outage(tied)?;
        let Some(user_id) = self.user_id() else {
            return Ok(Vec::new());
        };
        let now = unix_now();
        let mut sessions = Vec::new();
        loop {
            let page = settings
                .store
                .list(
                    Some(&user_id),
                    sessions.last().map(|s: &SessionInfo| &s.id),
                    500,
                    now,
                )
                .await;
            let page = self.noting_outage(page)?;
            // Until an empty page: a store may leave unreadable sessions out
            // of a page, so a short one is not the end.
            if page.is_empty() {
                return Ok(sessions);
            }
            sessions.extend(page);
        }
    }

    /// Ends every session of this session's user, this one included ("log
    /// out everywhere"); returns how many were ended. Without a user, ends
    /// just this session. When it fails, the response is answered as a
    /// failed save, whatever the handler returns, as for
    /// [`destroy`](Self::destroy).
    pub async fn log_out_everywhere(&self) -> Result<u64, SessionError> {
        let settings = self
            .server_settings()
            .ok_or(SessionError::NotServerSide("log out everywhere"))?;
        let _turn = self.store_turn().await;
        let ended = async {
            self.load_in_turn().await?;
            self.store_user_tie().await?;
            match self.user_id() {
                Some(user_id) => settings.store.delete_user(&user_id).await,
                None => Ok(u64::from(self.record_id().is_some())),
            }
        }
        .await;
        let ended = match ended {
            Ok(ended) => ended,
            Err(error) => {
                // As for a failed `destroy`: a handler that goes on must not
                // tell the visitor the sessions were ended.
                self.note_end_failed(&error);
                return Err(error.into());
            }
        };
        self.destroy_in_turn().await?;
        Ok(ended)
    }

    /// Records that ending the session failed, for the save (see
    /// `end_failed`).
    fn note_end_failed(&self, error: &StoreError) {
        let failure = EndFailure {
            outage: error.is_outage(),
            message: error.to_string(),
        };
        self.update_server(|server| server.end_failed = Some(failure));
    }
}

/// What the response must say about the cookie after a server-side save.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CookieAction {
    Keep,
    Set {
        id: SessionId,
        expires_at: Option<u64>,
    },
    Delete,
}

/// What saving a server-side session at the end of a request did.
pub(crate) struct Saved {
    /// What to do with the cookie.
    pub(crate) cookie: CookieAction,
    /// Whether the response depends on the cookie (`Vary`).
    pub(crate) accessed: bool,
    /// The session ended (revoked, expired) while the request used it, so
    /// what the request wrote to it was not stored: not to be acknowledged.
    pub(crate) writes_lost: bool,
}

/// Saves a server-side session at the end of a request and says what the
/// cookie should become. A session never used costs nothing.
pub(crate) async fn save(session: &Session) -> Result<Saved, StoreError> {
    // After the store calls of the handler's spawned tasks that are on
    // their way, and what is written meanwhile; from here on, the save takes
    // what it stores, and a write made while it waits on the store is saved
    // by nothing, and is told (`response_saved`).
    let _turn = session.store_turn().await;
    if session.server_is(|server| server.end_requested) {
        // A `destroy` cancelled while it waited for its turn.
        session.clear();
        session.set_end_requested(false);
    }
    session.lock().response_saved = true;
    let (loaded, written) = {
        let state = session.lock();
        let server = state.server.as_ref();
        if let Some(failure) = server.and_then(|server| server.end_failed.as_ref()) {
            let message = format!(
                "ending the session failed earlier in this request ({}); not tried again",
                failure.message
            );
            return Err(if failure.outage {
                StoreError::unavailable(std::io::Error::other(message))
            } else {
                StoreError::config(message)
            });
        }
        let written = !state.touched.is_empty()
            || state.cleared
            || server.is_some_and(|server| server.user_changed || server.refresh_forced);
        if server.is_some_and(|server| server.outage_met) {
            let pending = written
                || server.is_some_and(|server| server.cycle_pending || server.changed_atomically);
            if pending {
                return Err(StoreError::unavailable(std::io::Error::other(
                    "the store failed earlier in this request; not tried again",
                )));
            }
            return Ok(Saved {
                cookie: cookie_action(&state),
                // The store, out of reach, was asked because the cookie named
                // a session (or to store one): whatever the application
                // answered (its own 503, a page without the session), the
                // answer depends on the cookie, and caches must know it
                // (`Vary: Cookie`).
                accessed: true,
                writes_lost: false,
            });
        }
        (server.is_some_and(ServerState::is_loaded), written)
    };
    if !loaded && written {
        // Written but never loaded: middleware that took the session from
        // the request's extensions and wrote without `load`, for a handler
        // that does not use it. Loading merges those writes over what is
        // stored, as it would have at the first read.
        session.load_in_turn().await?;
    } else if !loaded {
        return Ok(Saved {
            cookie: CookieAction::Keep,
            accessed: session.is_accessed(),
            writes_lost: false,
        });
    }
    session.note_writes_after_ended_elsewhere();
    session.store_now(unix_now(), false).await?;
    session.delete_lost_records().await?;
    let mut state = session.lock();
    let writes_lost = state
        .server
        .as_mut()
        .is_some_and(|server| std::mem::take(&mut server.writes_lost));
    Ok(Saved {
        cookie: cookie_action(&state),
        accessed: state.accessed,
        writes_lost,
    })
}

/// Whether `changes`, not stored because the session ended or moved
/// meanwhile, held something the request wrote. Showing flash messages
/// (taking them from the front of the list, adding none) does not: the
/// page that showed them goes out, and they stay in the session that ended,
/// or in the one a login in another tab moved it to, where they show once
/// more. A page view is not turned into an error page by a login beside it.
fn loses_writes(changes: &Changes) -> bool {
    changes.cleared
        || !changes.set.is_empty()
        || !changes.removed.is_empty()
        || changes.user_id.is_some()
        || changes
            .list_edit
            .as_ref()
            .is_some_and(|edit| !edit.added.is_empty())
}

/// Whether `changes` only move the session's expiry (a refresh, or the
/// move an `increment` or `append` made due, whose own write is stored),
/// which the request did not ask for itself (`mark_modified`, Flask's
/// `session.modified = True`, does).
fn only_refreshes(changes: &Changes, pending: Option<&Pending>) -> bool {
    !changes.changes_data()
        && changes.user_id.is_none()
        && !pending.is_some_and(|pending| pending.refresh_forced)
}

/// The cookie a response must still carry when saving failed: only what
/// was written to the store before the save, an id moved by `cycle_id` or a
/// session ended by `destroy`.
pub(crate) fn committed_cookie_action(session: &Session) -> CookieAction {
    let state = session.lock();
    match &state.server {
        Some(server) if server.id_changed || (server.revoked && server.id.is_none()) => {
            cookie_action(&state)
        }
        _ => CookieAction::Keep,
    }
}

fn cookie_action(state: &State) -> CookieAction {
    let Some(server) = &state.server else {
        return CookieAction::Keep;
    };
    if server.revoked && server.id.is_none() {
        // A session that vanished leaves the cookie alone even after this
        // request moved or created it (see `mark_vanished`).
        return if !server.vanished && (server.had_cookie || server.id_changed) {
            CookieAction::Delete
        } else {
            CookieAction::Keep
        };
    }
    let (Some(id), Some(times)) = (&server.id, server.times) else {
        return CookieAction::Keep;
    };
    let permanent = state.data.get(PERMANENT_KEY).is_some_and(Value::is_truthy);
    let send = server.id_changed || server.permanence_changed || (permanent && server.expiry_moved);
    if !send {
        return CookieAction::Keep;
    }
    // The record lasts until the second after its lifetime ends (see
    // `idle_expiry`); the cookie, as Flask's (`now + lifetime`, in whole
    // seconds), expires with that lifetime, as Flask-Session's does.
    // An absolute expiry that comes first is a time fixed at creation,
    // rounded up already: the cookie lasts until it.
    let expires_at = permanent.then(|| match times.absolute_expires_at {
        Some(absolute) if absolute <= times.expires_at => absolute,
        _ => times.expires_at.saturating_sub(1),
    });
    CookieAction::Set {
        id: id.clone(),
        expires_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored creation time is whatever a store's other writers put
    /// there: u64::MAX overflowed (a panic in debug builds, a session
    /// ended at once in release ones).
    #[test]
    fn expiries_saturate_rather_than_overflow() {
        let settings = ServerSettings {
            store: Arc::new(crate::store::MemoryStore::default()),
            idle_secs: 3600,
            absolute_secs: Some(7200),
            refresh_each_request: true,
            session_permanent: true,
        };
        assert_eq!(settings.absolute_expiry(10), Some(7211));
        assert_eq!(settings.absolute_expiry(u64::MAX), Some(u64::MAX));
        assert_eq!(settings.idle_expiry(10), 3611);
        assert_eq!(settings.idle_expiry(u64::MAX - 1), u64::MAX);
    }
}
