//! Payload inspection: what the sampled segments say, as opposed to how
//! many packets there are.
//!
//! - [`http`]: an HTTP/1.x request from one (possibly truncated) segment.
//! - [`dns`]: DNS messages over UDP or TCP.
//! - [`tls`]: the TLS ClientHello's server name and version.
//! - [`tls_server`]: the server's hello and certificates.
//! - [`app_proto`]: the application protocol a flow speaks, by content.
//! - [`stream`]: the first bytes of each TCP direction, put in order.
//! - [`rules`]: the Suricata rule language, the part of it nta implements.
//! - [`matcher`]: a prefilter on each rule's fast pattern, then the rule whole.
//! - [`threshold`]: `threshold` and `detection_filter`, tracked per rule.
//! - [`flowbits`]: the names rules set on flows and others test.
//! - [`ip_only`]: rules on addresses alone, looked up once per new flow.
//! - [`dns_tunnel`]: per-source heuristics for data smuggled through DNS names.
//! - [`excerpt`]: bounded, escaped views of attacker bytes for alerts.
//!
//! No I/O beyond reading a rules file: the run loop hands samples in as
//! [`Inspected`] and turns [`Match`]es and [`dns_tunnel::TunnelFinding`]s into
//! alerts, so all of this is unit-tested without a kernel.
//!
//! The kernel samples single segments; [`stream`] puts the first few
//! kilobytes of each direction back together, so that a request whose
//! headers span segments is parsed and matched whole. Past those, contents
//! are matched segment by segment.

pub mod app_proto;
pub mod dns;
pub mod dns_tunnel;
pub mod excerpt;
pub mod flowbits;
pub mod http;
mod inspected;
pub mod ip_only;
pub mod matcher;
pub mod rules;
pub mod stream;
pub mod threshold;
pub mod tls;
pub mod tls_server;

pub use app_proto::AppProto;
pub use inspected::{Inspected, Transport};
pub use matcher::{Match, Matcher};
pub use rules::{Rule, RuleError, RuleSet, check, default_rules, load_file, parse_rules};

/// Makes room in `table`, which holds at most `max` entries, each last
/// used at `used(entry)`: drops those idle for `idle` or more at `now`,
/// then, if it is still full, the least recently used eighth. A scan per
/// eighth rather than bookkeeping on every use.
fn make_room<K, V>(
    table: &mut std::collections::HashMap<K, V>,
    max: usize,
    now: std::time::Instant,
    idle: std::time::Duration,
    used: impl Fn(&V) -> std::time::Instant,
) {
    table.retain(|_, v| now.saturating_duration_since(used(v)) < idle);
    if table.len() >= max {
        let mut times: Vec<std::time::Instant> = table.values().map(&used).collect();
        let (_, cutoff, _) = times.select_nth_unstable(table.len() / 8);
        let cutoff = *cutoff;
        table.retain(|_, v| used(v) > cutoff);
    }
}

/// A fixed stream of pseudo-random numbers (xorshift64 from `seed`), for
/// the tests that feed the parsers noise.
#[cfg(test)]
fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
