//! `[flood]`: floods on one destination host, per traffic class, whoever
//! sends them (FastNetMon's per-host thresholds). The kernel counts every
//! destination's packets and bytes per class, so a flood from spoofed
//! sources is seen on its victim.

use nta_common::classify::DstClass;
use serde::{Deserialize, Serialize};

use super::set;

/// A packet rate and a bit rate, per second, to one destination host: a
/// flood crosses either. 0 turns that rate's rule off.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassRates {
    /// Packets per second.
    pub pps: f64,
    /// Megabits (10⁶ bits) per second, frames counted from the Ethernet
    /// header on.
    pub mbps: f64,
}

impl ClassRates {
    /// Neither rate is checked.
    pub const OFF: Self = Self {
        pps: 0.0,
        mbps: 0.0,
    };
}

/// Victim-side flood detection for every class but SYN (which keeps its
/// `[syn_flood]` section).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(from = "FloodOverride")]
pub struct Flood {
    /// Whether these floods are detected at all.
    pub enabled: bool,
    /// TCP without SYN and without payload: ACK, RST, FIN, SYN-ACK floods.
    pub tcp: ClassRates,
    /// UDP, first fragments included.
    pub udp: ClassRates,
    /// ICMP and ICMPv6.
    pub icmp: ClassRates,
    /// IP fragments, first or later.
    pub fragment: ClassRates,
    /// Every IP packet: GRE, ESP, other protocols, and mixes where no single
    /// class crosses its own rates.
    pub all: ClassRates,
    /// How many times its per-second rates a destination may receive for a
    /// tenth of a second (a burst window) without that being a flood:
    /// traffic is bursty at that scale (TCP slow start, a client opening
    /// its connections at once), floods are not. A flood past this multiple
    /// is reported a tenth of a second into it at most, one under it once
    /// its second's count passes the threshold. Applies to `[syn_flood]`'s
    /// per-host rates too; 0 turns the burst rule off.
    pub burst: f64,
}

/// Default of [`Flood::burst`]. Measured with the benign lab traffic
/// (300 MB transfers both ways, a web server's 3 000 connections a second,
/// a resolver, NTP, monitoring checks, a client's late closes) under the
/// default thresholds: with an allowance of 1 only a client opening 180
/// connections at once crossed (1 020 SYN/s over a tenth of a second
/// against 1 000), with 1.5 nothing did. 4 leaves room above that, while
/// a flood of twenty times a threshold still crosses in its first 20 ms.
pub const BURST: f64 = 4.0;

impl Default for Flood {
    fn default() -> Self {
        Flood {
            enabled: true,
            // A receiver's ACKs during a transfer above 1 Gbit/s reach about
            // 40 000/s, and data segments are not in this class at all: 100 000
            // stays clear of any real connection mix to one host.
            tcp: ClassRates {
                pps: 100_000.0,
                mbps: 1_000.0,
            },
            // A busy DNS or game server takes a few thousand datagrams a
            // second; 20 000 is past what most hosts ever receive, and 1 Gbit/s
            // fills a typical server uplink.
            udp: ClassRates {
                pps: 20_000.0,
                mbps: 1_000.0,
            },
            // Echo replies and unreachables come in tens per second; 5 000 is a
            // flood (hping3 --icmp --flood sends far more), 100 Mbit/s of ICMP
            // is never legitimate.
            icmp: ClassRates {
                pps: 5_000.0,
                mbps: 100.0,
            },
            // Fragments are rare on today's networks (path MTU discovery);
            // thousands per second to one host are an attack on reassembly or
            // an amplifier's oversized replies.
            fragment: ClassRates {
                pps: 5_000.0,
                mbps: 500.0,
            },
            // Everything together. 500 000 full-size frames a second are
            // 6 Gbit/s: a bulk transfer to one host over a 1 or 10 Gbit/s
            // link stays under it (a single TCP stream rarely passes a few
            // Gbit/s), while a flood of small packets of any protocol crosses
            // it. Hosts that really take more: raise it with an [[override]].
            all: ClassRates {
                pps: 500_000.0,
                mbps: 10_000.0,
            },
            burst: BURST,
        }
    }
}

impl Flood {
    /// The rates of `class` (`Syn` has none here: see `[syn_flood]`).
    pub fn rates(&self, class: DstClass) -> ClassRates {
        match class {
            DstClass::Syn => ClassRates::OFF,
            DstClass::Tcp => self.tcp,
            DstClass::Udp => self.udp,
            DstClass::Icmp => self.icmp,
            DstClass::Fragment => self.fragment,
            DstClass::All => self.all,
        }
    }

    /// The classes of this section and their rates, in config order.
    pub fn classes(&self) -> [(DstClass, ClassRates); 5] {
        [
            (DstClass::Tcp, self.tcp),
            (DstClass::Udp, self.udp),
            (DstClass::Icmp, self.icmp),
            (DstClass::Fragment, self.fragment),
            (DstClass::All, self.all),
        ]
    }
}

/// [`Flood`] keys as written: in `[flood]` over the defaults, in an
/// `[[override]]` over the less specific settings. A class table may set one
/// rate and keep the other.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloodOverride {
    pub enabled: Option<bool>,
    pub tcp: Option<RatesOverride>,
    pub udp: Option<RatesOverride>,
    pub icmp: Option<RatesOverride>,
    pub fragment: Option<RatesOverride>,
    pub all: Option<RatesOverride>,
    pub burst: Option<f64>,
}

/// [`ClassRates`] keys an override may set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatesOverride {
    pub pps: Option<f64>,
    pub mbps: Option<f64>,
}

impl RatesOverride {
    fn apply(&self, to: &mut ClassRates) {
        set(&mut to.pps, self.pps);
        set(&mut to.mbps, self.mbps);
    }
}

impl FloodOverride {
    /// Sets what this override sets.
    pub fn apply(&self, to: &mut Flood) {
        set(&mut to.enabled, self.enabled);
        set(&mut to.burst, self.burst);
        for (rates, with) in [
            (&mut to.tcp, self.tcp),
            (&mut to.udp, self.udp),
            (&mut to.icmp, self.icmp),
            (&mut to.fragment, self.fragment),
            (&mut to.all, self.all),
        ] {
            if let Some(with) = with {
                with.apply(rates);
            }
        }
    }

    /// The class tables set, by class name, for validation.
    pub fn classes(&self) -> [(&'static str, Option<RatesOverride>); 5] {
        [
            ("tcp", self.tcp),
            ("udp", self.udp),
            ("icmp", self.icmp),
            ("fragment", self.fragment),
            ("all", self.all),
        ]
    }
}

impl From<FloodOverride> for Flood {
    fn from(written: FloodOverride) -> Self {
        let mut flood = Flood::default();
        written.apply(&mut flood);
        flood
    }
}
