//! Load-time switches for the program's parts (`nta_common::maps::feature`).

use aya_ebpf::Global;
use nta_common::maps::feature;

/// Which parts run. The agent leaves it at `ALL`; benchmarks override it
/// (`FEATURES_GLOBAL`) to time the parts one by one. It lives in frozen
/// read-only data, so the verifier sees a constant and prunes the parts
/// that are off: the production program pays nothing for the switch.
#[unsafe(no_mangle)]
static NTA_FEATURES: Global<u32> = Global::new(feature::ALL);

/// Whether `part` (a `feature` bit) runs.
#[inline(always)]
pub fn on(part: u32) -> bool {
    NTA_FEATURES.load() & part != 0
}
