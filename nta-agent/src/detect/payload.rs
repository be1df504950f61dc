//! Findings from payload inspection: a rule match, a DNS tunnel.

use std::{
    hash::{Hash, Hasher},
    net::SocketAddr,
};

use nta_common::maps::ip_proto;

use super::{Finding, IncidentKey, Subject};
use crate::{
    alert::{AlertKind, DetectedBy, Evidence},
    payload::{dns_tunnel::TunnelFinding, ip_only::AddressMatch, matcher::Match},
};

/// Severity ratio for a rule's priority: 1 is the most urgent. Priority 1
/// reads as high (×5), 2 as medium (×2), 3 and beyond as low.
fn priority_ratio(priority: u8) -> f64 {
    match priority {
        0 | 1 => 5.0,
        2 => 2.0,
        _ => 1.0,
    }
}

/// A rule match in one sample from `src` to `dst`. Repeats of the same sid
/// from the same source update one incident.
pub fn signature(m: &Match, src: SocketAddr, dst: SocketAddr, transport: &str) -> Finding {
    Finding {
        key: IncidentKey {
            kind: AlertKind::Signature,
            subject: Subject::Signature(src.ip(), m.sid),
        },
        src: Some(src.ip()),
        dst: Some(dst.ip()),
        dst_port: Some(dst.port()),
        measure: 1.0,
        ratio: priority_ratio(m.priority),
        packets: 1,
        message: format!(
            "{} (sid {}) from {} to {} in {}",
            m.msg,
            m.sid,
            src.ip(),
            dst,
            m.buffer
        ),
        evidence: Evidence {
            threshold: 1.0,
            unit: "matches".into(),
            window_secs: 0.0,
            class: Some(transport.into()),
            src_port: Some(src.port()),
            sid: Some(m.sid),
            rev: Some(m.rev),
            signature: Some(m.msg.clone()),
            classtype: m.classtype.clone(),
            priority: Some(m.priority),
            buffer: Some(m.buffer.into()),
            excerpt: Some(m.excerpt.clone()),
            detected_by: DetectedBy::Payload,
            ..Evidence::default()
        },
    }
}

/// A rule on addresses alone that matched a new flow from `m.src` to
/// `m.dst`: an alert of the same kind as a payload rule's, with no buffer
/// or excerpt, as no payload was looked at.
pub fn address_match(m: &AddressMatch) -> Finding {
    let transport = match m.proto {
        ip_proto::TCP => "tcp".to_owned(),
        ip_proto::UDP => "udp".to_owned(),
        ip_proto::ICMP => "icmp".to_owned(),
        ip_proto::ICMPV6 => "ipv6-icmp".to_owned(),
        other => format!("ip proto {other}"),
    };
    Finding {
        key: IncidentKey {
            kind: AlertKind::Signature,
            subject: Subject::Signature(m.src.ip(), m.sid),
        },
        src: Some(m.src.ip()),
        dst: Some(m.dst.ip()),
        dst_port: Some(m.dst.port()),
        measure: 1.0,
        ratio: priority_ratio(m.priority),
        packets: 1,
        message: format!(
            "{} (sid {}) from {} to {} ({transport}, by address)",
            m.msg,
            m.sid,
            m.src.ip(),
            m.dst
        ),
        evidence: Evidence {
            threshold: 1.0,
            unit: "matches".into(),
            window_secs: 0.0,
            class: Some(transport),
            src_port: Some(m.src.port()),
            sid: Some(m.sid),
            rev: Some(m.rev),
            signature: Some(m.msg.clone()),
            classtype: m.classtype.clone(),
            priority: Some(m.priority),
            detected_by: DetectedBy::Payload,
            ..Evidence::default()
        },
    }
}

fn domain_hash(domain: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    domain.hash(&mut h);
    h.finish()
}

/// A DNS tunnel suspected from `f.src` through `f.domain`, towards `dst`.
pub fn dns_tunnel(f: &TunnelFinding, dst: SocketAddr, threshold: u32) -> Finding {
    let unique = f64::from(f.unique_subdomains);
    Finding {
        key: IncidentKey {
            kind: AlertKind::DnsTunnel,
            subject: Subject::DnsTunnel(f.src, domain_hash(&f.domain)),
        },
        src: Some(f.src),
        dst: Some(dst.ip()),
        dst_port: Some(dst.port()),
        measure: unique,
        ratio: (unique / f64::from(threshold.max(1))).max(1.0),
        packets: 1,
        message: format!(
            "DNS tunnel suspected from {} through {}: {}",
            f.src, f.domain, f.reason
        ),
        evidence: Evidence {
            threshold: f64::from(threshold),
            unit: "subdomains".into(),
            domain: Some(f.domain.clone()),
            unique_subdomains: Some(f.unique_subdomains),
            longest_label: Some(u32::try_from(f.longest_label).unwrap_or(u32::MAX)),
            max_entropy: Some(f.max_entropy),
            txt_null: Some(f.txt_null),
            query: Some(f.example.clone()),
            detected_by: DetectedBy::Payload,
            ..Evidence::default()
        },
    }
}
