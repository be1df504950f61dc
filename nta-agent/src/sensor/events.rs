//! The ring of threshold events, read as the kernel fills it.

use std::sync::{Arc, atomic::AtomicU64};

use aya::maps::{MapData, RingBuf};
use nta_common::maps::ThresholdEvent;
use tokio::{sync::mpsc, task::JoinHandle};

use super::SensorError;

/// Events waiting for the detector. The kernel sends at most one per key,
/// kind and window, so this covers a burst of thousands of attackers at
/// once; past it, events are counted as dropped and the next tick's poll
/// still sees every counter.
pub const EVENT_QUEUE: usize = 8192;

/// Reads `ring` as it fills and forwards each event; counts what the queue
/// could not take in `dropped`.
pub fn spawn_reader(
    ring: RingBuf<MapData>,
    events: mpsc::Sender<ThresholdEvent>,
    dropped: Arc<AtomicU64>,
) -> Result<JoinHandle<()>, SensorError> {
    super::ring::spawn_reader(ring, "EVENTS", parse, events, dropped)
}

fn parse(bytes: &[u8]) -> Option<ThresholdEvent> {
    if bytes.len() < size_of::<ThresholdEvent>() {
        return None;
    }
    // SAFETY: the length is checked; ThresholdEvent is plain integers, valid
    // for any bytes; the ring's records need not be aligned for it.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<ThresholdEvent>()) })
}
