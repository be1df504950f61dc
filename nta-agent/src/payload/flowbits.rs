//! `flowbits`: names a rule sets on a flow when it matches, and that other
//! rules require (`isset`) or forbid (`isnotset`) on the same flow — kept
//! per flow in bounded memory.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use nta_common::flow::FlowKey;

use super::rules::{Flowbit, Rule};

/// Flows whose bits are kept at most; past it, the flows idle longest go.
pub const MAX_FLOWS: usize = 65_536;
/// A flow's bits are forgotten after this long without a match on it, as
/// the flow table forgets the flow.
pub const IDLE: Duration = Duration::from_secs(600);

/// The bits of every flow, by name interned as a number.
#[derive(Debug, Default)]
pub struct Flowbits {
    names: HashMap<String, u32>,
    flows: HashMap<FlowKey, (Instant, Vec<u32>)>,
}

impl Flowbits {
    /// Whether `rule`, which matched on flow `key` at `now`, passes its
    /// `isset`/`isnotset` conditions; if so its `set`, `unset` and `toggle`
    /// take effect.
    pub fn apply(&mut self, rule: &Rule, key: FlowKey, now: Instant) -> bool {
        if rule.flowbits.is_empty() {
            return true;
        }
        let ids: Vec<(u32, &Flowbit)> = rule
            .flowbits
            .iter()
            .map(|op| (self.intern(op.name()), op))
            .collect();
        let bits = self
            .flows
            .get(&key)
            .map(|(_, bits)| bits.as_slice())
            .unwrap_or(&[]);
        let holds = ids.iter().all(|&(id, op)| match op {
            Flowbit::IsSet(_) => bits.contains(&id),
            Flowbit::IsNotSet(_) => !bits.contains(&id),
            _ => true,
        });
        if !holds {
            return false;
        }
        if ids.iter().any(|(_, op)| op.changes()) {
            if !self.flows.contains_key(&key) && self.flows.len() >= MAX_FLOWS {
                super::make_room(&mut self.flows, MAX_FLOWS, now, IDLE, |(seen, _)| *seen);
            }
            let (seen, bits) = self.flows.entry(key).or_insert_with(|| (now, Vec::new()));
            *seen = now;
            for &(id, op) in &ids {
                let at = bits.iter().position(|&b| b == id);
                match (op, at) {
                    (Flowbit::Set(_), None) | (Flowbit::Toggle(_), None) => bits.push(id),
                    (Flowbit::Unset(_), Some(i)) | (Flowbit::Toggle(_), Some(i)) => {
                        bits.swap_remove(i);
                    }
                    _ => {}
                }
            }
        }
        true
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.names.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.insert(name.to_owned(), id);
        id
    }

    /// Flows with bits held.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use nta_common::IpKey;

    use super::*;
    use crate::payload::rules::parse_rules;

    fn rules(text: &str) -> Vec<Rule> {
        let set = parse_rules(text, "t.rules");
        assert_eq!(set.errors, vec![]);
        set.rules
    }

    fn flow(port: u16) -> FlowKey {
        FlowKey::of(
            &IpKey::from_v4([10, 0, 0, 1]),
            port,
            &IpKey::from_v4([10, 0, 0, 2]),
            80,
            6,
        )
        .0
    }

    #[test]
    fn a_bit_set_on_a_flow_lets_its_checker_match_there_only() {
        let r = rules(
            r#"alert http any any -> any any (content:"a"; flowbits:set,seen_a; flowbits:noalert; sid:1;)
alert http any any -> any any (content:"b"; flowbits:isset,seen_a; sid:2;)
alert http any any -> any any (content:"c"; flowbits:isnotset,seen_a; sid:3;)
alert http any any -> any any (content:"d"; flowbits:unset,seen_a; sid:4;)"#,
        );
        let mut bits = Flowbits::default();
        let now = Instant::now();
        assert!(!bits.apply(&r[1], flow(1), now), "not set yet");
        assert!(bits.apply(&r[2], flow(1), now));
        assert!(bits.apply(&r[0], flow(1), now));
        assert!(bits.apply(&r[1], flow(1), now));
        assert!(!bits.apply(&r[2], flow(1), now));
        assert!(!bits.apply(&r[1], flow(2), now), "another flow");
        assert!(bits.apply(&r[3], flow(1), now));
        assert!(!bits.apply(&r[1], flow(1), now), "unset");
    }

    #[test]
    fn the_flows_kept_are_bounded() {
        let r = rules(r#"alert http any any -> any any (content:"a"; flowbits:set,x; sid:1;)"#);
        let mut bits = Flowbits::default();
        let now = Instant::now();
        for i in 0..(MAX_FLOWS as u32 + 100) {
            let key = FlowKey::of(
                &IpKey::from_v4(i.to_be_bytes()),
                1,
                &IpKey::from_v4([10, 0, 0, 2]),
                80,
                6,
            )
            .0;
            bits.apply(&r[0], key, now + Duration::from_micros(u64::from(i)));
        }
        assert!(bits.len() <= MAX_FLOWS);
    }
}
