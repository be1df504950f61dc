//! Log lines that repeat for every packet, record or tick, kept to one per
//! period: a failing map read or a malformed ring record under a flood must
//! neither flood the log nor go unreported.

use std::time::{Duration, Instant};

/// How often a repeating failure is logged again: once a minute says it
/// still happens without burying anything else.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

/// Decides which occurrences of one repeating event get a log line: the
/// first, then at most one per period, each saying how many were not logged.
#[derive(Debug, Clone)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::every(LOG_EVERY)
    }
}

impl Throttle {
    /// At most one log line per `every`.
    pub fn every(every: Duration) -> Self {
        Self {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// Notes an occurrence at `now`: `Some(n)` when it is to be logged,
    /// `n` being how many since the last line were not; `None` otherwise.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.every);
        if due {
            self.last = Some(now);
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_occurrence_is_logged_then_one_per_period_with_the_count_skipped() {
        let mut throttle = Throttle::every(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(throttle.allow(t0), Some(0));
        assert_eq!(throttle.allow(t0 + Duration::from_secs(1)), None);
        assert_eq!(throttle.allow(t0 + Duration::from_secs(9)), None);
        assert_eq!(throttle.allow(t0 + Duration::from_secs(10)), Some(2));
        assert_eq!(throttle.allow(t0 + Duration::from_secs(11)), None);
        assert_eq!(throttle.allow(t0 + Duration::from_secs(30)), Some(1));
    }
}
