//! `GET /metrics`: the live view in the Prometheus text format.
//!
//! Built per scrape from the kernel totals and the agent's counts, which
//! are monotonic already; the registry only formats them.

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use warp::{Filter, Rejection, Reply, http::StatusCode};

use super::{Report, stream::Feed, with_arg};
use crate::{
    alert::{AlertKind, Severity},
    notify::{ChannelReport, NotifyStats},
    stats::LiveStats,
    timings::Timings,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CounterLabel {
    counter: String,
}

/// One of a channel's counts, read from its report.
type ChannelCount = fn(&ChannelReport) -> u64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabel {
    channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutputLabel {
    output: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SensorLabel {
    sensor_name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabels {
    kind: String,
    severity: String,
}

/// What a scrape reads: the report, the latency histograms and the feed's
/// client count.
#[derive(Clone)]
struct Scraped {
    report: Report,
    timings: Timings,
    feed: Feed,
}

pub(super) fn metrics_handler(
    report: Report,
    timings: Timings,
    feed: Feed,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let scraped = Scraped {
        report,
        timings,
        feed,
    };
    warp::path!("metrics")
        .and(warp::get())
        .and(with_arg(scraped))
        .map(|scraped: Scraped| match render(&scraped) {
            Ok(text) => warp::reply::with_header(
                text,
                "content-type",
                "text/plain; version=0.0.4; charset=utf-8",
            )
            .into_response(),
            Err(e) => warp::reply::with_status(
                format!("cannot encode metrics: {e}"),
                StatusCode::INTERNAL_SERVER_ERROR,
            )
            .into_response(),
        })
}

fn counter(value: u64) -> Counter<u64, AtomicU64> {
    let c = Counter::<u64, AtomicU64>::default();
    c.inc_by(value);
    c
}

fn gauge(value: usize) -> Gauge<i64, AtomicI64> {
    let g = Gauge::<i64, AtomicI64>::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    g
}

fn render(state: &Scraped) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("nta");
    register_live(&mut registry, &state.report.live.read());
    register_agent(&mut registry, state);
    register_notifications(&mut registry, &state.report.notify);
    let mut text = String::new();
    encode(&mut text, &registry)?;
    Ok(text)
}

/// The kernel's counters and what the live view counts.
fn register_live(registry: &mut Registry, live: &LiveStats) {
    let kernel = Family::<CounterLabel, Counter<u64, AtomicU64>>::default();
    for (name, value) in &live.totals {
        kernel
            .get_or_create(&CounterLabel {
                counter: name.clone(),
            })
            .inc_by(*value);
    }
    registry.register(
        "kernel",
        "Every XDP program counter since load: packets and bytes by protocol, TCP flags, DNS, fragments, parse failures, events and samples",
        kernel,
    );

    let alerts = Family::<AlertLabels, Counter<u64, AtomicU64>>::default();
    for kind in AlertKind::ALL {
        for severity in [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ] {
            let n = live
                .alerts_opened
                .get(&(kind, severity))
                .copied()
                .unwrap_or(0);
            alerts
                .get_or_create(&AlertLabels {
                    kind: kind.as_str().into(),
                    severity: severity.as_str().into(),
                })
                .inc_by(n);
        }
    }
    registry.register(
        "alerts_opened",
        "Alerts opened since the agent started",
        alerts,
    );

    registry.register(
        "open_incidents",
        "Incidents open now",
        gauge(live.open_incidents),
    );
    registry.register(
        "events_lost",
        "Threshold events lost (kernel ring full or agent queue full)",
        counter(live.events_lost),
    );
    registry.register(
        "samples_lost",
        "Payload samples lost (kernel ring full or agent queue full)",
        counter(live.samples_lost),
    );
    if let Some(ipfix) = &live.ipfix {
        registry.register(
            "ipfix_messages",
            "IPFIX messages sent to the collector",
            counter(ipfix.messages),
        );
        registry.register(
            "ipfix_records",
            "Flow records sent to the IPFIX collector",
            counter(ipfix.records),
        );
        registry.register(
            "ipfix_send_failures",
            "IPFIX messages that could not be sent",
            counter(ipfix.failed),
        );
    }
    if let Some(eve) = &live.eve {
        register_eve(registry, eve);
    }
    registry.register(
        "rules_loaded",
        "Payload rules loaded",
        gauge(live.rules.loaded),
    );
    registry.register(
        "rules_rejected",
        "Payload rules rejected (each logged at start; nta-agent rules check lists them)",
        gauge(live.rules.rejected),
    );
    registry.register(
        "store_write_failures",
        "Store writes (alerts or history) that failed, e.g. on a full or read-only disk",
        counter(live.store.failed_writes),
    );
    registry.register(
        "store_backlog",
        "Alerts waiting in memory for the store to be writable again",
        gauge(live.store.backlog),
    );
}

/// The agent's uptime, store size, latencies and stream clients.
fn register_agent(registry: &mut Registry, state: &Scraped) {
    let uptime = Gauge::<i64, AtomicI64>::default();
    uptime.set(i64::try_from(state.report.live.uptime().as_secs()).unwrap_or(i64::MAX));
    registry.register("uptime_seconds", "Seconds since the agent started", uptime);
    let store = Gauge::<i64, AtomicI64>::default();
    store.set(i64::try_from(state.report.store.size_bytes()).unwrap_or(i64::MAX));
    registry.register("store_bytes", "Size of the redb store on disk", store);
    registry.register(
        "detect_seconds",
        "Time the detectors took on a kernel event, a payload finding or a tick",
        state.timings.detect.clone(),
    );
    registry.register(
        "store_write_seconds",
        "Time a durable store write took: a batch of alerts, or a tick's history",
        state.timings.store.clone(),
    );
    registry.register(
        "stream_clients",
        "Clients connected to the live feed (/api/stream)",
        gauge(state.feed.clients()),
    );
}

/// Each EVE output's counts, and the sensor's name as an info metric.
fn register_eve(registry: &mut Registry, eve: &crate::stats::EveStats) {
    if let Some(host) = &eve.host {
        let info = Family::<SensorLabel, Gauge<i64, AtomicI64>>::default();
        info.get_or_create(&SensorLabel {
            sensor_name: host.clone(),
        })
        .set(1);
        registry.register(
            "sensor",
            "This sensor's name (EVE's host), as a label",
            info,
        );
    }
    registry.register(
        "eve_queue_dropped",
        "EVE events the writer's queue had no room for (no output got them)",
        counter(eve.queue_dropped),
    );
    let written = Family::<OutputLabel, Counter<u64, AtomicU64>>::default();
    let dropped = Family::<OutputLabel, Counter<u64, AtomicU64>>::default();
    let up = Family::<OutputLabel, Gauge<i64, AtomicI64>>::default();
    for o in &eve.outputs {
        let label = OutputLabel {
            output: o.name.clone(),
        };
        written.get_or_create(&label).inc_by(o.written);
        dropped.get_or_create(&label).inc_by(o.dropped);
        up.get_or_create(&label).set(i64::from(o.up));
    }
    registry.register("eve_written", "EVE events written, by output", written);
    registry.register(
        "eve_dropped",
        "EVE events an output could not take or write, by output",
        dropped,
    );
    registry.register("eve_output_up", "Whether an EVE output is connected", up);
}

/// Each notification channel's counts.
fn register_notifications(registry: &mut Registry, notify: &NotifyStats) {
    let channels = notify.report();
    let per_channel: [(&str, &str, ChannelCount); 4] = [
        (
            "notifications_sent",
            "Notifications delivered, by channel",
            |r| r.sent,
        ),
        (
            "notifications_failed",
            "Notifications that failed after every attempt, by channel",
            |r| r.failed,
        ),
        (
            "notifications_retries",
            "Delivery attempts retried after a transient failure, by channel",
            |r| r.retries,
        ),
        (
            "notifications_held",
            "Notifications held back by storm control (or a full queue) and sent as digests, by channel",
            |r| r.held,
        ),
    ];
    for (name, help, value) in per_channel {
        let family = Family::<ChannelLabel, Counter<u64, AtomicU64>>::default();
        for report in &channels {
            family
                .get_or_create(&ChannelLabel {
                    channel: report.channel.into(),
                })
                .inc_by(value(report));
        }
        registry.register(name, help, family);
    }
    registry.register(
        "notifications_dropped",
        "Alert events the notifier's queue had no room for",
        counter(
            notify
                .dropped_events
                .load(std::sync::atomic::Ordering::Relaxed),
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{routes, tests::test_state};

    #[tokio::test]
    async fn metrics_parse_as_prometheus_text_with_the_live_values() {
        let (_dir, state) = test_state();
        state.live.edit(|live| {
            live.totals.insert("tcp_syn".into(), 200);
            live.totals.insert("packets".into(), 400);
            live.alerts_opened
                .insert((AlertKind::SynFlood, Severity::Critical), 2);
            live.open_incidents = 3;
            live.store.failed_writes = 4;
            live.store.backlog = 2;
            live.rules = crate::payload::rules::LoadCounts {
                loaded: 14_441,
                rejected: 10_386,
            };
        });
        let start = std::time::Instant::now();
        crate::timings::observe(&state.timings.detect, &crate::timings::DETECT_TICK, start);
        crate::timings::observe(&state.timings.store, &crate::timings::STORE_ALERTS, start);
        let response = warp::test::request()
            .path("/metrics")
            .reply(&routes(state.clone()))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let ct = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        let text = String::from_utf8(response.body().to_vec()).unwrap();
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .unwrap_or_else(|e| panic!("not Prometheus text: {e}\n{text}"));
        // prometheus-parse predates the `_total` suffix convention: it reads
        // those samples as untyped, which is fine for checking values.
        let number = |v: &prometheus_parse::Value| match v {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(*v),
            _ => None,
        };
        let value = |name: &str, labels: &[(&str, &str)]| {
            scrape
                .samples
                .iter()
                .find(|s| {
                    s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
                })
                .and_then(|s| number(&s.value))
        };
        assert_eq!(
            value("nta_kernel_total", &[("counter", "tcp_syn")]),
            Some(200.0),
            "{text}"
        );
        assert_eq!(
            value("nta_kernel_total", &[("counter", "packets")]),
            Some(400.0)
        );
        assert_eq!(
            value(
                "nta_alerts_opened_total",
                &[("kind", "syn_flood"), ("severity", "critical")]
            ),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            value(
                "nta_alerts_opened_total",
                &[("kind", "port_scan"), ("severity", "low")]
            ),
            Some(0.0)
        );
        assert_eq!(value("nta_open_incidents", &[]), Some(3.0), "{text}");
        for line in [
            r#"nta_detect_seconds_count{stage="tick"} 1"#,
            r#"nta_store_write_seconds_count{stage="alerts"} 1"#,
            "nta_stream_clients 0",
            "nta_store_write_failures_total 4",
            "nta_store_backlog 2",
            "nta_rules_loaded 14441",
            "nta_rules_rejected 10386",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
    }
}
