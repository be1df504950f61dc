//! Reading a BPF ring buffer as the kernel fills it.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use aya::maps::{MapData, RingBuf};
use tokio::{io::unix::AsyncFd, sync::mpsc, task::JoinHandle};
use tracing::warn;

use super::SensorError;

/// Reads `ring` as it fills, turns each record into a `T` with `parse`, and
/// forwards it; what the queue cannot take is counted in `dropped`, never
/// waited for (the kernel side must not back up).
pub fn spawn_reader<T: Send + 'static>(
    ring: RingBuf<MapData>,
    what: &'static str,
    parse: fn(&[u8]) -> Option<T>,
    out: mpsc::Sender<T>,
    dropped: Arc<AtomicU64>,
) -> Result<JoinHandle<()>, SensorError> {
    // SAFETY: the fd is the ring map's, owned by `ring`, which the AsyncFd
    // owns until the task ends: it stays open and refers to the same map.
    let mut fd = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
        .map_err(|e| SensorError::Ring(what, e.into_parts().1))?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok(mut guard) = fd.readable_mut().await else {
                return;
            };
            let ring = guard.get_inner_mut();
            while let Some(item) = ring.next() {
                let Some(record) = parse(&item) else {
                    warn!(
                        message = "Ignoring a malformed ring record",
                        ring = what,
                        len = item.len()
                    );
                    continue;
                };
                if out.try_send(record).is_err() {
                    dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            guard.clear_ready();
        }
    }))
}
