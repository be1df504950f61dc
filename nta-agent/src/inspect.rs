//! The payload pipeline: samples from the kernel in, findings out.
//!
//! Each sample is parsed as HTTP (TCP) or DNS (port 53), run through the
//! rule matcher in one pass per buffer, and DNS questions through the tunnel
//! detector. Findings go to the run loop, which owns the incidents.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::Instant,
};

use nta_common::maps::{SampleHeader, ip_proto};
use tokio::{sync::mpsc, task::JoinHandle};
use tracing::warn;

use crate::{
    detect::{self, Finding},
    payload::{
        Inspected, Transport,
        dns_tunnel::{DnsTunnel, DnsTunnelConfig},
        matcher::{Matcher, MatcherError},
        rules::{self, LoadError, RuleSet},
    },
    source::PayloadSample,
};

/// Findings waiting for the run loop; a burst of matches past it is
/// counted by the incidents that are already open, so dropping is safe.
pub const FINDING_QUEUE: usize = 4096;

/// The default rules plus every file in `extra`. Rules that do not parse
/// are returned as errors with their file and line; the others load.
pub fn load_rules(extra: &[PathBuf]) -> Result<RuleSet, LoadError> {
    let mut set = rules::default_rules();
    for path in extra {
        set.merge(rules::load_file(path)?);
    }
    Ok(set)
}

/// Inspects one sample.
pub fn inspect(
    sample: &PayloadSample,
    matcher: &Matcher,
    tunnels: &mut DnsTunnel,
    tunnel_threshold: u32,
    now: Instant,
) -> Vec<Finding> {
    inspect_payload(
        &sample.header,
        &sample.data,
        matcher,
        tunnels,
        tunnel_threshold,
        now,
    )
}

/// Inspects one payload of the flow `h` describes (a sample's, or a
/// capture's whole segment).
pub fn inspect_payload(
    h: &SampleHeader,
    data: &[u8],
    matcher: &Matcher,
    tunnels: &mut DnsTunnel,
    tunnel_threshold: u32,
    now: Instant,
) -> Vec<Finding> {
    let (transport, name) = match h.proto {
        ip_proto::TCP => (Transport::Tcp, "tcp"),
        ip_proto::UDP => (Transport::Udp, "udp"),
        _ => return Vec::new(),
    };
    let src = SocketAddr::new(IpAddr::from(h.src), h.src_port);
    let dst = SocketAddr::new(IpAddr::from(h.dst), h.dst_port);
    let inspected = Inspected::parse(transport, src, dst, data);
    let mut findings: Vec<Finding> = matcher
        .matches(&inspected)
        .iter()
        .map(|m| detect::payload::signature(m, src, dst, name))
        .collect();
    if let Some(dns) = inspected.dns.as_ref().filter(|d| !d.is_response) {
        for question in &dns.questions {
            if let Some(t) = tunnels.observe(src.ip(), question, now) {
                findings.push(detect::payload::dns_tunnel(&t, dst, tunnel_threshold));
            }
        }
    }
    findings
}

/// The pipeline, its rules compiled, ready to start.
pub struct Payload {
    matcher: Matcher,
    tunnels: DnsTunnel,
    tunnel_threshold: u32,
}

impl Payload {
    /// Compiles `rules` into one matcher; sets up the tunnel detector.
    pub fn new(rules: &RuleSet, tunnel: DnsTunnelConfig) -> Result<Self, MatcherError> {
        Ok(Self {
            matcher: Matcher::new(&rules.rules)?,
            tunnel_threshold: tunnel.unique_subdomains,
            tunnels: DnsTunnel::new(tunnel),
        })
    }

    /// Inspects `samples` until their channel closes; returns the findings'
    /// queue and the task.
    pub fn spawn(
        mut self,
        mut samples: mpsc::Receiver<PayloadSample>,
    ) -> (mpsc::Receiver<Finding>, JoinHandle<()>) {
        let (findings, found) = mpsc::channel(FINDING_QUEUE);
        let task = tokio::spawn(async move {
            let mut dropped = 0u64;
            while let Some(sample) = samples.recv().await {
                let now = Instant::now();
                let Self {
                    matcher,
                    tunnels,
                    tunnel_threshold,
                } = &mut self;
                for finding in inspect(&sample, matcher, tunnels, *tunnel_threshold, now) {
                    if findings.try_send(finding).is_err() {
                        dropped += 1;
                        if dropped.is_power_of_two() {
                            warn!(
                                message = "Payload findings dropped: the run loop is behind",
                                dropped
                            );
                        }
                    }
                }
            }
        });
        (found, task)
    }
}

#[cfg(test)]
mod tests {
    use nta_common::{IpKey, maps::SampleHeader};

    use super::*;
    use crate::alert::AlertKind;

    fn sample(proto: u8, dst_port: u16, data: &[u8]) -> PayloadSample {
        PayloadSample {
            header: SampleHeader {
                src: IpKey::from_v4([198, 18, 0, 2]),
                dst: IpKey::from_v4([198, 18, 0, 1]),
                src_port: 40_000,
                dst_port,
                proto,
                tcp_flags: 0x18,
                _pad: [0; 2],
                payload_len: data.len() as u32,
                captured: data.len() as u32,
                at_ns: 0,
            },
            data: data.to_vec(),
        }
    }

    #[test]
    fn cmd_exe_in_the_user_agent_is_a_signature_with_its_sid() {
        let rules = load_rules(&[]).expect("default rules");
        assert!(rules.errors.is_empty(), "{:?}", rules.errors);
        let matcher = Matcher::new(&rules.rules).expect("matcher");
        let mut tunnels = DnsTunnel::new(DnsTunnelConfig::default());
        let req =
            b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: cmd.exe\r\nAccept: */*\r\n\r\n";
        let found = inspect(
            &sample(ip_proto::TCP, 80, req),
            &matcher,
            &mut tunnels,
            50,
            Instant::now(),
        );
        let sig = found
            .iter()
            .find(|f| f.evidence.sid == Some(1_000_001))
            .unwrap_or_else(|| panic!("no sid 1000001 in {found:?}"));
        assert_eq!(sig.key.kind, AlertKind::Signature);
        assert_eq!(sig.evidence.buffer.as_deref(), Some("http.user_agent"));
        assert!(
            sig.evidence
                .excerpt
                .as_deref()
                .is_some_and(|e| e.contains("cmd.exe"))
        );
        assert_eq!(sig.dst_port, Some(80));
    }

    #[test]
    fn an_ordinary_request_matches_nothing() {
        let rules = load_rules(&[]).expect("default rules");
        let matcher = Matcher::new(&rules.rules).expect("matcher");
        let mut tunnels = DnsTunnel::new(DnsTunnelConfig::default());
        let req =
            b"GET /index.html HTTP/1.1\r\nHost: example.org\r\nUser-Agent: curl/8.5.0\r\n\r\n";
        assert_eq!(
            inspect(
                &sample(ip_proto::TCP, 80, req),
                &matcher,
                &mut tunnels,
                50,
                Instant::now()
            ),
            []
        );
    }

    #[test]
    fn many_random_subdomains_are_a_dns_tunnel() {
        let rules = load_rules(&[]).expect("default rules");
        let matcher = Matcher::new(&rules.rules).expect("matcher");
        let mut tunnels = DnsTunnel::new(DnsTunnelConfig::default());
        let now = Instant::now();
        let mut found = Vec::new();
        for i in 0..60u32 {
            let name = format!("x{i:08x}q.tunnel.example");
            let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
            for label in name.split('.') {
                q.push(label.len() as u8);
                q.extend_from_slice(label.as_bytes());
            }
            q.extend_from_slice(&[0, 0, 16, 0, 1]);
            found.extend(inspect(
                &sample(ip_proto::UDP, 53, &q),
                &matcher,
                &mut tunnels,
                50,
                now,
            ));
        }
        let t = found
            .iter()
            .find(|f| f.key.kind == AlertKind::DnsTunnel)
            .unwrap_or_else(|| panic!("no tunnel in {found:?}"));
        assert_eq!(t.evidence.domain.as_deref(), Some("tunnel.example"));
    }
}
