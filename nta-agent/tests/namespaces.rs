//! The agent attached to a veth in a network namespace, watching real traffic
//! sent by real tools from a second namespace.

mod support;

use std::time::Duration;

use support::{
    api::Api,
    lab::send_syns,
    netns::{ATTACKER_ADDR, Agent, Topology, VICTIM_ADDR},
};

const ATTACH_LIMIT: Duration = Duration::from_secs(20);
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// Sums the "N SYN in" figures of every per-interval summary line.
fn syns_in_summaries(log: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains("nta::summary"))
        .filter_map(|l| {
            let before = l.split(" SYN in ").next()?;
            before.rsplit(' ').next()?.parse::<u64>().ok()
        })
        .sum()
}

/// The value of `name=` in the totals line.
fn total(log: &str, name: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.contains("totals since start:"))?;
    let prefix = format!("{name}=");
    line.split_whitespace()
        .find_map(|field| field.strip_prefix(&prefix)?.parse().ok())
}

/// Starts an agent on the victim's veth with `args` and waits until its
/// sensor is attached.
fn start_attached(net: &Topology, args: &[&str]) -> Agent {
    let mut agent = Agent::start(&net.victim, &net.victim_if, args);
    agent.wait_for_log("Sensor attached", ATTACH_LIMIT);
    agent
}

#[test]
fn agent_reports_exactly_the_syns_hping3_sent() {
    let Some(net) = Topology::privileged(&["hping3"]) else {
        return;
    };
    let mut agent = start_attached(&net, &["--interval", "200ms"]);
    assert!(net.xdp_attached(&net.victim, &net.victim_if));

    send_syns(&net, 80, 200, "u1000", None);
    // Let at least one interval report them before stopping.
    std::thread::sleep(Duration::from_millis(500));

    agent.stop_cleanly(libc::SIGTERM, STOP_LIMIT);
    let log = agent.log();
    assert!(log.contains("Detached"), "{log}");
    assert!(
        !net.xdp_attached(&net.victim, &net.victim_if),
        "XDP left attached"
    );

    assert_eq!(total(&log, "tcp_syn"), Some(200), "totals:\n{log}");
    assert_eq!(syns_in_summaries(&log), 200, "summaries:\n{log}");
    assert!(log.contains("top SYN port 80"), "{log}");
    assert!(
        log.contains(&format!("top source {ATTACKER_ADDR}")),
        "{log}"
    );
}

/// Flows that go idle are written and served: 200 SYNs from one source
/// port are one flow, listed by `/api/flows` a few seconds after it ended
/// (idle timeout 2 s), and nothing else from that source; `/api/hosts`
/// and `/api/top` add it up.
#[test]
fn an_idle_flow_is_served_by_the_api() {
    let Some(net) = Topology::privileged(&["hping3"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("nta.toml");
    std::fs::write(&config, "[flows]\nidle_timeout = \"2s\"\n").expect("config");
    let config = config.to_str().expect("a UTF-8 path");
    let mut agent = start_attached(
        &net,
        &["--config", config, "--listen", support::api::LISTEN],
    );
    agent.wait_for_log("API listening", ATTACH_LIMIT);
    let api = Api::new(&net.victim);
    // One source port: one flow.
    send_syns(&net, 8443, 200, "u1000", Some(41_000));
    // Idle 2 s, walked every second: there within 4.
    let path = format!("/api/flows?host={ATTACKER_ADDR}");
    let start = std::time::Instant::now();
    let flows = loop {
        let body = api.get(&path);
        let flows = body["flows"].as_array().cloned().unwrap_or_default();
        if !flows.is_empty() || start.elapsed() > Duration::from_secs(8) {
            break flows;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(flows.len(), 1, "{flows:?}\n{}", agent.log());
    let f = &flows[0];
    assert_eq!(f["src_ip"], ATTACKER_ADDR, "{f}");
    assert_eq!(f["src_port"], 41_000, "{f}");
    assert_eq!(f["dest_ip"], VICTIM_ADDR, "{f}");
    assert_eq!(f["dst_port"], 8443, "{f}");
    assert_eq!(f["pkts_toserver"], 200, "{f}");
    assert_eq!(f["reason"], "timeout", "{f}");
    assert_eq!(f["state"], "new", "one way, no FIN: {f}");
    // The same flow, added up by host and in the top talkers.
    let host = api.get(&format!("/api/hosts/{ATTACKER_ADDR}"));
    assert_eq!(
        (host["flows"].as_u64(), host["pkts_out"].as_u64()),
        (Some(1), Some(200)),
        "{host}"
    );
    assert_eq!(host["ports"][0]["port"], 8443, "{host}");
    assert_eq!(host["peers"][0]["ip"], VICTIM_ADDR, "{host}");
    let top = api.get("/api/top?by=pkts");
    let pkts = |addr: &str| {
        top["hosts"]
            .as_array()
            .and_then(|hosts| hosts.iter().find(|h| h["ip"] == addr))
            .and_then(|h| h["pkts"].as_u64())
    };
    assert_eq!(
        (pkts(ATTACKER_ADDR), pkts(VICTIM_ADDR)),
        (Some(200), Some(200)),
        "{top}"
    );
    agent.stop_cleanly(libc::SIGTERM, STOP_LIMIT);
}

/// `/metrics`, read with a token, parsed as Prometheus text: the kernel
/// counters equal what hping3 sent, and the agent's own timings are there.
#[test]
fn metrics_count_the_syns_hping3_sent() {
    if !support::privileged_with(&["hping3"]) {
        return;
    }
    const TOKEN: &str = "metrics-test-token-0123456789";
    let net = Topology::new();
    let mut agent = Agent::start(&net.victim, &net.victim_if, &["--token", TOKEN]);
    agent.wait_for_log("API listening", ATTACH_LIMIT);
    let api = Api::with_token(&net.victim, Some(TOKEN));
    let anonymous = Api::new(&net.victim);
    let refused = anonymous.try_get("/metrics").expect("an answer");
    assert_eq!(refused.status, 401, "{}", refused.body);

    send_syns(&net, 443, 150, "u2000", None);
    // Two ticks: the totals are read once per second.
    std::thread::sleep(Duration::from_millis(2100));

    let text = api.get_text("/metrics");
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|e| panic!("/metrics is not Prometheus text: {e}\n{text}"));
    let value = |name: &str, label: Option<(&str, &str)>| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .and_then(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => Some(v),
                _ => None,
            })
    };
    let kernel = |counter| value("nta_kernel_total", Some(("counter", counter)));
    assert_eq!(kernel("tcp_syn"), Some(150.0), "{text}");
    assert_eq!(kernel("tcp_packets"), Some(150.0), "{text}");
    assert_eq!(kernel("udp_packets"), Some(0.0), "{text}");
    assert!(
        kernel("bytes").is_some_and(|b| b >= 150.0 * 54.0),
        "150 frames of at least 54 bytes: {text}"
    );
    // prometheus-parse folds a histogram's lines into one value: read
    // the count line itself.
    let ticks_timed: Option<f64> = text
        .lines()
        .find_map(|l| l.strip_prefix(r#"nta_detect_seconds_count{stage="tick"} "#))
        .and_then(|n| n.parse().ok());
    assert!(
        ticks_timed.is_some_and(|n| n >= 2.0),
        "fewer than two timed ticks: {text}"
    );
    assert!(
        value("nta_uptime_seconds", None).is_some_and(|s| s >= 2.0),
        "{text}"
    );

    // /api/stats agrees, and tells where the sensor runs.
    let stats = api.get("/api/stats");
    assert_eq!(stats["totals"]["tcp_syn"], 150, "{stats}");
    assert_eq!(stats["iface"], net.victim_if.as_str(), "{stats}");
    assert_eq!(stats["xdp_mode"], "native", "{stats}");

    agent.stop_cleanly(libc::SIGTERM, STOP_LIMIT);
}

#[test]
fn agent_killed_with_sigkill_can_attach_again() {
    let Some(net) = Topology::privileged(&[]) else {
        return;
    };
    let mut first = start_attached(&net, &[]);
    first.stop(libc::SIGKILL, STOP_LIMIT);

    let mut second = start_attached(&net, &[]);
    assert!(net.xdp_attached(&net.victim, &net.victim_if));
    second.stop_cleanly(libc::SIGINT, STOP_LIMIT);
    assert!(
        !net.xdp_attached(&net.victim, &net.victim_if),
        "XDP left attached"
    );
}

#[test]
fn second_agent_on_the_same_interface_is_refused() {
    let Some(net) = Topology::privileged(&[]) else {
        return;
    };
    let mut first = start_attached(&net, &[]);

    let mut second = Agent::start(&net.victim, &net.victim_if, &[]);
    let status = second.wait_exit(ATTACH_LIMIT);
    assert!(!status.success());
    let log = second.log();
    assert!(
        log.contains("another nta-agent is already attached"),
        "{log}"
    );

    // The first agent is unharmed.
    assert!(net.xdp_attached(&net.victim, &net.victim_if));
    first.stop_cleanly(libc::SIGTERM, STOP_LIMIT);
}

#[test]
fn unknown_interface_is_named_in_the_error() {
    let Some(net) = Topology::privileged(&[]) else {
        return;
    };
    let mut agent = Agent::start(&net.victim, "nosuch0", &[]);
    let status = agent.wait_exit(ATTACH_LIMIT);
    assert!(!status.success());
    let log = agent.log();
    assert!(log.contains("no such interface: `nosuch0`"), "{log}");
}

#[test]
fn xdp_program_log_records_reach_the_agent_log() {
    let Some(net) = Topology::privileged(&["python3"]) else {
        return;
    };
    let mut agent = Agent::start_with_log_level(&net.victim, &net.victim_if, &[], "debug");
    agent.wait_for_log("Sensor attached", ATTACH_LIMIT);

    // Broadcast frame with three VLAN tags: the program logs that it passed it unparsed.
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    for _ in 0..3 {
        frame.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
    }
    frame.extend_from_slice(&[0x08, 0x00]);
    frame.resize(64, 0);
    net.send_raw_frame(&net.attacker, &net.attacker_if, &frame);

    agent.wait_for_log("more than two VLAN tags", Duration::from_secs(5));
    agent.stop_cleanly(libc::SIGTERM, STOP_LIMIT);
    assert!(
        total(&agent.log(), "err_vlan_too_deep").is_some_and(|n| n >= 1),
        "{}",
        agent.log()
    );
}

/// A bpffs mounted on a temporary directory, unmounted on drop.
struct BpfFs {
    dir: tempfile::TempDir,
}

impl BpfFs {
    fn mount() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_str().expect("utf-8 temp path").to_owned();
        support::netns::run("mount", &["-t", "bpf", "bpf", &path]);
        BpfFs { dir }
    }
}

impl Drop for BpfFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn stale_nta_program_attached_through_netlink_is_replaced() {
    let Some(net) = Topology::privileged(&[]) else {
        return;
    };
    let bpffs = BpfFs::mount();
    let pinned = bpffs.dir.path().join("nta");
    {
        // What an older agent, or `ip link set ... xdp`, leaves behind: nta
        // attached through netlink, which outlives the process that did it.
        let mut sensor = nta_agent::sensor::Sensor::load(&Default::default()).expect("load");
        sensor.xdp().expect("program").pin(&pinned).expect("pin");
        let path = pinned.to_str().expect("utf-8 path");
        support::netns::run(
            "ip",
            &[
                "-n",
                &net.victim,
                "link",
                "set",
                "dev",
                &net.victim_if,
                "xdpgeneric",
                "pinned",
                path,
            ],
        );
    }
    assert!(net.xdp_attached(&net.victim, &net.victim_if));

    let mut agent = start_attached(&net, &[]);
    agent.assert_logged("Replaced a stale nta program");
    agent.stop_cleanly(libc::SIGTERM, STOP_LIMIT);
    assert!(
        !net.xdp_attached(&net.victim, &net.victim_if),
        "stale program still attached"
    );
}
