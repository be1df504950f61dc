//! Straight-line header parsing with the bounds checks the verifier needs,
//! for the XDP program (over its context) and the capture reader (over a
//! byte slice) alike: both are a [`Frame`].
//!
//! Multi-byte fields are assembled from single-byte loads: the verifier knows
//! a byte is 0..=255, so a port built that way is provably below 65 536 and
//! can index the per-port array without another check.

use core::mem::{align_of, size_of};

use network_types::{
    eth::EthHdr,
    ip::{Ipv4Hdr, Ipv6Hdr},
    tcp::TcpHdr,
    udp::UdpHdr,
    vlan::VlanHdr,
};

use crate::{
    Counter, IpKey,
    maps::ip_proto,
    packet::{Family, Packet, Proto, Transport, TransportKind},
};

/// The bytes of a frame, as addresses: where they start and end.
///
/// Addresses rather than a slice because that is what the verifier checks:
/// a packet pointer compared with the end before each load.
pub trait Frame {
    fn data(&self) -> usize;
    fn data_end(&self) -> usize;
    /// `data` and `data_end` read anew, for loops (see the XDP program's
    /// implementation).
    fn fresh_bounds(&self) -> (usize, usize) {
        (self.data(), self.data_end())
    }
}

// `ptr_at` hands out pointers to anywhere in a frame.
const _: () =
    assert!(align_of::<Ipv4Hdr>() == 1 && align_of::<Ipv6Hdr>() == 1 && align_of::<UdpHdr>() == 1);

/// A frame in memory.
pub struct Bytes<'a>(pub &'a [u8]);

impl Frame for Bytes<'_> {
    #[inline(always)]
    fn data(&self) -> usize {
        self.0.as_ptr() as usize
    }

    #[inline(always)]
    fn data_end(&self) -> usize {
        self.0.as_ptr() as usize + self.0.len()
    }
}

const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;

/// 802.1Q and 802.1ad (QinQ): a frame with a third tag is counted, not parsed.
const MAX_VLAN_TAGS: usize = 2;

/// IPv6 extension headers walked before giving up. RFC 8200 allows each of
/// hop-by-hop, routing and fragment once and destination options twice, so a
/// legitimate chain of those has at most five; the bound keeps the loop
/// finite for the verifier.
const MAX_IPV6_EXT_HEADERS: usize = 5;

const ICMP_MIN_LEN: usize = 4;
const IPV6_FRAG_HDR_LEN: usize = 8;

/// Why a frame was not parsed down to its network header.
#[derive(Clone, Copy)]
pub struct Unparsed(pub Counter);

/// The Ethernet layer: where the network header starts and what it is.
pub struct Link {
    pub ether_type: u16,
    pub l3_offset: usize,
    pub vlan_tags: usize,
}

/// The fixed IP header, read before anything else: the blocklist looks up
/// the source here, so a blocked packet costs no more parsing, and a broken
/// extension-header chain cannot hide a blocked source.
pub struct Network {
    pub family: Family,
    pub src: IpKey,
    pub dst: IpKey,
    /// IPv4 protocol, or the next header after IPv6's fixed header.
    next: u8,
    /// Where the header ends (IPv4 options included).
    offset: usize,
    /// Where the IP payload ends, per the header's length field (may lie
    /// beyond the frame).
    end: usize,
    /// IPv4: MF set or a fragment offset. IPv6 finds out in its chain.
    fragment: bool,
    /// IPv4: a fragment offset, so the transport header is elsewhere.
    later_fragment: bool,
}

#[inline(always)]
fn ptr_at<T, F: Frame>(ctx: &F, offset: usize) -> Option<*const T> {
    ptr_in(ctx.data(), ctx.data_end(), offset)
}

/// `ptr_at` within bounds from [`Frame::fresh_bounds`]. Only for types of
/// alignment 1 (byte arrays and structs of them): a frame's bytes may
/// start anywhere.
#[inline(always)]
fn ptr_in<T>(start: usize, end: usize, offset: usize) -> Option<*const T> {
    if start + offset + size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *const T)
}

#[inline(always)]
fn be16(bytes: &[u8; 2]) -> u16 {
    ((bytes[0] as u16) << 8) | bytes[1] as u16
}

/// Reads the Ethernet header and up to two VLAN tags.
#[inline(always)]
pub fn link<F: Frame>(ctx: &F) -> Result<Link, Unparsed> {
    let eth: *const [u8; EthHdr::LEN] = ptr_at(ctx, 0).ok_or(Unparsed(Counter::ErrEthTruncated))?;
    let eth = unsafe { &*eth };
    let mut ether_type = be16(&[eth[12], eth[13]]);
    let mut offset = EthHdr::LEN;
    let mut vlan_tags = 0;
    for _ in 0..MAX_VLAN_TAGS {
        if ether_type != ETH_P_8021Q && ether_type != ETH_P_8021AD {
            break;
        }
        let tag: *const [u8; VlanHdr::LEN] =
            ptr_at(ctx, offset).ok_or(Unparsed(Counter::ErrVlanTruncated))?;
        let tag = unsafe { &*tag };
        ether_type = be16(&[tag[2], tag[3]]);
        offset += VlanHdr::LEN;
        vlan_tags += 1;
    }
    if ether_type == ETH_P_8021Q || ether_type == ETH_P_8021AD {
        return Err(Unparsed(Counter::ErrVlanTooDeep));
    }
    Ok(Link {
        ether_type,
        l3_offset: offset,
        vlan_tags,
    })
}

/// Whether the link layer carries IP at all.
#[inline(always)]
pub fn is_ip(link: &Link) -> bool {
    link.ether_type == ETH_P_IPV4 || link.ether_type == ETH_P_IPV6
}

/// Reads the fixed network header of an IP frame.
#[inline(always)]
pub fn network<F: Frame>(ctx: &F, link: &Link) -> Result<Network, Unparsed> {
    if link.ether_type == ETH_P_IPV4 {
        ipv4(ctx, link.l3_offset)
    } else {
        ipv6(ctx, link.l3_offset)
    }
}

/// Reads the rest: IPv6 extension headers, then the transport header.
#[inline(always)]
pub fn packet<F: Frame>(ctx: &F, network: &Network) -> Result<Packet, Unparsed> {
    match network.family {
        Family::V4 => Ok(ipv4_packet(ctx, network)),
        Family::V6 => ipv6_packet(ctx, network),
    }
}

#[inline(always)]
fn ipv4<F: Frame>(ctx: &F, offset: usize) -> Result<Network, Unparsed> {
    let hdr: *const Ipv4Hdr = ptr_at(ctx, offset).ok_or(Unparsed(Counter::ErrIpv4Truncated))?;
    let hdr = unsafe { &*hdr };
    let version = hdr.vihl >> 4;
    let header_len = ((hdr.vihl & 0x0f) as usize) * 4;
    if version != 4 || header_len < Ipv4Hdr::LEN {
        return Err(Unparsed(Counter::ErrIpv4Malformed));
    }
    // Options are part of the header: the whole of it must be in the frame.
    if ctx.data() + offset + header_len > ctx.data_end() {
        return Err(Unparsed(Counter::ErrIpv4Truncated));
    }
    let more_fragments = hdr.frags[0] & 0x20 != 0;
    let fragment_offset = be16(&hdr.frags) & 0x1fff;
    Ok(Network {
        family: Family::V4,
        src: unsafe { IpKey::read_v4(&raw const hdr.src_addr) },
        dst: unsafe { IpKey::read_v4(&raw const hdr.dst_addr) },
        next: hdr.proto,
        offset: offset + header_len,
        end: offset + be16(&hdr.tot_len) as usize,
        fragment: more_fragments || fragment_offset != 0,
        later_fragment: fragment_offset != 0,
    })
}

#[inline(always)]
fn ipv4_packet<F: Frame>(ctx: &F, network: &Network) -> Packet {
    let proto = network.next;
    let transport = if network.later_fragment {
        Transport::of(TransportKind::LaterFragment)
    } else {
        let l4_len = network.end.saturating_sub(network.offset);
        transport(ctx, network.offset, proto, ip_proto::ICMP, l4_len)
    };
    Packet {
        family: Family::V4,
        src: network.src,
        dst: network.dst,
        proto: classify(proto, ip_proto::ICMP),
        ip_proto: proto,
        fragment: network.fragment,
        transport,
    }
}

#[inline(always)]
fn ipv6<F: Frame>(ctx: &F, offset: usize) -> Result<Network, Unparsed> {
    let hdr: *const Ipv6Hdr = ptr_at(ctx, offset).ok_or(Unparsed(Counter::ErrIpv6Truncated))?;
    let hdr = unsafe { &*hdr };
    if hdr.vcf[0] >> 4 != 6 {
        return Err(Unparsed(Counter::ErrIpv6Truncated));
    }
    Ok(Network {
        family: Family::V6,
        src: unsafe { IpKey::read_v6(&raw const hdr.src_addr) },
        dst: unsafe { IpKey::read_v6(&raw const hdr.dst_addr) },
        next: hdr.next_hdr,
        offset: offset + Ipv6Hdr::LEN,
        end: offset + Ipv6Hdr::LEN + be16(&hdr.payload_len) as usize,
        fragment: false,
        later_fragment: false,
    })
}

#[inline(always)]
fn ipv6_packet<F: Frame>(ctx: &F, network: &Network) -> Result<Packet, Unparsed> {
    let mut next = network.next;
    let mut offset = network.offset;
    let mut fragment = false;
    let mut later_fragment = false;
    let mut walked = 0;
    while walked < MAX_IPV6_EXT_HEADERS {
        let (start, end) = ctx.fresh_bounds();
        match next {
            ip_proto::HOPOPTS | ip_proto::ROUTING | ip_proto::DSTOPTS => {
                // next header, length in 8-octet units not counting the first.
                let ext: *const [u8; 2] =
                    ptr_in(start, end, offset).ok_or(Unparsed(Counter::ErrIpv6ExtHeaders))?;
                let ext = unsafe { *ext };
                let len = (ext[1] as usize + 1) * 8;
                // The whole header must be in the frame, as for IPv4 options.
                if start + offset + len > end {
                    return Err(Unparsed(Counter::ErrIpv6ExtHeaders));
                }
                next = ext[0];
                offset += len;
            }
            ip_proto::FRAGMENT => {
                let frag: *const [u8; IPV6_FRAG_HDR_LEN] =
                    ptr_in(start, end, offset).ok_or(Unparsed(Counter::ErrIpv6ExtHeaders))?;
                let frag = unsafe { *frag };
                next = frag[0];
                fragment = true;
                // 13-bit offset in the top of bytes 2..4.
                later_fragment = be16(&[frag[2], frag[3]]) >> 3 != 0;
                offset += IPV6_FRAG_HDR_LEN;
                if later_fragment {
                    break;
                }
            }
            _ => break,
        }
        walked += 1;
    }
    if walked == MAX_IPV6_EXT_HEADERS && is_ipv6_ext_header(next) {
        return Err(Unparsed(Counter::ErrIpv6ExtHeaders));
    }
    let transport = if later_fragment {
        Transport::of(TransportKind::LaterFragment)
    } else {
        transport(
            ctx,
            offset,
            next,
            ip_proto::ICMPV6,
            network.end.saturating_sub(offset),
        )
    };
    Ok(Packet {
        family: Family::V6,
        src: network.src,
        dst: network.dst,
        proto: classify(next, ip_proto::ICMPV6),
        ip_proto: next,
        fragment,
        transport,
    })
}

#[inline(always)]
fn is_ipv6_ext_header(next: u8) -> bool {
    matches!(
        next,
        ip_proto::HOPOPTS | ip_proto::ROUTING | ip_proto::FRAGMENT | ip_proto::DSTOPTS
    )
}

#[inline(always)]
fn classify(proto: u8, icmp: u8) -> Proto {
    match proto {
        ip_proto::TCP => Proto::Tcp,
        ip_proto::UDP => Proto::Udp,
        p if p == icmp => Proto::Icmp,
        _ => Proto::Other,
    }
}

#[inline(always)]
fn transport<F: Frame>(ctx: &F, offset: usize, proto: u8, icmp: u8, l4_len: usize) -> Transport {
    match proto {
        ip_proto::TCP => {
            let Some(tcp) = ptr_at::<[u8; TcpHdr::LEN], F>(ctx, offset) else {
                return Transport::truncated(Counter::ErrTcpTruncated);
            };
            let raw = unsafe { &*tcp };
            let data_offset = (raw[12] >> 4) as usize * 4;
            if data_offset < TcpHdr::LEN || ctx.data() + offset + data_offset > ctx.data_end() {
                return Transport::truncated(Counter::ErrTcpTruncated);
            }
            Transport {
                kind: TransportKind::Tcp,
                src_port: be16(&[raw[0], raw[1]]),
                dst_port: be16(&[raw[2], raw[3]]),
                flags: raw[13],
                seq: u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]),
                payload_len: l4_len.saturating_sub(data_offset) as u32,
                payload_offset: (offset + data_offset) as u32,
                error: Counter::Packets,
            }
        }
        ip_proto::UDP => match ptr_at::<UdpHdr, F>(ctx, offset) {
            Some(udp) => {
                let udp = unsafe { &*udp };
                Transport {
                    kind: TransportKind::Udp,
                    src_port: be16(&udp.src),
                    dst_port: be16(&udp.dst),
                    payload_len: l4_len.saturating_sub(UdpHdr::LEN) as u32,
                    payload_offset: (offset + UdpHdr::LEN) as u32,
                    ..Transport::of(TransportKind::Udp)
                }
            }
            None => Transport::truncated(Counter::ErrUdpTruncated),
        },
        p if p == icmp => match ptr_at::<[u8; ICMP_MIN_LEN], F>(ctx, offset) {
            // The type, in `flags`: an echo request is a sweep's probe.
            Some(header) => Transport {
                flags: unsafe { (*header)[0] },
                ..Transport::of(TransportKind::Opaque)
            },
            None => Transport::truncated(Counter::ErrIcmpTruncated),
        },
        _ => Transport::of(TransportKind::Opaque),
    }
}
