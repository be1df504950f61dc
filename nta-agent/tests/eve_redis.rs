//! EVE into a real Redis (Debian's `redis-server`, started by each test on
//! a unix socket in a directory of its own): a list and a stream get every
//! event, each naming the sensor; Redis killed in the middle of a storm
//! costs the events sent while it is down — counted, never a stall — and
//! they flow again once it is back; `nta-agent read` with `[eve] redis`
//! puts a capture's alert in a stream, as a user would set it up.

mod support;

use std::{
    fs,
    net::Ipv4Addr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use jiff::Timestamp;
use nta_agent::{
    config::RedisMode,
    eve::{EveOutputs, EveWriter, SinkSpec, stats},
};
use nta_common::GlobalCounters;
use serde_json::Value;
use support::captures::{pcap_header, pcap_record};

/// nta's rule "cmd.exe in User-Agent" (default.rules).
const SID_CMD_EXE_USER_AGENT: u64 = 1_000_001;

/// A `redis-server` of the test's own, without persistence, on a unix
/// socket; killed when dropped.
struct Redis {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Redis {
    /// `None` (failing under CI) when `redis-server` is not installed.
    fn start() -> Option<Redis> {
        if !support::have_tool("redis-server") {
            return None;
        }
        let mut redis = Redis {
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        redis.spawn();
        Some(redis)
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    fn spawn(&mut self) {
        let _ = fs::remove_file(self.socket());
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no"])
            .arg("--unixsocket")
            .arg(self.socket())
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = self.try_connection()
                && redis::cmd("PING").query::<String>(&mut c).is_ok()
            {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn try_connection(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url())?.get_connection_with_timeout(Duration::from_secs(2))
    }

    fn connection(&self) -> redis::Connection {
        self.try_connection().expect("connecting to redis-server")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn redis_sink(redis: &Redis, mode: RedisMode, key: &str) -> SinkSpec {
    SinkSpec::Redis {
        url: redis.url(),
        mode,
        key: key.into(),
    }
}

fn outputs(sinks: Vec<SinkSpec>) -> EveOutputs {
    EveOutputs {
        sinks,
        types: vec!["alert", "flow", "stats"],
        host: Some("edge-7".into()),
    }
}

/// A stats event whose `uptime` numbers it.
fn numbered(n: u64) -> nta_agent::eve::Event {
    stats(&GlobalCounters::ZERO, n, 0, Timestamp::UNIX_EPOCH)
}

fn uptime(json: &[u8]) -> u64 {
    let v: Value = serde_json::from_slice(json).expect("an EVE event");
    assert_eq!(v["host"], "edge-7");
    v["stats"]["uptime"].as_u64().expect("uptime")
}

/// A stream's entries as XRANGE gives them: id, and field–value pairs.
type Entries = Vec<(String, Vec<(String, Vec<u8>)>)>;

/// The `eve` field of every entry of stream `key`, oldest first.
fn stream(c: &mut redis::Connection, key: &str) -> Vec<Vec<u8>> {
    let entries: Entries = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query(c)
        .expect("XRANGE");
    entries
        .into_iter()
        .map(|(_, fields)| {
            let (name, value) = fields.into_iter().next().expect("one field");
            assert_eq!(name, "eve");
            value
        })
        .collect()
}

/// Polls `done` for up to 20 s.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    support::wait_for(what, Duration::from_secs(20), || done().then_some(()));
}

#[test]
fn a_list_and_a_stream_get_every_event_naming_the_sensor() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let mut w = EveWriter::start(&outputs(vec![
        redis_sink(&redis, RedisMode::List, "eve-list"),
        redis_sink(&redis, RedisMode::Stream, "eve-stream"),
        redis_sink(&redis, RedisMode::Rpush, "eve-rpush"),
    ]))
    .expect("starting the sinks");
    for n in 0..1000 {
        w.send(numbered(n));
    }
    let sinks = w.close().expect("closing");
    assert!(
        sinks.iter().all(|s| s.written == 1000 && s.dropped == 0),
        "{sinks:?}"
    );

    let mut c = redis.connection();
    // LPUSH, Suricata's `list`: the newest first.
    let list: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg("eve-list")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .unwrap();
    let got: Vec<u64> = list.iter().map(|e| uptime(e)).collect();
    assert_eq!(got, (0..1000).rev().collect::<Vec<_>>());
    let rpush: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg("eve-rpush")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .unwrap();
    let got: Vec<u64> = rpush.iter().map(|e| uptime(e)).collect();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
    let got: Vec<u64> = stream(&mut c, "eve-stream")
        .iter()
        .map(|e| uptime(e))
        .collect();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
}

/// Redis killed in the middle of a storm, then started again: sending
/// never waits, what could not be written is counted, every event is
/// either written or counted as dropped, and events flow again once Redis
/// is back.
#[test]
fn redis_down_mid_storm_costs_counted_events_never_a_stall() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let mut w = EveWriter::start(&outputs(vec![
        redis_sink(&redis, RedisMode::Stream, "storm"),
        // A second sink, a file: it gets every event throughout.
        SinkSpec::File(redis.dir.path().join("eve.json")),
    ]))
    .expect("starting the sinks");
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut sent = 0u64;
    let mut killed = false;
    let mut restarted = false;
    while started.elapsed() < Duration::from_secs(4) {
        let t = Instant::now();
        w.send(numbered(sent));
        slowest = slowest.max(t.elapsed());
        sent += 1;
        if !killed && started.elapsed() > Duration::from_secs(1) {
            redis.kill();
            killed = true;
        }
        if !restarted && started.elapsed() > Duration::from_secs(2) {
            redis.spawn();
            restarted = true;
        }
        // A storm of some 20 000 events a second.
        if sent.is_multiple_of(200) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    // Once back, the sink reconnects (backoff at most 5 s) and drains.
    let mut c = redis.connection();
    wait_for("events in the new Redis", || {
        redis::cmd("XLEN")
            .arg("storm")
            .query::<u64>(&mut c)
            .unwrap_or(0)
            > 0
    });
    let queued_dropped = w.dropped();
    let sinks = w.close().expect("closing");
    let s = &sinks[0];
    println!(
        "storm: {sent} events in 4 s, Redis down from 1 s to 2 s: {} written, {} dropped; \
         the file's sink {} written; slowest send {slowest:?}",
        s.written, s.dropped, sinks[1].written
    );
    assert_eq!(queued_dropped, 0, "the writer's own queue kept up");
    assert!(s.dropped > 0, "Redis was down for a second: {s:?}");
    assert_eq!(
        s.written + s.dropped,
        sent,
        "every event written or counted: {s:?}"
    );
    let in_redis = stream(&mut c, "storm");
    assert!(
        !in_redis.is_empty() && in_redis.len() as u64 <= s.written,
        "{} in Redis, {s:?}",
        in_redis.len()
    );
    // Those written after the restart are the storm's latest, in order.
    let got: Vec<u64> = in_redis.iter().map(|e| uptime(e)).collect();
    assert!(got.windows(2).all(|p| p[0] < p[1]), "in order");
    assert_eq!(got.last(), Some(&(sent - 1)));
    assert!(
        slowest < Duration::from_millis(100),
        "a send waited {slowest:?}"
    );
    let file = &sinks[1];
    assert_eq!(
        (file.written, file.dropped),
        (sent, 0),
        "the file's sink: {file:?}"
    );
}

/// One TCP segment from a client to a web server: an HTTP request whose
/// user agent nta's default rules catch.
fn cmd_exe_capture() -> Vec<u8> {
    let request = b"GET /index.html HTTP/1.1\r\nHost: victim\r\nUser-Agent: cmd.exe\r\n\r\n";
    let mut frame = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(
            Ipv4Addr::new(198, 18, 0, 1).octets(),
            Ipv4Addr::new(198, 18, 0, 2).octets(),
            64,
        )
        .tcp(40_000, 80, 1, 64_240)
        .psh()
        .ack(1)
        .write(&mut frame, request)
        .expect("a frame");
    let mut pcap = pcap_header();
    pcap.extend(pcap_record(1_700_000_000, 0, &frame));
    pcap
}

/// As a user sets it up: a sensor name and a Redis stream in the config
/// file, and `nta-agent read` on a capture.
#[test]
fn read_puts_a_captures_alert_in_the_redis_stream_of_the_config() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let capture = dir.path().join("attack.pcap");
    fs::write(&capture, cmd_exe_capture()).expect("writing the capture");
    let config = dir.path().join("nta.toml");
    fs::write(
        &config,
        format!(
            "sensor_name = \"edge-7\"\n[eve]\nredis = \"{}\"\nredis_mode = \"stream\"\nredis_key = \"nta\"\ntypes = [\"alert\"]\n",
            redis.url()
        ),
    )
    .expect("writing the config");
    support::nta_read(&[
        "--config",
        config.to_str().expect("a UTF-8 path"),
        capture.to_str().expect("a UTF-8 path"),
    ]);
    let mut c = redis.connection();
    let events: Vec<Value> = stream(&mut c, "nta")
        .iter()
        .map(|e| serde_json::from_slice(e).expect("JSON"))
        .collect();
    assert!(
        events
            .iter()
            .all(|e| e["event_type"] == "alert" && e["host"] == "edge-7"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["alert"]["signature_id"] == SID_CMD_EXE_USER_AGENT),
        "{events:?}"
    );
}

/// Two sensors, each named, write into one Redis stream: one watches the
/// victim's side of the link, the other the attacker's; an nmap scan at
/// the victim is an alert from the victim's sensor only, and both send
/// their stats; every event says which sensor it came from.
#[test]
fn two_sensors_share_one_stream_and_their_events_say_which() {
    if !support::privileged_with(&["nmap"]) {
        return;
    }
    let Some(redis) = Redis::start() else {
        return;
    };
    let net = support::netns::Topology::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = |name: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        fs::write(
            &path,
            format!(
                "sensor_name = \"{name}\"\n[eve]\nredis = \"{}\"\nredis_mode = \"stream\"\nredis_key = \"fleet\"\n",
                redis.url()
            ),
        )
        .expect("writing a config");
        path
    };
    let (victim_config, attacker_config) = (config("edge-victim"), config("edge-attacker"));
    let args = |path: &PathBuf| {
        vec![
            "--listen".to_owned(),
            "127.0.0.1:3000".to_owned(),
            "--config".to_owned(),
            path.to_str().expect("a UTF-8 path").to_owned(),
            "--eve-stats-interval".to_owned(),
            "1s".to_owned(),
        ]
    };
    let start = |ns: &str, iface: &str, path: &PathBuf| {
        let args = args(path);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut agent = support::netns::Agent::start(ns, iface, &args);
        agent.wait_for_log("Sensor attached", Duration::from_secs(30));
        agent
    };
    let mut victim = start(&net.victim, &net.victim_if, &victim_config);
    let mut attacker = start(&net.attacker, &net.attacker_if, &attacker_config);
    support::lab::nmap_fast_scan(&net, "1-200");

    let mut c = redis.connection();
    let hosts_of = |events: &[Value], pick: &dyn Fn(&Value) -> bool| {
        let mut hosts: Vec<String> = events
            .iter()
            .filter(|e| pick(e))
            .filter_map(|e| e["host"].as_str().map(str::to_owned))
            .collect();
        hosts.sort();
        hosts.dedup();
        hosts
    };
    let is_scan = |e: &Value| {
        e["event_type"] == "alert" && e["alert"]["metadata"]["nta_kind"][0] == "port_scan"
    };
    let mut events: Vec<Value> = Vec::new();
    wait_for("stats from both sensors and the scan's alert", || {
        events = stream(&mut c, "fleet")
            .iter()
            .map(|e| serde_json::from_slice(e).expect("JSON"))
            .collect();
        hosts_of(&events, &|e| e["event_type"] == "stats").len() == 2
            && !hosts_of(&events, &is_scan).is_empty()
    });
    victim.stop_cleanly(libc::SIGTERM, Duration::from_secs(15));
    attacker.stop_cleanly(libc::SIGTERM, Duration::from_secs(15));
    assert_eq!(
        hosts_of(&events, &|e| e["event_type"] == "stats"),
        vec!["edge-attacker".to_owned(), "edge-victim".to_owned()]
    );
    assert_eq!(
        hosts_of(&events, &is_scan),
        vec!["edge-victim".to_owned()],
        "{events:?}"
    );
    assert!(
        events.iter().all(|e| e["host"].is_string()),
        "every event names its sensor"
    );
}
