//! User-space only: `aya::Pod` impls, address and CIDR conversions.

use core::net::{IpAddr, Ipv6Addr};

use aya::maps::lpm_trie::Key;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::{
    BlockKey, BlockStats, DstHostStats, GlobalCounters, IpKey, PortSynCounts, SourceStats,
    maps::{
        ADDR_BITS, IPV4_MAPPED_BITS, Sample, SampleHeader, Sampling, ThresholdEvent, Thresholds,
        block_family,
    },
};

// SAFETY: all of these are `#[repr(C)]`, `Copy`, built only of integers and
// arrays of integers, with no padding, so any byte pattern is a valid value.
unsafe impl aya::Pod for IpKey {}
unsafe impl aya::Pod for SourceStats {}
unsafe impl aya::Pod for DstHostStats {}
unsafe impl aya::Pod for GlobalCounters {}
unsafe impl aya::Pod for PortSynCounts {}
unsafe impl aya::Pod for Thresholds {}
unsafe impl aya::Pod for ThresholdEvent {}
unsafe impl aya::Pod for Sampling {}
unsafe impl aya::Pod for crate::table::PoolCounts {}
unsafe impl aya::Pod for SampleHeader {}
unsafe impl aya::Pod for crate::flow::FlowKey {}
unsafe impl aya::Pod for crate::flow::FlowStats {}
unsafe impl aya::Pod for Sample {}
unsafe impl aya::Pod for BlockKey {}
unsafe impl aya::Pod for BlockStats {}

impl From<IpKey> for IpAddr {
    fn from(key: IpKey) -> Self {
        let v6 = Ipv6Addr::from(key.addr);
        match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        }
    }
}

impl From<IpAddr> for IpKey {
    fn from(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(v4) => IpKey::from_v4(v4.octets()),
            IpAddr::V6(v6) => IpKey::from_v6(v6.octets()),
        }
    }
}

/// The trie key of a CIDR, host bits cleared (`198.18.0.7/24` is
/// `198.18.0.0/24`). IPv4 `/n` becomes `::ffff:a.b.c.d/(96 + n)`; so does an
/// IPv6 prefix inside `::ffff:0:0/96`, which converts back as IPv4.
impl From<IpNet> for BlockKey {
    fn from(net: IpNet) -> Self {
        let (addr, prefix_len) = match net.trunc() {
            IpNet::V4(v4) => (
                IpKey::from_v4(v4.addr().octets()),
                IPV4_MAPPED_BITS + u32::from(v4.prefix_len()),
            ),
            IpNet::V6(v6) => (
                IpKey::from_v6(v6.addr().octets()),
                u32::from(v6.prefix_len()),
            ),
        };
        Self { prefix_len, addr }
    }
}

/// The CIDR a trie key stands for: IPv4 when the key lies inside
/// `::ffff:0:0/96`, else IPv6. A prefix length above 128, which the kernel
/// refuses to store, reads as 128.
impl From<BlockKey> for IpNet {
    fn from(key: BlockKey) -> Self {
        let prefix_len = key.prefix_len.min(ADDR_BITS);
        let v6 = Ipv6Addr::from(key.addr.addr);
        match v6.to_ipv4_mapped() {
            Some(v4) if prefix_len >= IPV4_MAPPED_BITS => {
                let bits = (prefix_len - IPV4_MAPPED_BITS) as u8;
                IpNet::V4(Ipv4Net::new_assert(v4, bits))
            }
            _ => IpNet::V6(Ipv6Net::new_assert(v6, prefix_len as u8)),
        }
    }
}

impl From<BlockKey> for Key<IpKey> {
    fn from(key: BlockKey) -> Self {
        Key::new(key.prefix_len, key.addr)
    }
}

impl From<Key<IpKey>> for BlockKey {
    fn from(key: Key<IpKey>) -> Self {
        Self {
            prefix_len: key.prefix_len(),
            addr: key.data(),
        }
    }
}

impl BlockStats {
    /// A new, empty entry for `net` (host bits ignored).
    pub fn for_net(net: &IpNet) -> Self {
        let family = match net {
            IpNet::V4(_) => block_family::IPV4,
            IpNet::V6(_) => block_family::IPV6,
        };
        Self::new(family, BlockKey::from(*net).prefix_len)
    }
}

impl core::ops::AddAssign<&GlobalCounters> for GlobalCounters {
    fn add_assign(&mut self, rhs: &GlobalCounters) {
        for (a, b) in self.values.iter_mut().zip(rhs.values.iter()) {
            *a = a.wrapping_add(*b);
        }
    }
}

/// The kernel's windows as the agent reads them.
impl DstHostStats {
    /// Packets and bytes of class `i` in the current rate window.
    pub fn in_rate_window(&self, i: usize) -> (u64, u64) {
        (
            self.packets[i].saturating_sub(self.window_packets[i]),
            self.bytes[i].saturating_sub(self.window_bytes[i]),
        )
    }

    /// Packets and bytes of class `i` in the current burst window.
    pub fn in_burst_window(&self, i: usize) -> (u64, u64) {
        (
            u64::from((self.packets[i] as u32).wrapping_sub(self.burst_packets[i])),
            u64::from((self.bytes[i] as u32).wrapping_sub(self.burst_bytes[i])),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_counts_survive_the_low_halves_wrapping() {
        let mut d = DstHostStats::ZERO;
        // 300 packets of 1 500 bytes since a burst window opened just
        // before the totals' low halves wrapped.
        d.packets[0] = (5 << 32) + 100;
        d.bytes[0] = (7 << 32) + 400_000;
        d.burst_packets[0] = u32::MAX - 199;
        d.burst_bytes[0] = u32::MAX - 49_999;
        assert_eq!(d.in_burst_window(0), (300, 450_000));
        d.window_packets[0] = 5 << 32;
        d.window_bytes[0] = 7 << 32;
        assert_eq!(d.in_rate_window(0), (100, 400_000));
    }

    #[test]
    fn ipv4_keys_round_trip_as_ipv4() {
        let addr: IpAddr = "198.18.0.1".parse().unwrap();
        let key = IpKey::from(addr);
        assert_eq!(&key.addr[..12], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        assert_eq!(IpAddr::from(key), addr);
    }

    #[test]
    fn ipv6_keys_round_trip_as_ipv6() {
        let addr: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(IpAddr::from(IpKey::from(addr)), addr);
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn key(prefix_len: u32, addr: &str) -> BlockKey {
        BlockKey {
            prefix_len,
            addr: IpKey::from(addr.parse::<IpAddr>().unwrap()),
        }
    }

    #[test]
    fn ipv4_cidrs_are_mapped_prefixes_and_round_trip() {
        for (cidr, expected) in [
            ("198.18.0.0/24", key(120, "198.18.0.0")),
            ("198.18.0.1/32", key(128, "198.18.0.1")),
            ("0.0.0.0/0", key(96, "0.0.0.0")),
            ("255.255.255.255/32", key(128, "255.255.255.255")),
        ] {
            let k = BlockKey::from(net(cidr));
            assert_eq!(k, expected, "{cidr}");
            assert_eq!(
                &k.addr.addr[..12],
                &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]
            );
            assert_eq!(IpNet::from(k), net(cidr), "{cidr} back");
        }
    }

    #[test]
    fn ipv6_cidrs_are_themselves_and_round_trip() {
        for (cidr, expected) in [
            ("2001:db8::/32", key(32, "2001:db8::")),
            ("2001:db8::1/128", key(128, "2001:db8::1")),
            ("::/0", key(0, "::")),
            // Same low 32 bits as 198.18.0.1, other top 96: not IPv4.
            ("64:ff9b::c612:1/128", key(128, "64:ff9b::c612:1")),
            ("::c612:1/128", key(128, "::c612:1")),
            // Covers ::ffff:0:0/96 but is shorter: still IPv6.
            ("::ffff:0:0/95", key(95, "::fffe:0:0")),
        ] {
            let k = BlockKey::from(net(cidr));
            assert_eq!(k, expected, "{cidr}");
            assert_eq!(IpNet::from(k), net(cidr).trunc(), "{cidr} back");
        }
    }

    #[test]
    fn host_bits_are_cleared() {
        assert_eq!(
            BlockKey::from(net("198.18.0.77/24")),
            key(120, "198.18.0.0")
        );
        assert_eq!(
            BlockKey::from(net("2001:db8::ff/64")),
            key(64, "2001:db8::")
        );
        assert_eq!(BlockKey::from(net("10.1.2.3/0")), key(96, "0.0.0.0"));
    }

    #[test]
    fn ipv4_mapped_ipv6_prefixes_share_the_ipv4_key() {
        let mapped = BlockKey::from(net("::ffff:198.18.0.0/120"));
        assert_eq!(mapped, BlockKey::from(net("198.18.0.0/24")));
        assert_eq!(IpNet::from(mapped), net("198.18.0.0/24"));
        assert_eq!(
            IpNet::from(BlockKey::from(net("::ffff:0:0/96"))),
            net("0.0.0.0/0")
        );
    }

    #[test]
    fn keys_convert_to_and_from_aya_lpm_keys() {
        let k = key(120, "198.18.0.0");
        let lpm = Key::<IpKey>::from(k);
        assert_eq!((lpm.prefix_len(), lpm.data()), (120, k.addr));
        assert_eq!(BlockKey::from(lpm), k);
        assert_eq!(size_of::<Key<IpKey>>(), size_of::<BlockKey>());
    }

    #[test]
    fn impossible_prefix_lengths_read_as_a_host() {
        assert_eq!(IpNet::from(key(200, "2001:db8::1")), net("2001:db8::1/128"));
    }

    #[test]
    fn new_entries_know_their_family_and_prefix() {
        assert_eq!(
            BlockStats::for_net(&net("198.18.0.0/15")),
            BlockStats::new(block_family::IPV4, 111)
        );
        assert_eq!(
            BlockStats::for_net(&net("::/0")),
            BlockStats::new(block_family::IPV6, 0)
        );
        let fresh = BlockStats::for_net(&net("2001:db8::1/128"));
        assert_eq!((fresh.packets, fresh.bytes, fresh.prefix_len), (0, 0, 128));
    }
}
