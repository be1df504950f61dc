//! Global per-CPU counters: what the XDP program totals for every packet.

/// Declares [`Counter`] with its index, machine name and [`Counter::ALL`].
macro_rules! counters {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)+) => {
        /// Index of one global counter in [`GlobalCounters`].
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Counter {
            $($(#[doc = $doc])* $variant,)+
        }

        impl Counter {
            /// Every counter, in index order.
            pub const ALL: [Counter; COUNTER_COUNT] = [$(Counter::$variant,)+];

            /// Stable snake_case name, used in logs and the API.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Counter::$variant => $name,)+
                }
            }
        }

        /// Number of global counters.
        pub const COUNTER_COUNT: usize = [$($name,)+].len();
    };
}

counters! {
    /// Every frame the program saw.
    Packets => "packets",
    /// Bytes of every frame, from the Ethernet header on.
    Bytes => "bytes",
    /// Frames with one or two VLAN tags (802.1Q or 802.1ad) that parsed; a
    /// frame whose tags fail to parse counts only as that failure, a blocked
    /// one only as blocked.
    VlanTagged => "vlan_tagged",
    /// Frames that are neither IPv4 nor IPv6 (ARP, LLDP, ...).
    NonIpPackets => "non_ip_packets",
    NonIpBytes => "non_ip_bytes",
    Ipv4Packets => "ipv4_packets",
    Ipv4Bytes => "ipv4_bytes",
    Ipv6Packets => "ipv6_packets",
    Ipv6Bytes => "ipv6_bytes",
    TcpPackets => "tcp_packets",
    TcpBytes => "tcp_bytes",
    UdpPackets => "udp_packets",
    UdpBytes => "udp_bytes",
    /// ICMP and ICMPv6.
    IcmpPackets => "icmp_packets",
    IcmpBytes => "icmp_bytes",
    /// IP packets whose transport is none of TCP, UDP, ICMP, ICMPv6 (GRE, ESP, SCTP, ...).
    OtherL4Packets => "other_l4_packets",
    OtherL4Bytes => "other_l4_bytes",
    /// TCP SYN without ACK: a connection attempt.
    TcpSyn => "tcp_syn",
    TcpSynAck => "tcp_syn_ack",
    TcpRst => "tcp_rst",
    TcpFin => "tcp_fin",
    /// TCP or UDP with source or destination port 53.
    Dns => "dns",
    /// IPv4 packets with MF set or a fragment offset, IPv6 packets with a fragment header.
    Fragments => "fragments",
    /// Fragments after the first: counted, but their transport header is not parsed.
    NonFirstFragments => "non_first_fragments",
    /// Frame shorter than an Ethernet header.
    ErrEthTruncated => "err_eth_truncated",
    /// VLAN tag cut short.
    ErrVlanTruncated => "err_vlan_truncated",
    /// More than two VLAN tags.
    ErrVlanTooDeep => "err_vlan_too_deep",
    /// IPv4 header cut short (including its options).
    ErrIpv4Truncated => "err_ipv4_truncated",
    /// IPv4 header with a wrong version or an IHL below 5.
    ErrIpv4Malformed => "err_ipv4_malformed",
    /// IPv6 fixed header cut short, or wrong version.
    ErrIpv6Truncated => "err_ipv6_truncated",
    /// IPv6 extension header cut short, or a chain longer than the program walks.
    ErrIpv6ExtHeaders => "err_ipv6_ext_headers",
    /// TCP header cut short, or a data offset below 5.
    ErrTcpTruncated => "err_tcp_truncated",
    ErrUdpTruncated => "err_udp_truncated",
    ErrIcmpTruncated => "err_icmp_truncated",
    /// Threshold events the agent could not be told about (event ring full).
    EventsLost => "events_lost",
    /// Payload samples put on the sample ring.
    SamplesTaken => "samples_taken",
    /// Samples the ring had no room for: the agent is behind.
    SamplesLost => "samples_lost",
    /// Samples skipped by the per-CPU rate cap.
    SamplesCapped => "samples_capped",
    // Appended, not grouped with the packet counters: the agent stores
    // history rows in index order, and older rows must keep their layout.
    /// IP packets dropped because their source is in the blocklist. They
    /// count in `packets` and `bytes` and nowhere else.
    BlockedPackets => "blocked_packets",
    /// Bytes of those frames, from the Ethernet header on.
    BlockedBytes => "blocked_bytes",
    /// Flows inserted into the flow table.
    FlowsNew => "flows_new",
    /// Packets of new flows not inserted: the new-flow rate was above its
    /// limit, or the table had no room.
    FlowsSkipped => "flows_skipped",
    /// Packets from sources not in the per-source table that were not
    /// inserted: the new-source rate was above its limit, or the table had
    /// no room. They are counted everywhere else.
    SourcesSkipped => "sources_skipped",
    /// Packets to destinations not in the per-destination table that found
    /// no room there (both their buckets full, or their tag another's).
    /// They are counted everywhere else.
    DstHostsSkipped => "dst_hosts_skipped",
}

/// Value of the per-CPU `GLOBAL` map's single entry; user space sums it over CPUs.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalCounters {
    pub values: [u64; COUNTER_COUNT],
}

impl GlobalCounters {
    /// All counters at zero.
    pub const ZERO: Self = Self {
        values: [0; COUNTER_COUNT],
    };

    /// The value of one counter.
    #[inline(always)]
    pub fn get(&self, counter: Counter) -> u64 {
        self.values[counter as usize]
    }
}

impl Default for GlobalCounters {
    fn default() -> Self {
        Self::ZERO
    }
}
