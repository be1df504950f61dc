//! What the kernel's 512-bit linear-counting sketches (a source's ports and
//! hosts) say about how many distinct values they hold.
//!
//! The kernel hashes each port or host to one of m = 512 bits with a
//! MurmurHash finaliser, so ranges and scattered sets land as if at random.
//! Set bits alone undercount (1 000 ports set about 445 bits); linear
//! counting's estimator, n ≈ −m·ln(zero bits / m), corrects for the
//! collisions and stays within a few percent up to ~2 000 values. A full
//! sketch has no zero bits to read: it says only "more than" the estimate
//! at one zero bit (~3 200).

use std::fmt;

use nta_common::sketch::BITMAP_BITS;

/// The sketch's size, m.
const M: f64 = BITMAP_BITS as f64;

/// Distinct values a sketch with `bits` set holds, estimated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The estimate; for a full sketch, the floor it gives.
    pub value: f64,
    /// The sketch is full: there are more than `value`, how many is unknown.
    pub saturated: bool,
}

impl Estimate {
    /// The estimate of a sketch with `bits` set (clamped to the sketch).
    pub fn of(bits: u64) -> Self {
        let saturated = bits >= u64::from(BITMAP_BITS);
        // A full sketch reads as the estimate at one zero bit, its floor.
        let set = bits.min(u64::from(BITMAP_BITS) - 1) as f64;
        Estimate {
            value: -M * ((M - set) / M).ln(),
            saturated,
        }
    }

    /// The estimate as a whole number, as stored in `distinct_*` evidence.
    pub fn count(self) -> u64 {
        self.value.round() as u64
    }
}

impl fmt::Display for Estimate {
    /// `~1 019`, or `more than ~3 200` for a full sketch (its floor, to two
    /// figures: the last digits of a floor mean nothing).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.saturated {
            let floor = (self.value / 100.0).round() as u64 * 100;
            write!(f, "more than ~{}", grouped(floor))
        } else {
            write!(f, "~{}", grouped(self.count()))
        }
    }
}

/// Most bits a sketch may have set while its estimate, rounded down, is
/// still at most `count`: "more than `count`" holds from one bit more. The
/// kernel's thresholds are in bits, so both sides fire on the same packet.
pub fn bits_for(count: u32) -> u32 {
    (0..BITMAP_BITS)
        .take_while(|&bits| Estimate::of(u64::from(bits)).value < f64::from(count) + 1.0)
        .last()
        .unwrap_or(0)
}

/// Whether a sketch with `bits` set holds more than `count` values, by the
/// same rule as [`bits_for`].
pub fn more_than(bits: u64, count: u32) -> bool {
    bits > u64::from(bits_for(count))
}

/// `1019` → `1 019`: counts read at a glance.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nta_common::sketch::port_bit;
    use std::collections::BTreeSet;

    fn bits(ports: impl IntoIterator<Item = u16>) -> u64 {
        ports
            .into_iter()
            .map(port_bit)
            .collect::<BTreeSet<_>>()
            .len() as u64
    }

    fn within(estimate: Estimate, truth: f64, percent: f64) {
        let off = (estimate.value - truth).abs() / truth * 100.0;
        assert!(
            off <= percent,
            "estimated {} for {truth} ({off:.1}% off)",
            estimate.value
        );
    }

    /// nmap's 100 most common TCP ports (nmap-services, `--top-ports 100`):
    /// scattered, not a range.
    const TOP_100: [u16; 100] = [
        7, 9, 13, 21, 22, 23, 25, 26, 37, 53, 79, 80, 81, 88, 106, 110, 111, 113, 119, 135, 139,
        143, 144, 179, 199, 389, 427, 443, 444, 445, 465, 513, 514, 515, 543, 544, 548, 554, 587,
        631, 646, 873, 990, 993, 995, 1025, 1026, 1027, 1028, 1029, 1110, 1433, 1720, 1723, 1755,
        1900, 2000, 2001, 2049, 2121, 2717, 3000, 3128, 3306, 3389, 3986, 4899, 5000, 5009, 5051,
        5060, 5101, 5190, 5357, 5432, 5631, 5666, 5800, 5900, 6000, 6001, 6646, 7070, 8000, 8008,
        8009, 8080, 8081, 8443, 8888, 9100, 9999, 10000, 32768, 49152, 49153, 49154, 49155, 49156,
        49157,
    ];

    #[test]
    fn ranges_are_estimated_within_a_few_percent() {
        within(Estimate::of(bits(1..=1000)), 1000.0, 5.0);
        within(Estimate::of(bits(1..=100)), 100.0, 3.0);
    }

    #[test]
    fn scattered_ports_are_estimated_within_a_few_percent() {
        within(Estimate::of(bits(TOP_100)), 100.0, 5.0);
        // Every 61st port from 1 024 up: 1 000 ports spread over the range.
        let spread = (0..1000u16).map(|i| 1024 + i * 61);
        within(Estimate::of(bits(spread)), 1000.0, 6.0);
    }

    #[test]
    fn the_estimate_beats_the_bit_count_it_replaces() {
        // The old report: "SYNs to 445 ports" for a scan of 1 000.
        let set = bits(1..=1000);
        assert!(set < 460, "{set}");
        assert!(Estimate::of(set).value > 950.0);
    }

    #[test]
    fn a_full_sketch_is_a_floor_not_a_figure() {
        let full = Estimate::of(512);
        assert!(full.saturated);
        assert_eq!(full.to_string(), "more than ~3 200");
        assert_eq!(Estimate::of(5000), full);
        assert!(!Estimate::of(511).saturated);
    }

    #[test]
    fn small_counts_read_as_themselves() {
        assert_eq!(Estimate::of(0).count(), 0);
        assert_eq!(Estimate::of(1).count(), 1);
        assert_eq!(Estimate::of(16).count(), 16);
        assert_eq!(Estimate::of(442).to_string(), "~1 019");
    }

    #[test]
    fn thresholds_in_bits_fire_one_bit_past_the_count() {
        assert_eq!(bits_for(15), 15);
        assert!(!more_than(15, 15) && more_than(16, 15));
        assert_eq!(bits_for(25), 25);
        // Larger counts need fewer bits than values: collisions.
        let hundred = bits_for(100);
        assert!((88..=93).contains(&hundred), "{hundred}");
        assert!(Estimate::of(u64::from(hundred)).value < 101.0);
        assert!(Estimate::of(u64::from(hundred) + 1).value >= 101.0);
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped(7), "7");
        assert_eq!(grouped(1019), "1 019");
        assert_eq!(grouped(1_234_567), "1 234 567");
    }
}
