//! One source's port scan or sweep, from a tick's counter growth or a
//! kernel event: which rule holds, and one alert per attack.
//!
//! A source that reaches many ports and many hosts at once (`nmap -sS
//! --top-ports 100` on a /24) is one attack, reported as a port scan: when
//! both rules hold together the port scan wins, being the more specific
//! (which ports) and what blocks and notifications already key on. Once one
//! of the two incidents is open, the source's further probing updates that
//! incident and never opens the other, so a sweep that moves on to more
//! ports stays the sweep it was first seen as.

use std::net::IpAddr;

use nta_common::maps::{Probe, RateClass};

use super::{
    Finding, IncidentKey, Incidents, Subject,
    port_scan::{self, Scan, Windows},
    probes::{self, PORT_PROBES},
    sketch::{self, Estimate},
    sweep::{self, Sweep},
};
use crate::{
    alert::{AlertKind, DetectedBy},
    config::Config,
    traffic::{SourceView, growth},
};

/// One source's counters now, and at the previous tick when the agent has
/// them.
#[derive(Debug, Clone, Copy)]
pub struct Reading<'a> {
    pub src: IpAddr,
    pub before: Option<&'a SourceView>,
    pub after: &'a SourceView,
    pub detected_by: DetectedBy,
}

/// What moved since the previous reading: the source reached new ports,
/// new hosts. A rule is only (re)evaluated while its sketch grows, so a
/// flood from a host that scanned earlier is not its scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fresh {
    pub ports: bool,
    pub hosts: bool,
}

impl Fresh {
    /// Both: a kernel event says a sketch just grew past a threshold.
    pub const EVENT: Fresh = Fresh {
        ports: true,
        hosts: true,
    };

    /// What grew between the two reads of `r` (a restarted window is new).
    pub fn between(r: &Reading) -> Self {
        let s = r.after;
        let grew = |now: u32, then: fn(&SourceView) -> u32| {
            now > 0
                && r.before.is_none_or(|b| {
                    now > then(b) || s.slow_window_start_ns != b.slow_window_start_ns
                })
        };
        Fresh {
            ports: grew(s.slow_bits, |b| b.slow_bits) && sent(r, &PORT_PROBES) > 0,
            hosts: grew(s.host_bits, |b| b.host_bits) && sent(r, &Probe::ALL) > 0,
        }
    }
}

/// Probes of `kinds` the source sent since the previous reading (all it
/// sent, when there is none).
pub fn sent(r: &Reading, kinds: &[Probe]) -> u64 {
    kinds
        .iter()
        .map(|&k| growth(r.before.map_or(0, |b| b.probe(k)), r.after.probe(k)))
        .sum()
}

/// The port scan or sweep the reading shows, at most one (see the module
/// documentation), with window counts `w`.
pub fn evaluate(
    config: &Config,
    incidents: &Incidents,
    r: &Reading,
    w: Windows,
    fresh: Fresh,
) -> Option<Finding> {
    // Most sources reach nothing new in a tick: done before any lookup.
    if !fresh.ports && !fresh.hosts {
        return None;
    }
    let open = |kind| {
        incidents.is_open(&IncidentKey {
            kind,
            subject: Subject::Source(r.src),
        })
    };
    if open(AlertKind::Sweep) {
        return sweep_finding(config, r, w);
    }
    if open(AlertKind::PortScan) {
        return scan_finding(config, r, w);
    }
    fresh
        .ports
        .then(|| scan_finding(config, r, w))
        .flatten()
        .or_else(|| fresh.hosts.then(|| sweep_finding(config, r, w)).flatten())
}

/// The probe a source's packets of `class` are made of, when a scan or
/// sweep can explain their rate.
fn probe_of(class: RateClass) -> Option<Probe> {
    match class {
        RateClass::Syn => Some(Probe::Syn),
        RateClass::Udp => Some(Probe::Udp),
        RateClass::Icmp => Some(Probe::Echo),
        RateClass::BareAck => Some(Probe::Ack),
        RateClass::Rst => None,
    }
}

/// Whether a scan or sweep among this tick's `findings` explains `src`'s
/// rate of `class`: its SYNs whatever it scans with (a scanner's SYN burst
/// is its scan, as before sweeps), and its other probes when they are what
/// the scan or sweep is made of. One attack, one alert: a fast ping sweep
/// is not also an ICMP flood.
pub fn explains(findings: &[Finding], src: IpAddr, class: RateClass) -> bool {
    findings.iter().any(|f| {
        f.key.subject == Subject::Source(src)
            && matches!(f.key.kind, AlertKind::PortScan | AlertKind::Sweep)
            && (class == RateClass::Syn
                || probe_of(class).is_some_and(|p| f.evidence.scan.as_deref() == Some(p.name())))
    })
}

/// The same for a kernel rate event, from the source's counters: it is
/// reaching new ports fast (its SYNs are a scan's), or it is sweeping with
/// the probes `class` counts.
pub fn explains_rate(config: &Config, r: &Reading, w: Windows, class: RateClass) -> bool {
    let scan = &config.port_scan;
    let scanning = scan.enabled && w.fast_ports > u64::from(scan.fast_ports);
    if class == RateClass::Syn && scanning {
        return true;
    }
    let kind = probes::dominant(r.before, r.after, &Probe::ALL);
    let sweeping = config.sweep.enabled
        && sketch::more_than(w.host_bits, config.sweep.hosts)
        && !probes::is_client(r.after, kind, Estimate::of(w.host_bits));
    (scanning || sweeping) && kind.is_some() && kind == probe_of(class)
}

fn scan_finding(config: &Config, r: &Reading, w: Windows) -> Option<Finding> {
    let kind = probes::dominant(r.before, r.after, &PORT_PROBES);
    port_scan::evaluate(
        &config.port_scan,
        Scan {
            src: r.src,
            windows: w,
            dst: port_scan::addr_of(&r.after.last_dst),
            packets: sent(r, &PORT_PROBES),
            kind,
            client: probes::is_client(r.after, kind, Estimate::of(w.slow_bits)),
            detected_by: r.detected_by,
        },
    )
}

fn sweep_finding(config: &Config, r: &Reading, w: Windows) -> Option<Finding> {
    let kind = probes::dominant(r.before, r.after, &Probe::ALL);
    let s = r.after;
    sweep::evaluate(
        &config.sweep,
        config.port_scan.slow_window,
        Sweep {
            src: r.src,
            host_bits: w.host_bits,
            port_bits: w.slow_bits,
            port: (s.last_dst_port != 0).then_some(s.last_dst_port),
            kind,
            client: probes::is_client(s, kind, Estimate::of(w.host_bits)),
            packets: sent(r, &Probe::ALL),
            detected_by: r.detected_by,
        },
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use jiff::Timestamp;
    use nta_common::{
        IpKey,
        maps::{EventKind, RateClass, ThresholdEvent},
    };

    use super::*;
    use crate::{
        alert::{AlertEvent, ScanRule},
        detect::{Detector, EventContext, Tick},
        traffic::Snapshot,
    };

    const SECOND: u64 = 1_000_000_000;

    fn attacker() -> IpAddr {
        "198.18.0.2".parse().unwrap()
    }

    /// A source's counters: probes sent by kind, the rest set by `more`.
    fn view(probes: &[(Probe, u64)], more: impl FnOnce(&mut SourceView)) -> SourceView {
        let mut s = SourceView {
            last_dst: IpKey::from(IpAddr::from([198, 18, 0, 1])),
            ..SourceView::default()
        };
        for &(kind, n) in probes {
            s.probes[kind as usize] = n;
        }
        more(&mut s);
        s
    }

    /// The alerts one tick from nothing to `after` raises, at `at_ns` after
    /// the windows started.
    fn tick(d: &mut Detector, after: SourceView, at_ns: u64) -> Vec<AlertEvent> {
        let t0 = Instant::now();
        let before = Snapshot::empty(t0);
        let mut now = Snapshot::empty(t0 + Duration::from_secs(1));
        now.sources.insert(attacker().into(), after);
        let mut n = 0;
        let mut next_id = || {
            n += 1;
            n
        };
        let tick = Tick {
            before: &before,
            after: &now,
            now: Timestamp::now(),
            now_ns: at_ns,
        };
        d.on_tick(&tick, &mut next_id)
    }

    fn kinds(events: &[AlertEvent]) -> Vec<(AlertKind, String)> {
        events
            .iter()
            .map(|e| (e.alert().kind, e.alert().message.clone()))
            .collect()
    }

    fn detector() -> Detector {
        Detector::new(Config::default())
    }

    /// nmap -sS -p22 across a /24: a SYN to each host, the kernel's RSTs
    /// to the SYN-ACKs of the few that listen. 254 hosts set ~200 bits.
    fn port_sweep() -> SourceView {
        view(&[(Probe::Syn, 254)], |s| {
            s.tcp_packets = 254 + 20;
            s.rsts = 20;
            s.host_bits = 200;
            s.slow_bits = 1;
            s.fast_ports = 1;
            s.weighted_score = 3;
            s.last_dst_port = 22;
        })
    }

    #[test]
    fn a_sweep_of_one_port_across_a_subnet_is_one_sweep_not_a_port_scan() {
        let events = tick(&mut detector(), port_sweep(), SECOND);
        assert_eq!(
            kinds(&events),
            [(
                AlertKind::Sweep,
                "SYN sweep from 198.18.0.2 of port 22: ~254 hosts (estimated; more than 25 \
                 within 5m)"
                    .to_owned()
            )]
        );
        let alert = events[0].alert();
        assert_eq!(alert.src, Some(attacker()));
        assert_eq!(alert.dst_port, Some(22));
        assert_eq!(alert.evidence.distinct_hosts, Some(254));
        assert_eq!(alert.evidence.detected_by, DetectedBy::Poll);
    }

    #[test]
    fn an_ipv6_sweep_is_seen_alike() {
        let src: IpAddr = "2001:db8::66".parse().unwrap();
        let mut d = detector();
        let t0 = Instant::now();
        let before = Snapshot::empty(t0);
        let mut now = Snapshot::empty(t0 + Duration::from_secs(1));
        now.sources.insert(src.into(), port_sweep());
        let mut n = 0;
        let mut next_id = || {
            n += 1;
            n
        };
        let events = d.on_tick(
            &Tick {
                before: &before,
                after: &now,
                now: Timestamp::now(),
                now_ns: SECOND,
            },
            &mut next_id,
        );
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].alert().kind, AlertKind::Sweep);
        assert_eq!(events[0].alert().src, Some(src));
    }

    #[test]
    fn nmap_host_discovery_is_one_ping_sweep() {
        // nmap -sn on a /24: per host an echo, a SYN to 443, an ACK to 80
        // and a timestamp request; two ports in all.
        let discovery = view(
            &[(Probe::Echo, 508), (Probe::Syn, 254), (Probe::Ack, 254)],
            |s| {
                s.tcp_packets = 508;
                s.bare_acks = 254;
                s.icmp_packets = 508;
                s.host_bits = 200;
                s.slow_bits = 2;
                s.fast_ports = 2;
                s.weighted_score = 6;
                s.last_dst_port = 80;
            },
        );
        let events = tick(&mut detector(), discovery, SECOND);
        assert_eq!(events.len(), 1, "{:?}", kinds(&events));
        let alert = events[0].alert();
        assert_eq!(alert.kind, AlertKind::Sweep);
        assert!(
            alert
                .message
                .starts_with("Ping sweep from 198.18.0.2: ~254 hosts"),
            "{}",
            alert.message
        );
        assert_eq!(alert.dst_port, None);
        assert_eq!(alert.evidence.scan.as_deref(), Some("echo"));
    }

    #[test]
    fn a_port_scan_of_one_host_is_not_a_sweep() {
        let scan = view(&[(Probe::Syn, 1000)], |s| {
            s.tcp_packets = 1000;
            s.host_bits = 1;
            s.slow_bits = 445;
            s.fast_ports = 445;
            s.weighted_score = 1300;
        });
        let events = tick(&mut detector(), scan, SECOND);
        assert_eq!(events.len(), 1);
        let alert = events[0].alert();
        assert_eq!(alert.kind, AlertKind::PortScan);
        assert!(
            alert
                .message
                .starts_with("SYN scan from 198.18.0.2 on 198.18.0.1: ~1 041 ports (estimated;"),
            "{}",
            alert.message
        );
    }

    #[test]
    fn many_ports_on_many_hosts_is_one_port_scan() {
        // nmap -sS --top-ports 100 on a /24: both rules hold.
        let scan = view(&[(Probe::Syn, 25_400)], |s| {
            s.tcp_packets = 25_400;
            s.host_bits = 200;
            s.slow_bits = 93;
            s.fast_ports = 93;
            s.weighted_score = 200;
        });
        let events = tick(&mut detector(), scan, SECOND);
        assert_eq!(events.len(), 1, "{:?}", kinds(&events));
        assert_eq!(events[0].alert().kind, AlertKind::PortScan);
    }

    #[test]
    fn a_sweep_that_moves_on_to_more_ports_stays_one_sweep() {
        let mut d = detector();
        let first = port_sweep();
        assert_eq!(
            tick(&mut d, first, SECOND)[0].alert().kind,
            AlertKind::Sweep
        );
        // Next, the same hosts on 40 more ports: a port scan's numbers.
        let later = view(&[(Probe::Syn, 254 * 41)], |s| {
            s.host_bits = 201;
            s.slow_bits = 41;
            s.fast_ports = 40;
            s.weighted_score = 120;
            s.last_dst_port = 8080;
        });
        let events = tick(&mut d, later, 2 * SECOND);
        assert_eq!(events.len(), 1, "{:?}", kinds(&events));
        assert!(matches!(&events[0], AlertEvent::Updated(a) if a.kind == AlertKind::Sweep));
        assert_eq!(events[0].alert().evidence.distinct_ports, Some(43));
    }

    #[test]
    fn sixteen_ports_within_five_minutes_raise_a_slow_port_scan() {
        // nmap -T1: one probe every 15 s, 16 ports after four minutes.
        let slow = view(&[(Probe::Syn, 16)], |s| {
            s.host_bits = 1;
            s.slow_bits = 16;
            s.fast_ports = 1;
            s.fast_window_start_ns = 239 * SECOND;
            s.weighted_score = 1;
            s.weighted_window_start_ns = 239 * SECOND;
        });
        let events = tick(&mut detector(), slow, 240 * SECOND);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].alert().evidence.rules, [ScanRule::Slow]);
    }

    #[test]
    fn a_monitoring_check_of_many_servers_raises_nothing() {
        // 120 servers × 5 ports in a minute, each an HTTP-style check:
        // SYN, ACK, request, ACK, FIN+ACK, ACK.
        let checks = view(&[(Probe::Syn, 600), (Probe::Ack, 2400)], |s| {
            s.tcp_packets = 3600;
            s.bare_acks = 1800;
            s.host_bits = 100;
            s.slow_bits = 5;
            s.fast_ports = 5;
            s.weighted_score = 15;
            s.last_dst_port = 443;
        });
        assert_eq!(kinds(&tick(&mut detector(), checks, SECOND)), []);
    }

    #[test]
    fn a_browsing_client_raises_nothing() {
        // Forty sites over TCP and QUIC, DNS and NTP (all in one tick: the
        // rates stay under the volumetric rules).
        let browser = view(
            &[(Probe::Udp, 300), (Probe::Syn, 80), (Probe::Ack, 120)],
            |s| {
                s.udp_packets = 400;
                s.tcp_packets = 400;
                s.bare_acks = 100;
                s.host_bits = 40;
                s.slow_bits = 4;
                s.fast_ports = 3;
                s.weighted_score = 9;
                s.last_dst_port = 443;
            },
        );
        assert_eq!(kinds(&tick(&mut detector(), browser, SECOND)), []);
    }

    #[test]
    fn servers_resolvers_and_bulk_transfers_raise_nothing() {
        // A web server's and a resolver's replies, and a download's ACKs
        // to the one port it uses: no new hosts or ports to speak of.
        let server = view(&[], |s| {
            s.tcp_packets = 90_000;
            s.udp_packets = 900;
        });
        assert_eq!(kinds(&tick(&mut detector(), server, SECOND)), []);
        let download = view(&[(Probe::Ack, 30_000)], |s| {
            s.tcp_packets = 30_000;
            s.bare_acks = 30_000;
            s.host_bits = 1;
            s.slow_bits = 1;
            s.fast_ports = 1;
            s.weighted_score = 3;
            s.last_dst_port = 443;
        });
        assert_eq!(kinds(&tick(&mut detector(), download, SECOND)), []);
    }

    #[test]
    fn the_kernels_sweep_event_raises_the_sweep_at_once_and_the_tick_updates_it() {
        let mut d = detector();
        let sweep = port_sweep();
        let ctx = EventContext {
            destination: None,
            previous_destination: None,
            event: ThresholdEvent {
                kind: EventKind::Sweep as u32,
                class: 0,
                key: attacker().into(),
                count: 26,
                window_start_ns: 0,
                at_ns: SECOND / 2,
            },
            source: Some(sweep),
            source_before: None,
            port_syns: Vec::new(),
            now: Timestamp::now(),
            now_ns: SECOND / 2,
        };
        let mut n = 0;
        let mut next_id = || {
            n += 1;
            n
        };
        let events = d.on_event(&ctx, &mut next_id);
        assert_eq!(events.len(), 1);
        assert!(matches!(&events[0], AlertEvent::Opened(a) if a.kind == AlertKind::Sweep));
        assert_eq!(events[0].alert().evidence.detected_by, DetectedBy::Kernel);
        let events = tick(&mut d, sweep, SECOND);
        assert!(matches!(&events[..], [AlertEvent::Updated(a)] if a.kind == AlertKind::Sweep));
    }

    #[test]
    fn a_clients_sweep_event_raises_nothing() {
        let mut d = detector();
        let checks = view(&[(Probe::Syn, 600), (Probe::Ack, 2400)], |s| {
            s.tcp_packets = 3600;
            s.bare_acks = 1800;
            s.host_bits = 26;
        });
        let ctx = EventContext {
            destination: None,
            previous_destination: None,
            event: ThresholdEvent {
                kind: EventKind::Sweep as u32,
                class: 0,
                key: attacker().into(),
                count: 26,
                window_start_ns: 0,
                at_ns: SECOND,
            },
            source: Some(checks),
            source_before: None,
            port_syns: Vec::new(),
            now: Timestamp::now(),
            now_ns: SECOND,
        };
        let mut next_id = || 1;
        assert!(d.on_event(&ctx, &mut next_id).is_empty());
    }

    #[test]
    fn scans_are_named_by_what_the_source_sent_since_the_last_tick() {
        let mut d = detector();
        // A browsing host (many ACKs already) starts a UDP scan.
        let before = view(&[(Probe::Ack, 5000), (Probe::Syn, 100)], |_| {});
        let after = view(
            &[(Probe::Ack, 5010), (Probe::Syn, 100), (Probe::Udp, 40)],
            |s| {
                s.slow_bits = 40;
                s.fast_ports = 40;
                s.weighted_score = 100;
                s.host_bits = 1;
            },
        );
        let ctx = EventContext {
            destination: None,
            previous_destination: None,
            event: ThresholdEvent {
                kind: EventKind::ScanFast as u32,
                class: 0,
                key: attacker().into(),
                count: 16,
                window_start_ns: 0,
                at_ns: SECOND,
            },
            source: Some(after),
            source_before: Some(before),
            port_syns: Vec::new(),
            now: Timestamp::now(),
            now_ns: SECOND,
        };
        let mut next_id = || 1;
        let events = d.on_event(&ctx, &mut next_id);
        assert_eq!(events.len(), 1);
        let alert = events[0].alert();
        assert!(
            alert.message.starts_with("UDP scan from 198.18.0.2"),
            "{}",
            alert.message
        );
        assert_eq!(alert.evidence.scan.as_deref(), Some("udp"));
    }

    /// A ping sweep of a /16 at 2 000 echo requests a second: 2 000 hosts
    /// in the tick fill most of the host sketch.
    fn fast_ping_sweep() -> SourceView {
        view(&[(Probe::Echo, 2000)], |s| {
            s.icmp_packets = 2000;
            s.host_bits = 500;
        })
    }

    fn rate_event(class: RateClass, count: u64, source: SourceView) -> EventContext {
        EventContext {
            destination: None,
            previous_destination: None,
            event: ThresholdEvent {
                kind: EventKind::SourceRate as u32,
                class: class as u32,
                key: attacker().into(),
                count,
                window_start_ns: 0,
                at_ns: SECOND,
            },
            source: Some(source),
            source_before: None,
            port_syns: Vec::new(),
            now: Timestamp::now(),
            now_ns: SECOND,
        }
    }

    #[test]
    fn a_fast_ping_sweep_is_a_sweep_not_also_an_icmp_flood() {
        let events = tick(&mut detector(), fast_ping_sweep(), SECOND);
        assert_eq!(events.len(), 1, "{:?}", kinds(&events));
        assert_eq!(events[0].alert().kind, AlertKind::Sweep);
        let mut next_id = || 1;
        let ctx = rate_event(RateClass::Icmp, 1001, fast_ping_sweep());
        assert!(detector().on_event(&ctx, &mut next_id).is_empty());
    }

    #[test]
    fn an_icmp_flood_on_one_host_is_still_a_flood() {
        let flood = view(&[(Probe::Echo, 2000)], |s| {
            s.icmp_packets = 2000;
            s.host_bits = 1;
        });
        let events = tick(&mut detector(), flood, SECOND);
        assert_eq!(events.len(), 1, "{:?}", kinds(&events));
        assert_eq!(events[0].alert().kind, AlertKind::Volumetric);
        let mut next_id = || 1;
        let ctx = rate_event(RateClass::Icmp, 1001, flood);
        let events = detector().on_event(&ctx, &mut next_id);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].alert().kind, AlertKind::Volumetric);
    }

    #[test]
    fn a_domain_logon_touching_many_privileged_ports_raises_nothing() {
        // DNS, Kerberos, LDAP, SMB, RPC, NTP, HTTP and HTTPS within 3 s:
        // eight ports below 1024, a score of 24, over TCP connections that
        // carry requests and UDP queries.
        let logon = view(
            &[(Probe::Syn, 20), (Probe::Udp, 30), (Probe::Ack, 100)],
            |s| {
                s.tcp_packets = 300;
                s.bare_acks = 80;
                s.udp_packets = 30;
                s.host_bits = 4;
                s.slow_bits = 9;
                s.fast_ports = 8;
                s.weighted_score = 24;
            },
        );
        assert_eq!(kinds(&tick(&mut detector(), logon, SECOND)), []);
    }

    #[test]
    fn a_talkative_hosts_slow_scan_is_caught_once_its_probes_outnumber_its_data() {
        // Browsing: 40 connections, 100 data segments. Then nmap -T2.
        let scanning = |ports: u64, bits: u32| {
            view(&[(Probe::Syn, 40 + ports), (Probe::Ack, 200)], |s| {
                s.tcp_packets = 40 + ports + 200 + 100;
                s.bare_acks = 150;
                s.host_bits = 12;
                s.slow_bits = bits;
                s.fast_ports = 2;
                s.weighted_score = 4;
            })
        };
        assert_eq!(kinds(&tick(&mut detector(), scanning(20, 20), SECOND)), []);
        let events = tick(&mut detector(), scanning(300, 230), SECOND);
        assert_eq!(events.len(), 1, "{:?}", kinds(&events));
        assert_eq!(events[0].alert().evidence.rules, [ScanRule::Slow]);
    }
}
