//! What `/api/stats` reports: the live view, refreshed every tick.

use std::{collections::BTreeMap, net::IpAddr};

use jiff::Timestamp;
use serde::Serialize;

/// Rates over the last tick, per second.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rates {
    pub packets_per_sec: f64,
    pub bits_per_sec: f64,
    pub syns_per_sec: f64,
    /// Packets per second by protocol: ipv4, ipv6, tcp, udp, icmp, other.
    pub protocols: BTreeMap<String, f64>,
}

/// A busy source in the last tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopSource {
    pub addr: IpAddr,
    pub packets_per_sec: f64,
    /// Fraction of all packets in the tick, 0..=1.
    pub share: f64,
}

/// A destination port receiving SYNs in the last tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopPort {
    pub port: u16,
    pub syns_per_sec: f64,
    /// Fraction of all SYNs in the tick, 0..=1.
    pub share: f64,
}

/// The agent's live state, shared between the sensor loop and the API.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LiveStats {
    pub iface: String,
    /// `native` or `skb`.
    pub xdp_mode: String,
    pub started_at: Option<Timestamp>,
    pub rates: Rates,
    /// Every kernel counter since the sensor was loaded, by name.
    pub totals: BTreeMap<String, u64>,
    pub top_sources: Vec<TopSource>,
    pub top_syn_ports: Vec<TopPort>,
    pub open_incidents: usize,
    /// Threshold events the kernel could not queue (ring full).
    pub events_lost: u64,
}
