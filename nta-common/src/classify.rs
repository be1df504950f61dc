//! What a parsed packet is, for the counters: its traffic class at the
//! destination, whether it is a probe a scanner sends, and which reflection
//! service it comes from. Both packet sources (the XDP program and a capture
//! reader) classify with these functions, so they count alike.

/// TCP flag bits (the 13th byte of the TCP header).
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

/// ICMP and ICMPv6 types a host sweep sends.
pub mod icmp_type {
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIMESTAMP_REQUEST: u8 = 13;
    pub const V6_ECHO_REQUEST: u8 = 128;
}

/// Traffic classes counted per destination host: what a flood on a victim
/// is made of. Index into the `DstHostStats` arrays and the destination
/// thresholds.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DstClass {
    /// TCP SYN without ACK.
    Syn = 0,
    /// Any other TCP segment without payload: ACK, RST, FIN, SYN-ACK floods.
    /// Data segments are not in it, so a bulk transfer is not a TCP flood.
    Tcp = 1,
    /// UDP, first fragments included.
    Udp = 2,
    /// ICMP and ICMPv6.
    Icmp = 3,
    /// IP fragments, first or later, counted here as well as in their
    /// transport's class (a later fragment has none).
    Fragment = 4,
    /// Every IP packet.
    All = 5,
}

/// Number of [`DstClass`]es.
pub const DST_CLASSES: usize = 6;

impl DstClass {
    pub const ALL: [DstClass; DST_CLASSES] = [
        Self::Syn,
        Self::Tcp,
        Self::Udp,
        Self::Icmp,
        Self::Fragment,
        Self::All,
    ];

    /// Stable snake_case name, used in the config, alerts and the API.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Syn => "syn",
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Icmp => "icmp",
            Self::Fragment => "fragment",
            Self::All => "all",
        }
    }

    pub const fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => Self::Syn,
            1 => Self::Tcp,
            2 => Self::Udp,
            3 => Self::Icmp,
            4 => Self::Fragment,
            5 => Self::All,
            _ => return None,
        })
    }
}

/// `tcp_class` result for a segment with payload: no flood class.
pub const NO_DST_CLASS: u32 = u32::MAX;

/// The destination class of a TCP segment as a number ([`DstClass`] or
/// [`NO_DST_CLASS`]).
///
/// A number rather than `Option<DstClass>`: for BPF, LLVM folds such an
/// option into a niche compare the verifier cannot always follow.
#[inline(always)]
pub const fn tcp_class(flags: u8, payload_len: u32) -> u32 {
    use tcp_flags::{ACK, SYN};
    if flags & (SYN | ACK) == SYN {
        DstClass::Syn as u32
    } else if payload_len == 0 {
        DstClass::Tcp as u32
    } else {
        NO_DST_CLASS
    }
}

/// What a scanner sends to find a host or a port; index into
/// `SourceStats::probes`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Probe {
    /// TCP SYN without ACK (`nmap -sS`, `-sT`), whatever else is set.
    Syn = 0,
    /// TCP without SYN, RST or ACK: FIN, NULL and Xmas scans (`-sF`, `-sN`,
    /// `-sX`). No connection ever carries such a segment.
    Fin = 1,
    /// TCP with ACK and no payload, with or without FIN (`-sA`, `-sM`),
    /// towards a lower port than it came from (client to service).
    Ack = 2,
    /// UDP towards a lower port than it came from (`-sU`).
    Udp = 3,
    /// ICMP echo or timestamp request (`-sn`, `ping`).
    Echo = 4,
}

/// Number of [`Probe`]s.
pub const PROBES: usize = 5;

/// `probe` result for a packet that is not a probe.
pub const NOT_A_PROBE: u32 = u32::MAX;

impl Probe {
    pub const ALL: [Probe; PROBES] = [Self::Syn, Self::Fin, Self::Ack, Self::Udp, Self::Echo];

    /// Stable snake_case name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Syn => "syn",
            Self::Fin => "fin",
            Self::Ack => "ack",
            Self::Udp => "udp",
            Self::Echo => "echo",
        }
    }

    /// Whether the probe goes to a port (all but ICMP).
    pub const fn has_port(self) -> bool {
        !matches!(self, Self::Echo)
    }
}

/// The probe a TCP segment is, as a number ([`Probe`] or [`NOT_A_PROBE`]).
///
/// ACK and FIN+ACK segments also close and acknowledge real connections, so
/// they count only when they go from a higher port to a lower one, the way
/// a client talks to a service: a server's ACKs to its clients' ephemeral
/// ports are never probes. A client's own ACKs reach the one port it is
/// connected to, which does not add up to a scan.
#[inline(always)]
pub const fn tcp_probe(flags: u8, src_port: u16, dst_port: u16, payload_len: u32) -> u32 {
    use tcp_flags::{ACK, RST, SYN};
    // With RST too, still a SYN: as for the destination's class and the
    // per-port SYN counts.
    if flags & (SYN | ACK) == SYN {
        return Probe::Syn as u32;
    }
    if flags & (SYN | ACK | RST) == 0 {
        return Probe::Fin as u32;
    }
    // Bare ACK or FIN+ACK (Maimon); PSH, URG, ECE and CWR do not matter,
    // as for the bare-ACK rate class.
    if flags & (SYN | RST) == 0 && flags & ACK != 0 && payload_len == 0 && dst_port < src_port {
        return Probe::Ack as u32;
    }
    NOT_A_PROBE
}

/// The probe a UDP datagram is: one towards a lower port than it came from.
/// Replies come from a service's port to a client's higher ephemeral one, so
/// a resolver's answers or an NTP server's never look like a scan.
#[inline(always)]
pub const fn udp_probe(src_port: u16, dst_port: u16) -> u32 {
    if dst_port < src_port {
        Probe::Udp as u32
    } else {
        NOT_A_PROBE
    }
}

/// The probe an ICMP or ICMPv6 message of type `icmp_type` is.
#[inline(always)]
pub const fn icmp_probe(icmp_type: u8) -> u32 {
    match icmp_type {
        icmp_type::ECHO_REQUEST | icmp_type::TIMESTAMP_REQUEST | icmp_type::V6_ECHO_REQUEST => {
            Probe::Echo as u32
        }
        _ => NOT_A_PROBE,
    }
}

/// UDP services abused for reflection and amplification: a flood on a
/// victim that comes mostly from one of these source ports is their replies
/// to requests sent with the victim's address. Sources: US-CERT TA14-017A,
/// Rossow's "Amplification Hell" (NDSS 2014), and the memcached, WS-Discovery,
/// ARD and CoAP attacks seen since.
pub const REFLECTION_SERVICES: [(u16, &str); SERVICES] = [
    (17, "QOTD"),
    (19, "chargen"),
    (53, "DNS"),
    (69, "TFTP"),
    (111, "portmap"),
    (123, "NTP"),
    (137, "NetBIOS"),
    (161, "SNMP"),
    (389, "CLDAP"),
    (1434, "MS-SQL"),
    (1900, "SSDP"),
    (3283, "ARD"),
    (3702, "WS-Discovery"),
    (5353, "mDNS"),
    (5683, "CoAP"),
    (11211, "memcached"),
];

/// Number of [`REFLECTION_SERVICES`].
pub const SERVICES: usize = 16;

/// `reflection_service` result for a port that is none of them.
pub const NO_SERVICE: u32 = u32::MAX;

/// Slots of [`SERVICE_TABLE`]: a power of two, four times the services, so
/// that a multiplier placing every service in its own slot is found fast.
const SERVICE_SLOTS: usize = 64;

/// The multiplier that spreads the service ports over distinct slots.
const SERVICE_HASH: u32 = service_hash();

#[inline(always)]
const fn service_slot(port: u16, multiplier: u32) -> usize {
    ((port as u32).wrapping_mul(multiplier) >> 26) as usize & (SERVICE_SLOTS - 1)
}

/// The first odd multiplier under which no two service ports share a slot
/// (found at compile time).
const fn service_hash() -> u32 {
    let mut multiplier: u32 = 0x9E37_79B9;
    loop {
        let mut used = [false; SERVICE_SLOTS];
        let mut i = 0;
        let mut clash = false;
        while i < SERVICES {
            let slot = service_slot(REFLECTION_SERVICES[i].0, multiplier);
            if used[slot] {
                clash = true;
            }
            used[slot] = true;
            i += 1;
        }
        if !clash {
            return multiplier;
        }
        // A large odd step: a small one barely moves small ports.
        multiplier = multiplier.wrapping_add(0x6A09_E667) | 1;
    }
}

/// Per slot, the service port there and its index, or port 0.
const SERVICE_TABLE: [(u16, u8); SERVICE_SLOTS] = {
    let mut table = [(0u16, 0u8); SERVICE_SLOTS];
    let mut i = 0;
    while i < SERVICES {
        let port = REFLECTION_SERVICES[i].0;
        table[service_slot(port, SERVICE_HASH)] = (port, i as u8);
        i += 1;
    }
    table
};

/// Index in [`REFLECTION_SERVICES`] of the service on UDP port `port`, or
/// [`NO_SERVICE`].
///
/// One table load and one compare, no chain of branches: in the XDP program
/// every branch that yields a different constant is a path the verifier
/// walks separately, and sixteen of them multiply every path after.
#[inline(always)]
pub fn reflection_service(port: u16) -> u32 {
    let (at, index) = SERVICE_TABLE[service_slot(port, SERVICE_HASH)];
    if at == port && port != 0 {
        index as u32
    } else {
        NO_SERVICE
    }
}

#[cfg(test)]
mod tests {
    use super::{tcp_flags::*, *};

    #[test]
    fn the_service_match_agrees_with_the_table() {
        for (i, (port, _)) in REFLECTION_SERVICES.iter().enumerate() {
            assert_eq!(reflection_service(*port), i as u32, "port {port}");
        }
        assert_eq!(reflection_service(80), NO_SERVICE);
        assert_eq!(reflection_service(0), NO_SERVICE);
    }

    #[test]
    fn nmaps_tcp_probes_are_told_apart() {
        let p = |flags, src, dst, len| tcp_probe(flags, src, dst, len);
        assert_eq!(p(SYN, 40000, 22, 0), Probe::Syn as u32);
        assert_eq!(p(FIN, 40000, 22, 0), Probe::Fin as u32);
        assert_eq!(p(0, 40000, 22, 0), Probe::Fin as u32, "NULL");
        assert_eq!(p(FIN | PSH | URG, 40000, 22, 0), Probe::Fin as u32, "Xmas");
        assert_eq!(p(ACK, 40000, 22, 0), Probe::Ack as u32);
        assert_eq!(p(FIN | ACK, 40000, 22, 0), Probe::Ack as u32, "Maimon");
    }

    #[test]
    fn connection_traffic_is_not_a_probe() {
        let p = |flags, src, dst, len| tcp_probe(flags, src, dst, len);
        assert_eq!(p(SYN | ACK, 22, 40000, 0), NOT_A_PROBE);
        assert_eq!(p(ACK, 443, 51000, 0), NOT_A_PROBE, "a server's ACK");
        assert_eq!(p(FIN | ACK, 443, 51000, 0), NOT_A_PROBE, "a server's FIN");
        assert_eq!(p(ACK | PSH, 51000, 443, 300), NOT_A_PROBE, "data");
        assert_eq!(p(RST, 51000, 443, 0), NOT_A_PROBE);
        assert_eq!(p(RST | ACK, 51000, 443, 0), NOT_A_PROBE);
    }

    #[test]
    fn udp_replies_are_not_probes() {
        assert_eq!(udp_probe(45678, 161), Probe::Udp as u32);
        assert_eq!(udp_probe(53, 40001), NOT_A_PROBE);
        assert_eq!(udp_probe(123, 123), NOT_A_PROBE);
    }

    #[test]
    fn only_requests_are_icmp_probes() {
        assert_eq!(icmp_probe(8), Probe::Echo as u32);
        assert_eq!(icmp_probe(128), Probe::Echo as u32);
        assert_eq!(icmp_probe(13), Probe::Echo as u32);
        assert_eq!(icmp_probe(0), NOT_A_PROBE, "echo reply");
        assert_eq!(icmp_probe(3), NOT_A_PROBE, "unreachable");
    }

    #[test]
    fn data_segments_have_no_flood_class() {
        assert_eq!(tcp_class(SYN, 0), DstClass::Syn as u32);
        assert_eq!(tcp_class(SYN | ACK, 0), DstClass::Tcp as u32);
        assert_eq!(tcp_class(ACK, 0), DstClass::Tcp as u32);
        assert_eq!(tcp_class(RST, 0), DstClass::Tcp as u32);
        assert_eq!(tcp_class(ACK | PSH, 1400), NO_DST_CLASS);
    }
}
