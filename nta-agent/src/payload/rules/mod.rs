//! The content-matching subset of the Suricata/Snort rule language.
//!
//! ```text
//! alert http any any -> any any (msg:"cmd.exe in User-Agent"; http.user_agent; \
//!     content:"cmd.exe"; nocase; sid:1000001; rev:1; classtype:web-application-attack;)
//! ```
//!
//! The keywords nta takes, beside Suricata's, are tabled in the README
//! ("Rules"). A rule using anything else is rejected with its line and the
//! option named, and the other rules still load: a rule that silently
//! matched less than it says would be worse than no rule.
//!
//! A rule with no payload keyword — `ip`, `icmp`, `tcp` or `udp`, an
//! address list on one side, `threshold` and `flowbits:set` at most — is
//! matched on addresses alone, once per new flow (see [`super::ip_only`]).
//!
//! Semantics worth knowing:
//! - contents match in rule order, `distance`/`within` after the previous
//!   match in the same buffer, `offset`/`depth` from the buffer's start (as
//!   in Suricata, `depth` counts from `offset`);
//! - `http.uri` is percent-decoded (see [`super::http::decode_uri`]);
//!   `http.uri.raw` is the target as sent; `http.header` is every header as
//!   `Name: value\r\n`; `http.host` is lower-cased without the port;
//!   `dns.query` is each question's name, dotted, without trailing dot;
//! - `http` rules apply to TCP payloads that parse as an HTTP request or
//!   response (the one their `flow` direction names, else either), `dns`
//!   rules to DNS messages on port 53, whatever the rule's port fields say
//!   beyond that; a rule's HTTP buffers are all of one message, as a
//!   sample holds one; `flow` on raw `tcp`/`udp` rules reads the flow
//!   table's view of the payload (see [`super::Inspected::to_server`]).

mod byte_ops;
mod error;
mod lex;
pub mod net;
mod pcre;
#[cfg(test)]
mod tests;
mod vars;

use std::{
    collections::{HashMap, HashSet, hash_map::Entry},
    fmt, fs,
    path::{Path, PathBuf},
};

pub use byte_ops::ByteOp;
pub use error::{LoadError, Problem, RuleError};
pub use lex::MAX_RULE_LEN;
pub use net::{Addresses, PortRange, Ports, Spec};
pub use pcre::Pcre;
pub use vars::Vars;

use super::threshold::{self, Threshold};

/// The rules shipped with the agent.
const DEFAULT_RULES: &str = include_str!("../../../rules/default.rules");

/// Name the embedded rules are reported under.
pub const DEFAULT_ORIGIN: &str = "default.rules";

/// Most contents in one rule: the matcher tracks them in a 64-bit mask, and
/// no real rule comes close.
pub const MAX_CONTENTS_PER_RULE: usize = 64;

/// Longest content, in bytes. Longer than any sampled segment could hold a
/// match for, and it bounds the automaton's memory per rule.
pub const MAX_CONTENT_LEN: usize = 1024;

/// Transport or application protocol a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    /// TCP payloads that parse as an HTTP request or response.
    Http,
    /// DNS messages (UDP or TCP, port 53).
    Dns,
    /// TCP payloads that start with a TLS ClientHello, or with the
    /// server's hello and certificates.
    Tls,
    /// Any IP packet: for rules matched on addresses alone.
    Ip,
    /// ICMP and ICMPv6: for rules matched on addresses alone.
    Icmp,
}

impl Protocol {
    /// The rule keyword.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Http => "http",
            Protocol::Dns => "dns",
            Protocol::Tls => "tls",
            Protocol::Ip => "ip",
            Protocol::Icmp => "icmp",
        }
    }

    /// Whether only a rule on addresses alone may name it: nothing here
    /// reads the payloads of other protocols than TCP and UDP.
    pub const fn is_header_only(self) -> bool {
        matches!(self, Protocol::Ip | Protocol::Icmp)
    }
}

/// `->` or `<>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `->`: source fields match the packet's source.
    ToDst,
    /// `<>`: either way round.
    Both,
}

/// Which part of a sample a content is matched against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Buffer {
    /// The raw L4 payload (`pkt_data`, the default).
    #[default]
    PktData,
    HttpMethod,
    /// Percent-decoded request-target.
    HttpUri,
    /// Request-target as sent.
    HttpUriRaw,
    /// All headers as `Name: value\r\n`.
    HttpHeader,
    HttpUserAgent,
    /// Host header, lower-cased, without port.
    HttpHost,
    /// Each question's name.
    DnsQuery,
    /// The ClientHello's server name (SNI).
    TlsSni,
    /// Each certificate the server sent, as DER.
    TlsCerts,
    /// The server certificate's subject, e.g. `C=US, CN=www.example.com`.
    TlsCertSubject,
    TlsCertIssuer,
    /// The server certificate's serial, e.g. `0A:1B:FE`.
    TlsCertSerial,
    /// The request line, without its line end. It and the buffers after
    /// it stay last: the matcher takes them as one range of `ALL`.
    HttpRequestLine,
    /// The version as sent, e.g. `HTTP/1.1`.
    HttpProtocol,
    /// The request line and headers, up to the blank line.
    HttpStart,
    /// The header names, each after `\\r\\n`, ending `\\r\\n\\r\\n`.
    HttpHeaderNames,
    HttpCookie,
    HttpContentType,
    HttpContentLen,
    HttpReferer,
    HttpAccept,
    HttpAcceptLang,
    HttpAcceptEnc,
    HttpConnection,
    /// The body's first bytes, as far as sampled.
    HttpRequestBody,
    /// A response's three-digit status code.
    HttpStatCode,
    /// A response's reason phrase, e.g. `Not Found`.
    HttpStatMsg,
    /// A response's status line, without its line end.
    HttpResponseLine,
    HttpServer,
    HttpLocation,
    /// A response body's first bytes, as far as sampled (chunk framing
    /// removed).
    HttpResponseBody,
    /// The body of the message (`file_data`): a response's on its way to
    /// the client, a request's on its way to the server.
    FileData,
}

/// Which HTTP message a buffer is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMessage {
    Request,
    Response,
    /// Either: the message the sample holds (its headers, its body).
    Either,
}

impl Buffer {
    /// Every buffer, in [`Buffer::index`] order.
    pub const ALL: [Buffer; 33] = [
        Buffer::PktData,
        Buffer::HttpMethod,
        Buffer::HttpUri,
        Buffer::HttpUriRaw,
        Buffer::HttpHeader,
        Buffer::HttpUserAgent,
        Buffer::HttpHost,
        Buffer::DnsQuery,
        Buffer::TlsSni,
        Buffer::TlsCerts,
        Buffer::TlsCertSubject,
        Buffer::TlsCertIssuer,
        Buffer::TlsCertSerial,
        Buffer::HttpRequestLine,
        Buffer::HttpProtocol,
        Buffer::HttpStart,
        Buffer::HttpHeaderNames,
        Buffer::HttpCookie,
        Buffer::HttpContentType,
        Buffer::HttpContentLen,
        Buffer::HttpReferer,
        Buffer::HttpAccept,
        Buffer::HttpAcceptLang,
        Buffer::HttpAcceptEnc,
        Buffer::HttpConnection,
        Buffer::HttpRequestBody,
        Buffer::HttpStatCode,
        Buffer::HttpStatMsg,
        Buffer::HttpResponseLine,
        Buffer::HttpServer,
        Buffer::HttpLocation,
        Buffer::HttpResponseBody,
        Buffer::FileData,
    ];

    /// The rule keyword, also used in alerts.
    pub const fn name(self) -> &'static str {
        match self {
            Buffer::PktData => "pkt_data",
            Buffer::HttpMethod => "http.method",
            Buffer::HttpUri => "http.uri",
            Buffer::HttpUriRaw => "http.uri.raw",
            Buffer::HttpHeader => "http.header",
            Buffer::HttpUserAgent => "http.user_agent",
            Buffer::HttpHost => "http.host",
            Buffer::DnsQuery => "dns.query",
            Buffer::TlsSni => "tls.sni",
            Buffer::TlsCerts => "tls.certs",
            Buffer::TlsCertSubject => "tls.cert_subject",
            Buffer::TlsCertIssuer => "tls.cert_issuer",
            Buffer::TlsCertSerial => "tls.cert_serial",
            Buffer::HttpRequestLine => "http.request_line",
            Buffer::HttpProtocol => "http.protocol",
            Buffer::HttpStart => "http.start",
            Buffer::HttpHeaderNames => "http.header_names",
            Buffer::HttpCookie => "http.cookie",
            Buffer::HttpContentType => "http.content_type",
            Buffer::HttpContentLen => "http.content_len",
            Buffer::HttpReferer => "http.referer",
            Buffer::HttpAccept => "http.accept",
            Buffer::HttpAcceptLang => "http.accept_lang",
            Buffer::HttpAcceptEnc => "http.accept_enc",
            Buffer::HttpConnection => "http.connection",
            Buffer::HttpRequestBody => "http.request_body",
            Buffer::HttpStatCode => "http.stat_code",
            Buffer::HttpStatMsg => "http.stat_msg",
            Buffer::HttpResponseLine => "http.response_line",
            Buffer::HttpServer => "http.server",
            Buffer::HttpLocation => "http.location",
            Buffer::HttpResponseBody => "http.response_body",
            Buffer::FileData => "file.data",
        }
    }

    /// Position in [`Buffer::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The buffer a sticky keyword selects, by its name or the older
    /// one Suricata still reads (`dns_query`, `tls_sni`, ...).
    fn from_keyword(keyword: &str) -> Option<Buffer> {
        let older = match keyword {
            "dns_query" => Some(Buffer::DnsQuery),
            "tls_sni" => Some(Buffer::TlsSni),
            "tls_cert_subject" => Some(Buffer::TlsCertSubject),
            "tls_cert_issuer" => Some(Buffer::TlsCertIssuer),
            "tls_cert_serial" => Some(Buffer::TlsCertSerial),
            "http_request_line" => Some(Buffer::HttpRequestLine),
            "http_header_names" => Some(Buffer::HttpHeaderNames),
            "http_start" => Some(Buffer::HttpStart),
            "http_protocol" => Some(Buffer::HttpProtocol),
            "http_response_line" => Some(Buffer::HttpResponseLine),
            "http_content_type" => Some(Buffer::HttpContentType),
            "http_content_len" => Some(Buffer::HttpContentLen),
            "file_data" => Some(Buffer::FileData),
            _ => None,
        };
        older.or_else(|| Buffer::ALL.into_iter().find(|b| b.name() == keyword))
    }

    /// Whether it is one of an HTTP message's.
    pub fn is_http(self) -> bool {
        self.http_message().is_some()
    }

    /// Whether it is one of TLS's: the client's server name or the
    /// server's certificates.
    pub fn is_tls(self) -> bool {
        matches!(
            self,
            Buffer::TlsSni
                | Buffer::TlsCerts
                | Buffer::TlsCertSubject
                | Buffer::TlsCertIssuer
                | Buffer::TlsCertSerial
        )
    }

    /// Whether only the server sends it (the certificates).
    pub fn is_tls_server(self) -> bool {
        self.is_tls() && self != Buffer::TlsSni
    }

    /// Whether it is a message's body, of which only the first bytes are
    /// sampled.
    pub fn is_body(self) -> bool {
        matches!(
            self,
            Buffer::HttpRequestBody | Buffer::HttpResponseBody | Buffer::FileData
        )
    }

    /// The HTTP message it is taken from; `None` for the others'.
    pub fn http_message(self) -> Option<HttpMessage> {
        use Buffer::*;
        Some(match self {
            PktData | DnsQuery | TlsSni | TlsCerts | TlsCertSubject | TlsCertIssuer
            | TlsCertSerial => return None,
            HttpMethod | HttpUri | HttpUriRaw | HttpUserAgent | HttpHost | HttpRequestLine
            | HttpReferer | HttpAccept | HttpAcceptLang | HttpAcceptEnc | HttpRequestBody => {
                HttpMessage::Request
            }
            HttpStatCode | HttpStatMsg | HttpResponseLine | HttpServer | HttpLocation
            | HttpResponseBody => HttpMessage::Response,
            HttpHeader | HttpProtocol | HttpStart | HttpHeaderNames | HttpCookie
            | HttpContentType | HttpContentLen | HttpConnection | FileData => HttpMessage::Either,
        })
    }

    /// Whether a rule for `protocol` can see this buffer.
    fn fits(self, protocol: Protocol) -> bool {
        match self {
            Buffer::PktData => true,
            Buffer::DnsQuery => matches!(protocol, Protocol::Dns | Protocol::Tcp | Protocol::Udp),
            b if b.is_tls() => protocol == Protocol::Tls,
            _ => matches!(protocol, Protocol::Http | Protocol::Tcp),
        }
    }
}

impl fmt::Display for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One `content` and its modifiers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Content {
    pub buffer: Buffer,
    /// The buffer with a `.` put before it (the `dotprefix` transform), so
    /// that `.example.com` matches the name and its subdomains only.
    pub dotprefix: bool,
    pub bytes: Vec<u8>,
    /// ASCII case-insensitive.
    pub nocase: bool,
    /// `content:!"..."`: the rule matches only if this does not.
    pub negated: bool,
    /// Bytes skipped at the start of the buffer.
    pub offset: usize,
    /// The match must end within this many bytes after `offset`.
    pub depth: Option<usize>,
    /// Relative to the end of the previous content's match in the same
    /// buffer: start this many bytes after it (may be negative).
    pub distance: Option<i32>,
    /// Relative too: end at most this many bytes after the previous match
    /// (counted from where `distance` puts the start).
    pub within: Option<usize>,
    /// Only at the very start of the buffer.
    pub startswith: bool,
    /// Only at the very end of the buffer.
    pub endswith: bool,
    /// `fast_pattern`: the content the prefilter looks for.
    pub fast_pattern: bool,
    /// A `pcre` in the contents' sequence, in place of bytes (then empty).
    pub pcre: Option<Pcre>,
    /// An `isdataat` in the sequence, in place of bytes: data at this
    /// offset (after the previous match, when `relative`); `negated`: none.
    pub data_at: Option<DataAt>,
    /// A `byte_test` or `byte_jump` in the sequence, in place of bytes.
    pub byte_op: Option<ByteOp>,
}

/// `isdataat:N[,relative]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataAt {
    pub offset: usize,
    pub relative: bool,
}

impl Content {
    /// Whether it is placed after the previous content's match.
    pub fn is_relative(&self) -> bool {
        self.distance.is_some()
            || self.within.is_some()
            || self.pcre.as_ref().is_some_and(|p| p.relative)
            || self.data_at.is_some_and(|d| d.relative)
            || self.byte_op.is_some_and(|b| b.is_relative())
    }

    /// A content proper: bytes to look for, not a `pcre`, `isdataat`,
    /// `byte_test` or `byte_jump`.
    pub fn is_bytes(&self) -> bool {
        self.pcre.is_none() && self.data_at.is_none() && self.byte_op.is_none()
    }
}

/// `bsize`: the bounds, inclusive, of a buffer's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferSize {
    pub buffer: Buffer,
    pub dotprefix: bool,
    pub min: usize,
    pub max: usize,
}

/// One `flowbits` operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flowbit {
    Set(String),
    Unset(String),
    Toggle(String),
    /// A condition: the rule matches only where the bit is set.
    IsSet(String),
    /// A condition: the rule matches only where the bit is not set.
    IsNotSet(String),
}

impl Flowbit {
    pub fn name(&self) -> &str {
        match self {
            Flowbit::Set(n)
            | Flowbit::Unset(n)
            | Flowbit::Toggle(n)
            | Flowbit::IsSet(n)
            | Flowbit::IsNotSet(n) => n,
        }
    }

    /// Whether it changes the flow's bits (rather than test them).
    pub fn changes(&self) -> bool {
        matches!(
            self,
            Flowbit::Set(_) | Flowbit::Unset(_) | Flowbit::Toggle(_)
        )
    }
}

/// What `flow` asks of the message a rule matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowCheck {
    /// `to_server` (true) or `to_client` (false); `None` for either.
    pub to_server: Option<bool>,
    /// `established`: implied by the application messages the engine
    /// parses (an HTTP request, a TLS ClientHello come after the handshake);
    /// for raw TCP and UDP, from the flow table (see
    /// [`Inspected::established`](super::Inspected::established)).
    pub established: bool,
    /// `not_established`, on raw TCP and UDP only.
    pub not_established: bool,
}

/// What a `tcp` rule looks at: Suricata's `tcp-pkt` rules single
/// segments, its `tcp-stream` rules the stream's bytes put in order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scope {
    #[default]
    Both,
    Packets,
    Stream,
}

/// A parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `tcp-pkt` or `tcp-stream`; [`Scope::Both`] for every other rule.
    pub scope: Scope,
    pub sid: u32,
    /// 1 when not given.
    pub rev: u32,
    /// `rule <sid>` when not given.
    pub msg: String,
    pub classtype: Option<String>,
    /// 1 (most severe) to 255: as given, else the classtype's, else 3.
    pub priority: u8,
    pub protocol: Protocol,
    pub src: Addresses,
    pub src_ports: Ports,
    pub direction: Direction,
    pub dst: Addresses,
    pub dst_ports: Ports,
    /// In rule order; at least one not negated.
    pub contents: Vec<Content>,
    /// `bsize` conditions.
    pub sizes: Vec<BufferSize>,
    /// `dsize`: the bounds, inclusive, of the packet's payload length.
    pub dsize: Option<(usize, usize)>,
    pub flow: FlowCheck,
    /// `threshold` or `detection_filter`: which matches alert.
    pub threshold: Option<Threshold>,
    /// `flowbits` operations and conditions, in rule order.
    pub flowbits: Vec<Flowbit>,
    /// `flowbits:noalert`: a match sets bits but raises no alert.
    pub noalert: bool,
    /// File the rule came from.
    pub origin: String,
    /// Line it starts on.
    pub line: usize,
}

impl Rule {
    /// Whether the rule is matched on its header alone (Suricata's IP-only
    /// rules): it has no content, as any rule with a payload keyword has
    /// one, else it is rejected.
    pub fn is_address_only(&self) -> bool {
        self.contents.is_empty()
    }

    /// Whether a message from `src` to `dst` fits the rule's addresses,
    /// ports and direction.
    pub fn addresses_fit(&self, src: std::net::SocketAddr, dst: std::net::SocketAddr) -> bool {
        let one_way = |src: std::net::SocketAddr, dst: std::net::SocketAddr| {
            self.src.matches(src.ip())
                && self.src_ports.matches(src.port())
                && self.dst.matches(dst.ip())
                && self.dst_ports.matches(dst.port())
        };
        match self.direction {
            Direction::ToDst => one_way(src, dst),
            Direction::Both => one_way(src, dst) || one_way(dst, src),
        }
    }
}

/// How many rules loaded, and how many were rejected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LoadCounts {
    pub loaded: usize,
    pub rejected: usize,
}

/// Rules that loaded, and why the others did not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub errors: Vec<RuleError>,
}

impl RuleSet {
    /// Adds `other`'s rules, rejecting those whose sid is already used.
    pub fn merge(&mut self, other: RuleSet) {
        let mut first: HashMap<u32, (String, usize)> = self
            .rules
            .iter()
            .map(|r| (r.sid, (r.origin.clone(), r.line)))
            .collect();
        self.errors.extend(other.errors);
        for rule in other.rules {
            match first.entry(rule.sid) {
                Entry::Occupied(e) => {
                    let (origin, line) = e.get();
                    self.errors.push(RuleError {
                        origin: rule.origin,
                        line: rule.line,
                        problem: Problem::DuplicateSid {
                            sid: rule.sid,
                            first: format!("{origin}:{line}"),
                        },
                    });
                }
                Entry::Vacant(e) => {
                    e.insert((rule.origin.clone(), rule.line));
                    self.rules.push(rule);
                }
            }
        }
    }
}

/// Parses a rules file's text with Suricata's default variables; `origin`
/// names it in errors.
pub fn parse_rules(text: &str, origin: &str) -> RuleSet {
    parse_rules_with(text, origin, &Vars::default())
}

/// Parses a rules file's text, its `$VARIABLES` taken from `vars`.
pub fn parse_rules_with(text: &str, origin: &str, vars: &Vars) -> RuleSet {
    let mut set = RuleSet::default();
    let mut first_line: HashMap<u32, usize> = HashMap::new();
    for lex::LogicalLine { line, text } in lex::logical_lines(text) {
        let problem = match text.and_then(|text| parse_rule(&text, origin, line, vars)) {
            Ok(rule) => match first_line.entry(rule.sid) {
                Entry::Vacant(e) => {
                    e.insert(line);
                    set.rules.push(rule);
                    continue;
                }
                Entry::Occupied(e) => Problem::DuplicateSid {
                    sid: rule.sid,
                    first: format!("{origin}:{}", e.get()),
                },
            },
            Err(problem) => problem,
        };
        set.errors.push(RuleError {
            origin: origin.to_owned(),
            line,
            problem,
        });
    }
    set
}

/// Rejects the rules that require a flowbit (`isset`) no loaded rule
/// sets: they could never match, and saying so beats loading a rule that
/// silently never fires. Repeated until none is left, as a rejected rule
/// may have been another's only setter. First, the rules on addresses
/// alone that set a bit some rule tests: they are matched on flows, not
/// payloads, and would not set it where the test looks.
pub fn reject_unset_flowbits(set: &mut RuleSet) {
    reject_address_only_setters(set);
    loop {
        let set_by_some: HashSet<String> = set
            .rules
            .iter()
            .flat_map(|r| r.flowbits.iter())
            .filter(|f| matches!(f, Flowbit::Set(_) | Flowbit::Toggle(_)))
            .map(|f| f.name().to_owned())
            .collect();
        let orphan = |r: &Rule| {
            r.flowbits.iter().find_map(|f| match f {
                Flowbit::IsSet(n) if !set_by_some.contains(n) => Some(n.clone()),
                _ => None,
            })
        };
        let (keep, drop): (Vec<Rule>, Vec<Rule>) = std::mem::take(&mut set.rules)
            .into_iter()
            .partition(|r| orphan(r).is_none());
        let dropped: Vec<RuleError> = drop
            .iter()
            .map(|r| RuleError {
                origin: r.origin.clone(),
                line: r.line,
                problem: Problem::UnsetFlowbit {
                    name: orphan(r).unwrap_or_default(),
                },
            })
            .collect();
        set.rules = keep;
        if dropped.is_empty() {
            return;
        }
        set.errors.extend(dropped);
    }
}

/// Rejects the rules on addresses alone that set a bit another rule
/// tests (`isset`, `isnotset`), naming that rule.
fn reject_address_only_setters(set: &mut RuleSet) {
    let tested: HashMap<&str, u32> = set
        .rules
        .iter()
        .flat_map(|r| r.flowbits.iter().map(move |f| (f, r.sid)))
        .filter(|(f, _)| matches!(f, Flowbit::IsSet(_) | Flowbit::IsNotSet(_)))
        .map(|(f, sid)| (f.name(), sid))
        .collect();
    let tester = |r: &Rule| {
        r.is_address_only()
            .then(|| {
                r.flowbits
                    .iter()
                    .find_map(|f| Some((f.name().to_owned(), *tested.get(f.name())?)))
            })
            .flatten()
    };
    let dropped: Vec<(usize, RuleError)> = set
        .rules
        .iter()
        .enumerate()
        .filter_map(|(i, rule)| {
            let (name, sid) = tester(rule)?;
            let problem = Problem::AddressOnly {
                what: "flowbits:set of a tested bit".into(),
                reason: format!("`{name}` would not be set where sid {sid} tests it, on payloads"),
            };
            Some((
                i,
                RuleError {
                    origin: rule.origin.clone(),
                    line: rule.line,
                    problem,
                },
            ))
        })
        .collect();
    if dropped.is_empty() {
        return;
    }
    let gone: HashSet<usize> = dropped.iter().map(|(i, _)| *i).collect();
    set.rules = std::mem::take(&mut set.rules)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !gone.contains(i))
        .map(|(_, r)| r)
        .collect();
    set.errors.extend(dropped.into_iter().map(|(_, e)| e));
}

/// Reads and parses a rules file with Suricata's default variables.
pub fn load_file(path: &Path) -> Result<RuleSet, LoadError> {
    load_file_with(path, &Vars::default())
}

/// Reads and parses a rules file, its `$VARIABLES` taken from `vars`.
pub fn load_file_with(path: &Path, vars: &Vars) -> Result<RuleSet, LoadError> {
    let text = fs::read_to_string(path).map_err(|source| LoadError {
        path: path.to_owned(),
        source,
    })?;
    Ok(parse_rules_with(&text, &path.display().to_string(), vars))
}

/// The rules embedded in the agent (`nta-agent/rules/default.rules`).
pub fn default_rules() -> RuleSet {
    parse_rules(DEFAULT_RULES, DEFAULT_ORIGIN)
}

/// For `nta-agent rules check FILE...`: the report (a line per file, then
/// the rejection reasons with how many rules each rejected, most first)
/// and every error.
pub fn check(paths: &[PathBuf], vars: &Vars) -> Result<(String, Vec<RuleError>), LoadError> {
    let mut report = String::new();
    // Every file into one set, as the agent loads them: a sid used twice
    // and a flowbit set in one file and tested in another count across.
    let mut all = RuleSet::default();
    for path in paths {
        all.merge(load_file_with(path, vars)?);
    }
    reject_unset_flowbits(&mut all);
    for path in paths {
        let origin = path.display().to_string();
        let rules: Vec<&Rule> = all.rules.iter().filter(|r| r.origin == origin).collect();
        let rejected = all.errors.iter().filter(|e| e.origin == origin).count();
        let buffers: HashSet<Buffer> = rules
            .iter()
            .flat_map(|r| r.contents.iter().map(|c| c.buffer))
            .collect();
        let mut used: Vec<&str> = Buffer::ALL
            .iter()
            .filter(|b| buffers.contains(b))
            .map(|b| b.name())
            .collect();
        if used.is_empty() {
            used.push("none");
        }
        report.push_str(&format!(
            "{origin}: {} rules loaded, {rejected} rejected; buffers used: {}\n",
            rules.len(),
            used.join(", ")
        ));
    }
    let errors = all.errors;
    let mut reasons: HashMap<String, usize> = HashMap::new();
    for error in &errors {
        *reasons.entry(error.problem.reason()).or_default() += 1;
    }
    let mut reasons: Vec<(String, usize)> = reasons.into_iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if !reasons.is_empty() {
        let width = reasons
            .iter()
            .map(|(r, _)| r.len())
            .max()
            .unwrap_or(0)
            .max(6);
        report.push_str(&format!("{:<width$}  rules\n", "reason"));
        for (reason, n) in reasons {
            report.push_str(&format!("{reason:<width$}  {n}\n"));
        }
    }
    Ok((report, errors))
}

/// Suricata's `classification.config` classtypes and their default
/// priorities. Unknown classtypes are rejected, as Suricata does: a typo
/// would otherwise silently drop the priority.
const CLASSTYPES: &[(&str, u8)] = &[
    ("not-suspicious", 3),
    ("unknown", 3),
    ("bad-unknown", 2),
    ("attempted-recon", 2),
    ("successful-recon-limited", 2),
    ("successful-recon-largescale", 2),
    ("attempted-dos", 2),
    ("successful-dos", 2),
    ("attempted-user", 1),
    ("unsuccessful-user", 1),
    ("successful-user", 1),
    ("attempted-admin", 1),
    ("successful-admin", 1),
    ("rpc-portmap-decode", 2),
    ("shellcode-detect", 1),
    ("string-detect", 3),
    ("suspicious-filename-detect", 2),
    ("suspicious-login", 2),
    ("system-call-detect", 2),
    ("tcp-connection", 4),
    ("trojan-activity", 1),
    ("unusual-client-port-connection", 2),
    ("network-scan", 3),
    ("denial-of-service", 2),
    ("non-standard-protocol", 2),
    ("protocol-command-decode", 3),
    ("web-application-activity", 2),
    ("web-application-attack", 1),
    ("misc-activity", 3),
    ("misc-attack", 2),
    ("icmp-event", 3),
    ("inappropriate-content", 1),
    ("policy-violation", 1),
    ("default-login-attempt", 2),
    ("targeted-activity", 1),
    ("exploit-kit", 1),
    ("external-ip-check", 2),
    ("domain-c2", 1),
    ("pup-activity", 2),
    ("credential-theft", 1),
    ("social-engineering", 2),
    ("coin-mining", 2),
    ("command-and-control", 1),
];

/// Priority of rules with neither `priority` nor a classtype.
const DEFAULT_PRIORITY: u8 = 3;

/// The buffer a content modifier of the old form (`content:"x";
/// http_uri;`) puts its content in.
fn legacy_modifier(option: &str) -> Option<Buffer> {
    Some(match option {
        "http_uri" => Buffer::HttpUri,
        "http_raw_uri" => Buffer::HttpUriRaw,
        "http_header" => Buffer::HttpHeader,
        "http_user_agent" => Buffer::HttpUserAgent,
        "http_host" => Buffer::HttpHost,
        "http_method" => Buffer::HttpMethod,
        "http_client_body" => Buffer::HttpRequestBody,
        "http_cookie" => Buffer::HttpCookie,
        "http_stat_code" => Buffer::HttpStatCode,
        "http_stat_msg" => Buffer::HttpStatMsg,
        "http_server_body" => Buffer::HttpResponseBody,

        _ => return None,
    })
}

/// What to do instead of an unsupported option, when there is something.
fn hint(option: &str) -> String {
    let hint: String = match option {
        "stream_size" => "samples carry no stream state".into(),
        _ => return String::new(),
    };
    format!(" ({hint})")
}

fn parse_rule(text: &str, origin: &str, line: usize, vars: &Vars) -> Result<Rule, Problem> {
    let text = text.trim();
    let Some(open) = text.find('(') else {
        return Err(Problem::Syntax(
            "missing `(`: a rule reads `alert PROTO SRC PORT -> DST PORT (OPTIONS)`".into(),
        ));
    };
    let Some(body) = text[open + 1..].trim_end().strip_suffix(')') else {
        return Err(Problem::Syntax("missing `)` at the end of the rule".into()));
    };
    let header = lex::header_fields(&text[..open])?;
    if let Some(&action) = header.first()
        && action != "alert"
    {
        return Err(Problem::UnsupportedAction(action.to_owned()));
    }
    let [_, protocol, src, src_ports, direction, dst, dst_ports] = header[..] else {
        return Err(Problem::Syntax(format!(
            "expected `alert PROTO SRC_ADDR SRC_PORT -> DST_ADDR DST_PORT` before `(`, \
             found {} fields",
            header.len()
        )));
    };
    let scope = match protocol {
        "tcp-pkt" => Scope::Packets,
        "tcp-stream" => Scope::Stream,
        _ => Scope::Both,
    };
    let protocol = rule_protocol(protocol)?;
    let field = |field: &'static str, text: &str, reason: String| Problem::BadHeaderField {
        field,
        text: text.to_owned(),
        reason,
    };
    let addresses = |name: &'static str, text: &str| {
        vars.expand(text)
            .and_then(|t| net::addresses(&t))
            .map_err(|r| field(name, text, r))
    };
    let ports = |name: &'static str, text: &str| {
        vars.expand(text)
            .and_then(|t| net::ports(&t))
            .map_err(|r| field(name, text, r))
    };
    let src_spec = addresses("source address", src)?;
    let src_ports_spec = ports("source port", src_ports)?;
    let direction = rule_direction(direction)?;
    let dst_spec = addresses("destination address", dst)?;
    let dst_ports_spec = ports("destination port", dst_ports)?;

    let options = match parse_options(body) {
        // `ip` and `icmp` are for rules on addresses alone: one asking for
        // more is refused for its protocol, whatever else it asks.
        Err(_) if protocol.is_header_only() => {
            return Err(Problem::UnsupportedProtocol(protocol.name().to_owned()));
        }
        parsed => parsed?,
    };
    check_kind(
        &options,
        protocol,
        [&src_spec, &dst_spec],
        [&src_ports_spec, &dst_ports_spec],
    )?;
    for content in &options.contents {
        check_content(content, protocol)?;
    }
    check_flow(options.flow, protocol)?;
    check_tls_side(options.flow, &options.contents)?;
    check_http_message(&options)?;
    let priority = priority(options.priority, options.classtype.as_deref());
    Ok(Rule {
        scope,
        sid: options.sid,
        rev: options.rev.unwrap_or(1),
        msg: options
            .msg
            .unwrap_or_else(|| format!("rule {}", options.sid)),
        classtype: options.classtype,
        priority,
        protocol,
        src: src_spec,
        src_ports: src_ports_spec,
        direction,
        dst: dst_spec,
        dst_ports: dst_ports_spec,
        contents: options.contents,
        sizes: options.sizes,
        dsize: options.dsize,
        flow: options.flow,
        threshold: options.threshold,
        flowbits: options.flowbits,
        noalert: options.noalert,
        origin: origin.to_owned(),
        line,
    })
}

/// The direction a rule's header names.
fn rule_direction(text: &str) -> Result<Direction, Problem> {
    let reason = match text {
        "->" => return Ok(Direction::ToDst),
        "<>" => return Ok(Direction::Both),
        "<-" => "write `->` with source and destination swapped",
        _ => "expected `->` or `<>`",
    };
    Err(Problem::BadHeaderField {
        field: "direction",
        text: text.to_owned(),
        reason: reason.to_owned(),
    })
}

/// The protocol a rule's header names.
fn rule_protocol(name: &str) -> Result<Protocol, Problem> {
    Ok(match name {
        "tcp" | "tcp-pkt" | "tcp-stream" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "http" => Protocol::Http,
        "dns" => Protocol::Dns,
        "tls" => Protocol::Tls,
        "ip" => Protocol::Ip,
        "icmp" => Protocol::Icmp,
        other => return Err(Problem::UnsupportedProtocol(other.to_owned())),
    })
}

/// Checks a rule as payload rule (a content or more; only `tcp`, `udp`
/// and the application protocols) or as a rule on addresses alone: no
/// payload keyword, no `flow`, `flowbits` that only set, and an address
/// list on one side to look flows up by.
fn check_kind(
    options: &Options,
    protocol: Protocol,
    addresses: [&Addresses; 2],
    ports: [&Ports; 2],
) -> Result<(), Problem> {
    let refused = || Problem::UnsupportedProtocol(protocol.name().to_owned());
    let payload_conditions = !options.sizes.is_empty() || options.dsize.is_some();
    if !options.contents.is_empty() || payload_conditions {
        if protocol.is_header_only() {
            return Err(refused());
        }
        // Only sizes: checked on every sample, nothing to look for.
        if options.contents.is_empty() {
            return Err(Problem::NoContent);
        }
        return Ok(());
    }
    let address_only = |what: &str, reason: &str| Problem::AddressOnly {
        what: what.to_owned(),
        reason: reason.to_owned(),
    };
    // An application protocol is told from payloads: such a rule without
    // content has nothing to look for in them.
    if matches!(protocol, Protocol::Http | Protocol::Dns | Protocol::Tls) {
        return Err(Problem::NoContent);
    }
    if options.flow != FlowCheck::default() {
        return Err(address_only(
            "flow",
            "a flow's state and direction are not known there",
        ));
    }
    if options.noalert
        || options
            .flowbits
            .iter()
            .any(|f| !matches!(f, Flowbit::Set(_)))
    {
        return Err(address_only(
            "flowbits other than set",
            "it is matched outside the payload pipeline, where bits are tested",
        ));
    }
    if protocol.is_header_only() && ports.iter().any(|p| **p != Ports::Any) {
        return Err(address_only(
            &format!("ports on {}", protocol.name()),
            "the protocol has no ports",
        ));
    }
    if addresses.iter().all(|a| a.bounds().is_none()) {
        return Err(Problem::MatchesEveryFlow);
    }
    Ok(())
}

/// A rule's priority: its own, else its classtype's, else the default.
fn priority(given: Option<u8>, classtype: Option<&str>) -> u8 {
    match (given, classtype) {
        (Some(p), _) => p,
        (None, Some(class)) => CLASSTYPES
            .iter()
            .find(|(name, _)| *name == class)
            .map_or(DEFAULT_PRIORITY, |&(_, p)| p),
        (None, None) => DEFAULT_PRIORITY,
    }
}

/// The options of one rule, checked one by one.
struct Options {
    sid: u32,
    rev: Option<u32>,
    msg: Option<String>,
    classtype: Option<String>,
    priority: Option<u8>,
    contents: Vec<Content>,
    sizes: Vec<BufferSize>,
    dsize: Option<(usize, usize)>,
    flow: FlowCheck,
    threshold: Option<Threshold>,
    flowbits: Vec<Flowbit>,
    noalert: bool,
}

/// Which modifiers a content has been given, to refuse repeats.
#[derive(Default)]
struct Given {
    nocase: bool,
    depth: bool,
    offset: bool,
    distance: bool,
    within: bool,
    startswith: bool,
    endswith: bool,
    fast_pattern: bool,
}

fn parse_options(body: &str) -> Result<Options, Problem> {
    let mut parsed = Parsing::default();
    for option in lex::options(body)? {
        parsed.option(&option)?;
    }
    parsed.finish()
}

/// The options read so far, and the sticky buffer contents go to.
#[derive(Default)]
struct Parsing {
    sid: Option<u32>,
    rev: Option<u32>,
    msg: Option<String>,
    classtype: Option<String>,
    priority: Option<u8>,
    contents: Vec<Content>,
    given: Vec<Given>,
    sizes: Vec<BufferSize>,
    dsize: Option<(usize, usize)>,
    flow: Option<FlowCheck>,
    threshold: Option<Threshold>,
    flowbits: Vec<Flowbit>,
    noalert: bool,
    buffer: Buffer,
    /// The current buffer has the `dotprefix` transform.
    dotprefix: bool,
    /// A sticky buffer named but not yet used by a content.
    unused_buffer: Option<Buffer>,
}

impl Parsing {
    fn option(&mut self, option: &lex::RawOption<'_>) -> Result<(), Problem> {
        let name = option.name;
        match name {
            "msg" => {
                let v = value(option)?;
                set_once(&mut self.msg, name, lex::unescape(name, v.text)?)?;
            }
            "content" => self.content(option)?,
            "pcre" => self.pcre(option)?,
            "isdataat" => self.data_at(option)?,
            "byte_test" | "byte_jump" => {
                let text = value(option)?.text;
                let op = match name {
                    "byte_test" => byte_ops::parse_test(text)?,
                    _ => byte_ops::parse_jump(text)?,
                };
                self.step(
                    name,
                    Content {
                        byte_op: Some(op),
                        ..Content::default()
                    },
                )?;
            }
            "nocase" | "depth" | "offset" | "distance" | "within" | "startswith" | "endswith"
            | "fast_pattern" => self.modifier(option)?,
            // What an alert carries, not what it matches: references,
            // ET's metadata, which end is the target; `rawbytes` is what
            // contents match anyway here.
            "metadata" | "reference" | "target" | "rawbytes" => {}
            "urilen" | "bsize" | "dsize" | "dotprefix" | "flow" | "threshold"
            | "detection_filter" => {
                self.condition(option)?;
            }
            "flowbits" => self.flowbit(value(option)?.text)?,
            // Snort's and older Suricata's forms, still all over published
            // rulesets: `uricontent` is a content in the URI, and a
            // buffer's name after a content moves that one content there.
            "uricontent" => {
                self.content(option)?;
                self.move_last_content(name, Buffer::HttpUri)?;
            }
            _ if legacy_modifier(name).is_some() => {
                no_value(option)?;
                let buffer = legacy_modifier(name).unwrap_or(Buffer::PktData);
                self.move_last_content(name, buffer)?;
            }
            "sid" => {
                let v: u32 = number(name, value(option)?)?;
                if v == 0 {
                    return Err(bad(name, "must be at least 1"));
                }
                set_once(&mut self.sid, name, v)?;
            }
            "rev" => set_once(&mut self.rev, name, number(name, value(option)?)?)?,
            "classtype" => {
                let v = value(option)?.text;
                if !CLASSTYPES.iter().any(|(c, _)| *c == v) {
                    return Err(bad(
                        name,
                        &format!("unknown classtype `{v}` (see Suricata's classification.config)"),
                    ));
                }
                set_once(&mut self.classtype, name, v.to_owned())?;
            }
            "priority" => {
                let p: u8 = number(name, value(option)?)?;
                if p == 0 {
                    return Err(bad(name, "must be 1 (highest) to 255"));
                }
                set_once(&mut self.priority, name, p)?;
            }
            _ => match Buffer::from_keyword(name) {
                Some(sticky) => {
                    no_value(option)?;
                    self.use_nothing_unused()?;
                    self.buffer = sticky;
                    self.dotprefix = false;
                    self.unused_buffer = Some(sticky);
                }
                None => {
                    return Err(Problem::UnsupportedOption {
                        name: name.to_owned(),
                        hint: hint(name),
                    });
                }
            },
        }
        Ok(())
    }

    /// A condition on a buffer or on the rule as a whole: `bsize`,
    /// `urilen`, `dsize`, `dotprefix`, `flow`, `threshold`,
    /// `detection_filter`.
    fn condition(&mut self, option: &lex::RawOption<'_>) -> Result<(), Problem> {
        let name = option.name;
        match name {
            "urilen" => {
                let v = value(option)?;
                let (size, raw) = match v.text.rsplit_once(',') {
                    Some((size, "raw")) => (size, true),
                    Some((size, "norm")) => (size, false),
                    _ => (v.text, false),
                };
                let (min, max) = size_range(name, &lex::Value { text: size, ..*v })?;
                self.sizes.push(BufferSize {
                    buffer: if raw {
                        Buffer::HttpUriRaw
                    } else {
                        Buffer::HttpUri
                    },
                    dotprefix: false,
                    min,
                    max,
                });
            }
            "dsize" => {
                let range = size_range(name, value(option)?)?;
                set_once(&mut self.dsize, name, range)?;
            }
            "bsize" => {
                let (min, max) = size_range(name, value(option)?)?;
                self.sizes.push(BufferSize {
                    buffer: self.buffer,
                    dotprefix: self.dotprefix,
                    min,
                    max,
                });
            }
            "dotprefix" => {
                no_value(option)?;
                if self.unused_buffer.is_none() {
                    return Err(bad(
                        name,
                        "must follow a sticky buffer, e.g. `dns.query; dotprefix;`",
                    ));
                }
                self.dotprefix = true;
            }
            "flow" => {
                let check = flow_check(value(option)?)?;
                set_once(&mut self.flow, name, check)?;
            }
            "threshold" | "detection_filter" => {
                let t = threshold::parse(value(option)?.text, name == "detection_filter")
                    .map_err(|reason| bad(name, &reason))?;
                // One of the two per rule, as Suricata allows.
                set_once(&mut self.threshold, "threshold or detection_filter", t)?;
            }
            _ => {
                return Err(Problem::UnsupportedOption {
                    name: name.to_owned(),
                    hint: String::new(),
                });
            }
        }
        Ok(())
    }

    /// `flowbits:set,NAME` (`unset`, `toggle`, `isset`, `isnotset`) or
    /// `flowbits:noalert`.
    fn flowbit(&mut self, text: &str) -> Result<(), Problem> {
        let (op, name) = match text.split_once(',') {
            Some((op, name)) => (op.trim(), name.trim()),
            None => (text.trim(), ""),
        };
        if op == "noalert" && name.is_empty() {
            self.noalert = true;
            return Ok(());
        }
        if name.is_empty() || name.contains(['|', '&']) {
            return Err(bad(
                "flowbits",
                &format!("`{text}`: expected OPERATION,NAME with one name"),
            ));
        }
        let name = name.to_owned();
        self.flowbits.push(match op {
            "set" => Flowbit::Set(name),
            "unset" => Flowbit::Unset(name),
            "toggle" => Flowbit::Toggle(name),
            "isset" => Flowbit::IsSet(name),
            "isnotset" => Flowbit::IsNotSet(name),
            other => {
                return Err(bad(
                    "flowbits",
                    &format!(
                        "unknown operation `{other}` (set, unset, toggle, isset, isnotset, noalert)"
                    ),
                ));
            }
        });
        Ok(())
    }

    /// `content:"..."`, into the current buffer.
    fn content(&mut self, option: &lex::RawOption<'_>) -> Result<(), Problem> {
        let name = option.name;
        let v = value(option)?;
        if !v.quoted {
            return Err(bad(
                name,
                "needs a quoted string, e.g. `content:\"cmd.exe\";`",
            ));
        }
        let bytes = lex::content_bytes(v.text)?;
        if bytes.is_empty() {
            return Err(bad(name, "empty content"));
        }
        if bytes.len() > MAX_CONTENT_LEN {
            return Err(bad(
                name,
                &format!("{} bytes, longer than {MAX_CONTENT_LEN}", bytes.len()),
            ));
        }
        if self.contents.len() == MAX_CONTENTS_PER_RULE {
            return Err(bad(
                name,
                &format!("more than {MAX_CONTENTS_PER_RULE} contents in one rule"),
            ));
        }
        self.contents.push(Content {
            buffer: self.buffer,
            dotprefix: self.dotprefix,
            bytes,
            negated: v.negated,
            ..Content::default()
        });
        self.given.push(Given::default());
        self.unused_buffer = None;
        Ok(())
    }

    /// `pcre:"/PATTERN/FLAGS"`, into the current buffer or the one a flag
    /// names, in sequence with the contents.
    fn pcre(&mut self, option: &lex::RawOption<'_>) -> Result<(), Problem> {
        // Quoted or not, as Suricata takes both.
        let v = value(option)?;
        if self.contents.len() == MAX_CONTENTS_PER_RULE {
            return Err(bad(
                "pcre",
                &format!("more than {MAX_CONTENTS_PER_RULE} contents in one rule"),
            ));
        }
        // The text goes to the regex engine as written: `\;`, `\"` and
        // `\\` mean there what they mean in the rule.
        let pcre = pcre::parse(v.text)?;
        let (buffer, dotprefix) = match pcre.buffer {
            Some(named) => (named, false),
            None => (self.buffer, self.dotprefix),
        };
        self.contents.push(Content {
            buffer,
            dotprefix,
            negated: v.negated,
            pcre: Some(pcre),
            ..Content::default()
        });
        self.given.push(Given::default());
        self.unused_buffer = None;
        Ok(())
    }

    /// `isdataat:[!]N[,relative]`, in sequence with the contents.
    fn data_at(&mut self, option: &lex::RawOption<'_>) -> Result<(), Problem> {
        let v = value(option)?;
        // `!N` unquoted: the lexer marks only a quoted value negated.
        let (negated, text) = match v.text.strip_prefix('!') {
            Some(rest) => (true, rest.trim_start()),
            None => (v.negated, v.text),
        };
        let (offset, relative) = match text.split_once(',') {
            Some((n, "relative")) => (n.trim(), true),
            Some(_) => return Err(bad("isdataat", "expected `N` or `N,relative`")),
            None => (text.trim(), false),
        };
        let offset: usize = offset
            .parse()
            .map_err(|_| bad("isdataat", &format!("`{offset}` is not an offset")))?;
        self.step(
            "isdataat",
            Content {
                negated,
                data_at: Some(DataAt { offset, relative }),
                ..Content::default()
            },
        )
    }

    /// A test in sequence with the contents (`isdataat`, `byte_test`,
    /// `byte_jump`), in the current buffer.
    fn step(&mut self, name: &str, step: Content) -> Result<(), Problem> {
        if self.contents.len() == MAX_CONTENTS_PER_RULE {
            return Err(bad(
                name,
                &format!("more than {MAX_CONTENTS_PER_RULE} contents in one rule"),
            ));
        }
        self.contents.push(Content {
            buffer: self.buffer,
            dotprefix: self.dotprefix,
            ..step
        });
        self.given.push(Given::default());
        Ok(())
    }

    /// A content modifier (`nocase`, `depth`, `distance`, `endswith`,
    /// `fast_pattern`, ...), on the content before it.
    fn modifier(&mut self, option: &lex::RawOption<'_>) -> Result<(), Problem> {
        let name = option.name;
        // As Suricata, the last content proper, past a `pcre`, `isdataat`
        // or byte test after it, but not past a sticky buffer named since.
        let last = (self.unused_buffer.is_none())
            .then(|| self.contents.iter().rposition(Content::is_bytes))
            .flatten();
        let (Some(content), Some(given)) = (
            last.and_then(|i| self.contents.get_mut(i)),
            last.and_then(|i| self.given.get_mut(i)),
        ) else {
            return Err(Problem::NoPrecedingContent {
                option: name.to_owned(),
            });
        };
        let seen = match name {
            "nocase" => {
                no_value(option)?;
                content.nocase = true;
                &mut given.nocase
            }
            "depth" => {
                let depth: usize = number(name, value(option)?)?;
                if depth == 0 {
                    return Err(bad(name, "must be at least 1"));
                }
                content.depth = Some(depth);
                &mut given.depth
            }
            "offset" => {
                content.offset = number(name, value(option)?)?;
                &mut given.offset
            }
            "distance" => {
                content.distance = Some(number(name, value(option)?)?);
                &mut given.distance
            }
            "within" => {
                let within: usize = number(name, value(option)?)?;
                if within < content.bytes.len() {
                    return Err(bad(
                        name,
                        &format!(
                            "{within} is shorter than its content ({} bytes), so it never matches",
                            content.bytes.len()
                        ),
                    ));
                }
                content.within = Some(within);
                &mut given.within
            }
            "startswith" => {
                no_value(option)?;
                content.startswith = true;
                &mut given.startswith
            }
            "endswith" => {
                no_value(option)?;
                content.endswith = true;
                &mut given.endswith
            }
            _ => {
                // `fast_pattern:only` and `fast_pattern:OFFSET,LENGTH` pick
                // the same content; the whole of it is looked for.
                if content.negated {
                    return Err(bad(name, "a negated content cannot be the fast pattern"));
                }
                content.fast_pattern = true;
                &mut given.fast_pattern
            }
        };
        if std::mem::replace(seen, true) {
            return Err(Problem::RepeatedModifier {
                option: name.to_owned(),
            });
        }
        Ok(())
    }

    /// Puts the last content in `buffer` (a content modifier `name`).
    fn move_last_content(&mut self, name: &str, buffer: Buffer) -> Result<(), Problem> {
        let Some(content) = self.contents.last_mut() else {
            return Err(Problem::NoPrecedingContent {
                option: name.to_owned(),
            });
        };
        content.buffer = buffer;
        Ok(())
    }

    /// Refuses a sticky buffer that no content used.
    fn use_nothing_unused(&self) -> Result<(), Problem> {
        match self.unused_buffer {
            Some(unused) => Err(Problem::EmptyBuffer {
                buffer: unused.name(),
            }),
            None => Ok(()),
        }
    }

    fn finish(self) -> Result<Options, Problem> {
        self.use_nothing_unused()?;
        let sid = self.sid.ok_or(Problem::MissingSid)?;
        if self.contents.iter().filter(|c| c.fast_pattern).count() > 1 {
            return Err(bad("fast_pattern", "given on more than one content"));
        }
        Ok(Options {
            sid,
            rev: self.rev,
            msg: self.msg,
            classtype: self.classtype,
            priority: self.priority,
            contents: self.contents,
            sizes: self.sizes,
            dsize: self.dsize,
            flow: self.flow.unwrap_or_default(),
            threshold: self.threshold,
            flowbits: self.flowbits,
            noalert: self.noalert,
        })
    }
}

/// `bsize:N`, `<N`, `>N`, `<=N`, `>=N` or `N<>M` (exclusive, as in
/// Suricata): the inclusive bounds of the buffer's length.
fn size_range(option: &str, v: &lex::Value<'_>) -> Result<(usize, usize), Problem> {
    let text = v.text.replace(' ', "");
    let n = |t: &str| -> Result<usize, Problem> {
        t.parse().map_err(|_| {
            bad(
                option,
                &format!("`{}` is not a size (N, <N, >N, N<>M)", v.text),
            )
        })
    };
    let range = if let Some((lo, hi)) = text.split_once("<>") {
        let (lo, hi) = (n(lo)?, n(hi)?);
        if hi <= lo + 1 {
            return Err(bad(option, &format!("`{}` is an empty range", v.text)));
        }
        (lo + 1, hi - 1)
    } else if let Some(t) = text.strip_prefix("<=") {
        (0, n(t)?)
    } else if let Some(t) = text.strip_prefix(">=") {
        (n(t)?, usize::MAX)
    } else if let Some(t) = text.strip_prefix('<') {
        let hi = n(t)?;
        if hi == 0 {
            return Err(bad(option, "`<0` never matches"));
        }
        (0, hi - 1)
    } else if let Some(t) = text.strip_prefix('>') {
        (n(t)?.saturating_add(1), usize::MAX)
    } else {
        let exact = n(&text)?;
        (exact, exact)
    };
    Ok(range)
}

/// `flow:established,to_server` and the like.
fn flow_check(v: &lex::Value<'_>) -> Result<FlowCheck, Problem> {
    let mut check = FlowCheck::default();
    for word in v.text.split(',').map(str::trim) {
        let direction = match word {
            "to_server" | "from_client" => Some(true),
            "to_client" | "from_server" => Some(false),
            "established" => {
                check.established = true;
                None
            }
            "not_established" => {
                check.not_established = true;
                None
            }
            // Every message the engine sees is stateless-compatible.
            "stateless" => None,
            other => {
                return Err(Problem::UnsupportedOption {
                    name: format!("flow:{other}"),
                    hint: " (established, not_established, to_server, to_client and \
                           stateless are supported; nta matches both single packets and \
                           the first bytes of streams)"
                        .into(),
                });
            }
        };
        if let Some(d) = direction {
            if check.to_server.is_some_and(|had| had != d) {
                return Err(bad("flow", "both directions given"));
            }
            check.to_server = Some(d);
        }
    }
    if check.established && check.not_established {
        return Err(bad("flow", "both established and not_established given"));
    }
    Ok(check)
}

/// Checks `flow` against the rule's protocol: for raw TCP and UDP the flow
/// table tells the direction and state; otherwise the application message
/// does (an HTTP request and a TLS ClientHello go to the server, an HTTP
/// response and the server's certificates to the client; a DNS query to
/// the server, its answer to the client).
fn check_flow(flow: FlowCheck, protocol: Protocol) -> Result<(), Problem> {
    if flow == FlowCheck::default() {
        return Ok(());
    }
    let unsupported = |what: &str, why: &str| {
        Err(Problem::UnsupportedOption {
            name: format!("flow:{what}"),
            hint: format!(" ({why})"),
        })
    };
    match protocol {
        Protocol::Tcp | Protocol::Udp => Ok(()),
        _ if flow.not_established => unsupported(
            "not_established",
            "an application message is parsed only once the flow is established",
        ),
        Protocol::Dns if flow.established => unsupported(
            "established",
            "a DNS message alone does not tell whether the flow saw both directions",
        ),
        _ => Ok(()),
    }
}

/// Checks that a TLS rule's buffers are those of the side its `flow`
/// names: the server name is the client's, the certificates the server's;
/// and that one rule does not ask for both, which no one message holds.
fn check_tls_side(flow: FlowCheck, contents: &[Content]) -> Result<(), Problem> {
    let server = contents.iter().any(|c| c.buffer.is_tls_server());
    let client = contents.iter().any(|c| c.buffer == Buffer::TlsSni);
    let mismatch = match flow.to_server {
        _ if server && client => Some("tls.sni with the server's certificates"),
        Some(true) if server => Some("the server's certificates with to_server"),
        Some(false) if client => Some("tls.sni, the client's, with to_client"),
        _ => None,
    };
    match mismatch {
        Some(what) => Err(bad("flow", &format!("{what}: no message holds both"))),
        None => Ok(()),
    }
}

/// Checks that a rule's HTTP buffers are of one message, and of the one
/// its `flow` direction names: a sample holds a request or a response, and
/// nothing here pairs a response with the request it answers.
fn check_http_message(options: &Options) -> Result<(), Problem> {
    let buffers =
        (options.contents.iter().map(|c| c.buffer)).chain(options.sizes.iter().map(|s| s.buffer));
    let (mut request, mut response) = (None, None);
    for buffer in buffers {
        match buffer.http_message() {
            Some(HttpMessage::Request) => request = request.or(Some(buffer)),
            Some(HttpMessage::Response) => response = response.or(Some(buffer)),
            Some(HttpMessage::Either) | None => {}
        }
    }
    if let (Some(request), Some(response)) = (request, response) {
        return Err(Problem::RequestAndResponse {
            request: request.name(),
            response: response.name(),
        });
    }
    let Some(to_server) = options.flow.to_server else {
        return Ok(());
    };
    let (against, message, flow) = match to_server {
        true => (response, "response", "to_server"),
        false => (request, "request", "to_client"),
    };
    match against {
        Some(buffer) => Err(Problem::BufferAgainstFlow {
            buffer: buffer.name(),
            message,
            flow,
        }),
        None => Ok(()),
    }
}

/// Checks a content against its rule as a whole.
fn check_content(content: &Content, protocol: Protocol) -> Result<(), Problem> {
    if !content.buffer.fits(protocol) {
        return Err(Problem::BufferProtocol {
            buffer: content.buffer.name(),
            protocol: protocol.name(),
        });
    }
    let absolute = content.depth.is_some() || content.offset > 0;
    if content.is_relative() && absolute {
        return Err(bad(
            "distance",
            "a content is placed either after the previous one (distance, within) or \
             in the buffer (offset, depth), not both",
        ));
    }
    // With `endswith` too, the content is the whole buffer.
    if content.startswith && (content.is_relative() || absolute) {
        return Err(bad(
            "startswith",
            "cannot be combined with offset, depth, distance or within",
        ));
    }
    if let Some(depth) = content.depth
        && depth < content.bytes.len()
    {
        return Err(bad(
            "depth",
            &format!(
                "{depth} is shorter than its content ({} bytes), so it never matches",
                content.bytes.len()
            ),
        ));
    }
    if content.buffer == Buffer::HttpHost
        && !content.nocase
        && content.bytes.iter().any(u8::is_ascii_uppercase)
    {
        return Err(bad(
            "content",
            "`http.host` is lower-cased, so upper-case letters never match; \
             write the content in lower case or add `nocase`",
        ));
    }
    Ok(())
}

fn value<'a>(option: &'a lex::RawOption<'a>) -> Result<&'a lex::Value<'a>, Problem> {
    option
        .value
        .as_ref()
        .ok_or_else(|| bad(option.name, "needs a value"))
}

fn no_value(option: &lex::RawOption<'_>) -> Result<(), Problem> {
    match option.value {
        None => Ok(()),
        Some(_) => Err(bad(option.name, "takes no value")),
    }
}

fn number<T: std::str::FromStr>(option: &str, v: &lex::Value<'_>) -> Result<T, Problem> {
    if v.quoted || v.negated {
        return Err(bad(option, "needs a plain number"));
    }
    v.text
        .parse()
        .map_err(|_| bad(option, &format!("`{}` is not a number in range", v.text)))
}

fn set_once<T>(slot: &mut Option<T>, option: &str, value: T) -> Result<(), Problem> {
    if slot.replace(value).is_some() {
        return Err(Problem::Repeated {
            option: option.to_owned(),
        });
    }
    Ok(())
}

fn bad(option: &str, reason: &str) -> Problem {
    Problem::BadValue {
        option: option.to_owned(),
        reason: reason.to_owned(),
    }
}
