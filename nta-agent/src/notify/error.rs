//! Why a channel cannot be set up from its settings: each error names the
//! setting (by its environment variable) and the value that is wrong, so
//! that the fix is obvious from the message alone. Secrets are never part
//! of one. Also how the channels put a failed delivery into words.

use std::{io, path::PathBuf};

use crate::http_client::ClientError;

/// `value`, unless it is empty: setting `var` is required.
pub(super) fn required<'a>(var: &'static str, value: &'a str) -> Result<&'a str, ChannelError> {
    if value.is_empty() {
        return Err(ChannelError::Empty { var });
    }
    Ok(value)
}

/// Each recipient in `to`, read by `parse`, for setting `var`; at least one
/// (`what`: an address, a phone number) is needed.
pub(super) fn recipients<T>(
    var: &'static str,
    what: &'static str,
    to: &[String],
    parse: impl Fn(&'static str, &str) -> Result<T, ChannelError>,
) -> Result<Vec<T>, ChannelError> {
    if to.is_empty() {
        return Err(ChannelError::NoRecipient { var, what });
    }
    to.iter().map(|recipient| parse(var, recipient)).collect()
}

/// Why a channel refused its settings, as the user reads it (a panic if
/// it did not): for the channels' tests.
#[cfg(test)]
pub(super) fn refusal<T>(new: Result<T, ChannelError>) -> String {
    match new {
        Ok(_) => panic!("the settings were accepted"),
        Err(e) => e.to_string(),
    }
}

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

impl From<ClientError> for ChannelError {
    fn from(e: ClientError) -> Self {
        ChannelError::HttpClient {
            channel: e.purpose,
            reason: chain(&e.source),
        }
    }
}

/// `error` and its causes, `: `-separated, each said once: the outer texts
/// ("Connection error", "error sending request") say little, the inner
/// ones ("connection refused", "invalid peer certificate") say what to fix.
/// Libraries often repeat their cause in their own text; it is not repeated.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// Whether a TLS handshake failed (an untrusted certificate, mostly):
/// rustls's own error among the causes. `io::Error` hides the error it
/// wraps from `source()` (it returns that error's source instead), and
/// hyper wraps rustls's io::Error in another, so wrapped errors are
/// unwrapped here by hand.
pub(crate) fn caused_by_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(cause) = source {
        let mut wrapped = Some(cause);
        while let Some(inner) = wrapped {
            if inner.is::<rustls::Error>() {
                return true;
            }
            wrapped = inner
                .downcast_ref::<io::Error>()
                .and_then(io::Error::get_ref)
                .map(|e| e as &(dyn std::error::Error + 'static));
        }
        source = cause.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Repeats(#[source] io::Error);

    #[test]
    fn chains_causes_once_each() {
        let error = Repeats(io::Error::other("refused"));
        assert_eq!(chain(&error), "outer: refused");
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Quiet(#[source] io::Error);
        assert_eq!(chain(&Quiet(io::Error::other("refused"))), "outer: refused");
    }

    #[test]
    fn finds_rustls_errors_inside_io_errors() {
        let tls = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert!(caused_by_tls(&Repeats(tls)));
        let twice = io::Error::other(io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        ));
        assert!(caused_by_tls(&Repeats(twice)));
        assert!(!caused_by_tls(&Repeats(io::Error::other("refused"))));
    }
}
