//! The lab the detection-coverage tests (`coverage_*.rs`) share: the
//! two-namespace [`Topology`] with an IPv6 pair on its veth, networks routed
//! behind the victim for sweeps to cross its veth, extra client addresses
//! on the attacker's side, the agent started with a config file, small
//! servers and clients in Python, and the tcpdump that times the first
//! packet of an attack.
//!
//! Everything made here lives in the topology's two namespaces (addresses,
//! routes, sysctls) or in temporary directories and processes owned by the
//! values returned: deleting the namespaces on drop removes it all, even
//! when a test fails half-way, and the namespaces' names are unique per run.
//!
//! Addresses: all inside the namespaces, never routed anywhere else. IPv4
//! from the benchmarking range 198.18.0.0/15 (RFC 2544), IPv6 from its IPv6
//! counterpart 2001:2::/48 (RFC 5180).

use std::{
    collections::BTreeMap,
    fs,
    path::PathBuf,
    thread,
    time::{Duration, Instant, SystemTime},
};

use serde_json::Value;

use super::{
    api::{AlertWatch, Api},
    lab::{FirstPacket, Lab, Spawned, explain, ms, poll_note, start_agent},
    netns::{ATTACKER_ADDR, Topology, run},
};

/// The victim's IPv6 address on the veth.
pub const VICTIM_ADDR6: &str = "2001:2::1";
/// The attacker's IPv6 address on the veth.
pub const ATTACKER_ADDR6: &str = "2001:2::2";
/// A /24 routed from the attacker's side through the victim, which owns
/// every address in it (`ip route add local`): each of its 256 hosts
/// answers, as a subnet of servers behind a router would, and every packet
/// to them crosses the victim's veth, where the sensor is.
pub const SWEEP_NET: &str = "198.19.7.0/24";
/// The IPv6 prefix routed the same way.
pub const SWEEP_NET6: &str = "2001:2:0:7::/64";
/// The part of [`SWEEP_NET6`] an IPv6 sweep covers: 256 hosts, as many as
/// the IPv4 /24 (a /64 is too large to sweep).
pub const SWEEP_RANGE6: &str = "2001:2:0:7::/120";

/// Host `i` (0–255) of [`SWEEP_NET`].
pub fn sweep_host(i: u8) -> String {
    format!("198.19.7.{i}")
}

/// Host `i` of [`SWEEP_NET6`].
pub fn sweep_host6(i: u8) -> String {
    format!("2001:2:0:7::{i:x}")
}

/// The first of the attacker's extra client addresses; see [`add_clients`].
const FIRST_CLIENT: u8 = 10;

/// The extra topology the coverage tests use, on top of [`Topology::new`]:
/// the IPv6 pair on the veth and the routed networks behind the victim, in
/// both families. Returns once the victim answers on all of them.
pub fn extend(net: &Topology) {
    for (ns, dev, addr) in [
        (&net.victim, &net.victim_if, VICTIM_ADDR6),
        (&net.attacker, &net.attacker_if, ATTACKER_ADDR6),
    ] {
        // nodad: usable at once, without a second of duplicate detection.
        let cidr = format!("{addr}/64");
        run("ip", &["-n", ns, "addr", "add", &cidr, "dev", dev, "nodad"]);
    }
    run(
        "ip",
        &[
            "-n",
            &net.victim,
            "route",
            "add",
            "local",
            SWEEP_NET,
            "dev",
            "lo",
        ],
    );
    run(
        "ip",
        &[
            "-n",
            &net.victim,
            "-6",
            "route",
            "add",
            "local",
            SWEEP_NET6,
            "dev",
            "lo",
        ],
    );
    let via = super::netns::VICTIM_ADDR;
    run(
        "ip",
        &["-n", &net.attacker, "route", "add", SWEEP_NET, "via", via],
    );
    run(
        "ip",
        &[
            "-n",
            &net.attacker,
            "-6",
            "route",
            "add",
            SWEEP_NET6,
            "via",
            VICTIM_ADDR6,
        ],
    );
    for target in [VICTIM_ADDR6, &sweep_host(200), &sweep_host6(200)] {
        wait_for_ping(net, target);
    }
}

/// Waits until `target` answers a ping from the attacker's side (neighbour
/// discovery done), for up to 10 s.
fn wait_for_ping(net: &Topology, target: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let out = net.exec(
            &net.attacker,
            Duration::from_secs(3),
            &["ping", "-n", "-q", "-c", "1", "-W", "1", target],
        );
        if out.status.success() {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{target} does not answer pings from {} within 10 s",
        net.attacker
    );
}

/// Adds `n` more IPv4 addresses on the attacker's veth (198.18.0.10 on, in
/// its /24), as many real clients behind it; returns them.
pub fn add_clients(net: &Topology, n: u8) -> Vec<String> {
    assert!(
        usize::from(FIRST_CLIENT) + usize::from(n) < 255,
        "at most {} clients",
        254 - FIRST_CLIENT
    );
    (0..n)
        .map(|i| {
            let addr = format!("198.18.0.{}", FIRST_CLIENT + i);
            let cidr = format!("{addr}/24");
            run(
                "ip",
                &[
                    "-n",
                    &net.attacker,
                    "addr",
                    "add",
                    &cidr,
                    "dev",
                    &net.attacker_if,
                ],
            );
            addr
        })
        .collect()
}

/// Sets sysctl `key` to `value` in namespace `ns` (network sysctls are per
/// namespace: nothing outside changes).
pub fn sysctl(net: &Topology, ns: &str, key: &str, value: &str) {
    let out = net.exec(
        ns,
        Duration::from_secs(5),
        &["sysctl", "-q", "-w", &format!("{key}={value}")],
    );
    super::netns::assert_succeeded(&format!("sysctl {key}={value} in {ns}"), &out);
}

/// A [`Lab`] on the extended topology, its agent started with `config` (the
/// text of a TOML file; empty for the defaults), and the file.
pub struct CoverageLab {
    pub lab: Lab,
    _config: tempfile::TempDir,
}

impl CoverageLab {
    /// [`CoverageLab::start`], if this test can run: as root, with every
    /// one of `tools`; `None` tells it to return.
    pub fn privileged(tools: &[&str], config: &str) -> Option<Self> {
        super::privileged_with(tools).then(|| Self::start(config))
    }

    pub fn start(config: &str) -> Self {
        let net = Topology::new();
        extend(&net);
        let dir = tempfile::tempdir().expect("temp dir");
        let path: PathBuf = dir.path().join("coverage.toml");
        fs::write(&path, config).expect("writing the config");
        let path = path.to_str().expect("a UTF-8 temp path").to_owned();
        let agent = start_agent(&net, &["--config", &path]);
        let api = Api::new(&net.victim);
        CoverageLab {
            lab: Lab { agent, api, net },
            _config: dir,
        }
    }
}

impl std::ops::Deref for CoverageLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

/// How many alerts of each kind.
pub fn count_by_kind(alerts: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for alert in alerts {
        let kind = alert["kind"].as_str().unwrap_or("?").to_owned();
        *counts.entry(kind).or_insert(0) += 1;
    }
    counts
}

/// The one alert in `alerts`, which must be of `kind`, with no alert of
/// any other kind beside it; a failure shows them all and the agent's log.
#[track_caller]
pub fn the_only_alert(lab: &Lab, alerts: &[Value], kind: &str) -> Value {
    assert!(
        alerts.len() == 1 && alerts[0]["kind"] == kind,
        "expected exactly one {kind} alert and nothing else, got {:?}; {}",
        count_by_kind(alerts),
        explain(alerts, &lab.agent)
    );
    alerts[0].clone()
}

/// A number in an alert's evidence, or 0 if it has none.
pub fn evidence_u64(alert: &Value, key: &str) -> u64 {
    alert["evidence"][key].as_u64().unwrap_or(0)
}

/// The requirement: an attack's alert is in `/api/alerts` well
/// under a second after it starts; a second, from its first packet reaching
/// the victim's veth, is the most a test accepts.
pub const DETECTION_LIMIT: Duration = Duration::from_secs(1);

/// After an attack ends: one tick (1 s) reads the last counters, one more
/// would show anything late.
pub const SETTLE: Duration = Duration::from_secs(2);
/// Longest any poller runs.
pub const WATCH_LIMIT: Duration = Duration::from_secs(180);

/// How an attack tool ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ends {
    /// By itself, successfully (a scan).
    Itself,
    /// When `timeout` stops it (a flood): exit status 124.
    Timeout,
}

/// An attack run from the attacker's namespace and watched: what the
/// tests then check.
pub struct Attacked {
    /// Every alert, [`SETTLE`] after the tool ended.
    pub alerts: Vec<Value>,
    /// What the tool printed.
    pub output: String,
    /// How long the tool ran.
    pub ran: Duration,
    /// From starting the tool to its first packet reaching the victim's veth.
    pub first_packet: Duration,
    /// From starting the tool to the first alert of the expected kind in
    /// the API, if it showed.
    pub alert_at: Option<Duration>,
    poll: String,
}

impl Attacked {
    /// From the first packet reaching the victim's veth to the alert in
    /// the API.
    pub fn after_first_packet(&self) -> Option<Duration> {
        self.alert_at.map(|at| at.saturating_sub(self.first_packet))
    }

    /// Asserts that the alert showed in the API within `limit` of the
    /// attack's first packet reaching the victim's veth.
    #[track_caller]
    pub fn assert_detected_within(&self, limit: Duration, lab: &Lab) {
        let after = self.after_first_packet().unwrap_or_else(|| {
            panic!(
                "the poller never saw the alert; {}",
                explain(&self.alerts, &lab.agent)
            )
        });
        assert!(
            after <= limit,
            "the alert showed {} after the first packet, more than {}; {}",
            ms(after),
            ms(limit),
            explain(&self.alerts, &lab.agent)
        );
    }

    /// Prints the detection time, in the form the closing notes quote:
    /// `DETECTION <what>: ...`.
    pub fn print(&self, what: &str, kind: &str) {
        let show = |d: Option<Duration>| d.map_or_else(|| "never".to_owned(), ms);
        println!(
            "DETECTION {what}: {kind} alert in the API {} after its first packet reached the \
             victim's veth ({} after starting the tool, whose first packet came {} after it \
             started); the tool ran {}; alerts by kind {:?}; {}",
            show(self.after_first_packet()),
            show(self.alert_at),
            ms(self.first_packet),
            ms(self.ran),
            count_by_kind(&self.alerts),
            self.poll
        );
    }
}

/// Runs `args` in the attacker's namespace for up to `limit`, while a
/// tcpdump with `filter` on the victim's veth times its first packet and a
/// poller times the first `kind` alert; waits for the tool to end as
/// `ends` says, then [`SETTLE`].
pub fn attack(
    lab: &Lab,
    args: &[&str],
    limit: Duration,
    ends: Ends,
    filter: &str,
    kind: &str,
) -> Attacked {
    let capture = FirstPacket::capture(&lab.net, filter);
    let watch = AlertWatch::start(&lab.api, WATCH_LIMIT.max(limit + Duration::from_secs(10)));
    let start = Instant::now();
    let start_wall = SystemTime::now();
    let mut tool = Spawned::start(&lab.net.attacker, limit, args);
    let (status, output) = tool.wait(limit + Duration::from_secs(5));
    let ran = start.elapsed();
    match ends {
        Ends::Itself => assert!(
            status.success(),
            "`{}` failed ({status}):\n{output}",
            args.join(" ")
        ),
        Ends::Timeout => assert!(
            status.code() == Some(124),
            "`{}` ended before its timeout ({status}):\n{output}",
            args.join(" ")
        ),
    }
    thread::sleep(SETTLE);
    let alerts = lab.api.alerts("");
    // Wall clock against the monotonic one: both read together at the
    // start, a few µs apart.
    let first_packet = capture
        .at()
        .duration_since(start_wall)
        .unwrap_or_else(|e| panic!("the first packet came before the tool started: {e}"));
    let alert_at = watch.first(kind).map(|at| at - start);
    Attacked {
        alerts,
        output,
        ran,
        first_packet,
        alert_at,
        poll: poll_note(&watch),
    }
}

/// The tcpdump filter for IP packets from the attacker's own address (ARP
/// left out).
pub fn from_attacker() -> String {
    format!("ip and src host {ATTACKER_ADDR}")
}

/// The tcpdump filter for packets from the attacker's IPv6 address,
/// neighbour discovery left out (ICMPv6 types 133–137).
pub fn from_attacker6() -> String {
    format!(
        "ip6 and src host {ATTACKER_ADDR6} and not (icmp6 and ip6[40] >= 133 and ip6[40] <= 137)"
    )
}

/// A Python program run in a namespace, from a file of its own (so that
/// failures name it, rather than quote it): a server or a client. Derefs to
/// the [`Spawned`] process; the file goes on drop.
pub struct Python {
    process: Spawned,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Python {
    type Target = Spawned;
    fn deref(&self) -> &Spawned {
        &self.process
    }
}

impl std::ops::DerefMut for Python {
    fn deref_mut(&mut self) -> &mut Spawned {
        &mut self.process
    }
}

/// Runs `script` (a `support/py/` program, given as `(name, text)`) with
/// `args` in `ns` for up to `limit`.
pub fn python(ns: &str, limit: Duration, (name, script): (&str, &str), args: &[&str]) -> Python {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join(name);
    fs::write(&file, script).unwrap_or_else(|e| panic!("writing {}: {e}", file.display()));
    let file = file.to_str().expect("a UTF-8 temp path");
    let mut all = vec!["python3", "-u", file];
    all.extend_from_slice(args);
    Python {
        process: Spawned::start(ns, limit, &all),
        _dir: dir,
    }
}

/// Like [`python`], for a server: returns once it printed `ready`.
pub fn python_server(ns: &str, limit: Duration, script: (&str, &str), args: &[&str]) -> Python {
    let mut server = python(ns, limit, script, args);
    server.wait_for_output("ready", Duration::from_secs(10));
    server
}

/// Waits for a Python client to end successfully; its output.
#[track_caller]
pub fn finished(client: &mut Spawned, limit: Duration, what: &str) -> String {
    let (status, out) = client.wait(limit);
    assert!(status.success(), "{what} failed ({status}):\n{out}");
    out
}
