//! User-space only: `aya::Pod` impls and address conversions.

use core::net::{IpAddr, Ipv6Addr};

use crate::{
    DstHostStats, GlobalCounters, IpKey, PortSynCounts, SourceStats,
    maps::{Sample, SampleHeader, Sampling, ThresholdEvent, Thresholds},
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
unsafe impl aya::Pod for SampleHeader {}
unsafe impl aya::Pod for Sample {}

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

impl core::ops::AddAssign<&GlobalCounters> for GlobalCounters {
    fn add_assign(&mut self, rhs: &GlobalCounters) {
        for (a, b) in self.values.iter_mut().zip(rhs.values.iter()) {
            *a = a.wrapping_add(*b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn sequential_ports_spread_over_the_sketch() {
        let mut bits = [false; 512];
        for port in 1..=100u16 {
            bits[crate::maps::port_sketch_bit(port) as usize] = true;
        }
        let set = bits.iter().filter(|b| **b).count();
        // 100 random ports would set ~91 bits; a good hash does at least as well.
        assert!(set >= 90, "only {set} distinct bits for 100 ports");
    }
}
