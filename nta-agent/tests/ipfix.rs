//! IPFIX export checked by real collectors: `nta-agent read --ipfix` of a
//! capture of known IPv4 and IPv6 flows, received by nfcapd and read back
//! with nfdump, which must find every flow record nta wrote to EVE (the
//! same addresses, ports, protocol, packets and bytes, each direction) and
//! no sequence failure; the same messages saved as an IPFIX file, which
//! libfixbuf's ipfixDump must parse whole; and the live agent's flows,
//! idle and at shutdown, to nfcapd in the victim's namespace.

mod support;

use std::{
    collections::BTreeMap,
    fs,
    net::{IpAddr, Ipv6Addr},
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;
use support::{
    api::Api,
    captures::{pcap_header, pcap_record},
    collectors::{Nfcapd, UdpSink, nfdump},
    lab::{curl, start_agent, web_server},
    netns::{Topology, VICTIM_ADDR},
};

/// Flows of each kind in [`known_flows`].
const TCP_V4: u32 = 150;
const UDP_V6: u32 = 150;
const UNANSWERED: u32 = 50;

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 2];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 1];
const CLIENT_V4: [u8; 4] = [198, 18, 0, 2];
const SERVER_V4: [u8; 4] = [198, 18, 0, 1];
const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0xab, 0xcd, 1);

/// One frame of a capture: when, and its bytes.
type Timed = ((u32, u32), Vec<u8>);

/// Capture time of `ms` milliseconds after the capture's start.
fn at(ms: u32) -> (u32, u32) {
    (1_765_000_000 + ms / 1000, (ms % 1000) * 1000)
}

/// A TCP exchange over IPv4 starting at `ms`: handshake, a request and an
/// answer whose sizes depend on `i`, FIN each way.
fn tcp_exchange(i: u32, ms: u32) -> Vec<Timed> {
    let port = 40_000 + i as u16;
    let request = vec![b'q'; 40 + (i % 50) as usize];
    let answer = vec![b'a'; 200 + 3 * i as usize];
    let packet = |from_client: bool, payload: &[u8], flags: &str| {
        let (src, dst, sport, dport) = if from_client {
            (CLIENT_V4, SERVER_V4, port, 80)
        } else {
            (SERVER_V4, CLIENT_V4, 80, port)
        };
        let b = etherparse::PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(src, dst, 64)
            .tcp(sport, dport, 1, 65_535);
        let b = match flags {
            "S" => b.syn(),
            "SA" => b.syn().ack(1),
            "FA" => b.fin().ack(1),
            _ => b.ack(1).psh(),
        };
        let mut frame = Vec::new();
        b.write(&mut frame, payload).expect("a TCP frame");
        frame
    };
    let steps = [
        packet(true, &[], "S"),
        packet(false, &[], "SA"),
        packet(true, &request, "PA"),
        packet(false, &answer, "PA"),
        packet(true, &[], "FA"),
        packet(false, &[], "FA"),
    ];
    steps
        .into_iter()
        .enumerate()
        .map(|(k, frame)| (at(ms + k as u32), frame))
        .collect()
}

/// A DNS-like query and answer over IPv6 UDP starting at `ms`.
fn udp_exchange(i: u32, ms: u32) -> Vec<Timed> {
    let port = 50_000 + i as u16;
    let datagram = |from_client: bool, len: usize| {
        let (src, dst, sport, dport) = if from_client {
            (CLIENT_V6, SERVER_V6, port, 53)
        } else {
            (SERVER_V6, CLIENT_V6, 53, port)
        };
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv6(src.octets(), dst.octets(), 64)
            .udp(sport, dport)
            .write(&mut frame, &vec![0x11; len])
            .expect("a UDP frame");
        frame
    };
    vec![
        (at(ms), datagram(true, 30 + (i % 20) as usize)),
        (at(ms + 2), datagram(false, 100 + i as usize)),
    ]
}

/// An unanswered SYN over IPv4 at `ms`: a flow with one direction.
fn unanswered_syn(i: u32, ms: u32) -> Vec<Timed> {
    let mut frame = Vec::new();
    etherparse::PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(CLIENT_V4, SERVER_V4, 64)
        .tcp(30_000 + i as u16, 8080, 1, 65_535)
        .syn()
        .write(&mut frame, &[])
        .expect("a SYN");
    vec![(at(ms), frame)]
}

/// Writes a capture of [`TCP_V4`] TCP exchanges over IPv4, [`UDP_V6`] UDP
/// exchanges over IPv6 and [`UNANSWERED`] SYNs, one flow starting every
/// 100 ms: over 35 s, so that the first end idle (after 15 s) and the last
/// when the capture does.
fn known_flows(path: &Path) {
    let mut frames: Vec<Timed> = Vec::new();
    let mut ms = 0;
    for i in 0..TCP_V4.max(UDP_V6).max(UNANSWERED) {
        if i < TCP_V4 {
            frames.extend(tcp_exchange(i, ms));
            ms += 100;
        }
        if i < UDP_V6 {
            frames.extend(udp_exchange(i, ms));
            ms += 100;
        }
        if i < UNANSWERED {
            frames.extend(unanswered_syn(i, ms));
            ms += 100;
        }
    }
    frames.sort_by_key(|(t, _)| *t);
    let mut out = pcap_header();
    for ((secs, micros), frame) in frames {
        out.extend(pcap_record(secs, micros, &frame));
    }
    fs::write(path, out).expect("writing the capture");
}

/// One direction of a flow as a collector shows it: source, destination,
/// protocol number, packets, bytes.
type Uniflow = (IpAddr, u16, IpAddr, u16, u8, u64, u64);

/// The uniflow records of nta's EVE flow events: client to server, and
/// back where the server answered.
fn expected_from_eve(eve: &Path) -> Vec<Uniflow> {
    let text = fs::read_to_string(eve).expect("the EVE output");
    let mut out = Vec::new();
    for line in text.lines() {
        let e: Value = serde_json::from_str(line).expect("an EVE event");
        if e["event_type"] != "flow" {
            continue;
        }
        let ip = |k: &str| -> IpAddr { e[k].as_str().and_then(|s| s.parse().ok()).expect(k) };
        // ICMP flows have no ports in EVE; nta's flow key holds 0.
        let port = |k: &str| e[k].as_u64().map_or(0, |p| u16::try_from(p).expect(k));
        let n = |k: &str| e["flow"][k].as_u64().expect(k);
        let proto = match e["proto"].as_str() {
            Some("TCP") => 6,
            Some("UDP") => 17,
            Some("ICMP") => 1,
            Some("IPv6-ICMP") => 58,
            other => panic!("unexpected protocol {other:?} in {e}"),
        };
        let (client, server) = (
            (ip("src_ip"), port("src_port")),
            (ip("dest_ip"), port("dest_port")),
        );
        out.push((
            client.0,
            client.1,
            server.0,
            server.1,
            proto,
            n("pkts_toserver"),
            n("bytes_toserver"),
        ));
        if n("pkts_toclient") > 0 {
            out.push((
                server.0,
                server.1,
                client.0,
                client.1,
                proto,
                n("pkts_toclient"),
                n("bytes_toclient"),
            ));
        }
    }
    out.sort();
    out
}

/// Column `i` of a CSV line.
#[track_caller]
fn field<T: std::str::FromStr>(fields: &[&str], i: usize, line: &str) -> T {
    fields[i]
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("column {i} of {line}"))
}

/// A port column; ICMP's show as TYPE.CODE, its high and low byte.
#[track_caller]
fn port(fields: &[&str], i: usize, line: &str) -> u16 {
    match fields[i].trim().split_once('.') {
        Some((high, low)) => {
            let byte =
                |s: &str| -> u16 { s.parse().unwrap_or_else(|_| panic!("column {i} of {line}")) };
            byte(high) << 8 | byte(low)
        }
        None => field(fields, i, line),
    }
}

/// The records of nfcapd's files, by nfdump's CSV output. nfcapd starts a
/// new file every five minutes of the clock, so a test may span two.
fn nfdump_records(files: &[PathBuf]) -> Vec<Uniflow> {
    let mut records: Vec<Uniflow> = files.iter().flat_map(|f| file_records(f)).collect();
    records.sort();
    records
}

/// The records of one nfdump file.
fn file_records(file: &Path) -> Vec<Uniflow> {
    // Plain numbers (-N), not "1.2 M"; the header names the columns, a
    // summary of other columns follows the records.
    let out = nfdump(&["-r", file.to_str().expect("UTF-8"), "-N", "-o", "csv"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{}", text.lines().take(3).collect::<Vec<_>>().join("\n"));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a CSV header").split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} in {header:?}"))
    };
    let (sa, da, sp, dp, pr, pkt, byt) = (
        col("sa"),
        col("da"),
        col("sp"),
        col("dp"),
        col("pr"),
        col("ipkt"),
        col("ibyt"),
    );
    let mut records = Vec::new();
    for line in lines.filter(|l| l.contains(',')) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != header.len() {
            continue; // the summary
        }
        let proto = match f[pr].trim() {
            "TCP" | "6" => 6,
            "UDP" | "17" => 17,
            "ICMP" | "1" => 1,
            "ICMP6" | "58" => 58,
            other => panic!("protocol {other} in {line}"),
        };
        records.push((
            field(&f, sa, line),
            port(&f, sp, line),
            field(&f, da, line),
            port(&f, dp, line),
            proto,
            field(&f, pkt, line),
            field(&f, byt, line),
        ));
    }
    records.sort();
    records
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `nta-agent read --eve EVE --ipfix COLLECTOR CAPTURE`, which must succeed.
fn read_exporting(capture: &Path, eve: &Path, collector: &str) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_nta-agent"))
        .arg("read")
        .arg("--eve")
        .arg(eve)
        .args(["--ipfix", collector])
        .arg(capture)
        .output()
        .expect("running nta-agent read");
    assert!(out.status.success(), "{}", text(&out));
    out
}

#[test]
fn nfdump_reads_back_every_flow_record_a_read_exports() {
    if !support::have_tool("nfcapd") || !support::have_tool("nfdump") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let capture = dir.path().join("flows.pcap");
    known_flows(&capture);
    let nfcapd = Nfcapd::start(&dir.path().join("nfcapd"));
    let eve = dir.path().join("eve.json");
    let out = read_exporting(&capture, &eve, &nfcapd.addr());
    let (files, log) = nfcapd.finish();
    println!("{log}");
    assert!(!files.is_empty(), "nfcapd wrote no file:\n{log}");
    let expected = expected_from_eve(&eve);
    let flows = (TCP_V4 + UDP_V6 + UNANSWERED) as usize;
    assert_eq!(
        expected.len(),
        2 * flows - UNANSWERED as usize,
        "nta's own flows"
    );
    let got = nfdump_records(&files);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        got.len(),
        expected.len(),
        "records nfdump read; nta said: {stderr}"
    );
    assert_eq!(got, expected);
    assert_no_loss(&files, &log, expected.len());
}

/// nfdump's statistics of `files` count `flows` records and no sequence
/// failure, and so does nfcapd's `log` as it stopped.
#[track_caller]
fn assert_no_loss(files: &[PathBuf], log: &str, flows: usize) {
    let mut counted = 0;
    for file in files {
        let stats = nfdump(&["-r", file.to_str().expect("UTF-8"), "-I"]);
        let stats = String::from_utf8_lossy(&stats.stdout);
        println!("{stats}");
        let line = |name: &str| -> &str {
            stats
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} line in:\n{stats}"))
                .trim()
        };
        assert_eq!(line("Sequence failures:"), "0", "{stats}");
        counted += line("Flows:")
            .parse::<usize>()
            .unwrap_or_else(|_| panic!("a flow count in:\n{stats}"));
    }
    assert_eq!(counted, flows, "flows in nfcapd's files");
    // nfcapd logs a line of totals for each file it closes.
    let totals: Vec<&str> = log.lines().filter(|l| l.starts_with("Ident:")).collect();
    let logged: usize = totals
        .iter()
        .filter_map(|l| {
            l.split_once("Flows: ")?
                .1
                .split_once(',')?
                .0
                .parse::<usize>()
                .ok()
        })
        .sum();
    assert_eq!(logged, flows, "{log}");
    assert!(
        totals
            .iter()
            .all(|l| l.contains("Sequence Errors: 0, Bad Packets: 0")),
        "{log}"
    );
}

/// Waits, up to `limit`, until the EVE file has `count` flow events of TCP
/// to `port` that ended idle. Other flows (the namespaces' own IPv6
/// neighbour discovery) may end idle before them.
fn wait_for_idle_flows(eve: &Path, port: u16, count: usize, limit: std::time::Duration) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        let text = fs::read_to_string(eve).unwrap_or_default();
        let idle = text
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|e| {
                e["event_type"] == "flow"
                    && e["proto"] == "TCP"
                    && e["dest_port"] == port
                    && e["flow"]["reason"] == "timeout"
            })
            .count();
        if idle >= count {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    false
}

#[test]
fn the_live_agent_sends_its_idle_and_last_flows_to_nfcapd() {
    if !support::privileged_with(&["nfcapd", "nfdump", "curl", "python3"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("nta.toml");
    // Idle flows within seconds, not the default 15.
    fs::write(&config, "[flows]\nidle_timeout = \"2s\"\n").expect("writing the config");
    let eve = dir.path().join("eve.json");
    let net = Topology::new();
    // On the victim's loopback, beside the agent; the sensor watches the
    // veth, so the export is not counted as traffic.
    let nfcapd = Nfcapd::start_in(Some(&net.victim), &dir.path().join("nfcapd"));
    let args = [
        "--config",
        config.to_str().expect("UTF-8"),
        "--eve",
        eve.to_str().expect("UTF-8"),
        "--ipfix",
        &nfcapd.addr(),
    ];
    let mut agent = start_agent(&net, &args);
    let _web = web_server(&net);
    let url = format!("http://{VICTIM_ADDR}/");
    for _ in 0..5 {
        curl(&net, &["-o", "/dev/null", &url]);
    }
    let idle = wait_for_idle_flows(&eve, 80, 5, std::time::Duration::from_secs(15));
    assert!(
        idle,
        "the five downloads did not end idle:\n{}",
        agent.log()
    );
    // What was sent so far, in /api/stats and /metrics.
    let api = Api::new(&net.victim);
    let stats = api.get("/api/stats");
    let sent = &stats["ipfix"];
    assert_eq!(sent["collector"], nfcapd.addr().as_str(), "{stats}");
    assert!(sent["records"].as_u64().is_some_and(|n| n >= 1), "{stats}");
    assert_eq!(sent["failed"], 0, "{stats}");
    let metrics = api.get_text("/metrics");
    let records = format!("nta_ipfix_records_total {}", sent["records"]);
    assert!(metrics.contains(&records), "no `{records}` in\n{metrics}");
    // One more, written when the agent stops.
    curl(&net, &["-o", "/dev/null", &url]);
    agent.stop_cleanly(libc::SIGTERM, std::time::Duration::from_secs(15));
    let (files, log) = nfcapd.finish();
    assert!(!files.is_empty(), "nfcapd wrote no file:\n{log}");
    let expected = expected_from_eve(&eve);
    let (idle, ended) = records_by_reason(&eve);
    assert!(idle >= 5 && ended >= 1, "{idle} idle, {ended} at shutdown");
    assert!(
        agent
            .log()
            .contains(&format!("records={} failed=0", expected.len())),
        "{}",
        agent.log()
    );
    assert_eq!(nfdump_records(&files), expected);
    assert_no_loss(&files, &log, expected.len());
}

#[test]
fn ipfix_dump_parses_the_messages_of_a_read_saved_as_a_file() {
    if !support::have_tool("ipfixDump") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let capture = dir.path().join("flows.pcap");
    known_flows(&capture);
    let sink = UdpSink::start();
    let eve = dir.path().join("eve.json");
    read_exporting(&capture, &eve, sink.addr());
    let messages = sink.finish();
    let expected = expected_from_eve(&eve).len();
    assert!(messages.len() > 10, "{} messages", messages.len());
    // An IPFIX file (RFC 5655) is the messages one after the other.
    let file = dir.path().join("flows.ipfix");
    fs::write(&file, messages.concat()).expect("writing the IPFIX file");
    let out = Command::new("ipfixDump")
        .arg("--in")
        .arg(&file)
        .args(["--out", "-"])
        .output()
        .expect("running ipfixDump");
    assert!(out.status.success(), "{}", text(&out));
    assert!(out.stderr.is_empty(), "{}", text(&out));
    let dump = String::from_utf8_lossy(&out.stdout);
    let stats = dump
        .lines()
        .find(|l| l.starts_with("*** File Stats:"))
        .unwrap_or_else(|| panic!("no file stats in:\n{dump}"));
    println!("{stats}");
    // Both templates in the first message and again after every
    // TEMPLATE_EVERY_MESSAGES (20) messages without them.
    let template_sets = messages.len().div_ceil(21);
    assert_eq!(
        stats,
        format!(
            "*** File Stats: {} Messages, {expected} Data Records, {} Template Records ***",
            messages.len(),
            2 * template_sets
        )
    );
    // Each record as ipfixDump decoded it: every address nta exported.
    let mut decoded = BTreeMap::<String, usize>::new();
    for line in dump.lines() {
        let Some((name, value)) = line.split_once(" : ") else {
            continue;
        };
        // "(8)     sourceIPv4Address : 198.18.0.2" as "(8) sourceIPv4Address = 198.18.0.2"
        let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
        *decoded
            .entry(format!("{name} = {}", value.trim()))
            .or_default() += 1;
    }
    for (key, n) in [
        ("(8) sourceIPv4Address = 198.18.0.2", TCP_V4 + UNANSWERED),
        ("(12) destinationIPv4Address = 198.18.0.2", TCP_V4),
        ("(27) sourceIPv6Address = 2001:0db8::0002", UDP_V6),
        ("(28) destinationIPv6Address = 2001:0db8::0002", UDP_V6),
        ("(4) protocolIdentifier = 6", 2 * TCP_V4 + UNANSWERED),
        ("(4) protocolIdentifier = 17", 2 * UDP_V6),
    ] {
        let n = n as usize;
        assert_eq!(decoded.get(key), Some(&n), "{key}: {decoded:?}");
    }
    // The first flows end idle (flowEndReason 1), the rest when the
    // capture does (4: forced end), as nta's EVE says.
    let (idle, ended) = records_by_reason(&eve);
    assert!(idle > 0 && ended > 0, "{idle} idle, {ended} ended");
    assert_eq!(decoded.get("(136) flowEndReason = 1"), Some(&idle));
    assert_eq!(decoded.get("(136) flowEndReason = 4"), Some(&ended));
}

/// Uniflow records of flows that ended idle, and of flows the end of the
/// capture ended, by nta's EVE flow events.
fn records_by_reason(eve: &Path) -> (usize, usize) {
    let (mut idle, mut ended) = (0, 0);
    for line in fs::read_to_string(eve).expect("the EVE output").lines() {
        let e: Value = serde_json::from_str(line).expect("an EVE event");
        if e["event_type"] != "flow" {
            continue;
        }
        let records = if e["flow"]["pkts_toclient"] == 0 {
            1
        } else {
            2
        };
        match e["flow"]["reason"].as_str() {
            Some("timeout") => idle += records,
            Some("shutdown") => ended += records,
            other => panic!("reason {other:?} in {e}"),
        }
    }
    (idle, ended)
}
