//! `[export]`: where flow records go besides EVE and the store.

use std::{fmt, net::SocketAddr};

use serde::{
    Deserialize,
    de::{self, Deserializer, Visitor},
};

/// Flow export to collectors; `--ipfix` on the command line wins over it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Export {
    /// An IPFIX collector (IP:PORT) that gets every flow record over UDP.
    #[serde(deserialize_with = "ipfix_collector")]
    pub ipfix: Option<SocketAddr>,
}

/// An IPFIX collector as the file and `--ipfix` write it: an IP address
/// to send to and a port. Host names are refused rather than resolved: a
/// name would be looked up once at start and go stale, unseen.
pub fn collector(text: &str) -> Result<SocketAddr, String> {
    let invalid = |why: &str| format!(r#"invalid IPFIX collector "{text}": {why}"#);
    let addr: SocketAddr = text.parse().map_err(|_| {
        invalid(r#"write it as IP:PORT, like "127.0.0.1:4739" or "[2001:db8::1]:4739""#)
    })?;
    if addr.port() == 0 {
        return Err(invalid("port 0 cannot be sent to (IPFIX's own is 4739)"));
    }
    let broadcast = matches!(addr, SocketAddr::V4(a) if a.ip().is_broadcast());
    if addr.ip().is_unspecified() || broadcast {
        return Err(invalid("not an address to send to"));
    }
    Ok(addr)
}

fn ipfix_collector<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    struct CollectorVisitor;

    impl Visitor<'_> for CollectorVisitor {
        type Value = SocketAddr;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(r#"an IP address and port like "127.0.0.1:4739""#)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<SocketAddr, E> {
            collector(text).map_err(E::custom)
        }
    }

    deserializer.deserialize_str(CollectorVisitor).map(Some)
}
