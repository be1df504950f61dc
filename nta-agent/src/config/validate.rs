//! Ranges and consistency checks that serde cannot express. Each bound is a
//! named constant saying why it is there.

use std::{path::Path, time::Duration};

use super::{
    ClassRates, Config, ConfigError, Flood, Mitigate, Notify, Override, PortScan, RatesOverride,
    StoreSettings, Sweep, SynFlood, Volumetric, locate,
};

/// Shortest detection window. The agent reads the kernel's counters at most
/// every 100 ms (`--interval`), so a shorter window could not be measured.
const MIN_WINDOW: Duration = Duration::from_millis(100);
/// Longest detection window. A window is how long a source's ports are
/// remembered; past an hour that memory grows with every passing scanner,
/// and scans that slow are a job for log analysis.
const MAX_WINDOW: Duration = Duration::from_secs(3600);
/// Shortest quiet period: below one second, one late counter read would split
/// an ongoing attack into several incidents.
const MIN_QUIET: Duration = Duration::from_secs(1);
/// Longest quiet period: an hour-long silence is a new attack, not a pause.
const MAX_QUIET: Duration = Duration::from_secs(3600);
/// Per-second history range: under a minute there is nothing to look back on,
/// over a day (86 400 rows a series) the per-minute history serves better.
const RETENTION_SECONDS: (Duration, Duration) =
    (Duration::from_secs(60), Duration::from_secs(86_400));
/// Per-minute history range: at least as long as an incident may plausibly be
/// investigated, at most a year plus a month for year-on-year comparisons
/// (576 000 rows a series).
const RETENTION_MINUTES: (Duration, Duration) =
    (Duration::from_secs(3600), Duration::from_secs(400 * 86_400));
/// Most distinct ports a port-scan rule can count to: the kernel's sketch
/// has 512 bits and a threshold must sit well below its saturation (~3 200),
/// where the estimate is still within a few percent.
const MAX_PORTS: u32 = 400;
/// Most distinct hosts the sweep rule can count to: the same 512-bit
/// sketch, whose estimate at 1 000 values (439 bits set) is still within
/// about 5 %.
const MAX_HOSTS: u32 = 1000;
/// Messages per channel per minute: at least one (a digest must get
/// through), at most one a second, past which a channel is a firehose.
const MAX_PER_MINUTE: (u32, u32) = (1, 60);
/// Attempts per message: one (no retry) to ten; with the doubling backoff,
/// ten attempts already span minutes.
const ATTEMPTS: (u32, u32) = (1, 10);
/// Wait before a retry: long enough for a server to recover from a blip,
/// short enough that an alert is not late by an hour after a few doublings.
const RETRY_BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(300));
/// A channel's timeout per attempt.
const NOTIFY_TIMEOUT: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(300));

/// A value that failed validation, before it is located in the text.
#[derive(Debug)]
pub(super) struct Problem {
    key: String,
    message: String,
}

impl Problem {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }

    pub(super) fn into_error(self, text: &str, path: &Path) -> ConfigError {
        ConfigError::Invalid {
            path: path.to_owned(),
            location: locate::value_of(text, &self.key),
            key: self.key,
            message: self.message,
        }
    }
}

impl Config {
    /// Checks what parsing cannot: ranges, and overrides that clash.
    pub(super) fn validate(&self) -> Result<(), Problem> {
        validate_port_scan(&self.port_scan)?;
        validate_sweep(&self.sweep)?;
        validate_syn_flood("syn_flood", &self.syn_flood)?;
        validate_volumetric("volumetric", &self.volumetric)?;
        validate_flood(&self.flood)?;
        duration_in(
            "incidents.quiet_period",
            self.incidents.quiet_period,
            MIN_QUIET,
            MAX_QUIET,
        )?;
        validate_store(&self.store)?;
        let (min, max) = FLOW_TIMEOUT;
        duration_in("flows.idle_timeout", self.flows.idle_timeout, min, max)?;
        duration_in("flows.active_timeout", self.flows.active_timeout, min, max)?;
        let (min, max) = FLOW_TABLE_SIZE;
        if !(min..=max).contains(&self.flows.table_size) {
            return Err(Problem::new(
                "flows.table_size",
                format!(
                    "must be between {min} and {max} flows, got {}",
                    self.flows.table_size
                ),
            ));
        }
        if self.sampling.max_per_sec == 0 && self.sampling.enabled {
            return Err(Problem::new(
                "sampling.max_per_sec",
                "must be at least 1 (to sample nothing, set enabled = false)",
            ));
        }
        self.dns_tunnel
            .detector()
            .validate()
            .map_err(|message| Problem::new("dns_tunnel", message))?;
        for (i, o) in self.overrides.iter().enumerate() {
            validate_override(i, o, &self.overrides[..i])?;
        }
        validate_notify(&self.notify)?;
        validate_mitigate(&self.mitigate)?;
        validate_eve(&self.eve)?;
        self.validate_vars()
    }

    /// Each rule variable expands (no unknown or cyclic names) to an
    /// address or a port field.
    fn validate_vars(&self) -> Result<(), Problem> {
        use crate::payload::rules::net;
        let vars = self.rule_vars();
        for (name, value) in &self.vars {
            let key = format!("vars.{name}");
            let text = vars.expand(value).map_err(|m| Problem::new(&key, m))?;
            if let (Err(as_addresses), Err(_)) = (net::addresses(&text), net::ports(&text)) {
                return Err(Problem::new(
                    &key,
                    format!("`{value}` is neither addresses nor ports: {as_addresses}"),
                ));
            }
        }
        Ok(())
    }
}

/// A rotated file needs a date modifier in its name, or every turn would
/// reopen the same file; the modifiers must be ones strftime knows.
fn validate_eve(eve: &super::Eve) -> Result<(), Problem> {
    use super::eve::{expand_date, has_date_modifier};
    if let Some(file) = &eve.file {
        expand_date(file, &jiff::ZonedDateTime::now()).map_err(|m| Problem::new("eve.file", m))?;
    }
    if eve.rotate_interval.is_some() {
        match &eve.file {
            None => {
                return Err(Problem::new(
                    "eve.rotate_interval",
                    "rotates eve.file, which is not set",
                ));
            }
            Some(file) if !has_date_modifier(file) => {
                return Err(Problem::new(
                    "eve.file",
                    format!(
                        "{} has no date modifier, so each rotation would reopen the same file; \
                         name it e.g. eve-%Y-%m-%d-%H%M.json",
                        file.display()
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Automatic entries: at least one, and at most half the kernel's
/// blocklist, so that there is always room for blocks made by hand.
const MAX_AUTO_ENTRIES: u32 = nta_common::maps::BLOCKLIST_MAX_ENTRIES / 2;
/// How long an automatic block may last.
const MITIGATE_TTL: (Duration, Duration) =
    (Duration::from_secs(10), Duration::from_secs(30 * 86_400));

fn validate_mitigate(m: &Mitigate) -> Result<(), Problem> {
    use crate::alert::AlertKind;
    if !(1..=MAX_AUTO_ENTRIES).contains(&m.max_entries) {
        return Err(Problem::new(
            "mitigate.max_entries",
            format!(
                "must be between 1 and {MAX_AUTO_ENTRIES}, got {}",
                m.max_entries
            ),
        ));
    }
    let (min, max) = MITIGATE_TTL;
    duration_in("mitigate.ttl", m.ttl, min, max)?;
    for kind in &m.kinds {
        let why = match kind {
            AlertKind::SynFlood => {
                "a SYN flood's sources may be spoofed: blocking them would block innocent addresses"
            }
            AlertKind::DnsTunnel => {
                "a DNS tunnel's source is usually a resolver that serves everyone"
            }
            AlertKind::UdpFlood
            | AlertKind::IcmpFlood
            | AlertKind::TcpFlood
            | AlertKind::FragmentFlood
            | AlertKind::TrafficFlood => {
                "a flood on one host comes from sources that may be spoofed: blocking them \
                 would block innocent addresses"
            }
            _ => continue,
        };
        return Err(Problem::new(
            "mitigate.kinds",
            format!("cannot block the source of {kind}: {why}"),
        ));
    }
    Ok(())
}

fn validate_notify(n: &Notify) -> Result<(), Problem> {
    let in_range = |key: &str, value: u32, (min, max): (u32, u32)| {
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(Problem::new(
                key,
                format!("must be between {min} and {max}, got {value}"),
            ))
        }
    };
    in_range("notify.max_per_minute", n.max_per_minute, MAX_PER_MINUTE)?;
    in_range("notify.attempts", n.attempts, ATTEMPTS)?;
    let (min, max) = RETRY_BACKOFF;
    duration_in("notify.retry_backoff", n.retry_backoff, min, max)?;
    let (min, max) = NOTIFY_TIMEOUT;
    for (key, timeout) in [
        ("notify.email.timeout", n.email.timeout),
        ("notify.sms.timeout", n.sms.timeout),
        ("notify.webhook.timeout", n.webhook.timeout),
    ] {
        if let Some(timeout) = timeout {
            duration_in(key, timeout, min, max)?;
        }
    }
    Ok(())
}

fn validate_port_scan(p: &PortScan) -> Result<(), Problem> {
    ports("port_scan.fast_ports", p.fast_ports)?;
    duration_in(
        "port_scan.fast_window",
        p.fast_window,
        MIN_WINDOW,
        MAX_WINDOW,
    )?;
    if p.weighted_score == 0 {
        return Err(Problem::new(
            "port_scan.weighted_score",
            "must be at least 1 (0 would flag every packet)",
        ));
    }
    duration_in(
        "port_scan.weighted_window",
        p.weighted_window,
        MIN_WINDOW,
        MAX_WINDOW,
    )?;
    ports("port_scan.slow_ports", p.slow_ports)?;
    duration_in(
        "port_scan.slow_window",
        p.slow_window,
        MIN_WINDOW,
        MAX_WINDOW,
    )
}

fn validate_sweep(s: &Sweep) -> Result<(), Problem> {
    if s.hosts == 0 || s.hosts > MAX_HOSTS {
        return Err(Problem::new(
            "sweep.hosts",
            format!(
                "must be between 1 and {MAX_HOSTS} hosts, got {} (to turn sweeps off, set enabled = false)",
                s.hosts
            ),
        ));
    }
    Ok(())
}

fn validate_syn_flood(at: &str, f: &SynFlood) -> Result<(), Problem> {
    rate(&format!("{at}.dst_host_syn_rate"), f.dst_host_syn_rate)?;
    mbps(&format!("{at}.dst_host_mbps"), f.dst_host_mbps)?;
    rate(&format!("{at}.dst_port_syn_rate"), f.dst_port_syn_rate)
}

fn validate_volumetric(at: &str, v: &Volumetric) -> Result<(), Problem> {
    rate(&format!("{at}.syn_rate"), v.syn_rate)?;
    rate(&format!("{at}.udp_rate"), v.udp_rate)?;
    rate(&format!("{at}.icmp_rate"), v.icmp_rate)?;
    rate(&format!("{at}.rst_rate"), v.rst_rate)?;
    rate(&format!("{at}.ack_rate"), v.ack_rate)
}

fn validate_flood(f: &Flood) -> Result<(), Problem> {
    for (class, rates) in f.classes() {
        let ClassRates { pps: p, mbps: m } = rates;
        let at = format!("flood.{}", class.name());
        pps(&format!("{at}.pps"), p)?;
        mbps(&format!("{at}.mbps"), m)?;
    }
    burst("flood.burst", f.burst)
}

/// A burst allowance: 0 (off) or a multiple of at least 1, since a burst
/// window's count under its threshold's rate is no flood.
fn burst(key: &str, value: f64) -> Result<(), Problem> {
    if !value.is_finite() || (value != 0.0 && value < 1.0) {
        return Err(Problem::new(
            key,
            format!("must be a multiple of the rates of at least 1 (or 0 for off), got {value}"),
        ));
    }
    Ok(())
}

/// Flow timeouts: the table is walked every second at most, and a flow
/// record a day late is no record.
/// The kernel flow table's size: a table smaller than this is flushed by
/// any busy host, and past the upper bound its slots (96 bytes per CPU
/// each) take gigabytes on a large machine.
const FLOW_TABLE_SIZE: (u32, u32) = (1_024, 4_194_304);
const FLOW_TIMEOUT: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(86_400));

fn validate_store(s: &StoreSettings) -> Result<(), Problem> {
    let (min, max) = RETENTION_SECONDS;
    duration_in("store.retention_seconds", s.retention_seconds, min, max)?;
    let (min, max) = RETENTION_MINUTES;
    duration_in("store.retention_minutes", s.retention_minutes, min, max)
}

fn validate_override(i: usize, o: &Override, earlier: &[Override]) -> Result<(), Problem> {
    let at = format!("override[{i}]");
    if let Some(first) = earlier.iter().position(|e| e.network == o.network) {
        return Err(Problem::new(
            format!("{at}.network"),
            format!(
                "{} is already overridden by override[{first}]; merge the two",
                o.network
            ),
        ));
    }
    if o.syn_flood.is_none() && o.volumetric.is_none() && o.flood.is_none() {
        return Err(Problem::new(
            at,
            format!(
                "the override for {} changes nothing: give it a syn_flood, volumetric or flood table",
                o.network
            ),
        ));
    }
    if let Some(f) = &o.syn_flood {
        let at = format!("{at}.syn_flood");
        optional_rate(&format!("{at}.dst_host_syn_rate"), f.dst_host_syn_rate)?;
        if let Some(m) = f.dst_host_mbps {
            mbps(&format!("{at}.dst_host_mbps"), m)?;
        }
        optional_rate(&format!("{at}.dst_port_syn_rate"), f.dst_port_syn_rate)?;
    }
    if let Some(v) = &o.volumetric {
        let at = format!("{at}.volumetric");
        optional_rate(&format!("{at}.syn_rate"), v.syn_rate)?;
        optional_rate(&format!("{at}.udp_rate"), v.udp_rate)?;
        optional_rate(&format!("{at}.icmp_rate"), v.icmp_rate)?;
        optional_rate(&format!("{at}.rst_rate"), v.rst_rate)?;
        optional_rate(&format!("{at}.ack_rate"), v.ack_rate)?;
    }
    if let Some(f) = &o.flood {
        for (class, rates) in f.classes() {
            let Some(RatesOverride { pps: p, mbps: m }) = rates else {
                continue;
            };
            let at = format!("{at}.flood.{class}");
            p.map_or(Ok(()), |p| pps(&format!("{at}.pps"), p))?;
            m.map_or(Ok(()), |m| mbps(&format!("{at}.mbps"), m))?;
        }
        if let Some(b) = f.burst {
            burst(&format!("{at}.flood.burst"), b)?;
        }
    }
    Ok(())
}

/// A flood's packet rate: 0 turns its rule off; anything else must be a
/// positive, finite number (NaN would never fire, and silently).
fn pps(key: &str, value: f64) -> Result<(), Problem> {
    if !value.is_finite() || value < 0.0 {
        return Err(Problem::new(
            key,
            format!(
                "must be a number of packets per second greater than 0 (or 0 for off), got {value}"
            ),
        ));
    }
    Ok(())
}

/// A flood's bit rate in Mbit/s, with the same rules as [`pps`].
fn mbps(key: &str, value: f64) -> Result<(), Problem> {
    if !value.is_finite() || value < 0.0 {
        return Err(Problem::new(
            key,
            format!("must be a number of Mbit/s greater than 0 (or 0 for off), got {value}"),
        ));
    }
    Ok(())
}

fn rate(key: &str, value: f64) -> Result<(), Problem> {
    // TOML allows `nan` and `inf`: NaN compares false with everything, so it
    // would silently never fire, and `inf` never fires by design, which is
    // what `enabled` is for.
    if !value.is_finite() || value <= 0.0 {
        return Err(Problem::new(
            key,
            format!(
                "must be a number of packets per second greater than 0, got {value} \
                 (to turn the detector off, set enabled = false)"
            ),
        ));
    }
    Ok(())
}

fn optional_rate(key: &str, value: Option<f64>) -> Result<(), Problem> {
    value.map_or(Ok(()), |value| rate(key, value))
}

fn ports(key: &str, value: u32) -> Result<(), Problem> {
    if value == 0 || value > MAX_PORTS {
        return Err(Problem::new(
            key,
            format!("must be between 1 and {MAX_PORTS} ports, got {value}"),
        ));
    }
    Ok(())
}

fn duration_in(key: &str, value: Duration, min: Duration, max: Duration) -> Result<(), Problem> {
    if value < min || value > max {
        return Err(Problem::new(
            key,
            format!(
                "must be between {} and {}, got {}",
                super::show(min),
                super::show(max),
                super::show(value)
            ),
        ));
    }
    Ok(())
}
