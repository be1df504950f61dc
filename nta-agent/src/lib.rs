//! nta's agent: loads the XDP sensor, reads its kernel counters and reports
//! what they show.
//!
//! - [`alert`]: incidents as stored, served and notified.
//! - [`api`]: the HTTP JSON API (warp).
//! - [`block`]: one blocklist entry, how users write it, the API's answers about them.
//! - [`cli`]: command-line interface.
//! - [`detect`]: port scans, SYN floods, volumetric floods; incidents.
//! - [`mitigate`]: the XDP blocklist, by hand and automatic.
//! - [`http_client`]: the one HTTP client setup, for notifications and the `block` command.
//! - [`notify`]: email, SMS and webhook notifications, with storm control.
//! - [`inspect`]: the payload pipeline (samples → HTTP/DNS → rules, tunnels).
//! - [`config`]: the TOML configuration: thresholds, windows, allowlist, overrides.
//! - [`store`]: alerts and traffic history in redb.
//! - [`sensor`]: load and attach the XDP program, read its maps.
//! - [`stats`]: the live view served by the API.
//! - [`timings`]: latency histograms of detection and store writes.
//! - [`traffic`]: rates and top talkers from two counter snapshots.
//! - [`run`]: the `run` command's loop and shutdown.
//! - [`writer`]: the task that commits alerts and history to the store.

pub mod alert;
pub mod api;
pub mod block;
pub mod cli;
pub mod config;
pub mod detect;
pub mod http_client;
pub mod inspect;
pub mod mitigate;
pub mod notify;
pub mod payload;
pub mod run;
pub mod sensor;
pub mod stats;
pub mod store;
pub mod timings;
pub mod traffic;
pub mod writer;
