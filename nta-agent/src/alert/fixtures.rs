//! Alerts for tests, benchmarks and fuzz targets, built in one place so that
//! a field added to [`Alert`] is filled in once. A test changes what it looks
//! at with struct update syntax:
//! `Alert { packets: 7, ..fixtures::alert(1, AlertKind::SynFlood) }`.

use jiff::Timestamp;

use super::{Alert, AlertKind, AlertState, Count, DetectedBy, Evidence, Severity};

/// Alert `id` of `kind`: open, of high severity, from 198.18.0.2 to
/// 198.18.0.1 port 80, first and last seen at the Unix epoch, one packet at
/// 1/s, its message `alert {id}`, no evidence.
pub fn alert(id: u64, kind: AlertKind) -> Alert {
    Alert {
        id,
        kind,
        severity: Severity::High,
        state: AlertState::Open,
        src: Some([198, 18, 0, 2].into()),
        dst: Some([198, 18, 0, 1].into()),
        dst_port: Some(80),
        first_seen: Timestamp::UNIX_EPOCH,
        last_seen: Timestamp::UNIX_EPOCH,
        closed_at: None,
        packets: 1,
        peak_rate: 1.0,
        message: format!("alert {id}"),
        evidence: Evidence::default(),
    }
}

/// The time `text` (RFC 3339) stands for; panics on a malformed one.
pub fn at(text: &str) -> Timestamp {
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} is not a timestamp: {e}"))
}

/// Alerts 1..=5 open a minute apart from 2026-01-01T00:01:00Z and last
/// 30 s; odd ids are SYN floods from 198.18.0.3 to 10.0.0.1, even ids port
/// scans from 198.18.0.2 to 10.0.0.2 whose evidence names ports 22 and 443;
/// all have destination port 80, 1000 packets and a peak of 500/s; 1 and 2
/// are closed.
pub fn five_alerts() -> Vec<Alert> {
    (1..=5u64)
        .map(|id| {
            let scan = id % 2 == 0;
            let (kind, src, dst) = if scan {
                (AlertKind::PortScan, [198, 18, 0, 2], [10, 0, 0, 2])
            } else {
                (AlertKind::SynFlood, [198, 18, 0, 3], [10, 0, 0, 1])
            };
            let top_ports = if scan {
                vec![
                    Count {
                        value: 22,
                        packets: 10,
                    },
                    Count {
                        value: 443,
                        packets: 5,
                    },
                ]
            } else {
                Vec::new()
            };
            Alert {
                state: if id <= 2 {
                    AlertState::Closed
                } else {
                    AlertState::Open
                },
                src: Some(src.into()),
                dst: Some(dst.into()),
                first_seen: at(&format!("2026-01-01T00:{id:02}:00Z")),
                last_seen: at(&format!("2026-01-01T00:{id:02}:30Z")),
                packets: 1000,
                peak_rate: 500.0,
                evidence: Evidence {
                    threshold: 100.0,
                    unit: "SYN/s".into(),
                    window_secs: 1.0,
                    detected_by: DetectedBy::Poll,
                    top_ports,
                    ..Evidence::default()
                },
                ..alert(id, kind)
            }
        })
        .collect()
}
