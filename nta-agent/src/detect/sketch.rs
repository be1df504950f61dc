//! What the kernel's 512-bit port sketch says about distinct ports.
//!
//! Every set bit stands for at least one port, so the number of set bits is
//! a lower bound on the distinct ports a source reached. It is (nearly)
//! exact for the port ranges scanners sweep (`-p 1-1000`): Fibonacci hashing
//! spreads a contiguous range evenly — 100 ports set 100 bits, 300 set 298 —
//! until the sketch fills. For
//! scattered ports a few collide (100 random ports set about 91 bits), so a
//! threshold on bits fires a little later than one on ports — never sooner,
//! which is the side to err on for an alert. Linear counting would estimate
//! random sets better but overshoots badly on ranges (1 000 sequential ports
//! fill all 512 bits, which it reads as 3 200).

use nta_common::sketch::BITMAP_BITS as PORT_SKETCH_BITS;

/// Distinct ports a source reached, at least, given `bits` set.
pub fn at_least(bits: u64) -> u64 {
    bits.min(u64::from(PORT_SKETCH_BITS))
}

/// Whether the sketch is full: the count is then a floor, not a figure.
pub fn saturated(bits: u64) -> bool {
    bits >= u64::from(PORT_SKETCH_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nta_common::sketch::port_bit as port_sketch_bit;
    use std::collections::BTreeSet;

    fn bits(ports: impl Iterator<Item = u16>) -> u64 {
        ports.map(port_sketch_bit).collect::<BTreeSet<_>>().len() as u64
    }

    #[test]
    fn contiguous_ranges_are_counted_almost_exactly_until_the_sketch_fills() {
        assert_eq!(at_least(bits(1..=100)), 100);
        assert!(at_least(bits(20_000..=20_300)) >= 295);
        assert!(at_least(bits(1..=400)) >= 380);
        assert!(saturated(bits(1..=1000)));
    }

    #[test]
    fn never_more_than_the_real_count() {
        // nmap's default top ports are scattered, not a range.
        let top = [
            80u16, 23, 443, 21, 22, 25, 3389, 110, 445, 139, 143, 53, 135, 3306, 8080, 1723, 111,
            995, 993, 5900,
        ];
        let b = bits(top.into_iter());
        assert!((18..=20).contains(&b), "{b}");
    }
}
