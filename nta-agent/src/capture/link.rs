//! From a frame of any supported link type to where its IP packet starts;
//! the IP and transport headers are read by the parser the XDP program
//! uses (`nta_common::parse`).

use nta_common::{
    packet::{Packet, TransportKind},
    parse::{self, Bytes, Link as IpLink},
};

/// How a capture's frames begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Ethernet II, VLAN tags included.
    Ethernet,
    /// BSD loopback (`DLT_NULL`, `DLT_LOOP`): a 4-byte address family.
    Null,
    /// The IP header first.
    Raw,
    /// Linux cooked capture v1 (`tcpdump -i any` before libpcap 1.10).
    LinuxSll,
    /// Linux cooked capture v2 (`tcpdump -i any` since).
    LinuxSll2,
    /// Anything else, by its number: counted, not decoded.
    Other(i32),
}

const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;

/// Linux cooked headers: v1 has the protocol at 14..16 of 16 bytes, v2 at
/// 0..2 of 20.
const SLL_HEADER: usize = 16;
const SLL2_HEADER: usize = 20;
/// BSD loopback: a 4-byte address family, in the capturing host's order.
const NULL_HEADER: usize = 4;
/// BSD address families that mean IPv6 (NetBSD/FreeBSD/Darwin differ).
const AF_INET6: [u8; 3] = [24, 28, 30];
const AF_INET: u8 = 2;

/// For a link type other than Ethernet (whose header the shared parser
/// reads, VLAN tags and all): the EtherType its header gives and where the
/// IP header starts. An EtherType of 0 is "not IP".
pub fn ip_link(link: Link, frame: &[u8]) -> IpLink {
    let (ether_type, l3_offset) = match link {
        Link::Ethernet | Link::Other(_) => (0, 0),
        Link::Raw => match frame.first().map(|b| b >> 4) {
            Some(6) => (ETH_P_IPV6, 0),
            _ => (ETH_P_IPV4, 0),
        },
        Link::LinuxSll => (be16_at(frame, 14), SLL_HEADER),
        Link::LinuxSll2 => (be16_at(frame, 0), SLL2_HEADER),
        Link::Null => (null_ether_type(frame), NULL_HEADER),
    };
    IpLink {
        ether_type,
        l3_offset,
        vlan_tags: 0,
    }
}

fn be16_at(frame: &[u8], at: usize) -> u16 {
    match frame.get(at..at + 2) {
        Some(b) => u16::from_be_bytes([b[0], b[1]]),
        None => 0,
    }
}

/// The EtherType of a BSD loopback frame's address family, written in the
/// capturing host's byte order: either.
fn null_ether_type(frame: &[u8]) -> u16 {
    let Some(b) = frame.get(..NULL_HEADER) else {
        return 0;
    };
    let family = if b[0] == 0 { b[3] } else { b[0] };
    match family {
        AF_INET => ETH_P_IPV4,
        f if AF_INET6.contains(&f) => ETH_P_IPV6,
        _ => 0,
    }
}

/// The IP packet in `frame` as the XDP program parses it, without counting
/// it; `None` for what is not IP or too damaged to parse.
pub fn decode(link: Link, frame: &[u8]) -> Option<Packet> {
    let bytes = Bytes(frame);
    let ip = match link {
        Link::Ethernet => parse::link(&bytes).ok()?,
        other => ip_link(other, frame),
    };
    if !parse::is_ip(&ip) {
        return None;
    }
    let network = parse::network(&bytes, &ip).ok()?;
    parse::packet(&bytes, &network).ok()
}

/// The TCP or UDP payload of `packet` that `frame` holds (a capture's snap
/// length may have cut it); empty for anything else.
pub fn payload<'a>(packet: &Packet, frame: &'a [u8]) -> &'a [u8] {
    let t = &packet.transport;
    if !matches!(t.kind, TransportKind::Tcp | TransportKind::Udp) {
        return &[];
    }
    let start = t.payload_offset as usize;
    let end = start
        .saturating_add(t.payload_len as usize)
        .min(frame.len());
    frame.get(start..end).unwrap_or(&[])
}
