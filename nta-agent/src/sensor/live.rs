//! The live packet source: the XDP program on an interface, its rings read
//! by tasks of their own.

use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use jiff::Timestamp;
use nta_common::{
    DstHostStats,
    maps::{Sampling, Thresholds, names},
};
use tokio::{io::unix::AsyncFd, task::JoinHandle};

use super::{
    AttachedMode, Blocklist, FlowTable, LoadOptions, Sensor, SensorError, XdpMode, events, ring,
    samples,
};
use crate::{
    source::{Dropped, PacketSource, SourceTime, Streams},
    traffic::{Snapshot, SourceView},
};

/// What the program is told before it sees a packet.
#[derive(Debug, Clone)]
pub struct SensorSettings {
    /// Most verbose level of the program's own log records.
    pub log_level: log::LevelFilter,
    /// The windows and thresholds it signals crossings of.
    pub thresholds: Thresholds,
    /// Its payload sampling switches and rate cap.
    pub sampling: Sampling,
    /// Ports whose payloads are always sampled, with `sample_port` flags.
    pub sample_ports: Vec<(u16, u8)>,
    /// Flows its flow table holds.
    pub flow_table_size: u32,
}

/// The program loaded and configured, not yet attached: what must be in
/// place from the first packet (the blocklist) goes in now.
pub struct LoadedSensor {
    sensor: Sensor,
}

impl LoadedSensor {
    /// Loads the embedded program and configures it.
    pub fn load(settings: &SensorSettings) -> Result<Self, SensorError> {
        let options = LoadOptions {
            log_level: settings.log_level,
            flow_table_size: settings.flow_table_size,
            ..LoadOptions::default()
        };
        let mut sensor = Sensor::load(&options)?;
        sensor.set_thresholds(&settings.thresholds)?;
        sensor.set_sampling(&settings.sampling, &settings.sample_ports)?;
        Ok(Self { sensor })
    }

    /// A handle on the kernel blocklist.
    pub fn blocklist(&self) -> Result<Blocklist, SensorError> {
        self.sensor.blocklist()
    }

    /// Starts reading the program's rings and log, then attaches it to
    /// `iface`: from here on packets are counted.
    pub fn attach(
        mut self,
        iface: &str,
        mode: XdpMode,
    ) -> Result<(LiveSensor, Streams), SensorError> {
        let mut tasks = Vec::new();
        if let Some(logger) = self.sensor.take_logger() {
            tasks.push(spawn_logger(logger)?);
        }
        let samples = self.read_ring(names::SAMPLES, samples::parse, samples::SAMPLE_QUEUE)?;
        let events = self.read_ring(names::EVENTS, events::parse, events::EVENT_QUEUE)?;
        tasks.extend([samples.task, events.task]);
        let mode = self.sensor.attach(iface, mode)?;
        let live = LiveSensor {
            sensor: self.sensor,
            iface: iface.to_owned(),
            mode,
            tasks,
            dropped_events: events.dropped,
            dropped_samples: samples.dropped,
        };
        let streams = Streams {
            events: events.queue,
            samples: samples.queue,
        };
        Ok((live, streams))
    }

    /// Starts a task reading the ring `name` into a queue of `capacity`.
    fn read_ring<T: Send + 'static>(
        &mut self,
        name: &'static str,
        parse: fn(&[u8]) -> Option<T>,
        capacity: usize,
    ) -> Result<ring::Reader<T>, SensorError> {
        ring::start(self.sensor.take_ring(name)?, name, parse, capacity)
    }
}

/// The program attached to an interface, counting.
pub struct LiveSensor {
    sensor: Sensor,
    iface: String,
    mode: AttachedMode,
    /// The ring and log readers.
    tasks: Vec<JoinHandle<()>>,
    dropped_events: Arc<AtomicU64>,
    dropped_samples: Arc<AtomicU64>,
}

impl LiveSensor {
    /// The interface watched.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Where the program runs.
    pub fn mode(&self) -> AttachedMode {
        self.mode
    }

    /// A handle on the kernel flow table; each call opens another.
    pub fn flow_table(&self) -> Result<FlowTable, SensorError> {
        self.sensor.flow_table()
    }

    /// Stops reading the rings and detaches the program.
    pub fn detach(mut self) -> Result<(), SensorError> {
        for task in &self.tasks {
            task.abort();
        }
        self.sensor.detach()
    }
}

impl PacketSource for LiveSensor {
    type Error = SensorError;

    fn snapshot(&self) -> Result<Snapshot, SensorError> {
        self.sensor.snapshot()
    }

    fn source(&self, addr: IpAddr) -> Result<Option<SourceView>, SensorError> {
        Ok(self.sensor.source(addr)?.map(|s| SourceView::from(&s)))
    }

    fn destination(&self, addr: IpAddr) -> Result<Option<DstHostStats>, SensorError> {
        self.sensor.dst_host(addr)
    }

    fn syn_ports_since(&self, before: &[u64]) -> Result<Vec<(u16, u64)>, SensorError> {
        self.sensor.syn_ports_since(before)
    }

    fn dropped(&self) -> Dropped {
        Dropped {
            events: self.dropped_events.load(Ordering::Relaxed),
            samples: self.dropped_samples.load(Ordering::Relaxed),
        }
    }

    fn now(&self) -> SourceTime {
        SourceTime {
            wall: Timestamp::now(),
            mono_ns: monotonic_ns(),
        }
    }
}

/// CLOCK_MONOTONIC in ns: the clock the XDP program's timestamps use.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Forwards the XDP program's log records (aya-log) to our logger as they come.
fn spawn_logger(
    logger: aya_log::EbpfLogger<&'static dyn log::Log>,
) -> Result<JoinHandle<()>, SensorError> {
    // SAFETY: the fd is the ring buffer map's, owned by `logger`, which the
    // AsyncFd owns until the task ends: it stays open and the same file.
    let mut fd = unsafe { AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE) }
        .map_err(|e| SensorError::Ring("AYA_LOGS", e.into_parts().1))?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok(mut guard) = fd.readable_mut().await else {
                return;
            };
            guard.get_inner_mut().flush();
            guard.clear_ready();
        }
    }))
}
