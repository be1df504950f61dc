//! The TOML configuration: detection thresholds and windows, how long
//! incidents and history last, sources never alerted on, and per-network
//! threshold overrides.
//!
//! Every section and key is optional; no file at all means [`Config::default`].
//! A file is read in two passes: serde with `deny_unknown_fields` (so a typo
//! is an error, not a silently ignored key), then a validation pass for
//! ranges and consistency. Both report the file, line, column and key path of
//! the offending value.
//! `nta.example.toml` at the repository root lists every key with its default.

mod de;
mod error;
pub mod eve;
mod export;
mod flood;
mod locate;
mod notify;
mod validate;

#[cfg(test)]
mod tests;

use std::{fmt::Write as _, fs, net::IpAddr, path::Path, time::Duration};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use error::{ConfigError, Location};
pub use eve::{Eve, EventType, RedisMode, SocketType};
pub use export::{Export, collector};
pub use flood::{ClassRates, Flood, FloodOverride, RatesOverride};
pub use notify::{EmailFile, Notify, SmsFile, WebhookFile};

/// Everything the agent can be told by its config file; the default is what
/// runs without one.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// One source probing many ports.
    pub port_scan: PortScan,
    /// One source probing many hosts (horizontal scans, ping sweeps).
    pub sweep: Sweep,
    /// Many SYNs towards one destination, whoever sends them.
    pub syn_flood: SynFlood,
    /// One source sending too many packets of one kind.
    pub volumetric: Volumetric,
    /// One destination host receiving too much of one traffic class.
    pub flood: Flood,
    /// When an incident is over.
    pub incidents: Incidents,
    /// Which payloads the kernel copies for inspection.
    pub sampling: Sampling,
    /// The flow table.
    pub flows: Flows,
    /// The kernel's per-source table.
    pub sources: Sources,
    /// DNS queries that look like tunnelled data.
    pub dns_tunnel: DnsTunnel,
    /// How long traffic history is kept.
    pub store: StoreSettings,
    /// Sources never alerted on.
    #[serde(deserialize_with = "de::networks")]
    pub allowlist: Vec<IpNet>,
    /// Per-destination-network thresholds, most specific (longest prefix) wins.
    #[serde(rename = "override")]
    pub overrides: Vec<Override>,
    /// Where alerts are sent (email, SMS, webhook) and how often.
    pub notify: Notify,
    /// Automatic blocking of attackers' sources in XDP.
    pub mitigate: Mitigate,
    /// Flow records to collectors (IPFIX).
    pub export: Export,
    /// EVE JSON to a file, a unix socket, Redis.
    pub eve: Eve,
    /// Rule variables (`HOME_NET = "[10.0.0.0/8]"`, `HTTP_PORTS = "[80,8080]"`),
    /// over Suricata's defaults.
    pub vars: std::collections::BTreeMap<String, String>,
    /// This sensor's name, for EVE's `host` field; the host name when left
    /// out.
    pub sensor_name: Option<String>,
}

impl Config {
    /// This sensor's name: `sensor_name`, else the host name. It names the
    /// sensor in EVE's `host`, in notifications and in `/metrics`.
    pub fn sensor_name(&self) -> String {
        self.sensor_name.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|name| name.trim().to_owned())
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| "nta".into())
        })
    }

    /// The rule variables: Suricata's defaults with `[vars]` over them.
    pub fn rule_vars(&self) -> crate::payload::rules::Vars {
        crate::payload::rules::Vars::with(self.vars.clone())
    }
}

/// The kernel's flow table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Flows {
    /// New flows each CPU inserts per second at most, so that a flood of
    /// new flows cannot flush the real ones out; 0: no limit. What is
    /// skipped is counted (`flows_skipped`).
    pub new_flows_per_cpu: u32,
    /// A flow without a packet for this long is over: its record is
    /// written and its entry removed.
    #[serde(deserialize_with = "de::duration")]
    pub idle_timeout: Duration,
    /// A flow going on for this long has a record written of what it
    /// carried so far, and again every such period (NetFlow's active
    /// timeout), so that long transfers show before they end.
    #[serde(deserialize_with = "de::duration")]
    pub active_timeout: Duration,
    /// Flows the kernel's table holds (rounded up to a multiple of 512);
    /// each takes 128 bytes of kernel memory, allocated at start.
    pub table_size: u32,
}

impl Default for Flows {
    fn default() -> Self {
        Flows {
            table_size: nta_common::flow::FLOWS_MAX_ENTRIES,
            new_flows_per_cpu: nta_common::flow::DEFAULT_NEW_FLOWS_PER_CPU,
            idle_timeout: Duration::from_secs(15),
            active_timeout: Duration::from_secs(60),
        }
    }
}

/// The kernel's per-source table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sources {
    /// New sources each CPU inserts per second at most, so that a flood of
    /// spoofed sources costs a lookup a packet rather than an insert; 0: no
    /// limit. What is skipped is counted (`sources_skipped`); those packets
    /// still count everywhere else (totals, destinations, flows).
    pub new_sources_per_cpu: u32,
}

impl Default for Sources {
    fn default() -> Self {
        Sources {
            new_sources_per_cpu: nta_common::maps::DEFAULT_NEW_SOURCES_PER_CPU,
        }
    }
}

/// Automatic mitigation (`--mitigate`, `--dry-run` switch it on too).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mitigate {
    /// Block the sources of new incidents of `kinds`.
    pub enabled: bool,
    /// Only report what would be blocked.
    pub dry_run: bool,
    /// How long an automatic entry lasts.
    #[serde(deserialize_with = "de::duration")]
    pub ttl: Duration,
    /// Most automatic entries at once.
    pub max_entries: u32,
    /// Incident kinds whose source is blocked.
    pub kinds: Vec<crate::alert::AlertKind>,
}

impl Default for Mitigate {
    fn default() -> Self {
        use crate::alert::AlertKind;
        Mitigate {
            enabled: false,
            dry_run: false,
            // Long enough to outlast a flood or a scan, short enough that an
            // address reassigned to someone else is not shut out for long.
            ttl: Duration::from_secs(600),
            max_entries: 1024,
            // The kinds whose source is the attacker; a SYN flood's sources
            // may be spoofed, a DNS tunnel's is usually a resolver.
            kinds: vec![
                AlertKind::Volumetric,
                AlertKind::PortScan,
                AlertKind::Signature,
            ],
        }
    }
}

/// Port-scan detection: three rules, any of which raises the alert, so that
/// fast sweeps, short bursts at well-known ports and slow scans are all seen.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortScan {
    /// Whether port scans are detected at all.
    pub enabled: bool,
    /// Alert when one source reaches more than this many distinct ports of
    /// one host within `fast_window`.
    pub fast_ports: u32,
    /// Window for `fast_ports`.
    #[serde(deserialize_with = "de::duration")]
    pub fast_window: Duration,
    /// Alert when one source's port score reaches this within
    /// `weighted_window`; ports below 1024 score 3, others 1 (scanlogd's rule).
    pub weighted_score: u32,
    /// Window for `weighted_score`.
    #[serde(deserialize_with = "de::duration")]
    pub weighted_window: Duration,
    /// Alert when one source reaches more than this many distinct ports
    /// within `slow_window`, whatever its pace.
    pub slow_ports: u32,
    /// Window for `slow_ports`; also the window of the sweep rule's hosts
    /// (one kernel window clears both sketches).
    #[serde(deserialize_with = "de::duration")]
    pub slow_window: Duration,
}

impl Default for PortScan {
    fn default() -> Self {
        PortScan {
            enabled: true,
            // The documented threshold, "more than 15 SYN packets/sec to
            // multiple closed ports", counted as distinct ports so that a
            // retrying client does not look like a scanner.
            fast_ports: 15,
            fast_window: Duration::from_secs(1),
            // scanlogd: 7 privileged ports (7 × 3) or 21 high ones, with at
            // most 3 s between them. High ports weigh less because passive FTP
            // and similar protocols legitimately touch many of them.
            weighted_score: 21,
            weighted_window: Duration::from_secs(3),
            // Zeek's default: 15 distinct ports within 5 minutes is a scan,
            // whatever its pace, so nmap -T2 on high ports (0.4 s apart,
            // under the weighted rule) and -T1 (15 s apart) are caught;
            // ordinary clients use a handful of service ports.
            slow_ports: 15,
            slow_window: Duration::from_secs(300),
        }
    }
}

/// Sweep detection: one source probing many hosts (the same port on each,
/// or ICMP echo), counted in the kernel's host sketch over
/// `port_scan.slow_window`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sweep {
    /// Whether sweeps are detected at all.
    pub enabled: bool,
    /// Alert when one source probes more than this many distinct hosts
    /// within `port_scan.slow_window`, unless it is a client (its
    /// connections carry data).
    pub hosts: u32,
}

impl Default for Sweep {
    fn default() -> Self {
        // Zeek's default, 25 hosts on one port within 5 minutes. Zeek counts
        // only failed connections; nta sees attempts, and instead leaves out
        // sources whose TCP connections carry data and UDP sources that
        // exchange many datagrams per host (see `detect::sweep`), which is
        // what the failure filter removes from a monitoring host's or a
        // browser's traffic. A /24 sweep reaches 254.
        Sweep {
            enabled: true,
            hosts: 25,
        }
    }
}

/// SYN-flood detection, per destination: catches floods from spoofed or
/// many sources, which no per-source rule sees.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynFlood {
    /// Whether SYN floods are detected at all.
    pub enabled: bool,
    /// Alert above this many SYNs per second to one destination host.
    pub dst_host_syn_rate: f64,
    /// Alert above this many megabits per second of SYNs to one destination
    /// host (SYNs padded with payload, to fill links); 0 is off.
    pub dst_host_mbps: f64,
    /// Alert above this many SYNs per second to one destination port.
    pub dst_port_syn_rate: f64,
}

impl Default for SynFlood {
    fn default() -> Self {
        // The documented DDoS threshold, 1000 packets/s. A busy web server
        // can accept more new connections than that: raise it for such
        // destinations with an [[override]].
        SynFlood {
            enabled: true,
            dst_host_syn_rate: 1000.0,
            // Plain SYNs are 60-74 bytes: 1 Gbit/s of them is some 1.7 million
            // a second, long past the packet rate. This catches SYNs padded
            // with payload, a flood meant to fill the link rather than the
            // connection table, with the same threshold as the TCP class.
            dst_host_mbps: 1000.0,
            dst_port_syn_rate: 1000.0,
        }
    }
}

/// Volumetric detection, per source and packet kind.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Volumetric {
    /// Whether volumetric floods are detected at all.
    pub enabled: bool,
    /// Alert above this many SYNs per second from one source.
    pub syn_rate: f64,
    /// Alert above this many UDP packets per second from one source.
    pub udp_rate: f64,
    /// Alert above this many ICMP (and ICMPv6) packets per second from one source.
    pub icmp_rate: f64,
    /// Alert above this many RSTs per second from one source.
    pub rst_rate: f64,
    /// Alert above this many bare ACKs (no payload) per second from one source.
    pub ack_rate: f64,
}

impl Default for Volumetric {
    fn default() -> Self {
        Volumetric {
            enabled: true,
            // The documented "more than 1000 packets/sec from a single IP",
            // kept per packet kind so that one kind's rate is not diluted by
            // another.
            syn_rate: 1000.0,
            udp_rate: 1000.0,
            icmp_rate: 1000.0,
            rst_rate: 1000.0,
            // Bare ACKs are what a receiver sends back during a bulk transfer:
            // at 1 Gbit/s of 1500-byte segments, acking every second one
            // (delayed ACK) gives about 41 000/s. 50 000 stays quiet for any
            // single transfer up to ~1 Gbit/s; on faster links raise it.
            ack_rate: 50_000.0,
        }
    }
}

/// Payload sampling: which packets the XDP program copies (up to 512 bytes
/// of payload each) for HTTP, DNS and rule inspection.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sampling {
    pub enabled: bool,
    /// TCP ports (either end) whose payloads are always sampled.
    pub tcp_ports: Vec<u16>,
    /// UDP ports (either end) whose payloads are always sampled.
    pub udp_ports: Vec<u16>,
    /// Most samples per CPU per second; past it they are counted, not copied.
    pub max_per_sec: u32,
    /// Also sample 1 in N packets with payload on other ports; 0 is off.
    pub one_in: u32,
    /// Also sample the first N payload packets of each direction of every
    /// TCP and UDP flow, on any port; 0 is off.
    pub flow_payloads: u32,
}

impl Default for Sampling {
    fn default() -> Self {
        // Web and DNS: where the default rules and the tunnel detector look.
        // 5 000 samples/s per CPU keeps the agent's inspection well under
        // a core (it handles ~500k samples/s) while a busy web server's
        // requests are all seen.
        Sampling {
            enabled: true,
            tcp_ports: vec![80, 8080, 8000, 53],
            udp_ports: vec![53],
            max_per_sec: 5_000,
            one_in: 0,
            flow_payloads: 4,
        }
    }
}

/// DNS tunnel detection (see `payload::dns_tunnel`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsTunnel {
    pub enabled: bool,
    /// Distinct subdomains of one domain from one source within `window`.
    pub unique_subdomains: u32,
    #[serde(deserialize_with = "de::duration")]
    pub window: Duration,
    /// Longest ordinary label; DNS allows 63, tunnels fill them.
    pub max_label_len: usize,
    /// Bits per character from which a long label looks random.
    pub entropy_bits: f64,
    /// TXT and NULL queries for one domain from one source within `window`.
    pub txt_null_per_window: u32,
}

impl Default for DnsTunnel {
    fn default() -> Self {
        let d = crate::payload::dns_tunnel::DnsTunnelConfig::default();
        DnsTunnel {
            enabled: d.enabled,
            unique_subdomains: d.unique_subdomains,
            window: d.window,
            max_label_len: d.max_label_len,
            entropy_bits: d.entropy_bits,
            txt_null_per_window: d.txt_null_per_window,
        }
    }
}

impl DnsTunnel {
    /// The detector's own settings.
    pub fn detector(&self) -> crate::payload::dns_tunnel::DnsTunnelConfig {
        crate::payload::dns_tunnel::DnsTunnelConfig {
            enabled: self.enabled,
            unique_subdomains: self.unique_subdomains,
            window: self.window,
            max_label_len: self.max_label_len,
            entropy_bits: self.entropy_bits,
            txt_null_per_window: self.txt_null_per_window,
        }
    }
}

/// Incident lifetime.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Incidents {
    /// An incident closes after this long without its condition.
    #[serde(deserialize_with = "de::duration")]
    pub quiet_period: Duration,
}

impl Default for Incidents {
    fn default() -> Self {
        // Long enough that a flood pausing for a few seconds (or a scanner
        // between batches) stays one incident, short enough that the next
        // attack is a new one.
        Incidents {
            quiet_period: Duration::from_secs(10),
        }
    }
}

/// How long traffic history is kept, at each resolution.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// How long per-second history is kept.
    #[serde(deserialize_with = "de::duration")]
    pub retention_seconds: Duration,
    /// How long per-minute history is kept.
    #[serde(deserialize_with = "de::duration")]
    pub retention_minutes: Duration,
    /// How long flow records are kept.
    #[serde(deserialize_with = "de::duration")]
    pub flow_retention: Duration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            // 3600 rows: enough to look closely at the last incident.
            retention_seconds: Duration::from_secs(3600),
            // 43 200 rows: a month of trends and before/after comparisons.
            retention_minutes: Duration::from_secs(30 * 86_400),
            // A week of "who talked to this host".
            flow_retention: Duration::from_secs(7 * 86_400),
        }
    }
}

/// Thresholds for floods whose destination is in `network`; unset keys keep
/// the value from less specific overrides, then the global sections.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// Destinations this override applies to.
    #[serde(deserialize_with = "de::network")]
    pub network: IpNet,
    /// SYN-flood settings for these destinations.
    #[serde(default)]
    pub syn_flood: Option<SynFloodOverride>,
    /// Volumetric settings for floods towards these destinations.
    #[serde(default)]
    pub volumetric: Option<VolumetricOverride>,
    /// Victim-side flood rates for these destinations.
    #[serde(default)]
    pub flood: Option<FloodOverride>,
}

/// [`SynFlood`] keys an override may set.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynFloodOverride {
    /// Replaces [`SynFlood::enabled`].
    pub enabled: Option<bool>,
    /// Replaces [`SynFlood::dst_host_syn_rate`].
    pub dst_host_syn_rate: Option<f64>,
    /// Replaces [`SynFlood::dst_host_mbps`].
    pub dst_host_mbps: Option<f64>,
    /// Replaces [`SynFlood::dst_port_syn_rate`].
    pub dst_port_syn_rate: Option<f64>,
}

/// [`Volumetric`] keys an override may set.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumetricOverride {
    /// Replaces [`Volumetric::enabled`].
    pub enabled: Option<bool>,
    /// Replaces [`Volumetric::syn_rate`].
    pub syn_rate: Option<f64>,
    /// Replaces [`Volumetric::udp_rate`].
    pub udp_rate: Option<f64>,
    /// Replaces [`Volumetric::icmp_rate`].
    pub icmp_rate: Option<f64>,
    /// Replaces [`Volumetric::rst_rate`].
    pub rst_rate: Option<f64>,
    /// Replaces [`Volumetric::ack_rate`].
    pub ack_rate: Option<f64>,
}

impl SynFloodOverride {
    fn apply(&self, to: &mut SynFlood) {
        set(&mut to.enabled, self.enabled);
        set(&mut to.dst_host_syn_rate, self.dst_host_syn_rate);
        set(&mut to.dst_host_mbps, self.dst_host_mbps);
        set(&mut to.dst_port_syn_rate, self.dst_port_syn_rate);
    }
}

impl VolumetricOverride {
    fn apply(&self, to: &mut Volumetric) {
        set(&mut to.enabled, self.enabled);
        set(&mut to.syn_rate, self.syn_rate);
        set(&mut to.udp_rate, self.udp_rate);
        set(&mut to.icmp_rate, self.icmp_rate);
        set(&mut to.rst_rate, self.rst_rate);
        set(&mut to.ack_rate, self.ack_rate);
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

impl Config {
    /// Reads and validates a file. Errors name the file, the line and
    /// column, and what is wrong.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Same as [`Config::load`] from text; `path` is used only in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| parse_error(&e, text, path))?;
        config
            .validate()
            .map_err(|problem| problem.into_error(text, path))?;
        Ok(config)
    }

    /// True if `addr` is in the allowlist.
    pub fn allowlisted(&self, addr: IpAddr) -> bool {
        self.allowlist.iter().any(|net| net.contains(&addr))
    }

    /// Effective SYN-flood settings for destination `dst`: the global ones
    /// with every matching override applied, least specific first, so the
    /// longest prefix wins for each key it sets.
    pub fn syn_flood_for(&self, dst: IpAddr) -> SynFlood {
        let mut effective = self.syn_flood.clone();
        for o in self.overrides_for(dst) {
            if let Some(syn_flood) = &o.syn_flood {
                syn_flood.apply(&mut effective);
            }
        }
        effective
    }

    /// Effective volumetric settings for floods towards `dst`, overridden
    /// as in [`Config::syn_flood_for`].
    pub fn volumetric_for(&self, dst: IpAddr) -> Volumetric {
        let mut effective = self.volumetric.clone();
        for o in self.overrides_for(dst) {
            if let Some(volumetric) = &o.volumetric {
                volumetric.apply(&mut effective);
            }
        }
        effective
    }

    /// Effective victim-side flood settings for destination `dst`,
    /// overridden as in [`Config::syn_flood_for`].
    pub fn flood_for(&self, dst: IpAddr) -> Flood {
        let mut effective = self.flood.clone();
        for o in self.overrides_for(dst) {
            if let Some(flood) = &o.flood {
                flood.apply(&mut effective);
            }
        }
        effective
    }

    /// Overrides containing `dst`, shortest prefix first. Networks are
    /// distinct (validated), so two matching ones never share a length and
    /// the order is total.
    fn overrides_for(&self, dst: IpAddr) -> Vec<&Override> {
        let mut matching: Vec<&Override> = self
            .overrides
            .iter()
            .filter(|o| o.network.contains(&dst))
            .collect();
        matching.sort_by_key(|o| o.network.prefix_len());
        matching
    }

    /// One line describing the effective settings, for `config check`.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let p = &self.port_scan;
        if p.enabled {
            let _ = write!(
                s,
                "port_scan: >{} ports/{}, weighted {}/{}, >{} ports/{}",
                p.fast_ports,
                show(p.fast_window),
                p.weighted_score,
                show(p.weighted_window),
                p.slow_ports,
                show(p.slow_window)
            );
        } else {
            s.push_str("port_scan: off");
        }
        if self.sweep.enabled {
            let _ = write!(
                s,
                "; sweep: >{} hosts/{}",
                self.sweep.hosts,
                show(p.slow_window)
            );
        } else {
            s.push_str("; sweep: off");
        }
        let f = &self.syn_flood;
        if f.enabled {
            let _ = write!(
                s,
                "; syn_flood: {} SYN/s host, {} SYN/s port",
                f.dst_host_syn_rate, f.dst_port_syn_rate
            );
            if f.dst_host_mbps > 0.0 {
                let _ = write!(s, ", {} Mbit/s host", f.dst_host_mbps);
            }
        } else {
            s.push_str("; syn_flood: off");
        }
        let v = &self.volumetric;
        if v.enabled {
            let _ = write!(
                s,
                "; volumetric: {} SYN/s, {} UDP/s, {} ICMP/s, {} RST/s, {} ACK/s per source",
                v.syn_rate, v.udp_rate, v.icmp_rate, v.rst_rate, v.ack_rate
            );
        } else {
            s.push_str("; volumetric: off");
        }
        flood_summary(&mut s, &self.flood);
        let _ = write!(
            s,
            "; incidents close after {} quiet; history: {} per-second, {} per-minute; {}; {}",
            show(self.incidents.quiet_period),
            show(self.store.retention_seconds),
            show(self.store.retention_minutes),
            count(self.allowlist.len(), "allowlist entry", "allowlist entries"),
            count(self.overrides.len(), "override", "overrides"),
        );
        if let Some(collector) = self.export.ipfix {
            let _ = write!(s, "; flows to IPFIX collector {collector}");
        }
        s
    }
}

/// A toml error as one line: where, which key, and what is wrong in the
/// file's terms rather than Rust's.
fn parse_error(e: &toml::de::Error, text: &str, path: &Path) -> ConfigError {
    let mut message = e.message().trim_end().to_owned();
    // serde names the Rust type it wanted; say what to write instead.
    for (rust, toml) in [
        ("expected u32", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected an array"),
        ("type: map", "type: table"),
        ("type: sequence", "type: array"),
    ] {
        message = message.replace(rust, toml);
    }
    // toml says which key is duplicated only by pointing at it.
    if message == "duplicate key"
        && let Some(key) = e.span().and_then(|span| text.get(span))
    {
        message = format!("duplicate key `{key}`");
    }
    if let Some(i) = message.find("expected struct ") {
        message.truncate(i);
        message.push_str("expected a table");
    }
    let key = e
        .span()
        .map(|span| locate::key_at(text, span.start))
        .unwrap_or_default();
    if !key.is_empty() {
        message = format!("{key}: {message}");
    }
    ConfigError::Parse {
        path: path.to_owned(),
        location: e.span().map(|span| Location::of(text, span.start)),
        message,
    }
}

/// Loads `path` and describes it in one line (`nta-agent config check`).
pub fn check(path: &Path) -> Result<String, ConfigError> {
    let config = Config::load(path)?;
    Ok(format!("{}: OK — {}", path.display(), config.summary()))
}

/// A duration as it would be written in the file: the largest unit that
/// divides it exactly, so "30d" reads back as written (humantime's own
/// formatter would say "30days", and "1year 1month 4days 9h 20m 24s" for 400d).
fn show(d: Duration) -> String {
    const UNITS: [(&str, u128); 5] = [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let ms = d.as_millis();
    if d.subsec_nanos().is_multiple_of(1_000_000) && ms > 0 {
        for (unit, size) in UNITS {
            if ms.is_multiple_of(size) {
                return format!("{}{unit}", ms / size);
            }
        }
    }
    humantime::format_duration(d).to_string()
}

/// `; flood: tcp 100000 pkt/s 1000 Mbit/s, ... per host`, rules that are
/// off left out.
fn flood_summary(s: &mut String, flood: &Flood) {
    if !flood.enabled {
        s.push_str("; flood: off");
        return;
    }
    let classes: Vec<String> = flood
        .classes()
        .iter()
        .map(|(class, r)| {
            let mut rules = Vec::new();
            if r.pps > 0.0 {
                rules.push(format!("{} pkt/s", r.pps));
            }
            if r.mbps > 0.0 {
                rules.push(format!("{} Mbit/s", r.mbps));
            }
            if rules.is_empty() {
                rules.push("off".into());
            }
            format!("{} {}", class.name(), rules.join(" "))
        })
        .collect();
    let _ = write!(s, "; flood: {} per host", classes.join(", "));
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
