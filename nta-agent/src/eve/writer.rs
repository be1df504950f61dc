//! Writing EVE events to every sink without ever holding up detection:
//! events queue to a thread of their own, which names the sensor in each,
//! keeps the types asked for, serializes each once and hands the line to
//! every sink's queue (see [`super::sink`]). What a full queue cannot take
//! is counted and said once in a while, not waited for.

use std::{
    path::PathBuf,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        mpsc::{self, SyncSender, TrySendError},
    },
    thread::JoinHandle,
};

use anyhow::Context as _;
use tracing::warn;

use jiff::Timestamp;

use super::{
    Event, Flow, detection, signature,
    sink::{Line, Reopen, Sink, SinkCounters, SinkSpec, SinkStats},
};
use crate::{
    alert::{AlertEvent, AlertKind},
    config::Config,
    detect::Finding,
    flows::FlowRecord,
};

/// Events waiting for the writer thread: a second of a busy sensor's
/// alerts and more; past it they are dropped and counted.
pub const EVE_QUEUE: usize = 65_536;

/// Where `--eve` sends events.
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

impl From<&EveTarget> for SinkSpec {
    fn from(target: &EveTarget) -> Self {
        match target {
            EveTarget::Stdout => SinkSpec::Stdout,
            EveTarget::File(path) => SinkSpec::File(path.clone()),
        }
    }
}

/// The EVE outputs the config file and `--eve` ask for (`--eve` wins over
/// `[eve] file`); `None` when none is.
pub fn outputs(config: &Config, eve_flag: Option<&EveTarget>) -> Option<EveOutputs> {
    let eve = &config.eve;
    let mut sinks: Vec<SinkSpec> = match (eve_flag, &eve.file) {
        (Some(target), _) => vec![target.into()],
        (None, Some(path)) => vec![match eve.rotate_interval {
            Some(every) => SinkSpec::Rotated {
                pattern: path.clone(),
                every,
            },
            None => SinkSpec::File(path.clone()),
        }],
        (None, None) => Vec::new(),
    };
    if let Some(path) = &eve.unix_socket {
        sinks.push(SinkSpec::Unix {
            path: path.clone(),
            kind: eve.unix_socket_type,
        });
    }
    if eve.syslog {
        sinks.push(SinkSpec::Syslog(PathBuf::from("/dev/log")));
    }
    if let Some(url) = &eve.redis {
        sinks.push(SinkSpec::Redis {
            url: url.clone(),
            mode: eve.redis_mode,
            key: eve.redis_key.clone(),
        });
    }
    if sinks.is_empty() {
        return None;
    }
    Some(EveOutputs {
        sinks,
        types: eve.types.iter().map(|t| t.name()).collect(),
        host: Some(config.sensor_name()),
    })
}

/// Every sink, and what goes to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EveOutputs {
    pub sinks: Vec<SinkSpec>,
    /// The `event_type`s written; the others are left out.
    pub types: Vec<&'static str>,
    /// The `host` field of every event: the sensor's name.
    pub host: Option<String>,
}

impl EveOutputs {
    /// One sink, every type, no sensor name.
    #[cfg(test)]
    pub fn only(target: &EveTarget) -> Self {
        Self {
            sinks: vec![target.into()],
            types: vec!["alert", "flow", "stats"],
            host: None,
        }
    }
}

/// The sending end; dropping it (or [`EveWriter::close`]) writes what is
/// queued and ends the threads.
pub struct EveWriter {
    queue: Option<SyncSender<Event>>,
    thread: Option<JoinHandle<Vec<Sink>>>,
    dropped: Arc<AtomicU64>,
    /// Events in its queue now.
    queued: Arc<AtomicUsize>,
    alerts: u64,
    /// Wait for room instead of dropping: for a capture, where nothing
    /// runs behind and nothing may be lost.
    wait: Arc<AtomicBool>,
    reopen: Reopen,
    host: Option<String>,
    /// Each sink's name and counters, read while they run.
    sinks: Vec<(String, Arc<SinkCounters>)>,
}

impl EveWriter {
    /// Starts every sink (a file is opened now, so a bad path fails at
    /// start) and the thread that feeds them.
    pub fn start(outputs: &EveOutputs) -> anyhow::Result<Self> {
        let reopen = Reopen::default();
        let sinks = outputs
            .sinks
            .iter()
            .map(|spec| Sink::start(spec, &reopen))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let counters = sinks.iter().map(Sink::counters).collect();
        let (queue, events) = mpsc::sync_channel::<Event>(EVE_QUEUE);
        let wait = Arc::new(AtomicBool::new(false));
        let types = outputs.types.clone();
        let host = outputs.host.clone();
        let waiting = Arc::clone(&wait);
        let queued = Arc::new(AtomicUsize::new(0));
        let taken = Arc::clone(&queued);
        let thread = std::thread::Builder::new()
            .name("nta-eve".into())
            .spawn(move || {
                for mut event in events {
                    taken.fetch_sub(1, Ordering::Relaxed);
                    if !types.contains(&event.event_type) {
                        continue;
                    }
                    event.host.clone_from(&host);
                    let line: Line = match serde_json::to_vec(&event) {
                        Ok(bytes) => bytes.into(),
                        Err(error) => {
                            warn!(message = "An EVE event could not be serialized", %error);
                            continue;
                        }
                    };
                    let wait = waiting.load(Ordering::Relaxed);
                    for sink in &sinks {
                        sink.send(&line, wait);
                    }
                }
                sinks
            })
            .context("starting the EVE writer thread")?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
            dropped: Arc::new(AtomicU64::new(0)),
            queued,
            wait,
            alerts: 0,
            reopen,
            host: outputs.host.clone(),
            sinks: counters,
        })
    }

    /// Asks file sinks to open their file again (SIGHUP, after logrotate).
    pub fn reopen_handle(&self) -> Reopen {
        self.reopen.clone()
    }

    /// The sensor's name every event carries.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// Each sink's counters now.
    pub fn sink_stats(&self) -> Vec<SinkStats> {
        self.sinks
            .iter()
            .map(|(name, counters)| counters.snapshot(name))
            .collect()
    }

    /// The same writer, waiting for room in its queue rather than dropping
    /// an event (see [`EveWriter::send`]).
    pub fn waiting(self) -> Self {
        self.wait.store(true, Ordering::Relaxed);
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
        // Counted before it is sent, so that the thread never takes more
        // than was counted.
        self.queued.fetch_add(1, Ordering::Relaxed);
        let sent = if self.wait.load(Ordering::Relaxed) {
            queue
                .send(event)
                .map_err(|e| TrySendError::Disconnected(e.0))
        } else {
            queue.try_send(event)
        };
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
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

    /// Events waiting: in the writer's queue, and in the fullest queue of
    /// a sink that is up (a sink that is down drops what comes anyway).
    pub fn backlog(&self) -> usize {
        let sinks = self
            .sinks
            .iter()
            .map(|(_, counters)| counters.backlog())
            .max()
            .unwrap_or(0);
        self.queued.load(Ordering::Relaxed) + sinks
    }

    /// Events dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes what is queued, stops every sink, and says what each did.
    pub fn close(mut self) -> anyhow::Result<Vec<SinkStats>> {
        self.finish()?;
        Ok(self.sink_stats())
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            let sinks = thread
                .join()
                .map_err(|_| anyhow::anyhow!("the EVE writer thread panicked"))?;
            for sink in sinks {
                sink.close();
            }
        }
        Ok(())
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
        let mut w = EveWriter::start(&EveOutputs::only(&EveTarget::File(path.clone()))).unwrap();
        for uptime in 0..3 {
            w.send(stats(
                &GlobalCounters::ZERO,
                uptime,
                0,
                Timestamp::UNIX_EPOCH,
            ));
        }
        let sinks = w.close().unwrap();
        assert_eq!((sinks[0].written, sinks[0].dropped), (3, 0));
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
        let e = EveWriter::start(&EveOutputs::only(&EveTarget::File(path)))
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
