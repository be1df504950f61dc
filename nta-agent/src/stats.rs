//! What `/api/stats` reports: the live view, refreshed every tick.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard},
    time::{Duration, Instant},
};

use jiff::Timestamp;
use nta_common::Counter;
use serde::Serialize;

use crate::{
    alert::{AlertEvent, AlertKind, Severity},
    config::{Config, Flood, SynFlood, Volumetric},
    export::ExportTotals,
    sensor::AttachedMode,
    source::Dropped,
    store::StoreHealth,
    traffic::{Snapshot, per_sec, port_growth, share, source_growth},
};

/// The one handle on the live view: the run loop writes it through methods
/// named for what happened, the API and the store writer read it.
///
/// A panic while the lock was held leaves at worst a mix of two ticks'
/// values; every access recovers the lock, since showing those beats
/// failing every later request or silently skipping updates.
#[derive(Debug, Clone)]
pub struct LiveView {
    stats: Arc<RwLock<LiveStats>>,
    started: Instant,
}

impl Default for LiveView {
    fn default() -> Self {
        Self::new(LiveStats::default())
    }
}

impl LiveView {
    /// A view starting from `stats`, the agent started now.
    pub fn new(stats: LiveStats) -> Self {
        Self {
            stats: Arc::new(RwLock::new(stats)),
            started: Instant::now(),
        }
    }

    /// The view of a sensor attached to `iface` in `xdp_mode`, started now,
    /// showing the detectors' thresholds.
    pub fn attached(iface: &str, xdp_mode: AttachedMode, thresholds: ThresholdView) -> Self {
        Self::new(LiveStats {
            iface: iface.to_owned(),
            xdp_mode: Some(xdp_mode),
            started_at: Some(Timestamp::now()),
            thresholds,
            ..LiveStats::default()
        })
    }

    /// A tick: rates, totals and top lists from two snapshots, with the
    /// incidents open and what the source's queues dropped.
    pub fn tick(&self, before: &Snapshot, after: &Snapshot, now: Timestamp, agent: TickCounts) {
        self.write().refresh(before, after, now, agent);
    }

    /// Counts the incidents that `events` open.
    pub fn alerts_opened(&self, events: &[AlertEvent]) {
        let mut live = self.write();
        for event in events {
            if let AlertEvent::Opened(a) = event {
                *live.alerts_opened.entry((a.kind, a.severity)).or_default() += 1;
            }
        }
    }

    /// The store's health, as the writer found it.
    pub fn store_health(&self, health: StoreHealth) {
        self.write().store = health;
    }

    /// The IPFIX export's totals to `collector`.
    /// The rules the payload pipeline loaded, and those it rejected.
    pub fn rules(&self, rules: crate::payload::rules::LoadCounts) {
        self.write().rules = rules;
    }

    pub fn ipfix(&self, collector: SocketAddr, totals: ExportTotals) {
        self.write().ipfix = Some(IpfixStats {
            collector,
            messages: totals.messages,
            records: totals.records,
            failed: totals.failed,
        });
    }

    /// The EVE outputs' counts now.
    pub fn eve(&self, stats: EveStats) {
        self.write().eve = Some(stats);
    }

    /// The view as it is now.
    pub fn read(&self) -> RwLockReadGuard<'_, LiveStats> {
        self.stats.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Time since the agent started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    fn write(&self) -> RwLockWriteGuard<'_, LiveStats> {
        self.stats.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets any field, for tests of what reads the view.
    #[cfg(test)]
    pub(crate) fn edit(&self, edit: impl FnOnce(&mut LiveStats)) {
        edit(&mut self.write());
    }
}

/// The agent's own counts a tick reports beside the kernel's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickCounts {
    /// Incidents open after the tick.
    pub open_incidents: usize,
    /// What the source's queues dropped since start.
    pub dropped: Dropped,
}

/// Rates over the last tick, per second.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rates {
    pub packets_per_sec: f64,
    pub bits_per_sec: f64,
    pub syns_per_sec: f64,
    /// Packets per second by protocol: ipv4, ipv6, tcp, udp, icmp, other,
    /// non_ip.
    pub protocols: BTreeMap<String, f64>,
    /// Bits per second by protocol: tcp, udp, icmp, other, non_ip.
    pub protocol_bits: BTreeMap<String, f64>,
}

/// A busy source in the last tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopSource {
    pub addr: IpAddr,
    pub packets_per_sec: f64,
    /// Fraction of all packets in the tick, 0..=1.
    pub share: f64,
}

/// A destination port receiving SYNs in the last tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopPort {
    pub port: u16,
    pub syns_per_sec: f64,
    /// Fraction of all SYNs in the tick, 0..=1.
    pub share: f64,
}

/// The agent's live state, shared between the sensor loop and the API.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LiveStats {
    pub iface: String,
    /// Where the XDP program runs, while attached.
    pub xdp_mode: Option<AttachedMode>,
    pub started_at: Option<Timestamp>,
    /// When the rates were last computed (the end of the last tick).
    pub updated_at: Option<Timestamp>,
    pub rates: Rates,
    /// Every kernel counter since the sensor was loaded, by name.
    pub totals: BTreeMap<String, u64>,
    pub top_sources: Vec<TopSource>,
    pub top_syn_ports: Vec<TopPort>,
    pub open_incidents: usize,
    /// Threshold events the kernel could not queue (ring full).
    pub events_lost: u64,
    /// Payload samples lost: the kernel's ring was full, or the agent's
    /// queue (samples skipped by the rate cap are `samples_capped` in totals).
    pub samples_lost: u64,
    /// The detectors' rate thresholds, for drawing on charts.
    pub thresholds: ThresholdView,
    /// Whether alerts and history can be written, and what waits if not.
    pub store: StoreHealth,
    /// What went to the IPFIX collector, when there is one.
    pub ipfix: Option<IpfixStats>,
    /// What went to each EVE output, when there are some.
    pub eve: Option<EveStats>,
    /// Rules loaded and rejected at start.
    pub rules: crate::payload::rules::LoadCounts,
    /// Alerts opened since start, by kind and severity (for `/metrics`).
    #[serde(skip)]
    pub alerts_opened: BTreeMap<(AlertKind, Severity), u64>,
}

/// The EVE outputs' counts since start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EveStats {
    /// The sensor's name, every event's `host`.
    pub host: Option<String>,
    /// Events the writer's own queue had no room for (no output got them).
    pub queue_dropped: u64,
    /// Each output: events written, dropped, and whether it is connected.
    pub outputs: Vec<crate::eve::SinkStats>,
}

/// The IPFIX export's totals since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IpfixStats {
    pub collector: SocketAddr,
    /// Messages sent, and the flow records in them.
    pub messages: u64,
    pub records: u64,
    /// Messages that could not be sent.
    pub failed: u64,
}

/// The thresholds a chart of aggregate rates can show. They apply per
/// destination host or port (`syn_flood`, `flood`) and per source
/// (`volumetric`), so an aggregate line above them is a hint, not a verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ThresholdView {
    pub syn_flood: SynFlood,
    pub volumetric: Volumetric,
    pub flood: Flood,
    pub port_scan: PortScanThresholds,
}

/// The fast port-scan rule, its window in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PortScanThresholds {
    pub enabled: bool,
    pub fast_ports: u32,
    pub fast_window_secs: f64,
}

impl From<&Config> for ThresholdView {
    fn from(config: &Config) -> Self {
        let p = &config.port_scan;
        Self {
            syn_flood: config.syn_flood.clone(),
            volumetric: config.volumetric.clone(),
            flood: config.flood.clone(),
            port_scan: PortScanThresholds {
                enabled: p.enabled,
                fast_ports: p.fast_ports,
                fast_window_secs: p.fast_window.as_secs_f64(),
            },
        }
    }
}

/// The protocols whose rates the live view reports: by name, the packets
/// counter, and the bytes counter where the kernel keeps one.
const PROTOCOLS: [(&str, Counter, Option<Counter>); 7] = [
    ("ipv4", Counter::Ipv4Packets, None),
    ("ipv6", Counter::Ipv6Packets, None),
    ("tcp", Counter::TcpPackets, Some(Counter::TcpBytes)),
    ("udp", Counter::UdpPackets, Some(Counter::UdpBytes)),
    ("icmp", Counter::IcmpPackets, Some(Counter::IcmpBytes)),
    (
        "other",
        Counter::OtherL4Packets,
        Some(Counter::OtherL4Bytes),
    ),
    ("non_ip", Counter::NonIpPackets, Some(Counter::NonIpBytes)),
];

/// Sources and ports listed in the live view.
pub const LIVE_TOP_N: usize = 10;

impl LiveStats {
    /// Refreshes rates, totals, top lists and losses from two snapshots;
    /// `now` is when `after` was read.
    pub fn refresh(
        &mut self,
        before: &Snapshot,
        after: &Snapshot,
        now: Timestamp,
        agent: TickCounts,
    ) {
        self.updated_at = Some(now);
        let elapsed = after.at.saturating_duration_since(before.at);
        let per_sec = |n: u64| per_sec(n, elapsed);
        let delta = |c: Counter| after.grown_since(before, c);

        let packets = delta(Counter::Packets);
        let syns = delta(Counter::TcpSyn);
        self.rates = Rates {
            packets_per_sec: per_sec(packets),
            bits_per_sec: per_sec(delta(Counter::Bytes)) * 8.0,
            syns_per_sec: per_sec(syns),
            protocols: PROTOCOLS
                .iter()
                .map(|&(name, packets, _)| (name.to_owned(), per_sec(delta(packets))))
                .collect(),
            protocol_bits: PROTOCOLS
                .iter()
                .filter_map(|&(name, _, bytes)| {
                    Some((name.to_owned(), per_sec(delta(bytes?)) * 8.0))
                })
                .collect(),
        };
        self.totals = Counter::ALL
            .iter()
            .map(|c| (c.name().to_owned(), after.global.get(*c)))
            .collect();
        self.open_incidents = agent.open_incidents;
        // Lost in the kernel (ring full) or in the agent (queue full).
        self.events_lost = after.global.get(Counter::EventsLost) + agent.dropped.events;
        self.samples_lost = after.global.get(Counter::SamplesLost) + agent.dropped.samples;

        let sources = source_growth(before, after, LIVE_TOP_N);
        self.top_sources = top(sources, packets, per_sec, |addr, packets_per_sec, share| {
            TopSource {
                addr,
                packets_per_sec,
                share,
            }
        });
        let ports = port_growth(&before.syn_ports, &after.syn_ports);
        self.top_syn_ports = top(ports, syns, per_sec, |port, syns_per_sec, share| TopPort {
            port,
            syns_per_sec,
            share,
        });
    }
}

/// The [`LIVE_TOP_N`] first of `growth` (busiest first), each made a `row`
/// from its key, its rate and its share of `total`.
fn top<K, T>(
    growth: Vec<(K, u64)>,
    total: u64,
    per_sec: impl Fn(u64) -> f64,
    row: impl Fn(K, f64, f64) -> T,
) -> Vec<T> {
    growth
        .into_iter()
        .take(LIVE_TOP_N)
        .map(|(key, n)| row(key, per_sec(n), share(n, total)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::traffic::SourceView;

    use super::*;

    #[test]
    fn refresh_reports_rates_shares_and_totals() {
        let t0 = Instant::now();
        let before = Snapshot::empty(t0);
        let mut after = Snapshot::empty(t0 + Duration::from_secs(2));
        after.global.values[Counter::Packets as usize] = 1000;
        after.global.values[Counter::TcpPackets as usize] = 800;
        after.global.values[Counter::TcpSyn as usize] = 400;
        after.global.values[Counter::TcpBytes as usize] = 50_000;
        let a: IpAddr = "198.18.0.2".parse().unwrap();
        let b: IpAddr = "198.18.0.3".parse().unwrap();
        after.sources.insert(
            a.into(),
            SourceView {
                packets: 750,
                ..Default::default()
            },
        );
        after.sources.insert(
            b.into(),
            SourceView {
                packets: 250,
                ..Default::default()
            },
        );
        after.syn_ports[80] = 300;
        after.syn_ports[22] = 100;

        after.global.values[Counter::EventsLost as usize] = 3;
        after.global.values[Counter::SamplesLost as usize] = 5;

        let mut live = LiveStats::default();
        let now = Timestamp::now();
        let agent = TickCounts {
            open_incidents: 2,
            dropped: Dropped {
                events: 1,
                samples: 10,
            },
        };
        live.refresh(&before, &after, now, agent);
        assert_eq!(live.open_incidents, 2);
        assert_eq!(live.events_lost, 4, "the kernel's 3 and the agent's 1");
        assert_eq!(live.samples_lost, 15, "the kernel's 5 and the agent's 10");
        assert_eq!(live.updated_at, Some(now));
        assert_eq!(live.rates.packets_per_sec, 500.0);
        assert_eq!(live.rates.protocol_bits["tcp"], 200_000.0);
        assert_eq!(live.rates.syns_per_sec, 200.0);
        assert_eq!(live.rates.protocols["tcp"], 400.0);
        assert_eq!(live.totals["tcp_syn"], 400);
        assert_eq!(live.top_sources[0].addr, a);
        assert_eq!(live.top_sources[0].share, 0.75);
        assert_eq!(live.top_syn_ports[0].port, 80);
        assert_eq!(live.top_syn_ports[1].share, 0.25);
    }
}
