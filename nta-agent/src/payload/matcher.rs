//! Every content of every rule, matched in one pass per buffer.
//!
//! One Aho–Corasick automaton per buffer kind holds the contents of all
//! rules for that buffer, built ASCII-case-insensitive: a single scan finds
//! candidates for `nocase` and exact contents alike, and exact ones are then
//! confirmed by comparing bytes. Identical contents share one pattern.
//!
//! As in Suricata, each rule has a fast pattern, its longest content: only
//! rules whose fast pattern was hit are looked at further (protocol,
//! addresses, ports, then every content against the recorded hits, with its
//! offset/depth and case). The cost per sample grows with the sample and the
//! hits, not with the number of rules — and a short content shared by many
//! rules (`/`, `POST`) does not wake them all.

use std::{borrow::Cow, collections::HashMap};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use super::{
    Inspected, Transport, excerpt,
    http::{decode_uri, normalize_host},
    rules::{Buffer, Direction, Protocol, Rule},
};

/// A rule that matched a sample, with what an analyst needs to judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub sid: u32,
    pub rev: u32,
    pub msg: String,
    pub classtype: Option<String>,
    pub priority: u8,
    /// Buffer of the rule's first content, e.g. `http.user_agent`.
    pub buffer: &'static str,
    /// Where in that buffer the first content matched.
    pub offset: usize,
    /// That buffer around the match, escaped and at most
    /// [`excerpt::MAX_EXCERPT`] bytes.
    pub excerpt: String,
}

/// Why rules could not be compiled.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the matcher for `{buffer}` contents: {source}")]
pub struct MatcherError {
    pub buffer: &'static str,
    #[source]
    pub source: aho_corasick::BuildError,
}

/// The compiled rules.
#[derive(Debug, Clone)]
pub struct Matcher {
    rules: Vec<Rule>,
    /// For each rule, the global pattern id of each of its contents.
    content_patterns: Vec<Vec<u32>>,
    patterns: Patterns,
    /// Indexed by [`Buffer::index`]; `None` when no rule uses the buffer.
    automata: Vec<Option<Automaton>>,
}

/// Above this many patterns in one buffer, the automaton is left to the
/// crate's choice (a contiguous NFA, ~15% slower here) instead of a DFA,
/// whose size is states × byte classes × 4 bytes: about 10 MB for 5000
/// distinct 15-byte contents. 1000 rules take under 1 MB.
const DFA_MAX_PATTERNS: usize = 5000;

#[derive(Debug, Clone)]
struct Automaton {
    ac: AhoCorasick,
    /// Global pattern id of each of this automaton's patterns.
    ids: Vec<u32>,
}

/// One automaton hit: (global pattern id, buffer instance, start, end).
/// Sorted, hits of one pattern are contiguous and in buffer order.
type Hit = (u32, u32, u32, u32);

/// Patterns known to the automata, by global id, with the rules that use
/// each as their fast pattern.
#[derive(Debug, Clone, Default)]
struct Patterns {
    /// Rules whose fast pattern (longest content) this is.
    fast_users: Vec<Vec<u32>>,
}

impl Matcher {
    /// Compiles `rules`. Fails only if an automaton would exceed the
    /// `aho-corasick` crate's size limits, far beyond any real rule set.
    pub fn new(rules: &[Rule]) -> Result<Matcher, MatcherError> {
        let mut per_buffer: Vec<(Vec<Vec<u8>>, Vec<u32>)> =
            vec![(Vec::new(), Vec::new()); Buffer::ALL.len()];
        let mut ids: HashMap<(Buffer, Vec<u8>), u32> = HashMap::new();
        let mut patterns = Patterns::default();
        let mut content_patterns = Vec::with_capacity(rules.len());
        for (r, rule) in rules.iter().enumerate() {
            let mut of_rule = Vec::with_capacity(rule.contents.len());
            for content in &rule.contents {
                let key = (content.buffer, content.bytes.to_ascii_lowercase());
                let id = *ids.entry(key).or_insert_with_key(|(buffer, lower)| {
                    let id = patterns.fast_users.len() as u32;
                    patterns.fast_users.push(Vec::new());
                    let (bytes, global) = &mut per_buffer[buffer.index()];
                    bytes.push(lower.clone());
                    global.push(id);
                    id
                });
                of_rule.push(id);
            }
            // The longest content is the least likely to hit by chance, so
            // it alone decides whether the rule is looked at: a rule with
            // `content:"POST"` and a long distinctive content costs nothing
            // on every other POST.
            let fast = (0..rule.contents.len())
                .max_by_key(|&c| (rule.contents[c].bytes.len(), std::cmp::Reverse(c)))
                .map_or(0, |c| of_rule[c]);
            patterns.fast_users[fast as usize].push(r as u32);
            content_patterns.push(of_rule);
        }
        let automata = Buffer::ALL
            .iter()
            .zip(per_buffer)
            .map(|(&buffer, (bytes, ids))| {
                if bytes.is_empty() {
                    return Ok(None);
                }
                let ac = AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    // Standard semantics: overlapping search reports every
                    // pattern at every position, so `cmd` and `cmd.exe` both hit.
                    .match_kind(MatchKind::Standard)
                    // A DFA scans fastest; its memory grows with the
                    // patterns, so past DFA_MAX_PATTERNS let the crate choose.
                    .kind((bytes.len() <= DFA_MAX_PATTERNS).then_some(AhoCorasickKind::DFA))
                    .build(&bytes)
                    .map_err(|source| MatcherError {
                        buffer: buffer.name(),
                        source,
                    })?;
                Ok(Some(Automaton { ac, ids }))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Matcher {
            rules: rules.to_vec(),
            content_patterns,
            patterns,
            automata,
        })
    }

    /// The compiled rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Heap bytes used by the automata (not the rules), for metrics.
    pub fn automata_bytes(&self) -> usize {
        self.automata
            .iter()
            .flatten()
            .map(|a| a.ac.memory_usage())
            .sum()
    }

    /// Every rule that matches `pkt`, most severe (lowest priority) first,
    /// then by sid.
    pub fn matches(&self, pkt: &Inspected<'_>) -> Vec<Match> {
        let instances = buffers(pkt, |b| self.automata[b.index()].is_some());
        // The one pass: each buffer through its automaton, every hit kept.
        let mut hits: Vec<Hit> = Vec::new();
        for (k, (buffer, bytes)) in instances.iter().enumerate() {
            if let Some(automaton) = &self.automata[buffer.index()] {
                // Positions fit u32: buffers are parts of one sample.
                hits.extend(automaton.ac.find_overlapping_iter(&**bytes).map(|m| {
                    (
                        automaton.ids[m.pattern().as_usize()],
                        k as u32,
                        m.start() as u32,
                        m.end() as u32,
                    )
                }));
            }
        }
        if hits.is_empty() {
            return Vec::new();
        }
        hits.sort_unstable();

        let mut candidates: Vec<u32> = Vec::new();
        let mut last = None;
        for &(pattern, ..) in &hits {
            if last != Some(pattern) {
                candidates.extend(&self.patterns.fast_users[pattern as usize]);
                last = Some(pattern);
            }
        }
        candidates.sort_unstable();
        candidates.dedup();

        let mut out: Vec<Match> = candidates
            .into_iter()
            .filter_map(|r| self.check(r as usize, pkt, &instances, &hits))
            .collect();
        out.sort_by_key(|m| (m.priority, m.sid));
        out
    }

    /// Whether rule `r` matches, given every automaton hit.
    fn check(
        &self,
        r: usize,
        pkt: &Inspected<'_>,
        instances: &[(Buffer, Cow<'_, [u8]>)],
        hits: &[Hit],
    ) -> Option<Match> {
        let rule = &self.rules[r];
        if !applies(rule, pkt) {
            return None;
        }
        let mut first = None;
        for (content, &pattern) in rule.contents.iter().zip(&self.content_patterns[r]) {
            let from = hits.partition_point(|h| h.0 < pattern);
            let to = from + hits[from..].partition_point(|h| h.0 == pattern);
            let &(_, k, start, _) = hits[from..to].iter().find(|&&(_, k, start, end)| {
                let (start, end) = (start as usize, end as usize);
                start >= content.offset
                    && content
                        .depth
                        .is_none_or(|d| end <= content.offset.saturating_add(d))
                    && (content.nocase || instances[k as usize].1[start..end] == content.bytes[..])
            })?;
            first.get_or_insert((k as usize, start as usize));
        }
        let (k, start) = first?;
        Some(Match {
            sid: rule.sid,
            rev: rule.rev,
            msg: rule.msg.clone(),
            classtype: rule.classtype.clone(),
            priority: rule.priority,
            buffer: instances[k].0.name(),
            offset: start,
            excerpt: excerpt::around(&instances[k].1, start),
        })
    }
}

/// Whether `rule`'s header (protocol, addresses, ports) fits `pkt`.
fn applies(rule: &Rule, pkt: &Inspected<'_>) -> bool {
    let protocol = match rule.protocol {
        Protocol::Tcp => pkt.transport == Transport::Tcp,
        Protocol::Udp => pkt.transport == Transport::Udp,
        Protocol::Http => pkt.http.is_some(),
        Protocol::Dns => pkt.dns.is_some(),
    };
    let one_way = |src: std::net::SocketAddr, dst: std::net::SocketAddr| {
        rule.src.matches(src.ip())
            && rule.src_ports.matches(src.port())
            && rule.dst.matches(dst.ip())
            && rule.dst_ports.matches(dst.port())
    };
    protocol
        && match rule.direction {
            Direction::ToDst => one_way(pkt.src, pkt.dst),
            Direction::Both => one_way(pkt.src, pkt.dst) || one_way(pkt.dst, pkt.src),
        }
}

/// The buffers of `pkt` that some rule looks at. `dns.query` gives one
/// instance per question.
fn buffers<'p>(
    pkt: &'p Inspected<'_>,
    wanted: impl Fn(Buffer) -> bool,
) -> Vec<(Buffer, Cow<'p, [u8]>)> {
    let mut out = Vec::new();
    let mut add = |buffer: Buffer, bytes: Option<Cow<'p, [u8]>>| {
        if let Some(bytes) = bytes.filter(|b| !b.is_empty()) {
            out.push((buffer, bytes));
        }
    };
    if wanted(Buffer::PktData) {
        add(Buffer::PktData, Some(Cow::Borrowed(pkt.payload)));
    }
    if let Some(http) = &pkt.http {
        if wanted(Buffer::HttpMethod) {
            add(
                Buffer::HttpMethod,
                Some(Cow::Borrowed(http.method.as_bytes())),
            );
        }
        if wanted(Buffer::HttpUri) {
            add(Buffer::HttpUri, http.uri.map(decode_uri));
        }
        if wanted(Buffer::HttpUriRaw) {
            add(Buffer::HttpUriRaw, http.uri.map(Cow::Borrowed));
        }
        if wanted(Buffer::HttpHeader) {
            let len = http
                .headers
                .iter()
                .map(|h| h.name.len() + h.value.len() + 4)
                .sum();
            let mut all = Vec::with_capacity(len);
            for h in &http.headers {
                all.extend_from_slice(h.name.as_bytes());
                all.extend_from_slice(b": ");
                all.extend_from_slice(h.value);
                all.extend_from_slice(b"\r\n");
            }
            add(Buffer::HttpHeader, Some(Cow::Owned(all)));
        }
        if wanted(Buffer::HttpUserAgent) {
            add(Buffer::HttpUserAgent, http.user_agent().map(Cow::Borrowed));
        }
        if wanted(Buffer::HttpHost) {
            add(
                Buffer::HttpHost,
                http.host().map(|h| Cow::Owned(normalize_host(h))),
            );
        }
    }
    if let Some(dns) = &pkt.dns
        && wanted(Buffer::DnsQuery)
    {
        for q in &dns.questions {
            add(Buffer::DnsQuery, Some(Cow::Borrowed(q.name.as_bytes())));
        }
    }
    out
}

#[cfg(test)]
mod tests;
