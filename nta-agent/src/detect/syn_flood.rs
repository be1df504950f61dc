//! SYN floods: one destination host, or one destination port, receiving more
//! SYNs per second than its threshold, whoever sends them — a flood from
//! random spoofed sources is seen through the destination's counters.

use std::net::IpAddr;

use nta_common::classify::DstClass;

use super::{
    Finding, IncidentKey, Subject,
    flood::{self, RateWindow},
};
use crate::{
    alert::{AlertKind, Count, DetectedBy, Evidence},
    config::SynFlood,
};

/// What is known about the SYNs one destination host received.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSyns {
    pub dst: IpAddr,
    /// SYNs per second.
    pub rate: f64,
    /// Bits per second of those SYNs' frames.
    pub bps: f64,
    /// SYNs since the previous finding.
    pub packets: u64,
    pub top_ports: Vec<Count<u16>>,
    pub top_sources: Vec<Count<IpAddr>>,
    pub distinct_sources: Option<u64>,
    /// Whether `distinct_sources` is a sketch's estimate.
    pub estimated: bool,
    /// Share of these SYNs sent by sources already reported as port
    /// scanners, 0..=1: a fast scan is not also a flood.
    pub from_scanners: f64,
    /// How the rate was seen.
    pub detected_by: DetectedBy,
    /// Where it was measured.
    pub window: RateWindow,
}

/// Share of a destination's SYNs that, when they come from known scanners,
/// makes them the scan's rather than a flood.
pub const SCAN_SHARE: f64 = 0.5;

/// A SYN-flood finding for a destination host, if `cfg` (the destination's
/// effective settings) says its rate is too high.
pub fn host(cfg: &SynFlood, v: HostSyns) -> Option<Finding> {
    let packets_over = v.window.over(v.rate, cfg.dst_host_syn_rate);
    let bits_over = v.window.over(v.bps, cfg.dst_host_mbps * 1e6);
    if !cfg.enabled || !(packets_over || bits_over) || v.from_scanners >= SCAN_SHARE {
        return None;
    }
    // The crossed rate is the measure, packets first (see `flood.rs`).
    let (measure, threshold, unit) = if packets_over {
        (v.rate, cfg.dst_host_syn_rate, "SYN/s")
    } else {
        (v.bps / 1e6, cfg.dst_host_mbps, "Mbit/s")
    };
    let mut ratio = v.rate / cfg.dst_host_syn_rate;
    if cfg.dst_host_mbps > 0.0 {
        ratio = ratio.max(v.bps / 1e6 / cfg.dst_host_mbps);
    }
    let port = v.top_ports.first().map(|c| c.value);
    let via = port.map_or_else(String::new, |p| format!(" (mostly port {p})"));
    let sources = flood::from_whom(v.distinct_sources, v.estimated, &v.top_sources);
    Some(Finding {
        key: IncidentKey {
            kind: AlertKind::SynFlood,
            subject: Subject::DstHost(v.dst),
        },
        src: (v.distinct_sources.unwrap_or(1) <= 1)
            .then(|| v.top_sources.first().map(|c| c.value))
            .flatten(),
        dst: Some(v.dst),
        dst_port: port,
        measure,
        ratio,
        packets: v.packets,
        message: format!(
            "SYN flood on {}{via}: {} SYN/s, {} Mbit/s{sources} (threshold {} {unit})",
            v.dst,
            flood::grouped(v.rate),
            flood::mbit(v.bps),
            flood::number(threshold),
        ),
        evidence: Evidence {
            threshold,
            unit: unit.into(),
            window_secs: v.window.secs,
            class: Some(DstClass::Syn.name().into()),
            pps: Some(v.rate),
            bps: Some(v.bps),
            top_ports: v.top_ports,
            top_sources: v.top_sources,
            distinct_sources: v.distinct_sources,
            estimated: v.estimated,
            detected_by: v.detected_by,
            ..Evidence::default()
        },
    })
}

/// A SYN-flood finding for a destination port across hosts.
pub fn port(cfg: &SynFlood, port: u16, rate: f64, packets: u64) -> Option<Finding> {
    let threshold = cfg.dst_port_syn_rate;
    if !cfg.enabled || rate <= threshold {
        return None;
    }
    Some(Finding {
        key: IncidentKey {
            kind: AlertKind::SynFlood,
            subject: Subject::DstPort(port),
        },
        src: None,
        dst: None,
        dst_port: Some(port),
        measure: rate,
        ratio: rate / threshold,
        packets,
        message: format!(
            "SYN flood on port {port} across hosts: {rate:.0} SYN/s (threshold {threshold:.0} SYN/s)"
        ),
        evidence: Evidence {
            threshold,
            unit: "SYN/s".into(),
            window_secs: 1.0,
            detected_by: DetectedBy::Poll,
            ..Evidence::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn view(rate: f64) -> HostSyns {
        HostSyns {
            dst: "198.18.0.1".parse().unwrap(),
            rate,
            bps: rate * 74.0 * 8.0,
            packets: rate as u64,
            top_ports: vec![Count {
                value: 80,
                packets: rate as u64,
            }],
            top_sources: vec![],
            distinct_sources: Some(40_000),
            estimated: true,
            from_scanners: 0.0,
            detected_by: DetectedBy::Kernel,
            window: RateWindow::RATE,
        }
    }

    #[test]
    fn more_than_a_thousand_syn_per_second_from_spoofed_sources_is_a_flood() {
        let cfg = Config::default().syn_flood;
        assert!(host(&cfg, view(1000.0)).is_none());
        let f = host(&cfg, view(50_000.0)).expect("flood");
        assert_eq!(f.dst_port, Some(80));
        assert_eq!(f.src, None, "spoofed sources name no single source");
        assert_eq!(
            f.message,
            "SYN flood on 198.18.0.1 (mostly port 80): 50 000 SYN/s, 30 Mbit/s from ~40 000 \
             distinct sources (threshold 1 000 SYN/s)"
        );
        assert_eq!(f.ratio, 50.0);
        assert_eq!(
            (f.evidence.distinct_sources, f.evidence.estimated),
            (Some(40_000), true)
        );
        assert_eq!(f.evidence.pps, Some(50_000.0));
    }

    #[test]
    fn syns_padded_to_fill_the_link_cross_the_bit_rate() {
        let cfg = Config::default().syn_flood;
        // 900 SYN/s under the packet rate, but 1 400 bytes each... at 100 000
        // SYN/s-equivalent bits: 1.2 Gbit/s.
        let mut v = view(900.0);
        v.bps = 1.2e9;
        let f = host(&cfg, v).expect("flood");
        assert_eq!(f.evidence.unit, "Mbit/s");
        assert_eq!((f.measure, f.evidence.threshold), (1200.0, 1000.0));
        let off = SynFlood {
            dst_host_mbps: 0.0,
            ..cfg
        };
        let mut v = view(900.0);
        v.bps = 1.2e9;
        assert!(host(&off, v).is_none());
    }

    #[test]
    fn a_single_source_flood_names_it() {
        let cfg = Config::default().syn_flood;
        let mut v = view(5000.0);
        v.distinct_sources = Some(1);
        v.top_sources = vec![Count {
            value: "198.18.0.2".parse().unwrap(),
            packets: 5000,
        }];
        assert_eq!(
            host(&cfg, v).unwrap().src,
            Some("198.18.0.2".parse().unwrap())
        );
    }

    #[test]
    fn syns_from_a_reported_scanner_are_not_a_flood() {
        let cfg = Config::default().syn_flood;
        let mut v = view(5000.0);
        v.from_scanners = 0.9;
        assert!(host(&cfg, v).is_none());
    }

    #[test]
    fn a_per_destination_override_raises_the_bar() {
        let text = "[[override]]\nnetwork = \"198.18.0.0/24\"\nsyn_flood = { dst_host_syn_rate = 20000 }\n";
        let c = Config::parse(text, std::path::Path::new("t.toml")).unwrap();
        let dst = "198.18.0.1".parse().unwrap();
        assert!(host(&c.syn_flood_for(dst), view(15_000.0)).is_none());
        assert!(host(&c.syn_flood_for(dst), view(25_000.0)).is_some());
    }

    #[test]
    fn port_floods_have_their_own_threshold() {
        let cfg = Config::default().syn_flood;
        assert!(port(&cfg, 443, 900.0, 900).is_none());
        let f = port(&cfg, 443, 3000.0, 3000).expect("flood");
        assert_eq!(f.key.subject, Subject::DstPort(443));
    }
}
