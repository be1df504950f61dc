//! nta beside its peers, on the same attack in the same run (`cargo xtask
//! bench --peers`): FastNetMon on a SYN flood, scanlogd on a port scan.
//! For each tool, how long after the attack tool started it reported the
//! attack, and its CPU and memory meanwhile; then the peer's figures over
//! nta's as ratios.
//!
//! Each peer runs in the victim's namespace next to the agent, watching the
//! same veth, inside a mount namespace of its own in which the paths it
//! insists on (/var/log, /dev/log, its chroot under /run) point into the
//! test's temp dir: nothing it writes reaches /etc, /var or /dev of the host.
//!
//! Each tool's most direct signal, seen by the test polling every [`POLL`]:
//! - nta: the alert's `opened` event on `/api/stream`. Pushed, so it costs
//!   the agent nothing; polling `/api/alerts` every 5 ms, as the detection
//!   benchmark does, would add 200 requests a second to the agent's CPU.
//! - FastNetMon: its notify script called with `ban`.
//! - scanlogd: its syslog line, on a datagram socket the test holds.
//!
//! CPU is the time the process's threads ran (user + system, to the
//! nanosecond: a scan lasts a fraction of a second) plus, for nta, its XDP
//! program's run time from the kernel's BPF statistics. Packet copies the
//! kernel makes for a peer's capture socket (AF_PACKET, raw socket) run in
//! softirq and are counted for nobody.

mod support;

use std::{
    fs,
    os::unix::{
        fs::{MetadataExt as _, PermissionsExt as _},
        net::UnixDatagram,
    },
    path::{Path, PathBuf},
    process::ExitStatus,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{
    api::LISTEN,
    figures::record,
    lab::{Lab, Spawned, alert_log, ms},
    netns::{ATTACKER_ADDR, Topology, VICTIM_ADDR},
    usage::{
        BpfStats, ThreadCpu, attached_xdp_id, map_memory_mib, memory_mib, prog_map_ids,
        prog_run_time,
    },
};

/// FastNetMon, from Debian's `fastnetmon` (1.2.4).
const FASTNETMON: &str = "/usr/sbin/fastnetmon";
/// scanlogd, from Debian's `scanlogd` (2.2.8).
const SCANLOGD: &str = "/usr/sbin/scanlogd";
/// The chroot Debian's scanlogd drops into; it must exist, root-owned.
const SCANLOGD_CHROOT: &str = "/run/scanlogd/empty";
/// The threshold the issue sets for FastNetMon (`threshold_pps`).
const FASTNETMON_PPS: u32 = 1000;

/// How long each flood lasts (`timeout 5 hping3 ... --flood`).
const FLOOD_SECS: u64 = 5;
/// The scan: nmap's fast timing over the first 500 ports.
const SCAN: &[&str] = &["nmap", "-sS", "-n", "-Pn", "-T4", "-p", "1-500"];
/// Longest the scan may run.
const SCAN_LIMIT: Duration = Duration::from_secs(60);
/// How often the test looks for each tool's signal: the resolution of the
/// times to detect.
const POLL: Duration = Duration::from_millis(2);
/// How long after the attack's end a late report still counts.
const GRACE: Duration = Duration::from_secs(3);
/// Longest a peer may take to start watching.
const PEER_START_LIMIT: Duration = Duration::from_secs(20);
/// Longest a peer (or the alert stream) lives: one run, with room.
const PEER_LIMIT: Duration = Duration::from_secs(120);

/// Runs per benchmark: 5, or `NTA_PEER_RUNS`.
fn runs() -> usize {
    std::env::var("NTA_PEER_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5)
        .clamp(1, 20)
}

/// Whether `peer` is installed; like `support::have_tool`, a skip outside
/// CI and a failure under it (`cargo xtask bench --peers` installs both).
fn peer_installed(peer: &str) -> bool {
    Path::new(peer).is_file()
        || support::missing(
            &format!("{peer} is not installed"),
            "`cargo xtask bench --peers` installs it",
        )
}

/// The process running `exe` in network namespace `ns`, if there is one:
/// a daemon that forks away cannot be found through its parent.
fn process_in(ns: &str, exe: &str) -> Option<u32> {
    let netns = fs::metadata(format!("/var/run/netns/{ns}")).ok()?.ino();
    let netns = format!("net:[{netns}]");
    fs::read_dir("/proc")
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == Path::new(exe))
                && fs::read_link(format!("/proc/{pid}/ns/net"))
                    .is_ok_and(|link| link.as_os_str() == netns.as_str())
        })
}

/// A peer daemon in the victim's namespace, in a mount namespace of its
/// own set up by a shell script; dropping it kills it and all it started.
struct Peer {
    name: &'static str,
    /// `unshare ... sh -c SCRIPT`, in a process group of its own.
    run: Spawned,
    /// The daemon's own process.
    pid: u32,
    /// Its log file, if it writes one.
    log: Option<PathBuf>,
    /// Everything it writes; removed after `run` is killed (field order).
    dir: tempfile::TempDir,
}

impl Peer {
    /// Runs `script` (with `args` as `$1`...) under `unshare unshare_args`
    /// in the victim's namespace.
    fn start(
        name: &'static str,
        net: &Topology,
        unshare_args: &[&str],
        script: &str,
        args: &[&str],
        dir: tempfile::TempDir,
        log: Option<PathBuf>,
    ) -> Self {
        let mut argv = vec!["unshare"];
        argv.extend_from_slice(unshare_args);
        argv.extend_from_slice(&["sh", "-c", script, name]);
        argv.extend_from_slice(args);
        Peer {
            name,
            run: Spawned::start(&net.victim, PEER_LIMIT, &argv),
            pid: 0,
            log,
            dir,
        }
    }

    /// Waits for `exe` to run in the victim's namespace: the daemon itself.
    fn find(&mut self, net: &Topology, exe: &str) {
        let start = Instant::now();
        self.pid = loop {
            if let Some(pid) = process_in(&net.victim, exe) {
                break pid;
            }
            self.check_running();
            if start.elapsed() > PEER_START_LIMIT {
                panic!(
                    "{} not running after {PEER_START_LIMIT:?}:\n{}",
                    self.name,
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(10));
        };
    }

    /// What it said: the wrapper's output and its log file.
    fn log(&self) -> String {
        let file = self
            .log
            .as_ref()
            .map(|path| fs::read_to_string(path).unwrap_or_else(|e| format!("{path:?}: {e}")))
            .unwrap_or_default();
        format!("{}{file}", self.run.output())
    }

    /// Panics with its log if the wrapper or the daemon has ended: a peer
    /// that is installed but broken must fail the benchmark, not skip it.
    fn check_running(&mut self) {
        let daemon_gone = self.pid != 0 && !Path::new(&format!("/proc/{}", self.pid)).exists();
        if !self.run.running() || daemon_gone {
            panic!("{} has stopped:\n{}", self.name, self.log());
        }
    }
}

/// FastNetMon's configuration: mirror capture (AF_PACKET) on `iface`, the
/// victim alone as its network, a ban above [`FASTNETMON_PPS`], and the
/// fastest detection it offers: speeds recalculated every second
/// (`speed_calculation_delay`, whole seconds) and averaged over one
/// (`average_calculation_time`). Its files in `dir`; what would reach out
/// (usage reports, API, Prometheus, syslog) off.
fn fastnetmon_conf(dir: &Path, iface: &str) -> String {
    let path = |name: &str| dir.join(name).display().to_string();
    format!(
        "logging_level = info\n\
         logging_local_syslog_logging = off\n\
         logging_remote_syslog_logging = off\n\
         disable_usage_report = on\n\
         enable_api = off\n\
         prometheus = off\n\
         monitor_local_ip_addresses = off\n\
         mirror_afpacket = on\n\
         mirror_af_packet_fanout_mode = cpu\n\
         interfaces = {iface}\n\
         networks_list_path = {networks}\n\
         white_list_path = {whitelist}\n\
         process_incoming_traffic = on\n\
         process_outgoing_traffic = on\n\
         enable_connection_tracking = on\n\
         enable_ban = on\n\
         enable_ban_ipv6 = off\n\
         ban_time = 1900\n\
         ban_for_pps = on\n\
         ban_for_bandwidth = off\n\
         ban_for_flows = off\n\
         threshold_pps = {FASTNETMON_PPS}\n\
         average_calculation_time = 1\n\
         speed_calculation_delay = 1\n\
         notify_script_path = {notify}\n\
         pid_path = {pid}\n\
         cli_stats_file_path = {stats}\n\
         cli_stats_ipv6_file_path = {stats6}\n",
        networks = path("networks_list"),
        whitelist = path("networks_whitelist"),
        notify = path("notify.sh"),
        pid = path("fastnetmon.pid"),
        stats = path("fastnetmon.dat"),
        stats6 = path("fastnetmon_ipv6.dat"),
    )
}

/// FastNetMon calls it as `notify.sh IP DIRECTION PPS ACTION`, with the
/// attack's details on stdin: it notes the call first (the time to detect),
/// then reads the details, which FastNetMon writes to the pipe after
/// starting it (nobody reading would get FastNetMon a SIGPIPE).
const NOTIFY_SCRIPT: &str = "#!/bin/sh\n\
     echo \"$1 $2 $3 $4\" >> \"$(dirname \"$0\")/notify.events\"\n\
     exec cat >> \"$(dirname \"$0\")/notify.details\"\n";

/// In FastNetMon's mount namespace: a temp dir as /var/log, where it keeps
/// attack details (`/var/log/fastnetmon_attacks`, not configurable) and a
/// crash's backtrace; then FastNetMon in the foreground.
const FASTNETMON_SETUP: &str = "mount --bind \"$1\" /var/log && \
     exec \"$2\" --configuration_file \"$3\" --log_file \"$4\"";

/// FastNetMon capturing the victim's veth, ready once it has a capture
/// socket on it per CPU.
fn start_fastnetmon(net: &Topology) -> Peer {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let var_log = d.join("var-log");
    fs::create_dir_all(var_log.join("fastnetmon_attacks")).expect("FastNetMon's /var/log");
    fs::write(d.join("networks_list"), format!("{VICTIM_ADDR}/32\n")).expect("networks_list");
    fs::write(d.join("networks_whitelist"), "").expect("networks_whitelist");
    fs::write(d.join("notify.events"), "").expect("notify.events");
    let notify = d.join("notify.sh");
    fs::write(&notify, NOTIFY_SCRIPT).expect("notify.sh");
    fs::set_permissions(&notify, fs::Permissions::from_mode(0o755)).expect("chmod notify.sh");
    let conf = d.join("fastnetmon.conf");
    fs::write(&conf, fastnetmon_conf(d, &net.victim_if)).expect("fastnetmon.conf");
    let log = d.join("fastnetmon.log");
    let text = |p: &Path| p.to_str().expect("a UTF-8 temp path").to_owned();
    let args = [
        text(&var_log),
        FASTNETMON.to_owned(),
        text(&conf),
        text(&log),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut peer = Peer::start(
        "FastNetMon",
        net,
        &["--mount"],
        FASTNETMON_SETUP,
        &args,
        dir,
        Some(log),
    );
    peer.find(net, FASTNETMON);
    // SAFETY: sysconf has no preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
    let start = Instant::now();
    while capture_sockets(net) < cpus {
        peer.check_running();
        if start.elapsed() > PEER_START_LIMIT {
            panic!(
                "FastNetMon opened no capture socket per CPU ({cpus}) within {PEER_START_LIMIT:?}:\n{}",
                peer.log()
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
    peer
}

/// AF_PACKET sockets open in the victim's namespace (nta has none).
fn capture_sockets(net: &Topology) -> usize {
    let out = net.exec(
        &net.victim,
        Duration::from_secs(5),
        &["cat", "/proc/net/packet"],
    );
    String::from_utf8_lossy(&out.stdout).lines().skip(1).count()
}

/// Whether FastNetMon's notify script has been called to ban the victim.
fn fastnetmon_banned(peer: &Peer) -> bool {
    let events = fs::read_to_string(peer.dir.path().join("notify.events")).unwrap_or_default();
    events.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.first() == Some(&VICTIM_ADDR) && fields.get(3) == Some(&"ban")
    })
}

/// In scanlogd's mount and PID namespaces: a tmpfs as /run holding the
/// chroot it insists on, and one as /dev holding /dev/null and, as
/// /dev/log (glibc's syslog writes nowhere else), the test's socket. Then
/// scanlogd, which always forks into the background: the PID namespace
/// holds it, so that killing the wrapper's `sleep` (its init) kills it.
const SCANLOGD_SETUP: &str = "set -e\n\
     mount -t tmpfs -o mode=755 nta-peer /run\n\
     mkdir -p \"$3\"\n\
     mount --bind /dev/null \"$1/null\"\n\
     mount -t tmpfs -o mode=755 nta-peer /dev\n\
     touch /dev/null /dev/log\n\
     mount --bind \"$1/null\" /dev/null\n\
     mount --bind \"$1/log\" /dev/log\n\
     \"$2\"\n\
     echo scanlogd started\n\
     exec sleep \"$4\"\n";

/// scanlogd in the victim's namespace, its syslog going to `syslog`.
fn start_scanlogd(net: &Topology, syslog: &Syslog) -> Peer {
    let dir = syslog.dir.path();
    fs::write(dir.join("null"), "").expect("a mount point for /dev/null");
    let args = [
        dir.to_str().expect("a UTF-8 temp path").to_owned(),
        SCANLOGD.to_owned(),
        SCANLOGD_CHROOT.to_owned(),
        PEER_LIMIT.as_secs().to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut peer = Peer::start(
        "scanlogd",
        net,
        &["--mount", "--pid", "--fork", "--kill-child"],
        SCANLOGD_SETUP,
        &args,
        tempfile::tempdir().expect("temp dir"),
        None,
    );
    // Its first process forks the daemon and exits before this is printed.
    peer.run
        .wait_for_output("scanlogd started", PEER_START_LIMIT);
    peer.find(net, SCANLOGD);
    peer
}

/// The datagram socket scanlogd's syslog reaches, and what came.
struct Syslog {
    socket: UnixDatagram,
    messages: Vec<String>,
    dir: tempfile::TempDir,
}

impl Syslog {
    fn bind() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = UnixDatagram::bind(dir.path().join("log")).expect("binding the syslog socket");
        socket
            .set_nonblocking(true)
            .expect("a non-blocking syslog socket");
        Syslog {
            socket,
            messages: Vec::new(),
            dir,
        }
    }

    /// Whether scanlogd has logged a scan from the attacker: a line
    /// `scanlogd: SRC[:PORT] to DST ports ...` (the port when it did not
    /// change during the scan).
    fn scan_logged(&mut self) -> bool {
        let mut buf = [0u8; 2048];
        while let Ok(n) = self.socket.recv(&mut buf) {
            self.messages
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        let from = format!("scanlogd: {ATTACKER_ADDR}");
        self.messages.iter().any(|m| {
            m.split_once(&from)
                .is_some_and(|(_, rest)| rest.starts_with([':', ' ']))
        })
    }
}

/// `curl -N /api/stream` in the victim's namespace, connected: the
/// agent's events as it pushes them.
fn alert_stream(net: &Topology) -> Spawned {
    let url = format!("http://{LISTEN}/api/stream");
    let mut stream = Spawned::start(&net.victim, PEER_LIMIT, &["curl", "-sN", &url]);
    stream.wait_for_output("event:stats", Duration::from_secs(10));
    stream
}

/// Whether the stream has carried an `opened` event for a `kind` alert.
fn streamed(stream: &Spawned, kind: &str) -> bool {
    let text = stream.output();
    let needle = format!("\"kind\":\"{kind}\"");
    text.contains(&needle)
        && text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter(|data| data.contains(&needle))
            .filter_map(|data| serde_json::from_str::<Value>(data).ok())
            .any(|event| event["event"] == "opened" && event["alert"]["kind"] == kind)
}

/// Polls every [`POLL`] until `attack` has ended and every detector has
/// fired, or [`GRACE`] after the attack's end; when each first fired,
/// counted from `start`.
fn watch(
    start: Instant,
    attack: &mut Spawned,
    detectors: &mut [&mut dyn FnMut() -> bool],
) -> Vec<Option<Duration>> {
    let mut seen = vec![None; detectors.len()];
    let mut ended: Option<Instant> = None;
    loop {
        for (detector, seen) in detectors.iter_mut().zip(&mut seen) {
            if seen.is_none() && detector() {
                *seen = Some(start.elapsed());
            }
        }
        if ended.is_none() && !attack.running() {
            ended = Some(Instant::now());
        }
        if let Some(ended) = ended
            && (seen.iter().all(Option::is_some) || ended.elapsed() > GRACE)
        {
            return seen;
        }
        thread::sleep(POLL);
    }
}

/// One tool's figures in one run.
#[derive(Debug, Clone, Copy)]
struct Run {
    detect: Duration,
    /// CPU seconds per second of the attack.
    cpu: f64,
    rss_mib: f64,
    hwm_mib: f64,
}

/// nta's CPU, as seconds per second of an attack: its agent's process and
/// its XDP program.
#[derive(Debug, Clone, Copy)]
struct NtaCpu {
    agent: f64,
    xdp: f64,
}

/// nta on the victim's veth, ready to be measured against a peer.
struct Nta {
    lab: Lab,
    pid: u32,
    xdp_id: u64,
}

impl Nta {
    fn start() -> Self {
        let lab = Lab::start();
        let pid = lab.agent.pid().expect("the agent's pid");
        let xdp_id = attached_xdp_id(&lab.net.victim, &lab.net.victim_if);
        Nta { lab, pid, xdp_id }
    }

    /// Kernel memory of the program's maps, in MiB: not in the agent's RSS.
    fn map_mib(&self) -> f64 {
        map_memory_mib(&prog_map_ids(self.xdp_id))
    }
}

/// What one run of an attack measured: nta's and the peer's figures, and
/// how nta's CPU split between agent and XDP program.
struct Measured {
    nta: Run,
    peer: Run,
    nta_cpu: NtaCpu,
    nta_map_mib: f64,
}

impl Measured {
    /// The CPU and memory of nta and of `peer` (the other tool's name), as
    /// each run prints them.
    fn usage(&self, peer: &str) -> String {
        format!(
            "CPU nta {:.1} % (agent {:.1} %, XDP {:.1} %), {peer} {:.1} % of a core; \
             VmHWM nta {:.1} MiB (+{:.1} MiB of BPF maps), {peer} {:.1} MiB",
            self.nta.cpu * 100.0,
            self.nta_cpu.agent * 100.0,
            self.nta_cpu.xdp * 100.0,
            self.peer.cpu * 100.0,
            self.nta.hwm_mib,
            self.nta_map_mib,
            self.peer.hwm_mib,
        )
    }
}

/// Asserts that `/api/alerts` lists a `kind` alert matching `filter` (a
/// query string), as the stream showed one.
fn assert_listed(nta: &Nta, kind: &str, filter: &str) {
    let listed = nta.lab.api.alerts(&format!("kind={kind}&{filter}"));
    assert!(
        !listed.is_empty(),
        "the stream showed a {kind} but /api/alerts lists none with {filter}:\n{}",
        alert_log(&nta.lab.agent)
    );
}

/// Starts `attack` in the attacker's namespace and measures nta and
/// `peer` until it ends and both have reported it (`nta_kind`'s alert,
/// `peer_saw`), or [`GRACE`] after; panics with their logs if either did
/// not.
fn measure(
    nta: &Nta,
    stream: &Spawned,
    nta_kind: &str,
    peer: &mut Peer,
    peer_saw: &mut dyn FnMut(&Peer) -> bool,
    attack: &[&str],
    limit: Duration,
) -> (Measured, ExitStatus, String) {
    let before = (
        ThreadCpu::of(nta.pid),
        prog_run_time(nta.xdp_id).0,
        ThreadCpu::of(peer.pid),
    );
    let start = Instant::now();
    let mut tool = Spawned::start(&nta.lab.net.attacker, limit, attack);
    let seen = {
        let peer = &*peer;
        watch(
            start,
            &mut tool,
            &mut [&mut || streamed(stream, nta_kind), &mut || peer_saw(peer)],
        )
    };
    peer.check_running();
    let took = start.elapsed().as_secs_f64();
    let nta_cpu = NtaCpu {
        agent: ThreadCpu::of(nta.pid).secs_since(&before.0) / took,
        xdp: (prog_run_time(nta.xdp_id).0 - before.1).as_secs_f64() / took,
    };
    let peer_cpu = ThreadCpu::of(peer.pid).secs_since(&before.2) / took;
    let (nta_rss, nta_hwm) = memory_mib(nta.pid);
    let (peer_rss, peer_hwm) = memory_mib(peer.pid);
    let (status, out) = tool.wait(Duration::from_secs(5));
    let attack_text = attack.join(" ");
    let nta_at = seen[0].unwrap_or_else(|| {
        panic!(
            "nta raised no {nta_kind} alert for `{attack_text}`:\n{}\nstream:\n{}",
            alert_log(&nta.lab.agent),
            stream.output()
        )
    });
    let peer_at = seen[1].unwrap_or_else(|| {
        panic!(
            "{} did not report `{attack_text}`:\n{}",
            peer.name,
            peer.log()
        )
    });
    let measured = Measured {
        nta: Run {
            detect: nta_at,
            cpu: nta_cpu.agent + nta_cpu.xdp,
            rss_mib: nta_rss,
            hwm_mib: nta_hwm,
        },
        peer: Run {
            detect: peer_at,
            cpu: peer_cpu,
            rss_mib: peer_rss,
            hwm_mib: peer_hwm,
        },
        nta_cpu,
        nta_map_mib: nta.map_mib(),
    };
    (measured, status, out)
}

/// One SYN flood with nta and FastNetMon on the victim's veth.
fn syn_flood_run() -> Measured {
    let nta = Nta::start();
    let mut fastnetmon = start_fastnetmon(&nta.lab.net);
    let stream = alert_stream(&nta.lab.net);
    let flood = ["hping3", "-S", "-p", "80", "--flood", VICTIM_ADDR];
    let (measured, status, out) = measure(
        &nta,
        &stream,
        "syn_flood",
        &mut fastnetmon,
        &mut fastnetmon_banned,
        &flood,
        Duration::from_secs(FLOOD_SECS),
    );
    // `timeout` exits 124 when it had to stop the tool: how a flood ends.
    assert_eq!(
        status.code(),
        Some(124),
        "hping3 ended early ({status}):\n{out}"
    );
    assert_listed(&nta, "syn_flood", &format!("dst={VICTIM_ADDR}"));
    let ban = fs::read_to_string(fastnetmon.dir.path().join("notify.events")).unwrap_or_default();
    println!(
        "hping3 --flood: nta syn_flood {} after starting hping3, FastNetMon ban {} ({}); {}",
        ms(measured.nta.detect),
        ms(measured.peer.detect),
        ban.lines().next().unwrap_or_default(),
        measured.usage("FastNetMon"),
    );
    measured
}

/// One fast nmap scan with nta and scanlogd on the victim's veth.
fn port_scan_run() -> Measured {
    let nta = Nta::start();
    let mut syslog = Syslog::bind();
    let mut scanlogd = start_scanlogd(&nta.lab.net, &syslog);
    let stream = alert_stream(&nta.lab.net);
    let mut scan = SCAN.to_vec();
    scan.push(VICTIM_ADDR);
    let (measured, status, out) = measure(
        &nta,
        &stream,
        "port_scan",
        &mut scanlogd,
        &mut |_| syslog.scan_logged(),
        &scan,
        SCAN_LIMIT,
    );
    assert!(status.success(), "nmap failed ({status}):\n{out}");
    assert!(
        out.contains("1 host up"),
        "nmap did not reach the victim:\n{out}"
    );
    assert_listed(&nta, "port_scan", &format!("src={ATTACKER_ADDR}"));
    println!(
        "nmap -T4 -p 1-500: nta port_scan {} after starting nmap, scanlogd {} ({}); {}",
        ms(measured.nta.detect),
        ms(measured.peer.detect),
        syslog
            .messages
            .first()
            .map(String::as_str)
            .unwrap_or_default(),
        measured.usage("scanlogd"),
    );
    measured
}

/// The median of `values` (the upper one of an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `peer / nta`, or NaN where nta's figure is zero.
fn quotient(peer: f64, nta: f64) -> f64 {
    if nta > 0.0 { peer / nta } else { f64::NAN }
}

/// What the figures of one benchmark say about how they were taken.
struct Notes<'a> {
    group: &'a str,
    peer: &'a str,
    /// How nta's and the peer's reports were seen.
    signals: &'a str,
}

/// Records medians over `runs` for nta and the peer, and the ratios.
fn report(notes: &Notes, runs: &[Measured]) {
    let Notes {
        group,
        peer,
        signals,
    } = notes;
    let n = runs.len();
    let of = |f: &dyn Fn(&Measured) -> f64| median(runs.iter().map(f).collect());
    let worst = |f: &dyn Fn(&Measured) -> f64| runs.iter().map(f).fold(f64::NAN, f64::max);
    let to_ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let detect_note = format!("median of {n} runs, from starting the attack tool; {signals}");
    let cpu_note = format!(
        "median of {n} runs, CPU seconds per second of the attack × 100; nta: agent {:.2} % + \
         XDP {:.2} % (BPF stats); kernel copies to a peer's capture socket not counted",
        of(&|m| m.nta_cpu.agent) * 100.0,
        of(&|m| m.nta_cpu.xdp) * 100.0,
    );
    let memory_note = format!("median of {n} runs, at the attack's end");
    let nta_map_mib = of(&|m| m.nta_map_mib);

    for (tool, pick) in [
        ("nta", (|m: &Measured| m.nta) as fn(&Measured) -> Run),
        (*peer, |m: &Measured| m.peer),
    ] {
        record(
            group,
            &format!("{tool}: time to detect, median"),
            of(&|m| to_ms(pick(m).detect)),
            "ms",
            None,
            &detect_note,
        );
        record(
            group,
            &format!("{tool}: time to detect, worst"),
            worst(&|m| to_ms(pick(m).detect)),
            "ms",
            None,
            &format!("worst of {n} runs"),
        );
        record(
            group,
            &format!("{tool}: CPU during the attack"),
            of(&|m| pick(m).cpu * 100.0),
            "% of a core",
            None,
            &cpu_note,
        );
        record(
            group,
            &format!("{tool}: resident memory (VmRSS)"),
            of(&|m| pick(m).rss_mib),
            "MiB",
            None,
            &memory_note,
        );
        record(
            group,
            &format!("{tool}: peak resident memory (VmHWM)"),
            of(&|m| pick(m).hwm_mib),
            "MiB",
            None,
            &memory_note,
        );
    }
    record(
        group,
        "nta: kernel memory of its BPF maps",
        nta_map_mib,
        "MiB",
        None,
        "bytes_memlock of the maps of the attached program: not in the agent's RSS",
    );

    let ratio = |name: &str, value: f64, what: &str| {
        record(
            group,
            &format!("{peer} / nta: {name}"),
            value,
            "×",
            None,
            &format!("{peer}'s median {what}; above 1: nta's is lower"),
        );
    };
    ratio(
        "time to detect",
        quotient(of(&|m| to_ms(m.peer.detect)), of(&|m| to_ms(m.nta.detect))),
        "time to detect over nta's",
    );
    ratio(
        "CPU",
        quotient(of(&|m| m.peer.cpu), of(&|m| m.nta.cpu)),
        "CPU over nta's (agent + XDP)",
    );
    ratio(
        "resident memory",
        quotient(of(&|m| m.peer.rss_mib), of(&|m| m.nta.rss_mib)),
        "VmRSS over nta's",
    );
    ratio(
        "peak memory, nta's BPF maps included",
        quotient(
            of(&|m| m.peer.hwm_mib),
            of(&|m| m.nta.hwm_mib + m.nta_map_mib),
        ),
        "VmHWM over nta's VmHWM + the kernel memory of its BPF maps",
    );
}

/// Runs `run` [`runs`] times beside `peer`, which needs `tools`, and
/// reports the runs as `notes` say.
fn bench_beside(peer: &str, tools: &[&str], run: fn() -> Measured, notes: &Notes) {
    if !support::privileged_with(tools) || !peer_installed(peer) {
        return;
    }
    let _stats = BpfStats::on();
    let runs: Vec<Measured> = (0..runs()).map(|_| run()).collect();
    report(notes, &runs);
}

#[test]
#[ignore = "benchmark: FastNetMon beside nta; cargo xtask bench --peers runs it"]
fn bench_peers_syn_flood_fastnetmon() {
    bench_beside(
        FASTNETMON,
        &["hping3", "curl", "bpftool"],
        syn_flood_run,
        &Notes {
            group: "peers: SYN flood",
            peer: "FastNetMon",
            signals: &format!(
                "hping3 -S --flood for {FLOOD_SECS} s; nta: syn_flood `opened` on /api/stream; \
                 FastNetMon (AF_PACKET mirror, threshold_pps {FASTNETMON_PPS}, average over 1 s, \
                 recalculated every 1 s): notify script called with `ban`; both polled every {} ms",
                POLL.as_millis()
            ),
        },
    );
}

#[test]
#[ignore = "benchmark: scanlogd beside nta; cargo xtask bench --peers runs it"]
fn bench_peers_port_scan_scanlogd() {
    bench_beside(
        SCANLOGD,
        &["nmap", "curl", "bpftool"],
        port_scan_run,
        &Notes {
            group: "peers: port scan",
            peer: "scanlogd",
            signals: &format!(
                "{} (nmap's startup included); nta: port_scan `opened` on /api/stream; \
                 scanlogd: its syslog line on the test's socket; both polled every {} ms",
                SCAN.join(" "),
                POLL.as_millis()
            ),
        },
    );
}
