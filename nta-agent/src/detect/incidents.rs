//! The incident table: findings in, alert events out.

use std::{collections::BTreeMap, time::Duration};

use jiff::{SignedDuration, Timestamp};

use super::{Finding, IncidentKey, NextId};
use crate::alert::{Alert, AlertEvent, AlertState, DetectedBy, Severity};

/// Open incidents, by key.
#[derive(Debug, Default)]
pub struct Incidents {
    open: BTreeMap<IncidentKey, Open>,
    quiet: SignedDuration,
}

#[derive(Debug)]
struct Open {
    alert: Alert,
    /// Largest ratio to the threshold seen: what the severity follows.
    peak_ratio: f64,
    /// Opened from a kernel event whose count overlaps the next tick's
    /// delta: that tick sets the packet count instead of adding to it.
    overlapping: bool,
}

/// The larger of two optional rates.
fn peak(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

impl Incidents {
    /// An incident closes once `quiet` passes without a finding.
    pub fn new(quiet: Duration) -> Self {
        Self {
            open: BTreeMap::new(),
            quiet: SignedDuration::try_from(quiet).unwrap_or(SignedDuration::MAX),
        }
    }

    /// Opens or updates the incident `finding` belongs to.
    pub fn observe(&mut self, finding: Finding, now: Timestamp, next_id: NextId<'_>) -> AlertEvent {
        // A kernel threshold event rather than a tick's counter deltas.
        let from_event = finding.evidence.detected_by == DetectedBy::Kernel;
        if let Some(open) = self.open.get_mut(&finding.key) {
            let a = &mut open.alert;
            a.last_seen = now;
            if from_event {
                // The kernel signals once per window; the next tick's delta
                // counts these packets, so adding them here would count
                // them twice.
            } else if open.overlapping {
                a.packets = a.packets.max(finding.packets);
                open.overlapping = false;
            } else {
                a.packets = a.packets.saturating_add(finding.packets);
            }
            if finding.measure > a.peak_rate {
                a.peak_rate = finding.measure;
            }
            open.peak_ratio = open.peak_ratio.max(finding.ratio);
            a.severity = Severity::from_ratio(open.peak_ratio);
            a.src = a.src.or(finding.src);
            a.dst = a.dst.or(finding.dst);
            a.dst_port = a.dst_port.or(finding.dst_port);
            a.message = finding.message;
            // How it was first detected stays: that is the figure people
            // compare (kernel event or poll).
            let detected_by = a.evidence.detected_by;
            // A flood's evidence keeps its peak rates, like `peak_rate`.
            let (pps, bps) = (a.evidence.pps, a.evidence.bps);
            a.evidence = finding.evidence;
            a.evidence.detected_by = detected_by;
            a.evidence.pps = peak(pps, a.evidence.pps);
            a.evidence.bps = peak(bps, a.evidence.bps);
            return AlertEvent::Updated(a.clone());
        }
        let alert = Alert {
            id: next_id(),
            kind: finding.key.kind,
            severity: Severity::from_ratio(finding.ratio),
            state: AlertState::Open,
            src: finding.src,
            dst: finding.dst,
            dst_port: finding.dst_port,
            first_seen: now,
            last_seen: now,
            closed_at: None,
            packets: finding.packets,
            peak_rate: finding.measure,
            message: finding.message,
            evidence: finding.evidence,
        };
        self.open.insert(
            finding.key,
            Open {
                alert: alert.clone(),
                peak_ratio: finding.ratio,
                overlapping: from_event,
            },
        );
        AlertEvent::Opened(alert)
    }

    /// Closes the incidents with no finding for the quiet period.
    pub fn close_quiet(&mut self, now: Timestamp) -> Vec<AlertEvent> {
        let quiet: Vec<IncidentKey> = self
            .open
            .iter()
            .filter(|(_, o)| now.duration_since(o.alert.last_seen) >= self.quiet)
            .map(|(k, _)| *k)
            .collect();
        quiet
            .into_iter()
            .filter_map(|k| self.close(&k, now))
            .collect()
    }

    /// Closes every incident (the agent is stopping).
    pub fn close_all(&mut self, now: Timestamp) -> Vec<AlertEvent> {
        let keys: Vec<IncidentKey> = self.open.keys().copied().collect();
        keys.into_iter()
            .filter_map(|k| self.close(&k, now))
            .collect()
    }

    fn close(&mut self, key: &IncidentKey, now: Timestamp) -> Option<AlertEvent> {
        let mut alert = self.open.remove(key)?.alert;
        alert.state = AlertState::Closed;
        alert.closed_at = Some(now);
        Some(AlertEvent::Closed(alert))
    }

    /// The open incident with this key.
    pub fn get(&self, key: &IncidentKey) -> Option<&Alert> {
        self.open.get(key).map(|o| &o.alert)
    }

    pub fn is_open(&self, key: &IncidentKey) -> bool {
        self.open.contains_key(key)
    }

    /// Open incidents, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&IncidentKey, &Alert)> {
        self.open.iter().map(|(k, o)| (k, &o.alert))
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        alert::{AlertKind, Evidence},
        detect::Subject,
    };

    fn finding(rate: f64, ratio: f64, packets: u64) -> Finding {
        Finding {
            key: IncidentKey {
                kind: AlertKind::SynFlood,
                subject: Subject::DstHost("198.18.0.1".parse().unwrap()),
            },
            src: None,
            dst: Some("198.18.0.1".parse().unwrap()),
            dst_port: Some(80),
            measure: rate,
            ratio,
            packets,
            message: format!("{rate} SYN/s"),
            evidence: Evidence::default(),
        }
    }

    /// `f` as a kernel threshold event reports it.
    fn kernel(mut f: Finding) -> Finding {
        f.evidence.detected_by = DetectedBy::Kernel;
        f
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn a_sixty_second_flood_is_one_incident() {
        let mut ids = 0;
        let mut next = || {
            ids += 1;
            ids
        };
        let mut table = Incidents::new(Duration::from_secs(10));
        let mut events = Vec::new();
        for s in 0..60 {
            events.push(table.observe(finding(5000.0, 5.0, 5000), at(s), &mut next));
            events.extend(table.close_quiet(at(s)));
        }
        assert!(matches!(events[0], AlertEvent::Opened(_)));
        assert!(
            events[1..]
                .iter()
                .all(|e| matches!(e, AlertEvent::Updated(_)))
        );
        assert_eq!(events.iter().map(|e| e.alert().id).max(), Some(1));
        assert_eq!(table.close_quiet(at(68)), vec![]);
        let closed = table.close_quiet(at(69));
        let [AlertEvent::Closed(alert)] = closed.as_slice() else {
            panic!("expected one close, got {closed:?}");
        };
        assert_eq!(alert.packets, 300_000);
        assert_eq!(alert.closed_at, Some(at(69)));
        assert!(table.is_empty());
    }

    #[test]
    fn peak_rate_and_severity_follow_the_worst_moment() {
        let mut next = || 7;
        let mut table = Incidents::new(Duration::from_secs(10));
        table.observe(finding(1500.0, 1.5, 10), at(0), &mut next);
        table.observe(finding(30_000.0, 30.0, 10), at(1), &mut next);
        let AlertEvent::Updated(a) = table.observe(finding(2000.0, 2.0, 10), at(2), &mut next)
        else {
            panic!("expected an update");
        };
        assert_eq!(a.peak_rate, 30_000.0);
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(a.message, "2000 SYN/s");
    }

    #[test]
    fn an_event_count_is_not_added_twice_by_the_next_tick() {
        let mut next = || 1;
        let mut table = Incidents::new(Duration::from_secs(10));
        table.observe(kernel(finding(1001.0, 1.0, 1001)), at(0), &mut next);
        // The tick's delta covers the same packets and more.
        let e = table.observe(finding(40_000.0, 40.0, 40_000), at(1), &mut next);
        assert_eq!(e.alert().packets, 40_000);
        let e = table.observe(finding(40_000.0, 40.0, 40_000), at(2), &mut next);
        assert_eq!(e.alert().packets, 80_000);
    }

    #[test]
    fn later_kernel_events_do_not_add_packets_the_ticks_count() {
        let mut next = || 1;
        let mut table = Incidents::new(Duration::from_secs(10));
        table.observe(kernel(finding(1001.0, 1.0, 1001)), at(0), &mut next);
        table.observe(finding(50_000.0, 50.0, 50_000), at(1), &mut next);
        // Next window: the kernel signals again; the tick after counts it all.
        table.observe(kernel(finding(1001.0, 1.0, 1001)), at(1), &mut next);
        let e = table.observe(finding(50_000.0, 50.0, 50_000), at(2), &mut next);
        assert_eq!(e.alert().packets, 100_000);
    }

    #[test]
    fn how_an_incident_was_first_detected_is_kept() {
        let mut next = || 1;
        let mut table = Incidents::new(Duration::from_secs(10));
        table.observe(kernel(finding(5000.0, 5.0, 1)), at(0), &mut next);
        let e = table.observe(finding(5000.0, 5.0, 1), at(1), &mut next);
        assert_eq!(e.alert().evidence.detected_by, DetectedBy::Kernel);
    }

    #[test]
    fn a_new_attack_after_closing_is_a_new_incident() {
        let mut ids = 0;
        let mut next = || {
            ids += 1;
            ids
        };
        let mut table = Incidents::new(Duration::from_secs(10));
        table.observe(finding(5000.0, 5.0, 1), at(0), &mut next);
        assert_eq!(table.close_quiet(at(10)).len(), 1);
        let e = table.observe(finding(5000.0, 5.0, 1), at(20), &mut next);
        assert!(matches!(e, AlertEvent::Opened(ref a) if a.id == 2));
    }
}
