//! Alerts: incidents with a life (opened, updated while the condition lasts,
//! closed after a quiet period), as stored, served and notified.

use std::{fmt, net::IpAddr, str::FromStr};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Which detector raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// One source sends SYNs to many destination ports.
    PortScan,
    /// One source probes many destination hosts (a horizontal scan), on
    /// one port or by ping.
    Sweep,
    /// One destination host (or port) receives SYNs above the threshold.
    SynFlood,
    /// One destination host receives UDP above its packet or bit rate.
    UdpFlood,
    /// One destination host receives ICMP or ICMPv6 above its rates.
    IcmpFlood,
    /// One destination host receives TCP without SYN or payload (ACK, RST,
    /// FIN, SYN-ACK floods) above its rates.
    TcpFlood,
    /// One destination host receives IP fragments above its rates.
    FragmentFlood,
    /// One destination host receives more traffic of all kinds than its rates.
    TrafficFlood,
    /// A UDP flood on one destination host coming mostly from one service's
    /// port: replies the service was tricked into sending (amplification).
    Reflection,
    /// One source sends more packets of one class than the threshold.
    Volumetric,
    /// A payload matched a content rule.
    Signature,
    /// DNS queries that look like data tunnelled through names.
    DnsTunnel,
}

impl AlertKind {
    pub const ALL: [AlertKind; 12] = [
        Self::PortScan,
        Self::Sweep,
        Self::SynFlood,
        Self::UdpFlood,
        Self::IcmpFlood,
        Self::TcpFlood,
        Self::FragmentFlood,
        Self::TrafficFlood,
        Self::Reflection,
        Self::Volumetric,
        Self::Signature,
        Self::DnsTunnel,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PortScan => "port_scan",
            Self::Sweep => "sweep",
            Self::SynFlood => "syn_flood",
            Self::UdpFlood => "udp_flood",
            Self::IcmpFlood => "icmp_flood",
            Self::TcpFlood => "tcp_flood",
            Self::FragmentFlood => "fragment_flood",
            Self::TrafficFlood => "traffic_flood",
            Self::Reflection => "reflection",
            Self::Volumetric => "volumetric",
            Self::Signature => "signature",
            Self::DnsTunnel => "dns_tunnel",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AlertKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown alert kind `{s}` (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// How far past its threshold the condition went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Up to 2× the threshold.
    Low,
    /// 2× to 5×.
    Medium,
    /// 5× to 20×.
    High,
    /// Beyond 20×.
    Critical,
}

impl Severity {
    /// Severity of a value `ratio` times its threshold.
    pub fn from_ratio(ratio: f64) -> Self {
        if ratio >= 20.0 {
            Self::Critical
        } else if ratio >= 5.0 {
            Self::High
        } else if ratio >= 2.0 {
            Self::Medium
        } else {
            Self::Low
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the condition still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Open,
    Closed,
}

impl AlertState {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

impl FromStr for AlertState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(Self::Open),
            "closed" => Ok(Self::Closed),
            _ => Err(format!(
                "unknown alert state `{s}` (expected open or closed)"
            )),
        }
    }
}

/// How an incident was first found. The default is there for
/// `Evidence::default()`; every detector names its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectedBy {
    /// The XDP program signalled a threshold crossing at once.
    Kernel,
    /// The periodic read of the counters found it.
    #[default]
    Poll,
    /// A payload sample.
    Payload,
}

impl DetectedBy {
    /// The name served and stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Kernel => "kernel",
            Self::Poll => "poll",
            Self::Payload => "payload",
        }
    }
}

impl fmt::Display for DetectedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A port-scan rule that held (see `detect::port_scan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanRule {
    /// Many new ports within a short window.
    Fast,
    /// scanlogd's score, privileged ports weighing more.
    Weighted,
    /// Many distinct ports within a long window.
    Slow,
}

impl ScanRule {
    /// The name served and stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Fast => "fast",
            Self::Weighted => "weighted",
            Self::Slow => "slow",
        }
    }
}

/// One port or address and how many packets it accounts for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Count<T> {
    pub value: T,
    pub packets: u64,
}

/// What the detector saw: enough for an engineer to judge the alert.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The threshold that was crossed, in `unit`.
    pub threshold: f64,
    /// Unit of `threshold` and of the alert's `peak_rate`, e.g. `SYN/s`, `ports`.
    pub unit: String,
    /// Length of the window the threshold applies to, in seconds.
    pub window_secs: f64,
    /// Traffic class of a volumetric alert (syn, udp, icmp, rst, ack) or
    /// of a flood on a destination (syn, tcp, udp, icmp, fragment, all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// What a scan or sweep probes with: syn, fin (FIN, NULL, Xmas), ack
    /// (ACK, Maimon), udp or echo (ICMP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan: Option<String>,
    /// Distinct destination ports seen (port scans).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct_ports: Option<u64>,
    /// Distinct destination hosts seen (sweeps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct_hosts: Option<u64>,
    /// Distinct sources seen (floods): many means spoofed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct_sources: Option<u64>,
    /// Whether the distinct counts above are a sketch's estimates rather
    /// than exact counts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
    /// Floods: the peak packet and bit rates seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bps: Option<f64>,
    /// Reflection: the abused service and its UDP port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_port: Option<u16>,
    /// Which of the port-scan rules held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<ScanRule>,
    /// Busiest destination ports, most packets first (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_ports: Vec<Count<u16>>,
    /// Busiest sources, most packets first (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_sources: Vec<Count<IpAddr>>,
    /// How the incident was first found.
    pub detected_by: DetectedBy,
    /// Signature and DNS tunnel: the sample's source port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    /// Signature: the rule's sid, rev, msg, classtype and priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classtype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// Signature: the buffer the content matched in (`http.user_agent`, ...)
    /// and a bounded, escaped excerpt of it around the match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
    /// DNS tunnel: the registered domain, distinct subdomains, longest
    /// label, highest label entropy, TXT/NULL queries and an example name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_subdomains: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longest_label: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entropy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txt_null: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

// Public for the integration tests, benchmarks and fuzz targets, which
// build alerts too; not part of the agent's interface.
#[doc(hidden)]
pub mod fixtures;

/// How many ports or sources an alert's evidence keeps.
pub const EVIDENCE_TOP_N: usize = 10;

/// An incident, as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique, increasing with the time the alert was opened.
    pub id: u64,
    pub kind: AlertKind,
    pub severity: Severity,
    pub state: AlertState,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub dst_port: Option<u16>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Timestamp>,
    /// Packets attributed to the incident so far.
    pub packets: u64,
    /// Highest rate seen, in `evidence.unit`.
    pub peak_rate: f64,
    /// One line a person reads first.
    pub message: String,
    pub evidence: Evidence,
}

/// A change in an incident's life, as sent to the store and notifiers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "alert", rename_all = "snake_case")]
pub enum AlertEvent {
    Opened(Alert),
    Updated(Alert),
    Closed(Alert),
}

impl AlertEvent {
    pub fn alert(&self) -> &Alert {
        match self {
            Self::Opened(a) | Self::Updated(a) | Self::Closed(a) => a,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_follows_the_ratio_to_the_threshold() {
        assert_eq!(Severity::from_ratio(1.01), Severity::Low);
        assert_eq!(Severity::from_ratio(3.0), Severity::Medium);
        assert_eq!(Severity::from_ratio(10.0), Severity::High);
        assert_eq!(Severity::from_ratio(300.0), Severity::Critical);
    }

    #[test]
    fn kinds_parse_from_their_api_names_and_reject_others() {
        assert_eq!("syn_flood".parse::<AlertKind>(), Ok(AlertKind::SynFlood));
        let err = "flood".parse::<AlertKind>().unwrap_err();
        assert!(
            err.contains("`flood`") && err.contains("port_scan"),
            "{err}"
        );
    }

    #[test]
    fn alerts_serialize_with_the_api_field_names() {
        let alert = Alert {
            first_seen: fixtures::at("2026-11-25T07:00:00Z"),
            last_seen: fixtures::at("2026-11-25T07:00:01Z"),
            ..fixtures::alert(7, AlertKind::PortScan)
        };
        let json = serde_json::to_value(&alert).unwrap();
        assert_eq!(json["kind"], "port_scan");
        assert_eq!(json["severity"], "high");
        assert_eq!(json["state"], "open");
        assert_eq!(json["src"], "198.18.0.2");
        assert_eq!(json["first_seen"], "2026-11-25T07:00:00Z");
        let back: Alert = serde_json::from_value(json).unwrap();
        assert_eq!(back, alert);
    }

    #[test]
    fn scan_rules_read_and_write_their_stored_names() {
        let evidence = Evidence {
            rules: vec![ScanRule::Fast, ScanRule::Weighted, ScanRule::Slow],
            ..Evidence::default()
        };
        let json = serde_json::to_value(&evidence).unwrap();
        assert_eq!(
            json["rules"],
            serde_json::json!(["fast", "weighted", "slow"])
        );
        let back: Evidence = serde_json::from_value(json).unwrap();
        assert_eq!(back.rules, evidence.rules);
    }

    #[test]
    fn detected_by_reads_and_writes_its_stored_names() {
        for (by, name) in [
            (DetectedBy::Kernel, "kernel"),
            (DetectedBy::Poll, "poll"),
            (DetectedBy::Payload, "payload"),
        ] {
            assert_eq!(serde_json::to_value(by).unwrap(), name);
            assert_eq!(by.to_string(), name);
            let evidence: Evidence = serde_json::from_str(&format!(
                r#"{{"threshold":1.0,"unit":"SYN/s","window_secs":1.0,"detected_by":"{name}"}}"#
            ))
            .unwrap();
            assert_eq!(evidence.detected_by, by);
        }
    }
}
