//! Signature ids of nta's own detections in EVE `alert` events.
//!
//! Rule sids live below 3 000 000 (1–999 999 Talos, 1 000 000–1 999 999
//! local rules, 2 000 000–2 999 999 Emerging Threats), and Suricata's own
//! decoder and stream events at 2 200 000–2 299 999; nta's kinds take
//! 8 700 001 onwards, one each, never reused or renumbered: dashboards and
//! SIEM rules key on them.

use crate::alert::AlertKind;

/// First id of the range.
pub const BASE: u64 = 8_700_000;

/// The signature id of detections of `kind` (a rule match keeps its
/// rule's own sid).
pub const fn of(kind: AlertKind) -> u64 {
    BASE + match kind {
        AlertKind::PortScan => 1,
        AlertKind::Sweep => 2,
        AlertKind::SynFlood => 3,
        AlertKind::UdpFlood => 4,
        AlertKind::IcmpFlood => 5,
        AlertKind::TcpFlood => 6,
        AlertKind::FragmentFlood => 7,
        AlertKind::TrafficFlood => 8,
        AlertKind::Reflection => 9,
        AlertKind::Volumetric => 10,
        AlertKind::DnsTunnel => 11,
        AlertKind::Signature => 12,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_id_in_the_range() {
        let mut ids: Vec<u64> = AlertKind::ALL.iter().map(|k| of(*k)).collect();
        assert!(ids.iter().all(|id| (BASE + 1..BASE + 1000).contains(id)));
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), AlertKind::ALL.len());
        // Published in README: these must never change.
        assert_eq!(of(AlertKind::PortScan), 8_700_001);
        assert_eq!(of(AlertKind::SynFlood), 8_700_003);
        assert_eq!(of(AlertKind::DnsTunnel), 8_700_011);
    }
}
