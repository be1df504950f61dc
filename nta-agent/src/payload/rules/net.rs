//! Address and port fields of a rule header: `any`, one value, `[lists]`,
//! `!negation`, nested as Suricata allows.

use std::net::IpAddr;

use ipnet::IpNet;

/// Deepest nesting of `[...]` / `!` accepted. Real rules nest one or two
/// levels; the bound keeps a hostile rules file from recursing deeply.
const MAX_NESTING: usize = 8;
/// Most entries in one list, for the same reason.
const MAX_LIST_ITEMS: usize = 1024;

/// An address or port field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec<T> {
    Any,
    One(T),
    /// Matches if some non-negated entry matches (or there are none) and no
    /// negated entry does: `[10.0.0.0/8,!10.1.0.0/16]`.
    List(Vec<Spec<T>>),
    Not(Box<Spec<T>>),
}

/// An address field.
pub type Addresses = Spec<IpNet>;
/// A port field.
pub type Ports = Spec<PortRange>;

/// Inclusive port range; a single port is `lo == hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

/// What a single entry of a field matches.
pub trait Contains<V> {
    fn contains(&self, value: V) -> bool;
}

impl Contains<IpAddr> for IpNet {
    /// The address's leading bits against the network's: every candidate
    /// rule asks this of both addresses, several times for `$HOME_NET`
    /// lists, where `ipnet`'s general `contains` showed in profiles.
    fn contains(&self, value: IpAddr) -> bool {
        let leading =
            |bits: u8, width: u8| u128::MAX.checked_shl(u32::from(width - bits)).unwrap_or(0);
        match (self, value) {
            (IpNet::V4(net), IpAddr::V4(addr)) => {
                let mask = leading(net.prefix_len(), 32) as u32;
                (u32::from(net.addr()) ^ u32::from(addr)) & mask == 0
            }
            (IpNet::V6(net), IpAddr::V6(addr)) => {
                let mask = leading(net.prefix_len(), 128);
                (u128::from(net.addr()) ^ u128::from(addr)) & mask == 0
            }
            _ => false,
        }
    }
}

impl Contains<u16> for PortRange {
    fn contains(&self, value: u16) -> bool {
        (self.lo..=self.hi).contains(&value)
    }
}

impl<T> Spec<T> {
    /// Whether `value` is in the field.
    pub fn matches<V: Copy>(&self, value: V) -> bool
    where
        T: Contains<V>,
    {
        match self {
            Spec::Any => true,
            Spec::One(t) => t.contains(value),
            Spec::Not(inner) => !inner.matches(value),
            Spec::List(items) => {
                let mut any_positive = false;
                let mut hit = false;
                for item in items {
                    match item {
                        Spec::Not(inner) if inner.matches(value) => return false,
                        Spec::Not(_) => {}
                        _ => {
                            any_positive = true;
                            hit = hit || item.matches(value);
                        }
                    }
                }
                !any_positive || hit
            }
        }
    }
}

impl<T: Copy> Spec<T> {
    /// Entries one of which holds every value the field matches: `None`
    /// when it matches values outside them all (`any`, a negation alone).
    /// Negated entries of a list only narrow it, so they are left out.
    pub fn bounds(&self) -> Option<Vec<T>> {
        match self {
            Spec::Any | Spec::Not(_) => None,
            Spec::One(t) => Some(vec![*t]),
            Spec::List(items) => {
                let mut out = Vec::new();
                let mut positive = false;
                for item in items.iter().filter(|i| !matches!(i, Spec::Not(_))) {
                    positive = true;
                    out.extend(item.bounds()?);
                }
                positive.then_some(out)
            }
        }
    }
}

/// Parses an address field.
pub fn addresses(text: &str) -> Result<Addresses, String> {
    spec(text, 0, &|one| {
        if one.starts_with('$') {
            return Err(format!(
                "address variables such as `{one}` are not supported; write the networks, \
                 e.g. [10.0.0.0/8,192.168.0.0/16]"
            ));
        }
        if one.contains('/') {
            one.parse::<IpNet>()
                .map(|net| net.trunc())
                .map_err(|_| format!("`{one}` is not an IP network (e.g. 10.0.0.0/8)"))
        } else {
            one.parse::<IpAddr>()
                .map(IpNet::from)
                .map_err(|_| format!("`{one}` is not an IP address"))
        }
    })
}

/// Parses a port field.
pub fn ports(text: &str) -> Result<Ports, String> {
    spec(text, 0, &|one| {
        if one.starts_with('$') {
            return Err(format!(
                "port variables such as `{one}` are not supported; write the ports, e.g. [80,8080]"
            ));
        }
        let port = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| format!("`{p}` is not a port (0–65535)"))
        };
        let range = match one.split_once(':') {
            None => {
                let p = port(one)?;
                PortRange { lo: p, hi: p }
            }
            Some((lo, hi)) => PortRange {
                lo: if lo.is_empty() { 0 } else { port(lo)? },
                hi: if hi.is_empty() { u16::MAX } else { port(hi)? },
            },
        };
        if range.lo > range.hi {
            return Err(format!("empty port range `{one}`"));
        }
        Ok(range)
    })
}

fn spec<T>(
    text: &str,
    depth: usize,
    one: &dyn Fn(&str) -> Result<T, String>,
) -> Result<Spec<T>, String> {
    if depth > MAX_NESTING {
        return Err(format!("nested deeper than {MAX_NESTING} levels"));
    }
    let text = text.trim();
    if let Some(rest) = text.strip_prefix('!') {
        let inner = spec(rest, depth + 1, one)?;
        if matches!(inner, Spec::Any) {
            return Err("`!any` matches nothing".into());
        }
        return Ok(Spec::Not(Box::new(inner)));
    }
    if let Some(inner) = text.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            return Err(format!("`{text}`: list without closing `]`"));
        };
        let items = split_top_level(inner)?;
        if items.iter().all(|i| i.trim().is_empty()) {
            return Err("empty list `[]`".into());
        }
        if items.len() > MAX_LIST_ITEMS {
            return Err(format!("more than {MAX_LIST_ITEMS} entries in one list"));
        }
        let items = items
            .into_iter()
            .map(|i| spec(i, depth + 1, one))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Spec::List(items));
    }
    match text {
        "" => Err("empty entry".into()),
        "any" => Ok(Spec::Any),
        _ => one(text).map(Spec::One),
    }
}

/// Splits at commas outside brackets.
fn split_top_level(text: &str) -> Result<Vec<&str>, String> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.checked_sub(1).ok_or("`]` without `[`")?,
            ',' if depth == 0 => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("`[` without `]`".into());
    }
    items.push(&text[start..]);
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn address_fields_match_as_suricata_reads_them() {
        let any = addresses("any").unwrap();
        assert!(any.matches(ip("192.0.2.1")) && any.matches(ip("2001:db8::1")));

        let one = addresses("192.0.2.1").unwrap();
        assert!(one.matches(ip("192.0.2.1")) && !one.matches(ip("192.0.2.2")));

        let net = addresses("10.1.2.3/8").unwrap();
        assert!(net.matches(ip("10.200.0.1")) && !net.matches(ip("11.0.0.1")));

        let v6 = addresses("2001:db8::/32").unwrap();
        assert!(v6.matches(ip("2001:db8::5")) && !v6.matches(ip("10.0.0.1")));

        let list = addresses("[10.0.0.0/8, !10.1.0.0/16, 192.168.0.1]").unwrap();
        assert!(list.matches(ip("10.2.0.1")));
        assert!(!list.matches(ip("10.1.0.1")));
        assert!(list.matches(ip("192.168.0.1")));
        assert!(!list.matches(ip("172.16.0.1")));

        let not = addresses("![10.0.0.0/8,192.168.0.0/16]").unwrap();
        assert!(!not.matches(ip("10.0.0.1")) && not.matches(ip("172.16.0.1")));

        let only_negative = addresses("[!10.0.0.0/8]").unwrap();
        assert!(only_negative.matches(ip("172.16.0.1")) && !only_negative.matches(ip("10.0.0.1")));
    }

    /// The mask comparison agrees with `ipnet` at every prefix length,
    /// at the edges of each network, and across address families.
    #[test]
    fn a_network_holds_the_addresses_ipnet_says_it_does() {
        let v4 = ip("203.0.113.77");
        let v6 = ip("2001:db8:85a3::8a2e:370:7334");
        for base in [v4, v6] {
            let width = if base.is_ipv4() { 32 } else { 128 };
            for len in 0..=width {
                let net = IpNet::new(base, len).unwrap().trunc();
                for probe in [
                    net.network(),
                    net.broadcast(),
                    base,
                    v4,
                    v6,
                    ip("0.0.0.0"),
                    ip("::"),
                ] {
                    assert_eq!(
                        Contains::contains(&net, probe),
                        IpNet::contains(&net, &probe),
                        "{net} {probe}"
                    );
                }
                if len > 0 {
                    // Just past the network, both sides.
                    let outside = match net {
                        IpNet::V4(n) => n.supernet().map(|s| IpAddr::V4(s.broadcast())),
                        IpNet::V6(n) => n.supernet().map(|s| IpAddr::V6(s.broadcast())),
                    };
                    if let Some(probe) = outside {
                        assert_eq!(
                            Contains::contains(&net, probe),
                            IpNet::contains(&net, &probe)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn port_fields_match_ranges_lists_and_negation() {
        let p = ports("[80,443,8000:8100,!8080]").unwrap();
        assert!(p.matches(80u16) && p.matches(8050u16));
        assert!(!p.matches(8080u16) && !p.matches(22u16));
        assert!(ports("1024:").unwrap().matches(65535u16));
        assert!(!ports(":1023").unwrap().matches(1024u16));
        assert!(!ports("!22").unwrap().matches(22u16));
        assert!(ports("any").unwrap().matches(0u16));
    }

    #[test]
    fn bad_fields_say_what_is_wrong() {
        let err = |r: Result<Addresses, String>| r.unwrap_err();
        assert!(err(addresses("$HOME_NET")).contains("`$HOME_NET` are not supported"));
        assert!(err(addresses("10.0.0.300")).contains("not an IP address"));
        assert!(err(addresses("10.0.0.0/33")).contains("not an IP network"));
        assert!(err(addresses("!any")).contains("matches nothing"));
        assert!(err(addresses("[]")).contains("empty list"));
        assert!(err(addresses("[10.0.0.1")).contains("without closing"));
        assert!(
            err(addresses(&format!(
                "{}10.0.0.1{}",
                "[".repeat(20),
                "]".repeat(20)
            )))
            .contains("nested")
        );
        assert!(ports("70000").unwrap_err().contains("not a port"));
        assert!(ports("90:80").unwrap_err().contains("empty port range"));
        assert!(ports("$HTTP_PORTS").unwrap_err().contains("not supported"));
    }
}
