//! The Debian package as a new user meets it, on a clean Debian machine
//! (a fresh bookworm booted with systemd as its PID 1; see
//! `support::container`): `apt-get install ./nta_*.deb redis-server`, a
//! sensor name and a Redis stream in `/etc/nta/nta.toml`, nothing else
//! touched, `systemctl enable --now nta@IFACE`; then `nmap` from another
//! machine. The port scan's alert is in `eve.json` (valid against
//! Suricata's schema, naming the sensor), in the Redis stream, and in a
//! real Prometheus scraping the agent; the agent runs as its dynamic user
//! with only its three capabilities; logrotate rotates `eve.json` with the
//! package's own configuration and no event is lost.

mod support;

use std::{fs, path::PathBuf, time::Duration};

use serde_json::Value;
use support::{
    container::Container,
    eve,
    netns::{ATTACKER_ADDR, Topology, VICTIM_ADDR},
    prometheus::{Prometheus, value},
    wait_for,
};

const SENSOR: &str = "edge-7";

/// The packaged `/etc/nta/nta.toml` with a sensor name and a Redis
/// stream, as the README tells a user to set them.
fn configure(packaged: &str) -> String {
    assert!(
        packaged.contains("# sensor_name = \"edge-7\"") && packaged.contains("\n[eve]\n"),
        "the packaged configuration changed:\n{packaged}"
    );
    packaged
        .replace(
            "# sensor_name = \"edge-7\"",
            &format!("sensor_name = \"{SENSOR}\""),
        )
        .replace(
            "\n[eve]\n",
            "\n[eve]\nredis = \"redis://127.0.0.1:6379\"\nredis_mode = \"stream\"\nredis_key = \"nta\"\n",
        )
}

/// The events in the machine's `eve.json` and its rotated copies, oldest
/// first, each validated against Suricata's schema.
fn events(machine: &Container) -> Vec<Value> {
    let dir = machine.path("/var/log/private/nta");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    // eve.json.1 before eve.json.
    files.sort_by_key(|f| std::cmp::Reverse(f.to_string_lossy().len()));
    files.iter().flat_map(|f| eve::validated(f)).collect()
}

#[test]
fn the_package_installs_starts_detects_and_rotates_on_a_clean_debian() {
    if !support::privileged_with(&[
        "debootstrap",
        "systemd-nspawn",
        "nmap",
        "prometheus",
        "curl",
    ]) || !eve::can_validate()
    {
        return;
    }
    let Some(deb) = support::deb() else {
        return;
    };
    let net = Topology::new();
    let name = net.victim.replace("-victim", "-debian");
    let machine = Container::boot(
        &name,
        &net.victim,
        &[(&deb, "/root/nta.deb")],
        "export DEBIAN_FRONTEND=noninteractive
         apt-get update -qq
         apt-get install -y -qq /root/nta.deb redis-server >/dev/null",
    );
    let config = machine.path("/etc/nta/nta.toml");
    let packaged = fs::read_to_string(&config).expect("the packaged /etc/nta/nta.toml");
    fs::write(&config, configure(&packaged)).expect("writing /etc/nta/nta.toml");
    machine.ok(&format!(
        "systemctl enable --now redis-server nta@{}",
        net.victim_if
    ));
    let unit = format!("nta@{}", net.victim_if);
    wait_for("the agent's API", Duration::from_secs(60), || {
        let log = machine.ok(&format!("journalctl -u {unit} --no-pager"));
        log.contains("API listening").then_some(())
    });
    assert_eq!(
        machine.ok(&format!("systemctl is-active {unit}")).trim(),
        "active"
    );

    // As its own user, with exactly CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON.
    let status = machine.ok(&format!(
        "cat /proc/$(systemctl show -p MainPID --value {unit})/status"
    ));
    let field = |name: &str| support::status_field(&status, name);
    assert_ne!(field("Uid"), "0", "{status}");
    assert_eq!(field("CapEff"), "000000c000001000", "{status}");

    let prometheus_dir = tempfile::tempdir().expect("temp dir");
    let prometheus = Prometheus::start(&net.victim, prometheus_dir.path(), None);
    let scan = net.exec(
        &net.attacker,
        Duration::from_secs(120),
        &["nmap", "-sS", "-T4", "-p", "1-1000", VICTIM_ADDR],
    );
    assert!(scan.status.success(), "nmap: {scan:?}");

    // In eve.json, valid, naming the sensor.
    let is_scan = |e: &Value| {
        e["event_type"] == "alert"
            && e["src_ip"] == ATTACKER_ADDR
            && e["alert"]["category"] == "Detection of a Network Scan"
    };
    let alert = wait_for("the alert in eve.json", Duration::from_secs(30), || {
        events(&machine).into_iter().find(is_scan)
    });
    assert_eq!(alert["host"], SENSOR, "{alert}");
    // In the Redis stream.
    let stream = machine.ok("redis-cli --raw XRANGE nta - +");
    let in_redis = stream
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(is_scan)
        .unwrap_or_else(|| panic!("no port scan alert in the stream:\n{stream}"));
    assert_eq!(in_redis, alert, "the same event in both");
    // In Prometheus.
    prometheus.wait_for_scrape(&net);
    let scans = wait_for("the scan in Prometheus", Duration::from_secs(30), || {
        value(&prometheus.query(&net, r#"sum(nta_alerts_opened_total{kind="port_scan"})"#))
            .filter(|n| *n >= 1.0)
    });
    assert_eq!(scans, 1.0, "one incident for one scan");
    let sensor = prometheus.query(&net, "nta_sensor");
    assert_eq!(sensor["data"]["result"][0]["metric"]["sensor_name"], SENSOR);

    // logrotate, with the package's configuration, while the scan's flow
    // records are being written: every event in eve.json.1 or eve.json,
    // as many as the agent counts written.
    let written = || {
        let metrics = net.exec(
            &net.victim,
            Duration::from_secs(10),
            &["curl", "-sS", "http://127.0.0.1:3000/metrics"],
        );
        let metrics = String::from_utf8_lossy(&metrics.stdout).into_owned();
        metrics
            .lines()
            .find(|l| l.starts_with("nta_eve_written_total{output=\"file "))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no file output in /metrics:\n{metrics}"))
    };
    machine.ok("logrotate -f /etc/logrotate.d/nta");
    assert!(machine.path("/var/log/private/nta/eve.json.1").is_file());
    // The flows of the scan end 15 s after it (the idle timeout), and a
    // stats event comes every 8 s: both land after the rotation.
    let uptime = |e: &Value| e["stats"]["uptime"].as_u64();
    let before = events(&machine).iter().filter_map(uptime).max();
    let all = wait_for("events after the rotation", Duration::from_secs(40), || {
        let all = events(&machine);
        let newest = all.iter().filter_map(uptime).max();
        let flows = all.iter().filter(|e| e["event_type"] == "flow").count();
        (newest > before && flows >= 1_000).then_some(all)
    });
    let current = eve::validated(&machine.path("/var/log/private/nta/eve.json"));
    assert!(!current.is_empty(), "nothing in the new eve.json");
    assert!(current.iter().all(|e| e["host"] == SENSOR));
    let count = wait_for(
        "every written event in the files",
        Duration::from_secs(10),
        || {
            let n = events(&machine).len() as u64;
            (n == written()).then_some(n)
        },
    );
    assert!(
        count >= all.len() as u64,
        "{count} written, {} read",
        all.len()
    );
    let uptimes: Vec<u64> = events(&machine).iter().filter_map(uptime).collect();
    assert!(
        uptimes.windows(2).all(|w| w[1] > w[0] && w[1] - w[0] <= 10),
        "a stats event missing across the rotation: {uptimes:?}"
    );
    println!(
        "package: {} events across eve.json.1 and eve.json, {count} written, stats uptimes {uptimes:?}",
        all.len()
    );
    let unit_log = machine.ok(&format!("journalctl -u {unit} --no-pager"));
    assert!(
        unit_log.contains("EVE file to be opened again"),
        "{unit_log}"
    );
}
