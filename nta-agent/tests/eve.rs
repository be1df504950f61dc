//! EVE JSON from the live agent (`--eve PATH`): a rule match, a port scan
//! and a SYN flood in the namespaces, and their flows, then every line
//! checked against
//! Suricata's own published schema (`../shared/eve/schema.json`, GPL-2.0
//! test data read in place) with Python's jsonschema, and the events'
//! contents against what was sent.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{
    eve::{alerts_with_sid, can_validate, validated},
    lab::{Lab, cmd_exe_request, web_server},
    netns::{ATTACKER_ADDR, VICTIM_ADDR},
};

/// nta's rule "cmd.exe in User-Agent" (default.rules).
const SID_CMD_EXE_USER_AGENT: u64 = 1_000_001;
/// The EVE signature ids of nta's port scans and SYN floods (README).
const SID_PORT_SCAN: u64 = 8_700_001;
const SID_SYN_FLOOD: u64 = 8_700_003;

#[test]
fn the_live_agents_eve_output_validates_and_says_what_happened() {
    if !support::privileged_with(&["curl", "nmap", "hping3", "timeout"]) || !can_validate() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let eve = dir.path().join("log/eve.json");
    let eve_arg = eve.to_str().expect("a UTF-8 path");
    let mut lab = Lab::start_with(&["--eve", eve_arg, "--eve-stats-interval", "1s"]);
    let _web = web_server(&lab.net);

    cmd_exe_request(&lab.net);
    let scan = lab.net.exec(
        &lab.net.attacker,
        Duration::from_secs(60),
        &[
            "nmap",
            "-n",
            "-sS",
            "-Pn",
            "-T4",
            "-p",
            "1-200",
            VICTIM_ADDR,
        ],
    );
    assert!(scan.status.success(), "nmap: {scan:?}");
    let flood = lab.net.exec(
        &lab.net.attacker,
        Duration::from_secs(20),
        &[
            "timeout",
            "2",
            "hping3",
            "-S",
            "-p",
            "80",
            // One source port: one flow, not a hundred thousand flow events.
            "-s",
            "40000",
            "-k",
            "--flood",
            VICTIM_ADDR,
        ],
    );
    assert_eq!(flood.status.code(), Some(124), "hping3: {flood:?}");
    std::thread::sleep(Duration::from_secs(2));
    lab.agent
        .stop_cleanly(libc::SIGTERM, Duration::from_secs(15));

    let events = validated(&eve);
    let log = || lab.agent.log();

    // The rule match, as Suricata writes one.
    let matches = alerts_with_sid(&events, SID_CMD_EXE_USER_AGENT);
    assert_eq!(matches.len(), 1, "one request, one event; {}", log());
    let m = matches[0];
    assert_eq!(m["src_ip"], ATTACKER_ADDR);
    assert_eq!(m["dest_ip"], VICTIM_ADDR);
    assert_eq!(m["dest_port"], 80);
    assert_eq!(m["proto"], "TCP");
    assert!(m["src_port"].as_u64().is_some_and(|p| p > 1023), "{m}");
    assert!(m["flow_id"].as_u64().is_some(), "{m}");
    assert_eq!(m["alert"]["gid"], 1);
    assert_eq!(m["alert"]["action"], "allowed");
    assert_eq!(m["alert"]["category"], "Web Application Attack");
    assert!(
        m["alert"]["signature"]
            .as_str()
            .is_some_and(|s| s.contains("cmd.exe")),
        "{m}"
    );

    // nta's own detections, one event each as its incident opened.
    let scans = alerts_with_sid(&events, SID_PORT_SCAN);
    assert_eq!(scans.len(), 1, "one scan, one event; {}", log());
    assert_eq!(scans[0]["src_ip"], ATTACKER_ADDR);
    assert_eq!(
        scans[0]["alert"]["metadata"]["nta_kind"],
        serde_json::json!(["port_scan"])
    );
    let floods = alerts_with_sid(&events, SID_SYN_FLOOD);
    assert_eq!(floods.len(), 1, "one flood, one event; {}", log());
    assert_eq!(floods[0]["dest_ip"], VICTIM_ADDR);
    assert_eq!(floods[0]["proto"], "TCP");
    assert!(
        floods[0]["alert"]["metadata"]["nta_pps"][0]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .is_some_and(|pps| pps > 1000.0),
        "{}",
        floods[0]
    );

    // Flow events: the request's connection, written at shutdown (it was
    // not idle for 15 s yet). XDP sees what the victim's interface
    // receives: the client's packets, not the server's replies.
    let web: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "flow" && e["flow_id"] == m["flow_id"])
        .collect();
    assert_eq!(web.len(), 1, "the alert's flow; {}", log());
    let web = web[0];
    assert_eq!(web["src_ip"], ATTACKER_ADDR, "{web}");
    assert_eq!(web["dest_ip"], VICTIM_ADDR, "{web}");
    assert_eq!(web["dest_port"], 80, "{web}");
    assert_eq!(web["proto"], "TCP", "{web}");
    assert_eq!(web["flow"]["reason"], "shutdown", "{web}");
    assert_eq!(web["flow"]["state"], "closed", "{web}");
    assert!(
        web["flow"]["pkts_toserver"]
            .as_u64()
            .is_some_and(|n| n >= 4),
        "{web}"
    );
    assert_eq!(web["flow"]["pkts_toclient"], 0, "{web}");
    let flood = events
        .iter()
        .find(|e| e["event_type"] == "flow" && e["src_port"] == 40_000)
        .unwrap_or_else(|| panic!("no flow for the flood; {}", log()));
    assert!(
        flood["flow"]["pkts_toserver"]
            .as_u64()
            .is_some_and(|n| n > 10_000),
        "{flood}"
    );

    // Stats every second, the last at shutdown counting every alert event.
    let stats: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "stats")
        .collect();
    assert!(stats.len() >= 3, "{} stats events; {}", stats.len(), log());
    let last = stats.last().expect("a stats event");
    let alert_events = events.iter().filter(|e| e["event_type"] == "alert").count();
    assert_eq!(
        last["stats"]["detect"]["alert"], alert_events as u64,
        "{last}"
    );
    assert!(
        last["stats"]["decoder"]["pkts"]
            .as_u64()
            .is_some_and(|n| n > 10_000),
        "the flood's packets: {last}"
    );
    assert_eq!(
        events.last().map(|e| &e["event_type"]),
        Some(&Value::from("stats"))
    );
}

/// logrotate's way with the live agent: the file is moved, then the agent
/// gets SIGHUP; the events before the signal are in the moved file, the
/// ones after in a new file at the old path, none lost: the stats events
/// (one a second) run on without a gap from one file to the other.
#[test]
fn sighup_after_a_move_continues_in_a_new_file_losing_nothing() {
    if !support::privileged() || !can_validate() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let eve = dir.path().join("eve.json");
    let moved = dir.path().join("eve.json.1");
    let config = dir.path().join("nta.toml");
    std::fs::write(
        &config,
        format!(
            "sensor_name = \"edge-7\"\n[eve]\nfile = \"{}\"\ntypes = [\"stats\"]\n",
            eve.display()
        ),
    )
    .expect("writing the config");
    let config_arg = config.to_str().expect("a UTF-8 path");
    // Counters read every 200 ms: a stats event each second, give or take
    // a read, so that a missing one shows as a gap of two seconds.
    let mut lab = Lab::start_with(&[
        "--config",
        config_arg,
        "--interval",
        "200ms",
        "--eve-stats-interval",
        "1s",
    ]);
    let lines = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while lines(&eve) < 3 {
        assert!(std::time::Instant::now() < deadline, "{}", lab.agent.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::rename(&eve, &moved).expect("moving the file");
    // Between the move and the signal, events still go to the moved file.
    std::thread::sleep(Duration::from_millis(1500));
    let pid = libc::pid_t::try_from(lab.agent.pid().expect("the agent's pid")).expect("a pid");
    // SAFETY: kill has no memory preconditions; pid is the agent's.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    lab.agent
        .wait_for_log("EVE file to be opened again", Duration::from_secs(10));
    while lines(&eve) < 3 {
        assert!(std::time::Instant::now() < deadline, "{}", lab.agent.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // The output's counts, in the API and for Prometheus.
    let stats = lab.api.get("/api/stats");
    let output = &stats["eve"]["outputs"][0];
    assert_eq!(stats["eve"]["host"], "edge-7", "{stats}");
    assert!(
        output["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("eve.json")),
        "{output}"
    );
    assert!(
        output["written"].as_u64().is_some_and(|n| n >= 6),
        "{output}"
    );
    assert_eq!(output["dropped"], 0, "{output}");
    assert_eq!(output["up"], true, "{output}");
    let metrics = lab.api.get_text("/metrics");
    assert!(
        metrics.contains("nta_sensor{sensor_name=\"edge-7\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("nta_eve_written_total{output=\"file "),
        "{metrics}"
    );
    assert!(
        metrics.contains("nta_eve_output_up{output=\"file "),
        "{metrics}"
    );
    lab.agent
        .stop_cleanly(libc::SIGTERM, Duration::from_secs(15));

    let before = validated(&moved);
    let after = validated(&eve);
    for e in before.iter().chain(&after) {
        assert_eq!(e["host"], "edge-7", "{e}");
        assert_eq!(e["event_type"], "stats", "{e}");
    }
    assert!(
        before.len() >= 4,
        "{} events before the signal",
        before.len()
    );
    // Every stats event's time, oldest first: each within about the
    // interval of the one before, across the two files.
    let times: Vec<jiff::Timestamp> = before
        .iter()
        .chain(&after)
        .map(|e| {
            let t = e["timestamp"].as_str().expect("timestamp");
            jiff::fmt::strtime::parse("%Y-%m-%dT%H:%M:%S%.f%z", t)
                .and_then(|p| p.to_timestamp())
                .unwrap_or_else(|e| panic!("{t}: {e}"))
        })
        .collect();
    for pair in times.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(
            gap > jiff::SignedDuration::ZERO && gap < jiff::SignedDuration::from_millis(1900),
            "a stats event missing between {} and {}",
            pair[0],
            pair[1]
        );
    }
}
