//! A runtime of tessera's own, for store work that must go on whatever the
//! runtime that started it does next.
//!
//! A single-threaded tokio runtime (actix-web runs one per worker, and so
//! does `#[tokio::test]` or a thread that calls `Runtime::block_on`) runs
//! its tasks only while its thread drives it. Work that callers on other
//! threads wait for (the operations queued behind one on its way, a batch
//! of SQLite increments) would wait there for that thread: behind a handler
//! that blocks it, or for good once its `block_on` returned; and when that
//! runtime is dropped, its callers would be told that an operation never
//! sent may have been carried out; a timer that others count on (the
//! outage log's summary a second after failures held back) would never
//! fire. PostgreSQL's pooled connections, which
//! answer only while the runtime that opened them runs, are opened here for
//! the same reason.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::task::JoinHandle;
use tracing::instrument::WithSubscriber as _;

/// The runtime of a thread that does nothing but drive what is spawned on
/// it, for as long as the process lives.
pub(crate) fn runtime() -> &'static Handle {
    static RUNTIME: OnceLock<Handle> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for tessera's stores");
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name("tessera-stores".to_owned())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))
            .expect("a thread for tessera's stores");
        handle
    })
}

/// Whether the caller runs on a single-threaded runtime (or on none), whose
/// tasks run only while its thread drives it.
pub(crate) fn single_threaded() -> bool {
    Handle::try_current().map_or(true, |runtime| {
        runtime.runtime_flavor() == RuntimeFlavor::CurrentThread
    })
}

/// Spawns `task`, which others wait for, where it runs to its end: on the
/// caller's runtime if that is multi-threaded (its workers run its tasks
/// whatever this thread does next), else on [`runtime`].
pub(crate) fn spawn<F>(task: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if single_threaded() {
        // Its log lines go where the caller's would, also to a subscriber
        // set for the caller's thread alone.
        runtime().spawn(task.with_current_subscriber())
    } else {
        Handle::current().spawn(task)
    }
}
