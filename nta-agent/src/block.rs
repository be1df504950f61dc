//! One blocklist entry: which sources, why, since when, until when; how
//! users write one; the API's answers about them, which the `block` command
//! reads back.

use std::net::IpAddr;

use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// Who put an entry there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A person, through the API, the CLI or the dashboard.
    Manual,
    /// Automatic mitigation, for an incident.
    Auto,
}

/// A blocked network: every packet from it is dropped in XDP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    /// Normalised: no host bits set.
    pub cidr: IpNet,
    /// Why, in a person's words or the incident's.
    pub reason: String,
    /// Who added it.
    pub origin: Origin,
    /// The incident an automatic entry is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<u64>,
    /// When it was added.
    pub created: Timestamp,
    /// When the agent removes it; `None`: until removed by hand.
    pub expires: Option<Timestamp>,
}

impl Block {
    /// Whether its time is up at `now`.
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires.is_some_and(|t| t <= now)
    }
}

/// An entry with what it dropped, as `GET /api/blocks` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockView {
    /// The entry itself, its fields inline.
    #[serde(flatten)]
    pub block: Block,
    /// Packets dropped since the entry was (re)loaded into the kernel.
    pub packets: u64,
    /// Bytes dropped, likewise.
    pub bytes: u64,
}

/// What became of an automatic decision that did not block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Dry run: it would have been blocked.
    WouldBlock,
    /// Refused: protected, over the cap, or the kernel or store failed.
    Skipped,
}

/// What automatic mitigation could not block or only pretended to (dry
/// run), for the API and the logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// When it was decided.
    pub at: Timestamp,
    /// The network it was about.
    pub cidr: IpNet,
    /// The incident it was for.
    pub alert_id: Option<u64>,
    /// Pretended or refused.
    pub outcome: Outcome,
    /// Why, or what a dry run would have done.
    pub reason: String,
}

/// Automatic mitigation's settings and use, as `GET /api/blocks` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoView {
    /// Blocking for real (`--mitigate`).
    pub enabled: bool,
    /// Deciding without blocking (`--dry-run`).
    pub dry_run: bool,
    /// How long an automatic entry lasts.
    pub ttl_secs: u64,
    /// Most automatic entries at once.
    pub max_entries: usize,
    /// Automatic entries now.
    pub entries: usize,
}

/// The answer to `GET /api/blocks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    /// Every entry, most specific first within a family.
    pub blocks: Vec<BlockView>,
    /// Recent automatic decisions that did not block, newest first.
    pub decisions: Vec<Decision>,
    /// Automatic mitigation.
    pub auto: AutoView,
}

/// The answer to `POST /api/blocks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Added {
    /// The entry as kept.
    pub block: Block,
}

/// The answer to `DELETE /api/blocks/{cidr}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Removed {
    /// The entry that was removed.
    pub removed: Block,
}

/// Longest reason kept: a sentence, not a document.
pub const MAX_REASON: usize = 200;
/// Longest time-to-live: a year; longer is "until removed".
const MAX_TTL_SECS: i64 = 366 * 86_400;

/// Why a requested entry is refused (a 400 naming the field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidBlock {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> InvalidBlock {
    InvalidBlock {
        field,
        message: message.into(),
    }
}

/// A network as a user writes it: CIDR, or one address (/32 or /128).
/// Host bits are an error rather than silently cleared: `10.1.2.3/16` is a
/// typo for the /16 or for the /32, and blocking 65 536 addresses by
/// mistake is not a small one.
pub fn parse_cidr(text: &str) -> Result<IpNet, InvalidBlock> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(addr));
    }
    let net: IpNet = text.parse().map_err(|_| {
        invalid(
            "cidr",
            format!(
                "`{text}` is not a network like 198.51.100.0/24 or 2001:db8::/48, or an address"
            ),
        )
    })?;
    if net.trunc() != net {
        return Err(invalid(
            "cidr",
            format!(
                "`{text}` has host bits set: write {} for the network or {} for the address alone",
                net.trunc(),
                IpNet::from(net.addr())
            ),
        ));
    }
    Ok(net)
}

/// A time-to-live like `10m`, `2h`, `1d`.
pub fn parse_ttl(text: &str) -> Result<SignedDuration, InvalidBlock> {
    let ttl = humantime::parse_duration(text.trim()).map_err(|e| {
        invalid(
            "ttl",
            format!("`{text}` is not a duration like 30s, 10m or 2h: {e}"),
        )
    })?;
    let secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    if !(1..=MAX_TTL_SECS).contains(&secs) {
        return Err(invalid(
            "ttl",
            format!("`{text}` must be between 1s and 366d (leave ttl out to block until removed)"),
        ));
    }
    Ok(SignedDuration::from_secs(secs))
}

/// A reason as given: trimmed, printable, bounded.
pub fn check_reason(reason: &str) -> Result<String, InvalidBlock> {
    let reason = reason.trim();
    if reason.chars().count() > MAX_REASON {
        return Err(invalid(
            "reason",
            format!("is longer than {MAX_REASON} characters"),
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err(invalid("reason", "contains control characters"));
    }
    Ok(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_and_addresses_parse_and_host_bits_are_refused() {
        assert_eq!(
            parse_cidr("198.18.0.2").unwrap().to_string(),
            "198.18.0.2/32"
        );
        assert_eq!(
            parse_cidr(" 198.18.0.0/24 ").unwrap().to_string(),
            "198.18.0.0/24"
        );
        assert_eq!(
            parse_cidr("2001:db8::1").unwrap().to_string(),
            "2001:db8::1/128"
        );
        assert_eq!(parse_cidr("2001:db8::/48").unwrap().prefix_len(), 48);
        let err = parse_cidr("10.1.2.3/16").unwrap_err();
        assert_eq!(err.field, "cidr");
        assert!(
            err.message.contains("10.1.0.0/16") && err.message.contains("10.1.2.3/32"),
            "{err}"
        );
        assert!(
            parse_cidr("example.org")
                .unwrap_err()
                .message
                .contains("`example.org`")
        );
        assert!(parse_cidr("10.0.0.0/33").is_err());
    }

    #[test]
    fn ttls_are_durations_within_a_year() {
        assert_eq!(parse_ttl("10m").unwrap(), SignedDuration::from_mins(10));
        assert_eq!(parse_ttl("2h").unwrap(), SignedDuration::from_hours(2));
        assert!(parse_ttl("0s").unwrap_err().message.contains("between"));
        assert!(parse_ttl("400d").is_err());
        assert!(parse_ttl("soon").unwrap_err().message.contains("`soon`"));
    }

    #[test]
    fn reasons_are_bounded_printable_text() {
        assert_eq!(check_reason("  flood  ").unwrap(), "flood");
        assert!(check_reason(&"x".repeat(MAX_REASON + 1)).is_err());
        assert!(check_reason("a\u{1b}[31mred").is_err());
    }

    #[test]
    fn expiry() {
        let now: Timestamp = "2026-11-25T10:00:00Z".parse().unwrap();
        let block = Block {
            cidr: parse_cidr("198.18.0.2").unwrap(),
            reason: "test".into(),
            origin: Origin::Manual,
            alert_id: None,
            created: now,
            expires: Some(now + SignedDuration::from_secs(60)),
        };
        assert!(!block.expired(now));
        assert!(block.expired(now + SignedDuration::from_secs(60)));
        assert!(
            !Block {
                expires: None,
                ..block
            }
            .expired(now + SignedDuration::from_hours(1000))
        );
    }
}
