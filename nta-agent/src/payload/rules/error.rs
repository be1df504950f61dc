//! What can be wrong with a rule or a rules file, worded so the user can
//! find and fix it.

use std::{io, path::PathBuf};

/// One rejected rule: where it starts and why. The other rules still load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}: {problem}")]
pub struct RuleError {
    /// The file name (or `default.rules` for the embedded set).
    pub origin: String,
    /// Line the rule starts on, from 1.
    pub line: usize,
    pub problem: Problem,
}

/// Why a rule was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("rule is longer than {max} bytes")]
    TooLong { max: usize },

    /// The rule's shape is wrong: missing parentheses, fields, semicolons.
    #[error("{0}")]
    Syntax(String),

    #[error("unsupported action `{0}` (only `alert` is supported)")]
    UnsupportedAction(String),

    #[error(
        "unsupported protocol `{0}` (expected tcp, udp, http, dns or tls; ip and icmp for rules \
         without payload keywords)"
    )]
    UnsupportedProtocol(String),

    /// An address, port or direction field that does not parse.
    #[error("bad {field} `{text}`: {reason}")]
    BadHeaderField {
        field: &'static str,
        text: String,
        reason: String,
    },

    /// An option (keyword) this engine does not implement.
    #[error("unsupported option `{name}`{hint}")]
    UnsupportedOption {
        name: String,
        /// Empty, or ` (…)` with what to do instead.
        hint: String,
    },

    #[error("`{option}`: {reason}")]
    BadValue { option: String, reason: String },

    #[error("unterminated string in `{option}`")]
    UnterminatedString { option: String },

    #[error("`{option}` must follow a `content`")]
    NoPrecedingContent { option: String },

    #[error("`{option}` is given twice")]
    Repeated { option: String },

    #[error("`{option}` is given twice for the same content")]
    RepeatedModifier { option: String },

    #[error("`{buffer}` is not followed by a `content`")]
    EmptyBuffer { buffer: &'static str },

    #[error("`{buffer}` does not apply to {protocol} rules")]
    BufferProtocol {
        buffer: &'static str,
        protocol: &'static str,
    },

    /// A buffer of an HTTP request and one of a response in one rule:
    /// Suricata pairs them on one transaction, which a sample cannot.
    #[error(
        "`{request}` is in the HTTP request and `{response}` in the response; \
         a rule here matches one message, not a request with its response"
    )]
    RequestAndResponse {
        request: &'static str,
        response: &'static str,
    },

    /// A buffer of one HTTP message in a rule whose `flow` names the other
    /// direction.
    #[error("`{buffer}` is in HTTP {message}s, which never travel `{flow}`")]
    BufferAgainstFlow {
        buffer: &'static str,
        message: &'static str,
        flow: &'static str,
    },

    #[error("missing `sid`")]
    MissingSid,

    #[error("the rule has nothing to look for in a payload: no `content`, `pcre` or `isdataat`")]
    NoContent,

    /// A rule without payload keywords, matched on its addresses once per
    /// flow, that asks for what only a payload rule can have.
    #[error(
        "a rule without payload keywords is matched on its addresses alone, once per flow: \
         `{what}` is not supported there ({reason})"
    )]
    AddressOnly { what: String, reason: String },

    #[error(
        "the rule has no payload keyword and no address list on either side: it would match \
         every flow"
    )]
    MatchesEveryFlow,

    #[error("`flowbits:isset,{name}`: no loaded rule sets `{name}`, so this one could never match")]
    UnsetFlowbit { name: String },

    #[error("duplicate sid {sid} (first used at {first})")]
    DuplicateSid { sid: u32, first: String },
}

impl Problem {
    /// A short name for the reason, to count rejections by: the keyword
    /// for an unsupported option (`pcre`, `flow:only_stream`), else what
    /// is wrong (`protocol smb`, `duplicate sid`, ...).
    pub fn reason(&self) -> String {
        match self {
            Problem::UnsupportedOption { name, .. } => name.clone(),
            Problem::UnsupportedProtocol(p) => format!("protocol {p}"),
            Problem::UnsupportedAction(a) => format!("action {a}"),
            Problem::BadValue { option, .. } => format!("bad {option}"),
            Problem::BadHeaderField { field, .. } => format!("bad {field}"),
            Problem::TooLong { .. } => "too long".into(),
            Problem::Syntax(_) | Problem::UnterminatedString { .. } => "syntax".into(),
            Problem::NoPrecedingContent { option } => format!("{option} without content"),
            Problem::Repeated { option } | Problem::RepeatedModifier { option } => {
                format!("repeated {option}")
            }
            Problem::EmptyBuffer { buffer } => format!("empty {buffer}"),
            Problem::BufferProtocol { buffer, protocol } => format!("{buffer} in {protocol} rule"),
            Problem::RequestAndResponse { .. } => "http request and response buffers".into(),
            Problem::BufferAgainstFlow { buffer, flow, .. } => format!("{buffer} with flow:{flow}"),
            Problem::MissingSid => "missing sid".into(),
            Problem::NoContent => "no content".into(),
            Problem::AddressOnly { what, .. } => format!("address-only rule with {what}"),
            Problem::MatchesEveryFlow => "matches every flow".into(),
            Problem::DuplicateSid { .. } => "duplicate sid".into(),
            Problem::UnsetFlowbit { .. } => "flowbits:isset of a bit no rule sets".into(),
        }
    }
}

/// A rules file that could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot read rules file {}: {source}", path.display())]
pub struct LoadError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}
