//! The payload pipeline: samples from the kernel in, findings out.
//!
//! Each sample is parsed as HTTP (TCP) or DNS (port 53), run through the
//! rule matcher in one pass per buffer, and DNS questions through the tunnel
//! detector; then, when it extends its direction's first bytes, the whole
//! run is parsed and matched again for what spans segments. The flow's
//! application protocol is told from those first bytes. Findings go to
//! the run loop, which owns the incidents.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::Instant,
};

use nta_common::{
    flow::FlowKey,
    maps::{SampleHeader, ip_proto},
};
use tokio::{sync::mpsc, task::JoinHandle};
use tracing::warn;

use crate::{
    detect::{self, Finding},
    flows::Labels,
    payload::{
        AppProto, Inspected, Transport, app_proto,
        dns_tunnel::{DnsTunnel, DnsTunnelConfig},
        flowbits::Flowbits,
        ip_only::IpOnlyRules,
        matcher::{Match, Matcher, MatcherError},
        rules::{self, LoadError, RuleSet},
        stream::Streams,
        threshold::Tracker,
    },
    source::PayloadSample,
};

/// Findings waiting for the run loop; a burst of matches past it is
/// counted by the incidents that are already open, so dropping is safe.
pub const FINDING_QUEUE: usize = 4096;

/// The default rules plus every file in `extra`. Rules that do not parse
/// are returned as errors with their file and line; the others load.
pub fn load_rules(extra: &[PathBuf], vars: &rules::Vars) -> Result<RuleSet, LoadError> {
    let mut set = rules::default_rules();
    for path in extra {
        set.merge(rules::load_file_with(path, vars)?);
    }
    rules::reject_unset_flowbits(&mut set);
    Ok(set)
}

/// The rules files a running agent loads and the variables they use: read
/// at start and again on each reload.
#[derive(Debug, Clone)]
pub struct RuleSource {
    pub paths: Vec<PathBuf>,
    pub vars: rules::Vars,
}

/// Why a reload kept the rules it had.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("compiling the rules: {0}")]
    Compile(#[from] MatcherError),
}

/// A new rule set, compiled, ready to replace the one in use.
pub struct Reloaded {
    pub matcher: Matcher,
    /// The rules on addresses alone, for the flow table's walks.
    pub ip_only: IpOnlyRules,
    pub counts: rules::LoadCounts,
    /// The first rules refused, for the log.
    pub first_errors: Vec<String>,
}

impl RuleSource {
    /// Reads every file and compiles the rules: a rule the engine refuses
    /// is counted and the others load, but a file that cannot be read, or
    /// a set that does not compile, fails the whole.
    pub fn compile(&self) -> Result<Reloaded, ReloadError> {
        let set = load_rules(&self.paths, &self.vars)?;
        let matcher = Matcher::new(&set.rules)?;
        Ok(Reloaded {
            matcher,
            ip_only: IpOnlyRules::new(&set.rules),
            counts: rules::LoadCounts {
                loaded: set.rules.len(),
                rejected: set.errors.len(),
            },
            first_errors: set
                .errors
                .iter()
                .take(20)
                .map(ToString::to_string)
                .collect(),
        })
    }
}

/// What payload inspection keeps from one payload to the next: the
/// compiled rules, the tunnel detector's sources, the directions being
/// reassembled, and the flows' labels it writes the protocols to.
pub struct Inspector {
    matcher: Matcher,
    /// The windows of rules with a `threshold` or `detection_filter`.
    thresholds: Tracker,
    /// The bits rules set on flows.
    flowbits: Flowbits,
    tunnels: DnsTunnel,
    tunnel_threshold: u32,
    streams: Streams,
    labels: Labels,
    /// Hashes of the flows labelled lately, direct-mapped: the datagrams
    /// of a flow after its first skip the shared labels' lock.
    labelled: Box<[u64; LABELLED_SLOTS]>,
    hasher: foldhash::fast::FixedState,
}

/// Slots of [`Inspector::labelled`] (512 KiB): a few thousand would be
/// thrashed by tens of thousands of flows sending in turn.
const LABELLED_SLOTS: usize = 1 << 16;

/// Rule ids remembered per direction to keep its reassembled run from
/// raising again what a segment did.
const SIDS_PER_DIRECTION: usize = 32;

impl Inspector {
    pub fn new(matcher: Matcher, tunnel: DnsTunnelConfig, labels: Labels) -> Self {
        Self {
            matcher,
            thresholds: Tracker::default(),
            flowbits: Flowbits::default(),
            tunnel_threshold: tunnel.unique_subdomains,
            tunnels: DnsTunnel::new(tunnel),
            streams: Streams::new(),
            labels,
            labelled: Box::new([0; LABELLED_SLOTS]),
            hasher: foldhash::fast::FixedState::default(),
        }
    }

    /// Matches with `matcher` from now on. The threshold windows (by
    /// rule id), the flows' bits, the streams and the tunnels' sources go
    /// on: a reload loses no state but the old rules.
    pub fn replace_matcher(&mut self, matcher: Matcher) {
        self.matcher = matcher;
    }

    /// The DNS tunnel detector, for checks of its bounds.
    pub fn tunnels(&self) -> &DnsTunnel {
        &self.tunnels
    }

    /// Inspects one payload of the flow `h` describes (a sample's, or a
    /// capture's whole segment): alone, then as part of its direction's
    /// first bytes when it extends them. Tells the flow's protocol.
    pub fn inspect(&mut self, h: &SampleHeader, data: &[u8], now: Instant) -> Vec<Finding> {
        let (transport, name) = match h.proto {
            ip_proto::TCP => (Transport::Tcp, "tcp"),
            ip_proto::UDP => (Transport::Udp, "udp"),
            _ => return Vec::new(),
        };
        if data.is_empty() {
            // A bare FIN or RST: the end of its direction.
            self.streams.end(h);
            return Vec::new();
        }
        let src = SocketAddr::new(IpAddr::from(h.src), h.src_port);
        let dst = SocketAddr::new(IpAddr::from(h.dst), h.dst_port);
        let mut inspected = Inspected::parse(transport, src, dst, data);
        inspected.dsize = Some(h.payload_len as usize);
        inspected.flow = h.flow;
        let key = flow_key(h);
        let matches = self.matcher.matches(&inspected);
        let mut findings: Vec<Finding> = Vec::new();
        for m in passing(&self.matcher, &mut self.flowbits, matches.iter(), key, now) {
            if alerts(&self.matcher, &mut self.thresholds, m, src, dst, now) {
                findings.push(detect::payload::signature(m, src, dst, name));
            }
        }
        // What matched, whether or not a threshold let it alert: the run
        // that holds this segment does not count it again.
        let matched: Vec<u32> = matches.iter().map(|m| m.sid).collect();
        if let Some(dns) = inspected.dns.as_ref().filter(|d| !d.is_response) {
            for question in &dns.questions {
                if let Some(t) = self.tunnels.observe(src.ip(), question, now) {
                    findings.push(detect::payload::dns_tunnel(&t, dst, self.tunnel_threshold));
                }
            }
        }

        match transport {
            Transport::Tcp => self.stream(h, data, &inspected, &matched, &mut findings, now),
            // A datagram is a whole message: its protocol is told from it
            // alone, from what was parsed already.
            Transport::Udp => {
                if let Some(app) = app_proto::of(&inspected) {
                    self.label(flow_key(h), app);
                }
            }
        }
        findings
    }
}

impl Inspector {
    /// Adds a TCP segment to its direction's first bytes: the rules over
    /// the run it extends, the flow's protocol from the run (or the
    /// segment) until told.
    fn stream(
        &mut self,
        h: &SampleHeader,
        data: &[u8],
        inspected: &Inspected<'_>,
        matched: &[u32],
        findings: &mut Vec<Finding>,
        now: Instant,
    ) {
        let (src, dst) = (inspected.src, inspected.dst);
        let (stream, run) = self.streams.add(h, data);
        // A direction's first segment is its stream so far: `tcp-stream`
        // rules see it as such (only when some rule is one of those, as
        // it costs a second pass).
        let run = run.or_else(|| {
            (stream.is_one_segment() && self.matcher.has_stream_rules()).then(|| data.to_vec())
        });
        let whole = run.as_deref().map(|run| Inspected {
            flow: h.flow,
            ..Inspected::parse(Transport::Tcp, src, dst, run)
        });
        remember(&mut stream.sids, matched.iter().copied());
        if let Some(whole) = &whole {
            let fresh: Vec<Match> = self
                .matcher
                .matches(whole)
                .into_iter()
                .filter(|m| !stream.sids.contains(&m.sid))
                .collect();
            remember(&mut stream.sids, fresh.iter().map(|m| m.sid));
            for m in passing(
                &self.matcher,
                &mut self.flowbits,
                fresh.iter(),
                flow_key(h),
                now,
            ) {
                if alerts(&self.matcher, &mut self.thresholds, m, src, dst, now) {
                    findings.push(detect::payload::signature(m, src, dst, "tcp"));
                }
            }
        }
        if !stream.app_checked {
            let app = app_proto::of(whole.as_ref().unwrap_or(inspected));
            // Looked at again as the run grows, until it is done.
            stream.app_checked = app.is_some() || stream.is_done();
            if let Some(app) = app {
                self.label(flow_key(h), app);
            }
        }
        self.streams.end(h);
    }
}

/// The matches on flow `key` that pass their rules' `flowbits` conditions
/// and may alert (not `noalert`), their bits set: those that set bits
/// first, as Suricata orders rules, so that a checker sees what a setter
/// matching the same payload set.
fn passing<'m>(
    matcher: &Matcher,
    flowbits: &mut Flowbits,
    matches: impl Iterator<Item = &'m Match>,
    key: FlowKey,
    now: Instant,
) -> Vec<&'m Match> {
    let rules = matcher.rules();
    let mut ordered: Vec<&Match> = matches.collect();
    ordered.sort_by_key(|m| rules[m.rule].flowbits.iter().any(|f| !f.changes()));
    let mut out: Vec<&Match> = ordered
        .into_iter()
        .filter(|m| flowbits.apply(&rules[m.rule], key, now) && !rules[m.rule].noalert)
        .collect();
    out.sort_by_key(|m| (m.priority, m.sid));
    out
}

/// Whether match `m` from `src` to `dst` at `now` alerts: always, unless
/// its rule's `threshold` or `detection_filter` holds it back.
fn alerts(
    matcher: &Matcher,
    thresholds: &mut Tracker,
    m: &Match,
    src: SocketAddr,
    dst: SocketAddr,
    now: Instant,
) -> bool {
    matcher.rules()[m.rule]
        .threshold
        .is_none_or(|t| thresholds.allow(m.sid, &t, src.ip(), dst.ip(), now))
}

impl Inspector {
    /// Says `key`'s flow speaks `app`, unless it was said lately.
    fn label(&mut self, key: FlowKey, app: AppProto) {
        use std::hash::BuildHasher as _;
        // 0 marks an empty slot.
        let hash = self.hasher.hash_one(key).max(1);
        let slot = &mut self.labelled[hash as usize % LABELLED_SLOTS];
        if *slot != hash {
            *slot = hash;
            self.labels.set_app(key, app);
        }
    }
}

fn flow_key(h: &SampleHeader) -> FlowKey {
    FlowKey::of(&h.src, h.src_port, &h.dst, h.dst_port, h.proto).0
}

fn remember(sids: &mut Vec<u32>, matched: impl IntoIterator<Item = u32>) {
    for sid in matched {
        if sids.len() < SIDS_PER_DIRECTION && !sids.contains(&sid) {
            sids.push(sid);
        }
    }
}

/// The pipeline, its rules compiled, ready to start.
pub struct Payload {
    inspector: Inspector,
    rules: rules::LoadCounts,
}

impl Payload {
    /// Compiles `rules` into one matcher; sets up the tunnel detector; the
    /// protocols it tells go to `labels`.
    pub fn new(
        rules: &RuleSet,
        tunnel: DnsTunnelConfig,
        labels: Labels,
    ) -> Result<Self, MatcherError> {
        Ok(Self {
            inspector: Inspector::new(Matcher::new(&rules.rules)?, tunnel, labels),
            rules: rules::LoadCounts {
                loaded: rules.rules.len(),
                rejected: rules.errors.len(),
            },
        })
    }

    /// How many rules loaded, and how many were rejected.
    pub fn rules(&self) -> rules::LoadCounts {
        self.rules
    }

    /// Inspects `samples` until their channel closes, with each matcher
    /// from `matchers` as it comes (a reload); returns the findings' queue
    /// and the task.
    pub fn spawn(
        mut self,
        mut samples: mpsc::Receiver<PayloadSample>,
        mut matchers: mpsc::Receiver<Matcher>,
    ) -> (mpsc::Receiver<Finding>, JoinHandle<()>) {
        let (findings, found) = mpsc::channel(FINDING_QUEUE);
        let task = tokio::spawn(async move {
            let mut dropped = 0u64;
            loop {
                let sample = tokio::select! {
                    // A new rule set first: every sample after the reload
                    // answered is matched with it.
                    biased;
                    Some(matcher) = matchers.recv() => {
                        self.inspector.replace_matcher(matcher);
                        continue;
                    }
                    sample = samples.recv() => match sample {
                        Some(sample) => sample,
                        None => break,
                    },
                };
                let now = Instant::now();
                for finding in self.inspector.inspect(&sample.header, &sample.data, now) {
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

    use std::time::Duration;

    use super::*;
    use crate::alert::AlertKind;

    fn inspector() -> Inspector {
        inspector_with(Labels::default())
    }

    fn inspector_with(labels: Labels) -> Inspector {
        let rules = load_rules(&[], &rules::Vars::default()).expect("default rules");
        assert!(rules.errors.is_empty(), "{:?}", rules.errors);
        let matcher = Matcher::new(&rules.rules).expect("matcher");
        Inspector::new(matcher, DnsTunnelConfig::default(), labels)
    }

    fn inspect(inspector: &mut Inspector, s: &PayloadSample) -> Vec<Finding> {
        inspector.inspect(&s.header, &s.data, Instant::now())
    }

    fn sample(proto: u8, dst_port: u16, data: &[u8]) -> PayloadSample {
        PayloadSample {
            header: SampleHeader {
                src: IpKey::from_v4([198, 18, 0, 2]),
                dst: IpKey::from_v4([198, 18, 0, 1]),
                src_port: 40_000,
                dst_port,
                proto,
                tcp_flags: 0x18,
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

    #[test]
    fn cmd_exe_in_the_user_agent_is_a_signature_with_its_sid() {
        let mut inspector = inspector();
        let req =
            b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: cmd.exe\r\nAccept: */*\r\n\r\n";
        let found = inspect(&mut inspector, &sample(ip_proto::TCP, 80, req));
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

    /// `dsize` is the packet's payload length from the sample's header,
    /// not the bytes sampled of it.
    #[test]
    fn dsize_reads_the_packets_payload_length() {
        let rules = rules::parse_rules(
            r#"alert udp any any -> any any (content:"ping"; dsize:>1000; sid:9;)"#,
            "t.rules",
        );
        assert_eq!(rules.errors, vec![]);
        let matcher = Matcher::new(&rules.rules).expect("matcher");
        let mut inspector = Inspector::new(matcher, DnsTunnelConfig::default(), Labels::default());
        let mut long = sample(ip_proto::UDP, 9_999, b"ping and the first bytes");
        long.header.payload_len = 1_400;
        let found = inspect(&mut inspector, &long);
        assert!(found.iter().any(|f| f.evidence.sid == Some(9)), "{found:?}");
        let short = sample(ip_proto::UDP, 9_999, b"ping and the first bytes");
        assert!(inspect(&mut inspector, &short).is_empty());
    }

    /// A rule with `threshold: type limit, count 1` alerts once per source
    /// and window, each stream segment and run included.
    #[test]
    fn a_thresholded_rule_alerts_once_per_source_and_window() {
        let rules = rules::parse_rules(
            r#"alert http any any -> any any (http.uri; content:"/probe"; threshold:type limit, track by_src, count 1, seconds 60; sid:9;)"#,
            "t.rules",
        );
        assert_eq!(rules.errors, vec![]);
        let matcher = Matcher::new(&rules.rules).expect("matcher");
        let mut inspector = Inspector::new(matcher, DnsTunnelConfig::default(), Labels::default());
        let req = b"GET /probe HTTP/1.1\r\nHost: a\r\n\r\n";
        let now = Instant::now();
        let mut from = |src: u8, port: u16, at: Instant| {
            let mut s = sample(ip_proto::TCP, 80, req);
            s.header.src = IpKey::from_v4([198, 18, 0, src]);
            s.header.src_port = port;
            inspector.inspect(&s.header, &s.data, at).len()
        };
        assert_eq!(from(2, 40_000, now), 1);
        assert_eq!(
            from(2, 40_001, now),
            0,
            "the same source, within the minute"
        );
        assert_eq!(from(3, 40_000, now), 1, "another source");
        assert_eq!(
            from(2, 40_002, now + Duration::from_secs(61)),
            1,
            "the next window"
        );
    }

    /// A `flowbits:set` rule marks the flow (and, `noalert`, says nothing);
    /// the `isset` rule then alerts on that flow's later request only.
    #[test]
    fn flowbits_carry_a_match_to_the_flows_later_payloads() {
        let rules = rules::parse_rules(
            r#"alert http any any -> any any (http.uri; content:"/login"; flowbits:set,tried_login; flowbits:noalert; sid:1;)
alert http any any -> any any (http.uri; content:"/admin"; flowbits:isset,tried_login; sid:2;)"#,
            "t.rules",
        );
        assert_eq!(rules.errors, vec![]);
        let matcher = Matcher::new(&rules.rules).expect("matcher");
        let mut inspector = Inspector::new(matcher, DnsTunnelConfig::default(), Labels::default());
        let now = Instant::now();
        let mut send = |port: u16, seq: u32, uri: &str| {
            let req = format!("GET {uri} HTTP/1.1\r\nHost: a\r\n\r\n");
            let mut s = sample(ip_proto::TCP, 80, req.as_bytes());
            s.header.src_port = port;
            s.header.seq = seq;
            let found = inspector.inspect(&s.header, &s.data, now);
            found
                .iter()
                .filter_map(|f| f.evidence.sid)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            send(40_000, 1, "/admin"),
            Vec::<u32>::new(),
            "not marked yet"
        );
        assert_eq!(send(40_001, 1, "/login"), Vec::<u32>::new(), "noalert");
        assert_eq!(send(40_001, 5000, "/admin"), [2], "the marked flow");
        assert_eq!(send(40_002, 1, "/admin"), Vec::<u32>::new(), "another flow");
    }

    #[test]
    fn an_ordinary_request_matches_nothing() {
        let mut inspector = inspector();
        let req =
            b"GET /index.html HTTP/1.1\r\nHost: example.org\r\nUser-Agent: curl/8.5.0\r\n\r\n";
        assert_eq!(inspect(&mut inspector, &sample(ip_proto::TCP, 80, req)), []);
    }

    #[test]
    fn many_random_subdomains_are_a_dns_tunnel() {
        let mut inspector = inspector();
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
            let s = sample(ip_proto::UDP, 53, &q);
            found.extend(inspector.inspect(&s.header, &s.data, now));
        }
        let t = found
            .iter()
            .find(|f| f.key.kind == AlertKind::DnsTunnel)
            .unwrap_or_else(|| panic!("no tunnel in {found:?}"));
        assert_eq!(t.evidence.domain.as_deref(), Some("tunnel.example"));
    }

    #[test]
    fn a_user_agent_split_across_segments_is_matched_once_whole() {
        let labels = Labels::default();
        let mut inspector = inspector_with(labels.clone());
        let req = b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: cmd.e";
        let rest = b"xe\r\nAccept: */*\r\n\r\n";
        let mut first = sample(ip_proto::TCP, 8888, req);
        first.header.seq = 7_000;
        let mut second = sample(ip_proto::TCP, 8888, rest);
        second.header.seq = 7_000 + req.len() as u32;
        assert_eq!(inspect(&mut inspector, &first), [], "half a user agent");
        let found = inspect(&mut inspector, &second);
        let sids: Vec<_> = found.iter().map(|f| f.evidence.sid).collect();
        let whole = [&req[..], &rest[..]].concat();
        let expected: Vec<_> =
            inspect(&mut self::inspector(), &sample(ip_proto::TCP, 8888, &whole))
                .iter()
                .map(|f| f.evidence.sid)
                .collect();
        assert!(sids.contains(&Some(1_000_001)), "{found:?}");
        assert_eq!(sids, expected, "as if in one segment");
        assert_eq!(inspect(&mut inspector, &second), [], "a retransmission");
        let (key, _) = FlowKey::of(&first.header.src, 40_000, &first.header.dst, 8888, 6);
        let label = labels.take(&key).expect("the flow is labelled");
        assert_eq!(label.app_proto, Some(crate::payload::AppProto::Http));
    }

    /// What a server sends is put in order too: a page whose telling bytes
    /// straddle two segments matches a `file_data` rule on the second.
    #[test]
    fn a_response_body_split_across_segments_is_matched_in_the_servers_direction() {
        let rules = rules::parse_rules(
            r#"alert http any any -> any any (flow:established,to_client; file_data; content:"<applet code=Exploit"; sid:1;)"#,
            "t.rules",
        );
        assert_eq!(rules.errors, vec![]);
        let matcher = Matcher::new(&rules.rules).expect("matcher");
        let mut inspector = Inspector::new(matcher, DnsTunnelConfig::default(), Labels::default());
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html><appl";
        let rest = b"et code=Exploit.class></applet></html>";
        let from_server = |data: &[u8], seq: u32| {
            let mut s = sample(ip_proto::TCP, 40_000, data);
            (s.header.src, s.header.dst) = (s.header.dst, s.header.src);
            s.header.src_port = 80;
            s.header.seq = seq;
            s
        };
        let first = from_server(head, 9_000);
        let second = from_server(rest, 9_000 + head.len() as u32);
        assert_eq!(inspect(&mut inspector, &first), [], "half a tag");
        let found = inspect(&mut inspector, &second);
        let sids: Vec<_> = found.iter().map(|f| f.evidence.sid).collect();
        assert_eq!(sids, [Some(1)], "{found:?}");
    }
}
