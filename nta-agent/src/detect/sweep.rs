//! Sweeps (horizontal scans): one source probing many destination hosts,
//! on one port (`nmap -p22 10.0.0.0/24`, `-sU -p161`) or by ping (`-sn`,
//! `fping -g`), over IPv4 and IPv6 alike.
//!
//! The rule: more than `sweep.hosts` distinct hosts in the kernel's host
//! sketch within `port_scan.slow_window`, from a source that is not a
//! client. Zeek's rule (25 hosts in 5 minutes) counts failed connections
//! only; the kernel sees attempts, so what a client does is told apart
//! here instead: TCP connections that carry data (a browser, a monitoring
//! check that sends its request) and UDP exchanges of many datagrams per
//! host (QUIC, media) are a client's. nmap's SYN, connect, ACK and ping
//! probes carry none, and a UDP sweep sends one or two datagrams a host.
//! Ping sweeps are never a client's: allowlist a monitoring host that pings.

use std::{net::IpAddr, time::Duration};

use nta_common::maps::Probe;

use super::{
    Finding, IncidentKey, Subject, probes,
    sketch::{self, Estimate},
};
use crate::{
    alert::{AlertKind, DetectedBy, Evidence},
    config,
};

/// One source's sweep counters, as the rule reads them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sweep {
    pub src: IpAddr,
    /// Bits set in the host sketch, in the current slow window.
    pub host_bits: u64,
    /// Bits set in the port sketch, in the same window.
    pub port_bits: u64,
    /// The port last probed (the swept port, for one-port sweeps).
    pub port: Option<u16>,
    /// What the sweep probes with (see [`probes::dominant`]).
    pub kind: Option<Probe>,
    /// The source is a client (see [`probes::is_client`]), not a sweeper.
    pub client: bool,
    /// Probes since the previous finding.
    pub packets: u64,
    pub detected_by: DetectedBy,
}

/// A sweep finding if the source probed more than `cfg.hosts` hosts within
/// `window` and is not a client.
pub fn evaluate(cfg: &config::Sweep, window: Duration, sweep: Sweep) -> Option<Finding> {
    if !cfg.enabled || sweep.client || !sketch::more_than(sweep.host_bits, cfg.hosts) {
        return None;
    }
    let hosts = Estimate::of(sweep.host_bits);
    let src = sweep.src;
    let ping = sweep.kind == Some(Probe::Echo);
    let port = sweep.port.filter(|_| !ping);
    let what = match (sweep.kind, port) {
        (Some(kind), Some(port)) => {
            format!("{} sweep from {src} of port {port}", probes::label(kind))
        }
        (Some(kind), None) => format!("{} sweep from {src}", probes::label(kind)),
        (None, Some(port)) => format!("Sweep from {src} of port {port}"),
        (None, None) => format!("Sweep from {src}"),
    };
    Some(Finding {
        key: IncidentKey {
            kind: AlertKind::Sweep,
            subject: Subject::Source(src),
        },
        src: Some(src),
        dst: None,
        dst_port: port,
        measure: hosts.value,
        ratio: hosts.value / f64::from(cfg.hosts.max(1)),
        packets: sweep.packets,
        message: format!(
            "{what}: {hosts} hosts (estimated; more than {} within {})",
            cfg.hosts,
            humantime::format_duration(window)
        ),
        evidence: Evidence {
            threshold: f64::from(cfg.hosts),
            unit: "hosts".into(),
            window_secs: window.as_secs_f64(),
            scan: sweep.kind.map(|k| k.name().to_owned()),
            distinct_hosts: Some(hosts.count()),
            distinct_ports: (sweep.port_bits > 0).then(|| Estimate::of(sweep.port_bits).count()),
            estimated: true,
            detected_by: sweep.detected_by,
            ..Evidence::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::Config, traffic::SourceView};

    const WINDOW: Duration = Duration::from_secs(300);

    fn cfg() -> config::Sweep {
        Config::default().sweep
    }

    fn sweep(host_bits: u64, kind: Option<Probe>, port: Option<u16>) -> Sweep {
        Sweep {
            src: "2001:db8::66".parse().unwrap(),
            host_bits,
            port_bits: 1,
            port,
            kind,
            client: false,
            packets: host_bits,
            detected_by: DetectedBy::Kernel,
        }
    }

    #[test]
    fn more_than_twenty_five_hosts_on_one_port_is_a_sweep() {
        assert!(evaluate(&cfg(), WINDOW, sweep(25, Some(Probe::Syn), Some(22))).is_none());
        let f = evaluate(&cfg(), WINDOW, sweep(26, Some(Probe::Syn), Some(22))).expect("sweep");
        assert_eq!(f.key.kind, AlertKind::Sweep);
        assert_eq!(f.src, Some("2001:db8::66".parse().unwrap()));
        assert_eq!(f.dst_port, Some(22));
        assert_eq!(
            f.message,
            "SYN sweep from 2001:db8::66 of port 22: ~27 hosts (estimated; more than 25 within 5m)"
        );
        assert_eq!(f.evidence.scan.as_deref(), Some("syn"));
        assert_eq!(f.evidence.distinct_hosts, Some(27));
        assert_eq!(f.evidence.distinct_ports, Some(1));
        assert!(f.evidence.estimated);
    }

    #[test]
    fn a_ping_sweep_names_no_port() {
        // A /24: 254 hosts set about 200 bits.
        let f = evaluate(&cfg(), WINDOW, sweep(200, Some(Probe::Echo), Some(443))).expect("sweep");
        assert_eq!(f.dst_port, None);
        assert!(
            f.message
                .starts_with("Ping sweep from 2001:db8::66: ~254 hosts (estimated;"),
            "{}",
            f.message
        );
        assert_eq!(f.evidence.scan.as_deref(), Some("echo"));
    }

    #[test]
    fn udp_and_stealth_sweeps_say_what_they_probe_with() {
        for (kind, name) in [
            (Probe::Udp, "UDP sweep"),
            (Probe::Ack, "ACK sweep"),
            (Probe::Fin, "FIN/NULL/Xmas sweep"),
        ] {
            let f = evaluate(&cfg(), WINDOW, sweep(60, Some(kind), Some(161))).expect("sweep");
            assert!(
                f.message.starts_with(&format!("{name} from ")),
                "{}",
                f.message
            );
        }
    }

    #[test]
    fn a_client_never_sweeps_and_disabled_means_never() {
        let client = Sweep {
            client: true,
            ..sweep(300, Some(Probe::Syn), Some(443))
        };
        assert!(evaluate(&cfg(), WINDOW, client).is_none());
        let mut off = cfg();
        off.enabled = false;
        assert!(evaluate(&off, WINDOW, sweep(300, Some(Probe::Echo), None)).is_none());
    }

    fn source(tcp: u64, syns: u64, acks: u64, bare: u64, rsts: u64) -> SourceView {
        let mut s = SourceView {
            tcp_packets: tcp,
            bare_acks: bare,
            rsts,
            ..SourceView::default()
        };
        s.probes[Probe::Syn as usize] = syns;
        s.probes[Probe::Ack as usize] = acks;
        s
    }

    #[test]
    fn a_monitoring_check_is_a_client_a_syn_sweep_is_not() {
        let hosts = Estimate::of(100);
        // 120 servers × 5 ports in a minute, each an HTTP-style check:
        // SYN, ACK, request, ACK, FIN+ACK, ACK.
        let checks = source(3_600, 600, 2_400, 1_800, 0);
        assert!(probes::is_client(&checks, Some(Probe::Ack), hosts));
        assert!(probes::is_client(&checks, Some(Probe::Syn), hosts));
        // nmap -sS -p22 over a /24: SYNs and the kernel's RSTs.
        let syn_sweep = source(254 + 40, 254, 0, 0, 40);
        assert!(!probes::is_client(&syn_sweep, Some(Probe::Syn), hosts));
        // nmap -sn: per host echo, SYN 443, ACK 80, timestamp.
        let mut ping_sweep = source(508, 254, 254, 254, 0);
        ping_sweep.probes[Probe::Echo as usize] = 508;
        assert!(!probes::is_client(&ping_sweep, Some(Probe::Echo), hosts));
        assert!(!probes::is_client(&ping_sweep, Some(Probe::Syn), hosts));
    }
}
