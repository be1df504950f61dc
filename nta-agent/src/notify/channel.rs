//! What every notification channel (email, SMS, webhook) offers the
//! notifier: a name, a description for `notify test`, and one delivery
//! attempt. Retries, rate limits and counting are the notifier's.

use std::{collections::BTreeSet, future::Future};

use super::message::Message;

/// Which recipients earlier attempts at one message reached, by their
/// place in the channel's list: a retry goes to the others only, so that
/// nobody gets a message twice because someone else's number failed. The
/// notifier keeps one per message across its attempts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered(BTreeSet<usize>);

impl Delivered {
    /// Whether recipient `i` has the message.
    pub fn has(&self, i: usize) -> bool {
        self.0.contains(&i)
    }

    /// Recipient `i` got the message.
    pub fn mark(&mut self, i: usize) {
        self.0.insert(i);
    }
}

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

    /// One attempt at delivering `message` to the recipients `delivered`
    /// does not name yet, bounded in time by the channel's own timeout;
    /// marks those it reaches. A channel that sends once for every
    /// recipient (an email, a webhook) may leave `delivered` alone.
    fn send(
        &self,
        message: &Message,
        delivered: &mut Delivered,
    ) -> impl Future<Output = Result<(), SendError>> + Send;
}
