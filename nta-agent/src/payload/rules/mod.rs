//! The content-matching subset of the Suricata/Snort rule language.
//!
//! ```text
//! alert http any any -> any any (msg:"cmd.exe in User-Agent"; http.user_agent; \
//!     content:"cmd.exe"; nocase; sid:1000001; rev:1; classtype:web-application-attack;)
//! ```
//!
//! Supported: action `alert`; protocols `tcp`, `udp`, `http`, `dns`;
//! addresses (`any`, IPv4/IPv6, CIDR, `[lists]`, `!negation`) and ports
//! (`any`, `80`, `1024:`, `:1023`, `8000:8100`, lists, negation); directions
//! `->` and `<>`; options `msg`, `content` (with `|hex|` and `\"` `\;` `\\`
//! escapes), `nocase`, `depth`, `offset`, the sticky buffers `pkt_data`,
//! `http.method`, `http.uri`, `http.uri.raw`, `http.header`,
//! `http.user_agent`, `http.host`, `dns.query`, and `sid`, `rev`,
//! `classtype`, `priority`. The older forms published rulesets still use
//! are read as Suricata reads them: `uricontent:"..."` is a content in
//! `http.uri`, and a content modifier (`http_uri`, `http_raw_uri`,
//! `http_header`, `http_user_agent`, `http_host`, `http_method`,
//! `dns_query`) puts the one content before it in that buffer.
//!
//! A rule using anything else — another keyword (`pcre`, `flow`,
//! `byte_test`, `dsize`, ...), an address variable (`$HOME_NET`), a negated
//! content — is rejected with its line and the option named, and the other
//! rules still load: a rule that silently matched less than it says would be
//! worse than no rule.
//!
//! Semantics worth knowing:
//! - all contents of a rule must match, each anywhere in its buffer (no
//!   `distance`/`within`); `offset:N` skips the first N bytes, `depth:N`
//!   then limits the search to N bytes (as in Suricata, `depth` counts from
//!   `offset`);
//! - `http.uri` is percent-decoded (see [`super::http::decode_uri`]);
//!   `http.uri.raw` is the target as sent; `http.header` is every header as
//!   `Name: value\r\n`; `http.host` is lower-cased without the port;
//!   `dns.query` is each question's name, dotted, without trailing dot;
//! - `http` rules apply to TCP payloads that parse as an HTTP request, `dns`
//!   rules to DNS messages on port 53, whatever the rule's port fields say
//!   beyond that.

mod error;
mod lex;
pub mod net;
#[cfg(test)]
mod tests;

use std::{
    collections::{HashMap, HashSet, hash_map::Entry},
    fmt, fs,
    path::Path,
};

pub use error::{LoadError, Problem, RuleError};
pub use lex::MAX_RULE_LEN;
pub use net::{Addresses, PortRange, Ports, Spec};

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
    /// TCP payloads that parse as an HTTP request.
    Http,
    /// DNS messages (UDP or TCP, port 53).
    Dns,
}

impl Protocol {
    /// The rule keyword.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Http => "http",
            Protocol::Dns => "dns",
        }
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
}

impl Buffer {
    /// Every buffer, in [`Buffer::index`] order.
    pub const ALL: [Buffer; 8] = [
        Buffer::PktData,
        Buffer::HttpMethod,
        Buffer::HttpUri,
        Buffer::HttpUriRaw,
        Buffer::HttpHeader,
        Buffer::HttpUserAgent,
        Buffer::HttpHost,
        Buffer::DnsQuery,
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
        }
    }

    /// Position in [`Buffer::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    fn from_keyword(keyword: &str) -> Option<Buffer> {
        Buffer::ALL.into_iter().find(|b| b.name() == keyword)
    }

    /// Whether a rule for `protocol` can see this buffer.
    fn fits(self, protocol: Protocol) -> bool {
        match self {
            Buffer::PktData => true,
            Buffer::DnsQuery => protocol != Protocol::Http,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub buffer: Buffer,
    pub bytes: Vec<u8>,
    /// ASCII case-insensitive.
    pub nocase: bool,
    /// Bytes skipped at the start of the buffer.
    pub offset: usize,
    /// The match must end within this many bytes after `offset`.
    pub depth: Option<usize>,
}

/// A parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
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
    /// In rule order; at least one.
    pub contents: Vec<Content>,
    /// File the rule came from.
    pub origin: String,
    /// Line it starts on.
    pub line: usize,
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

/// Parses a rules file's text; `origin` names it in errors.
pub fn parse_rules(text: &str, origin: &str) -> RuleSet {
    let mut set = RuleSet::default();
    let mut first_line: HashMap<u32, usize> = HashMap::new();
    for lex::LogicalLine { line, text } in lex::logical_lines(text) {
        let problem = match text.and_then(|text| parse_rule(&text, origin, line)) {
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

/// Reads and parses a rules file.
pub fn load_file(path: &Path) -> Result<RuleSet, LoadError> {
    let text = fs::read_to_string(path).map_err(|source| LoadError {
        path: path.to_owned(),
        source,
    })?;
    Ok(parse_rules(&text, &path.display().to_string()))
}

/// The rules embedded in the agent (`nta-agent/rules/default.rules`).
pub fn default_rules() -> RuleSet {
    parse_rules(DEFAULT_RULES, DEFAULT_ORIGIN)
}

/// For `nta-agent rules check FILE`: a one-line summary and every error.
pub fn check(path: &Path) -> Result<(String, Vec<RuleError>), LoadError> {
    let set = load_file(path)?;
    let buffers: HashSet<Buffer> = set
        .rules
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
    let summary = format!(
        "{}: {} rules loaded, {} rejected; buffers used: {}",
        path.display(),
        set.rules.len(),
        set.errors.len(),
        used.join(", ")
    );
    Ok((summary, set.errors))
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
        "dns_query" => Buffer::DnsQuery,
        _ => return None,
    })
}

/// What to do instead of an unsupported option, when there is something.
fn hint(option: &str) -> String {
    let hint: String = match option {
        "distance" | "within" => {
            "relative matches are not supported; contents match anywhere in their buffer".into()
        }
        "flow" | "flowbits" | "stream_size" => {
            "samples are single segments, there is no flow state".into()
        }
        "pcre" => "regular expressions are not supported; use `content`".into(),
        "fast_pattern" => "all contents are matched in one pass anyway; remove it".into(),
        _ => return String::new(),
    };
    format!(" ({hint})")
}

fn parse_rule(text: &str, origin: &str, line: usize) -> Result<Rule, Problem> {
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
    let protocol = match protocol {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "http" => Protocol::Http,
        "dns" => Protocol::Dns,
        other => return Err(Problem::UnsupportedProtocol(other.to_owned())),
    };
    let field = |field: &'static str, text: &str, reason: String| Problem::BadHeaderField {
        field,
        text: text.to_owned(),
        reason,
    };
    let src_spec = net::addresses(src).map_err(|r| field("source address", src, r))?;
    let src_ports_spec = net::ports(src_ports).map_err(|r| field("source port", src_ports, r))?;
    let direction = match direction {
        "->" => Direction::ToDst,
        "<>" => Direction::Both,
        "<-" => {
            return Err(field(
                "direction",
                direction,
                "write `->` with source and destination swapped".into(),
            ));
        }
        other => return Err(field("direction", other, "expected `->` or `<>`".into())),
    };
    let dst_spec = net::addresses(dst).map_err(|r| field("destination address", dst, r))?;
    let dst_ports_spec =
        net::ports(dst_ports).map_err(|r| field("destination port", dst_ports, r))?;

    let options = parse_options(body)?;
    for content in &options.contents {
        check_content(content, protocol)?;
    }
    let priority = match (options.priority, &options.classtype) {
        (Some(p), _) => p,
        (None, Some(class)) => CLASSTYPES
            .iter()
            .find(|(name, _)| name == class)
            .map_or(DEFAULT_PRIORITY, |&(_, p)| p),
        (None, None) => DEFAULT_PRIORITY,
    };
    Ok(Rule {
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
        origin: origin.to_owned(),
        line,
    })
}

/// The options of one rule, checked one by one.
struct Options {
    sid: u32,
    rev: Option<u32>,
    msg: Option<String>,
    classtype: Option<String>,
    priority: Option<u8>,
    contents: Vec<Content>,
}

/// Which modifiers a content has been given, to refuse repeats.
#[derive(Default)]
struct Given {
    nocase: bool,
    depth: bool,
    offset: bool,
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
    buffer: Buffer,
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
            "nocase" | "depth" | "offset" => self.modifier(option)?,
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

    /// `content:"..."`, into the current buffer.
    fn content(&mut self, option: &lex::RawOption<'_>) -> Result<(), Problem> {
        let name = option.name;
        let v = value(option)?;
        if v.negated {
            return Err(Problem::NegatedContent);
        }
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
            bytes,
            nocase: false,
            offset: 0,
            depth: None,
        });
        self.given.push(Given::default());
        self.unused_buffer = None;
        Ok(())
    }

    /// `nocase`, `depth` or `offset`, on the content before it.
    fn modifier(&mut self, option: &lex::RawOption<'_>) -> Result<(), Problem> {
        let name = option.name;
        let (Some(content), Some(given)) = (self.contents.last_mut(), self.given.last_mut()) else {
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
            _ => {
                content.offset = number(name, value(option)?)?;
                &mut given.offset
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
        if self.contents.is_empty() {
            return Err(Problem::NoContent);
        }
        Ok(Options {
            sid,
            rev: self.rev,
            msg: self.msg,
            classtype: self.classtype,
            priority: self.priority,
            contents: self.contents,
        })
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
