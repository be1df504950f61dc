//! Linear counting over the kernel's 512-bit port sketch.

use nta_common::maps::PORT_SKETCH_BITS;

/// Distinct ports estimated from `bits` set out of 512: `-m·ln(z/m)`.
/// A full sketch estimates its saturation point, `m·ln(m)` (about 3 200).
pub fn estimate(bits: u64) -> f64 {
    let m = f64::from(PORT_SKETCH_BITS);
    let bits = bits.min(u64::from(PORT_SKETCH_BITS)) as f64;
    let zeros = (m - bits).max(1.0);
    -m * (zeros / m).ln()
}

/// Fewest set bits whose estimate exceeds `ports`: the bit count at which the
/// kernel should signal "more than `ports` distinct ports".
pub fn bits_for_more_than(ports: u32) -> u32 {
    (1..=PORT_SKETCH_BITS)
        .find(|&b| estimate(u64::from(b)) > f64::from(ports))
        .unwrap_or(PORT_SKETCH_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_counts_are_nearly_exact() {
        assert!((estimate(16) - 16.25).abs() < 0.1, "{}", estimate(16));
        assert_eq!(estimate(0), 0.0);
    }

    #[test]
    fn estimates_match_expected_bits_for_known_port_counts() {
        // n ports set, on average, m(1 - e^(-n/m)) bits.
        for n in [15.0, 100.0, 1000.0f64] {
            let bits = 512.0 * (1.0 - (-n / 512.0).exp());
            let est = estimate(bits.round() as u64);
            assert!((est - n).abs() / n < 0.05, "n={n} bits={bits} est={est}");
        }
    }

    #[test]
    fn threshold_bits_are_the_first_past_the_port_count() {
        let b = bits_for_more_than(100);
        let b = u64::from(b);
        assert!(estimate(b) > 100.0 && estimate(b - 1) <= 100.0);
        // 15 bits already estimate 15.2 ports.
        assert_eq!(bits_for_more_than(15), 15);
    }
}
