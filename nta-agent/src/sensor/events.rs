//! The ring of threshold events, read as the kernel fills it.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use aya::maps::{MapData, RingBuf};
use nta_common::maps::ThresholdEvent;
use tokio::{io::unix::AsyncFd, sync::mpsc, task::JoinHandle};
use tracing::warn;

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
    // SAFETY: the fd is the ring map's, owned by `ring`, which the AsyncFd
    // owns until the task ends: it stays open and refers to the same map.
    let mut fd = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
        .map_err(|e| SensorError::EventRing(e.into_parts().1))?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok(mut guard) = fd.readable_mut().await else {
                return;
            };
            let ring = guard.get_inner_mut();
            while let Some(item) = ring.next() {
                let Some(event) = parse(&item) else {
                    warn!(
                        message = "Ignoring a malformed threshold event",
                        len = item.len()
                    );
                    continue;
                };
                if events.try_send(event).is_err() {
                    dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            guard.clear_ready();
        }
    }))
}

fn parse(bytes: &[u8]) -> Option<ThresholdEvent> {
    if bytes.len() < size_of::<ThresholdEvent>() {
        return None;
    }
    // SAFETY: the length is checked; ThresholdEvent is plain integers, valid
    // for any bytes; the ring's records need not be aligned for it.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<ThresholdEvent>()) })
}
