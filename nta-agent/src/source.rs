//! The seam between where packets are counted and what detects: a packet
//! source gives counter snapshots on demand, and threshold events and
//! payload samples as they come.
//!
//! The live source is the XDP sensor ([`crate::sensor::LiveSensor`]); a
//! capture file read in user space is the next. Detection, incidents, the
//! store and the API see only this trait and the two queues.

use std::net::IpAddr;

use jiff::Timestamp;
use nta_common::{
    DstHostStats,
    maps::{SampleHeader, ThresholdEvent},
};
use tokio::sync::mpsc;

use crate::traffic::{Snapshot, SourceView};

/// A source of counters, threshold events and payload samples.
pub trait PacketSource {
    /// Why a read failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Every counter now.
    fn snapshot(&self) -> Result<Snapshot, Self::Error>;

    /// One source address's counters, if counted: the context of a
    /// threshold event about it.
    fn source(&self, addr: IpAddr) -> Result<Option<SourceView>, Self::Error>;

    /// One destination address's counters, if counted: the context of a
    /// threshold event about it (its current rate window and sketch).
    fn destination(&self, addr: IpAddr) -> Result<Option<DstHostStats>, Self::Error>;

    /// SYNs counted per destination port since `before` (a snapshot's
    /// `syn_ports`), the ports that grew only, busiest first
    /// ([`crate::traffic::port_growth`]'s order).
    fn syn_ports_since(&self, before: &[u64]) -> Result<Vec<(u16, u64)>, Self::Error>;

    /// What the source's own queues could not take (losses before the
    /// queues, such as a full kernel ring, are in the counters).
    fn dropped(&self) -> Dropped;

    /// The source's time now: the wall clock alerts carry, and the
    /// monotonic nanoseconds its events and windows are stamped with.
    fn now(&self) -> SourceTime;
}

/// Records a source's queues dropped since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    pub events: u64,
    pub samples: u64,
}

/// A source's time: wall clock and the clock of its counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceTime {
    pub wall: Timestamp,
    pub mono_ns: u64,
}

/// What a source sends as it happens.
#[derive(Debug)]
pub struct Streams {
    /// Threshold crossings, at once.
    pub events: mpsc::Receiver<ThresholdEvent>,
    /// Payload samples, for the payload pipeline.
    pub samples: mpsc::Receiver<PayloadSample>,
}

/// One payload sample: where it came from and the bytes captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadSample {
    pub header: SampleHeader,
    /// At most `SAMPLE_BYTES`, `header.captured` of them.
    pub data: Vec<u8>,
}
