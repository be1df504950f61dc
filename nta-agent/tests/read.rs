//! `nta-agent read` as a user would run it: a capture made with tcpdump
//! (on the veth, and with `-i any`, Linux cooked) of a request the rules
//! catch, read by an unprivileged user into EVE (checked against
//! Suricata's schema) and into a summary; a capture cut short, and a file
//! that is not one.

mod support;

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use jiff::Timestamp;
use serde_json::Value;
use support::{
    api::Api,
    captures::{capture_attacks, pcap_header, pcap_record},
    eve::{alerts_with_sid, can_validate, validated},
    lab::{Spawned, cmd_exe_request, start_agent, web_server},
    netns::{ATTACKER_ADDR, Topology, VICTIM_ADDR},
};

/// nta's rule "cmd.exe in User-Agent" (default.rules).
const SID_CMD_EXE_USER_AGENT: u64 = 1_000_001;

/// A directory anyone may read and write: the captures and outputs of an
/// unprivileged read.
fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).expect("chmod");
    dir
}

/// Captures on `iface` in the victim's namespace into `file` while a
/// client sends the victim's web server a request with `User-Agent:
/// cmd.exe`; returns when the capture is written.
fn capture_attack(net: &Topology, iface: &str, file: &Path) -> (Timestamp, Timestamp) {
    let _web = web_server(net);
    let path = file.to_str().expect("a UTF-8 path");
    let mut tcpdump = Spawned::start(
        &net.victim,
        Duration::from_secs(3),
        &["tcpdump", "-i", iface, "-n", "-U", "-w", path, "tcp or udp"],
    );
    tcpdump.wait_for_output("listening on", Duration::from_secs(10));
    let before = Timestamp::now();
    cmd_exe_request(net);
    let after = Timestamp::now();
    // timeout ends tcpdump (SIGTERM), which writes what it has.
    tcpdump.wait(Duration::from_secs(15));
    fs::set_permissions(file, fs::Permissions::from_mode(0o644)).expect("chmod");
    (before, after)
}

/// nta's own detections in EVE events, by kind.
fn nta_kinds(events: &[Value]) -> std::collections::BTreeMap<String, Vec<&Value>> {
    let mut kinds = std::collections::BTreeMap::<String, Vec<&Value>>::new();
    for e in events {
        if let Some(kind) = e["alert"]["metadata"]["nta_kind"][0].as_str() {
            kinds.entry(kind.to_owned()).or_default().push(e);
        }
    }
    kinds
}

/// `nta-agent read ARGS` as the unprivileged user `nobody`.
fn read_as_nobody(args: &[&str]) -> Output {
    Command::new("runuser")
        .args([
            "-u",
            "nobody",
            "--",
            env!("CARGO_BIN_EXE_nta-agent"),
            "read",
        ])
        .args(args)
        .output()
        .expect("running nta-agent read")
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn str_of(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn a_tcpdump_capture_read_by_an_ordinary_user_finds_the_rule_match() {
    if !support::privileged_with(&["tcpdump", "curl", "python3", "runuser"]) || !can_validate() {
        return;
    }
    let net = Topology::new();
    let dir = shared_dir();
    for (iface, name) in [(net.victim_if.as_str(), "veth.pcap"), ("any", "any.pcap")] {
        let capture: PathBuf = dir.path().join(name);
        let (before, after) = capture_attack(&net, iface, &capture);
        let eve = dir.path().join(format!("{name}.eve.json"));
        let out = read_as_nobody(&["--eve", str_of(&eve), str_of(&capture)]);
        assert!(out.status.success(), "{name}: {}", text(&out));
        let events = validated(&eve);
        let matches = alerts_with_sid(&events, SID_CMD_EXE_USER_AGENT);
        assert_eq!(matches.len(), 1, "{name}: {events:?}");
        let m = matches[0];
        assert_eq!(m["src_ip"], ATTACKER_ADDR, "{name}");
        assert_eq!(m["dest_ip"], VICTIM_ADDR, "{name}");
        assert_eq!(m["dest_port"], 80, "{name}");
        assert_eq!(m["proto"], "TCP", "{name}");
        // The capture's time, not the reading's.
        let at = m["timestamp"].as_str().expect("a timestamp");
        let at: Timestamp = at.replace("+0000", "Z").parse().expect("parses");
        assert!(
            before <= at && at <= after,
            "{name}: {at} outside the request's [{before}, {after}]"
        );
        let stats = events.last().expect("events");
        assert_eq!(stats["event_type"], "stats", "{name}");
        assert!(
            stats["stats"]["decoder"]["tcp"]
                .as_u64()
                .is_some_and(|n| n >= 5)
        );

        // Without --eve or --db: a summary, with an incident per rule
        // that matched (both cmd.exe rules match the one request).
        let sids: std::collections::BTreeSet<u64> = events
            .iter()
            .filter_map(|e| e["alert"]["signature_id"].as_u64())
            .collect();
        let out = read_as_nobody(&[str_of(&capture)]);
        assert!(out.status.success(), "{name}: {}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let n = sids.len();
        assert!(
            stdout.contains(&format!("alerts: {n}\n  signature: {n}")),
            "{name}: sids {sids:?}; {stdout}"
        );
    }
}

/// The issue's user story: attacks captured with tcpdump, on the veth and
/// with `-i any`, read by an ordinary user, each found as the live agent
/// finds it (the scan and the flood by the counters, now run in user
/// space; the request and the tunnel by the payload pipeline).
#[test]
fn attacks_captured_with_tcpdump_are_all_found_by_an_ordinary_user() {
    let tools = [
        "tcpdump", "curl", "python3", "runuser", "nmap", "hping3", "dig", "pkill",
    ];
    if !support::privileged_with(&tools) || !can_validate() {
        return;
    }
    let net = Topology::new();
    let dir = shared_dir();
    for (iface, name) in [(net.victim_if.as_str(), "veth.pcap"), ("any", "any.pcap")] {
        let capture: PathBuf = dir.path().join(name);
        capture_attacks(&net, iface, &capture, dir.path());
        let eve = dir.path().join(format!("{name}.eve.json"));
        let out = read_as_nobody(&["--eve", str_of(&eve), str_of(&capture)]);
        assert!(out.status.success(), "{name}: {}", text(&out));
        let events = validated(&eve);
        let kinds = nta_kinds(&events);
        let summary = || format!("{name}: {:?}", kinds.keys().collect::<Vec<_>>());
        println!("{}; {} events", summary(), events.len());
        for kind in ["port_scan", "syn_flood", "dns_tunnel"] {
            let found = kinds.get(kind).map_or(0, Vec::len);
            assert_eq!(found, 1, "one {kind}; {}", summary());
        }
        let scan = kinds["port_scan"][0];
        assert_eq!(scan["src_ip"], ATTACKER_ADDR, "{scan}");
        assert_eq!(scan["dest_ip"], VICTIM_ADDR, "{scan}");
        let flood = kinds["syn_flood"][0];
        assert_eq!(flood["dest_ip"], VICTIM_ADDR, "{flood}");
        assert_eq!(flood["dest_port"], 80, "{flood}");
        assert_eq!(kinds["dns_tunnel"][0]["src_ip"], ATTACKER_ADDR);
        assert_eq!(
            alerts_with_sid(&events, SID_CMD_EXE_USER_AGENT).len(),
            1,
            "{}",
            summary()
        );
        // Flow events: the request's connection, whole, both ways.
        let web: Vec<&Value> = events
            .iter()
            .filter(|e| e["event_type"] == "flow" && e["dest_port"] == 80)
            .filter(|e| e["flow"]["pkts_toclient"].as_u64().is_some_and(|n| n >= 3))
            .collect();
        assert!(!web.is_empty(), "{name}: no complete flow to port 80");
        let web = web[0];
        assert_eq!(web["src_ip"], ATTACKER_ADDR, "{web}");
        assert_eq!(web["dest_ip"], VICTIM_ADDR, "{web}");
        assert_eq!(web["proto"], "TCP", "{web}");
        assert_eq!(web["flow"]["state"], "closed", "{web}");
        assert!(
            web["flow"]["pkts_toserver"]
                .as_u64()
                .is_some_and(|n| n >= 3),
            "{web}"
        );
        // Every query in a DNS flow over UDP (dig's source ports may
        // repeat, and two queries from one port are one flow; nmap's SYN
        // to port 53 is a TCP flow), every answer too.
        let dns: Vec<&Value> = events
            .iter()
            .filter(|e| e["event_type"] == "flow" && e["dest_port"] == 53 && e["proto"] == "UDP")
            .collect();
        let sum =
            |field: &str| -> u64 { dns.iter().filter_map(|e| e["flow"][field].as_u64()).sum() };
        assert_eq!(sum("pkts_toserver"), 200, "{name}: queries in DNS flows");
        assert_eq!(sum("pkts_toclient"), 200, "{name}: answers in DNS flows");
        // Nothing the live agent would not raise for these: no sweep, no
        // UDP or ICMP flood. A TCP flood may be: the flood's one 4-tuple
        // has the victim answer each SYN with a SYN-ACK, which the
        // attacker's kernel resets, so RSTs arrive as fast as the SYNs.
        for kind in kinds.keys() {
            assert!(
                [
                    "port_scan",
                    "syn_flood",
                    "tcp_flood",
                    "dns_tunnel",
                    "volumetric",
                    "signature"
                ]
                .contains(&kind.as_str()),
                "unexpected {kind}; {}",
                summary()
            );
        }
    }
}

/// `--db`: a read's alerts and flows go into a store, twice into the same
/// one with ids the store allocates (nothing overwritten), and `nta-agent
/// run` serves them from it.
#[test]
fn the_alerts_a_read_stores_are_served_by_the_agent() {
    if !support::privileged_with(&["tcpdump", "curl", "python3", "runuser"]) {
        return;
    }
    let net = Topology::new();
    let dir = shared_dir();
    let capture = dir.path().join("request.pcap");
    capture_attack(&net, &net.victim_if, &capture);
    let db = dir.path().join("read.redb");
    for _ in 0..2 {
        let out = read_as_nobody(&["--db", str_of(&db), str_of(&capture)]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let _agent = start_agent(&net, &["--db", str_of(&db)]);
    let api = Api::new(&net.victim);
    let alerts = api.alerts("kind=signature");
    let ids: std::collections::BTreeSet<u64> =
        alerts.iter().filter_map(|a| a["id"].as_u64()).collect();
    assert_eq!(ids.len(), alerts.len(), "distinct ids: {alerts:?}");
    let requests: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["evidence"]["sid"] == SID_CMD_EXE_USER_AGENT)
        .collect();
    assert_eq!(requests.len(), 2, "one per read: {alerts:?}");
    for a in requests {
        assert_eq!(a["src"], ATTACKER_ADDR, "{a}");
        assert_eq!(a["dst"], VICTIM_ADDR, "{a}");
    }
    // And the request's flow, once per read, both ways (tcpdump saw both).
    let body = api.get(&format!("/api/flows?host={ATTACKER_ADDR}&port=80"));
    let flows = body["flows"].as_array().expect("flows");
    assert_eq!(flows.len(), 2, "{body}");
    for f in flows {
        assert_eq!(f["src_ip"], ATTACKER_ADDR, "{f}");
        assert_eq!(f["dest_ip"], VICTIM_ADDR, "{f}");
        assert_eq!(f["dst_port"], 80, "{f}");
        assert_eq!(f["proto"], 6, "{f}");
        assert!(f["pkts_toclient"].as_u64().is_some_and(|n| n >= 3), "{f}");
        assert_eq!(f["state"], "closed", "{f}");
    }
}

#[test]
fn a_capture_cut_short_keeps_what_came_before_and_says_where() {
    if !support::privileged_with(&["tcpdump", "curl", "python3", "runuser"]) {
        return;
    }
    let net = Topology::new();
    let dir = shared_dir();
    let capture = dir.path().join("cut.pcap");
    capture_attack(&net, &net.victim_if, &capture);
    let whole = fs::read(&capture).expect("the capture");
    // Cut inside the last packet record: everything else, the request
    // included, is still there.
    fs::write(&capture, &whole[..whole.len() - 10]).expect("cutting");
    let out = read_as_nobody(&[str_of(&capture)]);
    // Exit 1: the file was not read whole; what it held is reported.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{} is cut short", capture.display()))
            && stderr.contains("at byte"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("  signature: "), "{}", text(&out));

    let notes = dir.path().join("notes.txt");
    fs::write(&notes, "not a capture\n".repeat(10)).expect("writing");
    let out = read_as_nobody(&[str_of(&notes)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("notes.txt is not a capture file"),
        "{}",
        text(&out)
    );
}

/// Writes a pcap of `packets` Ethernet frames from 20 000 sources to one
/// host: a third DNS queries, a third HTTP requests, a third bare SYNs,
/// 100 000 a second of capture time.
fn mixed_capture(path: &Path, packets: u32) {
    use std::io::Write as _;
    let file = fs::File::create(path).expect("creating the capture");
    let mut out = std::io::BufWriter::new(file);
    out.write_all(&pcap_header()).expect("writing");
    let http = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0\r\n\r\n";
    let dns = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x03com\x00\x00\x01\x00\x01";
    let mut frame = Vec::with_capacity(256);
    for i in 0..packets {
        let src = [10, ((i % 20_000) >> 8) as u8, (i % 20_000) as u8, 1];
        let builder = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
            .ipv4(src, [198, 18, 0, 1], 64);
        let sport = 40_000 + (i % 1000) as u16;
        frame.clear();
        match i % 3 {
            0 => builder.udp(sport, 53).write(&mut frame, dns),
            1 => builder
                .tcp(sport, 80, i, 65_535)
                .ack(1)
                .psh()
                .write(&mut frame, http),
            _ => builder
                .tcp(sport, 80, i, 65_535)
                .syn()
                .write(&mut frame, &[]),
        }
        .expect("building a frame");
        let record = pcap_record(1_765_000_000 + i / 100_000, (i % 100_000) * 10, &frame);
        out.write_all(&record).expect("writing");
    }
    out.flush().expect("writing");
}

/// Seconds `program args` takes, best of three.
fn best_of_three(program: &str, args: &[&str]) -> f64 {
    (0..3)
        .map(|_| {
            let start = std::time::Instant::now();
            let out = Command::new(program).args(args).output().expect("running");
            assert!(out.status.success(), "{program}: {}", text(&out));
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
#[ignore = "benchmark: about a minute; cargo xtask bench runs it"]
fn bench_read_speed_against_tcpdump() {
    if !support::have_tool("tcpdump") {
        return;
    }
    const PACKETS: u32 = 1_000_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let capture = dir.path().join("mixed.pcap");
    mixed_capture(&capture, PACKETS);
    let file = str_of(&capture);
    let tcpdump = best_of_three("tcpdump", &["-r", file, "-w", "/dev/null"]);
    let nta = best_of_three(env!("CARGO_BIN_EXE_nta-agent"), &["read", file]);
    let group = "reading a capture";
    let note = "1 000 000 frames from 20 000 sources (DNS, HTTP, SYN), best of three";
    support::figures::record(
        group,
        "tcpdump -r FILE -w /dev/null",
        f64::from(PACKETS) / tcpdump,
        "packets/s",
        None,
        note,
    );
    support::figures::record(
        group,
        "nta-agent read FILE (payload rules and DNS tunnels)",
        f64::from(PACKETS) / nta,
        "packets/s",
        None,
        note,
    );
    support::figures::record(
        group,
        "nta-agent read time over tcpdump's",
        nta / tcpdump,
        "x",
        Some(support::figures::Target::AtMost(5.0)),
        "counting and detecting everything, payloads inspected on a second thread",
    );
}

/// A pcap of HTTP requests the rules catch, one at each of `seconds`.
fn requests_at(path: &Path, seconds: &[u32]) {
    let mut out = pcap_header();
    for (i, secs) in seconds.iter().enumerate() {
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
            .ipv4([198, 18, 0, 2], [198, 18, 0, 1], 64)
            .tcp(40_000 + i as u16, 80, 1, 65_535)
            .ack(1)
            .psh()
            .write(
                &mut frame,
                b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: cmd.exe\r\n\r\n",
            )
            .expect("a frame");
        out.extend(pcap_record(*secs, 0, &frame));
    }
    fs::write(path, out).expect("writing the capture");
}

#[test]
fn several_captures_are_read_in_timestamp_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (dir.path().join("a.pcap"), dir.path().join("b.pcap"));
    requests_at(&a, &[1_765_000_001, 1_765_000_003, 1_765_000_005]);
    requests_at(&b, &[1_765_000_002, 1_765_000_004]);
    let eve = dir.path().join("eve.json");
    let out = Command::new(env!("CARGO_BIN_EXE_nta-agent"))
        .args(["read", "--eve", str_of(&eve), str_of(&a), str_of(&b)])
        .output()
        .expect("running nta-agent read");
    assert!(out.status.success(), "{}", text(&out));
    let events: Vec<serde_json::Value> = fs::read_to_string(&eve)
        .expect("the EVE output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let times: Vec<String> = alerts_with_sid(&events, SID_CMD_EXE_USER_AGENT)
        .iter()
        .map(|e| e["timestamp"].as_str().unwrap_or_default().to_owned())
        .collect();
    let seconds: Vec<&str> = times.iter().map(|t| &t[17..19]).collect();
    assert_eq!(seconds, ["41", "42", "43", "44", "45"], "{times:?}");
}
