//! DNS tunnelling: data smuggled out in query names (and answers fetched
//! with TXT or NULL queries) looks unlike ordinary resolution — many
//! never-repeated names under one domain, long or random-looking labels,
//! bursts of TXT/NULL queries.
//!
//! State is kept per source and per registered domain, in fixed windows: a
//! (source, domain) pair's window starts with its first query and is reset
//! after `window`. A [`TunnelFinding`] is returned when a threshold is first
//! crossed in a window, so a tunnel that lasts is reported again once per
//! window (the incident table makes that one alert).
//!
//! The registered domain is approximated without the Public Suffix List:
//! the last two labels, or the last three when the top-level label is a
//! two-letter country code and the second-level one a common public
//! second level (`co.uk`, `com.au`, `ac.jp`, ...). Brief version of the
//! usual rule "three labels when the second-to-last is ≤ 3 characters",
//! narrowed because that rule makes `<data>.abc.com` its own registered
//! domain for every query, which a tunnel through any three-letter domain
//! would use to stay invisible. Private suffixes (e.g. `*.github.io` users)
//! are merged with their provider: their subdomains count together.
//!
//! Names under `arpa` (reverse lookups) are not looked at: a mail server or
//! resolver resolving many addresses is normal.

use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
    hash::{BuildHasher, RandomState},
    net::IpAddr,
    time::{Duration, Instant},
};

use super::dns::{DnsQuestion, QTYPE_NULL, QTYPE_TXT};

/// Sources tracked at once. Tunnels query continuously, so with
/// least-recently-seen eviction they stay tracked while a flood of spoofed
/// sources (one query each) cycles through the rest. 1024 × 8 domains ×
/// [`MAX_UNIQUE_SUBDOMAINS`] hashes bounds the state to a few MB even when
/// every slot is full.
pub const MAX_SOURCES: usize = 1024;
/// Registered domains tracked per source; a tunnel uses one, a busy client
/// a few dozen, of which the most recently used matter.
pub const MAX_DOMAINS_PER_SOURCE: usize = 8;
/// Highest `unique_subdomains` threshold accepted: the names are stored
/// (as 8-byte hashes) until the threshold is reached.
pub const MAX_UNIQUE_SUBDOMAINS: u32 = 1000;
/// When the source table is full, this fraction of it (the least recently
/// seen) is dropped at once, so eviction costs O(1) per new source
/// amortised instead of a scan per source.
const EVICT_FRACTION: usize = 8;
/// Labels shorter than this are not judged by entropy: a short label cannot
/// show much randomness (its entropy is at most log2 of its length).
pub const MIN_ENTROPY_LABEL_LEN: usize = 20;

/// Public second levels under two-letter country codes (`co.uk`).
const SECOND_LEVELS: &[&str] = &[
    "co", "com", "net", "org", "gov", "edu", "ac", "or", "ne", "go", "gob", "mil", "ltd", "plc",
    "nom", "sch", "gv", "ed",
];

/// Thresholds of the DNS tunnel detector.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsTunnelConfig {
    pub enabled: bool,
    /// Distinct subdomains of one registered domain from one source within
    /// `window` (at most [`MAX_UNIQUE_SUBDOMAINS`]).
    pub unique_subdomains: u32,
    pub window: Duration,
    /// Longest ordinary label; DNS allows 63, tunnels fill them.
    pub max_label_len: usize,
    /// Shannon entropy (bits per character) from which a label of at least
    /// [`MIN_ENTROPY_LABEL_LEN`] characters looks random.
    pub entropy_bits: f64,
    /// TXT and NULL queries for one domain from one source within `window`.
    pub txt_null_per_window: u32,
}

impl Default for DnsTunnelConfig {
    fn default() -> Self {
        DnsTunnelConfig {
            enabled: true,
            // A browser loading a page resolves a handful of names per
            // domain; 50 distinct ones a minute is already a lot for a host.
            unique_subdomains: 50,
            window: Duration::from_secs(60),
            // Base32 tunnels (iodine, dnscat2) use labels of 57–63 chars;
            // ordinary names rarely exceed 30.
            max_label_len: 52,
            // English-like names stay under ~3.5 bits/char; base32/base64
            // data approaches 5–6 bits/char on long enough labels.
            entropy_bits: 4.0,
            txt_null_per_window: 50,
        }
    }
}

impl DnsTunnelConfig {
    /// Checks the ranges the detector relies on.
    pub fn validate(&self) -> Result<(), String> {
        if self.unique_subdomains == 0 || self.unique_subdomains > MAX_UNIQUE_SUBDOMAINS {
            return Err(format!(
                "unique_subdomains must be 1 to {MAX_UNIQUE_SUBDOMAINS}"
            ));
        }
        if self.window.is_zero() {
            return Err("window must be longer than 0".into());
        }
        if self.txt_null_per_window == 0 {
            return Err("txt_null_per_window must be at least 1".into());
        }
        if !(self.entropy_bits > 0.0 && self.entropy_bits <= 8.0) {
            return Err("entropy_bits must be in (0, 8]".into());
        }
        Ok(())
    }
}

/// What the detector saw when a threshold was crossed.
#[derive(Debug, Clone, PartialEq)]
pub struct TunnelFinding {
    pub src: IpAddr,
    /// Registered domain (approximated), lower-cased.
    pub domain: String,
    /// Distinct subdomains seen in the window (counting stops at the threshold).
    pub unique_subdomains: u32,
    /// Longest label seen in the window.
    pub longest_label: usize,
    /// Highest label entropy seen in the window, bits per character (labels
    /// of at least [`MIN_ENTROPY_LABEL_LEN`] characters only; 0 if none).
    pub max_entropy: f64,
    /// TXT and NULL queries in the window.
    pub txt_null: u32,
    /// Which thresholds were crossed, for people.
    pub reason: String,
    /// The query that crossed it, as received (bounded by DNS to 255 bytes
    /// of presentation text times the `\DDD` escape).
    pub example: String,
}

/// The DNS tunnel detector's state. Bounded: see [`MAX_SOURCES`],
/// [`MAX_DOMAINS_PER_SOURCE`], [`MAX_UNIQUE_SUBDOMAINS`].
#[derive(Debug)]
pub struct DnsTunnel {
    config: DnsTunnelConfig,
    /// Subdomains are stored as keyed hashes: 8 bytes each whatever the
    /// name, and not collidable by someone who does not know the key.
    hasher: RandomState,
    /// Keyed by addresses from the network: foldhash's random seed keeps
    /// collisions unpredictable, at a fraction of SipHash's cost.
    sources: HashMap<IpAddr, Source, foldhash::fast::RandomState>,
}

#[derive(Debug)]
struct Source {
    last_seen: Instant,
    domains: HashMap<String, Window>,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    last_seen: Instant,
    subdomains: HashSet<u64>,
    longest_label: usize,
    max_entropy: f64,
    txt_null: u32,
    reported: bool,
}

impl Window {
    fn new(now: Instant) -> Window {
        Window {
            start: now,
            last_seen: now,
            subdomains: HashSet::new(),
            longest_label: 0,
            max_entropy: 0.0,
            txt_null: 0,
            reported: false,
        }
    }
}

impl DnsTunnel {
    /// An empty detector.
    pub fn new(config: DnsTunnelConfig) -> DnsTunnel {
        DnsTunnel {
            config,
            hasher: RandomState::new(),
            sources: HashMap::default(),
        }
    }

    /// The thresholds in use.
    pub fn config(&self) -> &DnsTunnelConfig {
        &self.config
    }

    /// Sources currently tracked (at most [`MAX_SOURCES`]).
    pub fn tracked_sources(&self) -> usize {
        self.sources.len()
    }

    /// (Source, domain) pairs currently tracked.
    pub fn tracked_domains(&self) -> usize {
        self.sources.values().map(|s| s.domains.len()).sum()
    }

    /// Accounts one query from `src` (responses should not be passed: their
    /// questions repeat the query's). Returns a finding when this query makes
    /// the (source, domain) pair cross a threshold for the first time in its
    /// window.
    pub fn observe(
        &mut self,
        src: IpAddr,
        query: &DnsQuestion,
        now: Instant,
    ) -> Option<TunnelFinding> {
        if !self.config.enabled {
            return None;
        }
        let name = QueryName::split(&query.name)?;
        let sub_hash = (!name.subdomain.is_empty()).then(|| self.hasher.hash_one(&*name.subdomain));
        // A copy (a few numbers), so the window can be borrowed beside it.
        let config = self.config.clone();
        let threshold = config.unique_subdomains.min(MAX_UNIQUE_SUBDOMAINS);
        let window = self.window(src, &name.domain, now);
        if now.saturating_duration_since(window.start) >= config.window {
            *window = Window::new(now);
        }
        window.last_seen = now;
        if let Some(h) = sub_hash
            && window.subdomains.len() < threshold as usize
        {
            window.subdomains.insert(h);
        }
        window.longest_label = window.longest_label.max(name.longest_label);
        window.max_entropy = window.max_entropy.max(name.max_entropy);
        if query.qtype == QTYPE_TXT || query.qtype == QTYPE_NULL {
            window.txt_null = window.txt_null.saturating_add(1);
        }
        if window.reported {
            return None;
        }
        let reasons = reasons(&config, window, &name.domain, threshold);
        if reasons.is_empty() {
            return None;
        }
        window.reported = true;
        Some(TunnelFinding {
            src,
            unique_subdomains: window.subdomains.len() as u32,
            longest_label: window.longest_label,
            max_entropy: window.max_entropy,
            txt_null: window.txt_null,
            reason: reasons.join("; "),
            example: query.name.clone(),
            domain: name.domain.into_owned(),
        })
    }

    /// The window of (`src`, `domain`), made room for and created if new.
    fn window(&mut self, src: IpAddr, domain: &str, now: Instant) -> &mut Window {
        if !self.sources.contains_key(&src) && self.sources.len() >= MAX_SOURCES {
            self.evict_sources();
        }
        let source = self.sources.entry(src).or_insert_with(|| Source {
            last_seen: now,
            domains: HashMap::new(),
        });
        source.last_seen = now;
        // Two lookups rather than `entry`, which would take an owned key
        // on every query.
        if source.domains.contains_key(domain) {
            return source.domains.get_mut(domain).expect("just found");
        }
        if source.domains.len() >= MAX_DOMAINS_PER_SOURCE {
            let oldest = source
                .domains
                .iter()
                .min_by_key(|(_, w)| w.last_seen)
                .map(|(d, _)| d.clone());
            if let Some(oldest) = oldest {
                source.domains.remove(&oldest);
            }
        }
        source
            .domains
            .entry(domain.to_owned())
            .or_insert_with(|| Window::new(now))
    }

    /// Drops the least recently seen [`MAX_SOURCES`]` / EVICT_FRACTION` sources.
    fn evict_sources(&mut self) {
        let mut seen: Vec<Instant> = self.sources.values().map(|s| s.last_seen).collect();
        let n = (seen.len() / EVICT_FRACTION).max(1);
        let (_, cutoff, _) = seen.select_nth_unstable(n - 1);
        let cutoff = *cutoff;
        let mut dropped = 0;
        // Ties at the cutoff: drop only as many as needed.
        self.sources.retain(|_, s| {
            if s.last_seen < cutoff || (s.last_seen == cutoff && dropped < n) {
                dropped += 1;
                false
            } else {
                true
            }
        });
    }
}

/// How many trailing labels make up the registered domain.
fn registered_labels(labels: &[&str]) -> usize {
    match labels {
        [.., second, tld] => registered_by_last(Some(second), tld),
        _ => 2,
    }
}

/// [`registered_labels`] from the last two labels.
fn registered_by_last(second: Option<&str>, tld: &str) -> usize {
    match second {
        Some(second) if tld.len() == 2 && SECOND_LEVELS.contains(&second) => 3,
        _ => 2,
    }
}

/// Shannon entropy of `bytes`, bits per byte.
pub fn shannon_entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Why `window` looks like a tunnel: every threshold it crossed.
fn reasons(config: &DnsTunnelConfig, window: &Window, domain: &str, threshold: u32) -> Vec<String> {
    let unique = window.subdomains.len() as u32;
    let secs = config.window.as_secs_f64();
    let mut reasons = Vec::new();
    if unique >= threshold {
        reasons.push(format!(
            "{unique} distinct subdomains of {domain} within {secs}s (threshold {threshold})"
        ));
    }
    if window.longest_label > config.max_label_len {
        reasons.push(format!(
            "{}-character label (longest ordinary: {})",
            window.longest_label, config.max_label_len
        ));
    }
    if window.max_entropy >= config.entropy_bits {
        reasons.push(format!(
            "random-looking label: {:.2} bits/char (threshold {})",
            window.max_entropy, config.entropy_bits
        ));
    }
    if window.txt_null >= config.txt_null_per_window {
        reasons.push(format!(
            "{} TXT/NULL queries within {secs}s (threshold {})",
            window.txt_null, config.txt_null_per_window
        ));
    }
    reasons
}

/// A query's name split at its registered domain.
struct QueryName<'a> {
    /// The registered domain (`example.co.uk`).
    domain: Cow<'a, str>,
    /// What comes before it, dots and all.
    subdomain: Cow<'a, str>,
    longest_label: usize,
    /// The highest entropy of a subdomain label long enough to measure.
    max_entropy: f64,
}

impl<'a> QueryName<'a> {
    /// `None` for reverse lookups and names with no registered domain.
    fn split(name: &'a str) -> Option<Self> {
        let name = name.trim_end_matches('.');
        let plain = !name.starts_with('.')
            && !name.contains("..")
            && !name.bytes().any(|b| b.is_ascii_uppercase());
        if plain {
            Self::split_plain(name)
        } else {
            QueryName::split_owned(name)
        }
    }

    /// A name in lower case without empty labels: its parts are slices of
    /// it, which is what nearly every query is.
    fn split_plain(name: &'a str) -> Option<Self> {
        let mut last = name.rsplit('.');
        let tld = last.next().filter(|t| !t.is_empty())?;
        if tld == "arpa" {
            return None;
        }
        let keep = registered_by_last(last.next(), tld);
        // Where the registered domain starts: after the keep-th dot from
        // the end, or at the start if there are just `keep` labels.
        let mut dots = name.rmatch_indices('.').map(|(i, _)| i);
        let start = match dots.nth(keep - 1) {
            Some(dot) => dot + 1,
            None if name.split('.').count() == keep => 0,
            None => return None,
        };
        let subdomain = name.get(..start.saturating_sub(1)).unwrap_or("");
        let labels = || subdomain.split('.').filter(|l| !l.is_empty());
        Some(Self {
            domain: Cow::Borrowed(&name[start..]),
            subdomain: Cow::Borrowed(subdomain),
            longest_label: labels().map(str::len).max().unwrap_or(0),
            max_entropy: labels()
                .filter(|l| l.len() >= MIN_ENTROPY_LABEL_LEN)
                .map(|l| shannon_entropy(l.as_bytes()))
                .fold(0.0, f64::max),
        })
    }

    /// Any other name: lowered, empty labels dropped.
    fn split_owned(name: &str) -> Option<QueryName<'static>> {
        let name = name.to_ascii_lowercase();
        let labels: Vec<&str> = name.split('.').filter(|l| !l.is_empty()).collect();
        if labels.last() == Some(&"arpa") {
            return None;
        }
        let keep = registered_labels(&labels);
        if labels.len() < keep || keep < 2 {
            return None;
        }
        let split = labels.len() - keep;
        let sub = &labels[..split];
        Some(QueryName {
            domain: Cow::Owned(labels[split..].join(".")),
            subdomain: Cow::Owned(sub.join(".")),
            longest_label: sub.iter().map(|l| l.len()).max().unwrap_or(0),
            max_entropy: sub
                .iter()
                .filter(|l| l.len() >= MIN_ENTROPY_LABEL_LEN)
                .map(|l| shannon_entropy(l.as_bytes()))
                .fold(0.0, f64::max),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_split_as_any_name_does() {
        for name in [
            "www.example.com",
            "example.com",
            "com",
            "a.co.uk",
            "co.uk",
            "x.y.example.co.uk",
            "uk",
            "4.3.2.1.in-addr.arpa",
            "0123456789abcdef0123456789abcdef.t.exfil.example",
            "a.b.c.d.e.f",
        ] {
            let plain = QueryName::split_plain(name);
            let owned = QueryName::split_owned(name);
            assert_eq!(
                plain
                    .as_ref()
                    .map(|p| (&*p.domain, &*p.subdomain, p.longest_label)),
                owned
                    .as_ref()
                    .map(|o| (&*o.domain, &*o.subdomain, o.longest_label)),
                "{name}"
            );
            assert_eq!(
                plain.map(|p| p.max_entropy.to_bits()),
                owned.map(|o| o.max_entropy.to_bits()),
                "{name}"
            );
        }
        // The others take the owned path, and land where the plain would.
        let upper = QueryName::split("WWW.Example.COM.").expect("splits");
        assert_eq!((&*upper.domain, &*upper.subdomain), ("example.com", "www"));
        let gaps = QueryName::split("a..b.example.com").expect("splits");
        assert_eq!((&*gaps.domain, &*gaps.subdomain), ("example.com", "a.b"));
    }

    fn q(name: &str, qtype: u16) -> DnsQuestion {
        DnsQuestion {
            name: name.into(),
            qtype,
        }
    }

    fn src(i: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000u32 + i))
    }

    /// Base32-looking label of `len` chars, different for each `seed`.
    fn random_label(seed: u64, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(ALPHABET[(x % 32) as usize])
            })
            .collect()
    }

    #[test]
    fn many_random_subdomains_of_one_domain_raise_one_finding_per_window() {
        let mut det = DnsTunnel::new(DnsTunnelConfig::default());
        let t0 = Instant::now();
        let mut findings = Vec::new();
        for i in 0..200u64 {
            // Short labels: only the count can give them away.
            let name = format!("{}.t.evil-tunnel.com", random_label(i, 12));
            let now = t0 + Duration::from_millis(100 * i);
            findings.extend(det.observe(src(1), &q(&name, 1), now));
        }
        // 200 queries over 20 s: one window, one finding, at the 50th name.
        assert_eq!(findings.len(), 1, "{findings:?}");
        let f = &findings[0];
        assert_eq!(f.domain, "evil-tunnel.com");
        assert_eq!(f.unique_subdomains, 50);
        assert!(f.reason.contains("50 distinct subdomains"), "{}", f.reason);

        // The next window reports again while it lasts.
        let later = t0 + Duration::from_secs(61);
        let mut again = None;
        for i in 1000..1100u64 {
            let name = format!("{}.evil-tunnel.com", random_label(i, 12));
            again = again.or(det.observe(src(1), &q(&name, 1), later));
        }
        assert!(again.is_some());
    }

    #[test]
    fn a_normal_resolver_pattern_is_quiet() {
        let mut det = DnsTunnel::new(DnsTunnelConfig::default());
        let t0 = Instant::now();
        let names = [
            "www.example.com",
            "static.example.com",
            "api.example.com",
            "www.google.com",
            "fonts.googleapis.com",
            "www.bbc.co.uk",
            "news.bbc.co.uk",
            "1.0.0.10.in-addr.arpa",
            "mail.example.org",
        ];
        // 20 queries a second for 500 s, a TXT lookup (SPF/DMARC) now and then.
        for i in 0..10_000u64 {
            let (name, qtype) = match i % 100 {
                99 => ("_dmarc.example.org", QTYPE_TXT),
                _ => (names[(i % names.len() as u64) as usize], 1),
            };
            let now = t0 + Duration::from_millis(50 * i);
            assert_eq!(det.observe(src(7), &q(name, qtype), now), None, "{name}");
        }
    }

    #[test]
    fn a_long_label_is_a_finding_on_its_own() {
        let mut det = DnsTunnel::new(DnsTunnelConfig::default());
        let name = format!("{}.x.example.net", "a".repeat(60));
        let f = det
            .observe(src(1), &q(&name, 1), Instant::now())
            .expect("finding");
        assert_eq!(f.longest_label, 60);
        assert!(f.reason.contains("60-character label"), "{}", f.reason);
        // Low entropy ("aaaa…"): only the length triggered.
        assert!(!f.reason.contains("random"));
    }

    #[test]
    fn a_high_entropy_label_is_a_finding() {
        let mut det = DnsTunnel::new(DnsTunnelConfig::default());
        let label = random_label(42, 40);
        assert!(shannon_entropy(label.as_bytes()) >= 4.0);
        let f = det
            .observe(
                src(1),
                &q(&format!("{label}.example.net"), 1),
                Instant::now(),
            )
            .expect("finding");
        assert!(f.reason.contains("random-looking label"), "{}", f.reason);
        assert!(f.max_entropy >= 4.0);
    }

    #[test]
    fn txt_bursts_are_counted_per_domain() {
        let mut det = DnsTunnel::new(DnsTunnelConfig::default());
        let now = Instant::now();
        let mut found = None;
        for _ in 0..50 {
            assert!(found.is_none(), "finding before the 50th query");
            // The same name every time: no unique-subdomain finding.
            found = det.observe(src(1), &q("c2.example.com", QTYPE_TXT), now);
        }
        let f = found.expect("finding at the 50th TXT query");
        assert_eq!(f.txt_null, 50);
        assert!(f.reason.contains("TXT/NULL"), "{}", f.reason);
    }

    #[test]
    fn registered_domains_follow_the_documented_approximation() {
        let reg = |name: &str| {
            let labels: Vec<&str> = name.split('.').collect();
            labels[labels.len() - registered_labels(&labels)..].join(".")
        };
        assert_eq!(reg("a.b.example.com"), "example.com");
        assert_eq!(reg("www.bbc.co.uk"), "bbc.co.uk");
        assert_eq!(reg("x.y.example.com.au"), "example.com.au");
        // A three-letter domain is not mistaken for a public suffix.
        assert_eq!(reg("data1234.abc.com"), "abc.com");
        assert_eq!(reg("data1234.abc.io"), "abc.io");
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_sources() {
        let mut det = DnsTunnel::new(DnsTunnelConfig::default());
        let t0 = Instant::now();
        for i in 0..100_000u32 {
            let now = t0 + Duration::from_micros(u64::from(i));
            for d in 0..3 {
                let name = format!("{}.d{d}-{}.com", random_label(u64::from(i), 8), i % 17);
                det.observe(src(i), &q(&name, 1), now);
            }
            assert!(det.tracked_sources() <= MAX_SOURCES);
        }
        assert!(det.tracked_domains() <= MAX_SOURCES * MAX_DOMAINS_PER_SOURCE);

        // One source, many domains: its table stays bounded too.
        for d in 0..1000 {
            det.observe(src(1), &q(&format!("www.site{d}.com"), 1), t0);
        }
        assert!(det.sources[&src(1)].domains.len() <= MAX_DOMAINS_PER_SOURCE);
    }

    #[test]
    fn an_active_tunnel_survives_a_flood_of_spoofed_sources() {
        let mut det = DnsTunnel::new(DnsTunnelConfig::default());
        let t0 = Instant::now();
        let tunnel = IpAddr::from([192, 0, 2, 66]);
        let mut found = None;
        for i in 0..60u32 {
            let now = t0 + Duration::from_millis(u64::from(i) * 10);
            // 500 spoofed one-off sources between two tunnel queries.
            for j in 0..500 {
                det.observe(src(i * 500 + j), &q("www.example.com", 1), now);
            }
            let name = format!("{}.evil.net", random_label(u64::from(i), 10));
            let after = now + Duration::from_millis(1);
            found = found.or(det.observe(tunnel, &q(&name, 1), after));
        }
        assert!(found.is_some(), "tunnel state was evicted");
    }

    #[test]
    fn disabled_detector_sees_nothing() {
        let mut det = DnsTunnel::new(DnsTunnelConfig {
            enabled: false,
            ..DnsTunnelConfig::default()
        });
        let name = format!("{}.example.com", "a".repeat(60));
        assert_eq!(det.observe(src(1), &q(&name, 1), Instant::now()), None);
        assert_eq!(det.tracked_sources(), 0);
    }

    #[test]
    fn config_ranges_are_checked() {
        assert!(DnsTunnelConfig::default().validate().is_ok());
        let too_many = DnsTunnelConfig {
            unique_subdomains: MAX_UNIQUE_SUBDOMAINS + 1,
            ..DnsTunnelConfig::default()
        };
        assert!(too_many.validate().is_err());
    }

    #[test]
    fn entropy_of_known_strings() {
        assert_eq!(shannon_entropy(b""), 0.0);
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!((shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
        assert!(shannon_entropy(b"mail-server-frontend") < 4.0);
    }
}
