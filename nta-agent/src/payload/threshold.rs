//! `threshold` and `detection_filter`: how many of a rule's matches become
//! alerts, per source, destination or rule, in windows of some seconds —
//! tracked in bounded memory.

use std::{
    collections::HashMap,
    net::IpAddr,
    time::{Duration, Instant},
};

/// Trackers kept at most; past it, those whose window is over go, then the
/// oldest. A flood of sources cannot grow the table.
pub const MAX_TRACKERS: usize = 65_536;

/// What a rule's `threshold` or `detection_filter` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub kind: Kind,
    pub track: Track,
    pub count: u32,
    pub seconds: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `type limit`: the first `count` matches of each window.
    Limit,
    /// `type threshold`: every `count`-th match within a window.
    Threshold,
    /// `type both`: once per window, at the `count`-th match.
    Both,
    /// `detection_filter`: every match past the first `count` of a window.
    DetectionFilter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    BySrc,
    ByDst,
    ByRule,
    ByBoth,
}

/// Parses `type limit, track by_src, count 1, seconds 60` (`threshold`) or
/// `track by_src, count 5, seconds 60` (`detection_filter`, whose `kind`
/// is given).
pub fn parse(text: &str, filter: bool) -> Result<Threshold, String> {
    let (mut kind, mut track, mut count, mut seconds) = (None, None, None, None);
    if filter {
        kind = Some(Kind::DetectionFilter);
    }
    for part in text.split(',') {
        let mut words = part.split_whitespace();
        let (Some(key), Some(value), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!("`{}` is not `KEY VALUE`", part.trim()));
        };
        let number = || {
            value
                .parse::<u32>()
                .map_err(|_| format!("`{key} {value}` needs a whole number"))
        };
        match key {
            "type" if !filter => {
                kind = Some(match value {
                    "limit" => Kind::Limit,
                    "threshold" => Kind::Threshold,
                    "both" => Kind::Both,
                    other => {
                        return Err(format!("unknown type `{other}` (limit, threshold, both)"));
                    }
                })
            }
            "track" => {
                track = Some(match value {
                    "by_src" => Track::BySrc,
                    "by_dst" => Track::ByDst,
                    "by_rule" => Track::ByRule,
                    "by_both" => Track::ByBoth,
                    other => return Err(format!("unknown track `{other}`")),
                })
            }
            "count" => count = Some(number()?),
            "seconds" => seconds = Some(number()?),
            other => return Err(format!("unknown key `{other}`")),
        }
    }
    let missing = |what: &str| format!("missing `{what}`");
    let threshold = Threshold {
        kind: kind.ok_or_else(|| missing("type"))?,
        track: track.ok_or_else(|| missing("track"))?,
        count: count.ok_or_else(|| missing("count"))?,
        seconds: seconds.ok_or_else(|| missing("seconds"))?,
    };
    if threshold.count == 0 || threshold.seconds == 0 {
        return Err("`count` and `seconds` must be at least 1".into());
    }
    Ok(threshold)
}

/// One rule's window for one tracked address (or pair).
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

/// The windows of every rule with a threshold.
#[derive(Debug, Default)]
pub struct Tracker {
    windows: HashMap<(u32, Option<IpAddr>, Option<IpAddr>), Window>,
}

impl Tracker {
    /// Whether this match of rule `sid` from `src` to `dst` at `now`
    /// becomes an alert under `t`.
    pub fn allow(
        &mut self,
        sid: u32,
        t: &Threshold,
        src: IpAddr,
        dst: IpAddr,
        now: Instant,
    ) -> bool {
        let key = match t.track {
            Track::BySrc => (sid, Some(src), None),
            Track::ByDst => (sid, None, Some(dst)),
            Track::ByRule => (sid, None, None),
            Track::ByBoth => (sid, Some(src), Some(dst)),
        };
        let length = Duration::from_secs(u64::from(t.seconds));
        if !self.windows.contains_key(&key) && self.windows.len() >= MAX_TRACKERS {
            // Windows as long as this one's at most are over when it would be.
            super::make_room(&mut self.windows, MAX_TRACKERS, now, length, |w| w.start);
        }
        let window = self.windows.entry(key).or_insert(Window {
            start: now,
            count: 0,
        });
        if now.saturating_duration_since(window.start) >= length {
            *window = Window {
                start: now,
                count: 0,
            };
        }
        window.count = window.count.saturating_add(1);
        match t.kind {
            Kind::Limit => window.count <= t.count,
            Kind::Both => window.count == t.count,
            Kind::DetectionFilter => window.count > t.count,
            Kind::Threshold => {
                let due = window.count >= t.count;
                if due {
                    window.count = 0;
                }
                due
            }
        }
    }

    /// Windows held.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    /// How many of `n` matches, one per second from `src`, become alerts.
    fn alerts(t: &str, filter: bool, n: u32, every: Duration) -> Vec<u32> {
        let t = parse(t, filter).unwrap();
        let mut tracker = Tracker::default();
        let start = Instant::now();
        (0..n)
            .filter(|&i| tracker.allow(1, &t, ip(1), ip(2), start + every * i))
            .collect()
    }

    #[test]
    fn each_type_lets_through_what_suricata_does() {
        let ms = Duration::from_millis(100);
        // 30 matches in 3 s, windows of 1 s (10 matches each).
        assert_eq!(
            alerts(
                "type limit, track by_src, count 2, seconds 1",
                false,
                30,
                ms
            ),
            [0, 1, 10, 11, 20, 21]
        );
        assert_eq!(
            alerts(
                "type threshold, track by_src, count 4, seconds 1",
                false,
                30,
                ms
            ),
            [3, 7, 13, 17, 23, 27]
        );
        assert_eq!(
            alerts("type both, track by_src, count 4, seconds 1", false, 30, ms),
            [3, 13, 23]
        );
        assert_eq!(
            alerts("track by_src, count 8, seconds 1", true, 30, ms),
            [8, 9, 18, 19, 28, 29]
        );
    }

    #[test]
    fn tracking_separates_sources_and_the_table_stays_bounded() {
        let t = parse("type limit, track by_src, count 1, seconds 60", false).unwrap();
        let mut tracker = Tracker::default();
        let now = Instant::now();
        assert!(tracker.allow(1, &t, ip(1), ip(9), now));
        assert!(!tracker.allow(1, &t, ip(1), ip(8), now));
        assert!(tracker.allow(1, &t, ip(2), ip(9), now));
        assert!(tracker.allow(2, &t, ip(1), ip(9), now), "another rule");
        for i in 0..(MAX_TRACKERS as u32 + 1000) {
            let src = IpAddr::from(i.to_be_bytes());
            tracker.allow(3, &t, src, ip(9), now + Duration::from_micros(u64::from(i)));
        }
        assert!(tracker.len() <= MAX_TRACKERS);
    }

    #[test]
    fn bad_values_are_named() {
        for (text, want) in [
            (
                "type sometimes, track by_src, count 1, seconds 1",
                "unknown type",
            ),
            ("type limit, track by_src, count 1", "missing `seconds`"),
            (
                "type limit, track by_src, count x, seconds 1",
                "whole number",
            ),
            ("type limit, track by_src, count 0, seconds 1", "at least 1"),
            ("type limit track by_src", "is not `KEY VALUE`"),
        ] {
            let err = parse(text, false).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
