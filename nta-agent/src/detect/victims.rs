//! Per destination host: what each victim received, between two snapshots
//! or in the kernel's rate window at a threshold event, with the evidence a
//! flood finding carries (busiest ports and sources, distinct sources), fed
//! to [`flood`].

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
};

use nta_common::{
    DstHostStats,
    maps::{DST_CLASSES, DstClass, EventKind, SERVICES, ThresholdEvent},
};

use super::{
    Detector, EventContext, Finding, Subject, Tick,
    engine::top,
    flood::{self, RateWindow, VictimTraffic},
    port_scan,
};
use crate::{
    alert::{AlertKind, DetectedBy, EVIDENCE_TOP_N},
    traffic::{Busiest, DstView, SourceView, growth},
};

/// Share of a victim's packets of one class that one source must send for
/// its own `volumetric` incident to be the flood's one alert (or, for an
/// allowlisted source, for the flood to be no alert).
pub const SINGLE_SOURCE_SHARE: f64 = 0.5;

/// What a tick's sources sent one destination (each source counts towards
/// its latest destination and port, as the kernel records them).
#[derive(Debug)]
pub(super) struct Senders {
    /// Packets by destination port.
    ports: HashMap<u16, u64>,
    /// The busiest sources, by packets.
    top: Busiest<IpAddr>,
    /// The biggest sender of each class and its packets.
    biggest: [Option<(IpAddr, u64)>; DST_CLASSES],
}

impl Default for Senders {
    fn default() -> Self {
        Self {
            ports: HashMap::new(),
            top: Busiest::new(EVIDENCE_TOP_N),
            biggest: [None; DST_CLASSES],
        }
    }
}

impl Senders {
    fn add(&mut self, src: IpAddr, port: u16, by_class: [u64; DST_CLASSES]) {
        let packets = by_class[DstClass::All as usize];
        if port != 0 {
            *self.ports.entry(port).or_default() += packets;
        }
        self.top.add(src, packets);
        for (slot, n) in self.biggest.iter_mut().zip(by_class) {
            if n > 0 && slot.is_none_or(|(_, most)| n > most) {
                *slot = Some((src, n));
            }
        }
    }
}

/// A source's packets in the interval, by the destination class they fall
/// in (as near as its own counters tell: its RSTs and bare ACKs for TCP,
/// all its packets for fragments).
fn by_class(before: Option<&SourceView>, s: &SourceView) -> [u64; DST_CLASSES] {
    let g = |f: fn(&SourceView) -> u64| growth(before.map_or(0, f), f(s));
    let all = g(|v| v.packets);
    let mut out = [0; DST_CLASSES];
    out[DstClass::Syn as usize] = g(|v| v.syns());
    out[DstClass::Tcp as usize] = g(|v| v.rsts) + g(|v| v.bare_acks);
    out[DstClass::Udp as usize] = g(|v| v.udp_packets);
    out[DstClass::Icmp as usize] = g(|v| v.icmp_packets);
    out[DstClass::Fragment as usize] = all;
    out[DstClass::All as usize] = all;
    out
}

/// Every destination's senders in the tick.
fn senders_by_dst(tick: &Tick) -> HashMap<IpAddr, Senders> {
    let mut by_dst: HashMap<IpAddr, Senders> = HashMap::new();
    for (key, s) in &tick.after.sources {
        let Some(dst) = port_scan::addr_of(&s.last_dst) else {
            continue;
        };
        let counts = by_class(tick.before.sources.get(key), s);
        if counts[DstClass::All as usize] > 0 {
            by_dst
                .entry(dst)
                .or_default()
                .add(IpAddr::from(*key), s.last_dst_port, counts);
        }
    }
    by_dst
}

/// Class growth of a destination from `before` (none: a new entry, all of
/// it new) to `after`.
fn class_growth(
    before: Option<&DstView>,
    after: &DstView,
) -> ([u64; DST_CLASSES], [u64; DST_CLASSES], [u64; SERVICES]) {
    let mut packets = [0; DST_CLASSES];
    let mut bytes = [0; DST_CLASSES];
    let mut services = [0; SERVICES];
    for i in 0..DST_CLASSES {
        packets[i] = growth(before.map_or(0, |b| b.packets[i]), after.packets[i]);
        bytes[i] = growth(before.map_or(0, |b| b.bytes[i]), after.bytes[i]);
    }
    for (i, n) in services.iter_mut().enumerate() {
        *n = growth(
            before.map_or(0, |b| b.service_packets[i]),
            after.service_packets[i],
        );
    }
    (packets, bytes, services)
}

impl Detector {
    /// Victims whose open incidents report each class: what already
    /// explains their traffic.
    fn flooding(&self) -> HashMap<IpAddr, [bool; DST_CLASSES]> {
        let mut open: HashMap<IpAddr, [bool; DST_CLASSES]> = HashMap::new();
        for (key, _) in self.incidents.iter() {
            if let (Subject::DstHost(dst), Some(class)) = (key.subject, flood::class_of(key.kind)) {
                open.entry(dst).or_default()[class as usize] = true;
            }
        }
        open
    }

    /// Sources with a `volumetric` finding now or an open incident.
    fn volumetric_sources(&self, findings: &[Finding]) -> HashSet<IpAddr> {
        let open = self
            .incidents
            .iter()
            .filter(|(k, _)| k.kind == AlertKind::Volumetric)
            .filter_map(|(_, a)| a.src);
        findings
            .iter()
            .filter(|f| f.key.kind == AlertKind::Volumetric)
            .filter_map(|f| f.src)
            .chain(open)
            .collect()
    }

    /// Forgets the merged sketches of victims with no open flood left.
    pub(super) fn prune_sketches(&mut self) {
        let open: HashSet<IpAddr> = self.flooding().into_keys().collect();
        self.merged.retain(|victim| open.contains(victim));
    }

    /// Per destination: floods of every class but SYN, from the tick's
    /// growth. `findings` are the tick's source findings and SYN floods.
    pub(super) fn victim_findings(
        &mut self,
        tick: &Tick,
        secs: f64,
        findings: &[Finding],
    ) -> Vec<Finding> {
        let senders = senders_by_dst(tick);
        let mut flooding = self.flooding();
        for f in findings
            .iter()
            .filter(|f| f.key.kind == AlertKind::SynFlood)
        {
            if let Subject::DstHost(dst) = f.key.subject {
                flooding.entry(dst).or_default()[DstClass::Syn as usize] = true;
            }
        }
        let volumetric = self.volumetric_sources(findings);
        let mut out = Vec::new();
        for (key, after) in &tick.after.dst_hosts {
            let dst = IpAddr::from(*key);
            let (packets, bytes, services) = class_growth(tick.before.dst_hosts.get(key), after);
            if packets[DstClass::All as usize] == 0 {
                continue;
            }
            let mut v = VictimTraffic {
                pps: packets.map(|n| n as f64 / secs),
                bps: bytes.map(|n| n as f64 * 8.0 / secs),
                packets,
                interval_packets: packets,
                interval_bytes: bytes,
                service_packets: services,
                flooding: flooding.get(&dst).copied().unwrap_or_default(),
                ..VictimTraffic::new(dst, DetectedBy::Poll)
            };
            let cfg = self.config.flood_for(dst);
            if !flood::any_over(&cfg, &v) {
                continue;
            }
            if let Some(s) = senders.get(&dst) {
                for (i, biggest) in s.biggest.iter().enumerate() {
                    // An allowlisted source (a backup server, a load test)
                    // raises nothing, on its victim either.
                    v.single_source[i] = biggest.is_some_and(|(src, n)| {
                        (volumetric.contains(&src) || self.config.allowlisted(src))
                            && n as f64 >= SINGLE_SOURCE_SHARE * packets[i] as f64
                    });
                }
                v.top_ports = top(s.ports.iter().map(|(p, n)| (*p, *n)).collect());
                v.top_sources = top(s.top.clone().into_sorted());
            }
            v.distinct_sources = Some(self.merged.add(dst, &after.sources));
            out.extend(flood::evaluate(&cfg, &v));
        }
        out
    }

    /// A destination's packets or bytes of a class other than SYN crossed
    /// the kernel's threshold in one of its windows: the victim's current
    /// window, evaluated now.
    pub(super) fn dst_event(
        &mut self,
        dst: IpAddr,
        kind: EventKind,
        e: &ThresholdEvent,
        ctx: &EventContext,
    ) -> Vec<Finding> {
        let Some(class) = DstClass::from_u32(e.class) else {
            return Vec::new();
        };
        // One source with its own volumetric incident heading here may be
        // the whole of it: the next tick has the per-source counts to tell.
        let single = self
            .incidents
            .iter()
            .any(|(k, a)| k.kind == AlertKind::Volumetric && a.dst == Some(dst));
        if single {
            return Vec::new();
        }
        let mut v = window_traffic(
            dst,
            kind,
            self.window_of(dst, kind),
            ctx.destination.as_ref(),
            ctx.previous_destination.as_ref(),
        );
        // The count that crossed, in a window of at most its length: a rate
        // of at least that.
        let i = class as usize;
        let secs = v.window.secs;
        match kind.in_bytes() {
            true => v.bps[i] = v.bps[i].max(e.count as f64 * 8.0 / secs),
            false => {
                v.pps[i] = v.pps[i].max(e.count as f64 / secs);
                v.packets[i] = v.packets[i].max(e.count);
            }
        }
        v.flooding = self.flooding().get(&dst).copied().unwrap_or_default();
        if let Some(d) = &ctx.destination {
            v.distinct_sources = Some(self.merged.add(dst, &d.sources));
        }
        flood::evaluate(&self.config.flood_for(dst), &v)
    }
}

/// A destination's traffic in the kernel window an event of `kind` counted
/// in (at most `window.secs` long, so its rates are lower bounds), with the
/// shares over the growth since the last snapshot.
fn window_traffic(
    dst: IpAddr,
    kind: EventKind,
    window: RateWindow,
    now: Option<&DstHostStats>,
    previous: Option<&DstView>,
) -> VictimTraffic {
    let mut v = VictimTraffic {
        window,
        ..VictimTraffic::new(dst, DetectedBy::Kernel)
    };
    let Some(d) = now else {
        return v;
    };
    for i in 0..DST_CLASSES {
        let (packets, bytes) = match kind.in_burst_window() {
            true => d.in_burst_window(i),
            false => d.in_rate_window(i),
        };
        v.pps[i] = packets as f64 / window.secs;
        v.bps[i] = bytes as f64 * 8.0 / window.secs;
        v.packets[i] = packets;
    }
    let (packets, bytes, services) = class_growth(previous, &DstView::from(d));
    v.interval_packets = packets;
    v.interval_bytes = bytes;
    v.service_packets = services;
    v
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use jiff::Timestamp;
    use nta_common::{IpKey, sketch::hll_slot};

    use super::*;
    use crate::{alert::AlertEvent, config::Config, traffic::Snapshot};

    const VICTIM: &str = "198.18.0.1";
    const ATTACKER: &str = "198.18.0.2";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A victim's counters after `n` packets of 600-byte frames of `class`
    /// (and of `All`) from `sources` distinct sources, `from_port` the
    /// service port they came from if any.
    fn victim(class: DstClass, n: u64, sources: u32, from_service: Option<usize>) -> DstView {
        let mut d = DstView::default();
        for c in [class, DstClass::All] {
            d.packets[c as usize] += n;
            d.bytes[c as usize] += n * 600;
        }
        if let Some(s) = from_service {
            d.service_packets[s] = n;
        }
        for i in 0..sources {
            let (slot, rank) = hll_slot(&IpKey::from_v4((0x0a00_0000 + i).to_be_bytes()));
            d.sources[slot] = d.sources[slot].max(rank);
        }
        d
    }

    fn source(dst: &str, udp: u64, port: u16) -> SourceView {
        SourceView {
            packets: udp,
            udp_packets: udp,
            last_dst: IpKey::from(ip(dst)),
            last_dst_port: port,
            ..SourceView::default()
        }
    }

    struct Run {
        detector: Detector,
        id: u64,
        t0: Instant,
    }

    impl Run {
        fn new(config: Config) -> Self {
            Self {
                detector: Detector::new(config),
                id: 0,
                t0: Instant::now(),
            }
        }

        /// One one-second tick from nothing to `after`.
        fn tick(&mut self, after: Snapshot) -> Vec<AlertEvent> {
            let before = Snapshot::empty(self.t0);
            let tick = Tick {
                before: &before,
                after: &after,
                now: Timestamp::now(),
                now_ns: 5_000_000_000,
            };
            let id = &mut self.id;
            self.detector.on_tick(&tick, &mut || {
                *id += 1;
                *id
            })
        }

        fn snapshot(&self) -> Snapshot {
            Snapshot::empty(self.t0 + Duration::from_secs(1))
        }
    }

    fn kinds(events: &[AlertEvent]) -> Vec<AlertKind> {
        events.iter().map(|e| e.alert().kind).collect()
    }

    #[test]
    fn a_spoofed_udp_flood_raises_one_udp_flood_with_its_sources_estimated() {
        let mut run = Run::new(Config::default());
        let mut after = run.snapshot();
        after.dst_hosts.insert(
            IpKey::from(ip(VICTIM)),
            victim(DstClass::Udp, 85_000, 60_000, None),
        );
        for i in 0..200u32 {
            let src = IpAddr::from((0x0b00_0000 + i).to_be_bytes());
            after.sources.insert(src.into(), source(VICTIM, 400, 80));
        }
        let events = run.tick(after);
        assert_eq!(kinds(&events), vec![AlertKind::UdpFlood]);
        let a = events[0].alert();
        assert_eq!(a.dst, Some(ip(VICTIM)));
        assert_eq!(a.src, None);
        assert_eq!(a.dst_port, Some(80));
        let e = &a.evidence;
        assert!(e.estimated);
        let n = e.distinct_sources.unwrap_or(0) as f64;
        assert!((n - 60_000.0).abs() < 0.28 * 60_000.0, "{n}");
        assert_eq!(e.detected_by, DetectedBy::Poll);
        assert_eq!(
            run.detector.merged.len(),
            1,
            "one merged sketch per flooded victim"
        );
    }

    /// A web server taking 3 000 new connections a second on port 80 from
    /// 100 clients, under `config`.
    fn busy_web_server(config: Config) -> Vec<AlertEvent> {
        let mut run = Run::new(config);
        let mut after = run.snapshot();
        after.dst_hosts.insert(
            IpKey::from(ip(VICTIM)),
            victim(DstClass::Syn, 3_000, 100, None),
        );
        after.syn_ports[80] = 3_000;
        run.tick(after)
    }

    #[test]
    fn a_web_server_within_its_override_raises_no_port_flood_either() {
        let text = "[[override]]\nnetwork = \"198.18.0.1/32\"\nsyn_flood = { dst_host_syn_rate = 10000 }\n";
        let config = Config::parse(text, std::path::Path::new("t.toml")).expect("valid");
        assert_eq!(kinds(&busy_web_server(config)), vec![]);
        // Without the override, the host's flood explains the port: one alert.
        let events = busy_web_server(Config::default());
        assert_eq!(kinds(&events), vec![AlertKind::SynFlood]);
        assert_eq!(events[0].alert().dst, Some(ip(VICTIM)));
    }

    /// 600 000 UDP packets a second on the victim, all from the attacker.
    fn single_source_udp_flood(run: &Run) -> Snapshot {
        let mut after = run.snapshot();
        after.dst_hosts.insert(
            IpKey::from(ip(VICTIM)),
            victim(DstClass::Udp, 600_000, 1, None),
        );
        after
            .sources
            .insert(IpKey::from(ip(ATTACKER)), source(VICTIM, 600_000, 9));
        after
    }

    #[test]
    fn a_single_source_udp_flood_is_its_volumetric_alert_only() {
        let mut run = Run::new(Config::default());
        let after = single_source_udp_flood(&run);
        let events = run.tick(after);
        assert_eq!(
            kinds(&events),
            vec![AlertKind::Volumetric],
            "not also udp_flood or traffic_flood"
        );
        assert_eq!(events[0].alert().src, Some(ip(ATTACKER)));
    }

    #[test]
    fn an_allowlisted_sources_flood_is_no_flood_on_its_victim() {
        let mut run = Run::new(Config {
            allowlist: vec!["198.18.0.2/32".parse().unwrap()],
            ..Config::default()
        });
        let after = single_source_udp_flood(&run);
        assert_eq!(run.tick(after), vec![]);
    }

    #[test]
    fn an_ntp_reflection_is_one_alert_from_the_tick() {
        let mut run = Run::new(Config::default());
        let mut after = run.snapshot();
        after.dst_hosts.insert(
            IpKey::from(ip(VICTIM)),
            victim(DstClass::Udp, 85_000, 200, Some(5)),
        );
        let events = run.tick(after);
        assert_eq!(kinds(&events), vec![AlertKind::Reflection]);
        let a = events[0].alert();
        assert!(
            a.message.starts_with("NTP reflection on 198.18.0.1:"),
            "{}",
            a.message
        );
        assert_eq!(a.evidence.service_port, Some(123));
    }

    #[test]
    fn a_gre_flood_is_a_traffic_flood() {
        let mut run = Run::new(Config::default());
        let mut after = run.snapshot();
        after.dst_hosts.insert(
            IpKey::from(ip(VICTIM)),
            victim(DstClass::All, 900_000, 5_000, None),
        );
        assert_eq!(kinds(&run.tick(after)), vec![AlertKind::TrafficFlood]);
    }

    /// A kernel event of `class` at `count` on the victim, whose counters
    /// are `d`, the last snapshot's `previous`.
    fn event_on(
        class: DstClass,
        count: u64,
        d: DstHostStats,
        previous: Option<DstView>,
    ) -> EventContext {
        EventContext {
            source_before: None,
            event: ThresholdEvent {
                kind: EventKind::DstPackets as u32,
                class: class as u32,
                key: IpKey::from(ip(VICTIM)),
                count,
                window_start_ns: 0,
                at_ns: 1,
            },
            source: None,
            port_syns: Vec::new(),
            destination: Some(d),
            previous_destination: previous,
            now: Timestamp::now(),
            now_ns: 1,
        }
    }

    #[test]
    fn an_all_class_event_just_after_a_snapshot_is_still_explained_by_its_class_flood() {
        let mut run = Run::new(Config::default());
        let mut d = DstHostStats::default();
        for class in [DstClass::Tcp, DstClass::All] {
            d.packets[class as usize] = 500_001;
            d.bytes[class as usize] = 500_001 * 60;
        }
        let mut id = 0;
        let mut next = || {
            id += 1;
            id
        };
        let tcp = run
            .detector
            .on_event(&event_on(DstClass::Tcp, 100_001, d, None), &mut next);
        assert_eq!(kinds(&tcp), vec![AlertKind::TcpFlood]);
        // The snapshot was taken a moment ago: no growth since, but the
        // kernel's window says it is all TCP.
        let all = run.detector.on_event(
            &event_on(DstClass::All, 500_001, d, Some(DstView::from(&d))),
            &mut next,
        );
        assert!(
            all.iter().all(|e| e.alert().kind == AlertKind::TcpFlood),
            "{all:?}"
        );
    }

    #[test]
    fn a_kernel_event_raises_the_flood_at_once_and_the_tick_updates_it() {
        let mut run = Run::new(Config::default());
        let mut d = DstHostStats::default();
        let udp = DstClass::Udp as usize;
        d.packets[udp] = 20_001;
        d.bytes[udp] = 20_001 * 600;
        d.packets[DstClass::All as usize] = 20_001;
        let ctx = event_on(DstClass::Udp, 20_001, d, None);
        let mut id = 0;
        let events = run.detector.on_event(&ctx, &mut || {
            id += 1;
            id
        });
        assert_eq!(kinds(&events), vec![AlertKind::UdpFlood]);
        let a = events[0].alert();
        assert_eq!(a.evidence.detected_by, DetectedBy::Kernel);
        assert_eq!(a.evidence.pps, Some(20_001.0));
        // The tick's higher rate updates the same incident and its peak.
        run.id = id;
        let mut after = run.snapshot();
        after.dst_hosts.insert(
            IpKey::from(ip(VICTIM)),
            victim(DstClass::Udp, 85_000, 600, None),
        );
        let events = run.tick(after);
        assert!(
            matches!(events.as_slice(), [AlertEvent::Updated(_)]),
            "{events:?}"
        );
        let a = events[0].alert();
        assert_eq!((a.id, a.peak_rate), (1, 85_000.0));
        assert_eq!(a.evidence.detected_by, DetectedBy::Kernel);
    }

    /// A burst-window event on the victim for `count` packets of `class`,
    /// the map read just after it holding them (after others long before).
    fn burst_on(class: DstClass, count: u64) -> EventContext {
        let mut d = DstHostStats::default();
        for c in [class, DstClass::All] {
            let i = c as usize;
            d.packets[i] = 3_000_000 + count;
            d.bytes[i] = (3_000_000 + count) * 600;
            d.window_packets[i] = 3_000_000;
            d.window_bytes[i] = 3_000_000 * 600;
            d.burst_packets[i] = 3_000_000;
            d.burst_bytes[i] = (3_000_000 * 600) as u32;
        }
        let mut ctx = event_on(class, count, d, None);
        ctx.event.kind = EventKind::DstBurstPackets as u32;
        ctx
    }

    #[test]
    fn a_burst_past_its_allowance_is_a_flood_at_once() {
        let mut run = Run::new(Config::default());
        // 20 000 UDP/s is the threshold; 4 times that for 0.1 s is 8 000.
        let events = run
            .detector
            .on_event(&burst_on(DstClass::Udp, 8_001), &mut || 1);
        assert_eq!(kinds(&events), vec![AlertKind::UdpFlood]);
        let a = events[0].alert();
        assert_eq!(
            a.evidence.pps,
            Some(80_010.0),
            "a tenth of a second's count"
        );
        assert_eq!(a.evidence.window_secs, 0.1);
        assert_eq!(a.evidence.threshold, 20_000.0, "the threshold as set");
        assert_eq!(a.evidence.detected_by, DetectedBy::Kernel);
    }

    #[test]
    fn a_burst_within_its_allowance_is_no_flood() {
        // The kernel signals at the lowest threshold of any destination;
        // this victim's own allows 8 times its 20 000/s for a tenth.
        let text = "[[override]]\nnetwork = \"198.18.0.1/32\"\nflood = { burst = 8 }\n";
        let config = Config::parse(text, std::path::Path::new("t.toml")).expect("valid");
        let mut run = Run::new(config);
        let events = run
            .detector
            .on_event(&burst_on(DstClass::Udp, 8_001), &mut || 1);
        assert_eq!(events, vec![], "80 000/s for 0.1 s: 4 times, within 8");
        let events = run
            .detector
            .on_event(&burst_on(DstClass::Udp, 16_001), &mut || 1);
        assert_eq!(kinds(&events), vec![AlertKind::UdpFlood]);
    }

    #[test]
    fn a_syn_burst_is_judged_by_its_hosts_own_rate() {
        let text = "[[override]]\nnetwork = \"198.18.0.1/32\"\n\
                    syn_flood = { dst_host_syn_rate = 10000.0 }\n";
        let config = Config::parse(text, std::path::Path::new("t.toml")).expect("valid");
        for (config, count, flood) in [
            // 1 000 SYN in 0.1 s: 10 000/s, 2.5 times the default's burst
            // allowance of 400 but a quarter of the override's 4 000.
            (Config::default(), 1_000, true),
            (config.clone(), 1_000, false),
            (config, 4_001, true),
        ] {
            let mut run = Run::new(config);
            let mut ctx = burst_on(DstClass::Syn, count);
            ctx.port_syns = vec![(80, count)];
            let events = run.detector.on_event(&ctx, &mut || 1);
            let want = if flood {
                vec![AlertKind::SynFlood]
            } else {
                vec![]
            };
            assert_eq!(kinds(&events), want, "{count} SYNs in a burst window");
        }
    }

    #[test]
    fn a_byte_event_reports_the_bit_rate() {
        let mut run = Run::new(Config::default());
        let event = ThresholdEvent {
            kind: EventKind::DstBytes as u32,
            class: DstClass::Icmp as u32,
            key: IpKey::from(ip(VICTIM)),
            count: 12_500_001,
            window_start_ns: 0,
            at_ns: 1,
        };
        let ctx = EventContext {
            source_before: None,
            event,
            source: None,
            port_syns: Vec::new(),
            destination: None,
            previous_destination: None,
            now: Timestamp::now(),
            now_ns: 1,
        };
        let events = run.detector.on_event(&ctx, &mut || 7);
        assert_eq!(kinds(&events), vec![AlertKind::IcmpFlood]);
        assert_eq!(events[0].alert().evidence.unit, "Mbit/s");
    }

    #[test]
    fn merged_sketches_go_with_their_incidents() {
        let mut config = Config::default();
        config.incidents.quiet_period = Duration::from_secs(1);
        let mut run = Run::new(config);
        let mut after = run.snapshot();
        after.dst_hosts.insert(
            IpKey::from(ip(VICTIM)),
            victim(DstClass::Icmp, 9_000, 50, None),
        );
        run.tick(after);
        assert_eq!(run.detector.merged.len(), 1);
        std::thread::sleep(Duration::from_millis(1100));
        let events = run.tick(run.snapshot());
        assert!(
            matches!(events.as_slice(), [AlertEvent::Closed(_)]),
            "{events:?}"
        );
        assert!(run.detector.merged.is_empty());
    }
}
