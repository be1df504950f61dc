//! A parsed IP packet: what the counting needs to know of a frame, filled in
//! by the XDP program's parser and by the capture reader's alike.

use crate::{Counter, IpKey};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Family {
    V4,
    V6,
}

/// Transport protocol class, from the IP protocol / next-header number.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
    Other,
}

/// What kind of transport header was read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TransportKind {
    Tcp,
    Udp,
    /// ICMP, other protocols: nothing more to read.
    Opaque,
    /// A fragment after the first: its transport header is in another packet.
    LaterFragment,
    /// The transport header is cut short; `Transport::error` says which.
    Truncated,
}

/// What was read of the transport header.
///
/// A struct with every field always written, not an enum with per-variant
/// fields: LLVM fills the unused bytes of an enum variant with whatever a
/// register holds, and when that is a packet pointer the verifier rejects
/// the partial spill.
#[derive(Clone, Copy, Debug)]
pub struct Transport {
    pub kind: TransportKind,
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP flags byte; for ICMP and ICMPv6, the message type.
    pub flags: u8,
    /// TCP sequence number (0 otherwise): puts sampled segments in order.
    pub seq: u32,
    /// Bytes after the TCP or UDP header, per the IP header's length fields.
    pub payload_len: u32,
    /// Offset of those bytes from the start of the frame.
    pub payload_offset: u32,
    /// For `Truncated`: the counter to increment.
    pub error: Counter,
}

impl Transport {
    #[inline(always)]
    pub const fn of(kind: TransportKind) -> Self {
        Self {
            kind,
            src_port: 0,
            dst_port: 0,
            flags: 0,
            seq: 0,
            payload_len: 0,
            payload_offset: 0,
            error: Counter::Packets,
        }
    }

    #[inline(always)]
    pub const fn truncated(error: Counter) -> Self {
        Self {
            error,
            ..Self::of(TransportKind::Truncated)
        }
    }
}

/// A parsed IPv4 or IPv6 packet.
#[derive(Clone, Copy, Debug)]
pub struct Packet {
    pub family: Family,
    pub src: IpKey,
    pub dst: IpKey,
    pub proto: Proto,
    /// The IP protocol number (IPv6: of the last header walked).
    pub ip_proto: u8,
    pub fragment: bool,
    pub transport: Transport,
}
