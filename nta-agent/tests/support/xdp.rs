//! Shared by the tests that run the XDP program on crafted frames.

use nta_common::maps::Thresholds;

/// What the program returns for every frame but a blocked one: it counts.
pub const XDP_PASS: u32 = 2;
/// What it returns for an IP packet whose source is in the blocklist.
pub const XDP_DROP: u32 = 1;

/// `CLOCK_MONOTONIC_COARSE`, the clock behind `bpf_ktime_get_coarse_ns`.
pub fn coarse_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes a timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC_COARSE)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A window far longer than any test, yet not longer than the time since
/// boot: a new destination's window starts at 0 (boot), so a window longer
/// than the uptime would not restart at its first SYN but run on from boot.
pub fn long_window_ns() -> u64 {
    const HOUR_NS: u64 = 3_600_000_000_000;
    HOUR_NS.min(coarse_now_ns() / 2)
}

/// Long windows and thresholds that never fire: every window counter equals
/// its cumulative counter, and no event is sent. Tests lower the thresholds
/// they test.
pub fn quiet() -> Thresholds {
    let long = long_window_ns();
    Thresholds {
        rate_window_ns: long,
        fast_window_ns: long,
        weighted_window_ns: long,
        slow_window_ns: long,
        ..Thresholds::DISABLED
    }
}
