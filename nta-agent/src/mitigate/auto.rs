//! Automatic mitigation: the source of a `volumetric`, `port_scan` or
//! `signature` incident is blocked for a while, within safe limits. Off by
//! default; `--dry-run` shows what it would do without doing it.

use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};
use tracing::{info, warn};

use super::blocklist::Blocklist;
use crate::{
    alert::{Alert, AlertEvent, AlertKind},
    block::{Block, Decision, MAX_REASON, Origin, Outcome},
};

/// What automatic mitigation does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AutoPolicy {
    /// Block for real (`--mitigate`).
    pub enabled: bool,
    /// Decide and report, but block nothing (`--dry-run`).
    pub dry_run: bool,
    pub ttl: SignedDuration,
    /// Most automatic entries at once.
    pub max_entries: usize,
    pub kinds: Vec<AlertKind>,
}

impl AutoPolicy {
    pub fn active(&self) -> bool {
        self.enabled || self.dry_run
    }

    /// How long an automatic entry lasts, as the log lines and reasons say it.
    fn ttl_text(&self) -> humantime::FormattedDuration {
        humantime::format_duration(self.ttl.unsigned_abs())
    }
}

/// The operator's line about blocking `block` for `ttl`, done or only
/// pretended (dry run): the same fields either way.
macro_rules! block_line {
    ($level:ident, $message:literal, $block:expr, $ttl:expr) => {
        $level!(
            target: "nta::mitigate",
            message = $message,
            cidr = %$block.cidr,
            ttl = %$ttl,
            reason = %$block.reason,
        )
    };
}

/// Acts on newly opened incidents. Only their source is blocked, and only
/// for the kinds where the source is the attacker: a SYN flood's sources
/// may be spoofed, so blocking them would block innocent addresses.
pub fn on_events(policy: &AutoPolicy, events: &[AlertEvent], list: &mut Blocklist, now: Timestamp) {
    if !policy.active() {
        return;
    }
    for event in events {
        let AlertEvent::Opened(alert) = event else {
            continue;
        };
        if !policy.kinds.contains(&alert.kind) {
            continue;
        }
        let Some(src) = alert.src else { continue };
        let cidr = IpNet::from(src);
        if list.contains(&cidr) {
            continue;
        }
        let block = Block {
            cidr,
            reason: format!("{} #{}: {}", alert.kind, alert.id, short(alert)),
            origin: Origin::Auto,
            alert_id: Some(alert.id),
            created: now,
            expires: Some(now + policy.ttl),
        };
        let skipped = match decide(policy, list, &block) {
            Ok(()) => match list.add(block.clone()) {
                Ok(_) => {
                    block_line!(warn, "Blocked", block, policy.ttl_text());
                    continue;
                }
                Err(error) => {
                    warn!(target: "nta::mitigate", message = "Could not block", %cidr, %error);
                    (Outcome::Skipped, error.to_string())
                }
            },
            Err(skipped) => skipped,
        };
        list.note(Decision {
            at: now,
            cidr,
            alert_id: Some(alert.id),
            outcome: skipped.0,
            reason: skipped.1,
        });
    }
}

/// Whether `block` may be added: `Err((outcome, reason))` when it is
/// refused, or only pretended (dry run).
fn decide(policy: &AutoPolicy, list: &Blocklist, block: &Block) -> Result<(), (Outcome, String)> {
    let cidr = block.cidr;
    if let Some(why) = list.protected().refusal(&cidr) {
        info!(target: "nta::mitigate", message = "Not blocking", %cidr, reason = %why);
        return Err((Outcome::Skipped, why));
    }
    if list.auto_entries() >= policy.max_entries {
        let why = format!(
            "the cap of {} automatic entries is reached",
            policy.max_entries
        );
        warn!(target: "nta::mitigate", message = "Not blocking", %cidr, reason = %why);
        return Err((Outcome::Skipped, why));
    }
    if policy.dry_run {
        let ttl = policy.ttl_text();
        block_line!(info, "Dry run: would block", block, ttl);
        return Err((Outcome::WouldBlock, format!("for {ttl}: {}", block.reason)));
    }
    Ok(())
}

/// The alert's message, cut to fit a reason.
fn short(alert: &Alert) -> String {
    let limit = MAX_REASON - 40;
    if alert.message.chars().count() <= limit {
        return alert.message.clone();
    }
    let mut text: String = alert.message.chars().take(limit - 1).collect();
    text.push('…');
    text
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        alert::{Alert, fixtures},
        mitigate::blocklist::{
            Protected,
            tests::{FakeKernel, block},
        },
        store::tests::temp_store,
    };

    fn policy() -> AutoPolicy {
        AutoPolicy {
            enabled: true,
            dry_run: false,
            ttl: SignedDuration::from_mins(10),
            max_entries: 2,
            kinds: vec![
                AlertKind::Volumetric,
                AlertKind::PortScan,
                AlertKind::Signature,
            ],
        }
    }

    fn list(protected: Protected) -> (tempfile::TempDir, Blocklist, FakeKernel) {
        let (dir, store) = temp_store();
        let kernel = FakeKernel::default();
        let (list, _) = Blocklist::restore(
            Box::new(kernel.clone()),
            Arc::new(store),
            protected,
            Timestamp::UNIX_EPOCH,
        )
        .unwrap();
        (dir, list, kernel)
    }

    fn opened(id: u64, kind: AlertKind, src: &str) -> AlertEvent {
        AlertEvent::Opened(Alert {
            src: Some(src.parse().unwrap()),
            ..fixtures::alert(id, kind)
        })
    }

    #[test]
    fn sources_of_the_chosen_kinds_are_blocked_for_the_ttl() {
        let (_dir, mut list, kernel) = list(Protected::default());
        let now: Timestamp = "2026-11-25T10:00:00Z".parse().unwrap();
        on_events(
            &policy(),
            &[
                opened(1, AlertKind::Volumetric, "198.18.0.2"),
                // Spoofable sources: never blocked automatically.
                opened(2, AlertKind::SynFlood, "198.18.0.3"),
                // Already blocked: nothing new.
                opened(3, AlertKind::PortScan, "198.18.0.2"),
            ],
            &mut list,
            now,
        );
        let views = list.list().unwrap();
        assert_eq!(views.len(), 1);
        let b = &views[0].block;
        assert_eq!(b.cidr.to_string(), "198.18.0.2/32");
        assert_eq!(b.origin, Origin::Auto);
        assert_eq!(b.alert_id, Some(1));
        assert_eq!(b.expires, Some(now + SignedDuration::from_mins(10)));
        assert!(b.reason.starts_with("volumetric #1: "), "{}", b.reason);
        assert_eq!(kernel.entries().len(), 1);
    }

    #[test]
    fn protected_sources_and_the_cap_are_respected_and_reported() {
        let protected = Protected {
            allowlist: vec!["192.0.2.0/24".parse().unwrap()],
            ..Protected::default()
        };
        let (_dir, mut list, _) = list(protected);
        list.add(block("198.51.100.1", None)).unwrap(); // manual: not capped
        on_events(
            &policy(),
            &[
                opened(1, AlertKind::PortScan, "192.0.2.5"),
                opened(2, AlertKind::PortScan, "127.0.0.1"),
                opened(3, AlertKind::PortScan, "198.18.0.2"),
                opened(4, AlertKind::PortScan, "198.18.0.3"),
                opened(5, AlertKind::PortScan, "198.18.0.4"),
            ],
            &mut list,
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(list.auto_entries(), 2);
        let decisions = list.decisions();
        let reasons: Vec<_> = decisions.iter().rev().map(|d| d.reason.as_str()).collect();
        assert_eq!(reasons.len(), 3, "{decisions:?}");
        assert!(reasons[0].contains("allowlist"), "{}", reasons[0]);
        assert!(reasons[1].contains("loopback"), "{}", reasons[1]);
        assert!(reasons[2].contains("cap of 2"), "{}", reasons[2]);
        assert!(decisions.iter().all(|d| d.outcome == Outcome::Skipped));
    }

    /// One incident opened under `policy`: how many entries reached the
    /// kernel, and the decisions noted.
    fn one_incident(policy: &AutoPolicy, event: AlertEvent) -> (usize, Vec<Decision>) {
        let (_dir, mut list, kernel) = list(Protected::default());
        on_events(policy, &[event], &mut list, Timestamp::UNIX_EPOCH);
        (kernel.entries().len(), list.decisions())
    }

    #[test]
    fn a_dry_run_blocks_nothing_and_says_what_it_would_do() {
        let policy = AutoPolicy {
            enabled: false,
            dry_run: true,
            ..policy()
        };
        let (entries, decisions) =
            one_incident(&policy, opened(7, AlertKind::Signature, "198.18.0.2"));
        assert_eq!(entries, 0);
        assert_eq!(decisions.len(), 1);
        assert_eq!(decisions[0].outcome, Outcome::WouldBlock);
        assert!(
            decisions[0].reason.starts_with("for 10m: signature #7"),
            "{}",
            decisions[0].reason
        );
    }

    #[test]
    fn nothing_happens_when_off() {
        let policy = AutoPolicy {
            enabled: false,
            ..policy()
        };
        let (entries, decisions) =
            one_incident(&policy, opened(1, AlertKind::Volumetric, "198.18.0.2"));
        assert_eq!(entries, 0);
        assert!(decisions.is_empty());
    }
}
