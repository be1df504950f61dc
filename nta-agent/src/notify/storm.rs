//! Storm control: at most N messages per channel in any window (a minute).
//! What comes past it waits, in order, to be summed up in one digest as
//! soon as the window has room again.

use std::{collections::VecDeque, time::Duration};

use tokio::time::Instant;

/// A sliding window of the messages a channel was allowed to send.
#[derive(Debug)]
pub struct Storm {
    max: usize,
    window: Duration,
    /// When each message in the window went out, oldest first; never
    /// longer than `max`.
    admitted: VecDeque<Instant>,
}

impl Storm {
    /// `max` messages per `window`; at least one, so that a digest can
    /// always go out eventually.
    pub fn new(max: u32, window: Duration) -> Self {
        let max = usize::try_from(max).unwrap_or(usize::MAX).max(1);
        Storm {
            max,
            window,
            admitted: VecDeque::with_capacity(max.min(1024)),
        }
    }

    /// Whether one more message may go out at `now`; if so, it is counted.
    pub fn try_admit(&mut self, now: Instant) -> bool {
        while self
            .admitted
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            self.admitted.pop_front();
        }
        if self.admitted.len() >= self.max {
            return false;
        }
        self.admitted.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_per_window_then_room_again_as_the_window_slides() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut storm = Storm::new(3, Duration::from_secs(60));
        assert!(storm.try_admit(at(0)));
        assert!(storm.try_admit(at(10)));
        assert!(storm.try_admit(at(20)));
        assert!(!storm.try_admit(at(30)));
        assert!(!storm.try_admit(at(59)));
        // The first one left the window at 60 s: room for exactly one.
        assert!(storm.try_admit(at(60)));
        assert!(!storm.try_admit(at(61)));
        assert!(storm.try_admit(at(70)));
    }

    #[test]
    fn zero_means_one() {
        let mut storm = Storm::new(0, Duration::from_secs(60));
        let now = Instant::now();
        assert!(storm.try_admit(now));
        assert!(!storm.try_admit(now));
    }
}
