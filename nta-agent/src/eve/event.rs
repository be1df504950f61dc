//! EVE events and how nta's findings, incidents and totals become them.

use std::{
    collections::BTreeMap,
    hash::Hash as _,
    net::{IpAddr, SocketAddr},
};

use jiff::{Timestamp, tz::TimeZone};
use nta_common::{Counter, GlobalCounters, maps::ip_proto};
use serde::Serialize;
use serde_json::Value;

use super::sid;
use crate::{
    alert::{Alert, AlertKind, Evidence, Severity},
    detect::Finding,
    flows::FlowRecord,
};

/// One EVE line. Fields left `None` are left out, as Suricata leaves out
/// what an event has not (a `stats` event has no addresses).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub timestamp: String,
    /// The sensor's name (`sensor_name`), set by the writer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_id: Option<u64>,
    pub event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<&'static str>,
    /// The application protocol of the flow, when nta told it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<FlowBody>,
}

/// The `flow` object of a flow event, with Suricata's field names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowBody {
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub start: String,
    pub end: String,
    pub age: u64,
    pub state: &'static str,
    pub reason: &'static str,
    /// Whether an alert was raised on the flow.
    pub alerted: bool,
}

/// The `alert` object, with Suricata's field names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertBody {
    /// `allowed`: nta detects, it does not sit inline (its blocking is a
    /// separate, later decision).
    pub action: &'static str,
    pub gid: u32,
    pub signature_id: u64,
    pub rev: u32,
    pub signature: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<&'static str>,
    /// 1 (highest) to 3 or more, as rule priorities.
    pub severity: u8,
    /// Rule metadata keeps Suricata's shape, each key an array of strings.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, Vec<String>>,
}

/// The `stats` object: what the kernel counted, in Suricata's names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// Seconds since the agent started (or the read began).
    pub uptime: u64,
    pub decoder: Decoder,
    pub detect: Detect,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decoder {
    pub pkts: u64,
    pub bytes: u64,
    pub invalid: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    pub tcp: u64,
    pub udp: u64,
    pub vlan: u64,
    pub avg_pkt_size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detect {
    /// Alert events written so far.
    pub alert: u64,
}

/// Suricata's timestamp: microseconds and a numeric offset, here UTC
/// (`2026-12-05T10:41:37.123456+0000`).
pub fn timestamp(at: Timestamp) -> String {
    let t = TimeZone::UTC.to_datetime(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+0000",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.subsec_nanosecond() / 1000
    )
}

/// A packet's flow: its addresses, ports and IP protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub proto: u8,
}

impl Flow {
    /// The flow of a payload finding (a rule match, a DNS tunnel query):
    /// its addresses, ports and transport.
    pub fn of_finding(f: &Finding) -> Option<Self> {
        use nta_common::maps::ip_proto;
        let proto = match f.evidence.class.as_deref()? {
            "tcp" => ip_proto::TCP,
            "udp" => ip_proto::UDP,
            _ => return None,
        };
        Some(Self {
            src: SocketAddr::new(f.src?, f.evidence.src_port?),
            dst: SocketAddr::new(f.dst?, f.dst_port?),
            proto,
        })
    }

    /// An id for the flow, the same for both directions and in every run
    /// (a fixed hash, no random seed), so that events of one flow can be
    /// joined; kept below 2⁵³ so that JSON readers in JavaScript and jq
    /// keep it exact.
    pub fn id(&self) -> u64 {
        let (a, b) = if self.src <= self.dst {
            (self.src, self.dst)
        } else {
            (self.dst, self.src)
        };
        let mut h = Fnv::default();
        (a, b, self.proto).hash(&mut h);
        h.0 & ((1 << 53) - 1)
    }
}

/// A flow event: one flow's record, with the client as `src` as Suricata
/// writes it, and the `flow_id` its alerts carry.
pub fn flow(r: &FlowRecord) -> Event {
    let src = SocketAddr::new(r.client.0, r.client.1);
    let dst = SocketAddr::new(r.server.0, r.server.1);
    let transport = matches!(r.proto, ip_proto::TCP | ip_proto::UDP);
    Event {
        timestamp: timestamp(r.end),
        host: None,
        flow_id: Some(
            Flow {
                src,
                dst,
                proto: r.proto,
            }
            .id(),
        ),
        event_type: "flow",
        src_ip: Some(src.ip()),
        src_port: transport.then_some(src.port()),
        dest_ip: Some(dst.ip()),
        dest_port: transport.then_some(dst.port()),
        proto: proto_name(r.proto),
        app_proto: r.app_proto.map(|a| a.name()),
        alert: None,
        stats: None,
        flow: Some(FlowBody {
            pkts_toserver: r.pkts_toserver,
            pkts_toclient: r.pkts_toclient,
            bytes_toserver: r.bytes_toserver,
            bytes_toclient: r.bytes_toclient,
            start: timestamp(r.start),
            end: timestamp(r.end),
            age: r.age(),
            state: r.state(),
            reason: r.reason.name(),
            alerted: !r.alerts.is_empty(),
        }),
    }
}

/// FNV-1a: a hash fixed by its definition, unlike std's seeded one.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn proto_name(proto: u8) -> Option<&'static str> {
    match proto {
        ip_proto::TCP => Some("TCP"),
        ip_proto::UDP => Some("UDP"),
        ip_proto::ICMP => Some("ICMP"),
        ip_proto::ICMPV6 => Some("IPv6-ICMP"),
        _ => None,
    }
}

/// Suricata's category for the classtypes nta's rules and detections use
/// (from the classification descriptions Snort and Suricata ship); other
/// classtypes leave `category` out until a classification file is loaded.
fn category(classtype: &str) -> Option<&'static str> {
    Some(match classtype {
        "attempted-admin" => "Attempted Administrator Privilege Gain",
        "attempted-recon" => "Attempted Information Leak",
        "attempted-dos" => "Attempted Denial of Service",
        "network-scan" => "Detection of a Network Scan",
        "trojan-activity" => "A Network Trojan was detected",
        "web-application-attack" => "Web Application Attack",
        "bad-unknown" => "Potentially Bad Traffic",
        "policy-violation" => "Potential Corporate Privacy Violation",
        _ => return None,
    })
}

/// The classtype of a detection of `kind`.
fn classtype_of(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::PortScan | AlertKind::Sweep => "network-scan",
        AlertKind::SynFlood
        | AlertKind::UdpFlood
        | AlertKind::IcmpFlood
        | AlertKind::TcpFlood
        | AlertKind::FragmentFlood
        | AlertKind::TrafficFlood
        | AlertKind::Reflection
        | AlertKind::Volumetric => "attempted-dos",
        AlertKind::DnsTunnel => "bad-unknown",
        AlertKind::Signature => "unknown",
    }
}

/// A rule's match in one sample, as Suricata writes an alert: the rule's
/// sid, rev, msg, category and priority as severity.
pub fn signature(f: &Finding, flow: &Flow, at: Timestamp) -> Event {
    let e = &f.evidence;
    let mut metadata = BTreeMap::new();
    if let Some(buffer) = &e.buffer {
        metadata.insert("nta_buffer".to_owned(), vec![buffer.clone()]);
    }
    Event {
        timestamp: timestamp(at),
        host: None,
        flow_id: Some(flow.id()),
        event_type: "alert",
        src_ip: Some(flow.src.ip()),
        src_port: Some(flow.src.port()),
        dest_ip: Some(flow.dst.ip()),
        dest_port: Some(flow.dst.port()),
        proto: proto_name(flow.proto),
        app_proto: None,
        alert: Some(AlertBody {
            action: "allowed",
            gid: 1,
            signature_id: u64::from(e.sid.unwrap_or(0)),
            rev: e.rev.unwrap_or(0),
            signature: e.signature.clone().unwrap_or_default(),
            category: e.classtype.as_deref().and_then(category),
            severity: e.priority.unwrap_or(3),
            metadata,
        }),
        stats: None,
        flow: None,
    }
}

/// An incident of nta's own detectors as it opens: `signature` is its
/// message, `signature_id` its kind's (see [`sid`]), and `metadata` holds
/// the kind (`nta_kind`), the alert's id in the store (`nta_alert_id`) and
/// its evidence, each value an array of strings as rule metadata is.
pub fn detection(a: &Alert) -> Event {
    let mut metadata = evidence_metadata(&a.evidence);
    metadata.insert("nta_kind".to_owned(), vec![a.kind.as_str().to_owned()]);
    metadata.insert("nta_alert_id".to_owned(), vec![a.id.to_string()]);
    Event {
        timestamp: timestamp(a.first_seen),
        host: None,
        flow_id: None,
        event_type: "alert",
        src_ip: a.src,
        src_port: None,
        dest_ip: a.dst,
        dest_port: a.dst_port,
        proto: a.evidence.class.as_deref().and_then(|class| match class {
            "syn" | "tcp" | "rst" | "ack" => Some("TCP"),
            "udp" => Some("UDP"),
            _ => None,
        }),
        app_proto: None,
        alert: Some(AlertBody {
            action: "allowed",
            gid: 1,
            signature_id: sid::of(a.kind),
            rev: 1,
            signature: a.message.clone(),
            category: category(classtype_of(a.kind)),
            severity: match a.severity {
                Severity::Critical | Severity::High => 1,
                Severity::Medium => 2,
                Severity::Low => 3,
            },
            metadata,
        }),
        stats: None,
        flow: None,
    }
}

/// Every evidence field as rule metadata: `nta_` and its name, its value
/// as strings (a list's items each; a port or source count as
/// `value=...,packets=...`).
fn evidence_metadata(e: &Evidence) -> BTreeMap<String, Vec<String>> {
    let Ok(Value::Object(fields)) = serde_json::to_value(e) else {
        return BTreeMap::new();
    };
    fields
        .into_iter()
        .filter_map(|(key, value)| {
            let values: Vec<String> = match value {
                Value::Null => return None,
                Value::Array(items) => items.iter().map(text).collect(),
                other => vec![text(&other)],
            };
            (!values.is_empty()).then(|| (format!("nta_{key}"), values))
        })
        .collect()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(fields) => fields
            .iter()
            .map(|(k, v)| format!("{k}={}", text(v)))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// The kernel's totals as a `stats` event.
pub fn stats(global: &GlobalCounters, uptime: u64, alerts: u64, at: Timestamp) -> Event {
    let pkts = global.get(Counter::Packets);
    let bytes = global.get(Counter::Bytes);
    Event {
        timestamp: timestamp(at),
        host: None,
        flow_id: None,
        event_type: "stats",
        src_ip: None,
        src_port: None,
        dest_ip: None,
        dest_port: None,
        proto: None,
        app_proto: None,
        alert: None,
        stats: Some(Stats {
            uptime,
            decoder: Decoder {
                pkts,
                bytes,
                invalid: Counter::ALL
                    .iter()
                    .filter(|c| c.name().starts_with("err_"))
                    .map(|c| global.get(*c))
                    .sum(),
                ipv4: global.get(Counter::Ipv4Packets),
                ipv6: global.get(Counter::Ipv6Packets),
                tcp: global.get(Counter::TcpPackets),
                udp: global.get(Counter::UdpPackets),
                vlan: global.get(Counter::VlanTagged),
                avg_pkt_size: bytes.checked_div(pkts).unwrap_or(0),
            },
            detect: Detect { alert: alerts },
        }),
        flow: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertState, Count, DetectedBy};

    #[test]
    fn timestamps_are_written_as_suricata_writes_them() {
        let at: Timestamp = "2026-12-05T10:41:37.123456789Z".parse().unwrap();
        assert_eq!(timestamp(at), "2026-12-05T10:41:37.123456+0000");
        assert_eq!(
            timestamp(Timestamp::UNIX_EPOCH),
            "1970-01-01T00:00:00.000000+0000"
        );
    }

    #[test]
    fn a_flow_has_one_id_both_ways_and_each_flow_its_own() {
        let flow = |a: &str, b: &str, proto| Flow {
            src: a.parse().unwrap(),
            dst: b.parse().unwrap(),
            proto,
        };
        let out = flow("198.18.0.2:40000", "198.18.0.1:80", 6);
        let back = flow("198.18.0.1:80", "198.18.0.2:40000", 6);
        assert_eq!(out.id(), back.id());
        assert_ne!(out.id(), flow("198.18.0.2:40001", "198.18.0.1:80", 6).id());
        assert_ne!(out.id(), flow("198.18.0.2:40000", "198.18.0.1:80", 17).id());
        assert!(out.id() < 1 << 53);
        // Fixed: the same in every run (FNV-1a of the normalised tuple).
        assert_eq!(out.id(), flow("198.18.0.2:40000", "198.18.0.1:80", 6).id());
    }

    fn port_scan() -> Alert {
        Alert {
            id: 42,
            kind: AlertKind::PortScan,
            severity: Severity::High,
            state: AlertState::Open,
            src: Some("198.18.0.2".parse().unwrap()),
            dst: Some("198.18.0.1".parse().unwrap()),
            dst_port: None,
            first_seen: "2026-12-05T10:00:00Z".parse().unwrap(),
            last_seen: "2026-12-05T10:00:01Z".parse().unwrap(),
            closed_at: None,
            packets: 1000,
            peak_rate: 900.0,
            message: "SYN scan from 198.18.0.2 of 198.18.0.1: ~1 019 ports".into(),
            evidence: Evidence {
                threshold: 15.0,
                unit: "ports".into(),
                window_secs: 1.0,
                scan: Some("syn".into()),
                distinct_ports: Some(1019),
                estimated: true,
                top_ports: vec![Count {
                    value: 80,
                    packets: 3,
                }],
                detected_by: DetectedBy::Kernel,
                ..Evidence::default()
            },
        }
    }

    #[test]
    fn a_detection_is_an_alert_with_its_kinds_sid_and_its_evidence_as_metadata() {
        let v = serde_json::to_value(detection(&port_scan())).unwrap();
        assert_eq!(v["event_type"], "alert");
        assert_eq!(v["timestamp"], "2026-12-05T10:00:00.000000+0000");
        assert_eq!(v["src_ip"], "198.18.0.2");
        assert_eq!(v["dest_ip"], "198.18.0.1");
        let a = &v["alert"];
        assert_eq!(a["action"], "allowed");
        assert_eq!(a["gid"], 1);
        assert_eq!(a["signature_id"], 8_700_001);
        assert_eq!(
            a["signature"],
            "SYN scan from 198.18.0.2 of 198.18.0.1: ~1 019 ports"
        );
        assert_eq!(a["category"], "Detection of a Network Scan");
        assert_eq!(a["severity"], 1);
        let m = &a["metadata"];
        assert_eq!(m["nta_kind"], serde_json::json!(["port_scan"]));
        assert_eq!(m["nta_alert_id"], serde_json::json!(["42"]));
        assert_eq!(m["nta_distinct_ports"], serde_json::json!(["1019"]));
        assert_eq!(m["nta_estimated"], serde_json::json!(["true"]));
        assert_eq!(
            m["nta_top_ports"],
            serde_json::json!(["packets=3,value=80"])
        );
        assert_eq!(m["nta_detected_by"], serde_json::json!(["kernel"]));
        assert!(v.get("flow_id").is_none() && v.get("stats").is_none());
    }

    #[test]
    fn stats_carry_the_kernels_totals_in_suricatas_names() {
        let mut g = GlobalCounters::ZERO;
        g.values[Counter::Packets as usize] = 10;
        g.values[Counter::Bytes as usize] = 1000;
        g.values[Counter::TcpPackets as usize] = 7;
        g.values[Counter::ErrTcpTruncated as usize] = 1;
        g.values[Counter::ErrEthTruncated as usize] = 2;
        let v = serde_json::to_value(stats(&g, 60, 5, Timestamp::UNIX_EPOCH)).unwrap();
        assert_eq!(v["event_type"], "stats");
        let s = &v["stats"];
        assert_eq!(s["uptime"], 60);
        assert_eq!(s["decoder"]["pkts"], 10);
        assert_eq!(s["decoder"]["tcp"], 7);
        assert_eq!(s["decoder"]["invalid"], 3);
        assert_eq!(s["decoder"]["avg_pkt_size"], 100);
        assert_eq!(s["detect"]["alert"], 5);
    }
}
