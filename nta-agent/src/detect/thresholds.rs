//! The configuration, as the XDP program's wake-up thresholds.

use nta_common::maps::{DST_CLASSES, DstClass, RATE_CLASSES, RateClass, Thresholds};

use super::sketch;
use crate::config::{ClassRates, Config, Volumetric};

/// The kernel's rate window: rates in the config are per second.
const RATE_WINDOW_NS: u64 = 1_000_000_000;

/// The kernel's burst window for destinations: a tenth of the rate window,
/// where only a flood of [`Flood::burst`](crate::config::Flood::burst)
/// times a threshold crosses.
pub const BURST_WINDOW: std::time::Duration = std::time::Duration::from_millis(100);

/// Window of each destination's distinct-source sketch: long enough to
/// count a spoofed flood's sources over several seconds, short enough that
/// a busy server's ordinary clients of minutes ago are not among them.
const SKETCH_WINDOW_NS: u64 = 10_000_000_000;

fn count(rate: f64, enabled: bool) -> u32 {
    // 0 is "off" for the flood rates (validation refuses it elsewhere).
    if !enabled || !rate.is_finite() || rate <= 0.0 {
        return u32::MAX;
    }
    // "More than `rate` per second" is "more than floor(rate) in one second".
    rate.floor().clamp(0.0, f64::from(u32::MAX - 1)) as u32
}

/// Bytes in one rate window above `mbps` megabits per second; the kernel
/// signals when a window's bytes first exceed it.
fn bytes(mbps: f64, enabled: bool) -> u64 {
    if !enabled || !mbps.is_finite() || mbps <= 0.0 {
        return u64::MAX;
    }
    let per_window = mbps * 1e6 / 8.0 * (RATE_WINDOW_NS as f64 / 1e9);
    per_window.floor().clamp(0.0, (u64::MAX - 1) as f64) as u64
}

/// Fewest packets, and bytes, a burst window's threshold may be: below
/// that a tenth of a second's count says little about a rate (three
/// packets in it are no flood of 30 a second), and the rate window alone
/// judges.
const MIN_BURST_PACKETS: f64 = 100.0;
const MIN_BURST_BYTES: f64 = 100.0 * 1500.0;

/// `rates` (per second, `burst` times) as counts in one burst window, off
/// where the rule or the burst allowance is, or where they would be too
/// small to tell a rate.
fn burst_counts(rates: ClassRates, enabled: bool, burst: f64) -> (u32, u32) {
    let scale = burst * BURST_WINDOW.as_secs_f64();
    let packets = rates.pps * scale;
    let bytes = rates.mbps * 1e6 / 8.0 * scale;
    let on = enabled && burst > 0.0;
    let packets = count(packets, on && packets >= MIN_BURST_PACKETS);
    let bytes = count(bytes, on && bytes >= MIN_BURST_BYTES);
    (packets, bytes)
}

/// A destination's rates for `class` under `config`, and whether the
/// class is detected at all: SYN from `[syn_flood]`, the rest from `[flood]`.
pub fn dst_rates(config: &Config, class: DstClass) -> (ClassRates, bool) {
    match class {
        DstClass::Syn => {
            let s = &config.syn_flood;
            let rates = ClassRates {
                pps: s.dst_host_syn_rate,
                mbps: s.dst_host_mbps,
            };
            (rates, s.enabled)
        }
        _ => (config.flood.rates(class), config.flood.enabled),
    }
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
    // The settings of each overridden network, as one config each.
    let mut effective = vec![config.clone()];
    let mut volumetric = vec![config.volumetric.clone()];
    for o in &config.overrides {
        let addr = o.network.network();
        effective.push(Config {
            syn_flood: config.syn_flood_for(addr),
            flood: config.flood_for(addr),
            overrides: Vec::new(),
            ..Config::default()
        });
        volumetric.push(config.volumetric_for(addr));
    }
    let mut dst_packets = [u32::MAX; DST_CLASSES];
    let mut dst_bytes = [u64::MAX; DST_CLASSES];
    let mut dst_burst_packets = [u32::MAX; DST_CLASSES];
    let mut dst_burst_bytes = [u32::MAX; DST_CLASSES];
    for class in DstClass::ALL {
        for c in &effective {
            let (rates, enabled) = dst_rates(c, class);
            let i = class as usize;
            dst_packets[i] = dst_packets[i].min(count(rates.pps, enabled));
            dst_bytes[i] = dst_bytes[i].min(bytes(rates.mbps, enabled));
            let (packets, bytes) = burst_counts(rates, enabled, c.flood.burst);
            dst_burst_packets[i] = dst_burst_packets[i].min(packets);
            dst_burst_bytes[i] = dst_burst_bytes[i].min(bytes);
        }
    }
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
        burst_window_ns: BURST_WINDOW.as_nanos() as u64,
        dst_bytes,
        dst_packets,
        dst_burst_packets,
        dst_burst_bytes,
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
        new_flows_per_cpu: config.flows.new_flows_per_cpu,
        new_sources_per_cpu: config.sources.new_sources_per_cpu,
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
    fn burst_thresholds_are_the_allowance_times_the_rates_over_a_tenth_of_a_second() {
        let t = for_kernel(&Config::default());
        assert_eq!(t.burst_window_ns, 100_000_000);
        let packets = |c: DstClass| t.dst_burst_packets[c as usize];
        let bytes = |c: DstClass| t.dst_burst_bytes[c as usize];
        // 1 000 SYN/s, 4 times, for 0.1 s; 1 Gbit/s of them likewise.
        assert_eq!(packets(DstClass::Syn), 400);
        assert_eq!(bytes(DstClass::Syn), 50_000_000);
        assert_eq!(packets(DstClass::Udp), 8_000);
        assert_eq!(packets(DstClass::Icmp), 2_000);
        assert_eq!(bytes(DstClass::Icmp), 5_000_000);
        assert_eq!(packets(DstClass::All), 200_000);
        assert_eq!(bytes(DstClass::All), 500_000_000);
        // Past 2³² bytes a tenth of a second is past what the kernel's
        // 32-bit burst counts hold: the largest they do.
        let c = Config::parse(
            "[flood]\nall = { mbps = 400000 }\n",
            std::path::Path::new("t.toml"),
        )
        .expect("valid");
        assert_eq!(
            for_kernel(&c).dst_burst_bytes[DstClass::All as usize],
            u32::MAX - 1
        );
    }

    #[test]
    fn burst_thresholds_are_off_when_the_allowance_is_or_too_small_to_tell() {
        let off =
            Config::parse("[flood]\nburst = 0\n", std::path::Path::new("t.toml")).expect("valid");
        let t = for_kernel(&off);
        assert!(t.dst_burst_packets.iter().all(|&n| n == u32::MAX));
        assert!(t.dst_burst_bytes.iter().all(|&n| n == u32::MAX));
        assert_eq!(t.dst_packets[DstClass::Udp as usize], 20_000, "rates stay");

        // 50 SYN/s is 20 in a burst window: too few to tell a rate by.
        let low = Config::parse(
            "[syn_flood]\ndst_host_syn_rate = 50\n",
            std::path::Path::new("t.toml"),
        )
        .expect("valid");
        let t = for_kernel(&low);
        assert_eq!(t.dst_burst_packets[DstClass::Syn as usize], u32::MAX);
        assert_eq!(t.dst_packets[DstClass::Syn as usize], 50);
    }

    #[test]
    fn an_override_allowing_smaller_bursts_lowers_the_kernels_burst_threshold() {
        let text = "[[override]]\nnetwork = \"198.18.0.0/24\"\nflood = { burst = 2 }\n";
        let c = Config::parse(text, std::path::Path::new("t.toml")).expect("valid");
        let t = for_kernel(&c);
        assert_eq!(t.dst_burst_packets[DstClass::Udp as usize], 4_000);
        assert_eq!(t.dst_burst_packets[DstClass::Syn as usize], 200);
    }

    #[test]
    fn every_destination_class_gets_its_packet_and_byte_thresholds() {
        let t = for_kernel(&Config::default());
        let packets = |c: DstClass| t.dst_packets[c as usize];
        let bytes = |c: DstClass| t.dst_bytes[c as usize];
        assert_eq!(packets(DstClass::Tcp), 100_000);
        assert_eq!(packets(DstClass::Udp), 20_000);
        assert_eq!(packets(DstClass::Icmp), 5_000);
        assert_eq!(packets(DstClass::Fragment), 5_000);
        assert_eq!(packets(DstClass::All), 500_000);
        // Mbit/s as bytes per one-second window.
        assert_eq!(bytes(DstClass::Syn), 125_000_000);
        assert_eq!(bytes(DstClass::Udp), 125_000_000);
        assert_eq!(bytes(DstClass::Icmp), 12_500_000);
        assert_eq!(bytes(DstClass::Fragment), 62_500_000);
        assert_eq!(bytes(DstClass::All), 1_250_000_000);
    }

    #[test]
    fn zero_or_a_disabled_flood_section_turns_classes_off() {
        let text = "[flood]\nudp = { pps = 0 }\nicmp = { mbps = 0 }\n";
        let c = Config::parse(text, std::path::Path::new("t.toml")).expect("valid");
        let t = for_kernel(&c);
        assert_eq!(t.dst_packets[DstClass::Udp as usize], u32::MAX);
        assert_eq!(t.dst_bytes[DstClass::Udp as usize], 125_000_000);
        assert_eq!(t.dst_bytes[DstClass::Icmp as usize], u64::MAX);
        assert_eq!(t.dst_packets[DstClass::Icmp as usize], 5_000);

        let off = Config::parse("[flood]\nenabled = false\n", std::path::Path::new("t.toml"))
            .expect("valid");
        let t = for_kernel(&off);
        for class in [
            DstClass::Tcp,
            DstClass::Udp,
            DstClass::Icmp,
            DstClass::Fragment,
            DstClass::All,
        ] {
            assert_eq!(t.dst_packets[class as usize], u32::MAX, "{class:?}");
            assert_eq!(t.dst_bytes[class as usize], u64::MAX, "{class:?}");
        }
        assert_eq!(
            t.dst_packets[DstClass::Syn as usize],
            1000,
            "SYN has its own section"
        );
    }

    #[test]
    fn flood_overrides_lower_the_kernel_thresholds_but_never_raise_them() {
        let text = "[[override]]\nnetwork = \"198.18.0.0/24\"\nflood = { udp = { pps = 800 }, all = { pps = 9000000, mbps = 90000 } }\n";
        let c = Config::parse(text, std::path::Path::new("t.toml")).expect("valid");
        let t = for_kernel(&c);
        assert_eq!(t.dst_packets[DstClass::Udp as usize], 800);
        assert_eq!(t.dst_bytes[DstClass::Udp as usize], 125_000_000);
        // A higher override is applied by the agent, per destination; the
        // kernel still wakes it at the lowest.
        assert_eq!(t.dst_packets[DstClass::All as usize], 500_000);
        assert_eq!(t.dst_bytes[DstClass::All as usize], 1_250_000_000);
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
