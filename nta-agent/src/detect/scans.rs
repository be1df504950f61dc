//! One source's port scan or sweep, from a tick's counter growth or a
//! kernel event: which rule holds, and one alert per attack.
//!
//! A source that reaches many ports and many hosts at once (`nmap -sS
//! --top-ports 100` on a /24) is one attack, reported as a port scan: when
//! both rules hold together the port scan wins, being the more specific
//! (which ports) and what blocks and notifications already key on. Once one
//! of the two incidents is open, the source's further probing updates that
//! incident and never opens the other, so a sweep that moves on to more
//! ports stays the sweep it was first seen as.

use std::net::IpAddr;

use nta_common::maps::Probe;

use super::{
    Finding, IncidentKey, Incidents, Subject,
    port_scan::{self, Scan, Windows},
    probes::{self, PORT_PROBES},
    sketch::Estimate,
    sweep::{self, Sweep},
};
use crate::{
    alert::{AlertKind, DetectedBy},
    config::Config,
    traffic::{SourceView, growth},
};

/// One source's counters now, and at the previous tick when the agent has
/// them.
#[derive(Debug, Clone, Copy)]
pub struct Reading<'a> {
    pub src: IpAddr,
    pub before: Option<&'a SourceView>,
    pub after: &'a SourceView,
    pub detected_by: DetectedBy,
}

/// What moved since the previous reading: the source reached new ports,
/// new hosts. A rule is only (re)evaluated while its sketch grows, so a
/// flood from a host that scanned earlier is not its scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fresh {
    pub ports: bool,
    pub hosts: bool,
}

impl Fresh {
    /// Both: a kernel event says a sketch just grew past a threshold.
    pub const EVENT: Fresh = Fresh {
        ports: true,
        hosts: true,
    };

    /// What grew between the two reads of `r` (a restarted window is new).
    pub fn between(r: &Reading) -> Self {
        let s = r.after;
        let grew = |now: u32, then: fn(&SourceView) -> u32| {
            now > 0
                && r.before.is_none_or(|b| {
                    now > then(b) || s.slow_window_start_ns != b.slow_window_start_ns
                })
        };
        Fresh {
            ports: grew(s.slow_bits, |b| b.slow_bits) && sent(r, &PORT_PROBES) > 0,
            hosts: grew(s.host_bits, |b| b.host_bits) && sent(r, &Probe::ALL) > 0,
        }
    }
}

/// Probes of `kinds` the source sent since the previous reading (all it
/// sent, when there is none).
pub fn sent(r: &Reading, kinds: &[Probe]) -> u64 {
    kinds
        .iter()
        .map(|&k| growth(r.before.map_or(0, |b| b.probe(k)), r.after.probe(k)))
        .sum()
}

/// The port scan or sweep the reading shows, at most one (see the module
/// documentation), with window counts `w`.
pub fn evaluate(
    config: &Config,
    incidents: &Incidents,
    r: &Reading,
    w: Windows,
    fresh: Fresh,
) -> Option<Finding> {
    let open = |kind| {
        incidents.is_open(&IncidentKey {
            kind,
            subject: Subject::Source(r.src),
        })
    };
    let goes_on = fresh.ports || fresh.hosts;
    if open(AlertKind::Sweep) {
        return goes_on.then(|| sweep_finding(config, r, w)).flatten();
    }
    if open(AlertKind::PortScan) {
        return goes_on.then(|| scan_finding(config, r, w)).flatten();
    }
    fresh
        .ports
        .then(|| scan_finding(config, r, w))
        .flatten()
        .or_else(|| fresh.hosts.then(|| sweep_finding(config, r, w)).flatten())
}

fn scan_finding(config: &Config, r: &Reading, w: Windows) -> Option<Finding> {
    port_scan::evaluate(
        &config.port_scan,
        Scan {
            src: r.src,
            windows: w,
            dst: port_scan::addr_of(&r.after.last_dst),
            packets: sent(r, &PORT_PROBES),
            kind: probes::dominant(r.before, r.after, &PORT_PROBES),
            detected_by: r.detected_by,
        },
    )
}

fn sweep_finding(config: &Config, r: &Reading, w: Windows) -> Option<Finding> {
    let kind = probes::dominant(r.before, r.after, &Probe::ALL);
    let s = r.after;
    sweep::evaluate(
        &config.sweep,
        config.port_scan.slow_window,
        Sweep {
            src: r.src,
            host_bits: w.host_bits,
            port_bits: w.slow_bits,
            port: (s.last_dst_port != 0).then_some(s.last_dst_port),
            kind,
            client: sweep::is_client(s, kind, Estimate::of(w.host_bits)),
            packets: sent(r, &Probe::ALL),
            detected_by: r.detected_by,
        },
    )
}
