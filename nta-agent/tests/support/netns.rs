//! Test hosts in network namespaces, joined by a veth pair, and the agent
//! running in one of them. Everything made here is removed on drop, even
//! when the test panics.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant},
};

/// The victim's address on the veth link (benchmarking range, RFC 2544).
pub const VICTIM_ADDR: &str = "198.18.0.1";
/// The attacker's address on the veth link.
pub const ATTACKER_ADDR: &str = "198.18.0.2";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Runs `program args...`, panicking with its output if it fails.
pub fn run(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    assert_succeeded(&format!("{program} {args:?}"), &output);
    output
}

/// Asserts that `what`, a command that ran, succeeded; a failure shows its
/// output.
#[track_caller]
pub fn assert_succeeded(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Two namespaces, `victim` and `attacker`, joined by a veth pair.
pub struct Topology {
    pub victim: String,
    pub attacker: String,
    /// The veth end inside the victim namespace: where the sensor attaches.
    pub victim_if: String,
    pub attacker_if: String,
}

impl Topology {
    /// [`Topology::new`], if this test can run: as root, with every one of
    /// `tools` (see [`super::privileged_with`]); `None` tells it to return.
    pub fn privileged(tools: &[&str]) -> Option<Self> {
        super::privileged_with(tools).then(Self::new)
    }

    /// Creates the namespaces with names unique to this process and call.
    pub fn new() -> Self {
        let id = format!(
            "{}{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let topology = Topology {
            victim: format!("nta-test-{id}-victim"),
            attacker: format!("nta-test-{id}-attacker"),
            victim_if: format!("ntv{id}"),
            attacker_if: format!("nta{id}"),
        };
        // From here on, Drop cleans up whatever was made.
        run("ip", &["netns", "add", &topology.victim]);
        run("ip", &["netns", "add", &topology.attacker]);
        run(
            "ip",
            &[
                "link",
                "add",
                &topology.victim_if,
                "netns",
                &topology.victim,
                "type",
                "veth",
                "peer",
                "name",
                &topology.attacker_if,
                "netns",
                &topology.attacker,
            ],
        );
        for (ns, dev, addr) in [
            (&topology.victim, &topology.victim_if, VICTIM_ADDR),
            (&topology.attacker, &topology.attacker_if, ATTACKER_ADDR),
        ] {
            let cidr = format!("{addr}/24");
            run("ip", &["-n", ns, "addr", "add", &cidr, "dev", dev]);
            run("ip", &["-n", ns, "link", "set", dev, "up"]);
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        for (ns, dev) in [
            (&topology.victim, &topology.victim_if),
            (&topology.attacker, &topology.attacker_if),
        ] {
            topology.wait_for_carrier(ns, dev);
        }
        topology
    }

    /// A mirror (SPAN) port in the victim's namespace: a veth pair whose
    /// far end receives a copy of every frame the victim's interface sends
    /// and receives, as a switch's monitor port does. Returns the far end,
    /// where a sensor sees both directions of each flow arrive.
    pub fn mirror_port(&self) -> String {
        let tap = format!("{}m", self.victim_if);
        let monitor = format!("{}s", self.victim_if);
        let ns = &self.victim;
        run(
            "ip",
            &[
                "-n", ns, "link", "add", &tap, "type", "veth", "peer", "name", &monitor,
            ],
        );
        for dev in [&tap, &monitor] {
            run("ip", &["-n", ns, "link", "set", dev, "up"]);
        }
        let tc = |args: &[&str]| {
            let mut all = vec!["netns", "exec", ns, "tc"];
            all.extend_from_slice(args);
            run("ip", &all);
        };
        tc(&["qdisc", "add", "dev", &self.victim_if, "clsact"]);
        for direction in ["ingress", "egress"] {
            tc(&[
                "filter",
                "add",
                "dev",
                &self.victim_if,
                direction,
                "protocol",
                "all",
                "u32",
                "match",
                "u32",
                "0",
                "0",
                "action",
                "mirred",
                "egress",
                "mirror",
                "dev",
                &tap,
            ]);
        }
        self.wait_for_carrier(ns, &monitor);
        monitor
    }

    /// Frames sent before a veth has carrier are dropped: wait for it.
    fn wait_for_carrier(&self, ns: &str, dev: &str) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            let out = run("ip", &["-n", ns, "link", "show", "dev", dev]);
            if String::from_utf8_lossy(&out.stdout).contains("LOWER_UP") {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!("{dev} in {ns} has no carrier after 10 s");
    }

    /// Runs a command in a namespace and waits for it, bounded by `limit`.
    pub fn exec(&self, ns: &str, limit: Duration, args: &[&str]) -> Output {
        let secs = limit.as_secs().max(1).to_string();
        let mut full = vec!["netns", "exec", ns, "timeout", "-s", "KILL", &secs];
        full.extend_from_slice(args);
        Command::new("ip")
            .args(&full)
            .output()
            .unwrap_or_else(|e| panic!("ip {full:?}: {e}"))
    }

    /// Sends one raw Ethernet frame out of `dev` in `ns` (AF_PACKET, via python3).
    pub fn send_raw_frame(&self, ns: &str, dev: &str, frame: &[u8]) {
        let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
        let script = format!(
            "import socket; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); \
             s.bind(('{dev}', 0)); s.send(bytes.fromhex('{hex}'))"
        );
        let out = self.exec(ns, Duration::from_secs(10), &["python3", "-c", &script]);
        assert!(
            out.status.success(),
            "sending a raw frame: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The XDP program attached to `dev` in `ns`, per `ip -d link`, if any.
    pub fn xdp_attached(&self, ns: &str, dev: &str) -> bool {
        let out = run("ip", &["-n", ns, "-d", "link", "show", "dev", dev]);
        String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and with it the peer.
        for ns in [&self.victim, &self.attacker] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// The agent binary under test, running in a namespace; killed on drop.
pub struct Agent {
    child: Option<Child>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    /// Starts `nta-agent run --iface DEV ARGS...` inside `ns`.
    pub fn start(ns: &str, dev: &str, args: &[&str]) -> Self {
        Self::start_with_log_level(ns, dev, args, "info")
    }

    /// Like [`Agent::start`], with `RUST_LOG` set to `level`.
    pub fn start_with_log_level(ns: &str, dev: &str, args: &[&str], level: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, ns, dev, args, level)
    }

    /// Starts the agent with its log in `dir`, and its store there too
    /// unless `args` names one with `--db`.
    pub fn start_in(
        dir: tempfile::TempDir,
        ns: &str,
        dev: &str,
        args: &[&str],
        level: &str,
    ) -> Self {
        Self::start_wrapped(dir, ns, dev, args, level, &[])
    }

    /// [`Agent::start_in`] through `wrapper` (e.g. `setpriv` and its
    /// options), which then runs `nta-agent`.
    pub fn start_wrapped(
        dir: tempfile::TempDir,
        ns: &str,
        dev: &str,
        args: &[&str],
        level: &str,
        wrapper: &[&str],
    ) -> Self {
        let log = dir.path().join("agent.log");
        let db = dir.path().join("nta.redb");
        let db_args: Vec<&std::ffi::OsStr> = if args.contains(&"--db") {
            Vec::new()
        } else {
            vec!["--db".as_ref(), db.as_os_str()]
        };
        let file = fs::File::create(&log).expect("agent log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns])
            .args(wrapper)
            .args([env!("CARGO_BIN_EXE_nta-agent"), "run", "--iface", dev])
            .args(args)
            .args(db_args)
            .env("RUST_LOG", level)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log fd"))
            .stderr(file);
        let child = cmd.spawn().expect("starting nta-agent");
        Agent {
            child: Some(child),
            log,
            _dir: dir,
        }
    }

    /// The agent's process id, while it runs (`ip netns exec` execs it).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the agent has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Asserts that the agent has logged `needle`; a failure shows the log.
    #[track_caller]
    pub fn assert_logged(&self, needle: &str) {
        let log = self.log();
        assert!(
            log.contains(needle),
            "the agent did not log `{needle}`:\n{log}"
        );
    }

    /// Waits until the log contains `needle`; panics with the log after `limit`.
    /// Also fails fast if the agent exits first.
    pub fn wait_for_log(&mut self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.log().contains(needle) {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "agent exited ({status}) before logging `{needle}`:\n{}",
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "agent did not log `{needle}` within {limit:?}:\n{}",
            self.log()
        );
    }

    /// Sends `signal` and waits for the agent to exit, up to `limit`.
    pub fn stop(&mut self, signal: i32, limit: Duration) -> ExitStatus {
        let child = self.child.as_ref().expect("agent already stopped");
        // `ip netns exec` execs the agent, so the child's pid is the agent's.
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(child.id() as i32, signal) };
        self.reap(limit, &format!("within {limit:?} of signal {signal}"))
    }

    /// Sends `signal` and checks that the agent exits cleanly within
    /// `limit`; its log explains a failure.
    #[track_caller]
    pub fn stop_cleanly(&mut self, signal: i32, limit: Duration) {
        let status = self.stop(signal, limit);
        assert!(
            status.success(),
            "agent exited with {status}:\n{}",
            self.log()
        );
    }

    /// Waits for the agent to exit on its own, up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        self.reap(limit, &format!("after {limit:?}"))
    }

    /// Waits for the agent to exit, up to `limit`; then kills it and panics
    /// with its log, saying it did not exit `when`.
    fn reap(&mut self, limit: Duration, when: &str) -> ExitStatus {
        let mut child = self.child.take().expect("agent already stopped");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("waiting for the agent") {
                return status;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("agent did not exit {when}:\n{}", self.log());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
