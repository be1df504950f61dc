//! How long the agent's own work takes: detection and store writes, as
//! Prometheus histograms (`/metrics`), so that a slow disk or a costly
//! detector shows before it delays alerts.

use std::time::Instant;

use prometheus_client::metrics::{
    family::Family,
    histogram::{Histogram, exponential_buckets},
};

/// Histograms labelled by what was timed.
pub type Latencies = Family<Stage, Histogram, fn() -> Histogram>;

/// What a latency sample measures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct Stage {
    pub stage: &'static str,
}

/// Detection on a kernel event, a payload finding or a tick.
pub const DETECT_EVENT: Stage = Stage { stage: "event" };
pub const DETECT_FINDING: Stage = Stage { stage: "finding" };
pub const DETECT_TICK: Stage = Stage { stage: "tick" };
/// Store writes: alerts (one transaction per batch) and a tick's history.
pub const STORE_ALERTS: Stage = Stage { stage: "alerts" };
pub const STORE_HISTORY: Stage = Stage { stage: "history" };

/// The agent's latency histograms; clones share the same counts.
#[derive(Clone)]
pub struct Timings {
    pub detect: Latencies,
    pub store: Latencies,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            detect: Family::new_with_constructor(buckets),
            store: Family::new_with_constructor(buckets),
        }
    }
}

/// 10 µs to about 5 s, doubling: detection takes microseconds, a durable
/// store commit milliseconds, a failing disk seconds.
fn buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_01, 2.0, 20))
}

/// Records the seconds since `start` in `family`'s `stage` histogram.
pub fn observe(family: &Latencies, stage: &Stage, start: Instant) {
    family
        .get_or_create(stage)
        .observe(start.elapsed().as_secs_f64());
}
