//! How many distinct sources a destination has seen: HyperLogLog over the
//! 128 registers the kernel keeps per destination
//! ([`nta_common::sketch::hll_slot`]), and the registers of each open flood
//! merged over the kernel's windows, so an estimate covers the whole flood
//! rather than the last 10 s.

use std::{collections::HashMap, net::IpAddr};

use nta_common::sketch::HLL_REGISTERS;

/// One HyperLogLog sketch: a register per hash bucket, each the largest
/// rank it was offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registers(pub [u8; HLL_REGISTERS]);

impl Default for Registers {
    fn default() -> Self {
        Self([0; HLL_REGISTERS])
    }
}

/// Flajolet et al.'s bias correction for m = 128 registers.
const ALPHA: f64 = 0.7213 / (1.0 + 1.079 / HLL_REGISTERS as f64);

impl Registers {
    /// Keeps the larger rank of each register: the sketch of the union of
    /// both sets of sources.
    pub fn merge(&mut self, other: &[u8; HLL_REGISTERS]) {
        for (mine, theirs) in self.0.iter_mut().zip(other) {
            *mine = (*mine).max(*theirs);
        }
    }

    /// Estimated distinct sources, standard error 1.04/√128 ≈ 9 %.
    pub fn estimate(&self) -> u64 {
        let m = HLL_REGISTERS as f64;
        let sum: f64 = self.0.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
        let raw = ALPHA * m * m / sum;
        let zeros = self.0.iter().filter(|&&r| r == 0).count();
        // Small range: with registers still empty, linear counting over them
        // is the better estimate (HyperLogLog's raw estimate is biased up
        // there). The 64-bit hash needs no large-range correction.
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        estimate.round() as u64
    }
}

/// Most victims whose sources are merged at once: one per open flood
/// incident is expected; past this, under a carpet-bombing attack on a
/// whole network, further victims get the kernel's current window only.
/// 4 096 × 128 bytes = 512 KiB at most.
pub const MAX_MERGED: usize = 4_096;

/// The merged source registers of each destination under an open flood:
/// 128 bytes per victim, dropped when its incidents close.
#[derive(Debug, Default)]
pub struct Merged {
    by_victim: HashMap<IpAddr, Registers>,
}

impl Merged {
    /// Merges the kernel's current registers of `victim` into its
    /// incident's and returns the estimate over both.
    pub fn add(&mut self, victim: IpAddr, current: &[u8; HLL_REGISTERS]) -> u64 {
        if !self.by_victim.contains_key(&victim) && self.by_victim.len() >= MAX_MERGED {
            let mut only = Registers::default();
            only.merge(current);
            return only.estimate();
        }
        let merged = self.by_victim.entry(victim).or_default();
        merged.merge(current);
        merged.estimate()
    }

    /// Forgets the victims `keep` says no longer have an open flood.
    pub fn retain(&mut self, mut keep: impl FnMut(&IpAddr) -> bool) {
        self.by_victim.retain(|victim, _| keep(victim));
    }

    pub fn len(&self) -> usize {
        self.by_victim.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_victim.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use nta_common::{IpKey, sketch::hll_slot};

    use super::*;

    fn sketch(keys: impl Iterator<Item = IpKey>) -> Registers {
        let mut r = Registers::default();
        for key in keys {
            let (i, rank) = hll_slot(&key);
            r.0[i] = r.0[i].max(rank);
        }
        r
    }

    fn v4(n: u32, offset: u32) -> impl Iterator<Item = IpKey> {
        // Sequential addresses: what a spoofing tool's counter produces.
        (0..n).map(move |i| IpKey::from_v4((0x0a00_0000 + offset + i).to_be_bytes()))
    }

    fn v6(n: u32, offset: u32) -> impl Iterator<Item = IpKey> {
        // One /64 per host, as a hosting provider hands them out.
        (0..n).map(move |i| {
            let mut a = [0u8; 16];
            a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            a[8..12].copy_from_slice(&(offset + i).to_be_bytes());
            a[15] = 1;
            IpKey::from_v6(a)
        })
    }

    /// Within three standard errors (1.04/√128 ≈ 9.2 %).
    fn assert_close(estimate: u64, truth: u32) {
        let error = (estimate as f64 - f64::from(truth)).abs() / f64::from(truth);
        assert!(
            error < 0.28,
            "estimated {estimate} for {truth} ({error:.3})"
        );
    }

    #[test]
    fn estimates_are_within_three_standard_errors_for_ipv4_and_ipv6() {
        for n in [50, 5_000, 60_000] {
            assert_close(sketch(v4(n, 0)).estimate(), n);
            assert_close(sketch(v6(n, 0)).estimate(), n);
        }
    }

    #[test]
    fn the_error_over_many_floods_is_the_standard_error() {
        // Twenty disjoint sets of sources per size and family: the root mean
        // square error is HyperLogLog's 1.04/√128 ≈ 9 %, with no bias.
        for n in [5_000u32, 60_000] {
            for family in 0..2 {
                let errors: Vec<f64> = (0..20)
                    .map(|k| {
                        let est = if family == 0 {
                            sketch(v4(n, k * n)).estimate()
                        } else {
                            sketch(v6(n, k * n)).estimate()
                        };
                        (est as f64 - f64::from(n)) / f64::from(n)
                    })
                    .collect();
                let mean = errors.iter().sum::<f64>() / 20.0;
                let rms = (errors.iter().map(|e| e * e).sum::<f64>() / 20.0).sqrt();
                assert!(mean.abs() < 0.05, "{n} family {family}: bias {mean:.3}");
                assert!(rms < 0.15, "{n} family {family}: rms {rms:.3}");
            }
        }
    }

    #[test]
    fn few_sources_are_counted_almost_exactly() {
        assert_eq!(Registers::default().estimate(), 0);
        assert_eq!(sketch(v4(1, 0)).estimate(), 1);
        let ten = sketch(v4(10, 7)).estimate();
        assert!((9..=11).contains(&ten), "{ten}");
    }

    #[test]
    fn merged_windows_count_the_union_not_the_last_window() {
        // The kernel clears its registers every 10 s; a flood's sources
        // over three windows are the union of the three.
        let mut merged = Merged::default();
        let victim: IpAddr = "198.18.0.1".parse().unwrap();
        let mut last = 0;
        for window in 0..3 {
            last = merged.add(victim, &sketch(v4(20_000, window * 20_000)).0);
        }
        assert_close(last, 60_000);
        // The same sources again add nothing.
        let again = merged.add(victim, &sketch(v4(20_000, 0)).0);
        assert_eq!(again, last);
        merged.retain(|_| false);
        assert!(merged.is_empty());
    }

    #[test]
    fn memory_is_bounded_by_the_victims_merged() {
        let mut merged = Merged::default();
        let regs = sketch(v4(100, 0)).0;
        for i in 0..(MAX_MERGED as u32 + 10) {
            let victim = IpAddr::from(i.to_be_bytes());
            assert_close(merged.add(victim, &regs), 100);
        }
        assert_eq!(merged.len(), MAX_MERGED);
    }
}
