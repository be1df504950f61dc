//! Notifications: a message per new incident and per closed one, by email
//! (SMTP, lettre), SMS (Twilio) and a JSON webhook, routed by severity and
//! kind, rate-limited per channel with digests, retried with backoff, and
//! never in the way of detection or storage.
//!
//! - [`settings`]: where each channel delivers.
//! - [`message`]: what a notification says.
//! - [`channel`]: what a channel offers the notifier.
//! - [`email`], [`sms`], [`webhook`]: the channels.

pub mod channel;
pub mod email;
pub mod env;
pub mod error;
pub mod message;
pub mod notifier;
pub mod settings;
pub mod sms;
pub mod storm;
pub mod webhook;
