//! Mitigation end to end: the agent on the victim's veth drops what its
//! blocklist names, before the victim's network stack sees it. The victim
//! stack's own counter (`Ip: InReceives` in its `/proc/net/snmp`) shows it:
//! it stops growing for a blocked source while another source still gets
//! through.

mod support;

use std::{
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{
    api::Api,
    lab::{Spawned, alert_log, http_code, nmap_fast_scan, ping_victim, start_agent},
    netns::{ATTACKER_ADDR, Topology, VICTIM_ADDR},
};

/// A second address on the attacker's side: a source that is not blocked.
const BYSTANDER_ADDR: &str = "198.18.0.3";

/// Packets the victim's IP stack has received (`Ip: InReceives`).
fn ip_in_receives(net: &Topology) -> u64 {
    let out = net.exec(
        &net.victim,
        Duration::from_secs(5),
        &["cat", "/proc/net/snmp"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut ip = text.lines().filter(|l| l.starts_with("Ip:"));
    let (names, values) = (ip.next().unwrap_or(""), ip.next().unwrap_or(""));
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "InReceives")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or_else(|| panic!("no Ip InReceives in /proc/net/snmp:\n{text}"))
}

/// Whether `count` pings from `from` to the victim are all answered.
fn pings(net: &Topology, from: &str, count: u32) -> bool {
    let out = ping_victim(net, Some(from), count);
    out.status.success()
        && String::from_utf8_lossy(&out.stdout).contains(&format!("{count} received"))
}

/// The block for `cidr` in `GET /api/blocks`, if there is one.
fn block(api: &Api, cidr: &str) -> Option<Value> {
    api.get("/api/blocks")["blocks"]
        .as_array()?
        .iter()
        .find(|b| b["cidr"] == cidr)
        .cloned()
}

fn bystander(net: &Topology) {
    let cidr = format!("{BYSTANDER_ADDR}/24");
    net.exec(
        &net.attacker,
        Duration::from_secs(5),
        &["ip", "addr", "add", &cidr, "dev", &net.attacker_if],
    );
}

#[test]
fn mitigate_blocks_a_flood_within_two_seconds_and_lifts_it_after_the_ttl() {
    let Some(net) = Topology::privileged(&["hping3"]) else {
        return;
    };
    bystander(&net);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("nta.toml");
    std::fs::write(&config, "[mitigate]\nttl = \"10s\"\n").unwrap();
    let mut agent = start_agent(&net, &["--mitigate", "--config", config.to_str().unwrap()]);
    let api = Api::new(&net.victim);
    let attacker = format!("{ATTACKER_ADDR}/32");

    let start = Instant::now();
    let mut flood = Spawned::start(
        &net.attacker,
        Duration::from_secs(30),
        &["hping3", "-S", "-p", "80", "--flood", VICTIM_ADDR],
    );
    let blocked = loop {
        if let Some(b) = block(&api, &attacker) {
            break b;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no block within 10 s\n{}",
            alert_log(&agent)
        );
        thread::sleep(Duration::from_millis(20));
    };
    let blocked_after = start.elapsed();
    assert_eq!(blocked["origin"], "auto", "{blocked}");
    assert!(blocked["alert_id"].is_u64(), "{blocked}");
    assert!(
        blocked["reason"]
            .as_str()
            .unwrap()
            .starts_with("volumetric #"),
        "{blocked}"
    );
    assert!(
        blocked_after < Duration::from_secs(2),
        "blocked only {blocked_after:?} after the flood started"
    );

    // While the flood goes on, the victim's stack no longer sees it...
    thread::sleep(Duration::from_millis(200));
    let (before, dropped_before) = (
        ip_in_receives(&net),
        block(&api, &attacker).unwrap()["packets"].as_u64().unwrap(),
    );
    thread::sleep(Duration::from_secs(1));
    let (after, dropped_after) = (
        ip_in_receives(&net),
        block(&api, &attacker).unwrap()["packets"].as_u64().unwrap(),
    );
    assert!(flood.running(), "hping3 stopped early: {}", flood.output());
    let reached = after - before;
    let dropped = dropped_after - dropped_before;
    assert!(dropped > 10_000, "only {dropped} packets dropped in 1 s");
    assert!(
        reached < 100,
        "{reached} packets reached the victim's stack in 1 s while {dropped} were dropped"
    );
    // ...while another source still gets through.
    assert!(
        pings(&net, BYSTANDER_ADDR, 3),
        "the bystander's pings were lost"
    );
    // The totals are read once a tick: wait one out before comparing.
    thread::sleep(Duration::from_millis(1100));
    let totals = api.get("/api/stats")["totals"].clone();
    assert!(
        totals["blocked_packets"].as_u64() >= Some(dropped_after),
        "{totals}"
    );
    drop(flood);

    // After the ttl (10 s from the block), the attacker gets through again.
    let deadline = Instant::now() + Duration::from_secs(15);
    while block(&api, &attacker).is_some() {
        assert!(Instant::now() < deadline, "the block outlived its ttl");
        thread::sleep(Duration::from_millis(200));
    }
    let lifted_after = start.elapsed();
    assert!(pings(&net, ATTACKER_ADDR, 3), "still blocked after the ttl");
    agent.assert_logged(&format!("Blocked cidr={attacker} ttl=10s"));
    println!(
        "hping3 --flood with --mitigate: {attacker} blocked {} ms after the flood started; \
         {dropped} packets dropped in 1 s while {reached} reached the victim's stack; \
         lifted {:.1} s after the start (ttl 10 s)",
        blocked_after.as_millis(),
        lifted_after.as_secs_f64()
    );
    agent.stop_cleanly(libc::SIGTERM, Duration::from_secs(15));
}

#[test]
fn blocks_by_hand_need_the_token_survive_a_restart_and_unblock() {
    let Some(net) = Topology::privileged(&[]) else {
        return;
    };
    bystander(&net);
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("nta.redb");
    let db = db.to_str().unwrap().to_owned();
    let mut agent = start_agent(&net, &["--db", &db]);
    let token_file = dir.path().join("api-token");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&token_file)
            .expect("the token file")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let cli = |args: &[&str]| {
        let mut all = vec![env!("CARGO_BIN_EXE_nta-agent"), "block"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--db", &db]);
        net.exec(&net.victim, Duration::from_secs(15), &all)
    };
    // Without the token (curl, no header): refused, and nothing blocked.
    let refused = http_code(
        &net,
        &net.victim,
        Duration::from_secs(10),
        &[
            "-X",
            "POST",
            "-d",
            r#"{"cidr":"198.18.0.3"}"#,
            "http://127.0.0.1:3000/api/blocks",
        ],
    );
    assert_eq!(refused, "401");

    let out = cli(&[
        "add",
        BYSTANDER_ADDR,
        "--ttl",
        "1h",
        "--reason",
        "test block",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("blocked 198.18.0.3/32 until "),
        "{stdout}"
    );
    assert!(
        !pings(&net, BYSTANDER_ADDR, 2),
        "a blocked source's pings got through"
    );
    assert!(
        pings(&net, ATTACKER_ADDR, 2),
        "an unblocked source was cut off"
    );

    // A restart restores it (the kernel map is new; the store remembers).
    agent.stop_cleanly(libc::SIGTERM, Duration::from_secs(15));
    let mut agent = start_agent(&net, &["--db", &db]);
    agent.assert_logged("restored=1");
    assert!(
        !pings(&net, BYSTANDER_ADDR, 2),
        "the block did not survive a restart"
    );

    let out = cli(&["list"]);
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{listing}");
    let row = listing
        .lines()
        .find(|l| l.starts_with("198.18.0.3/32"))
        .unwrap_or_else(|| panic!("{listing}"));
    let packets: u64 = row.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(packets >= 2, "{listing}");
    assert!(row.ends_with("test block"), "{listing}");

    let out = cli(&["del", "198.18.0.3/32"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "unblocked 198.18.0.3/32\n"
    );
    assert!(pings(&net, BYSTANDER_ADDR, 2), "still blocked after del");

    // Refusals are explained.
    let out = cli(&["add", "127.0.0.1"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
    let out = cli(&["del", "198.18.0.99"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no block for 198.18.0.99/32"));
    agent.stop_cleanly(libc::SIGTERM, Duration::from_secs(15));
}

#[test]
fn a_dry_run_says_what_it_would_block_and_blocks_nothing() {
    let Some(net) = Topology::privileged(&["nmap"]) else {
        return;
    };
    let mut agent = start_agent(&net, &["--dry-run"]);
    let api = Api::new(&net.victim);
    nmap_fast_scan(&net, "1-200");
    let answer = api.get("/api/blocks");
    assert_eq!(answer["blocks"], serde_json::json!([]), "{answer}");
    assert_eq!(answer["auto"]["dry_run"], true);
    let decision = &answer["decisions"][0];
    assert_eq!(decision["outcome"], "would_block", "{answer}");
    assert_eq!(decision["cidr"], format!("{ATTACKER_ADDR}/32"));
    assert!(pings(&net, ATTACKER_ADDR, 2));
    agent.assert_logged(&format!("Dry run: would block cidr={ATTACKER_ADDR}/32"));
    agent.stop_cleanly(libc::SIGTERM, Duration::from_secs(15));
}
