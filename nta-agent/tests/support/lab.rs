//! A lab for end-to-end tests: the agent on the victim's veth with a client
//! for its API, tools run in either namespace under a guard, and the small
//! helpers the tests use to print and explain what they saw.

use std::{
    fs::{self, File},
    os::unix::{fs::FileExt as _, process::CommandExt},
    path::Path,
    process::{Child, Command, ExitStatus, Output, Stdio},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;

use super::{
    api::{AlertWatch, Api, LISTEN, WATCH_PERIOD},
    netns::{Agent, Topology, VICTIM_ADDR},
};

/// Longest the agent may take to attach and serve its API.
pub const START_LIMIT: Duration = Duration::from_secs(20);

/// The agent watching the victim's veth, and a client for its API.
///
/// Fields drop in order: the agent is killed before its namespace goes.
pub struct Lab {
    pub agent: Agent,
    pub api: Api,
    pub net: Topology,
}

impl Lab {
    /// [`Lab::start`], if this test can run: as root, with every one of
    /// `tools` (see [`super::privileged_with`]); `None` tells it to return.
    pub fn privileged(tools: &[&str]) -> Option<Self> {
        super::privileged_with(tools).then(Self::start)
    }

    /// A fresh topology and an agent with its default settings.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A fresh topology and an agent started with the extra `args`.
    pub fn start_with(args: &[&str]) -> Self {
        let net = Topology::new();
        let agent = start_agent(&net, args);
        let api = Api::new(&net.victim);
        Lab { agent, api, net }
    }
}

/// Starts the agent on the victim's veth and waits until it watches and serves.
pub fn start_agent(net: &Topology, args: &[&str]) -> Agent {
    start_agent_within(net, args, START_LIMIT)
}

/// [`start_agent`], waiting up to `limit` for each step (a large ruleset
/// takes a while to compile in a debug build).
pub fn start_agent_within(net: &Topology, args: &[&str], limit: Duration) -> Agent {
    start_agent_on(net, &net.victim_if, args, limit)
}

/// [`start_agent_within`] on interface `iface` of the victim's namespace
/// (its [`Topology::mirror_port`], to see both directions).
pub fn start_agent_on(net: &Topology, iface: &str, args: &[&str], limit: Duration) -> Agent {
    let mut all = vec!["--listen", LISTEN];
    all.extend_from_slice(args);
    let mut agent = Agent::start(&net.victim, iface, &all);
    agent.wait_for_log("Sensor attached", limit);
    agent.wait_for_log("API listening", limit);
    agent
}

/// A tool running in a namespace under `timeout`, in a process group of its
/// own: on drop the whole group is killed and reaped, even when the test
/// fails half-way.
pub struct Spawned {
    what: String,
    child: Option<Child>,
    /// Its stdout and stderr, interleaved (a file: a pipe nobody reads
    /// would stall a chatty tool).
    out: File,
}

impl Spawned {
    /// Runs `args` in `ns`; `timeout` sends SIGTERM after `limit`, SIGKILL
    /// 2 s later.
    pub fn start(ns: &str, limit: Duration, args: &[&str]) -> Self {
        Self::start_in(ns, None, limit, args)
    }

    /// Like [`Spawned::start`], in working directory `dir`.
    pub fn start_in(ns: &str, dir: Option<&Path>, limit: Duration, args: &[&str]) -> Self {
        let secs = limit.as_secs().max(1).to_string();
        let out = tempfile::tempfile().expect("output file");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, "timeout", "-k", "2", &secs])
            .args(args)
            // `ip netns exec` execs `timeout`, which runs the tool as its
            // child: one group holds both.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("output fd"))
            .stderr(out.try_clone().expect("output fd"));
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        let what = args.join(" ");
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting `{what}` in {ns}: {e}"));
        Spawned {
            what,
            child: Some(child),
            out,
        }
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Everything it printed so far. Read at offsets, never seeking: the
    /// tool writes through the same open file, and moving its offset back
    /// would have its next write land over what it wrote before.
    pub fn output(&self) -> String {
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match self.out.read_at(&mut chunk, bytes.len() as u64) {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Waits until its output contains `needle`; panics with the output
    /// after `limit`, or as soon as it exits without printing it.
    pub fn wait_for_output(&mut self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.output().contains(needle) {
                return;
            }
            if !self.running() {
                panic!(
                    "`{}` ended before printing `{needle}`:\n{}",
                    self.what,
                    self.output()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "`{}` did not print `{needle}` within {limit:?}:\n{}",
            self.what,
            self.output()
        );
    }

    /// Waits for it to end, up to `limit`; its status and output.
    pub fn wait(&mut self, limit: Duration) -> (ExitStatus, String) {
        let mut child = self
            .child
            .take()
            .unwrap_or_else(|| panic!("`{}` already waited for", self.what));
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("waiting for a tool") {
                return (status, self.output());
            }
            if start.elapsed() > limit {
                kill_group(&mut child);
                panic!(
                    "`{}` still running after {limit:?}:\n{}",
                    self.what,
                    self.output()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

fn kill_group(child: &mut Child) {
    // SAFETY: killpg has no memory preconditions; the group is the child's
    // own (process_group(0)) and the child is not yet reaped, so the id
    // cannot have been reused.
    unsafe { libc::killpg(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }
}

/// Longest a web server started by [`web_server`] lives.
pub const WEB_SERVER_LIMIT: Duration = Duration::from_secs(120);

/// A web server on the victim, and the directory it serves; stopped, then
/// removed, on drop.
pub struct WebServer {
    _server: Spawned,
    _site: tempfile::TempDir,
}

/// `python3 -m http.server 80` on the victim's address, serving a test
/// page, answering from the attacker's side before this returns.
pub fn web_server(net: &Topology) -> WebServer {
    web_server_on(net, 80)
}

/// Bytes of `download.bin`, which [`web_server_on`] serves besides the page.
pub const DOWNLOAD_BYTES: usize = 200_000;

/// `python3 -m http.server PORT` on the victim's address, serving a test
/// page and [`DOWNLOAD_BYTES`] of `download.bin`, answering from the
/// attacker's side before this returns.
pub fn web_server_on(net: &Topology, port: u16) -> WebServer {
    let site = tempfile::tempdir().expect("temp dir");
    fs::write(
        site.path().join("index.html"),
        "<html><body>nta test page</body></html>\n",
    )
    .expect("writing index.html");
    let download: Vec<u8> = (0..DOWNLOAD_BYTES).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(site.path().join("download.bin"), download).expect("writing download.bin");
    let port = port.to_string();
    let server = Spawned::start_in(
        &net.victim,
        Some(site.path()),
        WEB_SERVER_LIMIT,
        &["python3", "-m", "http.server", &port, "--bind", VICTIM_ADDR],
    );
    wait_for_http(net, &net.attacker, &format!("http://{VICTIM_ADDR}:{port}/"));
    WebServer {
        _server: server,
        _site: site,
    }
}

/// `nmap -sS -T4 -p PORTS` from the attacker's namespace against the
/// victim, run to its end; panics unless it succeeds.
pub fn nmap_fast_scan(net: &Topology, ports: &str) {
    let out = net.exec(
        &net.attacker,
        Duration::from_secs(60),
        &["nmap", "-sS", "-n", "-Pn", "-T4", "-p", ports, VICTIM_ADDR],
    );
    assert!(
        out.status.success(),
        "nmap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The request the default rules catch: `User-Agent: cmd.exe` to the
/// victim's web server, from the attacker.
pub fn cmd_exe_request(net: &Topology) -> Output {
    curl(
        net,
        &[
            "-o",
            "/dev/null",
            "-H",
            "User-Agent: cmd.exe",
            &format!("http://{VICTIM_ADDR}/"),
        ],
    )
}

/// Runs curl in the attacker's namespace with `args` (silent but for
/// errors, 5 s at most); panics unless it succeeds.
pub fn curl(net: &Topology, args: &[&str]) -> Output {
    let mut all = vec!["curl", "-sS", "--max-time", "5"];
    all.extend_from_slice(args);
    let out = net.exec(&net.attacker, Duration::from_secs(20), &all);
    assert!(
        out.status.success(),
        "curl {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The HTTP status code curl run in `ns` with `args` (the request) gets,
/// or what curl printed instead; curl runs for `limit` at most.
pub fn http_code(net: &Topology, ns: &str, limit: Duration, args: &[&str]) -> String {
    let mut all = vec!["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"];
    all.extend_from_slice(args);
    let out = net.exec(ns, limit, &all);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until `url` answers 200 to curl run in `ns`, for up to 10 s.
pub fn wait_for_http(net: &Topology, ns: &str, url: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if http_code(net, ns, Duration::from_secs(3), &["--max-time", "1", url]) == "200" {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("{url} did not answer from {ns} within 10 s");
}

/// `count` pings from the attacker's namespace to the victim, 0.2 s apart,
/// from its address `from` (else its first); ping's output.
pub fn ping_victim(net: &Topology, from: Option<&str>, count: u32) -> Output {
    let count = count.to_string();
    let mut args = vec!["ping", "-n", "-q", "-c", &count, "-i", "0.2", "-W", "1"];
    if let Some(from) = from {
        args.extend(["-I", from]);
    }
    args.push(VICTIM_ADDR);
    net.exec(&net.attacker, Duration::from_secs(15), &args)
}

/// Milliseconds, for printing.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// One line on how precise the printed times are.
pub fn poll_note(watch: &AlertWatch) -> String {
    let (median, worst, polls) = watch.round_trips();
    format!(
        "API polled every {} ({polls} polls, round trip median {}, worst {})",
        ms(WATCH_PERIOD),
        ms(median),
        ms(worst)
    )
}

/// Alerts as pretty JSON, for failure messages.
pub fn pretty(alerts: &[Value]) -> String {
    serde_json::to_string_pretty(alerts).unwrap_or_default()
}

/// The alerts as JSON and the agent's alert and warning lines, for failure
/// messages.
pub fn explain(alerts: &[Value], agent: &Agent) -> String {
    format!("alerts:\n{}\nagent:\n{}", pretty(alerts), alert_log(agent))
}

/// The agent's alert lines, for failure messages.
pub fn alert_log(agent: &Agent) -> String {
    agent
        .log()
        .lines()
        .filter(|l| l.contains("nta::alert") || l.contains("WARN") || l.contains("ERROR"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// tcpdump on the victim's veth, stopping at the first packet `filter`
/// matches: when an attack's first packet reached the sensor's interface.
/// Listening before this returns.
pub struct FirstPacket {
    tcpdump: Spawned,
}

impl FirstPacket {
    pub fn capture(net: &Topology, filter: &str) -> Self {
        let mut tcpdump = Spawned::start(
            &net.victim,
            Duration::from_secs(120),
            &[
                "tcpdump",
                "-i",
                &net.victim_if,
                "-n",
                "-tt",
                "-l",
                "-c",
                "1",
                filter,
            ],
        );
        tcpdump.wait_for_output("listening on", Duration::from_secs(10));
        FirstPacket { tcpdump }
    }

    /// When the packet arrived, by the wall clock (tcpdump's `-tt`
    /// timestamp: `1764000000.123456 IP ...`).
    pub fn at(mut self) -> SystemTime {
        let (status, out) = self.tcpdump.wait(Duration::from_secs(10));
        assert!(status.success(), "tcpdump ({status}):\n{out}");
        out.lines()
            .filter(|l| l.contains(" IP"))
            .find_map(|l| {
                let (secs, micros) = l.split_whitespace().next()?.split_once('.')?;
                Some(
                    UNIX_EPOCH
                        + Duration::from_secs(secs.parse().ok()?)
                        + Duration::from_micros(micros.parse().ok()?),
                )
            })
            .unwrap_or_else(|| panic!("no packet in tcpdump's output:\n{out}"))
    }
}

/// Sends `count` SYNs from the attacker to the victim's `port` with
/// hping3, `interval` apart (`u1000`: 1000 µs), all from `src_port` if
/// given (one flow), and checks they all went out.
pub fn send_syns(net: &Topology, port: u16, count: u32, interval: &str, src_port: Option<u16>) {
    let (port, count) = (port.to_string(), count.to_string());
    let mut args = vec!["hping3", "-S", "-p", &port, "-c", &count, "-i", interval];
    let src = src_port.map(|p| p.to_string());
    if let Some(src) = &src {
        args.extend(["-s", src, "-k"]);
    }
    args.push(VICTIM_ADDR);
    let sent = net.exec(&net.attacker, Duration::from_secs(30), &args);
    let stderr = String::from_utf8_lossy(&sent.stderr);
    assert!(
        stderr.contains(&format!("{count} packets transmitted")),
        "hping3 did not send {count} SYNs: {stderr}"
    );
}
