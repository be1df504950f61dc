//! What every notification channel (email, SMS, webhook) offers the
//! notifier: a name, a description for `notify test`, and one delivery
//! attempt. Retries, rate limits and counting are the notifier's.

use std::future::Future;

use super::message::Message;

/// Why one delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: the server was unreachable, timed out, answered 5xx
    /// or 429, or said "try again later" (SMTP 4xx).
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help: bad credentials, a rejected recipient, a 4xx
    /// from an HTTP API, a message the server refuses (SMTP 5xx).
    #[error("{0}")]
    Permanent(String),
}

/// One way of telling people about alerts.
pub trait Deliver: Send + Sync + 'static {
    /// `email`, `sms` or `webhook`: the label in counters, logs and
    /// `/metrics`.
    fn name(&self) -> &'static str;

    /// Where messages go, for `notify test` and the startup log, e.g.
    /// `ops@example.com via smtp.example.com:587 (starttls)`. Never
    /// contains a secret.
    fn describe(&self) -> String;

    /// One attempt at delivering `message`, bounded in time by the
    /// channel's own timeout.
    fn send(&self, message: &Message) -> impl Future<Output = Result<(), SendError>> + Send;
}
