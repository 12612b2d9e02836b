//! What the store benchmarks (`sqlite_store`, `store_scale`) share: latency
//! percentiles, a cheap random sequence, load and save latency measured in
//! rounds alternating between two sizes, and the sweep paced as the
//! background sweeper paces it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera::store::{Changes, SessionId, SessionStore};
use tessera::{Map, Value};

/// The background sweeper's batch and shortest pause (`SWEEP_BATCH`,
/// `SWEEP_PAUSE` in `tessera/src/core.rs`).
pub(crate) const SWEEP_BATCH: usize = 64;
pub(crate) const SWEEP_PAUSE: Duration = Duration::from_millis(2);

/// Mirrors `sweep_pause` in `tessera/src/core.rs` (private there): after each
/// batch the sweeper pauses as long as the batch took, at least `SWEEP_PAUSE`,
/// so the sweep measured here leaves requests the same room as the real one.
fn sweep_pause(took: Duration) -> Duration {
    took.max(SWEEP_PAUSE)
}

/// A finished sweep: what it removed, how long it took and how much of that
/// was pausing.
pub(crate) struct Sweep {
    pub(crate) purged: u64,
    pub(crate) seconds: f64,
    pub(crate) paused: Duration,
}

impl Sweep {
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "purged": self.purged,
            "seconds": self.seconds,
            "batch": SWEEP_BATCH,
            "min_pause_ms": SWEEP_PAUSE.as_millis() as u64,
            "paused_seconds": self.paused.as_secs_f64(),
        })
    }
}

/// Purges what is expired at `now` in batches, pausing after each as the
/// background sweeper does, until a batch comes back short.
pub(crate) async fn sweep(store: &dyn SessionStore, now: u64) -> Sweep {
    let started = Instant::now();
    let mut purged = 0;
    let mut paused = Duration::ZERO;
    loop {
        let batch = Instant::now();
        let count = store.purge_expired(now, SWEEP_BATCH).await.expect("purge");
        purged += count;
        if count < SWEEP_BATCH as u64 {
            break;
        }
        let pause = Instant::now();
        tokio::time::sleep(sweep_pause(batch.elapsed())).await;
        paused += pause.elapsed();
    }
    Sweep {
        purged,
        seconds: started.elapsed().as_secs_f64(),
        paused,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

pub(crate) fn summary(mut samples: Vec<Duration>) -> serde_json::Value {
    samples.sort();
    serde_json::json!({
        "samples": samples.len(),
        "p50_us": percentile(&samples, 0.50),
        "p99_us": percentile(&samples, 0.99),
        "max_us": percentile(&samples, 1.0),
    })
}

/// A cheap deterministic pseudo-random sequence (xorshift).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// One size's store under measurement: its live sessions, the random
/// sequence that picks among them (kept from round to round) and every
/// sample so far.
pub(crate) struct StoreAtSize {
    store: Arc<dyn SessionStore>,
    id: Box<dyn Fn(usize) -> SessionId + Send + Sync>,
    live: usize,
    now: u64,
    rng: Rng,
    loads: Vec<Duration>,
    saves: Vec<Duration>,
    rounds: Vec<serde_json::Value>,
}

impl StoreAtSize {
    /// Sessions `id(0)..id(live)` of `store`, all live at `now`; `warm`
    /// random loads first, as a running server's caches would be.
    pub(crate) async fn new(
        store: Arc<dyn SessionStore>,
        id: impl Fn(usize) -> SessionId + Send + Sync + 'static,
        live: usize,
        now: u64,
        warm: usize,
    ) -> Self {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..warm {
            let _ = store.load(&id(rng.below(live)), now).await;
        }
        Self {
            store,
            id: Box::new(id),
            live,
            now,
            rng,
            loads: Vec::new(),
            saves: Vec::new(),
            rounds: Vec::new(),
        }
    }

    /// One round: `samples` random loads, then as many random saves of one
    /// key with the expiry moved two hours past `now`, one at a time.
    async fn round(&mut self, samples: usize) {
        let mut loads = Vec::with_capacity(samples);
        for _ in 0..samples {
            let sid = (self.id)(self.rng.below(self.live));
            let t = Instant::now();
            let record = self.store.load(&sid, self.now).await.expect("load");
            loads.push(t.elapsed());
            assert!(record.is_some());
        }
        let mut saves = Vec::with_capacity(samples);
        for i in 0..samples {
            let sid = (self.id)(self.rng.below(self.live));
            let changes = Changes {
                set: Map::from([("visits".to_owned(), Value::from(i))]),
                expires_at: Some(self.now + 7200),
                ..Changes::default()
            };
            let t = Instant::now();
            let applied = self
                .store
                .update(&sid, &changes, self.now)
                .await
                .expect("update");
            saves.push(t.elapsed());
            assert!(applied);
        }
        self.loads.extend_from_slice(&loads);
        self.saves.extend_from_slice(&saves);
        self.rounds
            .push(serde_json::json!({ "load": summary(loads), "save": summary(saves) }));
    }

    /// The size, the percentiles over every round and each round's.
    pub(crate) fn results(self) -> serde_json::Value {
        serde_json::json!({
            "stored": self.live,
            "load": summary(self.loads),
            "save": summary(self.saves),
            "rounds": self.rounds,
        })
    }
}

/// Both sizes in `rounds` rounds of `samples` loads and saves, alternating
/// which goes first (small, large, then large, small, ...), so a change in
/// the machine's load during the run falls on both alike.
pub(crate) async fn alternate(
    small: &mut StoreAtSize,
    large: &mut StoreAtSize,
    rounds: usize,
    samples: usize,
) {
    for round in 0..rounds {
        if round % 2 == 0 {
            small.round(samples).await;
            large.round(samples).await;
        } else {
            large.round(samples).await;
            small.round(samples).await;
        }
    }
}
