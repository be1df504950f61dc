//! Port scans: one source sending SYNs to many destination ports.
//!
//! Three rules over the kernel's per-source windows, any of which is a scan:
//! more than `fast_ports` new ports within `fast_window` (the documented
//! "more than 15 per second"); scanlogd's weighted score (a new port below
//! 1024 weighs 3, others 1) reaching `weighted_score` within
//! `weighted_window`, which catches `nmap -T2` after 7 probes; and more than
//! `slow_ports` distinct ports within `slow_window`, for scans spread over
//! minutes. Ports are counted by the kernel's sketch, as a lower bound (see
//! [`sketch`]).

use std::net::IpAddr;

use nta_common::IpKey;

use crate::traffic::SourceView;

use super::{Finding, IncidentKey, Subject, sketch};
use crate::{
    alert::{AlertKind, DetectedBy, Evidence, ScanRule},
    config::PortScan,
};

/// The three window counters, as far as they are current.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Windows {
    pub fast_ports: u64,
    pub weighted_score: u64,
    pub slow_bits: u64,
}

impl Windows {
    /// The counters of `s` whose window is still open at `now_ns` (kernel
    /// clock); a window that has ended counts as zero until the next SYN
    /// restarts it.
    pub fn current(cfg: &PortScan, s: &SourceView, now_ns: u64) -> Self {
        let open = |start: u64, len: std::time::Duration| {
            now_ns.saturating_sub(start) < len.as_nanos() as u64
        };
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
            slow_bits: if open(s.slow_window_start_ns, cfg.slow_window) {
                u64::from(s.slow_bits)
            } else {
                0
            },
        }
    }
}

/// A port-scan finding for `src` if any rule holds for `w`.
///
/// `packets`: SYNs the source sent since the previous finding.
pub fn evaluate(
    cfg: &PortScan,
    src: IpAddr,
    w: Windows,
    last_dst: Option<IpAddr>,
    packets: u64,
    detected_by: DetectedBy,
) -> Option<Finding> {
    if !cfg.enabled {
        return None;
    }
    let distinct = sketch::at_least(w.slow_bits) as f64;
    let fast_ratio = w.fast_ports as f64 / f64::from(cfg.fast_ports.max(1));
    let weighted_ratio = w.weighted_score as f64 / f64::from(cfg.weighted_score.max(1));
    let slow_ratio = distinct / f64::from(cfg.slow_ports.max(1));
    let rules = [
        (w.fast_ports > u64::from(cfg.fast_ports), ScanRule::Fast),
        (
            w.weighted_score >= u64::from(cfg.weighted_score),
            ScanRule::Weighted,
        ),
        (distinct > f64::from(cfg.slow_ports), ScanRule::Slow),
    ];
    let fired: Vec<ScanRule> = rules
        .iter()
        .filter(|(hit, _)| *hit)
        .map(|(_, rule)| *rule)
        .collect();
    let first = *fired.first()?;
    // At least as many ports as the rule that fired has seen.
    let ports = distinct.max(w.fast_ports as f64);
    let about = if sketch::saturated(w.slow_bits) {
        "at least "
    } else {
        ""
    };
    let target = last_dst.map_or_else(String::new, |d| format!(" on {d}"));
    let (rule, threshold, window) = match first {
        ScanRule::Fast => ("more than", cfg.fast_ports, cfg.fast_window),
        ScanRule::Weighted => ("weighted score of", cfg.weighted_score, cfg.weighted_window),
        ScanRule::Slow => ("more than", cfg.slow_ports, cfg.slow_window),
    };
    Some(Finding {
        key: IncidentKey {
            kind: AlertKind::PortScan,
            subject: Subject::Source(src),
        },
        src: Some(src),
        dst: last_dst,
        dst_port: None,
        measure: ports,
        ratio: fast_ratio.max(weighted_ratio).max(slow_ratio),
        packets,
        message: format!(
            "Port scan from {src}{target}: SYNs to {about}{ports} ports ({rule} {threshold} within {})",
            humantime::format_duration(window)
        ),
        evidence: Evidence {
            threshold: f64::from(threshold),
            unit: "ports".into(),
            window_secs: window.as_secs_f64(),
            distinct_ports: Some(ports as u64),
            rules: fired,
            detected_by,
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
    use super::*;
    use crate::config::Config;

    fn cfg() -> PortScan {
        Config::default().port_scan
    }

    const SRC: &str = "198.18.0.2";

    #[test]
    fn sixteen_new_ports_in_a_second_is_a_scan_fifteen_is_not() {
        let src = SRC.parse().unwrap();
        let w = |fast| Windows {
            fast_ports: fast,
            weighted_score: 0,
            slow_bits: fast,
        };
        assert!(evaluate(&cfg(), src, w(15), None, 15, DetectedBy::Kernel).is_none());
        let f = evaluate(&cfg(), src, w(16), None, 16, DetectedBy::Kernel).expect("scan");
        assert_eq!(f.key.subject, Subject::Source(src));
        assert_eq!(f.evidence.rules, [ScanRule::Fast]);
        assert!(f.ratio > 1.0);
    }

    #[test]
    fn seven_privileged_ports_reach_scanlogds_score() {
        let src = SRC.parse().unwrap();
        let w = |score| Windows {
            fast_ports: 3,
            weighted_score: score,
            slow_bits: 7,
        };
        assert!(evaluate(&cfg(), src, w(20), None, 7, DetectedBy::Poll).is_none());
        let f = evaluate(&cfg(), src, w(21), None, 7, DetectedBy::Poll).expect("scan");
        assert_eq!(f.evidence.rules, [ScanRule::Weighted]);
        assert!(
            f.message.contains("weighted score of 21 within 3s"),
            "{}",
            f.message
        );
    }

    #[test]
    fn a_slow_scan_is_caught_by_its_distinct_ports() {
        let src = SRC.parse().unwrap();
        let bits = 101;
        let f = evaluate(
            &cfg(),
            src,
            Windows {
                fast_ports: 2,
                weighted_score: 2,
                slow_bits: bits,
            },
            Some("198.18.0.1".parse().unwrap()),
            1,
            DetectedBy::Poll,
        )
        .expect("scan");
        assert_eq!(f.evidence.rules, [ScanRule::Slow]);
        assert_eq!(f.dst, Some("198.18.0.1".parse().unwrap()));
        assert!(f.evidence.distinct_ports.is_some_and(|p| p > 100));
        let below = Windows {
            fast_ports: 2,
            weighted_score: 2,
            slow_bits: bits - 1,
        };
        assert!(evaluate(&cfg(), src, below, None, 1, DetectedBy::Poll).is_none());
    }

    #[test]
    fn disabled_means_never() {
        let mut c = cfg();
        c.enabled = false;
        let w = Windows {
            fast_ports: 1000,
            weighted_score: 3000,
            slow_bits: 500,
        };
        assert!(evaluate(&c, SRC.parse().unwrap(), w, None, 1, DetectedBy::Poll).is_none());
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
        let during = Windows::current(&c, &s, 1_500_000_000);
        assert_eq!(
            during,
            Windows {
                fast_ports: 40,
                weighted_score: 60,
                slow_bits: 30
            }
        );
        let after_fast = Windows::current(&c, &s, 2_500_000_000);
        assert_eq!(
            after_fast,
            Windows {
                fast_ports: 0,
                weighted_score: 60,
                slow_bits: 30
            }
        );
    }
}
