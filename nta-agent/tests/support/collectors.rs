//! Flow collectors on loopback for the IPFIX tests: nfcapd (nfdump's
//! collector) under a guard, and a plain UDP socket that keeps every
//! datagram it gets, for tools that read IPFIX files.

use std::{
    fs,
    net::UdpSocket,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

/// Longest nfcapd may take to listen, and to write its file once told to stop.
const NFCAPD_LIMIT: Duration = Duration::from_secs(10);

/// A UDP port on loopback that was free a moment ago.
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port()
}

/// nfcapd listening on a loopback port, writing into a directory; killed
/// with its process group on drop, even when the test fails half-way.
pub struct Nfcapd {
    child: Option<Child>,
    dir: PathBuf,
    log: PathBuf,
    port: u16,
}

impl Nfcapd {
    /// Starts nfcapd on a free loopback port, writing its files into
    /// `dir` (created); returns once it listens.
    pub fn start(dir: &Path) -> Self {
        Self::start_in(None, dir)
    }

    /// Like [`Nfcapd::start`], on the loopback of namespace `ns` if given.
    pub fn start_in(ns: Option<&str>, dir: &Path) -> Self {
        fs::create_dir_all(dir).expect("creating nfcapd's directory");
        // Free here; a fresh namespace has every port free.
        let port = free_udp_port();
        let log = dir.with_extension("log");
        let out = fs::File::create(&log).expect("nfcapd's log");
        let mut cmd = match ns {
            // `ip netns exec` execs nfcapd: the child is nfcapd itself.
            Some(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns, "nfcapd"]);
                cmd
            }
            None => Command::new("nfcapd"),
        };
        let child = cmd
            .args(["-b", "127.0.0.1", "-p", &port.to_string(), "-w"])
            .arg(dir)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log fd"))
            .stderr(out)
            .spawn()
            .expect("starting nfcapd");
        let mut nfcapd = Nfcapd {
            child: Some(child),
            dir: dir.to_owned(),
            log,
            port,
        };
        nfcapd.wait_until_listening();
        nfcapd
    }

    /// Waits until nfcapd says it started, after binding its port.
    fn wait_until_listening(&mut self) {
        let start = Instant::now();
        while start.elapsed() < NFCAPD_LIMIT {
            if self.log().contains("Startup nfcapd.") {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("nfcapd exited ({status}) before listening:\n{}", self.log());
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "nfcapd did not listen within {NFCAPD_LIMIT:?}:\n{}",
            self.log()
        );
    }

    /// Where exporters send: `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What nfcapd printed so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops nfcapd (SIGTERM, on which it closes its current file and
    /// logs its totals); returns the files it wrote and its log.
    pub fn finish(mut self) -> (Vec<PathBuf>, String) {
        let mut child = self.child.take().expect("running");
        let pid = libc::pid_t::try_from(child.id()).expect("a pid");
        // SAFETY: kill has no memory preconditions; pid is our child's.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("waiting for nfcapd") {
                assert!(status.success(), "nfcapd exited {status}:\n{}", self.log());
                break;
            }
            if start.elapsed() > NFCAPD_LIMIT {
                self.child = Some(child);
                panic!(
                    "nfcapd did not stop within {NFCAPD_LIMIT:?}:\n{}",
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
        let mut files: Vec<PathBuf> = fs::read_dir(&self.dir)
            .expect("nfcapd's directory")
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("nfcapd.") && !n.contains("current"))
            })
            .collect();
        files.sort();
        (files, self.log())
    }
}

impl Drop for Nfcapd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = -libc::pid_t::try_from(child.id()).unwrap_or(0);
            // SAFETY: as above; a negative pid is the child's own group.
            unsafe { libc::kill(group, libc::SIGKILL) };
            let _ = child.wait();
        }
    }
}

/// Runs `nfdump ARGS`, panicking with its output if it fails.
pub fn nfdump(args: &[&str]) -> Output {
    let out = Command::new("nfdump")
        .args(args)
        .output()
        .expect("running nfdump");
    assert!(
        out.status.success(),
        "nfdump {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Most datagrams a [`UdpSink`] keeps, and longest it listens.
const SINK_MAX: usize = 100_000;
const SINK_LIMIT: Duration = Duration::from_secs(120);

/// A loopback UDP socket whose datagrams a thread keeps, in order.
pub struct UdpSink {
    addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Vec<u8>>>>,
}

impl UdpSink {
    pub fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("binding a UDP socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("a read timeout");
        let addr = socket.local_addr().expect("its address").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let start = Instant::now();
            let mut kept = Vec::new();
            let mut buf = vec![0u8; 65_536];
            while kept.len() < SINK_MAX && start.elapsed() < SINK_LIMIT {
                match socket.recv(&mut buf) {
                    Ok(n) => kept.push(buf[..n].to_vec()),
                    // Told to stop and nothing left: done.
                    Err(_) if stopped.load(Ordering::Relaxed) => break,
                    Err(_) => {}
                }
            }
            kept
        });
        UdpSink {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Where to send: `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Every datagram received, once nothing more comes.
    pub fn finish(mut self) -> Vec<Vec<u8>> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().expect("running");
        thread.join().expect("the UDP sink's thread")
    }
}

impl Drop for UdpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
