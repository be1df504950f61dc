//! The Emerging Threats Open ruleset (`../shared/rulesets/`, BSD/GPL, read
//! in place) as a user would try it: `nta-agent rules check` over every
//! file, and rules taken from it catching what they were written for.

mod support;

use std::{fs, path::Path, process::Command};

use serde_json::Value;
use support::{
    captures::{pcap_header, pcap_record},
    et_open::{rule_files, ruleset},
    eve::alerts_with_sid,
};

/// ET Open rules that load, at least: the count may only rise (raise it
/// when it does).
const LOADED_AT_LEAST: usize = 24_153;

/// `nta-agent read` of `pcap` with `config` and `rules`: the EVE events it
/// wrote to `eve`.
fn read_eve(config: &Path, rules: &[&str], pcap: &Path, eve: &Path) -> Vec<Value> {
    let mut args = vec!["--config", str_of(config)];
    for r in rules {
        args.extend(["--rules", r]);
    }
    args.extend(["--eve", str_of(eve), str_of(pcap)]);
    support::nta_read(&args);
    fs::read_to_string(eve)
        .expect("the EVE output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("EVE lines are JSON"))
        .collect()
}

/// Rules in `file` that are enabled: lines that are neither blank nor
/// comments (ET puts one rule per line).
fn enabled_rules(file: &Path) -> usize {
    fs::read_to_string(file)
        .expect("reading a rules file")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .count()
}

fn str_of(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

#[test]
fn rules_check_counts_every_enabled_et_open_rule_and_loads_more_than_before() {
    let Some(dir) = ruleset() else {
        return;
    };
    let files = rule_files(&dir);
    assert!(files.len() > 40, "{} rules files", files.len());
    let mut args = vec!["rules", "check"];
    args.extend(files.iter().map(|f| str_of(f)));
    let out = Command::new(env!("CARGO_BIN_EXE_nta-agent"))
        .args(&args)
        .output()
        .expect("running nta-agent rules check");
    let report = String::from_utf8_lossy(&out.stdout);
    let (mut loaded, mut rejected, mut enabled) = (0, 0, 0);
    for file in &files {
        let line = report
            .lines()
            .find(|l| l.starts_with(&format!("{}: ", file.display())))
            .unwrap_or_else(|| panic!("no line for {}:\n{report}", file.display()));
        let numbers: Vec<usize> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        let (l, r) = (numbers[numbers.len() - 2], numbers[numbers.len() - 1]);
        // Every enabled rule is either loaded or rejected with a reason.
        assert_eq!(l + r, enabled_rules(file), "{line}");
        loaded += l;
        rejected += r;
        enabled += enabled_rules(file);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.lines().count(),
        rejected,
        "one line per rejected rule"
    );
    // The reasons table accounts for every rejection.
    let tabled: usize = report
        .lines()
        .skip_while(|l| !l.starts_with("reason"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().last()?.parse::<usize>().ok())
        .sum();
    assert_eq!(tabled, rejected, "{report}");
    println!(
        "ET Open: {loaded} of {enabled} enabled rules load ({:.1} %)\n{}",
        100.0 * loaded as f64 / enabled as f64,
        report
            .lines()
            .skip_while(|l| !l.starts_with("reason"))
            .take(16)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        loaded >= LOADED_AT_LEAST,
        "{loaded} ET Open rules load, fewer than the {LOADED_AT_LEAST} before"
    );
}

/// The sensor's network as `$HOME_NET`, so that ET's client-side rules
/// apply to its hosts.
const CONFIG: &str = "[vars]\nHOME_NET = \"198.18.0.0/15\"\n";
const CLIENT: [u8; 4] = [198, 18, 0, 2];
const RESOLVER: [u8; 4] = [198, 18, 0, 1];
const OUTSIDE: [u8; 4] = [203, 0, 113, 5];

/// ET's DNS rule for a domain (`dns.query; content; nocase; endswith`).
const SID_DNS: u64 = 2_029_107;
/// ET's TLS rule for a server name (`flow:established,to_server; tls.sni;
/// content; endswith`).
const SID_TLS: u64 = 2_025_487;
/// ET's user-agent rule (`flow:established,to_server; http.user_agent;
/// content:"reqwest/"; depth:8`).
const SID_USER_AGENT: u64 = 2_028_842;
/// ET's phishing page rule (`flow:established,to_client; file_data;
/// content:"<title>Login - PayPal</title>"`), on what a server sends.
const SID_PHISHING: u64 = 2_019_785;

fn udp_frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
        .ipv4(src, dst, 64)
        .udp(sport, dport)
        .write(&mut frame, payload)
        .expect("a UDP frame");
    frame
}

fn tcp_frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1000, 65_535)
        .ack(1)
        .psh()
        .write(&mut frame, payload)
        .expect("a TCP frame");
    frame
}

fn dns_query(name: &str) -> Vec<u8> {
    let mut packet = simple_dns::Packet::new_query(9);
    packet.questions.push(simple_dns::Question::new(
        simple_dns::Name::new_unchecked(name),
        simple_dns::TYPE::A.into(),
        simple_dns::CLASS::IN.into(),
        false,
    ));
    packet.build_bytes_vec().expect("a DNS query")
}

/// A TLS 1.2 ClientHello record naming `sni`.
fn client_hello(sni: &str) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut list = vec![0u8];
    list.extend((name.len() as u16).to_be_bytes());
    list.extend(name);
    let mut server_name = (list.len() as u16).to_be_bytes().to_vec();
    server_name.extend(list);
    let mut extensions = 0u16.to_be_bytes().to_vec();
    extensions.extend((server_name.len() as u16).to_be_bytes());
    extensions.extend(server_name);
    let mut body = vec![3, 3];
    body.extend([7u8; 32]);
    body.push(0); // no session id
    body.extend([0, 2, 0x13, 0x01]); // one cipher suite
    body.extend([1, 0]); // null compression
    body.extend((extensions.len() as u16).to_be_bytes());
    body.extend(extensions);
    let mut handshake = vec![1];
    handshake.extend(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend(body);
    let mut record = vec![22, 3, 1];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

fn get_with_user_agent(agent: &str) -> Vec<u8> {
    format!("GET /update HTTP/1.1\r\nHost: updates.example\r\nUser-Agent: {agent}\r\n\r\n")
        .into_bytes()
}

/// A server's answer: `header` among its headers, then `body`.
fn response_with(header: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n{header}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Rules straight from ET Open's files raise their alerts in a read of a
/// capture holding what they describe, and only there: a domain and a
/// subdomain that merely end alike, a user agent with the fragment further
/// in, a page title in a header rather than the body.
#[test]
fn et_open_rules_catch_the_dns_tls_and_http_they_describe() {
    let Some(dir) = ruleset() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let frames = [
        udp_frame(
            CLIENT,
            RESOLVER,
            40_000,
            53,
            &dns_query("appsdown.urbanvillager.xyz"),
        ),
        udp_frame(
            CLIENT,
            RESOLVER,
            40_001,
            53,
            &dns_query("appsdown.urbanvillager.xyz.example"),
        ),
        tcp_frame(
            CLIENT,
            OUTSIDE,
            40_002,
            443,
            &client_hello("cdn.maraukog.info"),
        ),
        tcp_frame(
            CLIENT,
            OUTSIDE,
            40_003,
            443,
            &client_hello("maraukog.info.example"),
        ),
        tcp_frame(
            CLIENT,
            OUTSIDE,
            40_004,
            80,
            &get_with_user_agent("reqwest/0.12"),
        ),
        tcp_frame(
            CLIENT,
            OUTSIDE,
            40_005,
            80,
            &get_with_user_agent("x-reqwest/0.12"),
        ),
        tcp_frame(
            OUTSIDE,
            CLIENT,
            80,
            40_006,
            &response_with(
                "Server: nginx",
                "<html><head><title>Login - PayPal</title></head>",
            ),
        ),
        tcp_frame(
            OUTSIDE,
            CLIENT,
            80,
            40_007,
            &response_with("X-Title: <title>Login - PayPal</title>", "<html></html>"),
        ),
    ];
    let mut capture = pcap_header();
    for (i, frame) in frames.iter().enumerate() {
        capture.extend(pcap_record(1_765_000_000 + i as u32, 0, frame));
    }
    let pcap = tmp.path().join("et.pcap");
    fs::write(&pcap, capture).expect("writing the capture");
    let config = tmp.path().join("nta.toml");
    fs::write(&config, CONFIG).expect("writing the config");
    let eve = tmp.path().join("eve.json");
    let rules = |name: &str| dir.join(name).to_str().expect("UTF-8").to_owned();
    let (adware, agents, phishing) = (
        rules("emerging-adware_pup.rules"),
        rules("emerging-user_agents.rules"),
        rules("emerging-phishing.rules"),
    );
    let events = read_eve(
        &config,
        &[&adware, &agents, &phishing].map(String::as_str),
        &pcap,
        &eve,
    );
    for (sid, port) in [
        (SID_DNS, 40_000),
        (SID_TLS, 40_002),
        (SID_USER_AGENT, 40_004),
    ] {
        let alerts = alerts_with_sid(&events, sid);
        let ports: Vec<&Value> = alerts.iter().map(|a| &a["src_port"]).collect();
        assert_eq!(ports, [&Value::from(port)], "sid {sid}");
        assert_eq!(alerts[0]["src_ip"], "198.18.0.2", "sid {sid}");
    }
    // The response goes to the client: the alert is on the server's side.
    let alerts = alerts_with_sid(&events, SID_PHISHING);
    let ports: Vec<&Value> = alerts.iter().map(|a| &a["dest_port"]).collect();
    assert_eq!(ports, [&Value::from(40_006)], "sid {SID_PHISHING}");
    assert_eq!(alerts[0]["src_ip"], "203.0.113.5");
}

/// The first address listed on its own (not as a network) by the first
/// rule of ET's `ciarmy.rules`, and that rule's sid.
fn first_listed_address(rules: &str) -> (std::net::Ipv4Addr, u64) {
    let rule = rules
        .lines()
        .find(|l| l.starts_with("alert ip ["))
        .expect("a rule on a list of addresses");
    let list = &rule["alert ip [".len()..rule.find(']').expect("the list's end")];
    let address = list
        .split(',')
        .find(|a| !a.contains('/'))
        .and_then(|a| a.trim().parse().ok())
        .expect("an IPv4 address in the list");
    let sid = rule
        .split("sid:")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .and_then(|s| s.trim().parse().ok())
        .expect("the rule's sid");
    (address, sid)
}

/// A rule on addresses alone, straight from ET's reputation list, alerts
/// on the first flow from a listed address to the home network and is
/// held by its threshold (one per source and hour) on the second; an
/// address it does not list raises nothing.
#[test]
fn an_et_reputation_rule_alerts_once_on_flows_from_a_listed_address() {
    let Some(dir) = ruleset() else {
        return;
    };
    let ciarmy = dir.join("ciarmy.rules");
    let (listed, sid) =
        first_listed_address(&fs::read_to_string(&ciarmy).expect("reading ciarmy.rules"));
    let unlisted = std::net::Ipv4Addr::from(OUTSIDE);
    let home = std::net::Ipv4Addr::from(CLIENT);
    let frames = [
        support::frames::syn_v4(listed, home, 40_000, 22),
        support::frames::syn_v4(listed, home, 40_001, 23),
        support::frames::syn_v4(unlisted, home, 40_002, 22),
    ];
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut capture = pcap_header();
    for (i, frame) in frames.iter().enumerate() {
        capture.extend(pcap_record(1_765_000_000 + 2 * i as u32, 0, frame));
    }
    let pcap = tmp.path().join("reputation.pcap");
    fs::write(&pcap, capture).expect("writing the capture");
    let config = tmp.path().join("nta.toml");
    fs::write(&config, CONFIG).expect("writing the config");
    let eve = tmp.path().join("eve.json");
    let events = read_eve(&config, &[str_of(&ciarmy)], &pcap, &eve);
    let alerts = alerts_with_sid(&events, sid);
    assert_eq!(alerts.len(), 1, "sid {sid} from {listed}: {alerts:?}");
    assert_eq!(alerts[0]["src_ip"], listed.to_string());
    assert_eq!(alerts[0]["dest_ip"], home.to_string());
    assert_eq!(alerts[0]["src_port"], 40_000);
    let from_unlisted: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "alert" && e["src_ip"] == unlisted.to_string())
        .collect();
    assert_eq!(from_unlisted, Vec::<&Value>::new());
}
