//! The DNS parser on arbitrary bytes (as a UDP datagram and as a TCP
//! segment), then the payload pipeline as a sample to port 53 would run it:
//! the default rules and the DNS tunnel detector's feed.
//!
//! Asserts: no panic; question names are printable (presentation format,
//! safe to log) and no longer than the escaped form of a 255-byte name;
//! a message never has more questions than its header announces; every
//! finding's excerpt is at most `MAX_EXCERPT` bytes; the detector's tables
//! stay within `MAX_SOURCES` and `MAX_DOMAINS_PER_SOURCE`.

#![no_main]

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::OnceLock,
    time::{Duration, Instant},
};

use libfuzzer_sys::fuzz_target;
use nta_agent::{
    flows::Labels,
    inspect::Inspector,
    payload::{
        Matcher, default_rules,
        dns::{self, DnsMessage, DnsQuestion},
        dns_tunnel::{DnsTunnel, DnsTunnelConfig, MAX_DOMAINS_PER_SOURCE, MAX_SOURCES},
        excerpt::MAX_EXCERPT,
    },
    sensor::samples::PayloadSample,
};
use nta_common::{IpKey, maps::SAMPLE_BYTES, maps::SampleHeader};

/// Longest name in presentation format: 255 wire bytes, each at most 4
/// characters (`\DDD`).
const MAX_NAME_TEXT: usize = 4 * 255;

fn matcher() -> &'static Matcher {
    static MATCHER: OnceLock<Matcher> = OnceLock::new();
    MATCHER.get_or_init(|| Matcher::new(&default_rules().rules).expect("default rules compile"))
}

fn check_message(msg: &DnsMessage, announced: Option<usize>) {
    if let Some(announced) = announced {
        assert!(msg.questions.len() <= announced, "{msg:?}");
    }
    for q in &msg.questions {
        assert!(!q.name.is_empty());
        assert!(q.name.len() <= MAX_NAME_TEXT, "{} chars", q.name.len());
        assert!(q.name.bytes().all(|b| b.is_ascii_graphic()), "{:?}", q.name);
        let _ = q.qtype_name();
    }
}

fn sample(proto: u8, src: IpKey, data: &[u8]) -> PayloadSample {
    let data = &data[..data.len().min(SAMPLE_BYTES)];
    PayloadSample {
        header: SampleHeader {
            src,
            dst: IpKey::from_v4([192, 0, 2, 53]),
            src_port: 40_000,
            dst_port: 53,
            proto,
            tcp_flags: if proto == 6 { 0x18 } else { 0 },
            flow: 0,
            _pad: 0,
            payload_len: data.len() as u32,
            captured: data.len() as u32,
            seq: 0,
            _pad2: [0; 4],
            at_ns: 0,
        },
        data: data.to_vec(),
    }
}

/// Thresholds so low that every query crosses some, so that the finding
/// path runs on every input.
fn hair_trigger() -> DnsTunnelConfig {
    DnsTunnelConfig {
        enabled: true,
        unique_subdomains: 1,
        window: Duration::from_secs(1),
        max_label_len: 0,
        entropy_bits: 0.1,
        txt_null_per_window: 1,
    }
}

fuzz_target!(|data: &[u8]| {
    let announced = data
        .get(4..6)
        .map(|qd| usize::from(u16::from_be_bytes([qd[0], qd[1]])));
    if let Ok(msg) = dns::parse_udp(data) {
        check_message(&msg, announced);
    }
    let announced_tcp = data
        .get(6..8)
        .map(|qd| usize::from(u16::from_be_bytes([qd[0], qd[1]])));
    if let Ok(msg) = dns::parse_tcp(data) {
        check_message(&msg, announced_tcp);
    }

    // The pipeline: rules and the tunnel detector, from a few sources, over
    // two windows of the hair-trigger detector.
    let t0 = Instant::now();
    for (i, config) in [DnsTunnelConfig::default(), hair_trigger()]
        .into_iter()
        .enumerate()
    {
        let mut inspector = Inspector::new(matcher().clone(), config, Labels::default());
        for round in 0..3u8 {
            let now = t0 + Duration::from_millis(700 * u64::from(round));
            let src = IpKey::from_v4([198, 18, i as u8, round % 2]);
            for proto in [17, 6] {
                let s = sample(proto, src, data);
                let found = inspector.inspect(&s.header, &s.data, now);
                for f in found {
                    if let Some(excerpt) = &f.evidence.excerpt {
                        assert!(excerpt.len() <= MAX_EXCERPT, "{f:?}");
                    }
                    if let Some(query) = &f.evidence.query {
                        assert!(query.len() <= MAX_NAME_TEXT, "{f:?}");
                    }
                }
            }
        }
        let tunnel = inspector.tunnels();
        assert!(tunnel.tracked_sources() <= MAX_SOURCES);
        assert!(tunnel.tracked_domains() <= MAX_SOURCES * MAX_DOMAINS_PER_SOURCE);
    }

    // The detector takes any question: a name that no parser produced
    // (empty labels, dots only, non-ASCII) must not upset it either.
    let (mut tunnel, mut hair) = (
        DnsTunnel::new(DnsTunnelConfig::default()),
        DnsTunnel::new(hair_trigger()),
    );
    let question = DnsQuestion {
        name: String::from_utf8_lossy(data).into_owned(),
        qtype: data.first().map_or(16, |&b| u16::from(b)),
    };
    let src = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));
    let _ = tunnel.observe(src, &question, t0);
    if let Some(f) = hair.observe(src, &question, t0) {
        assert!(f.unique_subdomains <= 1, "{f:?}");
    }
});
