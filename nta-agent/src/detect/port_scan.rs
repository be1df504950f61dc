//! Port scans: one source probing many destination ports, with SYNs,
//! FIN/NULL/Xmas, ACK or Maimon segments, or UDP datagrams.
//!
//! Three rules over the kernel's per-source windows, any of which is a scan:
//! more than `fast_ports` new ports within `fast_window` (the documented
//! "more than 15 per second"); scanlogd's weighted score (a new port below
//! 1024 weighs 3, others 1) reaching `weighted_score` within
//! `weighted_window`, which catches `nmap -T2` after 7 probes; and more than
//! `slow_ports` distinct ports within `slow_window` (Zeek's 15 in 5 minutes),
//! for scans at any pace. Distinct ports are the kernel sketch's estimate
//! (see [`sketch`]), reported as one.
//!
//! The kernel counts every probe, a client's too: a workstation logging on
//! to a domain reaches DNS, Kerberos, LDAP, SMB, RPC, NTP and the web, eight
//! privileged ports, within seconds, and over minutes more RPC ports than
//! 15. So the weighted and slow rules pass over a client (its connections
//! carry data, see [`probes::is_client`]), and catch a talkative host's
//! slow scan once its probes outnumber its conversations; the fast rule
//! (16 new ports in a second) holds for everyone.

use std::net::IpAddr;

use nta_common::{IpKey, maps::Probe};

use crate::traffic::SourceView;

use super::{
    Finding, IncidentKey, Subject, probes,
    sketch::{self, Estimate},
};
use crate::{
    alert::{AlertKind, DetectedBy, Evidence, ScanRule},
    config::PortScan,
};

/// The three window counters, and the host sketch that shares the slow
/// window, as far as they are current.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Windows {
    pub fast_ports: u64,
    pub weighted_score: u64,
    pub slow_bits: u64,
    /// Bits set in the host sketch (see [`super::sweep`]).
    pub host_bits: u64,
}

impl Windows {
    /// The counters of `s` whose window is still open at `now_ns` (kernel
    /// clock); a window that has ended counts as zero until the next probe
    /// restarts it.
    pub fn current(cfg: &PortScan, s: &SourceView, now_ns: u64) -> Self {
        let open = |start: u64, len: std::time::Duration| {
            now_ns.saturating_sub(start) < len.as_nanos() as u64
        };
        let slow = open(s.slow_window_start_ns, cfg.slow_window);
        Self {
            fast_ports: if open(s.fast_window_start_ns, cfg.fast_window) {
                u64::from(s.fast_ports)
            } else {
                0
            },
            weighted_score: if open(s.weighted_window_start_ns, cfg.weighted_window) {
                u64::from(s.weighted_score)
            } else {
                0
            },
            slow_bits: if slow { u64::from(s.slow_bits) } else { 0 },
            host_bits: if slow { u64::from(s.host_bits) } else { 0 },
        }
    }
}

/// One source's scan counters, as a rule reads them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scan {
    pub src: IpAddr,
    pub windows: Windows,
    /// The source's latest destination: the host scanned, in a vertical scan.
    pub dst: Option<IpAddr>,
    /// Probes the source sent since the previous finding.
    pub packets: u64,
    /// What the scan probes with (see [`probes::dominant`]); `None` if the
    /// counters do not say.
    pub kind: Option<Probe>,
    /// The source is a client (see [`probes::is_client`]): only the fast
    /// rule applies.
    pub client: bool,
    pub detected_by: DetectedBy,
}

/// What a scan made of `kind` is called in messages.
pub fn scan_name(kind: Option<Probe>) -> String {
    kind.map_or_else(
        || "Port scan".into(),
        |k| format!("{} scan", probes::label(k)),
    )
}

/// A port-scan finding if any rule holds for the scan's windows.
pub fn evaluate(cfg: &PortScan, scan: Scan) -> Option<Finding> {
    if !cfg.enabled {
        return None;
    }
    let w = scan.windows;
    let fired: Vec<ScanRule> = [
        (w.fast_ports > u64::from(cfg.fast_ports), ScanRule::Fast),
        (
            !scan.client && w.weighted_score >= u64::from(cfg.weighted_score),
            ScanRule::Weighted,
        ),
        (
            !scan.client && sketch::more_than(w.slow_bits, cfg.slow_ports),
            ScanRule::Slow,
        ),
    ]
    .into_iter()
    .filter_map(|(hit, rule)| hit.then_some(rule))
    .collect();
    let first = *fired.first()?;
    // At least as many ports as the fast rule has seen new.
    let mut ports = Estimate::of(w.slow_bits);
    ports.value = ports.value.max(w.fast_ports as f64);
    let ratio = (w.fast_ports as f64 / f64::from(cfg.fast_ports.max(1)))
        .max(w.weighted_score as f64 / f64::from(cfg.weighted_score.max(1)))
        .max(ports.value / f64::from(cfg.slow_ports.max(1)));
    let (rule, threshold, window) = match first {
        ScanRule::Fast => ("more than", cfg.fast_ports, cfg.fast_window),
        ScanRule::Weighted => ("weighted score of", cfg.weighted_score, cfg.weighted_window),
        ScanRule::Slow => ("more than", cfg.slow_ports, cfg.slow_window),
    };
    let src = scan.src;
    let target = scan.dst.map_or_else(String::new, |d| format!(" on {d}"));
    Some(Finding {
        key: IncidentKey {
            kind: AlertKind::PortScan,
            subject: Subject::Source(src),
        },
        src: Some(src),
        dst: scan.dst,
        dst_port: None,
        measure: ports.value,
        ratio,
        packets: scan.packets,
        message: format!(
            "{} from {src}{target}: {ports} ports (estimated; {rule} {threshold} within {})",
            scan_name(scan.kind),
            humantime::format_duration(window)
        ),
        evidence: Evidence {
            threshold: f64::from(threshold),
            unit: "ports".into(),
            window_secs: window.as_secs_f64(),
            scan: scan.kind.map(|k| k.name().to_owned()),
            distinct_ports: Some(ports.count()),
            estimated: true,
            rules: fired,
            detected_by: scan.detected_by,
            ..Evidence::default()
        },
    })
}

/// The address in a key, unless it is all zeros (never written).
pub fn addr_of(key: &IpKey) -> Option<IpAddr> {
    (key.addr != [0; 16]).then(|| IpAddr::from(*key))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use nta_common::sketch::port_bit;

    use super::*;
    use crate::config::Config;

    fn cfg() -> PortScan {
        Config::default().port_scan
    }

    const SRC: &str = "198.18.0.2";

    fn scan(windows: Windows, kind: Option<Probe>) -> Scan {
        Scan {
            src: SRC.parse().unwrap(),
            windows,
            dst: Some("198.18.0.1".parse().unwrap()),
            packets: windows.fast_ports,
            kind,
            client: false,
            detected_by: DetectedBy::Kernel,
        }
    }

    fn windows(fast_ports: u64, weighted_score: u64, slow_bits: u64) -> Windows {
        Windows {
            fast_ports,
            weighted_score,
            slow_bits,
            host_bits: 0,
        }
    }

    /// Bits a set of ports sets in the kernel's sketch.
    fn bits(ports: impl IntoIterator<Item = u16>) -> u64 {
        ports
            .into_iter()
            .map(port_bit)
            .collect::<BTreeSet<_>>()
            .len() as u64
    }

    #[test]
    fn sixteen_new_ports_in_a_second_is_a_scan_fifteen_is_not() {
        let syn = Some(Probe::Syn);
        assert!(evaluate(&cfg(), scan(windows(15, 0, 0), syn)).is_none());
        let f = evaluate(&cfg(), scan(windows(16, 0, 0), syn)).expect("scan");
        assert_eq!(f.key.subject, Subject::Source(SRC.parse().unwrap()));
        assert_eq!(f.evidence.rules, [ScanRule::Fast]);
        assert!(f.ratio > 1.0);
    }

    #[test]
    fn seven_privileged_ports_reach_scanlogds_score() {
        let w = |score| windows(3, score, 7);
        assert!(evaluate(&cfg(), scan(w(20), None)).is_none());
        let f = evaluate(&cfg(), scan(w(21), None)).expect("scan");
        assert_eq!(f.evidence.rules, [ScanRule::Weighted]);
        assert!(
            f.message.contains("weighted score of 21 within 3s"),
            "{}",
            f.message
        );
    }

    #[test]
    fn sixteen_ports_within_five_minutes_is_a_slow_scan_at_any_pace() {
        // nmap -T1 waits 15 s between probes: 16 of them take 4 minutes,
        // and each window but the slow one holds one port at a time.
        let ports = [
            1u16, 7, 9, 13, 21, 22, 23, 25, 53, 80, 110, 143, 443, 993, 995, 3389,
        ];
        let b = bits(ports);
        assert_eq!(b, 16, "these ports do not collide in the sketch");
        let f = evaluate(&cfg(), scan(windows(1, 3, b), Some(Probe::Syn))).expect("scan");
        assert_eq!(f.evidence.rules, [ScanRule::Slow]);
        assert_eq!(
            f.message,
            "SYN scan from 198.18.0.2 on 198.18.0.1: ~16 ports (estimated; more than 15 within 5m)"
        );
        assert_eq!(f.evidence.window_secs, 300.0);
        let fifteen = bits(ports[..15].iter().copied());
        assert!(evaluate(&cfg(), scan(windows(1, 3, fifteen), Some(Probe::Syn))).is_none());
    }

    #[test]
    fn a_thousand_ports_are_reported_as_an_estimate_of_a_thousand() {
        let b = bits(1..=1000);
        let f = evaluate(&cfg(), scan(windows(16, 48, b), Some(Probe::Syn))).expect("scan");
        assert_eq!(
            f.evidence.rules,
            [ScanRule::Fast, ScanRule::Weighted, ScanRule::Slow]
        );
        assert!(f.evidence.estimated);
        let ports = f.evidence.distinct_ports.expect("ports");
        assert!((950..=1050).contains(&ports), "{ports}");
        let f = evaluate(&cfg(), scan(windows(16, 48, 442), Some(Probe::Syn))).expect("scan");
        assert_eq!(
            f.message,
            "SYN scan from 198.18.0.2 on 198.18.0.1: ~1 019 ports (estimated; more than 15 within 1s)"
        );
    }

    #[test]
    fn a_full_sketch_says_more_than() {
        let f = evaluate(&cfg(), scan(windows(16, 48, 512), Some(Probe::Syn))).expect("scan");
        assert!(
            f.message.contains(": more than ~3 200 ports (estimated;"),
            "{}",
            f.message
        );
    }

    #[test]
    fn each_probe_kind_names_its_scan() {
        for (kind, name) in [
            (Some(Probe::Syn), "SYN scan"),
            (Some(Probe::Fin), "FIN/NULL/Xmas scan"),
            (Some(Probe::Ack), "ACK scan"),
            (Some(Probe::Udp), "UDP scan"),
            (None, "Port scan"),
        ] {
            let f = evaluate(&cfg(), scan(windows(20, 0, 20), kind)).expect("scan");
            assert!(
                f.message.starts_with(&format!("{name} from 198.18.0.2 ")),
                "{}",
                f.message
            );
            assert_eq!(f.evidence.scan.as_deref(), kind.map(|k| k.name()));
        }
    }

    #[test]
    fn a_client_is_held_to_the_fast_rule_only() {
        let client = |w| Scan {
            client: true,
            ..scan(w, Some(Probe::Syn))
        };
        assert!(evaluate(&cfg(), client(windows(8, 24, 16))).is_none());
        let f = evaluate(&cfg(), client(windows(16, 48, 16))).expect("scan");
        assert_eq!(f.evidence.rules, [ScanRule::Fast]);
    }

    #[test]
    fn disabled_means_never() {
        let mut c = cfg();
        c.enabled = false;
        assert!(evaluate(&c, scan(windows(1000, 3000, 500), None)).is_none());
    }

    #[test]
    fn a_clients_stray_fins_and_rsts_to_its_one_port_do_not_add_up() {
        // Thousands of FIN+ACKs (ACK probes) and RSTs, all to port 443: one
        // bit in the port sketch, one new port in each window.
        let mut client = SourceView {
            rsts: 3_000,
            slow_bits: 1,
            fast_ports: 1,
            weighted_score: 3,
            ..SourceView::default()
        };
        client.probes[Probe::Ack as usize] = 5_000;
        let w = Windows::current(&cfg(), &client, 0);
        assert!(evaluate(&cfg(), scan(w, Some(Probe::Ack))).is_none());
    }

    #[test]
    fn ended_windows_count_as_zero() {
        let c = cfg();
        let s = SourceView {
            fast_ports: 40,
            fast_window_start_ns: 1_000_000_000,
            weighted_score: 60,
            weighted_window_start_ns: 1_000_000_000,
            slow_bits: 30,
            slow_window_start_ns: 1_000_000_000,
            ..SourceView::default()
        };
        assert_eq!(Windows::current(&c, &s, 1_500_000_000), windows(40, 60, 30));
        assert_eq!(Windows::current(&c, &s, 2_500_000_000), windows(0, 60, 30));
        assert_eq!(Windows::current(&c, &s, 302_000_000_000), windows(0, 0, 0));
    }
}
