//! `Config::parse` on arbitrary UTF-8 text, as a user's (or a mistaken)
//! config file reaches it.
//!
//! Asserts: no panic; an error displays and, when it has a location, points
//! inside the text; an accepted config passes its own validation again and
//! its derived views (summary, per-destination thresholds, the DNS tunnel
//! detector's settings, the allowlist) work.

#![no_main]

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
};

use libfuzzer_sys::fuzz_target;
use nta_agent::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, Path::new("fuzz.toml")) {
        Err(error) => {
            if let Some(at) = error.location() {
                // `lines()` drops a final empty line, where an error at the
                // end of the input may point.
                let lines = text.lines().count() + 1;
                assert!((1..=lines).contains(&at.line) && at.column >= 1, "{error}");
            }
            let _ = error.to_string();
            let _ = format!("{error:?}");
        }
        Ok(config) => {
            let _ = config.summary();
            let detector = config.dns_tunnel.detector();
            assert!(detector.validate().is_ok(), "{detector:?}");
            for addr in [
                IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V4(Ipv4Addr::BROADCAST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            ] {
                let _ = config.allowlisted(addr);
                let _ = config.syn_flood_for(addr);
                let _ = config.volumetric_for(addr);
            }
        }
    }
});
