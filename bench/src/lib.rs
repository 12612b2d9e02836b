//! HTTP benchmarks of tessera against peer session libraries.
//!
//! Two binaries:
//!
//! - `bench-server --server NAME --port PORT [--threads N]` serves one route,
//!   the same for every server: `GET /` reads the string `user` from the
//!   session and increments the integer `counter` in it, answering the new
//!   value as plain text. See [`server`] for the servers it knows.
//! - `tessera-bench http ...` starts each server in turn (and Flask under
//!   gunicorn), loads it with `wrk`, checks the session's counter afterwards
//!   and writes a Markdown report. See [`orchestrate`].
//!
//! - `tessera-bench flamegraph ...` draws a flame graph of a `perf`
//!   profile, for `scripts/profile.sh`. See [`flamegraph`].
//!
//! The rest is shared: [`targets`] lists what is measured, [`wrk`] parses
//! wrk's output, [`client`] is the tiny HTTP client that creates the session
//! and reads the counter back, and [`report`] writes the Markdown.

pub mod client;
pub mod flamegraph;
pub mod orchestrate;
pub mod report;
pub mod server;
pub mod targets;
pub mod wrk;

/// The secret key every server signs (or encrypts) its cookies with: 64
/// bytes, as actix-web's `Key` needs, and strong enough for tessera not to
/// warn. Benchmark-only: never use a key from a source file in production.
pub const SECRET_KEY: &str = "tessera-bench-secret-key-4c1f0e9a7b2d6853e1f4a09c7d2b5e8f31a6c0d";
