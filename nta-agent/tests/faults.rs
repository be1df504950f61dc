//! Faults end to end: the agent killed with SIGKILL in an alert storm and
//! started again on the same store, its store's disk filling up under
//! attack, and the payload-sample ring overrun by a flood. What is checked
//! is what a user would see through the API and the log.
//!
//! The alert storms come from one python3 process in the attacker's
//! namespace that sends UDP from many spoofed sources (198.19.0.0/16, never
//! routed anywhere) with a config whose UDP threshold is 5 packets/s: every
//! source is its own volumetric incident, opened by a kernel event and
//! stored in a transaction of its own, as single events are. That makes
//! hundreds of alerts a second at a rate the test sets, which nmap scans
//! from added addresses (one alert each, seconds apart) cannot.

mod support;

use std::{
    collections::BTreeSet,
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{
    lab::{Spawned, alert_log, ms, start_agent},
    netns::{Topology, VICTIM_ADDR},
};

/// Low thresholds: each storm source (10 UDP packets at once) opens one
/// volumetric incident, closed after a second of quiet.
const STORM_CONFIG: &str = r#"
[volumetric]
udp_rate = 5.0

[incidents]
quiet_period = "1s"
"#;

/// Sends 10 UDP packets from each of `sources` spoofed addresses in turn,
/// `per_sec` sources a second, for at most `secs` seconds.
const STORM_SCRIPT: &str = r#"
import socket, struct, sys, time
first, sources, per_sec, secs = (int(a) for a in sys.argv[1:5])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
dst = socket.inet_aton(sys.argv[5])
payload = b"storm" * 4
start = time.monotonic()
sent = 0
for i in range(first, first + sources):
    if time.monotonic() - start > secs:
        break
    src = bytes([198, 19, (i >> 8) & 255, i & 255])
    udp = struct.pack("!HHHH", 40000 + i % 20000, 9, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, src, dst)
    for _ in range(10):
        s.sendto(ip + udp, (sys.argv[5], 0))
    sent += 1
    wait = start + sent / per_sec - time.monotonic()
    if wait > 0:
        time.sleep(wait)
print("sources", sent, flush=True)
"#;

/// An alert storm from sources `first..first + sources`; killed on drop.
fn storm(net: &Topology, first: u32, sources: u32, per_sec: u32, limit: Duration) -> Spawned {
    let args = [
        first.to_string(),
        sources.to_string(),
        per_sec.to_string(),
        limit.as_secs().to_string(),
    ];
    Spawned::start(
        &net.attacker,
        limit + Duration::from_secs(5),
        &[
            "python3",
            "-c",
            STORM_SCRIPT,
            &args[0],
            &args[1],
            &args[2],
            &args[3],
            VICTIM_ADDR,
        ],
    )
}

/// Writes `text` as the agent's config in `dir`; returns its path.
fn config_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("nta.toml");
    fs::write(&path, text).expect("writing the config");
    path
}

/// The ids listed in a `/api/alerts` body.
fn ids(body: &Value) -> Vec<u64> {
    body["alerts"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["id"].as_u64()).collect())
        .unwrap_or_default()
}

/// Alert ids the agent logged as opened (`opened #N ...`).
fn logged_openings(log: &str) -> BTreeSet<u64> {
    log.lines()
        .filter_map(|l| l.split("opened #").nth(1)?.split(' ').next()?.parse().ok())
        .collect()
}

/// Polls until `done` holds for `/api/stats`, or panics with `what` after
/// `limit`; returns the last body.
fn wait_for_stats(
    api: &support::api::Api,
    what: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let stats = api.get("/api/stats");
        if done(&stats) {
            return stats;
        }
        assert!(
            start.elapsed() < limit,
            "not {what} within {limit:?}: {}",
            stats["store"]
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn agent_killed_in_an_alert_storm_restarts_with_every_served_alert_closed() {
    let test = "agent_killed_in_an_alert_storm_restarts_with_every_served_alert_closed";
    if !support::privileged(test) || !support::have_tool(test, "python3") {
        return;
    }
    let net = Topology::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("nta.redb");
    let config = config_file(dir.path(), STORM_CONFIG);
    let args = [
        "--db",
        db.to_str().expect("UTF-8 path"),
        "--config",
        config.to_str().expect("UTF-8 path"),
    ];
    let mut agent = start_agent(&net, &args);
    let api = support::api::Api::new(&net.victim);

    // 300 new sources a second for up to 40 s: the storm outlives the kill
    // and goes on while the agent starts again.
    let _storm = storm(&net, 0, 12_000, 300, Duration::from_secs(40));
    let start = Instant::now();
    let mut served = BTreeSet::new();
    while served.len() < 1000 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "only {} alerts served in 30 s:\n{}",
            served.len(),
            alert_log(&agent)
        );
        let page = api.get("/api/alerts?limit=1000");
        served.extend(ids(&page));
        thread::sleep(Duration::from_millis(20));
    }
    let open_before = api.get("/api/stats")["open_incidents"].clone();
    let status = agent.stop(libc::SIGKILL, Duration::from_secs(10));
    let killed_after = start.elapsed();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    let logged = logged_openings(&agent.log());
    println!(
        "killed with SIGKILL {} into the storm: {} alert ids served by the API, {} opened \
         per the log, {open_before} incidents open",
        ms(killed_after),
        served.len(),
        logged.len()
    );

    // The same interface and store: nothing left behind blocks either.
    let restart = Instant::now();
    let mut again = start_agent(&net, &args);
    let started_in = restart.elapsed();
    again.wait_for_log(
        "Closed incidents left open by the previous run",
        Duration::from_secs(5),
    );
    let stale = again.log().contains("Replaced a stale nta program");
    for id in &served {
        let alert = api.get(&format!("/api/alerts/{id}"));
        assert_eq!(
            alert["state"], "closed",
            "alert {id} after the restart: {alert}"
        );
        assert!(alert["closed_at"].is_string(), "alert {id}: {alert}");
    }
    let newest = *served.last().expect("some alerts");
    // Detection goes on under the same storm: new alerts, new ids.
    let deadline = Instant::now() + Duration::from_secs(15);
    let fresh = loop {
        let page = api.get("/api/alerts?limit=10");
        if let Some(id) = ids(&page).into_iter().find(|id| *id > newest) {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "no new alert after the restart:\n{}",
            alert_log(&again)
        );
        thread::sleep(Duration::from_millis(50));
    };
    println!(
        "restarted in {} (attached{}, store opened and repaired, API up); all {} served ids \
         found closed; new alert #{fresh} after the restart",
        ms(started_in),
        if stale {
            ", replacing a stale program"
        } else {
            ""
        },
        served.len()
    );
}

/// A tmpfs the test mounts, unmounted on drop even when the test fails.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("mount point");
        let path = dir.path().to_str().expect("UTF-8 path").to_owned();
        support::netns::run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "nta-test",
                &path,
            ],
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `name` until the filesystem is full; returns its size.
    fn fill(&self, name: &str) -> u64 {
        let mut file = fs::File::create(self.path().join(name)).expect("filler");
        let chunk = vec![0xa5u8; 64 * 1024];
        let mut written = 0u64;
        // Bounded by the tmpfs's size, which the test chose small.
        while file.write_all(&chunk).is_ok() {
            written += chunk.len() as u64;
        }
        let _ = file.sync_all();
        written
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let path = self.dir.path();
        let unmounted = Command::new("umount")
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (an agent not yet reaped): detach it now, gone once
            // the last user closes it.
            let _ = Command::new("umount").arg("-l").arg(path).status();
        }
    }
}

#[test]
fn a_full_store_disk_loses_no_alert_and_writing_resumes_when_space_is_freed() {
    let test = "a_full_store_disk_loses_no_alert_and_writing_resumes_when_space_is_freed";
    if !support::privileged(test) || !support::have_tool(test, "python3") {
        return;
    }
    let net = Topology::new();
    // Locals drop in reverse order: the agent (and its open store) before
    // the tmpfs, the tmpfs before the namespaces.
    let disk = Tmpfs::mount("16m");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = disk.path().join("nta.redb");
    let config = config_file(dir.path(), STORM_CONFIG);
    let mut agent = start_agent(
        &net,
        &[
            "--db",
            db.to_str().expect("UTF-8 path"),
            "--config",
            config.to_str().expect("UTF-8 path"),
        ],
    );
    let api = support::api::Api::new(&net.victim);

    // Before: a few alerts, written.
    let (status, _) = storm(&net, 0, 50, 100, Duration::from_secs(5)).wait(Duration::from_secs(15));
    assert!(status.success());
    let stats = wait_for_stats(&api, "50 alerts stored", Duration::from_secs(10), |s| {
        s["store"]["ok"] == true
            && api.get("/api/alerts?limit=1000")["alerts"]
                .as_array()
                .map_or(0, Vec::len)
                >= 50
    });
    assert_eq!(stats["store"]["failed_writes"], 0, "{}", stats["store"]);

    // The disk fills up; a storm goes on: new alerts need new pages.
    let filled = disk.fill("filler");
    let mut attack = storm(&net, 1000, 3000, 150, Duration::from_secs(20));
    let full_at = Instant::now();
    let stats = wait_for_stats(
        &api,
        "reporting the failure",
        Duration::from_secs(20),
        |s| s["store"]["ok"] == false,
    );
    let failing_after = full_at.elapsed();
    let error = stats["store"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("No space left on device"),
        "{}",
        stats["store"]
    );
    assert!(stats["store"]["since"].is_string(), "{}", stats["store"]);

    // Meanwhile: detection goes on, the API answers, the log says it once.
    let mut slowest = Duration::ZERO;
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(5) {
        for path in [
            "/api/stats",
            "/api/alerts?limit=100",
            "/api/alerts?kind=volumetric",
        ] {
            let asked = Instant::now();
            let answer = api.try_get(path).unwrap_or_else(|e| panic!("{path}: {e}"));
            slowest = slowest.max(asked.elapsed());
            assert_eq!(
                answer.status, 200,
                "GET {path} while the disk is full: {}",
                answer.body
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
    let during = api.get("/api/stats");
    let store = &during["store"];
    assert_eq!(store["ok"], false, "{store}");
    assert!(
        store["failed_writes"].as_u64().unwrap_or(0) >= 2,
        "retried: {store}"
    );
    assert!(
        store["backlog"].as_u64().unwrap_or(0) > 0,
        "alerts wait: {store}"
    );
    assert_eq!(store["dropped"], 0, "{store}");
    let metrics = api.get_text("/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("nta_store_write_failures_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
    let log = agent.log();
    let reports = log.matches("Failed to write to the store").count();
    assert_eq!(
        reports,
        1,
        "once per run of failures:\n{}",
        alert_log(&agent)
    );
    let opened_while_full: BTreeSet<u64> = logged_openings(&log)
        .into_iter()
        .filter(|id| {
            api.try_get(&format!("/api/alerts/{id}"))
                .is_ok_and(|r| r.status == 404)
        })
        .collect();
    assert!(
        !opened_while_full.is_empty(),
        "no alert waits for the disk:\n{}",
        alert_log(&agent)
    );
    println!(
        "disk full ({} KiB filler): failure reported {} after, {} failed writes, {} alerts \
         waiting, {} detected meanwhile and not yet stored; slowest API answer {}",
        filled / 1024,
        ms(failing_after),
        store["failed_writes"],
        store["backlog"],
        opened_while_full.len(),
        ms(slowest)
    );

    // Space freed: the backlog is written, the log says so.
    fs::remove_file(disk.path().join("filler")).expect("removing the filler");
    let freed = Instant::now();
    let stats = wait_for_stats(&api, "writing again", Duration::from_secs(10), |s| {
        s["store"]["ok"] == true && s["store"]["backlog"] == 0
    });
    let resumed_after = freed.elapsed();
    agent.wait_for_log("Store writable again", Duration::from_secs(5));
    for id in &opened_while_full {
        let alert = api
            .try_get(&format!("/api/alerts/{id}"))
            .unwrap_or_else(|e| panic!("alert {id}: {e}"));
        assert_eq!(
            alert.status, 200,
            "alert {id} opened while the disk was full: {}",
            alert.body
        );
    }
    let (status, _) = attack.wait(Duration::from_secs(30));
    assert!(status.success());
    println!(
        "space freed: writing again {} later; all {} alerts of the outage stored; store {}",
        ms(resumed_after),
        opened_while_full.len(),
        stats["store"]
    );
}

/// GETs `/api/stats` and `/api/alerts` every 100 ms for `period`; each
/// must answer 200 within a second. Returns the slowest and the count.
fn api_stays_responsive(api: &support::api::Api, period: Duration) -> (Duration, usize) {
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut requests = 0;
    while start.elapsed() < period {
        for path in ["/api/stats", "/api/alerts?limit=100"] {
            let asked = Instant::now();
            let answer = api
                .try_get(path)
                .unwrap_or_else(|e| panic!("{path} under the flood: {e}"));
            let took = asked.elapsed();
            assert_eq!(answer.status, 200, "{path}: {}", answer.body);
            assert!(
                took < Duration::from_secs(1),
                "{path} took {} under the flood",
                ms(took)
            );
            slowest = slowest.max(took);
            requests += 1;
        }
        thread::sleep(Duration::from_millis(100));
    }
    (slowest, requests)
}

#[test]
fn a_payload_flood_overruns_the_sample_ring_and_the_api_stays_responsive() {
    let test = "a_payload_flood_overruns_the_sample_ring_and_the_api_stays_responsive";
    if !support::privileged(test) || !support::have_tool(test, "hping3") {
        return;
    }
    let net = Topology::new();
    let dir = tempfile::tempdir().expect("temp dir");
    // No rate cap to speak of: every payload to port 80 is copied, far
    // more than the agent's queue holds.
    let config = config_file(dir.path(), "[sampling]\nmax_per_sec = 10000000\n");
    let agent = start_agent(&net, &["--config", config.to_str().expect("UTF-8 path")]);
    let api = support::api::Api::new(&net.victim);
    let before = api.get("/api/stats");

    let flood_secs = 9;
    let args = [
        "hping3",
        "-A",
        "-p",
        "80",
        "-d",
        "1200",
        "--flood",
        VICTIM_ADDR,
    ];
    let mut floods: Vec<Spawned> = (0..2)
        .map(|_| Spawned::start(&net.attacker, Duration::from_secs(flood_secs), &args))
        .collect();
    let (slowest, requests) = api_stays_responsive(&api, Duration::from_secs(5));
    let first = api.get("/api/stats");
    let queue_lost = first["samples_lost"].as_u64().unwrap_or(0);
    let ring_first = first["totals"]["samples_lost"].as_u64().unwrap_or(0);

    // The agent reads the ring faster than two hping3s fill it, so its own
    // queue overflows, not the ring. A stalled agent (here SIGSTOP, for
    // half a second; the ring holds ~75 ms of this flood) lets the ring
    // overrun, which the kernel counts.
    let pid = agent.pid().expect("agent running") as i32;
    // SAFETY: signals to the agent this test started, still its child.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    thread::sleep(Duration::from_millis(500));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let (slowest_after, requests_after) = api_stays_responsive(&api, Duration::from_secs(2));

    for flood in &mut floods {
        let (status, out) = flood.wait(Duration::from_secs(10));
        assert_eq!(
            status.code(),
            Some(124),
            "hping3 ended early ({status}):\n{out}"
        );
    }
    thread::sleep(Duration::from_millis(1500));

    let stats = api.get("/api/stats");
    let totals = &stats["totals"];
    let lost = stats["samples_lost"].as_u64().unwrap_or(0);
    let ring_lost = totals["samples_lost"].as_u64().unwrap_or(0);
    let context = || format!("totals {totals}; agent:\n{}", alert_log(&agent));
    assert!(
        queue_lost > 0,
        "no samples lost under the flood; {}",
        context()
    );
    assert!(
        ring_lost > ring_first,
        "the ring did not overrun; {}",
        context()
    );
    assert!(lost >= ring_lost, "samples_lost {lost}; {}", context());
    println!(
        "2 × hping3 -A -d 1200 --flood to port 80 for {flood_secs} s: {} payload packets, {} \
         samples taken; {queue_lost} lost in the first 5 s ({ring_first} of them in the kernel \
         ring), then {} lost in the ring during a 500 ms SIGSTOP of the agent; \
         {lost} lost in all, {} capped; API: {requests} requests under the flood, slowest \
         {}, {requests_after} after the stall, slowest {}",
        totals["tcp_packets"].as_u64().unwrap_or(0)
            - before["totals"]["tcp_packets"].as_u64().unwrap_or(0),
        totals["samples_taken"],
        ring_lost - ring_first,
        totals["samples_capped"],
        ms(slowest),
        ms(slowest_after)
    );
}
