//! `[eve]`: where EVE JSON goes — a file, a unix socket, Redis — and which
//! events, with Suricata's names for each.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Deserializer, de};

/// The EVE outputs; every one gets the same events. `--eve` on the command
/// line wins over `file`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Eve {
    /// Appended to, created if missing; reopened on SIGHUP, as logrotate's
    /// `postrotate` expects. May hold strftime date modifiers
    /// (`eve-%Y-%m-%d-%H.json`), expanded in local time whenever it is
    /// opened.
    pub file: Option<PathBuf>,
    /// A new `file` at every turn of this interval (`minute`, `hour`, `day`
    /// or a length such as `30s`, `15m`, `6h`), as Suricata's
    /// `rotate-interval`; `file` must then hold a date modifier that tells
    /// the files apart.
    #[serde(deserialize_with = "rotate_interval")]
    pub rotate_interval: Option<Duration>,
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
            rotate_interval: None,
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

impl RedisMode {
    /// Its name in the config file.
    pub const fn name(self) -> &'static str {
        match self {
            RedisMode::List => "list",
            RedisMode::Rpush => "rpush",
            RedisMode::Publish => "publish",
            RedisMode::Stream => "stream",
        }
    }
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

/// The shortest rotation: a file a second is already more than any
/// shipper wants.
pub const MIN_ROTATE_INTERVAL: Duration = Duration::from_secs(1);

/// `minute`, `hour`, `day`, or a length with its unit (`30s`, `15m`, `6h`,
/// `1d`), as Suricata's `rotate-interval` takes them.
pub fn rotate_interval_of(text: &str) -> Result<Duration, String> {
    let interval = match text {
        "minute" => Duration::from_secs(60),
        "hour" => Duration::from_secs(3_600),
        "day" => Duration::from_secs(86_400),
        _ => humantime::parse_duration(text).map_err(|e| {
            format!(
                r#"invalid rotate_interval "{text}": {e}; write "minute", "hour", "day" or a length such as "30s" or "6h""#
            )
        })?,
    };
    if interval < MIN_ROTATE_INTERVAL {
        return Err(format!(
            r#"rotate_interval "{text}" is shorter than a second"#
        ));
    }
    Ok(interval)
}

fn rotate_interval<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(deserializer)?;
    rotate_interval_of(&text)
        .map(Some)
        .map_err(de::Error::custom)
}

/// Whether `path` holds a strftime date modifier (`%Y`, `%s`, …; `%%` is a
/// percent sign).
pub fn has_date_modifier(path: &Path) -> bool {
    let text = path.to_string_lossy();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '%' && chars.next().is_some_and(|next| next != '%') {
            return true;
        }
    }
    false
}

/// `path` with its date modifiers expanded for `at`; itself when it has
/// none.
pub fn expand_date(path: &Path, at: &jiff::ZonedDateTime) -> Result<PathBuf, String> {
    if !path.to_string_lossy().contains('%') {
        return Ok(path.to_owned());
    }
    let pattern = path.to_str().ok_or_else(|| {
        format!(
            "{} is not UTF-8, so its date modifiers cannot be read",
            path.display()
        )
    })?;
    jiff::fmt::strtime::format(pattern, at)
        .map(PathBuf::from)
        .map_err(|e| format!("cannot expand the date modifiers of {pattern}: {e}"))
}
