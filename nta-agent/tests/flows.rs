//! Flow records as a new user meets them: downloads from web servers on
//! port 80 and on 8888, a `User-Agent: cmd.exe` request to 8888, and one
//! whose header is split across two TCP segments, then `GET /api/flows`.
//!
//! The sensor watches a mirror (SPAN) port of the victim's interface, as
//! on a switch's monitor port: it sees both directions of every flow
//! arrive. tcpdump on the same port is the reference for each flow's
//! packets and bytes.

mod support;

use std::{collections::HashMap, path::Path, time::Duration};

use serde_json::Value;
use support::{
    api::{Api, LISTEN},
    coverage::{finished, python},
    lab::{DOWNLOAD_BYTES, Spawned, curl, send_syns, web_server_on},
    netns::{ATTACKER_ADDR, Agent, Topology, VICTIM_ADDR},
};

const START_LIMIT: Duration = Duration::from_secs(60);
/// Flows idle for 2 s, walked every second: listed within a few seconds
/// of their last packet.
const FLOWS_LIMIT: Duration = Duration::from_secs(20);
const SID_CMD_EXE_USER_AGENT: u64 = 1_000_001;

/// The client ports each request is sent from, and the server port.
const DOWNLOAD_80: (u16, u16) = (42_080, 80);
const DOWNLOAD_8888: (u16, u16) = (42_888, 8888);
const CMD_EXE_8888: (u16, u16) = (43_888, 8888);
const SPLIT_8888: (u16, u16) = (44_888, 8888);

/// Packets and bytes per direction of one client port's flow, as tcpdump
/// saw them: `[to server, to client]`.
type Seen = HashMap<u16, [(u64, u64); 2]>;

/// Frames per client port and direction in `pcap`, from `tcpdump -e`'s
/// lines (`... length 74: 198.18.0.2.42080 > 198.18.0.1.80: ...`).
fn tcpdump_flows(pcap: &Path) -> Seen {
    let out = std::process::Command::new("tcpdump")
        .args(["-r", pcap.to_str().expect("UTF-8 path"), "-nn", "-e", "tcp"])
        .output()
        .expect("tcpdump -r");
    let mut seen = Seen::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((_, rest)) = line.split_once(", length ") else {
            continue;
        };
        let Some((len, rest)) = rest.split_once(": ") else {
            continue;
        };
        let mut ends = rest.split(' ');
        let (Some(from), Some(">"), Some(to)) = (ends.next(), ends.next(), ends.next()) else {
            continue;
        };
        let port = |end: &str| {
            end.trim_end_matches(':')
                .rsplit('.')
                .next()?
                .parse::<u16>()
                .ok()
        };
        let (Some(from_port), Some(to_port), Ok(len)) = (port(from), port(to), len.parse::<u64>())
        else {
            continue;
        };
        let (client, dir) = if from.starts_with(ATTACKER_ADDR) {
            (from_port, 0)
        } else {
            (to_port, 1)
        };
        let entry = &mut seen.entry(client).or_default()[dir];
        entry.0 += 1;
        entry.1 += len;
    }
    seen
}

/// The attacker's flows the API lists, by client port, once all of
/// `ports` are there (or the limit passed).
fn flows_by_port(api: &Api, ports: &[u16]) -> HashMap<u16, Value> {
    let path = format!("/api/flows?host={ATTACKER_ADDR}&limit=100");
    let start = std::time::Instant::now();
    loop {
        let body = api.get(&path);
        let flows: HashMap<u16, Value> = body["flows"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| Some((u16::try_from(f["src_port"].as_u64()?).ok()?, f.clone())))
            .collect();
        if ports.iter().all(|p| flows.contains_key(p)) || start.elapsed() > FLOWS_LIMIT {
            return flows;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The agent on `iface` in the victim's namespace with `config` (written
/// into `dir`), attached and answering.
fn start_with_config(net: &Topology, iface: &str, dir: &Path, config: &str) -> Agent {
    let file = dir.join("nta.toml");
    std::fs::write(&file, config).expect("writing the config");
    let args = [
        "--config",
        file.to_str().expect("UTF-8"),
        "--listen",
        LISTEN,
    ];
    let mut agent = Agent::start(&net.victim, iface, &args);
    agent.wait_for_log("Sensor attached", START_LIMIT);
    agent.wait_for_log("API listening", START_LIMIT);
    agent
}

#[test]
fn downloads_and_rule_matches_on_any_port_are_flows_with_their_protocol_and_alerts() {
    let Some(net) = Topology::privileged(&["curl", "tcpdump", "python3"]) else {
        return;
    };
    let monitor = net.mirror_port();
    let _web_80 = web_server_on(&net, 80);
    let _web_8888 = web_server_on(&net, 8888);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut agent = start_with_config(
        &net,
        &monitor,
        dir.path(),
        "[flows]\nidle_timeout = \"2s\"\n",
    );
    let pcap = dir.path().join("mirror.pcap");
    let mut dump = Spawned::start(
        &net.victim,
        Duration::from_secs(90),
        &[
            "tcpdump",
            "-i",
            &monitor,
            "-U",
            "-n",
            "-w",
            pcap.to_str().expect("UTF-8"),
            "tcp",
        ],
    );
    dump.wait_for_output("listening on", Duration::from_secs(10));

    for ((client, server), path) in [
        (DOWNLOAD_80, "download.bin"),
        (DOWNLOAD_8888, "download.bin"),
    ] {
        let url = format!("http://{VICTIM_ADDR}:{server}/{path}");
        curl(
            &net,
            &["--local-port", &client.to_string(), "-o", "/dev/null", &url],
        );
    }
    let (client, server) = CMD_EXE_8888;
    let url = format!("http://{VICTIM_ADDR}:{server}/");
    curl(
        &net,
        &[
            "--local-port",
            &client.to_string(),
            "-o",
            "/dev/null",
            "-H",
            "User-Agent: cmd.exe",
            &url,
        ],
    );
    let (client, server) = SPLIT_8888;
    let mut split = python(
        &net.attacker,
        Duration::from_secs(20),
        (
            "split_request.py",
            include_str!("support/py/split_request.py"),
        ),
        &[
            VICTIM_ADDR,
            &server.to_string(),
            &client.to_string(),
            "GET / HTTP/1.1\\r\\nHost: nta.test\\r\\nUser-Agent: cmd.e",
            "xe\\r\\nAccept: */*\\r\\n\\r\\n",
        ],
    );
    let answer = finished(&mut split, Duration::from_secs(20), "the split request");
    assert!(answer.contains("200"), "{answer}");

    let api = Api::new(&net.victim);
    let ports = [DOWNLOAD_80.0, DOWNLOAD_8888.0, CMD_EXE_8888.0, SPLIT_8888.0];
    let flows = flows_by_port(&api, &ports);
    drop(dump);
    let seen = tcpdump_flows(&pcap);
    let alerts = api.get("/api/alerts")["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let signature = alerts
        .iter()
        .find(|a| a["kind"] == "signature" && a["evidence"]["sid"] == SID_CMD_EXE_USER_AGENT)
        .unwrap_or_else(|| panic!("no cmd.exe alert in {alerts:?}\n{}", agent.log()));

    for (client, server) in [DOWNLOAD_80, DOWNLOAD_8888, CMD_EXE_8888, SPLIT_8888] {
        let f = flows
            .get(&client)
            .unwrap_or_else(|| panic!("no flow from port {client} in {flows:?}\n{}", agent.log()));
        assert_eq!(
            (f["dest_ip"].as_str(), f["dst_port"].as_u64()),
            (Some(VICTIM_ADDR), Some(u64::from(server))),
            "{f}"
        );
        assert_eq!(f["app_proto"], "http", "content, not port, tells: {f}");
        let [to_server, to_client] = seen.get(&client).copied().unwrap_or_default();
        let counted = |dir: &str| {
            (
                f[format!("pkts_{dir}")].as_u64(),
                f[format!("bytes_{dir}")].as_u64(),
            )
        };
        assert_eq!(
            counted("toserver"),
            (Some(to_server.0), Some(to_server.1)),
            "tcpdump: {to_server:?}; {f}"
        );
        assert_eq!(
            counted("toclient"),
            (Some(to_client.0), Some(to_client.1)),
            "tcpdump: {to_client:?}; {f}"
        );
        let rule_hit = client == CMD_EXE_8888.0 || client == SPLIT_8888.0;
        let alert_ids: Vec<&Value> = f["alerts"].as_array().into_iter().flatten().collect();
        assert_eq!(
            alert_ids.contains(&&signature["id"]),
            rule_hit,
            "alerts of {f}"
        );
    }
    for download in [DOWNLOAD_80.0, DOWNLOAD_8888.0] {
        let bytes = flows[&download]["bytes_toclient"].as_u64().unwrap_or(0);
        assert!(
            bytes > DOWNLOAD_BYTES as u64,
            "{bytes} bytes for a {DOWNLOAD_BYTES}-byte download"
        );
    }
    agent.stop_cleanly(libc::SIGTERM, Duration::from_secs(20));
}

/// A flow longer than the active timeout (1 s) is written in parts while
/// it goes on, `reason` `active`; what came after the last part is written
/// when it goes idle (nothing, when nothing came). The parts add up to what
/// was sent.
#[test]
fn a_long_flow_is_written_every_active_timeout_and_the_parts_add_up() {
    let Some(net) = Topology::privileged(&["hping3"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut agent = start_with_config(
        &net,
        &net.victim_if,
        dir.path(),
        "[flows]\nidle_timeout = \"2s\"\nactive_timeout = \"1s\"\n",
    );
    // 40 SYNs from one port over 4 s: one flow, going on past 1 s.
    send_syns(&net, 8443, 40, "u100000", Some(41_500));
    let api = Api::new(&net.victim);
    let start = std::time::Instant::now();
    let sum = |parts: &[Value]| -> u64 {
        parts
            .iter()
            .filter_map(|f| f["pkts_toserver"].as_u64())
            .sum()
    };
    let parts = loop {
        let body = api.get(&format!("/api/flows?host={ATTACKER_ADDR}&port=41500"));
        let parts = body["flows"].as_array().cloned().unwrap_or_default();
        if sum(&parts) >= 40 || start.elapsed() > FLOWS_LIMIT {
            break parts;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(sum(&parts), 40, "{parts:?}\n{}", agent.log());
    // Newest first: a part that ended the flow can only be the last.
    let reasons: Vec<&str> = parts
        .iter()
        .rev()
        .filter_map(|f| f["reason"].as_str())
        .collect();
    assert!(reasons.len() >= 2, "{reasons:?}");
    let (last, before) = reasons.split_last().expect("parts");
    assert!(before.iter().all(|r| *r == "active"), "{reasons:?}");
    assert!(["active", "timeout"].contains(last), "{reasons:?}");
    let at = |v: &Value| v.as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok());
    for pair in parts.windows(2) {
        assert!(
            at(&pair[0]["start"]) >= at(&pair[1]["end"]),
            "parts overlap: {pair:?}"
        );
    }
    agent.stop_cleanly(libc::SIGTERM, Duration::from_secs(20));
}
