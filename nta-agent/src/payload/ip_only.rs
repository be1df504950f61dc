//! Rules matched on addresses alone — Suricata's IP-only rules, such as the
//! reputation lists of ET Open (`alert ip [192.0.2.1,198.51.100.0/24,...]
//! any -> $HOME_NET any (...)`): no payload to look at, only who talks to
//! whom.
//!
//! They are matched on the flow table, not on samples: each walk of the
//! table looks up the flows that began since the previous walk, once, in
//! each direction their packets went. A flow from a listed source to the
//! home network matches `[list] any -> $HOME_NET any`; the answers from the
//! home network do not. A rule alerts at most once per flow, with the
//! addresses of the first direction it matched (the opener's first), and
//! its `threshold` is applied as for payload rules.
//!
//! Each rule is indexed by the side of its header that holds the fewest
//! addresses (the list, not `$HOME_NET`), and checked whole — protocol,
//! both sides, ports, direction — when a flow's address hits that index.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, SocketAddr},
    time::Instant,
};

use ipnet::IpNet;
use nta_common::{
    flow::{FlowKey, FlowStats, HIGH_TO_LOW, LOW_TO_HIGH},
    maps::ip_proto,
};

use super::{
    rules::{Protocol, Rule},
    threshold::Tracker,
};

/// How far before a walk's start a flow's first packet may lie and still
/// be looked up by the next walk: a flow whose first packet the kernel
/// stamped just before the walk began may be put in the table after the
/// walk passed its place.
pub const LATE_NS: u64 = 50_000_000;

/// Flows remembered as looked up already, of those that began within
/// [`LATE_NS`] of a walk's start (the next walk sees them again). Past it,
/// such a flow may be looked up twice; its rule's threshold still holds.
pub const MAX_REMEMBERED: usize = 65_536;

/// A rule on addresses alone that matched a flow: what its alert says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressMatch {
    pub sid: u32,
    pub rev: u32,
    pub msg: String,
    pub classtype: Option<String>,
    pub priority: u8,
    /// The direction of the flow's packets that matched.
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// The flow's IP protocol number.
    pub proto: u8,
}

/// The networks of one prefix length, each with the rules that list it.
#[derive(Debug, Clone)]
struct Prefixes {
    len: u8,
    nets: HashMap<u128, Vec<u32>, foldhash::fast::RandomState>,
}

/// The rules on addresses alone, indexed by network.
///
/// One hash map per prefix length present, from the masked address to the
/// rules listing that network: a lookup is one probe per prefix length
/// (the lists of ET Open use a few dozen), whatever the number of networks
/// and rules, and the index is as large as the lists. A prefix trie would
/// probe less, but the lists change only on a reload, the probes are
/// cheap, and the maps need no code or dependency beyond the standard
/// library's.
#[derive(Debug, Clone, Default)]
pub struct IpOnlyRules {
    rules: Vec<Rule>,
    v4: Vec<Prefixes>,
    v6: Vec<Prefixes>,
}

impl IpOnlyRules {
    /// Indexes the rules of `rules` that are on addresses alone; the others
    /// are the payload matcher's. A rule with an address list on neither
    /// side (the parser refuses those) is left out.
    pub fn new(rules: &[Rule]) -> IpOnlyRules {
        let mut index = IpOnlyRules::default();
        for rule in rules.iter().filter(|r| r.is_address_only()) {
            let Some(nets) = narrowest_side(rule) else {
                continue;
            };
            let at = index.rules.len() as u32;
            index.rules.push(rule.clone());
            for net in nets {
                let (table, width) = match net {
                    IpNet::V4(_) => (&mut index.v4, 32),
                    IpNet::V6(_) => (&mut index.v6, 128),
                };
                let len = net.prefix_len();
                let slot = match table.iter().position(|p| p.len == len) {
                    Some(i) => i,
                    None => {
                        table.push(Prefixes {
                            len,
                            nets: HashMap::default(),
                        });
                        table.len() - 1
                    }
                };
                let users = table[slot]
                    .nets
                    .entry(masked(bits(net.addr()), width, len))
                    .or_default();
                // A network listed twice in one rule names it once.
                if users.last() != Some(&at) {
                    users.push(at);
                }
            }
        }
        index
    }

    /// The indexed rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Adds to `out` the rules listing a network that holds `addr`.
    fn candidates(&self, addr: IpAddr, out: &mut Vec<u32>) {
        let (table, width) = match addr {
            IpAddr::V4(_) => (&self.v4, 32),
            IpAddr::V6(_) => (&self.v6, 128),
        };
        let addr = bits(addr);
        for prefixes in table {
            if let Some(users) = prefixes.nets.get(&masked(addr, width, prefixes.len)) {
                out.extend_from_slice(users);
            }
        }
    }

    /// The indexes of the rules that match a packet of protocol `proto`
    /// from `src` to `dst`, lowest first.
    pub fn matching(&self, proto: u8, src: SocketAddr, dst: SocketAddr) -> Vec<usize> {
        let mut candidates = Vec::new();
        self.candidates(src.ip(), &mut candidates);
        self.candidates(dst.ip(), &mut candidates);
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .into_iter()
            .map(|r| r as usize)
            .filter(|&r| applies(&self.rules[r], proto, src, dst))
            .collect()
    }
}

/// The networks of the side of `rule` that holds the fewest addresses, of
/// the sides that are lists (or one network); `None` when neither is.
fn narrowest_side(rule: &Rule) -> Option<Vec<IpNet>> {
    let sides = [rule.src.bounds(), rule.dst.bounds()];
    sides.into_iter().flatten().min_by_key(|nets| span(nets))
}

/// How many addresses `nets` hold, saturated.
fn span(nets: &[IpNet]) -> u128 {
    nets.iter().fold(0u128, |total, net| {
        let host_bits = u32::from(net.max_prefix_len() - net.prefix_len());
        total.saturating_add(1u128.checked_shl(host_bits).unwrap_or(u128::MAX))
    })
}

fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// `addr` (of `width` bits) with all but its first `len` bits cleared.
fn masked(addr: u128, width: u32, len: u8) -> u128 {
    let host_bits = width.saturating_sub(u32::from(len));
    addr.checked_shr(host_bits)
        .and_then(|a| a.checked_shl(host_bits))
        .unwrap_or(0)
}

/// Whether `rule` matches a packet of protocol `proto` from `src` to `dst`.
fn applies(rule: &Rule, proto: u8, src: SocketAddr, dst: SocketAddr) -> bool {
    let protocol = match rule.protocol {
        Protocol::Ip => true,
        Protocol::Tcp => proto == ip_proto::TCP,
        Protocol::Udp => proto == ip_proto::UDP,
        // ICMPv6 too, as Suricata's `icmp`.
        Protocol::Icmp => proto == ip_proto::ICMP || proto == ip_proto::ICMPV6,
        Protocol::Http | Protocol::Dns | Protocol::Tls => false,
    };
    protocol && rule.addresses_fit(src, dst)
}

/// The rules on addresses alone, with what each walk of the flow table
/// needs to look up every new flow once: where the previous walk started,
/// the flows it looked up that the next one will see again, and the
/// rules' threshold windows.
#[derive(Debug, Default)]
pub struct FlowLookups {
    rules: IpOnlyRules,
    thresholds: Tracker,
    /// Flows that began from here on (the flows' clock, ns) are new to this walk.
    since_ns: u64,
    /// Where this walk started.
    walk_ns: u64,
    /// Flows the previous walk looked up that began after `since_ns`.
    looked_up: HashSet<FlowKey, foldhash::fast::RandomState>,
    /// Those of this walk, for the next.
    looking_up: HashSet<FlowKey, foldhash::fast::RandomState>,
}

impl FlowLookups {
    pub fn new(rules: IpOnlyRules) -> Self {
        Self {
            rules,
            ..Self::default()
        }
    }

    /// Looks flows up in `rules` from now on; the threshold windows (by
    /// sid) and what was looked up go on.
    pub fn replace(&mut self, rules: IpOnlyRules) {
        self.rules = rules;
    }

    /// The rules in use.
    pub fn rules(&self) -> &IpOnlyRules {
        &self.rules
    }

    /// A walk of the table starts at `now_ns` (the flows' clock).
    pub fn start_walk(&mut self, now_ns: u64) {
        self.since_ns = self.walk_ns.saturating_sub(LATE_NS);
        self.walk_ns = now_ns;
        self.looked_up = std::mem::take(&mut self.looking_up);
    }

    /// The rules `stats`' flow matches, if it is new to this walk, that
    /// their thresholds let alert at `now`.
    pub fn flow(&mut self, key: &FlowKey, stats: &FlowStats, now: Instant) -> Vec<AddressMatch> {
        if self.rules.is_empty() || stats.first_seen_ns < self.since_ns {
            return Vec::new();
        }
        if self.looked_up.contains(key) {
            return Vec::new();
        }
        if stats.first_seen_ns >= self.walk_ns.saturating_sub(LATE_NS)
            && self.looking_up.len() < MAX_REMEMBERED
        {
            self.looking_up.insert(*key);
        }
        let mut found: Vec<AddressMatch> = Vec::new();
        // Once per flow: a rule that matched one direction is done.
        let mut matched: Vec<usize> = Vec::new();
        for (src, dst) in directions(key, stats) {
            for r in self.rules.matching(key.proto, src, dst) {
                if matched.contains(&r) {
                    continue;
                }
                matched.push(r);
                let rule = &self.rules.rules[r];
                let allowed = rule
                    .threshold
                    .is_none_or(|t| self.thresholds.allow(rule.sid, &t, src.ip(), dst.ip(), now));
                if allowed {
                    found.push(AddressMatch {
                        sid: rule.sid,
                        rev: rule.rev,
                        msg: rule.msg.clone(),
                        classtype: rule.classtype.clone(),
                        priority: rule.priority,
                        src,
                        dst,
                        proto: key.proto,
                    });
                }
            }
        }
        found
    }
}

/// The directions `stats`' packets went, as (source, destination), the
/// opener's first.
fn directions(key: &FlowKey, stats: &FlowStats) -> Vec<(SocketAddr, SocketAddr)> {
    let low = SocketAddr::new(IpAddr::from(key.low), key.low_port);
    let high = SocketAddr::new(IpAddr::from(key.high), key.high_port);
    let mut order = [LOW_TO_HIGH, HIGH_TO_LOW];
    if usize::from(stats.opener) == HIGH_TO_LOW {
        order.reverse();
    }
    order
        .into_iter()
        .filter(|&dir| stats.packets[dir] > 0)
        .map(|dir| {
            if dir == LOW_TO_HIGH {
                (low, high)
            } else {
                (high, low)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
