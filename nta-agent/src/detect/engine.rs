//! The detector: runs every rule over a tick's counter deltas or a kernel
//! threshold event, and keeps the incident table.

use std::{collections::HashMap, net::IpAddr};

use jiff::Timestamp;
use nta_common::{
    DstHostStats, IpKey,
    maps::{DstClass, EventKind, RateClass, ThresholdEvent},
};

use super::{
    Finding, Incidents, NextId, Subject,
    flood::RateWindow,
    hll, port_scan,
    scans::{self, Fresh, Reading},
    syn_flood,
    volumetric::{self, SourceRate},
};
use crate::{
    alert::{AlertEvent, AlertKind, Count, DetectedBy, EVIDENCE_TOP_N},
    config::Config,
    source::PacketSource,
    traffic::{Busiest, DstView, Snapshot, SourceView, growth, port_growth},
};

/// The busiest senders of the SYNs a tick brought each destination.
type SynsByDst = HashMap<IpAddr, Busiest<IpAddr>>;

/// Two snapshots of the kernel counters and the time at the second.
pub struct Tick<'a> {
    pub before: &'a Snapshot,
    pub after: &'a Snapshot,
    /// Wall clock, for the alerts.
    pub now: Timestamp,
    /// Kernel clock (CLOCK_MONOTONIC), to tell which windows are current.
    pub now_ns: u64,
}

/// A kernel threshold event and what the agent read right after it.
pub struct EventContext {
    pub event: ThresholdEvent,
    /// The source's counters, for source events.
    pub source: Option<SourceView>,
    /// The same source's counters at the last tick, when it had any: what
    /// it sent since tells which kind of scan it runs.
    pub source_before: Option<SourceView>,
    /// For SYN destination events: SYNs per port since the last tick,
    /// busiest first (see [`crate::traffic::port_growth`]).
    pub port_syns: Vec<(u16, u64)>,
    /// For destination events: the destination's counters now (its rate
    /// window and source sketch), and as of the last snapshot.
    pub destination: Option<DstHostStats>,
    pub previous_destination: Option<DstView>,
    pub now: Timestamp,
    pub now_ns: u64,
}

impl EventContext {
    /// Reads what `event` needs from `source` right after it, beside what
    /// the `previous` snapshot had. A failed read leaves its part empty
    /// and is handed to `failed` with what was being read.
    pub fn gather<S: PacketSource>(
        event: ThresholdEvent,
        source: &S,
        previous: Option<&Snapshot>,
        mut failed: impl FnMut(S::Error, &'static str),
    ) -> Self {
        let kind = EventKind::from_u32(event.kind);
        let about_a_source = matches!(
            kind,
            Some(
                EventKind::ScanFast
                    | EventKind::ScanWeighted
                    | EventKind::ScanSlow
                    | EventKind::Sweep
                    | EventKind::SourceRate
            )
        );
        let addr = IpAddr::from(event.key);
        let (counts, source_before) = if about_a_source {
            let now = reported(source.source(addr), "a source's counters", &mut failed).flatten();
            let before = previous.and_then(|p| p.sources.get(&event.key)).copied();
            (now, before)
        } else {
            (None, None)
        };
        let about_a_destination = kind.is_some_and(EventKind::of_destination);
        let (destination, previous_destination) = if about_a_destination {
            let now = reported(
                source.destination(addr),
                "a destination's counters",
                &mut failed,
            )
            .flatten();
            let before = previous.and_then(|p| p.dst_hosts.get(&event.key).copied());
            (now, before)
        } else {
            (None, None)
        };
        let port_syns = match previous {
            Some(previous) if about_a_destination && event.class == DstClass::Syn as u32 => {
                reported(
                    source.syn_ports_since(&previous.syn_ports),
                    "the SYN counts by port",
                    &mut failed,
                )
                .unwrap_or_default()
            }
            _ => Vec::new(),
        };
        let time = source.now();
        EventContext {
            event,
            source: counts,
            source_before,
            port_syns,
            destination,
            previous_destination,
            now: time.wall,
            now_ns: time.mono_ns,
        }
    }
}

/// The value of `result`, or `None` after handing its error to `failed`.
fn reported<T, E>(
    result: Result<T, E>,
    what: &'static str,
    failed: &mut impl FnMut(E, &'static str),
) -> Option<T> {
    result.map_err(|error| failed(error, what)).ok()
}

/// Share of new SYNs the busiest port must have for a destination's SYN
/// burst to read as a flood at once; SYNs spread over many ports look like
/// a scan, and the next tick weighs them against the scanners' own counts.
const FLOOD_PORT_SHARE: f64 = 0.5;

/// All detectors and their incidents.
pub struct Detector {
    pub(super) config: Config,
    pub(super) incidents: Incidents,
    /// Each flooded victim's sources over its whole incident.
    pub(super) merged: hll::Merged,
}

fn class_count(s: &SourceView, class: RateClass) -> u64 {
    match class {
        RateClass::Syn => s.syns(),
        RateClass::Udp => s.udp_packets,
        RateClass::Icmp => s.icmp_packets,
        RateClass::Rst => s.rsts,
        RateClass::BareAck => s.bare_acks,
    }
}

/// The SYNs each destination received in the tick from the sources that
/// `findings` report scanning (each counts towards its latest destination,
/// as the kernel records it).
fn scanner_syns(tick: &Tick, findings: &[Finding]) -> HashMap<IpAddr, u64> {
    let mut scanners: Vec<IpAddr> = findings
        .iter()
        .filter(|f| matches!(f.key.kind, AlertKind::PortScan | AlertKind::Sweep))
        .filter_map(|f| f.src)
        .collect();
    scanners.sort_unstable();
    scanners.dedup();
    let mut by_dst = HashMap::new();
    for src in scanners {
        let key = IpKey::from(src);
        let Some(s) = tick.after.sources.get(&key) else {
            continue;
        };
        let Some(dst) = port_scan::addr_of(&s.last_dst) else {
            continue;
        };
        let before = tick.before.sources.get(&key).map_or(0, |b| b.syns());
        *by_dst.entry(dst).or_default() += growth(before, s.syns());
    }
    by_dst
}

pub(super) fn top<T: Copy + Ord>(mut counts: Vec<(T, u64)>) -> Vec<Count<T>> {
    counts.sort_by(|(va, a), (vb, b)| b.cmp(a).then(va.cmp(vb)));
    counts
        .into_iter()
        .take(EVIDENCE_TOP_N)
        .map(|(value, packets)| Count { value, packets })
        .collect()
}

impl Detector {
    pub fn new(config: Config) -> Self {
        let incidents = Incidents::new(config.incidents.quiet_period);
        Self {
            config,
            incidents,
            merged: hll::Merged::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn incidents(&self) -> &Incidents {
        &self.incidents
    }

    fn apply(
        &mut self,
        findings: Vec<Finding>,
        now: Timestamp,
        next_id: NextId<'_>,
    ) -> Vec<AlertEvent> {
        findings
            .into_iter()
            .map(|f| self.incidents.observe(f, now, next_id))
            .collect()
    }

    /// Acts on a threshold crossing the XDP program signalled, at once.
    pub fn on_event(&mut self, ctx: &EventContext, next_id: NextId<'_>) -> Vec<AlertEvent> {
        let e = &ctx.event;
        let key = IpAddr::from(e.key);
        let Some(kind) = EventKind::from_u32(e.kind) else {
            return Vec::new();
        };
        let syn = e.class == DstClass::Syn as u32;
        let findings: Vec<Finding> = match kind {
            EventKind::ScanFast | EventKind::ScanWeighted | EventKind::ScanSlow => {
                self.scan_event(kind, key, e, ctx).into_iter().collect()
            }
            EventKind::SourceRate => self.source_rate_event(key, e, ctx).into_iter().collect(),
            EventKind::DstPackets
            | EventKind::DstBytes
            | EventKind::DstBurstPackets
            | EventKind::DstBurstBytes
                if syn =>
            {
                self.dst_syns_event(key, kind, e, ctx).into_iter().collect()
            }
            EventKind::DstPackets
            | EventKind::DstBytes
            | EventKind::DstBurstPackets
            | EventKind::DstBurstBytes => self.dst_event(key, kind, e, ctx),
            EventKind::Sweep => self.scan_event(kind, key, e, ctx).into_iter().collect(),
        };
        let events = self.apply(findings, ctx.now, next_id);
        self.prune_sketches();
        events
    }

    fn scan_event(
        &self,
        kind: EventKind,
        src: IpAddr,
        e: &ThresholdEvent,
        ctx: &EventContext,
    ) -> Option<Finding> {
        if self.config.allowlisted(src) {
            return None;
        }
        let cfg = &self.config.port_scan;
        let stats = ctx.source.unwrap_or_default();
        // The map may have moved on (or lost the entry); the event's own
        // count is what crossed.
        let mut w = port_scan::Windows::current(cfg, &stats, ctx.now_ns);
        match kind {
            EventKind::ScanFast => w.fast_ports = w.fast_ports.max(e.count),
            EventKind::ScanWeighted => w.weighted_score = w.weighted_score.max(e.count),
            EventKind::ScanSlow => w.slow_bits = w.slow_bits.max(e.count),
            EventKind::Sweep => w.host_bits = w.host_bits.max(e.count),
            _ => {}
        }
        let r = Reading {
            src,
            before: ctx.source_before.as_ref(),
            after: &stats,
            detected_by: DetectedBy::Kernel,
        };
        scans::evaluate(&self.config, &self.incidents, &r, w, Fresh::EVENT)
    }

    fn source_rate_event(
        &self,
        src: IpAddr,
        e: &ThresholdEvent,
        ctx: &EventContext,
    ) -> Option<Finding> {
        let class = *RateClass::ALL.get(e.class as usize)?;
        let stats = ctx.source.unwrap_or_default();
        let r = Reading {
            src,
            before: ctx.source_before.as_ref(),
            after: &stats,
            detected_by: DetectedBy::Kernel,
        };
        let w = port_scan::Windows::current(&self.config.port_scan, &stats, ctx.now_ns);
        if self.config.allowlisted(src) || scans::explains_rate(&self.config, &r, w, class) {
            return None;
        }
        let dst = port_scan::addr_of(&stats.last_dst);
        let cfg = dst.map_or_else(
            || self.config.volumetric.clone(),
            |d| self.config.volumetric_for(d),
        );
        volumetric::evaluate(
            &cfg,
            SourceRate {
                src,
                class,
                // More than this many in one second: a rate of at least this.
                rate: e.count as f64,
                packets: e.count,
                dst,
                dst_port: (stats.last_dst_port != 0).then_some(stats.last_dst_port),
                detected_by: DetectedBy::Kernel,
            },
        )
    }

    fn dst_syns_event(
        &mut self,
        dst: IpAddr,
        kind: EventKind,
        e: &ThresholdEvent,
        ctx: &EventContext,
    ) -> Option<Finding> {
        // A scanner's SYNs cross this threshold too, spread over its ports.
        let port_syns = &ctx.port_syns;
        let total: u64 = port_syns.iter().map(|(_, n)| n).sum();
        let busiest = port_syns.first().map_or(0, |(_, n)| *n);
        if total == 0 || (busiest as f64) < FLOOD_PORT_SHARE * total as f64 {
            return None;
        }
        // The current window's SYNs and bytes (at most its length's: lower
        // bounds of the rates), and the count that crossed.
        let syn = DstClass::Syn as usize;
        let window = self.window_of(dst, kind);
        let counts = |d: &DstHostStats| match kind.in_burst_window() {
            true => d.in_burst_window(syn),
            false => d.in_rate_window(syn),
        };
        let (mut syns, mut bytes) = ctx.destination.as_ref().map_or((0, 0), counts);
        match kind.in_bytes() {
            true => bytes = bytes.max(e.count),
            false => syns = syns.max(e.count),
        }
        let distinct_sources = ctx
            .destination
            .as_ref()
            .map(|d| self.merged.add(dst, &d.sources));
        syn_flood::host(
            &self.config.syn_flood_for(dst),
            syn_flood::HostSyns {
                dst,
                rate: syns as f64 / window.secs,
                bps: bytes as f64 * 8.0 / window.secs,
                packets: syns,
                top_ports: top(port_syns.to_vec()),
                top_sources: Vec::new(),
                distinct_sources,
                estimated: distinct_sources.is_some(),
                from_scanners: 0.0,
                detected_by: DetectedBy::Kernel,
                window,
            },
        )
    }

    /// The window a destination event of `kind` counted in, with the
    /// multiple of the thresholds a flood is there under `dst`'s settings.
    pub(super) fn window_of(&self, dst: IpAddr, kind: EventKind) -> RateWindow {
        match kind.in_burst_window() {
            true => RateWindow::burst(self.config.flood_for(dst).burst),
            false => RateWindow::RATE,
        }
    }

    /// Runs every rule over the counters' growth between two snapshots,
    /// then closes incidents that have been quiet long enough.
    pub fn on_tick(&mut self, tick: &Tick, next_id: NextId<'_>) -> Vec<AlertEvent> {
        let secs = tick
            .after
            .at
            .saturating_duration_since(tick.before.at)
            .as_secs_f64();
        if secs <= 0.0 {
            return Vec::new();
        }
        let (mut findings, syns_by_dst) = self.source_findings(tick, secs);
        let floods = self.flood_findings(tick, secs, syns_by_dst, &findings);
        findings.extend(floods);
        let victims = self.victim_findings(tick, secs, &findings);
        findings.extend(victims);
        let mut events = self.apply(findings, tick.now, next_id);
        events.extend(self.incidents.close_quiet(tick.now));
        self.prune_sketches();
        events
    }

    /// Per source: scans and single-source floods; with the SYN growth of
    /// each destination by source, for the SYN-flood evidence.
    fn source_findings(&self, tick: &Tick, secs: f64) -> (Vec<Finding>, SynsByDst) {
        let mut findings = Vec::new();
        let mut syns_by_dst = SynsByDst::new();
        for (key, s) in &tick.after.sources {
            let src = IpAddr::from(*key);
            let before = tick.before.sources.get(key);
            let delta = |class| {
                growth(
                    before.map_or(0, |b| class_count(b, class)),
                    class_count(s, class),
                )
            };
            let syns = delta(RateClass::Syn);
            let dst = port_scan::addr_of(&s.last_dst);
            if syns > 0
                && let Some(d) = dst
            {
                syns_by_dst
                    .entry(d)
                    .or_insert_with(|| Busiest::new(EVIDENCE_TOP_N))
                    .add(src, syns);
            }
            if self.config.allowlisted(src) {
                continue;
            }
            let r = Reading {
                src,
                before,
                after: s,
                detected_by: DetectedBy::Poll,
            };
            let w = port_scan::Windows::current(&self.config.port_scan, s, tick.now_ns);
            let fresh = Fresh::between(&r);
            findings.extend(scans::evaluate(&self.config, &self.incidents, &r, w, fresh));
            let cfg = dst.map_or_else(
                || self.config.volumetric.clone(),
                |d| self.config.volumetric_for(d),
            );
            for class in RateClass::ALL {
                let packets = delta(class);
                if packets == 0 {
                    continue;
                }
                if scans::explains(&findings, src, class) {
                    continue;
                }
                findings.extend(volumetric::evaluate(
                    &cfg,
                    SourceRate {
                        src,
                        class,
                        rate: packets as f64 / secs,
                        packets,
                        dst,
                        dst_port: (s.last_dst_port != 0).then_some(s.last_dst_port),
                        detected_by: DetectedBy::Poll,
                    },
                ));
            }
        }
        (findings, syns_by_dst)
    }

    /// Per destination host, then per port: SYN floods, with the scanners
    /// among `findings` told apart.
    fn flood_findings(
        &mut self,
        tick: &Tick,
        secs: f64,
        mut syns_by_dst: SynsByDst,
        findings: &[Finding],
    ) -> Vec<Finding> {
        let mut floods = Vec::new();
        // Ports: SYN growth, for evidence and the per-port rule.
        let port_syns = port_growth(&tick.before.syn_ports, &tick.after.syn_ports);
        let top_ports = top(port_syns.clone());

        // SYNs of the sources still scanning in this tick, by destination.
        let from_scanners = scanner_syns(tick, findings);

        let mut flooded_ports = Vec::new();
        // SYNs to hosts whose override lets them take more than the default.
        let mut allowed = 0;
        for (key, d) in &tick.after.dst_hosts {
            let dst = IpAddr::from(*key);
            let syn = DstClass::Syn as usize;
            let before = tick.before.dst_hosts.get(key);
            let syns = growth(before.map_or(0, |b| b.packets[syn]), d.packets[syn]);
            if syns == 0 {
                continue;
            }
            let bytes = growth(before.map_or(0, |b| b.bytes[syn]), d.bytes[syn]);
            let senders = syns_by_dst
                .remove(&dst)
                .unwrap_or_else(|| Busiest::new(EVIDENCE_TOP_N));
            let from_scanners = from_scanners.get(&dst).copied().unwrap_or(0) as f64 / syns as f64;
            let cfg = self.config.syn_flood_for(dst);
            let (rate, bps) = (syns as f64 / secs, bytes as f64 * 8.0 / secs);
            // The sketch is merged only for a flood: a victim's 128 bytes.
            let over = RateWindow::RATE.over(rate, cfg.dst_host_syn_rate)
                || RateWindow::RATE.over(bps, cfg.dst_host_mbps * 1e6);
            let distinct_sources = if over {
                self.merged.add(dst, &d.sources)
            } else {
                senders.offered()
            };
            let finding = syn_flood::host(
                &cfg,
                syn_flood::HostSyns {
                    dst,
                    rate,
                    bps,
                    packets: syns,
                    top_ports: top_ports.clone(),
                    distinct_sources: Some(distinct_sources),
                    estimated: over,
                    top_sources: top(senders.into_sorted()),
                    from_scanners,
                    detected_by: DetectedBy::Poll,
                    window: RateWindow::RATE,
                },
            );
            match finding {
                Some(f) => {
                    flooded_ports.extend(f.dst_port);
                    floods.push(f);
                }
                None if cfg.dst_host_syn_rate > self.config.syn_flood.dst_host_syn_rate => {
                    allowed += syns;
                }
                None => {}
            }
        }
        // A port flooded across hosts, not explained by one host's flood
        // nor by hosts taking what their override allows (a busy web
        // server's port 80). Per-port counts do not say which host a SYN
        // went to, so those hosts' SYNs are taken off every port.
        for (port, syns) in port_syns {
            let syns = syns.saturating_sub(allowed);
            let explained = flooded_ports.contains(&port)
                || self.incidents.iter().any(|(k, a)| {
                    matches!(k.subject, Subject::DstHost(_)) && a.dst_port == Some(port)
                });
            if !explained {
                floods.extend(syn_flood::port(
                    &self.config.syn_flood,
                    port,
                    syns as f64 / secs,
                    syns,
                ));
            }
        }
        floods
    }

    /// Opens or updates the incident of a finding made outside the counters
    /// (payload inspection); each finding is one more packet.
    pub fn observe(&mut self, finding: Finding, now: Timestamp, next_id: NextId<'_>) -> AlertEvent {
        self.incidents.observe(finding, now, next_id)
    }

    /// Closes every open incident: the agent is stopping.
    pub fn close_all(&mut self, now: Timestamp) -> Vec<AlertEvent> {
        self.incidents.close_all(now)
    }
}
