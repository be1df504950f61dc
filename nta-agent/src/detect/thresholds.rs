//! The configuration, as the XDP program's wake-up thresholds.

use nta_common::maps::{DST_CLASSES, DstClass, RATE_CLASSES, RateClass, Thresholds};

use super::sketch;
use crate::config::{Config, Volumetric};

/// The kernel's rate window: rates in the config are per second.
const RATE_WINDOW_NS: u64 = 1_000_000_000;

/// Window of each destination's distinct-source sketch: long enough to
/// count a spoofed flood's sources over several seconds, short enough that
/// a busy server's ordinary clients of minutes ago are not among them.
const SKETCH_WINDOW_NS: u64 = 10_000_000_000;

fn count(rate: f64, enabled: bool) -> u32 {
    if !enabled || !rate.is_finite() {
        return u32::MAX;
    }
    // "More than `rate` per second" is "more than floor(rate) in one second".
    rate.floor().clamp(0.0, f64::from(u32::MAX - 1)) as u32
}

fn class_rate(v: &Volumetric, class: RateClass) -> f64 {
    match class {
        RateClass::Syn => v.syn_rate,
        RateClass::Udp => v.udp_rate,
        RateClass::Icmp => v.icmp_rate,
        RateClass::Rst => v.rst_rate,
        RateClass::BareAck => v.ack_rate,
    }
}

/// Thresholds for the kernel. Per-destination overrides can only lower what
/// wakes the agent: the kernel signals at the lowest threshold any
/// destination has, and the agent applies each destination's own.
pub fn for_kernel(config: &Config) -> Thresholds {
    let mut syn_flood = vec![config.syn_flood.clone()];
    let mut volumetric = vec![config.volumetric.clone()];
    for o in &config.overrides {
        let addr = o.network.network();
        syn_flood.push(config.syn_flood_for(addr));
        volumetric.push(config.volumetric_for(addr));
    }
    let dst_syns = syn_flood
        .iter()
        .map(|s| count(s.dst_host_syn_rate, s.enabled))
        .min()
        .unwrap_or(u32::MAX);
    let mut dst_packets = [u32::MAX; DST_CLASSES];
    dst_packets[DstClass::Syn as usize] = dst_syns;
    let mut source = [u32::MAX; RATE_CLASSES];
    for class in RateClass::ALL {
        source[class as usize] = volumetric
            .iter()
            .map(|v| count(class_rate(v, class), v.enabled))
            .min()
            .unwrap_or(u32::MAX);
    }
    let scan = &config.port_scan;
    let scan_count = |n: u32| if scan.enabled { n } else { u32::MAX };
    let sweep = &config.sweep;
    Thresholds {
        rate_window_ns: RATE_WINDOW_NS,
        sketch_window_ns: SKETCH_WINDOW_NS,
        dst_bytes: [u64::MAX; DST_CLASSES],
        dst_packets,
        // Hosts and slow ports are counted in 512-bit sketches: the kernel
        // fires one bit past the most bits whose estimate is within them.
        sweep_bits: if sweep.enabled {
            sketch::bits_for(sweep.hosts)
        } else {
            u32::MAX
        },
        fast_window_ns: scan.fast_window.as_nanos() as u64,
        weighted_window_ns: scan.weighted_window.as_nanos() as u64,
        slow_window_ns: scan.slow_window.as_nanos() as u64,
        source,
        fast_ports: scan_count(scan.fast_ports),
        // The kernel fires when the score reaches this value.
        weighted_score: scan_count(scan.weighted_score),
        slow_bits: scan_count(sketch::bits_for(scan.slow_ports)),
        configured: 1,
    }
}

/// Threshold rate of `class` in `v`.
pub fn rate_of(v: &Volumetric, class: RateClass) -> f64 {
    class_rate(v, class)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_become_the_original_tools_numbers() {
        let t = for_kernel(&Config::default());
        assert_eq!(t.dst_packets[DstClass::Syn as usize], 1000);
        assert_eq!(t.source[RateClass::Syn as usize], 1000);
        assert_eq!(t.fast_ports, 15);
        assert_eq!(t.weighted_score, 21);
        assert_eq!(t.rate_window_ns, 1_000_000_000);
        assert_eq!(t.fast_window_ns, 1_000_000_000);
        assert_eq!(t.weighted_window_ns, 3_000_000_000);
        assert_eq!(t.slow_window_ns, 300_000_000_000);
        // 16 ports set 16 bits (barring a collision): "more than 15".
        assert_eq!(t.slow_bits, 15);
        assert_eq!(t.sweep_bits, 25);
    }

    #[test]
    fn disabled_detectors_never_wake_the_agent() {
        let mut c = Config::default();
        c.port_scan.enabled = false;
        c.syn_flood.enabled = false;
        c.volumetric.enabled = false;
        c.sweep.enabled = false;
        let t = for_kernel(&c);
        assert_eq!(t.sweep_bits, u32::MAX);
        assert_eq!(t.dst_packets[DstClass::Syn as usize], u32::MAX);
        assert_eq!(t.fast_ports, u32::MAX);
        assert_eq!(t.slow_bits, u32::MAX);
        assert!(t.source.iter().all(|&s| s == u32::MAX));
    }

    #[test]
    fn larger_counts_become_fewer_bits() {
        let mut c = Config::default();
        c.port_scan.slow_ports = 100;
        c.sweep.hosts = 254;
        let t = for_kernel(&c);
        assert!((88..=93).contains(&t.slow_bits), "{}", t.slow_bits);
        assert!((190..=200).contains(&t.sweep_bits), "{}", t.sweep_bits);
    }

    #[test]
    fn a_lower_override_lowers_the_kernel_threshold() {
        let text =
            "[[override]]\nnetwork = \"198.18.0.0/24\"\nsyn_flood = { dst_host_syn_rate = 200 }\n";
        let c = Config::parse(text, std::path::Path::new("t.toml")).expect("valid");
        assert_eq!(for_kernel(&c).dst_packets[DstClass::Syn as usize], 200);
    }
}
