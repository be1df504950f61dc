//! Rules matched against a sample: a prefilter, then each candidate rule
//! checked whole.
//!
//! As in Suricata, each rule has a fast pattern: the content marked
//! `fast_pattern`, else its longest content that is not negated. One
//! multi-pattern database per buffer (see [`prefilter`]) holds the fast
//! patterns of every rule, matched ASCII-case-insensitive (identical
//! patterns share one entry), and a single scan of each buffer finds the
//! rules worth looking at. The cost
//! per sample grows with the sample and the hits, not with the number of
//! rules — and a short content shared by many rules (`/`, `POST`) does not
//! wake them all.
//!
//! A candidate is then checked as Suricata's content inspection does: its
//! protocol, addresses, ports and `flow`, then, buffer by buffer in rule
//! order, each content in turn (`offset`/`depth` in the buffer,
//! `distance`/`within` after the previous match, `startswith`/`endswith`,
//! negation), trying a content's later occurrences when a relative one
//! after it fails, within a bounded number of steps.

use std::{borrow::Cow, collections::HashMap};

use super::{
    Inspected, Transport, excerpt,
    http::{self, Header, HttpRequest, HttpResponse, decode_uri, normalize_host},
    rules::{Buffer, Content, Protocol, Rule, Scope},
    tls_server::ServerHandshake,
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
    /// The rule's index in [`Matcher::rules`]: its `threshold` and
    /// `flowbits` are for the caller to apply.
    pub rule: usize,
}

/// Why rules could not be compiled.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the prefilter for `{buffer}` contents: {source}")]
pub struct MatcherError {
    pub buffer: &'static str,
    #[source]
    pub source: prefilter::CompileError,
}

/// A buffer as contents see it: which one, and whether `dotprefix` put a
/// `.` before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct View {
    buffer: Buffer,
    dotprefix: bool,
}

impl View {
    fn of(content: &Content) -> View {
        View {
            buffer: content.buffer,
            dotprefix: content.dotprefix,
        }
    }

    /// Index into the prefilter's databases.
    fn index(self) -> usize {
        self.buffer.index() * 2 + usize::from(self.dotprefix)
    }

    const COUNT: usize = Buffer::ALL.len() * 2;
}

mod prefilter;

/// The compiled rules.
#[derive(Debug, Clone)]
pub struct Matcher {
    rules: Vec<Rule>,
    /// Rules by fast pattern id.
    fast_users: Vec<Vec<u32>>,
    /// Rules with no content to prefilter on (only negated contents,
    /// `pcre`, `isdataat` or sizes): checked on every sample of their
    /// protocol, as Suricata checks its rules without a fast pattern.
    unfiltered: Vec<u32>,
    /// Whether a rule looks at streams only (`tcp-stream`): asked of every
    /// TCP segment, so known once.
    stream_rules: bool,
    /// Fast patterns by [`View::index`]; clones share the databases and
    /// the scratch spaces.
    prefilter: std::sync::Arc<prefilter::Prefilter>,
    /// Indexed by [`View::index`]: whether some content looks there.
    used: Vec<bool>,
}

/// Most steps (a content tried at one position) spent on one rule and one
/// buffer: a rule of many relative contents over a buffer full of their
/// first bytes would otherwise try every combination. Suricata bounds its
/// recursion the same way.
const MAX_STEPS: u32 = 4096;

/// The content a rule is prefiltered on.
fn fast_pattern(rule: &Rule) -> Option<&Content> {
    rule.contents.iter().find(|c| c.fast_pattern).or_else(|| {
        // The longest content is the least likely to hit by chance: a rule
        // with `content:"POST"` and a long distinctive content costs
        // nothing on every other POST.
        rule.contents
            .iter()
            .filter(|c| !c.negated && c.is_bytes())
            .rev()
            .max_by_key(|c| c.bytes.len())
    })
}

impl Matcher {
    /// Compiles the payload rules of `rules` (those on addresses alone are
    /// [`super::ip_only`]'s). Fails only if Hyperscan cannot compile a
    /// buffer's fast patterns, which are literals.
    pub fn new(rules: &[Rule]) -> Result<Matcher, MatcherError> {
        let rules: Vec<Rule> = rules
            .iter()
            .filter(|r| !r.is_address_only())
            .cloned()
            .collect();
        let mut per_view: Vec<(Vec<Vec<u8>>, Vec<u32>)> =
            vec![(Vec::new(), Vec::new()); View::COUNT];
        let mut ids: HashMap<(View, Vec<u8>), u32> = HashMap::new();
        let mut fast_users: Vec<Vec<u32>> = Vec::new();
        let mut unfiltered = Vec::new();
        let mut used = vec![false; View::COUNT];
        for (r, rule) in rules.iter().enumerate() {
            for c in &rule.contents {
                used[View::of(c).index()] = true;
            }
            for size in &rule.sizes {
                used[View {
                    buffer: size.buffer,
                    dotprefix: size.dotprefix,
                }
                .index()] = true;
            }
            let Some(fast) = fast_pattern(rule) else {
                unfiltered.push(r as u32);
                continue;
            };
            let key = (View::of(fast), fast.bytes.to_ascii_lowercase());
            let id = *ids.entry(key).or_insert_with_key(|(view, lower)| {
                let id = fast_users.len() as u32;
                fast_users.push(Vec::new());
                let (bytes, global) = &mut per_view[view.index()];
                bytes.push(lower.clone());
                global.push(id);
                id
            });
            fast_users[id as usize].push(r as u32);
        }
        let prefilter =
            prefilter::Prefilter::new(per_view).map_err(|(slot, source)| MatcherError {
                buffer: Buffer::ALL[slot / 2].name(),
                source,
            })?;
        let stream_rules = rules.iter().any(|r| r.scope == Scope::Stream);
        Ok(Matcher {
            rules,
            fast_users,
            unfiltered,
            stream_rules,
            prefilter: std::sync::Arc::new(prefilter),
            used,
        })
    }

    /// The compiled rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether a rule looks at streams only (`tcp-stream`).
    pub fn has_stream_rules(&self) -> bool {
        self.stream_rules
    }

    /// Bytes of the prefilter's databases (not the rules), for metrics.
    pub fn prefilter_bytes(&self) -> usize {
        self.prefilter.bytes()
    }

    /// Every rule that matches `pkt`, most severe (lowest priority) first,
    /// then by sid.
    pub fn matches(&self, pkt: &Inspected<'_>) -> Vec<Match> {
        let instances = views(pkt, &self.used);
        // The prefilter: each buffer through its database.
        let mut hit: Vec<u32> = Vec::new();
        self.prefilter.scan(
            instances
                .iter()
                .map(|(view, bytes)| (view.index(), &**bytes)),
            &mut hit,
        );
        if hit.is_empty() && self.unfiltered.is_empty() {
            return Vec::new();
        }
        hit.sort_unstable();
        hit.dedup();
        let mut candidates: Vec<u32> = hit
            .iter()
            .flat_map(|&p| self.fast_users[p as usize].iter().copied())
            .chain(self.unfiltered.iter().copied())
            .collect();
        candidates.sort_unstable();
        candidates.dedup();

        let mut out: Vec<Match> = candidates
            .into_iter()
            .filter_map(|r| self.check(r as usize, pkt, &instances))
            .collect();
        out.sort_by_key(|m| (m.priority, m.sid));
        out
    }

    /// Whether rule `r` matches `pkt`, whose buffers are `instances`.
    fn check(
        &self,
        r: usize,
        pkt: &Inspected<'_>,
        instances: &[(View, Cow<'_, [u8]>)],
    ) -> Option<Match> {
        let rule = &self.rules[r];
        if !applies(rule, pkt) {
            return None;
        }
        if let Some((min, max)) = rule.dsize
            && !pkt.dsize.is_some_and(|n| (min..=max).contains(&n))
        {
            return None;
        }
        let message = Message::of(pkt);
        let mut first: Option<(usize, usize)> = None;
        let mut anywhere: Option<(usize, usize)> = None;
        let mut rest = &rule.contents[..];
        while let Some(head) = rest.first() {
            let view = View::of(head);
            let n = rest.iter().take_while(|c| View::of(c) == view).count();
            let (section, tail) = rest.split_at(n);
            rest = tail;
            // Any instance of the buffer (each DNS question) may match.
            let found = instances.iter().enumerate().find_map(|(k, (v, bytes))| {
                if *v != view || !sizes_fit(rule, view, bytes.len()) {
                    return None;
                }
                let mut walk = Walk {
                    steps: 0,
                    cut: cut_short(pkt, message, view.buffer),
                };
                section_match(section, bytes, 0, &mut walk).map(|at| (k, at))
            })?;
            // A section of negations and `isdataat` alone has no position
            // to show: the match is shown where a content matched, else at
            // the start of the first buffer the rule looked at.
            if found.1 != NO_POSITION {
                first.get_or_insert(found);
            } else {
                anywhere.get_or_insert((found.0, 0));
            }
        }
        // Sizes of buffers no content looks at.
        for size in &rule.sizes {
            let view = View {
                buffer: size.buffer,
                dotprefix: size.dotprefix,
            };
            if !rule.contents.iter().any(|c| View::of(c) == view)
                && !instances
                    .iter()
                    .any(|(v, b)| *v == view && sizes_fit(rule, view, b.len()))
            {
                return None;
            }
        }
        let (k, start) = first.or(anywhere)?;
        Some(Match {
            sid: rule.sid,
            rev: rule.rev,
            msg: rule.msg.clone(),
            classtype: rule.classtype.clone(),
            priority: rule.priority,
            buffer: instances[k].0.buffer.name(),
            offset: start,
            excerpt: excerpt::around(&instances[k].1, start),
            rule: r,
        })
    }
}

/// Whether `buffer` of `pkt` may be cut short, its end unseen: an HTTP
/// message's (see [`Message::cut`]), the certificates when the bytes ended
/// inside the last.
fn cut_short(pkt: &Inspected<'_>, message: Option<Message<'_>>, buffer: Buffer) -> bool {
    if buffer.is_http() {
        message.is_some_and(|m| m.cut(buffer))
    } else if buffer == Buffer::TlsCerts {
        pkt.tls_server.as_ref().is_some_and(|t| t.cut)
    } else {
        false
    }
}

/// Whether `len` is within every `bsize` the rule sets on `view`.
fn sizes_fit(rule: &Rule, view: View, len: usize) -> bool {
    rule.sizes.iter().all(|s| {
        s.buffer != view.buffer || s.dotprefix != view.dotprefix || (s.min..=s.max).contains(&len)
    })
}

/// One buffer's walk through a rule's section: the steps taken, and
/// whether the buffer may be cut short (an HTTP message whose headers or
/// body go on past the sample), where not finding a content does not prove
/// it absent.
struct Walk {
    steps: u32,
    cut: bool,
}

impl Walk {
    /// Counts a step; false past [`MAX_STEPS`].
    fn step(&mut self) -> bool {
        self.steps += 1;
        self.steps <= MAX_STEPS
    }
}

/// What [`section_match`] returns for a section that matched without a
/// content or `pcre` matching anywhere (negations and `isdataat` only).
const NO_POSITION: usize = usize::MAX;

/// Matches `contents` (one buffer's, in rule order) in `buf`, the previous
/// match having ended at `prev_end`; returns where the first positive
/// content matched ([`NO_POSITION`] when none did).
fn section_match(
    contents: &[Content],
    buf: &[u8],
    prev_end: usize,
    walk: &mut Walk,
) -> Option<usize> {
    let Some((c, rest)) = contents.split_first() else {
        return Some(NO_POSITION);
    };
    // Later occurrences are worth trying only for a relative successor: an
    // absolute one is placed the same whatever this one's position.
    let retry = rest.first().is_some_and(Content::is_relative);
    if let Some(at) = c.data_at {
        let base = if at.relative { prev_end } else { 0 };
        let present = base.saturating_add(at.offset) < buf.len();
        return match present != c.negated {
            true => section_match(rest, buf, prev_end, walk),
            false => None,
        };
    }
    if let Some(op) = &c.byte_op {
        // A read the bytes cut short cannot be judged: it fails, as a
        // content past the end would.
        return op
            .apply(buf, prev_end)
            .and_then(|next| section_match(rest, buf, next, walk));
    }
    if let Some(pcre) = &c.pcre {
        // The subject starts where the pattern may: `^` anchors there.
        let lo = if pcre.relative {
            prev_end.min(buf.len())
        } else {
            0
        };
        let subject = &buf[lo..];
        if c.negated {
            // As for a negated content: a cut buffer proves no absence.
            return match walk.cut || pcre.regex.is_match(subject) {
                true => None,
                false => section_match(rest, buf, prev_end, walk),
            };
        }
        let mut from = 0;
        while let Some(m) = pcre.regex.find_at(subject, from) {
            if !walk.step() {
                return None;
            }
            if section_match(rest, buf, lo + m.end, walk).is_some() {
                return Some(lo + m.start);
            }
            if !retry || m.start >= subject.len() {
                return None;
            }
            from = m.start + 1;
        }
        return None;
    }
    let window = window(c, buf.len(), prev_end);
    if c.negated {
        // No room for the content is as good as not finding it, in a
        // whole buffer; in one cut short, the content may lie past its end.
        let found = window.is_some_and(|(lo, hi)| find(buf, c, lo, hi).is_some());
        let unseen = walk.cut && window.is_none_or(|(_, hi)| hi >= buf.len());
        if found || unseen {
            return None;
        }
        return section_match(rest, buf, prev_end, walk);
    }
    let (lo, hi) = window?;
    let mut from = lo;
    while let Some(at) = find(buf, c, from, hi) {
        if !walk.step() {
            return None;
        }
        if section_match(rest, buf, at + c.bytes.len(), walk).is_some() {
            return Some(at);
        }
        if !retry {
            return None;
        }
        from = at + 1;
    }
    None
}

/// The span `[lo, hi)` content `c` must lie in, or `None` when it cannot.
fn window(c: &Content, len: usize, prev_end: usize) -> Option<(usize, usize)> {
    let (mut lo, mut hi) = if c.is_relative() {
        let start = prev_end as i64 + i64::from(c.distance.unwrap_or(0));
        let end = c.within.map_or(len as i64, |w| start + w as i64);
        (start.max(0) as usize, end.max(0) as usize)
    } else if c.startswith {
        (0, c.bytes.len())
    } else {
        let end = c.depth.map_or(len, |d| c.offset.saturating_add(d));
        (c.offset, end)
    };
    if c.endswith {
        lo = lo.max(len.saturating_sub(c.bytes.len()));
    }
    hi = hi.min(len);
    (lo < hi && hi - lo >= c.bytes.len()).then_some((lo, hi))
}

/// Where `c` first occurs in `buf[from..hi]`, as an index into `buf`.
fn find(buf: &[u8], c: &Content, from: usize, hi: usize) -> Option<usize> {
    let needle = &c.bytes[..];
    let hay = buf.get(from..hi)?;
    if needle.len() > hay.len() {
        return None;
    }
    let at = if c.nocase {
        hay.windows(needle.len())
            .position(|w| w.eq_ignore_ascii_case(needle))
    } else {
        memchr::memmem::find(hay, needle)
    };
    at.map(|i| from + i)
}

/// Whether `rule`'s header (protocol, addresses, ports) fits `pkt`.
fn applies(rule: &Rule, pkt: &Inspected<'_>) -> bool {
    // An HTTP request and a ClientHello go to the server after the
    // handshake, an HTTP response to the client; a DNS message's QR bit
    // tells its way (see `check_flow`).
    let protocol = match rule.protocol {
        // A packet's payload has its size; a stream's bytes put in order
        // have none (see `Inspected::dsize`).
        Protocol::Tcp => {
            pkt.transport == Transport::Tcp
                && flow_fits(rule, pkt)
                && match rule.scope {
                    Scope::Both => true,
                    Scope::Packets => pkt.dsize.is_some(),
                    Scope::Stream => pkt.dsize.is_none(),
                }
        }
        Protocol::Udp => pkt.transport == Transport::Udp && flow_fits(rule, pkt),
        Protocol::Http => match rule.flow.to_server {
            Some(true) => pkt.http.is_some(),
            Some(false) => pkt.http_response.is_some(),
            None => pkt.http.is_some() || pkt.http_response.is_some(),
        },
        // The ClientHello goes to the server, the certificates come back.
        Protocol::Tls => match rule.flow.to_server {
            Some(true) => pkt.tls.is_some(),
            Some(false) => pkt.tls_server.is_some(),
            None => pkt.tls.is_some() || pkt.tls_server.is_some(),
        },
        Protocol::Dns => pkt.dns.as_ref().is_some_and(|d| {
            rule.flow
                .to_server
                .is_none_or(|to_server| to_server != d.is_response)
        }),
        // Rules on addresses alone are matched on flows, not here.
        Protocol::Ip | Protocol::Icmp => false,
    };
    protocol && rule.addresses_fit(pkt.src, pkt.dst)
}

/// Whether a raw TCP or UDP payload is where `rule`'s `flow` wants it, as
/// the flow table saw it: a payload without a flow entry has no known
/// direction or state, and fits only a rule that asks for neither.
fn flow_fits(rule: &Rule, pkt: &Inspected<'_>) -> bool {
    let f = &rule.flow;
    f.to_server.is_none_or(|want| pkt.to_server() == Some(want))
        && (!f.established || pkt.established())
        && (!f.not_established || pkt.flow != 0 && !pkt.established())
}

/// The HTTP buffers beyond method, URI, headers and host: the last of
/// [`Buffer::ALL`], from `http.request_line` on.
const MORE_HTTP_BUFFERS: &[Buffer] = Buffer::ALL.split_at(Buffer::HttpRequestLine.index()).1;

/// The HTTP message a sample holds, for the buffers requests and
/// responses both have.
#[derive(Clone, Copy)]
enum Message<'p> {
    Request(&'p HttpRequest<'p>),
    Response(&'p HttpResponse<'p>),
}

impl<'p> Message<'p> {
    fn of(pkt: &'p Inspected<'_>) -> Option<Message<'p>> {
        match (&pkt.http, &pkt.http_response) {
            (Some(request), _) => Some(Message::Request(request)),
            (None, Some(response)) => Some(Message::Response(response)),
            (None, None) => None,
        }
    }

    fn headers(self) -> &'p [Header<'p>] {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    fn header(self, name: &str) -> Option<&'p [u8]> {
        http::find_header(self.headers(), name)
    }

    fn truncated(self) -> bool {
        match self {
            Message::Request(r) => r.truncated,
            Message::Response(r) => r.truncated,
        }
    }

    fn raw_body(self) -> &'p [u8] {
        match self {
            Message::Request(r) => r.body,
            Message::Response(r) => r.body,
        }
    }

    /// The body's first bytes, chunk framing removed as Suricata does.
    fn body(self) -> Cow<'p, [u8]> {
        let raw = self.raw_body();
        match http::is_chunked(self.headers()) {
            true => Cow::Owned(http::dechunk(raw)),
            false => Cow::Borrowed(raw),
        }
    }

    /// Whether `buffer` may hold less than the message sent, so that not
    /// finding a content there proves nothing: the headers were cut, or
    /// the body goes on past the sample (its length unknown or longer).
    fn cut(self, buffer: Buffer) -> bool {
        let whole_body = || {
            !http::is_chunked(self.headers())
                && self
                    .header("content-length")
                    .and_then(|v| std::str::from_utf8(v).ok()?.parse::<usize>().ok())
                    .is_some_and(|len| len <= self.raw_body().len())
        };
        self.truncated() || (buffer.is_body() && !whole_body())
    }
}

/// One of [`MORE_HTTP_BUFFERS`] of `message`, as Suricata builds it; `None`
/// when that kind of message has no such buffer.
fn more_http(message: Message<'_>, buffer: Buffer) -> Option<Cow<'_, [u8]>> {
    let header = |name: &str| message.header(name).map(Cow::Borrowed);
    let (request, response) = match message {
        Message::Request(r) => (Some(r), None),
        Message::Response(r) => (None, Some(r)),
    };
    let request_header = |name: &str| request.and_then(|_| header(name));
    let response_header = |name: &str| response.and_then(|_| header(name));
    match buffer {
        Buffer::HttpRequestLine => request.map(|r| Cow::Borrowed(r.line)),
        Buffer::HttpProtocol => match message {
            Message::Request(r) => r.version,
            Message::Response(r) => Some(r.version),
        }
        .map(|v| Cow::Owned(format!("HTTP/1.{v}").into_bytes())),
        Buffer::HttpStart => Some(Cow::Borrowed(match message {
            Message::Request(r) => r.start,
            Message::Response(r) => r.start,
        })),
        Buffer::HttpHeaderNames => Some(Cow::Owned(header_names(message.headers()))),
        // A server sets the cookies a client sends back.
        Buffer::HttpCookie => header(if request.is_some() {
            "cookie"
        } else {
            "set-cookie"
        }),
        Buffer::HttpContentType => header("content-type"),
        Buffer::HttpContentLen => header("content-length"),
        Buffer::HttpConnection => header("connection"),
        Buffer::HttpReferer => request_header("referer"),
        Buffer::HttpAccept => request_header("accept"),
        Buffer::HttpAcceptLang => request_header("accept-language"),
        Buffer::HttpAcceptEnc => request_header("accept-encoding"),
        Buffer::HttpRequestBody => request.map(|_| message.body()),
        Buffer::HttpStatCode => response.and_then(|r| r.status).map(Cow::Borrowed),
        Buffer::HttpStatMsg => response.map(|r| Cow::Borrowed(r.reason)),
        Buffer::HttpResponseLine => response.map(|r| Cow::Borrowed(r.line)),
        Buffer::HttpServer => response_header("server"),
        Buffer::HttpLocation => response_header("location"),
        Buffer::HttpResponseBody => response.map(|_| message.body()),
        Buffer::FileData => Some(message.body()),
        _ => None,
    }
}

/// `http.header_names`: each name after `\r\n`, then `\r\n\r\n`.
fn header_names(headers: &[Header<'_>]) -> Vec<u8> {
    let mut names = Vec::new();
    for h in headers {
        names.extend_from_slice(b"\r\n");
        names.extend_from_slice(h.name.as_bytes());
    }
    names.extend_from_slice(b"\r\n\r\n");
    names
}

/// `http.header`: every header as `Name: value\r\n`.
fn all_headers(headers: &[Header<'_>]) -> Vec<u8> {
    let len = headers
        .iter()
        .map(|h| h.name.len() + h.value.len() + 4)
        .sum();
    let mut all = Vec::with_capacity(len);
    for h in headers {
        all.extend_from_slice(h.name.as_bytes());
        all.extend_from_slice(b": ");
        all.extend_from_slice(h.value);
        all.extend_from_slice(b"\r\n");
    }
    all
}

/// The views of `pkt` that some content looks at (`used`, by
/// [`View::index`]): each buffer as it is, and with a `.` before it.
fn views<'p>(pkt: &'p Inspected<'_>, used: &[bool]) -> Vec<(View, Cow<'p, [u8]>)> {
    let view = |buffer, dotprefix| View { buffer, dotprefix };
    let mut out = Vec::new();
    for (buffer, bytes) in buffers(pkt, |b| {
        used[view(b, false).index()] || used[view(b, true).index()]
    }) {
        if used[view(buffer, true).index()] {
            let mut dotted = Vec::with_capacity(bytes.len() + 1);
            dotted.push(b'.');
            dotted.extend_from_slice(&bytes);
            out.push((view(buffer, true), Cow::Owned(dotted)));
        }
        if used[view(buffer, false).index()] {
            out.push((view(buffer, false), bytes));
        }
    }
    out
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
    if let Some(message) = Message::of(pkt) {
        if wanted(Buffer::HttpHeader) {
            add(
                Buffer::HttpHeader,
                Some(Cow::Owned(all_headers(message.headers()))),
            );
        }
        for &buffer in MORE_HTTP_BUFFERS {
            if wanted(buffer) {
                add(buffer, more_http(message, buffer));
            }
        }
    }
    if let Some(sni) = pkt.tls.as_ref().and_then(|t| t.sni.as_deref())
        && wanted(Buffer::TlsSni)
    {
        add(Buffer::TlsSni, Some(Cow::Borrowed(sni.as_bytes())));
    }
    if let Some(server) = &pkt.tls_server {
        tls_server_buffers(server, &wanted, &mut add);
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

/// The certificates' buffers: each certificate, and the leaf's subject,
/// issuer and serial.
fn tls_server_buffers<'p>(
    server: &'p ServerHandshake,
    wanted: impl Fn(Buffer) -> bool,
    add: &mut impl FnMut(Buffer, Option<Cow<'p, [u8]>>),
) {
    if wanted(Buffer::TlsCerts) {
        for cert in &server.certs {
            add(Buffer::TlsCerts, Some(Cow::Borrowed(cert)));
        }
    }
    for (buffer, text) in [
        (Buffer::TlsCertSubject, &server.subject),
        (Buffer::TlsCertIssuer, &server.issuer),
        (Buffer::TlsCertSerial, &server.serial),
    ] {
        if wanted(buffer) {
            add(buffer, text.as_deref().map(|t| Cow::Borrowed(t.as_bytes())));
        }
    }
}

#[cfg(test)]
mod tests;
