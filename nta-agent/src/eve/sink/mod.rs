//! Where EVE lines go: a file (or stdout), a unix socket, syslog, Redis.
//!
//! Each sink has a bounded queue and a thread of its own, so that a slow or
//! dead one never holds up detection or another sink: what its queue cannot
//! take is dropped and counted, and a sink that loses its server keeps its
//! queue while it reconnects, with backoff, and drains it once back.

mod file;
mod redis;
mod syslog;
mod unix;

use std::{
    io,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        mpsc::{self, Receiver, SyncSender, TrySendError},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use tracing::{info, warn};

use crate::config::{RedisMode, SocketType};

pub use file::Reopen;

/// One event, serialized, without its line end.
pub type Line = Arc<[u8]>;

/// Lines waiting for one sink: a few seconds of a storm's events.
pub const SINK_QUEUE: usize = 65_536;

/// How long a sender that waits for room (a capture's read) waits for a
/// sink that writes nothing before giving up on it.
const WAIT_LIMIT: Duration = Duration::from_secs(5);

/// Lines written in one go (one Redis pipeline, one flush).
const BATCH: usize = 512;

/// The first wait before reconnecting, doubled after each failure up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A sink as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkSpec {
    Stdout,
    /// Appended to, created if missing; reopened when asked (SIGHUP).
    File(PathBuf),
    /// A file under a name with date modifiers, a new one at every turn of
    /// `every` (and when asked).
    Rotated {
        pattern: PathBuf,
        every: Duration,
    },
    Unix {
        path: PathBuf,
        kind: SocketType,
    },
    /// The local syslog's socket (`/dev/log`).
    Syslog(PathBuf),
    Redis {
        url: String,
        mode: RedisMode,
        key: String,
    },
}

impl SinkSpec {
    /// How logs and `/api/stats` name it.
    pub fn name(&self) -> String {
        match self {
            SinkSpec::Stdout => "stdout".into(),
            SinkSpec::File(path) => format!("file {}", path.display()),
            SinkSpec::Rotated { pattern, every } => format!(
                "file {} every {}",
                pattern.display(),
                humantime::format_duration(*every)
            ),
            SinkSpec::Unix { path, kind } => {
                let kind = match kind {
                    SocketType::Dgram => "unix_dgram",
                    SocketType::Stream => "unix_stream",
                };
                format!("{kind} {}", path.display())
            }
            SinkSpec::Syslog(path) => format!("syslog {}", path.display()),
            SinkSpec::Redis { url, mode, key } => format!("redis {url} {} {key}", mode.name()),
        }
    }
}

/// What a sink writes to, (re)connected by its thread.
trait Output: Send {
    /// Opens or connects; called again after a failed write.
    fn connect(&mut self) -> io::Result<()>;
    /// Writes `lines`, all or none as far as the caller can tell.
    fn write(&mut self, lines: &[Line]) -> io::Result<()>;
    /// Closes what is open, so that the next write connects again.
    fn disconnect(&mut self);
}

/// What a sink did, for logs and `/api/stats`.
#[derive(Debug, Default)]
pub struct SinkCounters {
    pub written: AtomicU64,
    /// Lines in its queue now.
    pub queued: AtomicUsize,
    /// Lines its queue could not take, or lost in a failed write.
    pub dropped: AtomicU64,
    /// Whether it is connected now.
    pub up: AtomicBool,
    /// A waiting sender stopped waiting for it (see [`Sink::send`]).
    pub gave_up: AtomicBool,
}

impl SinkCounters {
    /// Lines in its queue now, or 0 while it is down (what comes is
    /// dropped then, not waited for).
    pub fn backlog(&self) -> usize {
        if !self.up.load(Ordering::Relaxed) || self.gave_up.load(Ordering::Relaxed) {
            0
        } else {
            self.queued.load(Ordering::Relaxed)
        }
    }

    /// The counters now, under `name`.
    pub fn snapshot(&self, name: &str) -> SinkStats {
        SinkStats {
            name: name.to_owned(),
            written: self.written.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            up: self.up.load(Ordering::Relaxed),
        }
    }
}

/// A sink's counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SinkStats {
    pub name: String,
    pub written: u64,
    pub dropped: u64,
    pub up: bool,
}

/// The sending end of one sink.
pub struct Sink {
    name: String,
    queue: Option<SyncSender<Line>>,
    counters: Arc<SinkCounters>,
    closing: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sink {
    /// Starts the sink's thread. A file is opened now, so that a bad path
    /// fails at start; servers are connected to by the thread, so that one
    /// down at start is retried rather than fatal.
    pub fn start(spec: &SinkSpec, reopen: &Reopen) -> anyhow::Result<Sink> {
        let name = spec.name();
        let mut output: Box<dyn Output> = match spec {
            SinkSpec::Stdout => Box::new(file::FileOutput::stdout()),
            SinkSpec::File(path) => {
                let mut out = file::FileOutput::file(path.clone(), None, reopen.clone());
                out.connect()
                    .with_context(|| format!("opening the EVE file {}", path.display()))?;
                Box::new(out)
            }
            SinkSpec::Rotated { pattern, every } => {
                let mut out = file::FileOutput::file(pattern.clone(), Some(*every), reopen.clone());
                out.connect()
                    .with_context(|| format!("opening the EVE file {}", pattern.display()))?;
                Box::new(out)
            }
            SinkSpec::Unix { path, kind } => Box::new(unix::UnixOutput::new(path.clone(), *kind)),
            SinkSpec::Syslog(path) => Box::new(syslog::SyslogOutput::new(path.clone())),
            SinkSpec::Redis { url, mode, key } => {
                Box::new(redis::RedisOutput::new(url, *mode, key.clone())?)
            }
        };
        let counters = Arc::new(SinkCounters::default());
        let closing = Arc::new(AtomicBool::new(false));
        let (queue, lines) = mpsc::sync_channel::<Line>(SINK_QUEUE);
        let thread = {
            let counters = Arc::clone(&counters);
            let closing = Arc::clone(&closing);
            let name = name.clone();
            std::thread::Builder::new()
                .name("nta-eve-sink".into())
                .spawn(move || run(&name, output.as_mut(), &lines, &counters, &closing))
                .context("starting an EVE sink thread")?
        };
        Ok(Sink {
            name,
            queue: Some(queue),
            counters,
            closing,
            thread: Some(thread),
        })
    }

    /// Queues `line`; waits for room only if `wait` (and while the sink
    /// writes), else drops and counts.
    pub fn send(&self, line: &Line, wait: bool) {
        let Some(queue) = &self.queue else {
            return;
        };
        // Counted before it is sent, so that the thread never takes more
        // than was counted.
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        let sent = if wait && !self.counters.gave_up.load(Ordering::Relaxed) {
            self.wait_for_room(queue, line)
        } else {
            queue.try_send(Arc::clone(line))
        };
        if sent.is_err() {
            self.counters.queued.fetch_sub(1, Ordering::Relaxed);
            let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                warn!(message = "EVE events dropped: the sink is behind or down", sink = %self.name, dropped);
            }
        }
    }

    /// Waits for room, as long as the sink keeps writing: one that has
    /// not written for [`WAIT_LIMIT`] is given up on, so that a read with
    /// its server gone ends (with the loss counted) rather than hang.
    fn wait_for_room(
        &self,
        queue: &SyncSender<Line>,
        line: &Line,
    ) -> Result<(), TrySendError<Line>> {
        let mut line = Arc::clone(line);
        let mut since = Instant::now();
        let mut written = self.counters.written.load(Ordering::Relaxed);
        loop {
            match queue.try_send(line) {
                Err(TrySendError::Full(back)) => line = back,
                other => return other,
            }
            let now = self.counters.written.load(Ordering::Relaxed);
            if now != written {
                written = now;
                since = Instant::now();
            } else if since.elapsed() >= WAIT_LIMIT {
                self.counters.gave_up.store(true, Ordering::Relaxed);
                warn!(message = "EVE sink given up on: nothing written for a while", sink = %self.name, waited = ?WAIT_LIMIT);
                return Err(TrySendError::Full(line));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn stats(&self) -> SinkStats {
        self.counters.snapshot(&self.name)
    }

    /// Its name and counters, to read while it runs.
    pub fn counters(&self) -> (String, Arc<SinkCounters>) {
        (self.name.clone(), Arc::clone(&self.counters))
    }

    /// Writes what is queued (a sink that is down gives up at once) and
    /// stops.
    pub fn close(mut self) -> SinkStats {
        self.finish();
        self.stats()
    }

    fn finish(&mut self) {
        self.closing.store(true, Ordering::Relaxed);
        self.queue = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            warn!(message = "An EVE sink thread panicked", sink = %self.name);
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The sink's thread: batches of lines from `lines` to `output`,
/// reconnecting with backoff when a write fails.
fn run(
    name: &str,
    output: &mut dyn Output,
    lines: &Receiver<Line>,
    counters: &SinkCounters,
    closing: &AtomicBool,
) {
    let mut backoff = Backoff::default();
    let mut batch: Vec<Line> = Vec::with_capacity(BATCH);
    while let Ok(first) = lines.recv() {
        batch.push(first);
        while batch.len() < BATCH
            && let Ok(line) = lines.try_recv()
        {
            batch.push(line);
        }
        counters.queued.fetch_sub(batch.len(), Ordering::Relaxed);
        loop {
            if !counters.up.load(Ordering::Relaxed) {
                let connected = backoff.due()
                    && {
                        match output.connect() {
                            Ok(()) => {
                                counters.up.store(true, Ordering::Relaxed);
                                if backoff.failures > 0 {
                                    info!(
                                        message = "EVE sink reconnected",
                                        sink = name,
                                        after = backoff.failures
                                    );
                                }
                                backoff = Backoff::default();
                                true
                            }
                            Err(error) => {
                                if backoff.failures == 0 {
                                    warn!(message = "EVE sink cannot connect; retrying with backoff", sink = name, %error);
                                }
                                backoff.failed();
                                false
                            }
                        }
                    };
                if !connected {
                    if closing.load(Ordering::Relaxed) {
                        // Down at shutdown: what is left cannot go anywhere.
                        let left = batch.len() + lines.try_iter().count();
                        counters.dropped.fetch_add(left as u64, Ordering::Relaxed);
                        return;
                    }
                    backoff.nap(closing);
                    continue;
                }
            }
            match output.write(&batch) {
                Ok(()) => {
                    counters
                        .written
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                Err(error) => {
                    warn!(message = "EVE sink write failed; reconnecting", sink = name, %error, lost = batch.len());
                    counters
                        .dropped
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    counters.up.store(false, Ordering::Relaxed);
                    output.disconnect();
                    backoff.failed();
                }
            }
            batch.clear();
            break;
        }
    }
    output.disconnect();
}

/// When to try connecting again.
#[derive(Debug)]
struct Backoff {
    failures: u32,
    next: Instant,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            failures: 0,
            next: Instant::now(),
        }
    }
}

impl Backoff {
    fn due(&self) -> bool {
        Instant::now() >= self.next
    }

    fn failed(&mut self) {
        let wait = FIRST_BACKOFF
            .saturating_mul(1 << self.failures.min(16))
            .min(MAX_BACKOFF);
        self.failures = self.failures.saturating_add(1);
        self.next = Instant::now() + wait;
    }

    /// Sleeps until the next try, in short naps so that shutdown is not
    /// held up.
    fn nap(&self, closing: &AtomicBool) {
        while !closing.load(Ordering::Relaxed) && !self.due() {
            std::thread::sleep(
                self.next
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50)),
            );
        }
    }
}

#[cfg(test)]
mod tests;
