use std::{io::Write as _, net::IpAddr, path::Path, time::Duration};

use super::*;

fn parse(text: &str) -> Config {
    match Config::parse(text, Path::new("nta.toml")) {
        Ok(config) => config,
        Err(e) => panic!("{e}"),
    }
}

fn parse_err(text: &str) -> String {
    match Config::parse(text, Path::new("nta.toml")) {
        Ok(config) => panic!("accepted {text:?} as {config:?}"),
        Err(e) => e.to_string(),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn defaults_are_the_documented_thresholds() {
    let c = Config::default();
    assert!(c.port_scan.enabled && c.syn_flood.enabled && c.volumetric.enabled);
    assert_eq!(c.port_scan.fast_ports, 15);
    assert_eq!(c.port_scan.fast_window, Duration::from_secs(1));
    assert_eq!(c.port_scan.weighted_score, 21);
    assert_eq!(c.port_scan.weighted_window, Duration::from_secs(3));
    assert_eq!(c.port_scan.slow_ports, 15);
    assert_eq!(c.port_scan.slow_window, Duration::from_secs(300));
    assert!(c.sweep.enabled);
    assert_eq!(c.sweep.hosts, 25);
    assert_eq!(c.syn_flood.dst_host_syn_rate, 1000.0);
    assert_eq!(c.syn_flood.dst_port_syn_rate, 1000.0);
    let v = &c.volumetric;
    assert_eq!(
        [v.syn_rate, v.udp_rate, v.icmp_rate, v.rst_rate, v.ack_rate],
        [1000.0, 1000.0, 1000.0, 1000.0, 50_000.0]
    );
    assert_eq!(c.incidents.quiet_period, Duration::from_secs(10));
    assert_eq!(c.flows.idle_timeout, Duration::from_secs(15));
    assert_eq!(c.flows.active_timeout, Duration::from_secs(60));
    assert_eq!(c.flows.table_size, 131_072);
    assert_eq!(c.store.retention_seconds, Duration::from_secs(3600));
    assert_eq!(c.store.retention_minutes, Duration::from_secs(30 * 86_400));
    assert!(c.allowlist.is_empty() && c.overrides.is_empty());
    // The defaults must pass their own validation.
    assert!(c.validate().is_ok());
}

#[test]
fn an_empty_file_is_the_defaults() {
    assert_eq!(parse(""), Config::default());
    assert_eq!(parse("# nothing to change\n"), Config::default());
}

#[test]
fn the_shipped_example_is_the_defaults() {
    let text = include_str!("../../../nta.example.toml");
    assert_eq!(parse(text), Config::default());
}

#[test]
fn keys_left_out_of_a_section_keep_their_defaults() {
    let c = parse("[port_scan]\nfast_ports = 30\n[store]\nretention_minutes = \"7d\"\n");
    assert_eq!(c.port_scan.fast_ports, 30);
    assert_eq!(c.port_scan.fast_window, Duration::from_secs(1));
    assert_eq!(c.port_scan.slow_ports, 15);
    assert_eq!(c.store.retention_minutes, Duration::from_secs(7 * 86_400));
    assert_eq!(c.store.retention_seconds, Duration::from_secs(3600));
    assert_eq!(c.volumetric, Volumetric::default());
}

#[test]
fn rates_may_be_written_as_integers_or_floats() {
    let c = parse("[volumetric]\nudp_rate = 2500\nack_rate = 1e5\nicmp_rate = 12.5\n");
    assert_eq!(c.volumetric.udp_rate, 2500.0);
    assert_eq!(c.volumetric.ack_rate, 100_000.0);
    assert_eq!(c.volumetric.icmp_rate, 12.5);
}

#[test]
fn durations_take_humantime_units_and_the_range_ends_are_accepted() {
    let c = parse(
        "[port_scan]\nfast_window = \"100ms\"\nweighted_window = \"2s 500ms\"\n\
         slow_window = \"1h\"\n[incidents]\nquiet_period = \"1s\"\n\
         [store]\nretention_seconds = \"1d\"\nretention_minutes = \"400d\"\n",
    );
    assert_eq!(c.port_scan.fast_window, Duration::from_millis(100));
    assert_eq!(c.port_scan.weighted_window, Duration::from_millis(2500));
    assert_eq!(c.port_scan.slow_window, Duration::from_secs(3600));
    assert_eq!(c.incidents.quiet_period, Duration::from_secs(1));
    assert_eq!(c.store.retention_seconds, Duration::from_secs(86_400));
    assert_eq!(c.store.retention_minutes, Duration::from_secs(400 * 86_400));
}

#[test]
fn allowlist_takes_networks_and_bare_addresses_as_single_hosts() {
    let c = parse(r#"allowlist = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "fe80::1"]"#);
    assert_eq!(c.allowlist.len(), 4);
    assert_eq!(c.allowlist[1].prefix_len(), 32);
    assert_eq!(c.allowlist[3].prefix_len(), 128);
    for listed in [
        "10.0.0.1",
        "10.255.255.255",
        "192.0.2.7",
        "2001:db8::42",
        "fe80::1",
    ] {
        assert!(c.allowlisted(ip(listed)), "{listed} should be allowlisted");
    }
    for unlisted in [
        "11.0.0.1",
        "192.0.2.8",
        "2001:db9::1",
        "fe80::2",
        "::ffff:10.0.0.1",
    ] {
        assert!(!c.allowlisted(ip(unlisted)), "{unlisted} should not be");
    }
    assert!(!Config::default().allowlisted(ip("10.0.0.1")));
}

const NESTED_OVERRIDES: &str = r#"
[syn_flood]
dst_host_syn_rate = 500

[[override]]
network = "198.18.0.0/16"
syn_flood = { dst_host_syn_rate = 5000, dst_port_syn_rate = 4000 }

[[override]]
network = "198.18.7.0/24"
syn_flood = { dst_host_syn_rate = 20000 }

[[override]]
network = "198.18.7.9"
syn_flood = { enabled = false }

[[override]]
network = "2001:db8::/32"
syn_flood = { dst_host_syn_rate = 7000 }

[[override]]
network = "2001:db8:1::/48"
syn_flood = { dst_host_syn_rate = 9000 }
volumetric = { udp_rate = 30000 }
"#;

#[test]
fn the_longest_matching_override_prefix_wins_ipv4() {
    let c = parse(NESTED_OVERRIDES);
    // Written in the order /16, /24, /32, and also when listed the other way.
    let mut reversed = c.clone();
    reversed.overrides.reverse();
    for c in [c, reversed] {
        assert_eq!(
            c.syn_flood_for(ip("198.18.200.1")).dst_host_syn_rate,
            5000.0
        );
        assert_eq!(c.syn_flood_for(ip("198.18.7.1")).dst_host_syn_rate, 20000.0);
        let host = c.syn_flood_for(ip("198.18.7.9"));
        assert!(!host.enabled);
        assert_eq!(host.dst_host_syn_rate, 20000.0);
        // Outside every override: the global section.
        assert_eq!(c.syn_flood_for(ip("203.0.113.1")).dst_host_syn_rate, 500.0);
    }
}

#[test]
fn the_longest_matching_override_prefix_wins_ipv6() {
    let c = parse(NESTED_OVERRIDES);
    assert_eq!(
        c.syn_flood_for(ip("2001:db8:2::1")).dst_host_syn_rate,
        7000.0
    );
    assert_eq!(
        c.syn_flood_for(ip("2001:db8:1::1")).dst_host_syn_rate,
        9000.0
    );
    assert_eq!(c.syn_flood_for(ip("2001:db9::1")).dst_host_syn_rate, 500.0);
    // An IPv4 address never matches an IPv6 override, nor the reverse.
    assert_eq!(
        c.syn_flood_for(ip("::ffff:198.18.7.1")).dst_host_syn_rate,
        500.0
    );
}

#[test]
fn keys_an_override_leaves_out_come_from_wider_overrides_then_the_globals() {
    let c = parse(NESTED_OVERRIDES);
    let s = c.syn_flood_for(ip("198.18.7.1"));
    assert_eq!(s.dst_port_syn_rate, 4000.0); // from the /16
    assert!(s.enabled); // global
    let v = c.volumetric_for(ip("2001:db8:1::5"));
    assert_eq!(v.udp_rate, 30000.0);
    assert_eq!(v.syn_rate, 1000.0);
    assert_eq!(v.ack_rate, 50_000.0);
    // Overrides without a volumetric table leave volumetric alone.
    assert_eq!(c.volumetric_for(ip("198.18.7.9")), Volumetric::default());
}

#[test]
fn override_tables_may_be_written_as_sections() {
    let c =
        parse("[[override]]\nnetwork = \"10.1.0.0/16\"\n[override.volumetric]\nenabled = false\n");
    assert!(!c.volumetric_for(ip("10.1.2.3")).enabled);
    assert!(c.volumetric_for(ip("10.2.0.1")).enabled);
    assert_eq!(c.overrides[0].syn_flood, None);
}

#[test]
fn syntax_and_type_errors_say_file_line_column_and_key() {
    let e = parse_err("[port_scan]\nfast_ports = 15\nfast_window = 1\n");
    assert!(
        e.starts_with("nta.toml:3:15: port_scan.fast_window: invalid type: integer `1`"),
        "{e}"
    );
    let e = parse_err("[volumetric]\n  udp_rte = 5\n");
    assert!(
        e.starts_with("nta.toml:2:3: volumetric: unknown field `udp_rte`, expected one of"),
        "{e}"
    );
    let e = parse_err("allowlist = [\"10.0.0.0/8\",\n  \"10.0.0.0/40\"]\n");
    assert!(
        e.starts_with("nta.toml:2:3: allowlist[1]: invalid network \"10.0.0.0/40\""),
        "{e}"
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    let e = parse_err("# réseau élevé\n[store] # «historique»\nretention_seconds = \"1 jour\"\n");
    assert!(
        e.starts_with("nta.toml:3:21: store.retention_seconds:"),
        "{e}"
    );
    let e = parse_err("[store] # «historique» ünknown = 1\nretention = \"1h\"\n");
    assert!(
        e.starts_with("nta.toml:2:1: store: unknown field `retention`"),
        "{e}"
    );
}

#[test]
fn validation_errors_name_the_key_and_point_at_its_value() {
    let e = parse_err("[port_scan]\nfast_window = \"50ms\"\n");
    assert_eq!(
        e,
        "nta.toml:2:15: port_scan.fast_window: must be between 100ms and 1h, got 50ms"
    );
    let e = parse_err("[flows]\nactive_timeout = \"0s\"\n");
    assert_eq!(
        e,
        "nta.toml:2:18: flows.active_timeout: must be between 1s and 1d, got 0s"
    );
    let e = parse_err("[flows]\ntable_size = 100\n");
    assert_eq!(
        e,
        "nta.toml:2:14: flows.table_size: must be between 1024 and 4194304 flows, got 100"
    );
    let e = parse_err(
        "[[override]]\nnetwork = \"10.0.0.0/8\"\nsyn_flood = { dst_host_syn_rate = 9 }\n\n\
         [[override]]\nnetwork = \"10.0.0.0/8\"\nvolumetric = { udp_rate = 9 }\n",
    );
    assert_eq!(
        e,
        "nta.toml:6:11: override[1].network: 10.0.0.0/8 is already overridden by override[0]; \
         merge the two"
    );
}

#[test]
fn the_sweep_section_parses_and_shares_the_slow_window() {
    let c = parse("[sweep]\nhosts = 100\n[port_scan]\nslow_window = \"10m\"\n");
    assert_eq!(c.sweep.hosts, 100);
    assert!(c.sweep.enabled);
    assert!(
        c.summary().contains("; sweep: >100 hosts/10m;"),
        "{}",
        c.summary()
    );
    let off = parse("[sweep]\nenabled = false\n");
    assert_eq!(off.sweep.hosts, 25);
    assert!(off.summary().contains("; sweep: off;"), "{}", off.summary());
}

#[test]
fn sweep_hosts_out_of_range_or_misspelled_are_refused() {
    for (hosts, got) in [("0", "0"), ("1001", "1001")] {
        let e = parse_err(&format!("[sweep]\nhosts = {hosts}\n"));
        assert_eq!(
            e,
            format!(
                "nta.toml:2:9: sweep.hosts: must be between 1 and 1000 hosts, got {got} \
                 (to turn sweeps off, set enabled = false)"
            )
        );
    }
    let e = parse_err("[sweep]\nhost = 30\n");
    assert!(
        e.starts_with("nta.toml:2:1: sweep: unknown field `host`"),
        "{e}"
    );
    let e = parse_err("[sweep]\nhosts = -3\n");
    assert!(e.contains("sweep.hosts"), "{e}");
}

#[test]
fn a_validation_error_without_a_location_still_names_file_and_key() {
    let e = ConfigError::Invalid {
        path: "nta.toml".into(),
        location: None,
        key: "store.retention_seconds".into(),
        message: "must be between 1m and 1d, got 2d".into(),
    };
    assert_eq!(
        e.to_string(),
        "nta.toml: store.retention_seconds: must be between 1m and 1d, got 2d"
    );
    assert_eq!(e.location(), None);
}

#[test]
fn load_reads_the_file_and_names_it_when_it_cannot() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "[incidents]\nquiet_period = \"30s\"").unwrap();
    let c = Config::load(file.path()).unwrap();
    assert_eq!(c.incidents.quiet_period, Duration::from_secs(30));

    let missing = file.path().with_extension("missing");
    let e = Config::load(&missing).unwrap_err();
    assert!(matches!(e, ConfigError::Io { .. }));
    assert!(
        e.to_string()
            .starts_with(&format!("cannot read config file {}: ", missing.display())),
        "{e}"
    );
}

#[test]
fn check_summarises_the_effective_config_in_one_line() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(
        file,
        "allowlist = [\"10.0.0.0/8\", \"192.0.2.7\"]\n[volumetric]\nenabled = false\n\
         [[override]]\nnetwork = \"198.18.0.0/24\"\nsyn_flood = {{ dst_host_syn_rate = 20000 }}\n"
    )
    .unwrap();
    let summary = check(file.path()).unwrap();
    assert_eq!(
        summary,
        format!(
            "{}: OK — port_scan: >15 ports/1s, weighted 21/3s, >15 ports/5m; \
             sweep: >25 hosts/5m; syn_flood: 1000 SYN/s host, 1000 SYN/s port, 1000 Mbit/s host; volumetric: off; \
             flood: tcp 100000 pkt/s 1000 Mbit/s, udp 20000 pkt/s 1000 Mbit/s, \
             icmp 5000 pkt/s 100 Mbit/s, fragment 5000 pkt/s 500 Mbit/s, \
             all 500000 pkt/s 10000 Mbit/s per host; \
             incidents close after 10s quiet; history: 1h per-second, 30d per-minute; \
             2 allowlist entries; 1 override",
            file.path().display()
        )
    );
    assert!(
        Config::default()
            .summary()
            .contains("volumetric: 1000 SYN/s, 1000 UDP/s, 1000 ICMP/s, 1000 RST/s, 50000 ACK/s")
    );
}

#[test]
fn durations_are_shown_as_they_would_be_written() {
    assert_eq!(show(Duration::from_millis(100)), "100ms");
    assert_eq!(show(Duration::from_millis(2500)), "2500ms");
    assert_eq!(show(Duration::from_secs(90)), "90s");
    assert_eq!(show(Duration::from_secs(400 * 86_400)), "400d");
    assert_eq!(show(Duration::from_nanos(1500)), "1us 500ns");
    assert_eq!(show(Duration::ZERO), "0s");
}

#[test]
fn flood_defaults_are_per_host_packet_and_bit_rates() {
    let f = Config::default().flood;
    assert!(f.enabled);
    let rates = |r: ClassRates| (r.pps, r.mbps);
    assert_eq!(rates(f.tcp), (100_000.0, 1_000.0));
    assert_eq!(rates(f.udp), (20_000.0, 1_000.0));
    assert_eq!(rates(f.icmp), (5_000.0, 100.0));
    assert_eq!(rates(f.fragment), (5_000.0, 500.0));
    assert_eq!(rates(f.all), (500_000.0, 10_000.0));
    assert_eq!(Config::default().syn_flood.dst_host_mbps, 1_000.0);
}

#[test]
fn a_flood_class_table_may_set_one_rate_and_keep_the_other() {
    let c = parse("[flood]\nudp = { pps = 5000 }\n[flood.icmp]\nmbps = 10\n");
    assert_eq!((c.flood.udp.pps, c.flood.udp.mbps), (5_000.0, 1_000.0));
    assert_eq!((c.flood.icmp.pps, c.flood.icmp.mbps), (5_000.0, 10.0));
    assert_eq!(c.flood.tcp, Flood::default().tcp);
    assert!(c.flood.enabled);
    let off = parse("[flood]\nenabled = false\nall = { pps = 0, mbps = 0 }\n");
    assert!(!off.flood.enabled);
    assert_eq!(off.flood.all, ClassRates::OFF);
}

#[test]
fn flood_overrides_raise_and_lower_per_destination() {
    let c = parse(
        "[flood]\nudp = { pps = 10000 }\n\n\
         [[override]]\nnetwork = \"198.18.0.0/16\"\nflood = { udp = { pps = 200000 }, icmp = { mbps = 5 } }\n\n\
         [[override]]\nnetwork = \"198.18.7.0/24\"\nflood = { udp = { mbps = 20 } }\n\n\
         [[override]]\nnetwork = \"198.18.9.9\"\nflood = { enabled = false }\n",
    );
    let wide = c.flood_for(ip("198.18.1.1"));
    assert_eq!(
        (wide.udp.pps, wide.udp.mbps),
        (200_000.0, 1_000.0),
        "raised"
    );
    assert_eq!((wide.icmp.pps, wide.icmp.mbps), (5_000.0, 5.0), "lowered");
    let narrow = c.flood_for(ip("198.18.7.1"));
    assert_eq!((narrow.udp.pps, narrow.udp.mbps), (200_000.0, 20.0));
    assert!(!c.flood_for(ip("198.18.9.9")).enabled);
    let outside = c.flood_for(ip("203.0.113.1"));
    assert_eq!((outside.udp.pps, outside.udp.mbps), (10_000.0, 1_000.0));
    // SYN's bit rate overrides like its packet rate.
    let c = parse("[[override]]\nnetwork = \"10.0.0.0/8\"\nsyn_flood = { dst_host_mbps = 50 }\n");
    assert_eq!(c.syn_flood_for(ip("10.1.1.1")).dst_host_mbps, 50.0);
    assert_eq!(c.syn_flood_for(ip("10.1.1.1")).dst_host_syn_rate, 1000.0);
}

#[test]
fn bad_flood_values_name_their_key() {
    let e = parse_err("[flood]\nudp = { pps = -5 }\n");
    assert_eq!(
        e,
        "nta.toml:2:15: flood.udp.pps: must be a number of packets per second greater than 0 \
         (or 0 for off), got -5"
    );
    let e = parse_err("[flood]\nall = { mbps = inf }\n");
    assert!(
        e.contains("flood.all.mbps: must be a number of Mbit/s"),
        "{e}"
    );
    let e = parse_err("[flood.fragment]\npps = nan\n");
    assert!(e.contains("flood.fragment.pps:"), "{e}");
    let e = parse_err("[[override]]\nnetwork = \"10.0.0.0/8\"\nflood = { icmp = { mbps = -1 } }\n");
    assert!(
        e.starts_with("nta.toml:3:") && e.contains("override[0].flood.icmp.mbps: must be"),
        "{e}"
    );
    let e = parse_err("[syn_flood]\ndst_host_mbps = -1\n");
    assert!(e.contains("syn_flood.dst_host_mbps: must be"), "{e}");
    let e = parse_err("[flood]\nudp = { ppps = 5 }\n");
    assert!(e.contains("unknown field `ppps`"), "{e}");
    let e = parse_err("[flood]\ngre = { pps = 5 }\n");
    assert!(e.contains("unknown field `gre`"), "{e}");
}

#[test]
fn the_burst_allowance_is_a_multiple_of_at_least_one_or_off() {
    assert_eq!(Config::default().flood.burst, 4.0);
    assert_eq!(parse("[flood]\nburst = 0\n").flood.burst, 0.0);
    let c = parse(
        "[flood]\nburst = 2.5\n[[override]]\nnetwork = \"10.0.0.0/8\"\nflood = { burst = 8 }\n",
    );
    assert_eq!(c.flood.burst, 2.5);
    assert_eq!(c.flood_for(ip("10.1.1.1")).burst, 8.0);
    assert_eq!(c.flood_for(ip("192.0.2.1")).burst, 2.5);
    let e = parse_err("[flood]\nburst = 0.5\n");
    assert!(
        e.contains(
            "flood.burst: must be a multiple of the rates of at least 1 (or 0 for off), got 0.5"
        ),
        "{e}"
    );
    let e = parse_err("[[override]]\nnetwork = \"10.0.0.0/8\"\nflood = { burst = nan }\n");
    assert!(e.contains("override[0].flood.burst: must be"), "{e}");
}

#[test]
fn an_override_may_set_only_flood_rates() {
    let c = parse("[[override]]\nnetwork = \"10.0.0.0/8\"\nflood = { all = { pps = 1e6 } }\n");
    assert_eq!(c.flood_for(ip("10.0.0.1")).all.pps, 1e6);
    let e = parse_err("[[override]]\nnetwork = \"10.0.0.0/8\"\n");
    assert!(
        e.contains("give it a syn_flood, volumetric or flood table"),
        "{e}"
    );
}

#[test]
fn victim_side_floods_cannot_block_their_sources() {
    for kind in [
        "udp_flood",
        "icmp_flood",
        "tcp_flood",
        "fragment_flood",
        "traffic_flood",
    ] {
        let e = parse_err(&format!("[mitigate]\nkinds = [\"{kind}\"]\n"));
        assert!(
            e.contains(&format!(
                "cannot block the source of {kind}: a flood on one host"
            )),
            "{e}"
        );
    }
    assert!(
        !Config::default()
            .mitigate
            .kinds
            .contains(&crate::alert::AlertKind::Reflection)
    );
}

#[test]
fn an_ipfix_collector_is_an_address_and_a_port() {
    assert_eq!(Config::default().export.ipfix, None);
    let c = parse("[export]\nipfix = \"127.0.0.1:4739\"\n");
    assert_eq!(c.export.ipfix, Some("127.0.0.1:4739".parse().unwrap()));
    assert!(
        c.summary()
            .ends_with("; flows to IPFIX collector 127.0.0.1:4739"),
        "{}",
        c.summary()
    );
    let c = parse("[export]\nipfix = \"[2001:db8::1]:2055\"\n");
    assert_eq!(c.export.ipfix, Some("[2001:db8::1]:2055".parse().unwrap()));
    assert!(!Config::default().summary().contains("IPFIX"));
}

#[test]
fn bad_ipfix_collectors_are_refused_naming_the_value() {
    for (value, why) in [
        ("collector.example:4739", "write it as IP:PORT"),
        ("127.0.0.1", "write it as IP:PORT"),
        ("127.0.0.1:0", "port 0 cannot be sent to"),
        ("0.0.0.0:4739", "not an address to send to"),
        ("[::]:4739", "not an address to send to"),
        ("255.255.255.255:4739", "not an address to send to"),
    ] {
        let e = parse_err(&format!("[export]\nipfix = \"{value}\"\n"));
        assert!(
            e.contains(&format!(
                "export.ipfix: invalid IPFIX collector \"{value}\": {why}"
            )),
            "{e}"
        );
        assert!(e.contains("nta.toml:2:"), "{e}");
    }
    let e = parse_err("[export]\nipfix = 4739\n");
    assert!(e.contains("export.ipfix"), "{e}");
    let e = parse_err("[export]\nnetflow = \"127.0.0.1:2055\"\n");
    assert!(e.contains("unknown field `netflow`"), "{e}");
}

#[test]
fn rule_variables_override_suricatas_and_bad_ones_are_named() {
    let config = parse("[vars]\nHOME_NET = \"198.18.0.0/15\"\nHTTP_PORTS = \"[80,8888]\"\n");
    let vars = config.rule_vars();
    assert_eq!(vars.expand("$EXTERNAL_NET").unwrap(), "!198.18.0.0/15");
    assert_eq!(vars.expand("$HTTP_PORTS").unwrap(), "[80,8888]");
    let e = parse_err("[vars]\nHOME_NET = \"[10.0.0.300]\"\n");
    assert!(
        e.contains("vars.HOME_NET: `[10.0.0.300]` is neither addresses nor ports"),
        "{e}"
    );
    let e = parse_err("[vars]\nHOME_NET = \"$NOPE\"\n");
    assert!(e.contains("vars.HOME_NET: unknown variable `$NOPE`"), "{e}");
}
