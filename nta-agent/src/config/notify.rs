//! `[notify]`: where alerts are sent, as the config file says it. The
//! environment (and a `.env` file) can set or override the channels' keys;
//! [`crate::notify::settings::resolve`] merges both and checks the result.

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;

use super::de;
use crate::alert::{AlertKind, Severity};

/// Settings shared by every channel, and the channels.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Notify {
    /// Base of the links to alerts in messages, e.g.
    /// `"https://nta.example.org:3000"`; default: the API's address.
    pub dashboard_url: Option<String>,
    /// Most messages a channel sends in any minute; what comes past it is
    /// held back and summed up in one digest when the minute allows.
    pub max_per_minute: u32,
    /// Attempts per message when a server fails in a way worth retrying
    /// (timeouts, refused connections, 5xx, SMTP 4xx).
    pub attempts: u32,
    /// Wait before the second attempt; each later one waits twice as long.
    #[serde(deserialize_with = "de::duration")]
    pub retry_backoff: Duration,
    pub email: EmailFile,
    pub sms: SmsFile,
    pub webhook: WebhookFile,
}

impl Default for Notify {
    fn default() -> Self {
        Notify {
            dashboard_url: None,
            // One message every ten seconds on average: enough for each
            // incident of a busy day, few enough for a phone at 3 am.
            max_per_minute: 6,
            attempts: 4,
            retry_backoff: Duration::from_secs(2),
            email: EmailFile::default(),
            sms: SmsFile::default(),
            webhook: WebhookFile::default(),
        }
    }
}

/// `[notify.email]`; each key may also come from `NTA_SMTP_*` / `NTA_MAIL_*`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailFile {
    pub host: Option<String>,
    pub port: Option<u16>,
    /// `none`, `starttls` or `tls`.
    pub tls: Option<String>,
    pub user: Option<String>,
    /// Better in `NTA_SMTP_PASSWORD` than in a file others may read.
    pub password: Option<String>,
    pub from: Option<String>,
    pub to: Option<Vec<String>>,
    pub ca_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "de::optional_duration")]
    pub timeout: Option<Duration>,
    /// `low`, `medium`, `high` or `critical`.
    pub min_severity: Option<Severity>,
    /// Only these kinds (any `AlertKind` name: `port_scan`, `syn_flood`,
    /// `udp_flood`, `reflection`, `volumetric`, ...); unset or empty: all.
    pub kinds: Option<Vec<AlertKind>>,
}

/// `[notify.sms]` (Twilio); each key may also come from `TWILIO_*` /
/// `ALERT_PHONE`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsFile {
    pub sid: Option<String>,
    /// Better in `TWILIO_TOKEN` than in a file others may read.
    pub token: Option<String>,
    pub from: Option<String>,
    pub to: Option<Vec<String>>,
    pub api_base: Option<String>,
    #[serde(default, deserialize_with = "de::optional_duration")]
    pub timeout: Option<Duration>,
    /// `low`, `medium`, `high` or `critical`.
    pub min_severity: Option<Severity>,
    /// Only these kinds (any `AlertKind` name: `port_scan`, `syn_flood`,
    /// `udp_flood`, `reflection`, `volumetric`, ...); unset or empty: all.
    pub kinds: Option<Vec<AlertKind>>,
}

/// `[notify.webhook]`; the URL may also come from `NTA_WEBHOOK_URL`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookFile {
    pub url: Option<String>,
    #[serde(default, deserialize_with = "de::optional_duration")]
    pub timeout: Option<Duration>,
    /// `low`, `medium`, `high` or `critical`.
    pub min_severity: Option<Severity>,
    /// Only these kinds (any `AlertKind` name: `port_scan`, `syn_flood`,
    /// `udp_flood`, `reflection`, `volumetric`, ...); unset or empty: all.
    pub kinds: Option<Vec<AlertKind>>,
}
