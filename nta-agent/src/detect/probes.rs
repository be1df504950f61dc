//! What a source's probes say about it: which kind of scan it runs, and
//! whether its TCP traffic is a client's (connections that carry data).

use nta_common::maps::Probe;

use crate::traffic::{SourceView, growth};

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
}
