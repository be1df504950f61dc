//! `[eve]`: where EVE JSON goes — a file, a unix socket, Redis — and which
//! events, with Suricata's names for each.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, de};

/// The EVE outputs; every one gets the same events. `--eve` on the command
/// line wins over `file`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Eve {
    /// Appended to, created if missing; reopened on SIGHUP, as logrotate's
    /// `postrotate` expects.
    pub file: Option<PathBuf>,
    /// The event types written: `alert`, `flow`, `stats`.
    pub types: Vec<EventType>,
    /// A unix socket a reader listens on (Suricata's `unix_dgram` and
    /// `unix_stream`).
    pub unix_socket: Option<PathBuf>,
    pub unix_socket_type: SocketType,
    /// Also to the local syslog (`/dev/log`), facility `local5`, as
    /// Suricata's syslog output.
    pub syslog: bool,
    /// A Redis server, as `redis://HOST:PORT[/DB]`, `rediss://…` or
    /// `redis+unix:///PATH`.
    #[serde(deserialize_with = "redis_url")]
    pub redis: Option<String>,
    pub redis_mode: RedisMode,
    /// The list, channel or stream written to.
    pub redis_key: String,
}

impl Default for Eve {
    fn default() -> Self {
        Self {
            file: None,
            types: EventType::ALL.to_vec(),
            unix_socket: None,
            unix_socket_type: SocketType::Dgram,
            syslog: false,
            redis: None,
            redis_mode: RedisMode::List,
            redis_key: "nta".into(),
        }
    }
}

/// An EVE event type nta writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Alert,
    Flow,
    Stats,
}

impl EventType {
    pub const ALL: [EventType; 3] = [EventType::Alert, EventType::Flow, EventType::Stats];

    /// The `event_type` field's value.
    pub const fn name(self) -> &'static str {
        match self {
            EventType::Alert => "alert",
            EventType::Flow => "flow",
            EventType::Stats => "stats",
        }
    }
}

/// How events go over the unix socket: one datagram each, or one line each
/// on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketType {
    Dgram,
    Stream,
}

/// How events go into Redis, as Suricata's redis output names it: `list`
/// (`LPUSH`, Suricata's default), `rpush`, `publish` to a channel, or
/// `stream` (`XADD key * eve JSON`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    #[serde(alias = "lpush")]
    List,
    Rpush,
    #[serde(alias = "channel")]
    Publish,
    #[serde(alias = "xadd")]
    Stream,
}

/// Checks a Redis address as the `redis` crate reads it, so that a typo
/// fails at start with the key's line rather than at the first event.
pub fn redis(text: &str) -> Result<String, String> {
    redis::Client::open(text)
        .map(|_| text.to_owned())
        .map_err(|e| {
            format!(r#"invalid Redis address "{text}": {e}; write it as "redis://127.0.0.1:6379""#)
        })
}

fn redis_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(deserializer)?;
    redis(&text).map(Some).map_err(de::Error::custom)
}
