//! Payload inspection on its own thread, as in the live agent, where the
//! kernel counts while the agent inspects samples: the reader counts a
//! batch of frames while this thread runs the rules and the DNS tunnel
//! detector over the batch's payloads. What each finds is tagged with its
//! frame, so that the detectors see everything in the capture's order
//! whichever thread was first.

use std::{
    sync::mpsc::{Receiver, SyncSender, sync_channel},
    thread::{self, JoinHandle},
    time::Instant,
};

use jiff::Timestamp;
use nta_common::maps::SampleHeader;

use crate::{detect::Finding, inspect::Inspector};

/// One frame's payload in a [`Batch`].
struct Payload {
    frame: u64,
    ts: Timestamp,
    /// The capture's clock as the tunnel detector keeps time.
    at: Instant,
    header: SampleHeader,
    /// Where its bytes end in [`Batch::bytes`] (they start where the
    /// previous payload's end).
    end: usize,
}

/// Payloads of consecutive frames, copied out of the capture's buffer.
#[derive(Default)]
pub(super) struct Batch {
    bytes: Vec<u8>,
    payloads: Vec<Payload>,
}

impl Batch {
    pub fn push(
        &mut self,
        frame: u64,
        ts: Timestamp,
        at: Instant,
        header: SampleHeader,
        data: &[u8],
    ) {
        self.bytes.extend_from_slice(data);
        self.payloads.push(Payload {
            frame,
            ts,
            at,
            header,
            end: self.bytes.len(),
        });
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.payloads.clear();
    }
}

/// A finding and the frame whose payload gave it.
pub(super) struct Found {
    pub frame: u64,
    pub ts: Timestamp,
    pub finding: Finding,
}

/// The inspection thread: batches in, findings out (with the batch, for
/// its buffers to be reused), in order.
pub(super) struct Inspection {
    to: Option<SyncSender<Batch>>,
    from: Receiver<(Vec<Found>, Batch)>,
    thread: Option<JoinHandle<()>>,
}

impl Inspection {
    pub fn start(mut inspector: Inspector) -> std::io::Result<Self> {
        let (to, batches) = sync_channel::<Batch>(super::IN_FLIGHT);
        let (done, from) = sync_channel(super::IN_FLIGHT);
        let thread = thread::Builder::new()
            .name("nta-inspect".into())
            .spawn(move || {
                for batch in batches {
                    let found = inspect_batch(&batch, &mut inspector);
                    if done.send((found, batch)).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Self {
            to: Some(to),
            from,
            thread: Some(thread),
        })
    }

    /// Hands `batch` over; false if the thread is gone (it panicked).
    pub fn send(&self, batch: Batch) -> bool {
        self.to.as_ref().is_some_and(|to| to.send(batch).is_ok())
    }

    /// What the batch sent last gave, and the batch emptied; `None` if the
    /// thread is gone.
    pub fn receive(&self) -> Option<(Vec<Found>, Batch)> {
        let (found, mut batch) = self.from.recv().ok()?;
        batch.clear();
        Some((found, batch))
    }
}

impl Drop for Inspection {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop.
        self.to = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn inspect_batch(batch: &Batch, inspector: &mut Inspector) -> Vec<Found> {
    let mut found = Vec::new();
    let mut start = 0;
    for p in &batch.payloads {
        let data = &batch.bytes[start..p.end];
        start = p.end;
        for finding in inspector.inspect(&p.header, data, p.at) {
            found.push(Found {
                frame: p.frame,
                ts: p.ts,
                finding,
            });
        }
    }
    found
}
