//! The ring of threshold events, read as the kernel fills it.

use nta_common::maps::ThresholdEvent;

/// Events waiting for the detector. The kernel sends at most one per key,
/// kind and window, so this covers a burst of thousands of attackers at
/// once; past it, events are counted as dropped and the next tick's poll
/// still sees every counter.
pub const EVENT_QUEUE: usize = 8192;

/// An event from its ring record; `None` if the record is too short.
pub fn parse(bytes: &[u8]) -> Option<ThresholdEvent> {
    if bytes.len() < size_of::<ThresholdEvent>() {
        return None;
    }
    // SAFETY: the length is checked; ThresholdEvent is plain integers, valid
    // for any bytes; the ring's records need not be aligned for it.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<ThresholdEvent>()) })
}
