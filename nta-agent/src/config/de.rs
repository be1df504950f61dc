//! How durations and networks are written in the file.
//!
//! Errors from here go through toml, which attaches the span of the offending
//! value, so they only have to say what is wrong with it.

use std::{fmt, net::IpAddr, time::Duration};

use ipnet::IpNet;
use serde::de::{self, Deserializer, Visitor};

/// A humantime string: `"500ms"`, `"3s"`, `"1m"`, `"30d"`.
pub(super) fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            // A bare number is the likeliest mistake; its unit would be a guess.
            f.write_str(r#"a duration string with a unit, like "500ms", "3s", "1m" or "30d""#)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            humantime::parse_duration(text).map_err(|e| {
                E::custom(format!(
                    r#"invalid duration "{text}": {e}; write it like "500ms", "3s", "1m" or "30d""#
                ))
            })
        }
    }

    deserializer.deserialize_str(DurationVisitor)
}

/// An optional [`duration`], for keys whose default depends on others.
pub(super) fn optional_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    duration(deserializer).map(Some)
}

/// One network: CIDR (`"10.0.0.0/8"`, `"2001:db8::/32"`) or a bare address,
/// which stands for itself alone (/32 or /128).
pub(super) fn network<'de, D: Deserializer<'de>>(deserializer: D) -> Result<IpNet, D::Error> {
    deserializer.deserialize_str(NetworkVisitor)
}

/// A list of networks as [`network`] reads them.
pub(super) fn networks<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    struct Net(IpNet);

    impl<'de> serde::Deserialize<'de> for Net {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Net, D::Error> {
            network(deserializer).map(Net)
        }
    }

    let nets: Vec<Net> = serde::Deserialize::deserialize(deserializer)?;
    Ok(nets.into_iter().map(|Net(net)| net).collect())
}

struct NetworkVisitor;

impl Visitor<'_> for NetworkVisitor {
    type Value = IpNet;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"a network like "10.0.0.0/8" or "2001:db8::/32", or an address"#)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<IpNet, E> {
        if let Ok(addr) = text.parse::<IpAddr>() {
            return Ok(IpNet::from(addr));
        }
        let net: IpNet = text.parse().map_err(|_| {
            E::custom(format!(
                r#"invalid network "{text}": write it as CIDR like "10.0.0.0/8" or "2001:db8::/32", or as one address"#
            ))
        })?;
        // "10.1.2.3/16" is usually a typo for either the /16 or the /32; which
        // one matters (an allowlist entry 65 536 times too wide hides attacks),
        // so ask instead of silently masking.
        if net.trunc() != net {
            return Err(E::custom(format!(
                r#"network "{text}" has host bits set: write "{}" for the network or "{}" for the address alone"#,
                net.trunc(),
                IpNet::from(net.addr())
            )));
        }
        Ok(net)
    }
}
