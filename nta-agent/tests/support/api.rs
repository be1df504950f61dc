//! The agent's HTTP API, reached from inside the network namespace it
//! listens in, and a poller that notes when each kind of alert first shows.

use std::{
    collections::BTreeMap,
    fs::File,
    io::{self, Read, Write},
    net::{SocketAddr, TcpStream},
    os::fd::AsRawFd,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

/// Where the tests tell the agent to listen: its default, given explicitly.
pub const LISTEN: &str = "127.0.0.1:3000";

/// Longest one request may take (connect, send, read) before it fails.
const REQUEST_LIMIT: Duration = Duration::from_secs(5);

/// Longest the worker may take to enter the namespace.
const ENTER_LIMIT: Duration = Duration::from_secs(5);

/// A response: status code and JSON body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Value,
}

/// Status and body bytes, as the worker reads them.
type Raw = (u16, Vec<u8>);

type Reply = mpsc::Sender<Result<Raw, String>>;

/// An HTTP client for the agent's API in namespace `ns`.
///
/// One worker thread enters the namespace with setns(2) and serves every
/// request, so a request costs a loopback connection, not a process start.
/// Clones share the worker; it ends when the last clone is dropped.
#[derive(Clone)]
pub struct Api {
    ns: String,
    addr: SocketAddr,
    jobs: mpsc::Sender<(String, Reply)>,
}

impl Api {
    /// A client for the API at [`LISTEN`] inside `ns`.
    pub fn new(ns: &str) -> Self {
        Self::with_token(ns, None)
    }

    /// Like [`Api::new`], sending `Authorization: Bearer <token>`.
    pub fn with_token(ns: &str, token: Option<&str>) -> Self {
        let token = token.map(str::to_owned);
        let addr: SocketAddr = LISTEN.parse().expect("LISTEN is an address");
        let (jobs, queue) = mpsc::channel::<(String, Reply)>();
        let (ready, entered) = mpsc::channel();
        let name = ns.to_owned();
        thread::Builder::new()
            .name(format!("api-{ns}"))
            .spawn(move || {
                let result = enter(&name);
                let ok = result.is_ok();
                let _ = ready.send(result);
                if !ok {
                    return;
                }
                for (path, reply) in queue {
                    let _ = reply.send(request(addr, &path, token.as_deref()));
                }
            })
            .expect("spawning the API client thread");
        match entered.recv_timeout(ENTER_LIMIT) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("entering namespace {ns}: {e}"),
            Err(e) => panic!("entering namespace {ns}: no answer from the worker: {e}"),
        }
        Api {
            ns: ns.to_owned(),
            addr,
            jobs,
        }
    }

    /// `GET path`, or why it failed (refused, timed out, not JSON...).
    pub fn try_get(&self, path: &str) -> Result<Response, String> {
        let (status, body) = self.try_get_raw(path)?;
        let body = serde_json::from_slice(&body).map_err(|e| {
            format!(
                "GET {path}: body is not JSON: {e}: {}",
                String::from_utf8_lossy(&body)
            )
        })?;
        Ok(Response { status, body })
    }

    /// `GET path` for a text body (`/metrics`); panics unless 200.
    pub fn get_text(&self, path: &str) -> String {
        match self.try_get_raw(path) {
            Ok((200, body)) => String::from_utf8(body).expect("a UTF-8 body"),
            Ok((status, body)) => panic!(
                "GET {path} in {}: status {status}: {}",
                self.ns,
                String::from_utf8_lossy(&body)
            ),
            Err(e) => panic!("GET {path} from {} in {}: {e}", self.addr, self.ns),
        }
    }

    fn try_get_raw(&self, path: &str) -> Result<Raw, String> {
        let (reply, answer) = mpsc::channel();
        self.jobs
            .send((path.to_owned(), reply))
            .map_err(|_| "the API client thread has ended".to_owned())?;
        // The worker's own timeouts bound the request; this only guards
        // against a worker that died mid-request.
        answer
            .recv_timeout(REQUEST_LIMIT * 3)
            .map_err(|e| format!("no answer from the API client thread: {e}"))?
    }

    /// `GET path`; panics unless the agent answers 200 with JSON.
    pub fn get(&self, path: &str) -> Value {
        match self.try_get(path) {
            Ok(Response { status: 200, body }) => body,
            Ok(Response { status, body }) => {
                panic!("GET {path} in {}: status {status}: {body}", self.ns)
            }
            Err(e) => panic!("GET {path} from {} in {}: {e}", self.addr, self.ns),
        }
    }

    /// Every alert `GET /api/alerts?query&limit=1000` lists (query may be
    /// empty); panics if there is a further page.
    pub fn alerts(&self, query: &str) -> Vec<Value> {
        let path = if query.is_empty() {
            "/api/alerts?limit=1000".to_owned()
        } else {
            format!("/api/alerts?{query}&limit=1000")
        };
        let body = self.get(&path);
        assert!(
            body["next"].is_null(),
            "GET {path}: more than one page: {body}"
        );
        body["alerts"]
            .as_array()
            .unwrap_or_else(|| panic!("GET {path}: no alerts array: {body}"))
            .clone()
    }
}

/// Moves the calling thread into network namespace `ns`.
fn enter(ns: &str) -> Result<(), String> {
    let path = format!("/var/run/netns/{ns}");
    let file = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    // SAFETY: setns takes an fd we keep open for the call; it changes only
    // this thread's network namespace.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!("setns({path}): {}", io::Error::last_os_error()));
    }
    Ok(())
}

/// One HTTP/1.1 GET with `Connection: close`, read to the end.
fn request(addr: SocketAddr, path: &str, token: Option<&str>) -> Result<Raw, String> {
    let io = |what: &'static str| move |e: io::Error| format!("{what} {addr}: {e}");
    let mut stream =
        TcpStream::connect_timeout(&addr, REQUEST_LIMIT).map_err(io("connecting to"))?;
    stream
        .set_read_timeout(Some(REQUEST_LIMIT))
        .and_then(|()| stream.set_write_timeout(Some(REQUEST_LIMIT)))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(io("configuring the connection to"))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n").as_bytes(),
        )
        .map_err(io("sending to"))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io("reading from"))?;
    parse(&raw).map_err(|e| format!("GET {path}: {e}: {}", String::from_utf8_lossy(&raw)))
}

/// Status and body of a raw HTTP/1.1 response.
fn parse(raw: &[u8]) -> Result<Raw, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or("no status line")?;
    let chunked = lines.any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    let body = &raw[end + 4..];
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

/// The payload of a chunked body.
fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size = std::str::from_utf8(&body[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .ok_or("bad chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        body = body.get(size + 2..).ok_or("truncated chunk end")?;
    }
}

/// How often [`AlertWatch`] asks: the resolution of the measured times.
pub const WATCH_PERIOD: Duration = Duration::from_millis(5);

/// What the poller has seen so far.
#[derive(Debug, Default)]
struct Seen {
    /// Per alert kind, when the first response listing one arrived.
    first: BTreeMap<String, Instant>,
    /// Round trips of every poll, for the record of how precise `first` is.
    round_trips: Vec<Duration>,
    /// The last failed poll, if any.
    error: Option<String>,
}

/// Polls `GET /api/alerts` every [`WATCH_PERIOD`] from its own thread and
/// notes when each kind of alert first appears; stops on drop.
pub struct AlertWatch {
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl AlertWatch {
    /// Starts polling now, for at most `limit`.
    pub fn start(api: &Api, limit: Duration) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (api, seen, stop) = (api.clone(), seen.clone(), stop.clone());
            thread::spawn(move || {
                let began = Instant::now();
                let mut next = began;
                while !stop.load(Ordering::Relaxed) && began.elapsed() < limit {
                    let asked = Instant::now();
                    let result = api.try_get("/api/alerts?limit=1000");
                    let answered = Instant::now();
                    {
                        let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                        seen.round_trips.push(answered - asked);
                        match result {
                            Ok(Response { status: 200, body }) => {
                                for alert in body["alerts"].as_array().into_iter().flatten() {
                                    if let Some(kind) = alert["kind"].as_str() {
                                        seen.first.entry(kind.to_owned()).or_insert(answered);
                                    }
                                }
                            }
                            Ok(Response { status, body }) => {
                                seen.error = Some(format!("status {status}: {body}"));
                            }
                            Err(e) => seen.error = Some(e),
                        }
                    }
                    next += WATCH_PERIOD;
                    let now = Instant::now();
                    if next > now {
                        thread::sleep(next - now);
                    } else {
                        next = now;
                    }
                }
            })
        };
        AlertWatch {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.seen.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// When the first poll that listed a `kind` alert was answered.
    pub fn first(&self, kind: &str) -> Option<Instant> {
        self.seen(|s| s.first.get(kind).copied())
    }

    /// Every kind seen so far, with when it was first seen.
    pub fn kinds(&self) -> BTreeMap<String, Instant> {
        self.seen(|s| s.first.clone())
    }

    /// Waits until a `kind` alert has been seen, or until `deadline`.
    pub fn wait_for(&self, kind: &str, deadline: Instant) -> Option<Instant> {
        loop {
            if let Some(at) = self.first(kind) {
                return Some(at);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Median and worst poll round trip, and the number of polls.
    pub fn round_trips(&self) -> (Duration, Duration, usize) {
        self.seen(|s| {
            let mut all = s.round_trips.clone();
            all.sort();
            let median = all.get(all.len() / 2).copied().unwrap_or_default();
            let worst = all.last().copied().unwrap_or_default();
            (median, worst, all.len())
        })
    }

    /// The last failed poll, if any.
    pub fn error(&self) -> Option<String> {
        self.seen(|s| s.error.clone())
    }

    /// How long after `start` the poller saw `what`: `seen`, as
    /// [`AlertWatch::wait_for`] returned it. If it saw nothing in time,
    /// panics with the last failed poll and `context()`.
    #[track_caller]
    pub fn time_to(
        &self,
        seen: Option<Instant>,
        start: Instant,
        what: &str,
        context: impl FnOnce() -> String,
    ) -> Duration {
        match seen {
            Some(at) => at - start,
            None => panic!(
                "the poller saw no {what} ({:?}); {}",
                self.error(),
                context()
            ),
        }
    }
}

impl Drop for AlertWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
