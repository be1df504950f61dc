//! SYN floods: one destination host, or one destination port, receiving more
//! SYNs per second than its threshold, whoever sends them — a flood from
//! random spoofed sources is seen through the destination's counters.

use std::net::IpAddr;

use super::{Finding, IncidentKey, Subject};
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
    /// SYNs since the previous finding.
    pub packets: u64,
    pub top_ports: Vec<Count<u16>>,
    pub top_sources: Vec<Count<IpAddr>>,
    pub distinct_sources: Option<u64>,
    /// Share of these SYNs sent by sources already reported as port
    /// scanners, 0..=1: a fast scan is not also a flood.
    pub from_scanners: f64,
    /// How the rate was seen.
    pub detected_by: DetectedBy,
}

/// Share of a destination's SYNs that, when they come from known scanners,
/// makes them the scan's rather than a flood.
pub const SCAN_SHARE: f64 = 0.5;

/// A SYN-flood finding for a destination host, if `cfg` (the destination's
/// effective settings) says its rate is too high.
pub fn host(cfg: &SynFlood, v: HostSyns) -> Option<Finding> {
    let threshold = cfg.dst_host_syn_rate;
    if !cfg.enabled || v.rate <= threshold || v.from_scanners >= SCAN_SHARE {
        return None;
    }
    let port = v.top_ports.first().map(|c| c.value);
    let via = port.map_or_else(String::new, |p| format!(" (mostly port {p})"));
    let sources = match v.distinct_sources {
        Some(n) if n > 1 => format!(" from {n} sources"),
        _ => v
            .top_sources
            .first()
            .map_or_else(String::new, |c| format!(" from {}", c.value)),
    };
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
        measure: v.rate,
        ratio: v.rate / threshold,
        packets: v.packets,
        message: format!(
            "SYN flood on {}{via}: {:.0} SYN/s{sources} (threshold {threshold:.0} SYN/s)",
            v.dst, v.rate
        ),
        evidence: Evidence {
            threshold,
            unit: "SYN/s".into(),
            window_secs: 1.0,
            top_ports: v.top_ports,
            top_sources: v.top_sources,
            distinct_sources: v.distinct_sources,
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
            packets: rate as u64,
            top_ports: vec![Count {
                value: 80,
                packets: rate as u64,
            }],
            top_sources: vec![],
            distinct_sources: Some(40_000),
            from_scanners: 0.0,
            detected_by: DetectedBy::Kernel,
        }
    }

    #[test]
    fn more_than_a_thousand_syn_per_second_from_spoofed_sources_is_a_flood() {
        let cfg = Config::default().syn_flood;
        assert!(host(&cfg, view(1000.0)).is_none());
        let f = host(&cfg, view(50_000.0)).expect("flood");
        assert_eq!(f.dst_port, Some(80));
        assert_eq!(f.src, None, "spoofed sources name no single source");
        assert!(f.message.contains("from 40000 sources"), "{}", f.message);
        assert_eq!(f.ratio, 50.0);
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
