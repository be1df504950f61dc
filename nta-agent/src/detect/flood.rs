//! Floods on one destination host, per traffic class (TCP without SYN or
//! payload, UDP, ICMP, fragments, everything), whoever sends them, and
//! reflection: a UDP flood made of one amplifying service's replies.
//!
//! One attack, one alert: a flood is reported in the one class that says
//! most about it. A UDP flood from an amplifier's port is a reflection, not
//! also a UDP flood; a fragmented UDP flood is a fragment flood (its first
//! fragments are UDP too); a flood that a class flood (or a single source's
//! own `volumetric` incident) explains is not also a `traffic_flood`.
//! SYN floods are `syn_flood.rs`'s.

use std::net::IpAddr;

use nta_common::classify::{DST_CLASSES, DstClass, REFLECTION_SERVICES, SERVICES};

use super::{Finding, IncidentKey, Subject, thresholds::BURST_WINDOW};
use crate::{
    alert::{AlertKind, Count, DetectedBy, Evidence},
    config::{ClassRates, Flood},
};

/// Share of a victim's UDP packets one service's port must send for the
/// flood to be that service's reflection: the documented "most".
pub const REFLECTION_SHARE: f64 = 0.5;

/// For a fragment flood to read as reflection, the service's datagrams
/// (first fragments) must be at least this share of the fragments: an
/// amplifier's reply of up to 100 fragments (150 kB, past what DNS, CLDAP
/// or NTP send) still counts, while a few ordinary DNS answers during an
/// unrelated fragment flood do not make it a DNS reflection.
pub const REFLECTION_FRAGMENT_SHARE: f64 = 0.01;

/// Fewest UDP packets over the interval for the service shares to say
/// whether a flood is a reflection: an event just after a snapshot (or
/// read after the flood stopped) has next to none.
pub const MIN_SHARE_PACKETS: u64 = 100;

/// Share of a victim's packets (or bytes) that the class floods must carry
/// for them to explain the whole: past it there is no `traffic_flood` too.
pub const EXPLAINED_SHARE: f64 = 0.5;

/// Distinct sources up to which the busiest are listed: past it they are
/// spoofed and any list is noise (a reflection's are listed always: they
/// are real servers an operator reports).
pub const FEW_SOURCES: u64 = 50;

/// The window a victim's rates were measured in, and how many times its
/// thresholds they must be there to be a flood.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateWindow {
    pub secs: f64,
    pub multiple: f64,
}

impl RateWindow {
    /// The kernel's rate window, or the interval between two snapshots:
    /// the thresholds as set.
    pub const RATE: Self = Self {
        secs: 1.0,
        multiple: 1.0,
    };

    /// The kernel's burst window, where a flood is `burst` times the
    /// thresholds (see [`Flood::burst`]).
    pub fn burst(burst: f64) -> Self {
        Self {
            secs: BURST_WINDOW.as_secs_f64(),
            multiple: burst.max(1.0),
        }
    }

    /// Whether `rate` is past `threshold` (an off rule, 0, never is).
    pub fn over(&self, rate: f64, threshold: f64) -> bool {
        threshold > 0.0 && rate > threshold * self.multiple
    }
}

/// What one destination received, per [`DstClass`], and what else explains
/// it.
#[derive(Debug, Clone, PartialEq)]
pub struct VictimTraffic {
    pub dst: IpAddr,
    /// Packets and bits per second, by class.
    pub pps: [f64; DST_CLASSES],
    pub bps: [f64; DST_CLASSES],
    /// Packets since the previous finding, by class.
    pub packets: [u64; DST_CLASSES],
    /// Packets and bytes by class over the interval the service counts
    /// cover, for the shares: UDP from a service, classes of the whole.
    pub interval_packets: [u64; DST_CLASSES],
    pub interval_bytes: [u64; DST_CLASSES],
    /// UDP packets from each reflection service's port, same interval.
    pub service_packets: [u64; SERVICES],
    pub top_ports: Vec<Count<u16>>,
    pub top_sources: Vec<Count<IpAddr>>,
    /// HyperLogLog estimate over the flood's sources.
    pub distinct_sources: Option<u64>,
    /// Classes one non-spoofed source accounts for, with an incident of its
    /// own (`volumetric`): not a flood on the victim as well.
    pub single_source: [bool; DST_CLASSES],
    /// Classes already reported as a flood of this victim (an open
    /// incident, or this tick's SYN flood): they explain `All`.
    pub flooding: [bool; DST_CLASSES],
    pub detected_by: DetectedBy,
    /// Where `pps` and `bps` were measured.
    pub window: RateWindow,
}

impl VictimTraffic {
    /// Nothing received yet by `dst`.
    pub fn new(dst: IpAddr, detected_by: DetectedBy) -> Self {
        Self {
            dst,
            pps: [0.0; DST_CLASSES],
            bps: [0.0; DST_CLASSES],
            packets: [0; DST_CLASSES],
            interval_packets: [0; DST_CLASSES],
            interval_bytes: [0; DST_CLASSES],
            service_packets: [0; SERVICES],
            top_ports: Vec::new(),
            top_sources: Vec::new(),
            distinct_sources: None,
            single_source: [false; DST_CLASSES],
            flooding: [false; DST_CLASSES],
            detected_by,
            window: RateWindow::RATE,
        }
    }
}

/// The alert kind of a flood of `class`.
pub const fn kind_of(class: DstClass) -> AlertKind {
    match class {
        DstClass::Syn => AlertKind::SynFlood,
        DstClass::Tcp => AlertKind::TcpFlood,
        DstClass::Udp => AlertKind::UdpFlood,
        DstClass::Icmp => AlertKind::IcmpFlood,
        DstClass::Fragment => AlertKind::FragmentFlood,
        DstClass::All => AlertKind::TrafficFlood,
    }
}

/// The class an alert kind reports, for the victim-side floods.
pub const fn class_of(kind: AlertKind) -> Option<DstClass> {
    Some(match kind {
        AlertKind::SynFlood => DstClass::Syn,
        AlertKind::TcpFlood => DstClass::Tcp,
        AlertKind::UdpFlood | AlertKind::Reflection => DstClass::Udp,
        AlertKind::IcmpFlood => DstClass::Icmp,
        AlertKind::FragmentFlood => DstClass::Fragment,
        AlertKind::TrafficFlood => DstClass::All,
        _ => return None,
    })
}

/// Whether `class` is past `rates` in `v`, in its window.
fn crosses(rates: ClassRates, v: &VictimTraffic, class: DstClass) -> bool {
    let i = class as usize;
    v.window.over(v.pps[i], rates.pps) || v.window.over(v.bps[i], rates.mbps * 1e6)
}

/// The busiest reflection service, if it sent most of the victim's UDP
/// (and, for a fragment flood, enough of its fragments).
fn reflection(v: &VictimTraffic, class: DstClass) -> Option<usize> {
    let udp = v.interval_packets[DstClass::Udp as usize];
    let (i, &from_service) = v
        .service_packets
        .iter()
        .enumerate()
        .max_by_key(|(i, n)| (**n, std::cmp::Reverse(*i)))?;
    if udp == 0 || (from_service as f64) < REFLECTION_SHARE * udp as f64 {
        return None;
    }
    let fragments = v.interval_packets[DstClass::Fragment as usize];
    if class == DstClass::Fragment
        && (from_service as f64) < REFLECTION_FRAGMENT_SHARE * fragments as f64
    {
        return None;
    }
    Some(i)
}

/// Whether any class of `v` is past its rates under `cfg`: worth the
/// evidence (sources, sketch) a finding needs.
pub fn any_over(cfg: &Flood, v: &VictimTraffic) -> bool {
    cfg.enabled
        && cfg
            .classes()
            .iter()
            .any(|(class, rates)| crosses(*rates, v, *class))
}

/// The findings for one victim under `cfg`, its effective settings: at
/// most one per class, and one in all for one attack.
pub fn evaluate(cfg: &Flood, v: &VictimTraffic) -> Vec<Finding> {
    if !cfg.enabled {
        return Vec::new();
    }
    let over =
        |class: DstClass| !v.single_source[class as usize] && crosses(cfg.rates(class), v, class);
    let mut classes: Vec<DstClass> = [DstClass::Tcp, DstClass::Udp, DstClass::Icmp]
        .into_iter()
        .filter(|c| over(*c))
        .collect();
    let udp = DstClass::Udp as usize;
    if v.flooding[udp] && v.interval_packets[udp] < MIN_SHARE_PACKETS {
        // Already reported (as a reflection or not), and too little to
        // tell which it is now: the open incident stands.
        classes.retain(|c| *c != DstClass::Udp);
    }
    let mut findings = Vec::new();
    let fragment = over(DstClass::Fragment);
    // Reflection first: it names the attack best, fragmented or not.
    let udp = classes.contains(&DstClass::Udp);
    let reflected = udp
        .then(|| reflection(v, DstClass::Udp).map(|s| (DstClass::Udp, s)))
        .flatten()
        .or_else(|| {
            fragment
                .then(|| reflection(v, DstClass::Fragment).map(|s| (DstClass::Fragment, s)))
                .flatten()
        });
    if let Some((class, service)) = reflected {
        findings.push(finding(cfg.rates(class), v, class, Some(service)));
        classes.retain(|c| *c != DstClass::Udp);
    } else if fragment {
        // A fragmented UDP or ICMP flood: its first fragments are in their
        // transport's class too; when fragments are as many, they are one
        // flood, reported as the fragment flood.
        let fragments = v.interval_packets[DstClass::Fragment as usize];
        classes.retain(|c| *c == DstClass::Tcp || fragments < v.interval_packets[*c as usize]);
        findings.push(finding(
            cfg.rates(DstClass::Fragment),
            v,
            DstClass::Fragment,
            None,
        ));
    }
    for class in classes {
        findings.push(finding(cfg.rates(class), v, class, None));
    }
    if over(DstClass::All) && !explained(v, &findings) {
        findings.push(finding(cfg.rates(DstClass::All), v, DstClass::All, None));
    }
    findings
}

/// Whether the class floods (reported now, already open, or a single
/// source's) carry most of the victim's packets or bytes.
fn explained(v: &VictimTraffic, findings: &[Finding]) -> bool {
    let found: Vec<DstClass> = findings
        .iter()
        .filter_map(|f| class_of(f.key.kind))
        .collect();
    let all = DstClass::All as usize;
    let share = |of: &[u64; DST_CLASSES]| {
        let part: u64 = DstClass::ALL[..all]
            .iter()
            .filter(|c| {
                let i = **c as usize;
                found.contains(c) || v.flooding[i] || v.single_source[i]
            })
            .map(|c| of[*c as usize])
            .sum();
        // Fragments are counted in their transport's class as well.
        part.min(of[all]) as f64 / of[all].max(1) as f64
    };
    // The kernel's window too: on an event just after a snapshot the
    // growth since it is next to nothing.
    share(&v.interval_packets) >= EXPLAINED_SHARE
        || share(&v.interval_bytes) >= EXPLAINED_SHARE
        || share(&v.packets) >= EXPLAINED_SHARE
}

/// `85000.0` → `85 000`: rates read at a glance.
pub fn grouped(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// A threshold as written in messages: grouped when whole, else as set.
pub fn number(value: f64) -> String {
    if value.fract() == 0.0 {
        grouped(value)
    } else {
        value.to_string()
    }
}

/// Megabits per second as written in messages: whole above 10, else one
/// decimal.
pub fn mbit(bps: f64) -> String {
    let m = bps / 1e6;
    if m >= 10.0 {
        grouped(m)
    } else {
        format!("{m:.1}")
    }
}

/// Who sent it, as a message says it.
pub fn from_whom(distinct: Option<u64>, estimated: bool, top: &[Count<IpAddr>]) -> String {
    match (distinct, top.first()) {
        (Some(n), _) if n > 1 => {
            let about = if estimated { "~" } else { "" };
            format!(" from {about}{} distinct sources", grouped(n as f64))
        }
        (_, Some(c)) => format!(" from {}", c.value),
        _ => String::new(),
    }
}

/// The busiest port, when it has most of the listed packets.
fn main_port(top: &[Count<u16>]) -> Option<u16> {
    let total: u64 = top.iter().map(|c| c.packets).sum();
    top.first()
        .filter(|c| (c.packets as f64) >= 0.5 * total as f64)
        .map(|c| c.value)
}

fn finding(
    rates: ClassRates,
    v: &VictimTraffic,
    class: DstClass,
    service: Option<usize>,
) -> Finding {
    let i = class as usize;
    let (pps, bps) = (v.pps[i], v.bps[i]);
    // The crossed rate is the measure; packets first, so that an incident
    // keeps one unit while its packet rate stays high.
    let (measure, threshold, unit) = if v.window.over(pps, rates.pps) {
        (pps, rates.pps, "pkt/s")
    } else {
        (bps / 1e6, rates.mbps, "Mbit/s")
    };
    let ratio = [(pps, rates.pps), (bps / 1e6, rates.mbps)]
        .iter()
        .filter(|(_, t)| *t > 0.0)
        .map(|(m, t)| m / t)
        .fold(0.0, f64::max);
    let port = (class != DstClass::Icmp)
        .then(|| main_port(&v.top_ports))
        .flatten();
    let service = service.and_then(|s| REFLECTION_SERVICES.get(s));
    let few = v.distinct_sources.is_none_or(|n| n <= FEW_SOURCES);
    let rates_text = format!("{} pkt/s, {} Mbit/s", grouped(pps), mbit(bps));
    let threshold_text = format!("threshold {} {unit}", number(threshold));
    let (kind, message) = match service {
        Some((service_port, name)) => (
            AlertKind::Reflection,
            format!(
                "{name} reflection on {}: {rates_text} from UDP port {service_port}{} \
                 ({threshold_text})",
                v.dst,
                from_whom(v.distinct_sources, true, &v.top_sources).replacen(" from", " of", 1)
            ),
        ),
        None => {
            let to = port.map_or_else(String::new, |p| format!(" to port {p}"));
            let what = match class {
                DstClass::Syn => "SYN",
                DstClass::Tcp => "TCP",
                DstClass::Udp => "UDP",
                DstClass::Icmp => "ICMP",
                DstClass::Fragment => "Fragment",
                DstClass::All => "Traffic",
            };
            (
                kind_of(class),
                format!(
                    "{what} flood on {}: {rates_text}{to}{} ({threshold_text})",
                    v.dst,
                    from_whom(v.distinct_sources, true, &v.top_sources)
                ),
            )
        }
    };
    let named_source = v.distinct_sources.unwrap_or(1) <= 1;
    Finding {
        key: IncidentKey {
            kind,
            subject: Subject::DstHost(v.dst),
        },
        src: named_source
            .then(|| v.top_sources.first().map(|c| c.value))
            .flatten(),
        dst: Some(v.dst),
        dst_port: port,
        measure,
        ratio,
        packets: v.packets[i],
        message,
        evidence: Evidence {
            threshold,
            unit: unit.into(),
            window_secs: v.window.secs,
            class: Some(class.name().into()),
            distinct_sources: v.distinct_sources,
            estimated: v.distinct_sources.is_some(),
            pps: Some(pps),
            bps: Some(bps),
            service: service.map(|(_, name)| (*name).to_owned()),
            service_port: service.map(|(p, _)| *p),
            top_ports: if class == DstClass::Icmp {
                Vec::new()
            } else {
                v.top_ports.clone()
            },
            top_sources: if few || service.is_some() {
                v.top_sources.clone()
            } else {
                Vec::new()
            },
            detected_by: v.detected_by,
            ..Evidence::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const VICTIM: &str = "198.18.0.1";

    /// `pps` packets a second of `class` (and of `All`), 600-byte frames,
    /// from `sources` distinct sources, to port 80.
    fn traffic(class: DstClass, pps: f64, sources: u64) -> VictimTraffic {
        let mut v = VictimTraffic {
            distinct_sources: Some(sources),
            top_ports: vec![Count {
                value: 80,
                packets: pps as u64,
            }],
            ..VictimTraffic::new(VICTIM.parse().unwrap(), DetectedBy::Poll)
        };
        add(&mut v, class, pps, 600.0);
        if class != DstClass::All {
            add(&mut v, DstClass::All, pps, 600.0);
        }
        v
    }

    fn add(v: &mut VictimTraffic, class: DstClass, pps: f64, frame: f64) {
        let i = class as usize;
        v.pps[i] += pps;
        v.bps[i] += pps * frame * 8.0;
        v.packets[i] += pps as u64;
        v.interval_packets[i] += pps as u64;
        v.interval_bytes[i] += (pps * frame) as u64;
    }

    fn kinds(findings: &[Finding]) -> Vec<AlertKind> {
        findings.iter().map(|f| f.key.kind).collect()
    }

    #[test]
    fn each_class_floods_above_its_packet_rate_and_not_below() {
        let cfg = Flood::default();
        for (class, quiet, flood, kind) in [
            (DstClass::Tcp, 100_000.0, 150_000.0, AlertKind::TcpFlood),
            (DstClass::Udp, 20_000.0, 85_000.0, AlertKind::UdpFlood),
            (DstClass::Icmp, 5_000.0, 9_000.0, AlertKind::IcmpFlood),
            (
                DstClass::Fragment,
                5_000.0,
                9_000.0,
                AlertKind::FragmentFlood,
            ),
        ] {
            // At the packet rate exactly: not more than it. (The bit rates
            // have a test of their own.)
            let mut at_rate = traffic(class, quiet, 60_000);
            at_rate.bps = [0.0; DST_CLASSES];
            assert!(evaluate(&cfg, &at_rate).is_empty(), "{class:?}");
            let found = evaluate(&cfg, &traffic(class, flood, 60_000));
            assert_eq!(kinds(&found), vec![kind], "{class:?}");
            assert_eq!(found[0].evidence.unit, "pkt/s");
        }
    }

    #[test]
    fn a_udp_flood_says_what_where_and_from_how_many() {
        let mut v = traffic(DstClass::Udp, 85_000.0, 60_000);
        v.bps[DstClass::Udp as usize] = 52e6;
        let f = &evaluate(&Flood::default(), &v)[0];
        assert_eq!(
            f.message,
            "UDP flood on 198.18.0.1: 85 000 pkt/s, 52 Mbit/s to port 80 from ~60 000 distinct \
             sources (threshold 20 000 pkt/s)"
        );
        assert_eq!(f.key.subject, Subject::DstHost(VICTIM.parse().unwrap()));
        assert_eq!(f.src, None, "spoofed sources name no single source");
        assert_eq!(f.dst_port, Some(80));
        let e = &f.evidence;
        assert_eq!(e.class.as_deref(), Some("udp"));
        assert_eq!((e.pps, e.bps), (Some(85_000.0), Some(52e6)));
        assert_eq!((e.distinct_sources, e.estimated), (Some(60_000), true));
        assert!(e.top_sources.is_empty(), "too many sources to list");
        assert_eq!(f.ratio, 4.25);
    }

    #[test]
    fn the_bit_rate_alone_crosses_with_large_frames() {
        // 10 000 pkt/s of 1 500-byte UDP: 120 Mbit/s, under 1 000 Mbit/s;
        // 100 000 pkt/s: 1 200 Mbit/s, and over 20 000 pkt/s too.
        let cfg = Flood {
            udp: ClassRates {
                pps: 0.0,
                mbps: 100.0,
            },
            ..Flood::default()
        };
        let mut v = traffic(DstClass::Udp, 10_000.0, 3);
        v.bps[DstClass::Udp as usize] = 120e6;
        let f = &evaluate(&cfg, &v)[0];
        assert_eq!(f.evidence.unit, "Mbit/s");
        assert_eq!((f.measure, f.evidence.threshold), (120.0, 100.0));
        assert!(
            f.message.ends_with("(threshold 100 Mbit/s)"),
            "{}",
            f.message
        );
        let off = Flood {
            udp: ClassRates::OFF,
            ..Flood::default()
        };
        assert!(evaluate(&off, &v).is_empty(), "both rates off");
    }

    #[test]
    fn overrides_raise_and_lower_the_victims_rates() {
        let text = "[[override]]\nnetwork = \"198.18.0.0/24\"\nflood = { udp = { pps = 200000 } }\n\n\
                    [[override]]\nnetwork = \"198.18.1.0/24\"\nflood = { udp = { pps = 500 } }\n";
        let c = Config::parse(text, std::path::Path::new("t.toml")).unwrap();
        let v = traffic(DstClass::Udp, 85_000.0, 60_000);
        assert!(evaluate(&c.flood_for(v.dst), &v).is_empty(), "raised");
        let mut small = traffic(DstClass::Udp, 900.0, 60_000);
        small.dst = "198.18.1.7".parse().unwrap();
        assert!(evaluate(&Flood::default(), &small).is_empty());
        assert_eq!(
            kinds(&evaluate(&c.flood_for(small.dst), &small)),
            vec![AlertKind::UdpFlood],
            "lowered"
        );
    }

    #[test]
    fn a_flood_from_an_amplifiers_port_is_one_reflection_alert() {
        let mut v = traffic(DstClass::Udp, 85_000.0, 200);
        v.bps[DstClass::Udp as usize] = 400e6;
        v.service_packets[5] = 80_000; // NTP, port 123
        let found = evaluate(&Flood::default(), &v);
        assert_eq!(
            kinds(&found),
            vec![AlertKind::Reflection],
            "not also udp_flood"
        );
        let f = &found[0];
        assert_eq!(
            f.message,
            "NTP reflection on 198.18.0.1: 85 000 pkt/s, 400 Mbit/s from UDP port 123 of ~200 \
             distinct sources (threshold 20 000 pkt/s)"
        );
        assert_eq!(f.evidence.service.as_deref(), Some("NTP"));
        assert_eq!(f.evidence.service_port, Some(123));
        assert_eq!(f.evidence.class.as_deref(), Some("udp"));
    }

    #[test]
    fn a_reported_udp_flood_seen_without_an_interval_to_judge_is_left_as_reported() {
        // A window past the threshold, read after a snapshot that the
        // flood's last packets had already reached: no service shares.
        let mut v = traffic(DstClass::Udp, 85_000.0, 200);
        v.interval_packets = [0; DST_CLASSES];
        v.interval_bytes = [0; DST_CLASSES];
        assert_eq!(
            kinds(&evaluate(&Flood::default(), &v)),
            vec![AlertKind::UdpFlood],
            "not reported yet: a UDP flood is all it can be said to be"
        );
        v.flooding[DstClass::Udp as usize] = true;
        assert_eq!(kinds(&evaluate(&Flood::default(), &v)), vec![]);
        // With an interval to judge, the open incident is updated.
        v.interval_packets[DstClass::Udp as usize] = 8_500;
        v.service_packets[5] = 8_000;
        assert_eq!(
            kinds(&evaluate(&Flood::default(), &v)),
            vec![AlertKind::Reflection]
        );
    }

    #[test]
    fn udp_from_many_ports_is_a_plain_udp_flood() {
        let mut v = traffic(DstClass::Udp, 85_000.0, 60_000);
        // DNS answers are a minority of it: 40 %.
        v.service_packets[2] = 34_000;
        assert_eq!(
            kinds(&evaluate(&Flood::default(), &v)),
            vec![AlertKind::UdpFlood]
        );
    }

    #[test]
    fn a_fragmented_udp_flood_is_one_fragment_flood() {
        // Each datagram in three fragments: 30 000 first fragments are UDP.
        let mut v = traffic(DstClass::Fragment, 90_000.0, 60_000);
        add(&mut v, DstClass::Udp, 30_000.0, 1_500.0);
        let found = evaluate(&Flood::default(), &v);
        assert_eq!(kinds(&found), vec![AlertKind::FragmentFlood]);
        assert!(
            found[0]
                .message
                .starts_with("Fragment flood on 198.18.0.1: 90 000 pkt/s"),
            "{}",
            found[0].message
        );
        // A TCP flood beside it is another attack: its own alert.
        add(&mut v, DstClass::Tcp, 150_000.0, 60.0);
        assert_eq!(
            kinds(&evaluate(&Flood::default(), &v)),
            vec![AlertKind::FragmentFlood, AlertKind::TcpFlood]
        );
    }

    #[test]
    fn a_fragmented_reflection_is_one_reflection_alert() {
        // DNS answers too big for one frame: first fragments from port 53.
        let mut v = traffic(DstClass::Fragment, 90_000.0, 300);
        add(&mut v, DstClass::Udp, 30_000.0, 1_500.0);
        v.service_packets[2] = 30_000;
        let found = evaluate(&Flood::default(), &v);
        assert_eq!(kinds(&found), vec![AlertKind::Reflection]);
        assert_eq!(found[0].evidence.service.as_deref(), Some("DNS"));
        // Only fragments crossing, a few DNS answers: not a reflection.
        let mut v = traffic(DstClass::Fragment, 90_000.0, 300);
        add(&mut v, DstClass::Udp, 20.0, 200.0);
        v.service_packets[2] = 20;
        assert_eq!(
            kinds(&evaluate(&Flood::default(), &v)),
            vec![AlertKind::FragmentFlood]
        );
    }

    #[test]
    fn traffic_flood_only_when_no_class_flood_explains_it() {
        let cfg = Flood::default();
        // 900 000 pkt/s of UDP: the UDP flood says it all.
        let udp = traffic(DstClass::Udp, 900_000.0, 60_000);
        assert_eq!(kinds(&evaluate(&cfg, &udp)), vec![AlertKind::UdpFlood]);
        // A SYN flood found this tick explains its share of All too.
        let mut syn = traffic(DstClass::Syn, 900_000.0, 60_000);
        syn.flooding[DstClass::Syn as usize] = true;
        assert!(evaluate(&cfg, &syn).is_empty());
        // GRE (no class of its own): a traffic flood.
        let gre = traffic(DstClass::All, 900_000.0, 60_000);
        let found = evaluate(&cfg, &gre);
        assert_eq!(kinds(&found), vec![AlertKind::TrafficFlood]);
        assert!(
            found[0].message.starts_with("Traffic flood on 198.18.0.1"),
            "{}",
            found[0].message
        );
        // A mix where no class crosses its own rates.
        let mut mix = traffic(DstClass::Udp, 15_000.0, 60_000);
        add(&mut mix, DstClass::Icmp, 4_000.0, 600.0);
        add(&mut mix, DstClass::All, 600_000.0, 600.0);
        assert_eq!(kinds(&evaluate(&cfg, &mix)), vec![AlertKind::TrafficFlood]);
    }

    #[test]
    fn a_single_sources_own_volumetric_incident_is_the_one_alert() {
        let mut v = traffic(DstClass::Udp, 900_000.0, 1);
        v.single_source[DstClass::Udp as usize] = true;
        v.single_source[DstClass::All as usize] = true;
        assert!(evaluate(&Flood::default(), &v).is_empty());
    }

    #[test]
    fn a_flood_from_one_unreported_source_names_it() {
        let mut v = traffic(DstClass::Icmp, 9_000.0, 1);
        v.top_sources = vec![Count {
            value: "198.18.0.2".parse().unwrap(),
            packets: 9_000,
        }];
        let f = &evaluate(&Flood::default(), &v)[0];
        assert_eq!(f.src, Some("198.18.0.2".parse().unwrap()));
        assert_eq!(f.dst_port, None, "ICMP has no port");
        assert!(f.message.contains("from 198.18.0.2"), "{}", f.message);
        assert_eq!(f.evidence.top_sources.len(), 1);
    }

    #[test]
    fn a_disabled_section_finds_nothing() {
        let cfg = Flood {
            enabled: false,
            ..Flood::default()
        };
        assert!(evaluate(&cfg, &traffic(DstClass::Udp, 900_000.0, 9)).is_empty());
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(85_000.0), "85 000");
        assert_eq!(grouped(1_234_567.4), "1 234 567");
        assert_eq!(grouped(999.0), "999");
        assert_eq!(mbit(52e6), "52");
        assert_eq!(mbit(2.5e6), "2.5");
        assert_eq!(number(20_000.0), "20 000");
        assert_eq!(number(12.5), "12.5");
    }
}
