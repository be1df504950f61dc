//! Store and API benchmarks: how fast alerts go into redb, and how fast
//! `GET /api/alerts` answers over a million of them under concurrent load;
//! the same for flow records and `GET /api/flows`.
//! Ignored tests named `bench_`; `cargo xtask bench` runs them in release.
//! They need no privileges: files in a temp dir, HTTP on loopback.

mod support;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{IpAddr, SocketAddr, TcpStream},
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use jiff::{SignedDuration, Timestamp};
use nta_agent::{
    alert::{Alert, AlertKind, AlertState, Count, DetectedBy, Evidence, ScanRule, fixtures},
    api::{self, ApiState, auth::Auth},
    flows::{FlowRecord, Reason},
    payload::AppProto,
    stats::LiveView,
    store::Store,
};
use support::figures::{Target, record};

/// Alerts the API benchmark's store holds.
const MILLION: u64 = 1_000_000;
/// One alert in this many is a DNS tunnel: a filter that matches rarely.
const RARE_EVERY: u64 = 100_000;

/// A realistic alert: the kinds in the proportions a busy sensor sees
/// (mostly volumetric and port scans), with evidence as the detectors fill
/// it (top ports of a scan, top sources of a flood), ~0.5–1 KB of JSON.
fn alert(id: u64) -> Alert {
    let at = Timestamp::from_second(1_767_225_600 + id as i64).unwrap_or(Timestamp::UNIX_EPOCH);
    let src = format!("198.18.{}.{}", (id >> 8) % 256, id % 256)
        .parse()
        .expect("an address");
    let (kind, evidence) = if id.is_multiple_of(RARE_EVERY) {
        (
            AlertKind::DnsTunnel,
            Evidence {
                unit: "subdomains".into(),
                detected_by: DetectedBy::Payload,
                domain: Some("tunnel.example".into()),
                unique_subdomains: Some(80),
                query: Some("aGVsbG8gd29ybGQgaGVsbG8.tunnel.example".into()),
                ..Evidence::default()
            },
        )
    } else {
        match id % 4 {
            0 => (
                AlertKind::PortScan,
                Evidence {
                    threshold: 15.0,
                    unit: "ports".into(),
                    window_secs: 1.0,
                    distinct_ports: Some(1000),
                    rules: vec![ScanRule::Fast, ScanRule::Weighted],
                    top_ports: (0..10)
                        .map(|p| Count {
                            value: 20 + p,
                            packets: 3,
                        })
                        .collect(),
                    detected_by: DetectedBy::Kernel,
                    ..Evidence::default()
                },
            ),
            1 => (
                AlertKind::SynFlood,
                Evidence {
                    threshold: 1000.0,
                    unit: "SYN/s".into(),
                    window_secs: 1.0,
                    distinct_sources: Some(5000),
                    top_ports: vec![Count {
                        value: 80,
                        packets: 90_000,
                    }],
                    top_sources: (0..10)
                        .map(|i| Count {
                            value: format!("198.19.0.{i}").parse().expect("an address"),
                            packets: 900,
                        })
                        .collect(),
                    detected_by: DetectedBy::Kernel,
                    ..Evidence::default()
                },
            ),
            _ => (
                AlertKind::Volumetric,
                Evidence {
                    threshold: 1000.0,
                    unit: "UDP packets/s".into(),
                    window_secs: 1.0,
                    class: Some("udp".into()),
                    detected_by: DetectedBy::Kernel,
                    ..Evidence::default()
                },
            ),
        }
    };
    Alert {
        state: AlertState::Closed,
        src: Some(src),
        first_seen: at,
        last_seen: at + SignedDuration::from_secs(30),
        closed_at: Some(at + SignedDuration::from_secs(40)),
        packets: 120_000,
        peak_rate: 4000.0,
        message: format!("{kind} from {src}: 4000 packets/s (threshold 1000)"),
        evidence,
        ..fixtures::alert(id, kind)
    }
}

/// Stores `total` alerts from id 1, `batch` per transaction, stopping early
/// after `limit`; the alerts stored and the rate.
fn insert(store: &Store, total: u64, batch: u64, limit: Duration) -> (u64, f64) {
    let start = Instant::now();
    let mut next = 1;
    while next <= total && start.elapsed() < limit {
        let alerts: Vec<Alert> = (next..(next + batch).min(total + 1)).map(alert).collect();
        store.put_alerts(&alerts).expect("storing alerts");
        next += alerts.len() as u64;
    }
    let stored = next - 1;
    (stored, stored as f64 / start.elapsed().as_secs_f64())
}

#[test]
#[ignore = "benchmark: about 20 s; cargo xtask bench runs it"]
fn bench_store_inserts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let limit = Duration::from_secs(10);
    for (batch, total, name) in [
        (1, 5_000, "one alert per transaction"),
        (100, 200_000, "100 alerts per transaction"),
    ] {
        let store = Store::open(&dir.path().join(format!("batch-{batch}.redb"))).expect("store");
        let (stored, rate) = insert(&store, total, batch, limit);
        record(
            "store",
            &format!("inserts, {name}"),
            rate,
            "alerts/s",
            None,
            &format!(
                "Store::put_alerts, durable commit (fsync) per transaction, {stored} alerts into \
                 a new file on the test machine's disk ({} MB after)",
                store.size_bytes() / 1_000_000
            ),
        );
    }
}

/// Latencies of `GET path` from `clients` threads, each on its own
/// keep-alive connection, for `period`.
fn load(addr: SocketAddr, path: &str, clients: usize, period: Duration) -> Vec<Duration> {
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let path = path.to_owned();
            thread::spawn(move || {
                let mut client = Client::connect(addr);
                let start = Instant::now();
                let mut times = Vec::new();
                while start.elapsed() < period {
                    let asked = Instant::now();
                    let (status, body) = client.get(&path);
                    times.push(asked.elapsed());
                    assert_eq!(
                        status,
                        200,
                        "GET {path}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                times
            })
        })
        .collect();
    let mut all: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("a client thread"))
        .collect();
    all.sort();
    all
}

/// The `q` quantile of sorted latencies, in ms.
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

/// A minimal HTTP/1.1 client on one keep-alive connection (warp's JSON
/// replies carry a content-length).
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connecting to the API");
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        Client {
            reader: BufReader::new(stream.try_clone().expect("a second handle")),
            writer: stream,
        }
    }

    fn get(&mut self, path: &str) -> (u16, Vec<u8>) {
        write!(self.writer, "GET {path} HTTP/1.1\r\nHost: nta\r\n\r\n").expect("sending");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("a status");
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("a header");
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().expect("a length");
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).expect("the body");
        (status, body)
    }
}

/// The median and the 99th percentile of `times`, the latter against
/// `target_ms`.
fn record_latency(what: &str, times: &[Duration], target_ms: f64, note: &str) {
    let median = quantile_ms(times, 0.5);
    record("api", &format!("{what}, median"), median, "ms", None, note);
    let p99 = quantile_ms(times, 0.99);
    let target = Some(Target::AtMost(target_ms));
    record("api", &format!("{what}, p99"), p99, "ms", target, note);
}

/// The API over `store` on a loopback port, on a runtime of its own.
struct Server {
    addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    fn start(store: Store) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let state = ApiState::new(Arc::new(store), LiveView::default(), Auth::open());
        let listener = runtime
            .block_on(api::bind("127.0.0.1:0".parse().expect("an address")))
            .expect("binding");
        let addr = listener.local_addr().expect("the address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = runtime.spawn(api::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            runtime,
            stop,
            task,
        }
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.runtime.block_on(self.task);
    }
}

#[test]
#[ignore = "benchmark: about 2 minutes (fills a store with a million alerts); cargo xtask bench runs it"]
fn bench_api_alerts_with_a_million() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("nta.redb")).expect("store");
    let start = Instant::now();
    let (stored, rate) = insert(&store, MILLION, 10_000, Duration::from_secs(600));
    let filled_in = start.elapsed();
    assert_eq!(stored, MILLION, "the fill ran out of time");
    let fill_note = format!(
        "{MILLION} alerts in batches of 10 000 in {:.1} s ({rate:.0} alerts/s), file {} MB",
        filled_in.as_secs_f64(),
        store.size_bytes() / 1_000_000
    );
    println!("{fill_note}");
    record(
        "store",
        "fill, 10 000 alerts per transaction",
        rate,
        "alerts/s",
        None,
        &fill_note,
    );

    let server = Server::start(store);
    let addr = server.addr;

    let clients = 8;
    let period = Duration::from_secs(10);
    let cases = [
        ("default page (100 newest)", "/api/alerts".to_owned()),
        (
            "kind=port_scan (1 in 4)",
            "/api/alerts?kind=port_scan".to_owned(),
        ),
        (
            "kind=dns_tunnel (1 in 100 000)",
            "/api/alerts?kind=dns_tunnel".to_owned(),
        ),
        (
            "cursor=500000 (deep page)",
            "/api/alerts?cursor=500000".to_owned(),
        ),
    ];
    for (name, path) in cases {
        let mut client = Client::connect(addr);
        let (status, body) = client.get(&path);
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        let page: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        let listed = page["alerts"].as_array().map_or(0, Vec::len);
        // One client alone: the request's own cost, without queueing.
        let alone = load(addr, &path, 1, Duration::from_secs(2));
        let times = load(addr, &path, clients, period);
        let note = format!(
            "GET {path}: {listed} alerts a page ({} KB), next {}; {clients} clients on \
             keep-alive connections for {} s, {} requests ({:.0}/s) on {} CPUs; one client \
             alone: median {:.2} ms; store of {MILLION} alerts",
            body.len() / 1000,
            page["next"],
            period.as_secs(),
            times.len(),
            times.len() as f64 / period.as_secs_f64(),
            thread::available_parallelism().map_or(0, |n| n.get()),
            quantile_ms(&alone, 0.5),
        );
        record_latency(&format!("/api/alerts {name}"), &times, 10.0, &note);
    }
    server.stop();
}

/// A flow record of a busy sensor: 1 000 clients of 50 servers, ports
/// varying, one flow in [`RARE_EVERY`] from a rare host.
fn flow_record(i: u64, at: Timestamp) -> FlowRecord {
    let client = if i.is_multiple_of(RARE_EVERY) {
        IpAddr::from([203, 0, 113, 7])
    } else {
        IpAddr::from([10, 1, (i % 1000 / 250) as u8, (i % 250) as u8])
    };
    let server = IpAddr::from([10, 9, 0, (i % 50) as u8]);
    FlowRecord {
        client: (client, 30_000 + (i % 30_000) as u16),
        server: (server, [80, 443, 53, 8888][(i % 4) as usize]),
        proto: if i % 4 == 2 { 17 } else { 6 },
        pkts_toserver: 6 + i % 10,
        pkts_toclient: 4 + i % 7,
        bytes_toserver: 500 + i % 1000,
        bytes_toclient: 1200 + i % 5000,
        start: at,
        end: at + SignedDuration::from_millis((i % 5000) as i64),
        tcp_flags_toserver: 0x1b,
        tcp_flags_toclient: 0x1b,
        reason: Reason::Timeout,
        app_proto: Some(
            [AppProto::Http, AppProto::Tls, AppProto::Dns, AppProto::Http][(i % 4) as usize],
        ),
        alerts: Vec::new(),
    }
}

#[test]
#[ignore = "benchmark: about 2 minutes (fills a store with a million flows); cargo xtask bench runs it"]
fn bench_api_flows_with_a_million() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("nta.redb")).expect("store");
    let start = Instant::now();
    let base = Timestamp::now() - SignedDuration::from_hours(24);
    for batch in 0..MILLION / 10_000 {
        let records: Vec<FlowRecord> = (batch * 10_000..(batch + 1) * 10_000)
            .map(|i| flow_record(i, base + SignedDuration::from_millis(i as i64 * 80)))
            .collect();
        store.put_flows(&records).expect("storing flows");
    }
    let filled_in = start.elapsed();
    let fill_note = format!(
        "{MILLION} flows in batches of 10 000 in {:.1} s ({:.0} flows/s), file {} MB",
        filled_in.as_secs_f64(),
        MILLION as f64 / filled_in.as_secs_f64(),
        store.size_bytes() / 1_000_000
    );
    println!("{fill_note}");
    record(
        "store",
        "fill, 10 000 flows per transaction",
        MILLION as f64 / filled_in.as_secs_f64(),
        "flows/s",
        None,
        &fill_note,
    );

    let server = Server::start(store);
    let addr = server.addr;
    let cases = [
        ("default page (100 newest)", "/api/flows".to_owned()),
        (
            "host=10.1.0.7 (1 in 1 000)",
            "/api/flows?host=10.1.0.7".to_owned(),
        ),
        (
            "host=203.0.113.7 (1 in 100 000)",
            "/api/flows?host=203.0.113.7".to_owned(),
        ),
        (
            "app_proto=tls&port=443 (1 in 4)",
            "/api/flows?app_proto=tls&port=443".to_owned(),
        ),
        (
            "cursor=500000 (deep page)",
            "/api/flows?cursor=500000".to_owned(),
        ),
    ];
    for (name, path) in cases {
        let mut client = Client::connect(addr);
        let (status, body) = client.get(&path);
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        let page: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        let listed = page["flows"].as_array().map_or(0, Vec::len);
        assert!(listed > 0, "{path} listed nothing");
        let times = load(addr, &path, 1, Duration::from_secs(3));
        let note = format!(
            "GET {path}: {listed} flows a page ({} KB), next {}; one client for 3 s, {} requests; store of {MILLION} flows",
            body.len() / 1000,
            page["next"],
            times.len(),
        );
        record_latency(&format!("/api/flows {name}"), &times, 100.0, &note);
    }
    server.stop();
}

/// A host with more flows than one request reads: `host_traffic` and
/// `top_hosts` each stop at `MAX_FLOWS_SCANNED` and say so, and how long
/// that bound takes is what a request for a busy host costs.
#[test]
#[ignore = "benchmark: about 10 s; cargo xtask bench runs it"]
fn bench_host_and_top_read_a_bounded_number_of_flows() {
    use nta_agent::store::{HostQuery, MAX_FLOWS_SCANNED, TopBy, TopQuery};
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("flows.redb")).expect("store");
    let start = Timestamp::from_second(1_767_225_600).expect("a time");
    let total = MAX_FLOWS_SCANNED as u64 + 20_000;
    let server = "10.0.0.1".parse().expect("an address");
    for first in (0..total).step_by(10_000) {
        let flows: Vec<FlowRecord> = (first..(first + 10_000).min(total))
            .map(|i| {
                let at = start + SignedDuration::from_millis(i as i64);
                FlowRecord {
                    client: (
                        format!("198.18.{}.{}", (i >> 8) % 256, i % 256)
                            .parse()
                            .expect("an address"),
                        40_000,
                    ),
                    server: (server, 80),
                    proto: 6,
                    pkts_toserver: 5,
                    pkts_toclient: 4,
                    bytes_toserver: 500,
                    bytes_toclient: 4000,
                    start: at,
                    end: at + SignedDuration::from_millis(10),
                    tcp_flags_toserver: 0x1b,
                    tcp_flags_toclient: 0x1b,
                    reason: Reason::Timeout,
                    app_proto: Some(AppProto::Http),
                    alerts: Vec::new(),
                }
            })
            .collect();
        store.put_flows(&flows).expect("storing flows");
    }
    let (since, until) = (start, start + SignedDuration::from_hours(1));
    let timed = Instant::now();
    let host = store
        .host_traffic(&HostQuery {
            host: server,
            since,
            until,
            max_scanned: MAX_FLOWS_SCANNED,
        })
        .expect("host traffic");
    let host_ms = timed.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(host.scanned, MAX_FLOWS_SCANNED as u64);
    assert!(host.truncated);
    let timed = Instant::now();
    let top = store
        .top_hosts(&TopQuery {
            since,
            until,
            by: TopBy::Bytes,
            limit: 10,
            max_scanned: MAX_FLOWS_SCANNED,
        })
        .expect("top hosts");
    let top_ms = timed.elapsed().as_secs_f64() * 1000.0;
    assert!(top.truncated);
    for (name, ms) in [("host traffic", host_ms), ("top hosts", top_ms)] {
        record(
            "store",
            &format!("{name}, {MAX_FLOWS_SCANNED} flows read"),
            ms,
            "ms",
            Some(Target::AtMost(1000.0)),
            &format!("one request at the scan bound, over {total} stored flows"),
        );
    }
}
