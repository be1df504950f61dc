//! Hand-built Ethernet frames to run the XDP program on.
//!
//! Each layer is built on its own and wrapped by the one below it: a TCP
//! segment from [`Tcp`], put in an IP packet by [`Ipv4`] or [`Ipv6`], put in
//! a frame by [`ethernet`] or [`ethernet_tagged`]. Fields the program never
//! reads keep fixed, plausible values. The IPv4 header checksum is computed;
//! TCP, UDP and ICMP checksums are left zero, as XDP does not verify them.
//!
//! Addresses come from the benchmarking range 198.18.0.0/15 and the
//! documentation prefix 2001:db8::/32.

use std::net::{Ipv4Addr, Ipv6Addr};

use nta_common::maps::ip_proto;

pub const SRC_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
pub const DST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

pub const ETH_HLEN: usize = 14;
/// Shortest Ethernet frame without FCS: shorter ones are padded to it.
pub const ETH_ZLEN: usize = 60;
pub const VLAN_HLEN: usize = 4;
pub const IPV4_HLEN: usize = 20;
pub const IPV6_HLEN: usize = 40;
pub const TCP_HLEN: usize = 20;
pub const UDP_HLEN: usize = 8;
/// Type, code, checksum: what the program requires of an ICMP header.
pub const ICMP_MIN_LEN: usize = 4;

pub const ETH_P_IPV4: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86DD;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88A8;

/// Protocols the program does not tell apart (it counts them as other), so
/// `nta_common::maps::ip_proto` does not name them.
pub const IPPROTO_GRE: u8 = 47;
pub const IPPROTO_NONE: u8 = 59;

/// TCP flag bits (byte 13 of the header), as the program reads them.
pub use nta_common::classify::tcp_flags;

/// Sources and destinations the tests use unless they need many.
pub const SRC_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const DST_V4: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
pub const SRC_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub const DST_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

// ---------------------------------------------------------------- Ethernet

/// One VLAN tag: TPID, then the TCI (priority 0, DEI 0, VLAN id).
#[derive(Clone, Copy, Debug)]
pub struct VlanTag {
    pub tpid: u16,
    pub vid: u16,
}

impl VlanTag {
    /// An 802.1Q (customer) tag.
    pub const fn dot1q(vid: u16) -> Self {
        Self {
            tpid: ETH_P_8021Q,
            vid,
        }
    }

    /// An 802.1ad (service, outer QinQ) tag.
    pub const fn dot1ad(vid: u16) -> Self {
        Self {
            tpid: ETH_P_8021AD,
            vid,
        }
    }
}

/// An untagged Ethernet II frame (no FCS: XDP never sees one).
pub fn ethernet(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    ethernet_tagged(&[], ether_type, payload)
}

/// An Ethernet frame with `tags`, outermost first, before `ether_type`.
pub fn ethernet_tagged(tags: &[VlanTag], ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(ETH_HLEN + tags.len() * VLAN_HLEN + payload.len());
    frame.extend_from_slice(&DST_MAC);
    frame.extend_from_slice(&SRC_MAC);
    for tag in tags {
        frame.extend_from_slice(&tag.tpid.to_be_bytes());
        frame.extend_from_slice(&(tag.vid & 0x0fff).to_be_bytes());
    }
    frame.extend_from_slice(&ether_type.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// `frame` padded with zeros to the Ethernet minimum, as a NIC sends a short
/// frame: the padding is after the IP packet, outside its length fields.
pub fn pad_to_minimum(mut frame: Vec<u8>) -> Vec<u8> {
    if frame.len() < ETH_ZLEN {
        frame.resize(ETH_ZLEN, 0);
    }
    frame
}

/// An ARP request (Ethernet/IPv4): "who has `target`? tell `sender`".
pub fn arp_request(sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    ethernet(ETH_P_ARP, &arp_request_body(sender, target))
}

/// The ARP part of [`arp_request`], to tag it or wrap it otherwise.
pub fn arp_request_body(sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut arp = Vec::with_capacity(28);
    arp.extend_from_slice(&1u16.to_be_bytes()); // hardware: Ethernet
    arp.extend_from_slice(&ETH_P_IPV4.to_be_bytes()); // protocol: IPv4
    arp.extend_from_slice(&[6, 4]); // address lengths
    arp.extend_from_slice(&1u16.to_be_bytes()); // operation: request
    arp.extend_from_slice(&SRC_MAC);
    arp.extend_from_slice(&sender.octets());
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&target.octets());
    arp
}

// -------------------------------------------------------------------- IPv4

/// An IPv4 header; [`Ipv4::packet`] puts it before a payload.
#[derive(Clone, Debug)]
pub struct Ipv4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub ttl: u8,
    pub identification: u16,
    /// Option bytes, padded with end-of-list (0) to a multiple of 4.
    pub options: Vec<u8>,
    /// The version nibble: 4 unless a test wants a malformed header.
    pub version: u8,
    /// Overrides the IHL nibble, which otherwise matches the options.
    pub ihl: Option<u8>,
    pub dont_fragment: bool,
    pub more_fragments: bool,
    /// Fragment offset in 8-octet units (13 bits).
    pub fragment_offset: u16,
}

impl Ipv4 {
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8) -> Self {
        Self {
            src,
            dst,
            protocol,
            ttl: 64,
            identification: 0x1234,
            options: Vec::new(),
            version: 4,
            ihl: None,
            dont_fragment: false,
            more_fragments: false,
            fragment_offset: 0,
        }
    }

    /// Adds `words` 32-bit words of options (IHL = 5 + `words`): NOPs, then
    /// one end-of-list, which is what padding looks like on the wire.
    pub fn option_words(mut self, words: usize) -> Self {
        let mut options = vec![1u8; words * 4]; // NOP
        if let Some(last) = options.last_mut() {
            *last = 0; // end of option list
        }
        self.options = options;
        self
    }

    /// Writes `ihl` in the header whatever its real length.
    pub fn ihl(mut self, ihl: u8) -> Self {
        self.ihl = Some(ihl);
        self
    }

    /// Writes `version` instead of 4.
    pub fn version(mut self, version: u8) -> Self {
        self.version = version;
        self
    }

    /// Marks the packet as a fragment: MF flag and offset in 8-octet units.
    pub fn fragment(mut self, more_fragments: bool, offset_units: u16) -> Self {
        self.more_fragments = more_fragments;
        self.fragment_offset = offset_units;
        self
    }

    /// Header length in bytes as built (before any IHL override).
    pub fn header_len(&self) -> usize {
        IPV4_HLEN + self.options.len().div_ceil(4) * 4
    }

    /// The header followed by `payload`.
    pub fn packet(&self, payload: &[u8]) -> Vec<u8> {
        let header_len = self.header_len();
        let ihl = self.ihl.unwrap_or((header_len / 4) as u8);
        let total_len = u16::try_from(header_len + payload.len()).expect("IPv4 packet too long");
        let flags_offset = (u16::from(self.dont_fragment) << 14)
            | (u16::from(self.more_fragments) << 13)
            | (self.fragment_offset & 0x1fff);

        let mut packet = Vec::with_capacity(header_len + payload.len());
        packet.push((self.version << 4) | (ihl & 0x0f));
        packet.push(0); // DSCP, ECN
        packet.extend_from_slice(&total_len.to_be_bytes());
        packet.extend_from_slice(&self.identification.to_be_bytes());
        packet.extend_from_slice(&flags_offset.to_be_bytes());
        packet.push(self.ttl);
        packet.push(self.protocol);
        packet.extend_from_slice(&[0, 0]); // checksum, below
        packet.extend_from_slice(&self.src.octets());
        packet.extend_from_slice(&self.dst.octets());
        packet.extend_from_slice(&self.options);
        packet.resize(header_len, 0);
        let checksum = internet_checksum(&packet);
        packet[10..12].copy_from_slice(&checksum.to_be_bytes());
        packet.extend_from_slice(payload);
        packet
    }

    /// The packet in an untagged Ethernet frame.
    pub fn frame(&self, payload: &[u8]) -> Vec<u8> {
        ethernet(ETH_P_IPV4, &self.packet(payload))
    }
}

/// RFC 1071 one's-complement sum.
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

// -------------------------------------------------------------------- IPv6

/// One IPv6 extension header; its next-header byte is filled in by [`Ipv6`].
#[derive(Clone, Debug)]
pub struct ExtHeader {
    /// Protocol number that announces this header.
    pub kind: u8,
    /// Everything after the next-header byte.
    pub rest: Vec<u8>,
}

impl ExtHeader {
    /// Hop-by-hop options, `units` × 8 octets beyond the first 8 (Hdr Ext Len).
    pub fn hop_by_hop(units: u8) -> Self {
        Self::options(ip_proto::HOPOPTS, units)
    }

    /// Destination options, `units` × 8 octets beyond the first 8.
    pub fn destination_options(units: u8) -> Self {
        Self::options(ip_proto::DSTOPTS, units)
    }

    /// A hop-by-hop or destination options header padded with one PadN option.
    fn options(kind: u8, units: u8) -> Self {
        let len = (usize::from(units) + 1) * 8;
        let mut rest = vec![units];
        // PadN covering the rest: type 1, length, zeros.
        rest.push(1);
        rest.push((len - 4) as u8);
        rest.resize(len - 1, 0);
        Self { kind, rest }
    }

    /// A routing header (type 4, segment routing) with no segments left:
    /// nodes ignore it and go on to the next header.
    pub fn routing() -> Self {
        // Hdr Ext Len 2: one 16-octet segment after the first 8 octets.
        let mut rest = vec![2, 4, 0, 0, 0, 0, 0];
        rest.extend_from_slice(&DST_V6.octets());
        Self {
            kind: ip_proto::ROUTING,
            rest,
        }
    }

    /// A fragment header: offset in 8-octet units, M flag.
    pub fn fragment(offset_units: u16, more_fragments: bool) -> Self {
        let offset_flags = (offset_units << 3) | u16::from(more_fragments);
        let mut rest = vec![0]; // reserved
        rest.extend_from_slice(&offset_flags.to_be_bytes());
        rest.extend_from_slice(&0x0bad_cafe_u32.to_be_bytes()); // identification
        Self {
            kind: ip_proto::FRAGMENT,
            rest,
        }
    }

    /// Length on the wire.
    pub fn wire_len(&self) -> usize {
        1 + self.rest.len()
    }
}

/// An IPv6 header and its extension headers; [`Ipv6::packet`] puts them before
/// a payload.
#[derive(Clone, Debug)]
pub struct Ipv6 {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    /// Protocol of the payload, after the last extension header.
    pub protocol: u8,
    pub hop_limit: u8,
    /// The version nibble: 6 unless a test wants a malformed header.
    pub version: u8,
    /// Extension headers, first first.
    pub ext: Vec<ExtHeader>,
}

impl Ipv6 {
    pub fn new(src: Ipv6Addr, dst: Ipv6Addr, protocol: u8) -> Self {
        Self {
            src,
            dst,
            protocol,
            hop_limit: 64,
            version: 6,
            ext: Vec::new(),
        }
    }

    /// Appends an extension header to the chain.
    pub fn ext(mut self, header: ExtHeader) -> Self {
        self.ext.push(header);
        self
    }

    /// Writes `version` instead of 6.
    pub fn version(mut self, version: u8) -> Self {
        self.version = version;
        self
    }

    /// Fixed header plus extension headers, in bytes.
    pub fn header_len(&self) -> usize {
        IPV6_HLEN + self.ext.iter().map(ExtHeader::wire_len).sum::<usize>()
    }

    /// The headers followed by `payload`.
    pub fn packet(&self, payload: &[u8]) -> Vec<u8> {
        let ext_len: usize = self.ext.iter().map(ExtHeader::wire_len).sum();
        let payload_len = u16::try_from(ext_len + payload.len()).expect("IPv6 payload too long");
        let first = self.ext.first().map_or(self.protocol, |h| h.kind);

        let mut packet = Vec::with_capacity(IPV6_HLEN + ext_len + payload.len());
        // Version, traffic class 0, flow label 0x12345.
        packet.extend_from_slice(&[self.version << 4, 0x01, 0x23, 0x45]);
        packet.extend_from_slice(&payload_len.to_be_bytes());
        packet.push(first);
        packet.push(self.hop_limit);
        packet.extend_from_slice(&self.src.octets());
        packet.extend_from_slice(&self.dst.octets());
        for (i, header) in self.ext.iter().enumerate() {
            let next = self.ext.get(i + 1).map_or(self.protocol, |h| h.kind);
            packet.push(next);
            packet.extend_from_slice(&header.rest);
        }
        packet.extend_from_slice(payload);
        packet
    }

    /// The packet in an untagged Ethernet frame.
    pub fn frame(&self, payload: &[u8]) -> Vec<u8> {
        ethernet(ETH_P_IPV6, &self.packet(payload))
    }
}

// --------------------------------------------------------------- Transport

/// A TCP segment.
#[derive(Clone, Debug)]
pub struct Tcp {
    pub src_port: u16,
    pub dst_port: u16,
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    /// Option bytes, padded with end-of-list (0) to a multiple of 4.
    pub options: Vec<u8>,
    /// Overrides the data offset nibble, which otherwise matches the options.
    pub data_offset: Option<u8>,
    pub payload: Vec<u8>,
}

impl Tcp {
    pub fn new(src_port: u16, dst_port: u16, flags: u8) -> Self {
        Self {
            src_port,
            dst_port,
            flags,
            seq: 0x0102_0304,
            ack: if flags & tcp_flags::ACK != 0 {
                0x0a0b_0c0d
            } else {
                0
            },
            window: 64_240,
            options: Vec::new(),
            data_offset: None,
            payload: Vec::new(),
        }
    }

    /// A connection attempt: SYN without ACK.
    pub fn syn(src_port: u16, dst_port: u16) -> Self {
        Self::new(src_port, dst_port, tcp_flags::SYN)
    }

    /// An acknowledgement: ACK only, no payload unless one is added.
    pub fn ack(src_port: u16, dst_port: u16) -> Self {
        Self::new(src_port, dst_port, tcp_flags::ACK)
    }

    /// A reset without ACK, as sent to a stray segment.
    pub fn rst(src_port: u16, dst_port: u16) -> Self {
        Self::new(src_port, dst_port, tcp_flags::RST)
    }

    /// The options a Linux ACK carries: two NOPs and timestamps (12 bytes,
    /// data offset 8).
    pub fn timestamps(mut self) -> Self {
        self.options = vec![1, 1, 8, 10, 0, 0, 0, 2, 0, 0, 0, 1];
        self
    }

    /// The options a Linux SYN carries: MSS, SACK permitted, timestamps,
    /// window scale (20 bytes, data offset 10).
    pub fn syn_options(mut self) -> Self {
        self.options = vec![
            2, 4, 0x05, 0xb4, // MSS 1460
            4, 2, // SACK permitted
            8, 10, 0, 0, 0, 1, 0, 0, 0, 0, // timestamps
            1, // NOP
            3, 3, 7, // window scale 7
        ];
        self
    }

    /// Writes `words` in the data offset nibble whatever the real length.
    pub fn data_offset(mut self, words: u8) -> Self {
        self.data_offset = Some(words);
        self
    }

    pub fn payload(mut self, payload: &[u8]) -> Self {
        self.payload = payload.to_vec();
        self
    }

    /// Header length in bytes as built (before any data offset override).
    pub fn header_len(&self) -> usize {
        TCP_HLEN + self.options.len().div_ceil(4) * 4
    }

    pub fn bytes(&self) -> Vec<u8> {
        let header_len = self.header_len();
        let data_offset = self.data_offset.unwrap_or((header_len / 4) as u8);
        let mut segment = Vec::with_capacity(header_len + self.payload.len());
        segment.extend_from_slice(&self.src_port.to_be_bytes());
        segment.extend_from_slice(&self.dst_port.to_be_bytes());
        segment.extend_from_slice(&self.seq.to_be_bytes());
        segment.extend_from_slice(&self.ack.to_be_bytes());
        segment.push(data_offset << 4);
        segment.push(self.flags);
        segment.extend_from_slice(&self.window.to_be_bytes());
        segment.extend_from_slice(&[0, 0]); // checksum
        segment.extend_from_slice(&[0, 0]); // urgent pointer
        segment.extend_from_slice(&self.options);
        segment.resize(header_len, 0);
        segment.extend_from_slice(&self.payload);
        segment
    }
}

/// A UDP datagram.
pub fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(UDP_HLEN + payload.len()).expect("UDP datagram too long");
    let mut datagram = Vec::with_capacity(usize::from(len));
    datagram.extend_from_slice(&src_port.to_be_bytes());
    datagram.extend_from_slice(&dst_port.to_be_bytes());
    datagram.extend_from_slice(&len.to_be_bytes());
    datagram.extend_from_slice(&[0, 0]); // checksum
    datagram.extend_from_slice(payload);
    datagram
}

/// A DNS query for `example.com. A` (the payload of a UDP or TCP message).
pub fn dns_query() -> Vec<u8> {
    let mut query = vec![
        0x4e, 0x54, // id
        0x01, 0x00, // flags: recursion desired
        0, 1, 0, 0, 0, 0, 0, 0, // one question
    ];
    query.extend_from_slice(b"\x07example\x03com\x00");
    query.extend_from_slice(&[0, 1, 0, 1]); // type A, class IN
    query
}

/// An ICMP echo request (type 8).
pub fn icmpv4_echo_request(id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    icmp_echo(8, id, seq, payload)
}

/// An ICMPv6 echo request (type 128).
pub fn icmpv6_echo_request(id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    icmp_echo(128, id, seq, payload)
}

fn icmp_echo(kind: u8, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut message = vec![kind, 0, 0, 0]; // type, code, checksum
    message.extend_from_slice(&id.to_be_bytes());
    message.extend_from_slice(&seq.to_be_bytes());
    message.extend_from_slice(payload);
    message
}

// ------------------------------------------------------------ Whole frames

/// A TCP segment in IPv4 in an untagged frame.
pub fn tcp_v4(src: Ipv4Addr, dst: Ipv4Addr, tcp: &Tcp) -> Vec<u8> {
    Ipv4::new(src, dst, ip_proto::TCP).frame(&tcp.bytes())
}

/// A TCP segment in IPv6 in an untagged frame.
pub fn tcp_v6(src: Ipv6Addr, dst: Ipv6Addr, tcp: &Tcp) -> Vec<u8> {
    Ipv6::new(src, dst, ip_proto::TCP).frame(&tcp.bytes())
}

/// A bare SYN (no options) over IPv4: 14 + 20 + 20 = 54 bytes.
///
/// Not padded to [`ETH_ZLEN`]: the program counts the frame as it gets it.
pub fn syn_v4(src: Ipv4Addr, dst: Ipv4Addr, src_port: u16, dst_port: u16) -> Vec<u8> {
    tcp_v4(src, dst, &Tcp::syn(src_port, dst_port))
}

/// A bare SYN (no options) over IPv6: 14 + 40 + 20 = 74 bytes.
pub fn syn_v6(src: Ipv6Addr, dst: Ipv6Addr, src_port: u16, dst_port: u16) -> Vec<u8> {
    tcp_v6(src, dst, &Tcp::syn(src_port, dst_port))
}

/// A UDP datagram in IPv4 in an untagged frame.
pub fn udp_v4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
    payload: &[u8],
) -> Vec<u8> {
    Ipv4::new(src, dst, ip_proto::UDP).frame(&udp(src_port, dst_port, payload))
}

/// A UDP datagram in IPv6 in an untagged frame.
pub fn udp_v6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    src_port: u16,
    dst_port: u16,
    payload: &[u8],
) -> Vec<u8> {
    Ipv6::new(src, dst, ip_proto::UDP).frame(&udp(src_port, dst_port, payload))
}

/// An ICMP echo request with 8 bytes of data over IPv4: 14 + 20 + 16 = 50 bytes.
pub fn ping_v4(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    Ipv4::new(src, dst, ip_proto::ICMP).frame(&icmpv4_echo_request(1, 1, &[0xab; 8]))
}

/// An ICMPv6 echo request with 8 bytes of data: 14 + 40 + 16 = 70 bytes.
pub fn ping_v6(src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    Ipv6::new(src, dst, ip_proto::ICMPV6).frame(&icmpv6_echo_request(1, 1, &[0xab; 8]))
}
