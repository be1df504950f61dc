//! Why a channel cannot be set up from its settings: each error names the
//! setting (by its environment variable) and the value that is wrong, so
//! that the fix is obvious from the message alone. Secrets are never part
//! of one.

use std::{io, path::PathBuf};

/// A channel's settings that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// A required setting is empty.
    #[error("{var} is empty")]
    Empty { var: &'static str },

    /// An address list with no address in it.
    #[error("{var}: no {what} given (at least one is needed)")]
    NoRecipient {
        var: &'static str,
        what: &'static str,
    },

    /// An email address that does not parse.
    #[error("{var}: `{value}` is not an email address ({reason})")]
    BadAddress {
        var: &'static str,
        value: String,
        reason: String,
    },

    /// A phone number that is not E.164.
    #[error("{var}: `{value}` is not a phone number in E.164 form (`+` then 8 to 15 digits)")]
    BadPhone { var: &'static str, value: String },

    /// A URL that does not parse or has the wrong scheme.
    #[error("{var}: `{value}` {reason}")]
    BadUrl {
        var: &'static str,
        value: String,
        reason: String,
    },

    /// A setting with characters it cannot contain.
    #[error("{var}: `{value}` {reason}")]
    BadValue {
        var: &'static str,
        value: String,
        reason: &'static str,
    },

    /// Half a login.
    #[error("NTA_SMTP_USER and NTA_SMTP_PASSWORD: give both or neither")]
    HalfLogin,

    /// The CA file cannot be read.
    #[error("NTA_SMTP_CA_FILE {}: cannot read: {source}", path.display())]
    CaFileRead { path: PathBuf, source: io::Error },

    /// The CA file has no usable certificate.
    #[error("NTA_SMTP_CA_FILE {}: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },

    /// The TLS configuration could not be built.
    #[error("TLS for {host}: {reason}")]
    Tls { host: String, reason: String },

    /// The HTTP client could not be built.
    #[error("HTTP client for {channel}: {reason}")]
    HttpClient {
        channel: &'static str,
        reason: String,
    },
}
