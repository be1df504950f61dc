//! Reading a BPF ring buffer as the kernel fills it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use aya::maps::{MapData, RingBuf};
use tokio::{io::unix::AsyncFd, sync::mpsc, task::JoinHandle};
use tracing::warn;

use super::SensorError;
use crate::throttle::Throttle;

/// A ring read by its own task into a bounded queue.
pub struct Reader<T> {
    pub queue: mpsc::Receiver<T>,
    /// Records the queue had no room for.
    pub dropped: Arc<AtomicU64>,
    pub task: JoinHandle<()>,
}

/// Reads `ring` as it fills, turns each record into a `T` with `parse`, and
/// queues it, up to `capacity` waiting; what the queue cannot take is
/// counted, never waited for (the kernel side must not back up).
pub fn start<T: Send + 'static>(
    ring: RingBuf<MapData>,
    what: &'static str,
    parse: fn(&[u8]) -> Option<T>,
    capacity: usize,
) -> Result<Reader<T>, SensorError> {
    // SAFETY: the fd is the ring map's, owned by `ring`, which the AsyncFd
    // owns until the task ends: it stays open and refers to the same map.
    let mut fd = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
        .map_err(|e| SensorError::Ring(what, e.into_parts().1))?;
    let (out, queue) = mpsc::channel(capacity);
    let dropped = Arc::new(AtomicU64::new(0));
    let counted = dropped.clone();
    let task = tokio::spawn(async move {
        let mut malformed = Throttle::default();
        loop {
            let Ok(mut guard) = fd.readable_mut().await else {
                return;
            };
            let ring = guard.get_inner_mut();
            while let Some(item) = ring.next() {
                let Some(record) = parse(&item) else {
                    if let Some(suppressed) = malformed.allow(Instant::now()) {
                        warn!(
                            message = "Ignoring a malformed ring record",
                            ring = what,
                            len = item.len(),
                            suppressed,
                        );
                    }
                    continue;
                };
                if out.try_send(record).is_err() {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            }
            guard.clear_ready();
        }
    });
    Ok(Reader {
        queue,
        dropped,
        task,
    })
}
