//! nta's agent: loads the XDP sensor, reads its kernel counters and reports
//! what they show.
//!
//! Modules from the packets up; each uses only those above it in this list
//! (`tests/structure.rs` holds them to it):
//!
//! - [`alert`]: incidents as stored, served and notified.
//! - [`block`]: one blocklist entry, how users write it, the API's answers about them.
//! - [`throttle`]: log lines kept to one per period.
//! - [`timings`]: latency histograms of detection and store writes.
//! - [`traffic`]: counter snapshots, rates and top talkers.
//! - [`payload`]: HTTP, DNS and TLS parsing, application protocols by
//!   content, the first bytes of streams put in order, the rule language
//!   and matcher, DNS tunnels.
//! - [`flows`]: flow records from the flow table's entries, and their labels.
//! - [`config`]: the TOML configuration: thresholds, windows, allowlist, overrides.
//! - [`idle`]: when a source or destination gone quiet is forgotten.
//! - [`source`]: the packet-source seam: snapshots, events and samples.
//! - [`sensor`]: the live source: load and attach the XDP program, read its maps.
//! - [`capture`]: capture files (pcap, pcapng) read into frames and IP packets.
//! - [`detect`]: port scans of every kind and sweeps, floods on a host (SYN,
//!   TCP, UDP, ICMP, fragments, all traffic) and reflection, volumetric
//!   floods, payload findings; incidents.
//! - [`inspect`]: the payload pipeline (samples → streams → HTTP/DNS/TLS → rules, tunnels, app protocols).
//! - [`eve`]: Suricata's EVE JSON: alert and stats events, and their writer.
//! - [`export`]: flow records to IPFIX collectors over UDP.
//! - [`store`]: alerts, blocks and traffic history in redb, and the writer task.
//! - [`cli`]: command-line interface.
//! - [`http_client`]: the one HTTP client setup, for notifications and the `block` command.
//! - [`mitigate`]: the XDP blocklist, by hand and automatic.
//! - [`notify`]: email, SMS and webhook notifications, with storm control.
//! - [`stats`]: the live view served by the API.
//! - [`api`]: the HTTP JSON API (warp) and the dashboard.
//! - [`run`]: the `run` command: start-up phases, the loop, shutdown.
//! - [`read`]: the `read` command: captures through the payload pipeline.
//! - [`generate`]: man pages and shell completions from the command line's definition.

pub mod alert;
pub mod api;
pub mod block;
pub mod capture;
pub mod cli;
pub mod config;
pub mod detect;
pub mod eve;
pub mod export;
pub mod flows;
pub mod generate;
pub mod http_client;
pub mod idle;
pub mod inspect;
pub mod mitigate;
pub mod notify;
pub mod payload;
pub mod read;
pub mod run;
pub mod sensor;
pub mod source;
pub mod stats;
pub mod store;
pub mod throttle;
pub mod timings;
pub mod traffic;
