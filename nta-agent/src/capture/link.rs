//! From a frame of any supported link type to its IP packet, its addresses,
//! transport and payload (etherparse slices the headers).

use std::net::{IpAddr, SocketAddr};

use etherparse::{EtherType, NetSlice, SlicedPacket, TransportSlice};

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

/// What nta looks at in an IP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The IP protocol number (of the last header, past IPv6 extensions).
    pub proto: u8,
    /// TCP or UDP: the ports, the TCP flags (0 for UDP) and the payload.
    pub transport: Option<Transport<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp_flags: u8,
    pub payload: &'a [u8],
}

impl Network<'_> {
    pub fn src_socket(&self) -> Option<SocketAddr> {
        self.transport
            .as_ref()
            .map(|t| SocketAddr::new(self.src, t.src_port))
    }

    pub fn dst_socket(&self) -> Option<SocketAddr> {
        self.transport
            .as_ref()
            .map(|t| SocketAddr::new(self.dst, t.dst_port))
    }
}

/// Linux cooked v2: protocol type (2), reserved (2), interface (4), ARPHRD
/// type (2), packet type (1), address length (1), address (8).
const SLL2_HEADER: usize = 20;

/// BSD address families that mean IPv6 (NetBSD/FreeBSD/Darwin differ).
const AF_INET6: [u32; 3] = [24, 28, 30];
const AF_INET: u32 = 2;

/// The IP packet in `frame` of link type `link`, sliced; `None` for what
/// is not IP (ARP, other link types) or too damaged to slice.
pub fn network(link: Link, frame: &[u8]) -> Option<Network<'_>> {
    let sliced = match link {
        Link::Ethernet => SlicedPacket::from_ethernet(frame).ok()?,
        Link::Raw => SlicedPacket::from_ip(frame).ok()?,
        Link::LinuxSll => SlicedPacket::from_linux_sll(frame).ok()?,
        Link::LinuxSll2 => {
            let proto = u16::from_be_bytes([*frame.first()?, *frame.get(1)?]);
            SlicedPacket::from_ether_type(EtherType(proto), frame.get(SLL2_HEADER..)?).ok()?
        }
        Link::Null => {
            let family: [u8; 4] = frame.get(..4)?.try_into().ok()?;
            // Written in the capturing host's byte order: either.
            let (le, be) = (u32::from_le_bytes(family), u32::from_be_bytes(family));
            let ip = frame.get(4..)?;
            if le == AF_INET || be == AF_INET || AF_INET6.iter().any(|f| *f == le || *f == be) {
                SlicedPacket::from_ip(ip).ok()?
            } else {
                return None;
            }
        }
        Link::Other(_) => return None,
    };
    let (src, dst, proto) = match sliced.net.as_ref()? {
        NetSlice::Ipv4(v4) => {
            let h = v4.header();
            (
                IpAddr::from(h.source_addr()),
                IpAddr::from(h.destination_addr()),
                v4.payload().ip_number.0,
            )
        }
        NetSlice::Ipv6(v6) => {
            let h = v6.header();
            (
                IpAddr::from(h.source_addr()),
                IpAddr::from(h.destination_addr()),
                v6.payload().ip_number.0,
            )
        }
        NetSlice::Arp(_) => return None,
    };
    let transport = match sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => Some(Transport {
            src_port: tcp.source_port(),
            dst_port: tcp.destination_port(),
            tcp_flags: tcp_flags(&tcp),
            payload: tcp.payload(),
        }),
        Some(TransportSlice::Udp(udp)) => Some(Transport {
            src_port: udp.source_port(),
            dst_port: udp.destination_port(),
            tcp_flags: 0,
            payload: udp.payload(),
        }),
        _ => None,
    };
    Some(Network {
        src,
        dst,
        proto,
        transport,
    })
}

fn tcp_flags(tcp: &etherparse::TcpSlice<'_>) -> u8 {
    use nta_common::classify::tcp_flags::{ACK, FIN, PSH, RST, SYN, URG};
    [
        (tcp.fin(), FIN),
        (tcp.syn(), SYN),
        (tcp.rst(), RST),
        (tcp.psh(), PSH),
        (tcp.ack(), ACK),
        (tcp.urg(), URG),
    ]
    .iter()
    .filter(|(set, _)| *set)
    .fold(0, |flags, (_, bit)| flags | bit)
}
