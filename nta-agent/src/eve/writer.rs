//! Writing EVE lines to a file or stdout without ever holding up detection:
//! events queue to a thread of their own, and what a full queue cannot take
//! is counted and said once in a while, not waited for.

use std::{
    fs::{File, OpenOptions},
    io::{self, BufWriter, Write as _},
    path::{Path, PathBuf},
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc::{self, SyncSender, TrySendError},
    },
    thread::JoinHandle,
};

use anyhow::Context as _;
use tracing::warn;

use jiff::Timestamp;

use super::{Event, Flow, detection, signature};
use crate::{
    alert::{AlertEvent, AlertKind},
    detect::Finding,
    flows::FlowRecord,
};

/// Events waiting for the writer thread: a second of a busy sensor's
/// alerts and more; past it they are dropped and counted.
pub const EVE_QUEUE: usize = 65_536;

/// Where the events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EveTarget {
    Stdout,
    /// Appended to, created if missing, as Suricata does with `eve.json`.
    File(PathBuf),
}

impl FromStr for EveTarget {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(if s == "-" {
            Self::Stdout
        } else {
            Self::File(PathBuf::from(s))
        })
    }
}

/// The sending end; dropping it (or [`EveWriter::close`]) flushes and ends
/// the thread.
pub struct EveWriter {
    queue: Option<SyncSender<Event>>,
    thread: Option<JoinHandle<io::Result<()>>>,
    dropped: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
    alerts: u64,
    /// Wait for room instead of dropping: for a capture, where nothing
    /// runs behind and nothing may be lost.
    wait: bool,
}

fn open(path: &Path) -> anyhow::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| {
            format!("creating the directory of the EVE file {}", path.display())
        })?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the EVE file {}", path.display()))
}

impl EveWriter {
    /// Opens `target` (a file is opened now, so a bad path fails at start)
    /// and starts the thread that writes to it.
    pub fn start(target: &EveTarget) -> anyhow::Result<Self> {
        let out: Box<dyn io::Write + Send> = match target {
            EveTarget::Stdout => Box::new(io::stdout()),
            EveTarget::File(path) => Box::new(open(path)?),
        };
        let (queue, events) = mpsc::sync_channel::<Event>(EVE_QUEUE);
        let written = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&written);
        let thread = std::thread::Builder::new()
            .name("nta-eve".into())
            .spawn(move || {
                let mut out = BufWriter::new(out);
                // Flushed whenever the queue runs dry, so a reader (tail -f,
                // a log shipper) sees each burst of events at its end.
                while let Ok(first) = events.recv() {
                    let mut next = Some(first);
                    while let Some(event) = next {
                        serde_json::to_writer(&mut out, &event)?;
                        out.write_all(b"\n")?;
                        count.fetch_add(1, Ordering::Relaxed);
                        next = events.try_recv().ok();
                    }
                    out.flush()?;
                }
                out.flush()
            })
            .context("starting the EVE writer thread")?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
            dropped: Arc::new(AtomicU64::new(0)),
            written,
            wait: false,
            alerts: 0,
        })
    }

    /// The same writer, waiting for room in its queue rather than dropping
    /// an event (see [`EveWriter::send`]).
    pub fn waiting(mut self) -> Self {
        self.wait = true;
        self
    }

    /// Queues `event`; never waits, unless made [`EveWriter::waiting`].
    pub fn send(&mut self, event: Event) {
        let Some(queue) = &self.queue else {
            return;
        };
        if event.event_type == "alert" {
            self.alerts += 1;
        }
        let sent = if self.wait {
            queue
                .send(event)
                .map_err(|e| TrySendError::Disconnected(e.0))
        } else {
            queue.try_send(event)
        };
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    warn!(
                        message = "EVE events dropped: the writer is behind or failed",
                        dropped
                    );
                }
            }
        }
    }

    /// A payload finding seen at `at`: a rule match is an alert event of
    /// its own, one per match as Suricata writes them (the incident it
    /// feeds counts the repeats); other findings show when their incident
    /// opens (see [`EveWriter::incident`]).
    pub fn finding(&mut self, f: &Finding, at: Timestamp) {
        if f.key.kind == AlertKind::Signature
            && let Some(flow) = Flow::of_finding(f)
        {
            self.send(signature(f, &flow, at));
        }
    }

    /// An incident's event: nta's own detections are alert events when
    /// they open (rule matches went out one by one, as findings).
    pub fn incident(&mut self, event: &AlertEvent) {
        if let AlertEvent::Opened(a) = event
            && a.kind != AlertKind::Signature
        {
            self.send(detection(a));
        }
    }

    /// A flow's record.
    pub fn flow(&mut self, record: &FlowRecord) {
        self.send(super::event::flow(record));
    }

    /// Alert events queued so far (for `stats.detect.alert`).
    pub fn alerts(&self) -> u64 {
        self.alerts
    }

    /// Events dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes what is queued and stops; the first write error, if any.
    pub fn close(mut self) -> anyhow::Result<u64> {
        self.finish()
    }

    fn finish(&mut self) -> anyhow::Result<u64> {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            match thread.join() {
                Ok(result) => result.context("writing EVE events")?,
                Err(_) => anyhow::bail!("the EVE writer thread panicked"),
            }
        }
        Ok(self.written.load(Ordering::Relaxed))
    }
}

impl Drop for EveWriter {
    fn drop(&mut self) {
        if let Err(error) = self.finish() {
            warn!(message = "EVE output ended with an error", error = %error);
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use nta_common::GlobalCounters;

    use super::*;
    use crate::eve::stats;

    #[test]
    fn events_are_appended_one_json_object_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/eve.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{\"earlier\":1}\n").unwrap();
        let mut w = EveWriter::start(&EveTarget::File(path.clone())).unwrap();
        for uptime in 0..3 {
            w.send(stats(
                &GlobalCounters::ZERO,
                uptime,
                0,
                Timestamp::UNIX_EPOCH,
            ));
        }
        assert_eq!(w.close().unwrap(), 3);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "appended to what was there: {text}");
        for (i, line) in lines[1..].iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["event_type"], "stats");
            assert_eq!(v["stats"]["uptime"], i as u64);
        }
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let path = blocker.join("eve.json");
        let e = EveWriter::start(&EveTarget::File(path))
            .err()
            .expect("a file under a file");
        assert!(format!("{e:#}").contains("file/eve.json"), "{e:#}");
    }

    #[test]
    fn dash_is_stdout() {
        assert_eq!("-".parse::<EveTarget>(), Ok(EveTarget::Stdout));
        assert_eq!(
            "/var/log/nta/eve.json".parse::<EveTarget>(),
            Ok(EveTarget::File("/var/log/nta/eve.json".into()))
        );
    }
}
