//! Detection coverage, the benign side (issue 14): traffic that looks like
//! an attack to a careless rule, sent by real clients and servers, must
//! raise no alert at all with the agent's default settings (the busy web
//! server: with the override its operator would set; a control runs the
//! same load without it and expects the one SYN flood it is then).
//!
//! The servers and clients are small Python programs in `support/py/`
//! (the test machines have no DNS or NTP server packages), plus curl and
//! dig. The victim's veth is where the sensor is: it sees what comes INTO
//! the victim, so each test puts the traffic that matters on that side:
//! DNS and NTP replies from service ports to the victim's ephemeral ones,
//! a monitoring host's connections to many servers behind the victim,
//! bulk data in (a download) and the ACKs of bulk data out (an upload), a
//! client's late FINs and RSTs.
//!
//! Measured on the 2-core lab machine, without XDP attached: the epoll web
//! server and clients take 5 000 new connections a second (Python's asyncio
//! tops out near 1 300); a 300 MB curl download over the veth takes 0.4 s,
//! a 300 MB upload 1.2 s. With the agent's XDP program attached the veth
//! no longer passes 64 KB GSO segments: a 300 MB download from a plain
//! socket sender came in as 207 000 full-size frames in 0.58 s (357 000
//! frames/s, 4.2 Gbit/s; `[flood] all` defaults to 500 000 packets/s), its
//! upload's ACKs as 352 (the receiver's GRO coalesces them).
//!
//! Run against the agent as it was before issue 14 (pre-coverage
//! detectors only), all of these passed but the web server's: its 3 000
//! SYN/s to one host raised "SYN flood on port 80 across hosts", the
//! per-port rule taking the global `dst_port_syn_rate` and not the override
//! of the one host receiving them.

mod support;

use std::{fs, path::Path, thread, time::Duration};

use support::{
    coverage::{
        CoverageLab, SETTLE, add_clients, count_by_kind, finished, python, python_server,
        sweep_host, sysctl, the_only_alert,
    },
    lab::{Lab, Spawned, explain},
    netns::{ATTACKER_ADDR, Topology, VICTIM_ADDR},
};

const TCP_SERVER: (&str, &str) = ("tcp_server.py", include_str!("support/py/tcp_server.py"));
const WEB_CLIENTS: (&str, &str) = ("web_clients.py", include_str!("support/py/web_clients.py"));
const DNS: (&str, &str) = ("dns.py", include_str!("support/py/dns.py"));
const NTP: (&str, &str) = ("ntp.py", include_str!("support/py/ntp.py"));
const TCP_CHECKS: (&str, &str) = ("tcp_checks.py", include_str!("support/py/tcp_checks.py"));
const LATE_CLOSE: (&str, &str) = ("late_close.py", include_str!("support/py/late_close.py"));
const BULK_HTTP: (&str, &str) = ("bulk_http.py", include_str!("support/py/bulk_http.py"));

/// Longest a server lives.
const SERVER_LIMIT: Duration = Duration::from_secs(120);
/// Longest a client runs.
const CLIENT_LIMIT: Duration = Duration::from_secs(60);

/// Asserts that the lab raised no alert at all, [`SETTLE`] after the
/// traffic; prints what ran.
#[track_caller]
fn no_alert(lab: &Lab, what: &str) {
    thread::sleep(SETTLE);
    let alerts = lab.api.alerts("");
    println!(
        "BENIGN {what}: {} alerts {:?}",
        alerts.len(),
        count_by_kind(&alerts)
    );
    assert!(
        alerts.is_empty(),
        "{what} raised alerts; {}",
        explain(&alerts, &lab.agent)
    );
}

/// A counter of the victim's TCP stack (`/proc/net/snmp`, `Tcp:` line).
fn tcp_counter(net: &Topology, name: &str) -> u64 {
    let out = net.exec(
        &net.victim,
        Duration::from_secs(5),
        &["cat", "/proc/net/snmp"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut tcp = text.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next().unwrap_or(""), tcp.next().unwrap_or(""));
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no Tcp {name} in /proc/net/snmp:\n{text}"))
}

/// The victim's web server's address, with the threshold override its
/// operator sets for it: it takes up to 10 000 new connections a second.
const WEB_OVERRIDE: &str = "\
[[override]]
network = \"198.18.0.1/32\"
syn_flood = { dst_host_syn_rate = 10000.0, dst_port_syn_rate = 10000.0 }
";

/// New connections a second the web clients open: three times the default
/// SYN-flood threshold (1 000/s), well within the override.
const WEB_RATE: u32 = 3000;
const WEB_SECS: u32 = 4;

/// 100 clients, 3 000 new connections a second between them for 4 s, each
/// fetching a page: a busy web server at the rate its override allows.
/// The override covers its address only: a per-port rule across hosts
/// must not count SYNs its host's override allows (see the module note).
#[test]
fn busy_web_server_within_its_override_raises_no_alert() {
    let Some(lab) = CoverageLab::privileged(&["python3", "ping"], WEB_OVERRIDE) else {
        return;
    };
    let what = busy_web_traffic(&lab.net);
    no_alert(&lab, &what);
}

/// The control: the same clients without the override are a SYN flood on
/// the web server (3 000 SYN/s against the default 1 000), one alert naming
/// it. Shows the load really is past the default, and that the override is
/// what keeps the test above quiet.
#[test]
fn busy_web_server_without_its_override_raises_one_syn_flood() {
    let Some(lab) = CoverageLab::privileged(&["python3", "ping"], "") else {
        return;
    };
    let what = busy_web_traffic(&lab.net);
    thread::sleep(SETTLE);
    let alerts = lab.api.alerts("");
    println!("CONTROL {what}: alerts {:?}", count_by_kind(&alerts));
    let flood = the_only_alert(&lab, &alerts, "syn_flood");
    let context = || explain(&alerts, &lab.agent);
    assert_eq!(flood["dst"], VICTIM_ADDR, "{}", context());
    assert_eq!(flood["dst_port"], 80, "{}", context());
}

/// The traffic of [`busy_web_server_within_its_override_raises_no_alert`]; what it was.
fn busy_web_traffic(net: &Topology) -> String {
    let clients = add_clients(net, 100).join(",");
    let _server = python_server(&net.victim, SERVER_LIMIT, TCP_SERVER, &["0.0.0.0", "80"]);
    let opened = tcp_counter(net, "PassiveOpens");
    let (rate, secs) = (WEB_RATE.to_string(), WEB_SECS.to_string());
    let mut web = python(
        &net.attacker,
        CLIENT_LIMIT,
        WEB_CLIENTS,
        &[VICTIM_ADDR, "80", &rate, &secs, &clients],
    );
    let out = finished(&mut web, CLIENT_LIMIT, "the web clients");
    let accepted = tcp_counter(net, "PassiveOpens") - opened;
    // The test means something only if the clients really went past the
    // default threshold: at least half the intended rate.
    let floor = u64::from(WEB_RATE * WEB_SECS / 2);
    assert!(
        accepted >= floor,
        "the victim accepted {accepted} connections, fewer than {floor}: {out}"
    );
    format!(
        "web server, {accepted} connections in {WEB_SECS} s from 100 clients ({})",
        out.trim()
    )
}

/// A recursive resolver on the victim: 100 clients ask it 500 names a
/// second for 5 s; it asks 100 authoritative servers, each query from a
/// fresh random port, and their answers (an A record, a TXT one of up to
/// 400 bytes for a name in four) come back from port 53 to those ports:
/// 2 500 datagrams from port 53 in 5 s, from 100 sources, to 2 500 ports.
/// Meanwhile `dig` on the victim asks the servers directly.
#[test]
fn dns_resolver_traffic_raises_no_alert() {
    let Some(lab) = CoverageLab::privileged(&["python3", "dig", "ping"], "") else {
        return;
    };
    let what = dns_resolver_traffic(&lab.net);
    no_alert(&lab, &what);
}

/// The traffic of [`dns_resolver_traffic_raises_no_alert`]; what it was.
fn dns_resolver_traffic(net: &Topology) -> String {
    let servers = add_clients(net, 100);
    let _auth = python_server(
        &net.attacker,
        SERVER_LIMIT,
        DNS,
        &["auth", &servers.join(",")],
    );
    let _resolver = python_server(
        &net.victim,
        SERVER_LIMIT,
        DNS,
        &["resolver", VICTIM_ADDR, &servers.join(",")],
    );
    let batch = tempfile::tempdir().expect("temp dir");
    let names = batch.path().join("names");
    let lines: Vec<String> = (0..100)
        .map(|i| format!("@{} www{i}.example.nta.test A", servers[i % servers.len()]))
        .collect();
    fs::write(&names, lines.join("\n")).expect("writing dig's batch file");
    let mut dig = Spawned::start(
        &net.victim,
        CLIENT_LIMIT,
        &["dig", "+tries=1", "+time=2", "+short", "-f", path(&names)],
    );
    let mut clients = python(
        &net.attacker,
        CLIENT_LIMIT,
        DNS,
        &["clients", VICTIM_ADDR, "500", "5", &servers.join(",")],
    );
    let out = finished(&mut clients, CLIENT_LIMIT, "the DNS clients");
    let (status, dug) = dig.wait(CLIENT_LIMIT);
    let answers = dug.lines().filter(|l| l.starts_with("198.18.3.")).count();
    assert!(
        status.success() && answers == 100,
        "dig ({status}), {answers} answers:\n{dug}"
    );
    format!("DNS resolver ({}; dig: 100 answers)", out.trim())
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// NTP both ways: the victim's ntpd asks 8 servers from port 123 to port
/// 123 (iburst's 8 requests, 0.25 s apart instead of 2 s), an SNTP client
/// on the victim asks 4 of them from an ephemeral port, and 100 clients
/// ask the victim's ntpd, 4 times each, 0.5 s apart.
#[test]
fn ntp_traffic_raises_no_alert() {
    let Some(lab) = CoverageLab::privileged(&["python3", "ping"], "") else {
        return;
    };
    let what = ntp_traffic(&lab.net);
    no_alert(&lab, &what);
}

/// The traffic of [`ntp_traffic_raises_no_alert`]; what it was.
fn ntp_traffic(net: &Topology) -> String {
    let clients = add_clients(net, 100);
    let peers = clients[..8].join(",");
    let _servers = python_server(
        &net.attacker,
        SERVER_LIMIT,
        NTP,
        &["ntpd", &clients[..8].join(","), "-", "0", "0"],
    );
    let mut ntpd = python_server(
        &net.victim,
        SERVER_LIMIT,
        NTP,
        &["ntpd", VICTIM_ADDR, &peers, "8", "0.25"],
    );
    let mut sntp = python(
        &net.victim,
        CLIENT_LIMIT,
        NTP,
        &["sntp", &clients[..4].join(","), "4", "0.25", VICTIM_ADDR],
    );
    let mut asking = python(
        &net.attacker,
        CLIENT_LIMIT,
        NTP,
        &["sntp", VICTIM_ADDR, "4", "0.5", &clients.join(",")],
    );
    let asked = finished(&mut asking, CLIENT_LIMIT, "the NTP clients");
    let sntp = finished(&mut sntp, CLIENT_LIMIT, "the victim's SNTP client");
    ntpd.wait_for_output("answered", Duration::from_secs(10));
    let polled = ntpd.output();
    assert!(!polled.contains("FAILED"), "the victim's ntpd: {polled}");
    format!(
        "NTP (victim's ntpd polling 8 servers: {}; its SNTP: {}; 100 clients: {})",
        polled.lines().last().unwrap_or(""),
        sntp.trim(),
        asked.trim()
    )
}

/// A monitoring host checks 4 services (22, 80, 443, 5432) on each of 40
/// servers of the /24 behind the victim, spread over 10 s: 160 connections,
/// each sending a request and reading the answer.
#[test]
fn monitoring_checks_on_many_servers_raise_no_alert() {
    let Some(lab) = CoverageLab::privileged(&["python3", "ping"], "") else {
        return;
    };
    let what = monitoring_traffic(&lab.net);
    no_alert(&lab, &what);
}

/// The traffic of [`monitoring_checks_on_many_servers_raise_no_alert`]; what it was.
fn monitoring_traffic(net: &Topology) -> String {
    let _services = python_server(
        &net.victim,
        SERVER_LIMIT,
        TCP_SERVER,
        &["0.0.0.0", "22,80,443,5432"],
    );
    let hosts: Vec<String> = (1..=40).map(sweep_host).collect();
    let mut checks = python(
        &net.attacker,
        CLIENT_LIMIT,
        TCP_CHECKS,
        &[&hosts.join(","), "22,80,443,5432", "10"],
    );
    let out = finished(&mut checks, CLIENT_LIMIT, "the monitoring checks");
    format!("monitoring, 4 ports on 40 servers in 10 s ({})", out.trim())
}

/// Bytes each bulk transfer moves.
const BULK_BYTES: u64 = 300 * 1024 * 1024;

/// The victim downloads 300 MB and uploads 300 MB at the same time, each
/// with curl, to and from a server on the attacker's side; then once more
/// each.
#[test]
fn bulk_transfers_both_ways_raise_no_alert() {
    let Some(lab) = CoverageLab::privileged(&["python3", "curl", "ping"], "") else {
        return;
    };
    let what = bulk_traffic(&lab.net);
    no_alert(&lab, &what);
}

/// The traffic of [`bulk_transfers_both_ways_raise_no_alert`]; what it was.
fn bulk_traffic(net: &Topology) -> String {
    let _peer = python_server(
        &net.attacker,
        SERVER_LIMIT,
        BULK_HTTP,
        &[ATTACKER_ADDR, "8000"],
    );
    let files = tempfile::tempdir().expect("temp dir");
    let upload = files.path().join("upload");
    fs::File::create(&upload)
        .and_then(|f| f.set_len(BULK_BYTES))
        .expect("creating the upload file (sparse)");
    let down_url = format!("http://{ATTACKER_ADDR}:8000/{BULK_BYTES}");
    let up_url = format!("http://{ATTACKER_ADDR}:8000/upload");
    let curl = |args: &[&str]| {
        let mut all = vec!["curl", "-sS", "--max-time", "50", "-o", "/dev/null"];
        all.extend_from_slice(args);
        Spawned::start(&net.victim, CLIENT_LIMIT, &all)
    };
    let mut moved = Vec::new();
    for _ in 0..2 {
        let mut down = curl(&["-w", "%{size_download} %{time_total}", &down_url]);
        let mut up = curl(&[
            "-H",
            "Expect:",
            "-T",
            path(&upload),
            "-w",
            "%{size_upload} %{time_total}",
            &up_url,
        ]);
        for (what, transfer) in [("download", &mut down), ("upload", &mut up)] {
            let (status, out) = transfer.wait(CLIENT_LIMIT);
            let size: u64 = out
                .split_whitespace()
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            assert!(
                status.success() && size == BULK_BYTES,
                "{what} ({status}): {out}"
            );
            moved.push(format!("{what} {out} s"));
        }
    }
    format!("bulk transfers, 300 MB each ({})", moved.join(", "))
}

/// A client's FINs and RSTs on connections the victim's servers (80, 443,
/// 8080) have closed and forgotten: 60 connections to each; for a third
/// the client closes (FIN) after the server's FIN_WAIT2 has ended (its
/// timeout set to 1 s in the victim's namespace), the victim answering with
/// RSTs; a third it aborts (RST) likewise; a third it closes before reading
/// the answer, which its stack then refuses with RSTs.
#[test]
fn late_fins_and_rsts_of_a_client_raise_no_alert() {
    let Some(lab) = CoverageLab::privileged(&["python3", "ping", "sysctl"], "") else {
        return;
    };
    let what = late_close_traffic(&lab.net);
    no_alert(&lab, &what);
}

/// The traffic of [`late_fins_and_rsts_of_a_client_raise_no_alert`]; what it was.
fn late_close_traffic(net: &Topology) -> String {
    sysctl(net, &net.victim, "net.ipv4.tcp_fin_timeout", "1");
    let _servers = python_server(
        &net.victim,
        SERVER_LIMIT,
        TCP_SERVER,
        &["0.0.0.0", "80,443,8080"],
    );
    let resets = tcp_counter(net, "OutRsts");
    let mut client = python(
        &net.attacker,
        CLIENT_LIMIT,
        LATE_CLOSE,
        &[VICTIM_ADDR, "80,443,8080", "60", "2.5"],
    );
    let out = finished(&mut client, CLIENT_LIMIT, "the late-closing client");
    // Each late FIN met no connection: the victim answered it with an RST.
    let answered = tcp_counter(net, "OutRsts") - resets;
    assert!(
        answered >= 60,
        "the victim sent {answered} RSTs, fewer than the 60 late FINs: were the \
         connections still there? {out}"
    );
    format!(
        "late FINs and RSTs on 3 ports ({}; the victim sent {answered} RSTs)",
        out.trim()
    )
}
