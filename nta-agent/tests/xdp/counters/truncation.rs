//! Every truncation of a frame: each prefix of it, from no byte at all to
//! the whole frame, counts exactly one outcome. One table of frames, each
//! with the outcome of every length, drives one sweep.

use std::net::IpAddr;

use nta_common::{Counter, classify::Probe, maps::ip_proto};

use super::{Class, Counting, Expect, Family, sweep_v4, sweep_v6};
use crate::support::{
    self,
    frames::{self, ETH_HLEN, ETH_P_IPV4, ExtHeader, Ipv4, Ipv6, Tcp, VlanTag},
    xdp::is_einval,
};

/// What a prefix of a frame counts.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    /// The link layer cut short: its error alone, not even `vlan_tagged`.
    LinkCut(Counter),
    /// The IP header, or an extension header, cut short: its error.
    IpCut(Counter),
    /// An IP packet of its class whose transport header is cut short.
    TransportCut(Class, Counter),
    /// An IP packet of its class without ports (ICMP), cut in its data.
    Ip(Class),
    /// A UDP datagram to port 53, cut anywhere in its payload: still DNS.
    Dns,
    /// The whole SYN to port 80.
    Syn,
}

use Outcome::{Dns, Ip, IpCut, LinkCut, Syn, TransportCut};

/// A frame to cut at every length.
struct Case {
    what: &'static str,
    family: Family,
    /// Tagged frames count `vlan_tagged` once the tags are whole.
    tagged: bool,
    /// The whole frame, with the addresses of `sweep_v4(i)` or `sweep_v6(i)`.
    build: fn(usize) -> Vec<u8>,
    /// The outcome of every length from `ETH_HLEN` on, by the longest
    /// length it is the outcome of; the last is the whole frame's length.
    outcomes: &'static [(usize, Outcome)],
}

const CASES: &[Case] = &[
    Case {
        what: "IPv4 SYN",
        family: Family::V4,
        tagged: false,
        build: |i| {
            let (src, dst) = sweep_v4(i);
            frames::syn_v4(src, dst, 40_000, 80)
        },
        outcomes: &[
            (33, IpCut(Counter::ErrIpv4Truncated)),
            (53, TransportCut(Class::Tcp, Counter::ErrTcpTruncated)),
            (54, Syn),
        ],
    },
    Case {
        what: "IPv6 SYN",
        family: Family::V6,
        tagged: false,
        build: |i| {
            let (src, dst) = sweep_v6(i);
            frames::syn_v6(src, dst, 40_000, 80)
        },
        outcomes: &[
            (53, IpCut(Counter::ErrIpv6Truncated)),
            (73, TransportCut(Class::Tcp, Counter::ErrTcpTruncated)),
            (74, Syn),
        ],
    },
    // IHL 15: the options run to byte 74; cut inside them is a cut header.
    Case {
        what: "IPv4 (IHL 15) SYN",
        family: Family::V4,
        tagged: false,
        build: |i| {
            let (src, dst) = sweep_v4(i);
            Ipv4::new(src, dst, ip_proto::TCP)
                .option_words(10)
                .frame(&Tcp::syn(40_000, 80).bytes())
        },
        outcomes: &[
            (73, IpCut(Counter::ErrIpv4Truncated)),
            (93, TransportCut(Class::Tcp, Counter::ErrTcpTruncated)),
            (94, Syn),
        ],
    },
    // Outer tag (bytes 14..18), then inner tag (18..22) cut short.
    Case {
        what: "QinQ IPv4 SYN",
        family: Family::V4,
        tagged: true,
        build: |i| {
            let (src, dst) = sweep_v4(i);
            let ip = Ipv4::new(src, dst, ip_proto::TCP).packet(&Tcp::syn(40_000, 80).bytes());
            frames::ethernet_tagged(&[VlanTag::dot1ad(100), VlanTag::dot1q(42)], ETH_P_IPV4, &ip)
        },
        outcomes: &[
            (21, LinkCut(Counter::ErrVlanTruncated)),
            (41, IpCut(Counter::ErrIpv4Truncated)),
            (61, TransportCut(Class::Tcp, Counter::ErrTcpTruncated)),
            (62, Syn),
        ],
    },
    // Ports are all the program reads: a cut payload is still DNS.
    Case {
        what: "IPv4 DNS query",
        family: Family::V4,
        tagged: false,
        build: |i| {
            let (src, dst) = sweep_v4(i);
            frames::udp_v4(src, dst, 33_333, 53, &frames::dns_query())
        },
        outcomes: &[
            (33, IpCut(Counter::ErrIpv4Truncated)),
            (41, TransportCut(Class::Udp, Counter::ErrUdpTruncated)),
            // 14 + 20 + 8 and a 29-byte query.
            (71, Dns),
        ],
    },
    Case {
        what: "ICMP echo",
        family: Family::V4,
        tagged: false,
        build: |i| {
            let (src, dst) = sweep_v4(i);
            Ipv4::new(src, dst, ip_proto::ICMP).frame(&frames::icmpv4_echo_request(1, 2, &[7; 8]))
        },
        outcomes: &[
            (33, IpCut(Counter::ErrIpv4Truncated)),
            (37, TransportCut(Class::Icmp, Counter::ErrIcmpTruncated)),
            (50, Ip(Class::Icmp)),
        ],
    },
    Case {
        what: "ICMPv6 echo",
        family: Family::V6,
        tagged: false,
        build: |i| {
            let (src, dst) = sweep_v6(i);
            Ipv6::new(src, dst, ip_proto::ICMPV6).frame(&frames::icmpv6_echo_request(1, 2, &[7; 8]))
        },
        outcomes: &[
            (53, IpCut(Counter::ErrIpv6Truncated)),
            (57, TransportCut(Class::Icmp, Counter::ErrIcmpTruncated)),
            (70, Ip(Class::Icmp)),
        ],
    },
    // A 16-byte hop-by-hop header at bytes 54..70, TCP at 70..90; the
    // extension header cut short, whether before or after its length byte,
    // is an extension-header error.
    Case {
        what: "IPv6 hop-by-hop SYN",
        family: Family::V6,
        tagged: false,
        build: |i| {
            let (src, dst) = sweep_v6(i);
            Ipv6::new(src, dst, ip_proto::TCP)
                .ext(ExtHeader::hop_by_hop(1))
                .frame(&Tcp::syn(40_000, 80).bytes())
        },
        outcomes: &[
            (53, IpCut(Counter::ErrIpv6Truncated)),
            (69, IpCut(Counter::ErrIpv6ExtHeaders)),
            (89, TransportCut(Class::Tcp, Counter::ErrTcpTruncated)),
            (90, Syn),
        ],
    },
];

impl Case {
    /// What the first `len` bytes of the frame count.
    fn expect(&self, len: usize) -> Expect {
        let (src, dst): (IpAddr, IpAddr) = match self.family {
            Family::V4 => {
                let (src, dst) = sweep_v4(len);
                (src.into(), dst.into())
            }
            Family::V6 => {
                let (src, dst) = sweep_v6(len);
                (src.into(), dst.into())
            }
        };
        let outcome = self
            .outcomes
            .iter()
            .find(|(longest, _)| len <= *longest)
            .map(|(_, outcome)| *outcome)
            .unwrap_or_else(|| panic!("{}: no outcome for length {len}", self.what));
        let family = self.family;
        let expect = match outcome {
            LinkCut(error) => return Expect::error(len, error),
            IpCut(error) => Expect::error(len, error),
            // No header, no transport class.
            TransportCut(class, error) => Expect::ip_packet(family, class, len, src, dst)
                .counters(&[(error, 1)])
                .no_dst_class(),
            // The ICMP cases are echo requests: a sweep's probes.
            Ip(Class::Icmp) => {
                Expect::ip_packet(family, Class::Icmp, len, src, dst).probe(Probe::Echo, 0)
            }
            Ip(class) => Expect::ip_packet(family, class, len, src, dst),
            Dns => Expect::ip_packet(family, Class::Udp, len, src, dst)
                .dst_port(53)
                .probe(Probe::Udp, 53)
                .counters(&[(Counter::Dns, 1)]),
            Syn => Expect::syn(family, len, src, dst, 80),
        };
        if self.tagged {
            expect.counters(&[(Counter::VlanTagged, 1)])
        } else {
            expect
        }
    }

    /// Runs the program on every prefix of the frame, from no byte to all
    /// of them, and checks what each one counted.
    ///
    /// Prefixes shorter than an Ethernet header never reach the program: on
    /// the kernels we run (checked on 6.18), `BPF_PROG_TEST_RUN` rejects XDP
    /// input below `ETH_HLEN` with EINVAL, also when XDP metadata is put
    /// before it through `xdp_md.data` (the packet itself must still be 14
    /// bytes). So `err_eth_truncated` cannot be reached from here; the sweep
    /// asserts the refusal and that nothing was counted.
    fn sweep(&self) {
        let mut xdp = Counting::load();
        let full_len = (self.build)(0).len();
        let (longest, _) = self.outcomes.last().expect("at least one outcome");
        assert_eq!(
            *longest, full_len,
            "{}: the last outcome's length",
            self.what
        );
        for len in 0..=full_len {
            let whole = (self.build)(len);
            assert_eq!(whole.len(), full_len);
            let prefix = &whole[..len];
            let case = format!("{}, first {len} of {full_len} bytes", self.what);
            if len < ETH_HLEN {
                let error = xdp
                    .try_run(prefix, 1)
                    .expect_err("the kernel runs XDP on frames shorter than ETH_HLEN");
                assert!(is_einval(&error), "{case}: expected EINVAL, got {error:?}");
                Expect::nothing().check(&xdp.delta(), &case);
            } else {
                xdp.pass(prefix);
                self.expect(len).check(&xdp.delta(), &case);
            }
        }
    }
}

/// Every frame of [`CASES`], cut at every length.
#[test]
fn every_truncation_of_a_frame_counts_exactly_one_outcome() {
    if !support::privileged() {
        return;
    }
    for case in CASES {
        case.sweep();
    }
}
