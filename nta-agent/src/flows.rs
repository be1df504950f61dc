//! Flow records: what the flow table's entries become when their flow goes
//! idle or the agent stops, with the end that opened the flow as the
//! client (Suricata's and NetFlow's `toserver` direction).

use std::net::IpAddr;

use jiff::Timestamp;
use nta_common::flow::{FlowKey, FlowStats, HIGH_TO_LOW, LOW_TO_HIGH};

/// Why a record was written, in EVE's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Idle for the idle timeout.
    Timeout,
    /// The agent stopped, or the capture ended.
    Shutdown,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Shutdown => "shutdown",
        }
    }
}

/// One flow, as exported.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRecord {
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    /// IP protocol number.
    pub proto: u8,
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub start: Timestamp,
    pub end: Timestamp,
    /// TCP flags seen from each end.
    pub tcp_flags_toserver: u8,
    pub tcp_flags_toclient: u8,
    pub reason: Reason,
}

impl FlowRecord {
    /// The record of `stats`, whose clock reads `clock` nanoseconds since
    /// the epoch at 0 (the capture clock is the epoch's: 0).
    pub fn of(key: &FlowKey, stats: &FlowStats, clock: i128, reason: Reason) -> Self {
        let low = (IpAddr::from(key.low), key.low_port);
        let high = (IpAddr::from(key.high), key.high_port);
        let (client, server, to_server, to_client) = if usize::from(stats.opener) == HIGH_TO_LOW {
            (high, low, HIGH_TO_LOW, LOW_TO_HIGH)
        } else {
            (low, high, LOW_TO_HIGH, HIGH_TO_LOW)
        };
        let at = |ns: u64| {
            Timestamp::from_nanosecond(clock + i128::from(ns)).unwrap_or(Timestamp::UNIX_EPOCH)
        };
        FlowRecord {
            client,
            server,
            proto: key.proto,
            pkts_toserver: stats.packets[to_server],
            pkts_toclient: stats.packets[to_client],
            bytes_toserver: stats.bytes[to_server],
            bytes_toclient: stats.bytes[to_client],
            start: at(stats.first_seen_ns),
            end: at(stats.last_seen_ns),
            tcp_flags_toserver: stats.flags_from(to_server),
            tcp_flags_toclient: stats.flags_from(to_client),
            reason,
        }
    }

    /// Seconds from its first packet to its last.
    pub fn age(&self) -> u64 {
        u64::try_from(self.end.duration_since(self.start).as_secs()).unwrap_or(0)
    }

    /// Suricata's flow states: TCP closed once a FIN or RST was seen,
    /// established once both ends sent, else new.
    pub fn state(&self) -> &'static str {
        use nta_common::classify::tcp_flags::{FIN, RST};
        let flags = self.tcp_flags_toserver | self.tcp_flags_toclient;
        if self.proto == nta_common::maps::ip_proto::TCP && flags & (FIN | RST) != 0 {
            "closed"
        } else if self.pkts_toserver > 0 && self.pkts_toclient > 0 {
            "established"
        } else {
            "new"
        }
    }
}

#[cfg(test)]
mod tests {
    use nta_common::IpKey;

    use super::*;

    #[test]
    fn the_end_that_sent_first_is_the_client() {
        let server = IpKey::from_v4([10, 0, 0, 1]);
        let client = IpKey::from_v4([10, 0, 0, 9]);
        let (key, dir) = FlowKey::of(&client, 40_000, &server, 80, 6);
        assert_eq!(dir, HIGH_TO_LOW);
        let mut stats = FlowStats {
            first_seen_ns: 1_000_000_000,
            last_seen_ns: 3_500_000_000,
            opener: dir as u8,
            ..FlowStats::ZERO
        };
        stats.packets[dir] = 3;
        stats.bytes[dir] = 300;
        stats.packets[1 - dir] = 2;
        stats.bytes[1 - dir] = 2000;
        stats.tcp_flags = 0x02 << (8 * dir) | 0x12 << (8 * (1 - dir));
        let r = FlowRecord::of(&key, &stats, 0, Reason::Timeout);
        assert_eq!(r.client, (IpAddr::from([10, 0, 0, 9]), 40_000));
        assert_eq!(r.server, (IpAddr::from([10, 0, 0, 1]), 80));
        assert_eq!((r.pkts_toserver, r.bytes_toclient), (3, 2000));
        assert_eq!((r.tcp_flags_toserver, r.tcp_flags_toclient), (0x02, 0x12));
        assert_eq!(r.age(), 2);
        assert_eq!(r.state(), "established");
    }
}
