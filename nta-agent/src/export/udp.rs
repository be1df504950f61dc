//! The IPFIX exporter: flow records encoded and sent to one collector over
//! UDP, from the caller's thread. Live, the socket never blocks: a message
//! the kernel cannot take at once is dropped and counted (the collector
//! sees the gap in the sequence numbers), so that a slow or absent
//! collector never holds up the agent's loop. Nothing is queued: memory
//! is one message.

use std::{
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use tracing::warn;

use super::{
    ExportError,
    ipfix::{Encoder, OBSERVATION_DOMAIN},
};
use crate::flows::FlowRecord;

/// Pause between two messages of a paced exporter: a `read` makes flow
/// records far faster than a collector reading a UDP socket takes them,
/// and over UDP what its socket cannot hold is lost, unseen by the sender.
/// 200 µs is 5 000 messages (some 100 000 records) a second.
const PACE: Duration = Duration::from_micros(200);

/// What an exporter has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportTotals {
    /// Messages the kernel took.
    pub messages: u64,
    /// Data records in them.
    pub records: u64,
    /// Messages not sent (the socket refused them, or they could not be
    /// encoded).
    pub failed: u64,
}

/// Sends flow records to one IPFIX collector.
#[derive(Debug)]
pub struct IpfixExporter {
    collector: SocketAddr,
    socket: UdpSocket,
    encoder: Encoder,
    /// Wait for the socket and between messages, rather than drop: for a
    /// capture, where nothing runs behind.
    pace: Option<Duration>,
    /// When the last message went, for the pace.
    last_sent: Option<Instant>,
    totals: ExportTotals,
}

impl IpfixExporter {
    /// A socket towards `collector`, which must be an address to send to
    /// (the configuration checks it). UDP has no handshake: a collector
    /// that is not there shows as failed sends, not as an error here.
    pub fn start(collector: SocketAddr) -> Result<Self, ExportError> {
        let error = |source| ExportError::Socket { collector, source };
        let local: SocketAddr = match collector {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(local).map_err(error)?;
        // Connected: the kernel picks the route once, and reports a
        // collector's ICMP "port unreachable" on the next send.
        socket.connect(collector).map_err(error)?;
        socket.set_nonblocking(true).map_err(error)?;
        Ok(IpfixExporter {
            collector,
            socket,
            encoder: Encoder::new(OBSERVATION_DOMAIN),
            pace: None,
            last_sent: None,
            totals: ExportTotals::default(),
        })
    }

    /// The same exporter, waiting for the socket and pausing between
    /// messages instead of dropping: for `read`.
    pub fn paced(self) -> Result<Self, ExportError> {
        let collector = self.collector;
        self.socket
            .set_nonblocking(false)
            .map_err(|source| ExportError::Socket { collector, source })?;
        Ok(IpfixExporter {
            pace: Some(PACE),
            ..self
        })
    }

    /// Where the records go.
    pub fn collector(&self) -> SocketAddr {
        self.collector
    }

    /// What was sent so far.
    pub fn totals(&self) -> ExportTotals {
        self.totals
    }

    /// Sends the records of `flows`; failures are counted and logged, at
    /// the 1st, 2nd, 4th, 8th... so that a collector that is down does not
    /// flood the log.
    pub fn export(&mut self, flows: &[FlowRecord]) {
        if flows.is_empty() {
            return;
        }
        let export_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
        let (socket, totals, collector) = (&self.socket, &mut self.totals, self.collector);
        let (pace, last_sent) = (self.pace, &mut self.last_sent);
        let send = |message: &[u8], records: u32| {
            if let (Some(gap), Some(last)) = (pace, *last_sent) {
                thread::sleep(gap.saturating_sub(last.elapsed()));
            }
            *last_sent = Some(Instant::now());
            match socket.send(message) {
                Ok(_) => {
                    totals.messages += 1;
                    totals.records += u64::from(records);
                }
                Err(error) => failed(totals, collector, &error),
            }
        };
        let encoded = self
            .encoder
            .encode(flows, Instant::now(), export_time, send);
        if let Err(error) = encoded {
            failed(&mut self.totals, collector, &error);
        }
    }
}

/// Counts a message that did not go, and logs it at powers of two.
fn failed(totals: &mut ExportTotals, collector: SocketAddr, error: &dyn std::error::Error) {
    totals.failed += 1;
    if totals.failed.is_power_of_two() {
        warn!(
            message = "IPFIX messages not sent",
            %collector,
            error = %error,
            failed = totals.failed,
        );
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use jiff::Timestamp;

    use super::*;
    use crate::flows::Reason;

    fn record(port: u16) -> FlowRecord {
        FlowRecord {
            client: (IpAddr::from([127, 0, 0, 1]), port),
            server: (IpAddr::from([127, 0, 0, 1]), 80),
            proto: 6,
            pkts_toserver: 3,
            pkts_toclient: 2,
            bytes_toserver: 180,
            bytes_toclient: 1200,
            start: Timestamp::UNIX_EPOCH,
            end: Timestamp::UNIX_EPOCH,
            tcp_flags_toserver: 0x1b,
            tcp_flags_toclient: 0x1b,
            reason: Reason::Timeout,
            app_proto: None,
            alerts: Vec::new(),
        }
    }

    #[test]
    fn messages_reach_a_collector_on_loopback_and_are_counted() {
        let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
        collector
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut exporter = IpfixExporter::start(collector.local_addr().unwrap()).unwrap();
        let flows: Vec<FlowRecord> = (0..40).map(|i| record(40_000 + i)).collect();
        exporter.export(&flows);
        let totals = exporter.totals();
        assert_eq!((totals.records, totals.failed), (80, 0));
        let mut buf = [0u8; 2048];
        let mut received = 0;
        for _ in 0..totals.messages {
            let n = collector.recv(&mut buf).unwrap();
            assert_eq!(&buf[..2], &[0, 10], "IPFIX version");
            assert_eq!(usize::from(u16::from_be_bytes([buf[2], buf[3]])), n);
            received += 1;
        }
        assert!(received > 1, "80 records take several messages");
    }

    #[test]
    fn a_paced_exporter_spaces_its_messages_across_calls() {
        let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut exporter = IpfixExporter::start(collector.local_addr().unwrap())
            .unwrap()
            .paced()
            .unwrap();
        let start = Instant::now();
        for i in 0..10 {
            exporter.export(&[record(40_000 + i)]);
        }
        // Ten messages, nine gaps, whether in one call or ten.
        assert!(start.elapsed() >= PACE * 9, "{:?}", start.elapsed());
        assert_eq!(exporter.totals().messages, 10);
    }

    #[test]
    fn a_collector_that_is_not_there_counts_failures_and_never_blocks() {
        // A port nobody listens on: bind one, note it, close it.
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut exporter = IpfixExporter::start(port).unwrap();
        let start = Instant::now();
        for i in 0..20 {
            exporter.export(&[record(40_000 + i)]);
        }
        assert!(start.elapsed() < Duration::from_secs(1));
        let totals = exporter.totals();
        // Loopback answers "port unreachable" at once; each answer fails
        // the next send.
        assert!(totals.failed > 0, "{totals:?}");
        assert_eq!(totals.messages + totals.failed, 20, "{totals:?}");
    }
}
