//! Volumetric floods from one source, per traffic class: SYN, UDP and ICMP
//! above the documented 1 000 packets/s, RST, and bare ACKs (no
//! payload) well above what a bulk transfer's ACK stream looks like. Data
//! segments are never counted, so a fast download or a speed test is not an
//! attack.

use std::net::IpAddr;

use nta_common::maps::RateClass;

use super::{Finding, IncidentKey, Subject, thresholds};
use crate::{
    alert::{AlertKind, DetectedBy, Evidence},
    config::Volumetric,
};

/// One source's rate in one class.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRate {
    pub src: IpAddr,
    pub class: RateClass,
    /// Packets per second.
    pub rate: f64,
    /// Packets since the previous finding.
    pub packets: u64,
    /// Where the source's packets were going (its latest destination).
    pub dst: Option<IpAddr>,
    pub dst_port: Option<u16>,
    /// How the rate was seen.
    pub detected_by: DetectedBy,
}

/// A volumetric finding if `cfg` (the destination's effective settings) says
/// the rate is too high.
pub fn evaluate(cfg: &Volumetric, v: SourceRate) -> Option<Finding> {
    let threshold = thresholds::rate_of(cfg, v.class);
    if !cfg.enabled || v.rate <= threshold {
        return None;
    }
    let class = v.class.name();
    let unit = match v.class {
        RateClass::Syn => "SYN/s",
        RateClass::Udp => "UDP packets/s",
        RateClass::Icmp => "ICMP packets/s",
        RateClass::Rst => "RST/s",
        RateClass::BareAck => "ACK/s",
    };
    let target = v.dst.map_or_else(String::new, |d| format!(" to {d}"));
    Some(Finding {
        key: IncidentKey {
            kind: AlertKind::Volumetric,
            subject: Subject::SourceClass(v.src, class),
        },
        src: Some(v.src),
        dst: v.dst,
        dst_port: v.dst_port.filter(|_| !matches!(v.class, RateClass::Icmp)),
        measure: v.rate,
        ratio: v.rate / threshold,
        packets: v.packets,
        message: format!(
            "{} flood from {}{target}: {:.0} {unit} (threshold {threshold:.0})",
            class.to_uppercase(),
            v.src,
            v.rate
        ),
        evidence: Evidence {
            threshold,
            unit: unit.into(),
            window_secs: 1.0,
            class: Some(class.into()),
            detected_by: v.detected_by,
            ..Evidence::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn rate(class: RateClass, rate: f64) -> SourceRate {
        SourceRate {
            src: "198.18.0.2".parse().unwrap(),
            class,
            rate,
            packets: rate as u64,
            dst: Some("198.18.0.1".parse().unwrap()),
            dst_port: Some(80),
            detected_by: DetectedBy::Poll,
        }
    }

    #[test]
    fn each_class_has_its_own_threshold() {
        let cfg = Config::default().volumetric;
        for class in [
            RateClass::Syn,
            RateClass::Udp,
            RateClass::Icmp,
            RateClass::Rst,
        ] {
            assert!(evaluate(&cfg, rate(class, 1000.0)).is_none(), "{class:?}");
            assert!(evaluate(&cfg, rate(class, 1001.0)).is_some(), "{class:?}");
        }
        // A bulk transfer's ACKs run in the tens of thousands per second.
        assert!(evaluate(&cfg, rate(RateClass::BareAck, 20_000.0)).is_none());
        assert!(evaluate(&cfg, rate(RateClass::BareAck, 200_000.0)).is_some());
    }

    #[test]
    fn one_incident_per_source_and_class() {
        let cfg = Config::default().volumetric;
        let udp = evaluate(&cfg, rate(RateClass::Udp, 5000.0)).unwrap();
        let syn = evaluate(&cfg, rate(RateClass::Syn, 5000.0)).unwrap();
        assert_ne!(udp.key, syn.key);
        assert_eq!(syn.evidence.class.as_deref(), Some("syn"));
        assert!(
            syn.message
                .starts_with("SYN flood from 198.18.0.2 to 198.18.0.1"),
            "{}",
            syn.message
        );
    }

    #[test]
    fn icmp_floods_carry_no_port() {
        let cfg = Config::default().volumetric;
        assert_eq!(
            evaluate(&cfg, rate(RateClass::Icmp, 5000.0))
                .unwrap()
                .dst_port,
            None
        );
    }
}
