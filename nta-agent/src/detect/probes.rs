//! What a source's probes say about it: which kind of scan it runs, and
//! whether its TCP traffic is a client's (connections that carry data).

use nta_common::maps::Probe;

use super::sketch::Estimate;
use crate::traffic::{SourceView, growth};

/// UDP datagrams per host or port reached from which a UDP source is a
/// client. `nmap -sU` sends one probe per host and port, and retries an
/// unanswered one a few times; a QUIC page load alone exchanges dozens,
/// and a resolver's client sends every query to the same port.
const UDP_CLIENT_DATAGRAMS_PER_TARGET: f64 = 8.0;

/// The probes that go to a port: what port scans are made of.
pub const PORT_PROBES: [Probe; 4] = [Probe::Syn, Probe::Fin, Probe::Ack, Probe::Udp];

/// The kind among `kinds` the source sent most of between `before` and
/// `after` (ties to the earlier kind in `kinds`); with no growth, or no
/// earlier read (a kernel event), over everything it has sent. `None` if
/// it sent none of them.
pub fn dominant(before: Option<&SourceView>, after: &SourceView, kinds: &[Probe]) -> Option<Probe> {
    let busiest = |count: &dyn Fn(Probe) -> u64| {
        kinds
            .iter()
            .map(|&k| (k, count(k)))
            .filter(|&(_, n)| n > 0)
            .reduce(|best, next| if next.1 > best.1 { next } else { best })
            .map(|(k, _)| k)
    };
    before
        .and_then(|b| busiest(&|k| growth(b.probe(k), after.probe(k))))
        .or_else(|| busiest(&|k| after.probe(k)))
}

/// How a scan or sweep made of `kind` is called: "SYN", "FIN/NULL/Xmas"
/// (the segments no connection carries), "ACK" (ACK and Maimon), "UDP",
/// "Ping" (ICMP echo and timestamp).
pub fn label(kind: Probe) -> &'static str {
    match kind {
        Probe::Syn => "SYN",
        Probe::Fin => "FIN/NULL/Xmas",
        Probe::Ack => "ACK",
        Probe::Udp => "UDP",
        Probe::Echo => "Ping",
    }
}

/// TCP segments the source sent that carried data, about: its TCP
/// segments less SYNs, FIN/NULL/Xmas, RSTs and payload-free ACKs. Bare ACKs
/// are counted twice over (in `bare_acks`, and in the ACK probes when they
/// go to a lower port, with the FIN+ACKs): the larger of the two stands
/// for both, so a client's FIN+ACKs may count as data, never the reverse.
pub fn data_segments(s: &SourceView) -> u64 {
    s.tcp_packets
        .saturating_sub(s.syns())
        .saturating_sub(s.probe(Probe::Fin))
        .saturating_sub(s.rsts)
        .saturating_sub(s.bare_acks.max(s.probe(Probe::Ack)))
}

/// Whether the source's TCP connections carry data: at least one data
/// segment for every two SYNs. A browser or a monitoring check sends a
/// request on each connection it opens; nmap's SYN, connect, ACK and ping
/// probes send none.
pub fn tcp_client(s: &SourceView) -> bool {
    let data = data_segments(s);
    data > 0 && data.saturating_mul(2) >= s.syns()
}

/// Whether a source probing with `kind`, which reached `reached` distinct
/// hosts (sweeps) or ports (scans), is a client: its TCP connections carry
/// data ([`tcp_client`]), or it exchanges many UDP datagrams per target.
/// Pings and unknown probes never are.
pub fn is_client(s: &SourceView, kind: Option<Probe>, reached: Estimate) -> bool {
    match kind {
        Some(Probe::Syn | Probe::Fin | Probe::Ack) => tcp_client(s),
        Some(Probe::Udp) => s.udp_packets as f64 >= UDP_CLIENT_DATAGRAMS_PER_TARGET * reached.value,
        Some(Probe::Echo) | None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nta_common::maps::PROBES;

    fn sent(probes: [(Probe, u64); 2]) -> SourceView {
        let mut p = [0; PROBES];
        for (kind, n) in probes {
            p[kind as usize] += n;
        }
        SourceView {
            probes: p,
            ..SourceView::default()
        }
    }

    #[test]
    fn the_kind_is_what_grew_most_in_the_interval() {
        let before = sent([(Probe::Syn, 5_000), (Probe::Udp, 0)]);
        let after = sent([(Probe::Syn, 5_010), (Probe::Udp, 900)]);
        assert_eq!(
            dominant(Some(&before), &after, &PORT_PROBES),
            Some(Probe::Udp)
        );
        // A kernel event has no earlier read: everything sent counts.
        assert_eq!(dominant(None, &after, &PORT_PROBES), Some(Probe::Syn));
        // No growth at all: everything sent counts.
        assert_eq!(
            dominant(Some(&after), &after, &PORT_PROBES),
            Some(Probe::Syn)
        );
        assert_eq!(dominant(None, &SourceView::default(), &PORT_PROBES), None);
    }

    #[test]
    fn echo_is_not_a_port_probe() {
        let pinger = sent([(Probe::Echo, 500), (Probe::Syn, 2)]);
        assert_eq!(dominant(None, &pinger, &PORT_PROBES), Some(Probe::Syn));
        assert_eq!(dominant(None, &pinger, &Probe::ALL), Some(Probe::Echo));
    }

    #[test]
    fn each_kind_has_its_scan_name() {
        let names: Vec<&str> = Probe::ALL.into_iter().map(label).collect();
        assert_eq!(names, ["SYN", "FIN/NULL/Xmas", "ACK", "UDP", "Ping"]);
    }

    #[test]
    fn connections_with_requests_are_a_clients() {
        // 10 HTTP checks: SYN, ACK, GET, ACK, FIN+ACK, ACK each.
        let mut checks = sent([(Probe::Syn, 10), (Probe::Ack, 40)]);
        checks.tcp_packets = 60;
        checks.bare_acks = 30;
        assert_eq!(data_segments(&checks), 10);
        assert!(tcp_client(&checks));
        // nmap -sS: SYNs, and the kernel's RSTs to the SYN-ACKs.
        let mut syn_scan = sent([(Probe::Syn, 254), (Probe::Ack, 0)]);
        syn_scan.tcp_packets = 254 + 30;
        syn_scan.rsts = 30;
        assert!(!tcp_client(&syn_scan));
        // nmap -sA: ACKs only, no SYN, no data.
        let mut ack_scan = sent([(Probe::Ack, 254), (Probe::Syn, 0)]);
        ack_scan.tcp_packets = 254;
        ack_scan.bare_acks = 254;
        assert!(!tcp_client(&ack_scan));
    }

    #[test]
    fn a_quic_browser_is_a_client_a_udp_sweep_or_scan_is_not() {
        let browser = SourceView {
            udp_packets: 4_000,
            ..SourceView::default()
        };
        assert!(is_client(&browser, Some(Probe::Udp), Estimate::of(40)));
        let snmp_sweep = SourceView {
            udp_packets: 80,
            ..SourceView::default()
        };
        assert!(!is_client(&snmp_sweep, Some(Probe::Udp), Estimate::of(40)));
        // nmap -sU -p 1-1000 on one host: a datagram or two per port.
        let udp_scan = SourceView {
            udp_packets: 1_500,
            ..SourceView::default()
        };
        assert!(!is_client(&udp_scan, Some(Probe::Udp), Estimate::of(445)));
    }

    #[test]
    fn pings_are_never_a_clients() {
        let pinger = SourceView {
            udp_packets: 1_000_000,
            tcp_packets: 1_000_000,
            ..SourceView::default()
        };
        assert!(!is_client(&pinger, Some(Probe::Echo), Estimate::of(40)));
        assert!(!is_client(&pinger, None, Estimate::of(40)));
    }
}
