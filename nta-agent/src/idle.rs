//! When the agent forgets a source or a destination host that has gone
//! quiet: the kernel's tables never evict, so the agent frees their idle
//! entries as it reads them, and a capture's tables do the same on the
//! capture's clock.

use nta_common::maps::Thresholds;

/// Idle at least this long, an entry is freed: past every window, so
/// that a source that comes back starts them afresh anyway, and what it
/// loses is only its totals, which the agent has read.
pub const IDLE_FLOOR_NS: u64 = 60_000_000_000;
/// Idle at least this long, an entry is freed while the table is under
/// pressure: the short windows' state, which a flood's keys need, stays.
pub const PRESSED_IDLE_FLOOR_NS: u64 = 10_000_000_000;

/// When the agent frees an idle entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Idle {
    /// Idle this long (ns), an entry is freed.
    pub after_ns: u64,
    /// Idle this long, an entry is freed while three quarters of the
    /// table's ways or more are taken: the LRU map's eviction, which the
    /// tables do not do, so that a spoofed flood's keys make room for the
    /// next ones within seconds.
    pub pressed_after_ns: u64,
}

impl Idle {
    /// Past every window of `t` and [`IDLE_FLOOR_NS`]; under pressure,
    /// past the rate, fast, weighted and burst windows and
    /// [`PRESSED_IDLE_FLOOR_NS`].
    pub fn for_thresholds(t: &Thresholds) -> Self {
        let short = [
            t.rate_window_ns,
            t.fast_window_ns,
            t.weighted_window_ns,
            t.burst_window_ns,
        ];
        let pressed = short.into_iter().fold(PRESSED_IDLE_FLOOR_NS, u64::max);
        let every = [pressed, t.slow_window_ns, t.sketch_window_ns];
        Self {
            after_ns: every.into_iter().fold(IDLE_FLOOR_NS, u64::max),
            pressed_after_ns: pressed,
        }
    }

    /// How long an entry must have been idle to be freed from a table of
    /// `capacity` entries of which `taken` are taken.
    pub fn after_for(&self, taken: usize, capacity: usize) -> u64 {
        if taken >= capacity / 4 * 3 {
            self.pressed_after_ns
        } else {
            self.after_ns
        }
    }
}

impl Default for Idle {
    fn default() -> Self {
        Self::for_thresholds(&Thresholds::DISABLED)
    }
}
