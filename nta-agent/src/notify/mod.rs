//! Notifications: a message per new incident and per closed one, by email
//! (SMTP, lettre), SMS (Twilio) and a JSON webhook, routed by severity and
//! kind, rate-limited per channel with digests, retried with backoff, and
//! never in the way of detection or storage.
//!
//! - [`settings`]: where each channel delivers.
//! - [`message`]: what a notification says.
//! - [`channel`]: what a channel offers the notifier.
//! - [`email`], [`sms`], [`webhook`]: the channels.
//! - [`env`]: the environment and `.env` file.
//! - [`notifier`]: routing, storm control, retries, counters.

pub mod channel;
pub mod cli;
pub mod email;
pub mod env;
pub mod error;
pub mod message;
pub mod notifier;
pub mod settings;
pub mod sms;
pub mod storm;
pub mod webhook;

use std::time::Duration;

use notifier::{Builder, Policy, STORM_WINDOW};
pub use notifier::{ChannelReport, Notifier, NotifyStats};
use settings::NotifySettings;

use self::{channel::Deliver, email::Email, error::ChannelError, sms::Sms, webhook::Webhook};

/// Starts the notifier with every configured channel; fails on the first
/// channel whose settings cannot work.
pub fn start(settings: &NotifySettings) -> Result<Notifier, ChannelError> {
    let mut builder = Builder::new(
        Policy {
            max_per_window: settings.max_per_minute,
            window: STORM_WINDOW,
            attempts: settings.attempts,
            backoff: settings.retry_backoff,
            origin: settings.origin.clone(),
        },
        secrets(settings),
    );
    if let Some((email, route)) = &settings.email {
        builder.channel(Email::new(email)?, route.clone());
    }
    if let Some((sms, route)) = &settings.sms {
        builder.channel(Sms::new(sms)?, route.clone());
    }
    if let Some((webhook, route)) = &settings.webhook {
        builder.channel(Webhook::new(webhook)?, route.clone());
    }
    Ok(builder.start())
}

/// One channel's answer to `notify test`.
#[derive(Debug)]
pub struct TestResult {
    pub channel: &'static str,
    /// Where it delivers, or what was configured when it could not start.
    pub target: String,
    pub outcome: Result<Duration, String>,
}

/// Sends one test message through every configured channel, once each (no
/// retry: the point is to see what fails), and reports each result.
pub async fn test(settings: &NotifySettings) -> Vec<TestResult> {
    let message = message::Message::test(&settings.origin);
    let secrets = secrets(settings);
    let mut results = Vec::new();
    if let Some((email, _)) = &settings.email {
        let target = format!("{} via {}:{}", email.to.join(", "), email.host, email.port);
        results.push(try_channel("email", target, Email::new(email), &message, &secrets).await);
    }
    if let Some((sms, _)) = &settings.sms {
        let target = sms.to.join(", ");
        results.push(try_channel("sms", target, Sms::new(sms), &message, &secrets).await);
    }
    if let Some((webhook, _)) = &settings.webhook {
        let target = webhook.url.clone();
        results
            .push(try_channel("webhook", target, Webhook::new(webhook), &message, &secrets).await);
    }
    results
}

async fn try_channel<C: Deliver>(
    name: &'static str,
    configured: String,
    channel: Result<C, ChannelError>,
    message: &message::Message,
    secrets: &[String],
) -> TestResult {
    let channel = match channel {
        Ok(channel) => channel,
        Err(error) => {
            return TestResult {
                channel: name,
                target: configured,
                outcome: Err(notifier::redact(&error.to_string(), secrets)),
            };
        }
    };
    let start = std::time::Instant::now();
    let outcome = channel
        .send(message, &mut channel::Delivered::default())
        .await
        .map(|()| start.elapsed())
        .map_err(|e| notifier::redact(&e.to_string(), secrets));
    TestResult {
        channel: name,
        target: channel.describe(),
        outcome,
    }
}

/// The passwords and tokens to keep out of logs and API output.
fn secrets(settings: &NotifySettings) -> Vec<String> {
    let mut secrets = Vec::new();
    if let Some(password) = settings
        .email
        .as_ref()
        .and_then(|(e, _)| e.password.as_ref())
    {
        secrets.push(password.expose().to_owned());
    }
    if let Some((sms, _)) = &settings.sms {
        secrets.push(sms.token.expose().to_owned());
    }
    secrets
}
