//! The kernel side, seen from user space: load the embedded XDP program,
//! attach it to an interface, read its maps, detach.

mod attach;
mod batch;
mod blocklist;
pub mod capabilities;
mod error;
pub mod events;
mod flows;
mod live;
mod mapped;
mod pool;
mod read;
mod ring;
pub mod samples;
mod table;

use std::{net::IpAddr, sync::Mutex};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, MapData, RingBuf},
    programs::{Xdp, xdp::XdpLinkId},
};
use nta_common::{
    DstHostStats, IpKey, SourceStats,
    flow::{FLOWS_MAX_ENTRIES, FlowKey, FlowStats},
    maps::{
        DST_HOSTS_MAX_ENTRIES, FEATURES_GLOBAL, FLOW_BUCKETS_GLOBAL, PROGRAM_NAME,
        SOURCES_MAX_ENTRIES, Sampling, TABLE_SEED_GLOBAL, Thresholds, feature, names,
    },
    table::{TableLayout, pool as pools},
};
use tracing::{debug, warn};

pub use attach::{AttachedMode, XdpMode};
pub use blocklist::{BlockEntry, Blocklist};
pub use error::SensorError;
pub use flows::FlowTable;
pub use live::{LiveSensor, LoadedSensor, SensorSettings, monotonic_ns};
pub use table::{Idle, Table};

use crate::traffic::{self, Snapshot};

/// The XDP program, built by `build.rs` for the BPF target.
///
/// Empty when the agent was built without bpf-linker (see `build.rs`).
static PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/nta"));

/// The embedded eBPF object, or an error if this binary was built without it.
pub fn program() -> Result<&'static [u8], SensorError> {
    if PROGRAM.is_empty() {
        return Err(SensorError::NoProgram);
    }
    Ok(PROGRAM)
}

/// A random seed for the tables' key hash, from the standard
/// library's per-process random keys (the operating system's randomness).
fn table_seed() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// Oldest kernel nta supports: BPF links for XDP (5.9), atomic fetch-and-op
/// map updates (5.12) and `bpf_ktime_get_coarse_ns` (5.11); 5.15 is the first
/// long-term release with all of them.
pub const MIN_KERNEL: (u32, u32) = (5, 15);

/// Load-time settings of the XDP program.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Most verbose level of the program's own log records (aya-log).
    pub log_level: log::LevelFilter,
    /// Parts of the program that run ([`feature`] bits): all of them, but
    /// for benchmarks that time the parts one by one.
    pub features: u32,
    /// Flows the kernel's flow table holds, rounded up to whole groups
    /// (`TableLayout`).
    pub flow_table_size: u32,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            log_level: log::LevelFilter::Info,
            features: feature::ALL,
            flow_table_size: FLOWS_MAX_ENTRIES,
        }
    }
}

/// A loaded XDP program and its maps, attached to at most one interface.
pub struct Sensor {
    ebpf: Ebpf,
    link: Option<XdpLinkId>,
    attached: Option<(String, AttachedMode)>,
    /// Reads the program's log ring; dropping it would close the ring's fd.
    logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
    flow_table_size: u32,
    sources: Table<SourceStats>,
    dst_hosts: Table<DstHostStats>,
    /// When the tables' idle entries are freed, from the thresholds.
    idle: Idle,
    port_buffers: Mutex<read::PortBuffers>,
}

impl Sensor {
    /// Loads the embedded program into the kernel without attaching it.
    pub fn load(options: &LoadOptions) -> Result<Self, SensorError> {
        let object = program()?;
        check_kernel()?;
        check_capabilities()?;
        raise_memlock_limit();
        let level = aya_log_level(options.log_level);
        let seed = table_seed();
        let flows = TableLayout::for_entries(options.flow_table_size);
        let mut ebpf = EbpfLoader::new()
            .override_global(aya_log::LEVEL, &level, false)
            .override_global(FEATURES_GLOBAL, &options.features, true)
            .override_global(TABLE_SEED_GLOBAL, &seed, true)
            .override_global(FLOW_BUCKETS_GLOBAL, &flows.buckets, true)
            .map_max_entries(names::FLOWS, flows.entries())
            .map_max_entries(names::FLOW_TAGS, flows.buckets)
            .map_max_entries(names::FLOW_FREE, flows.entries())
            .load(object)
            .map_err(SensorError::from_load)?;
        let logger = match aya_log::EbpfLogger::init(&mut ebpf) {
            Ok(logger) => Some(logger),
            Err(error) => {
                warn!(message = "Kernel-side logging unavailable", %error);
                None
            }
        };
        let program: &mut Xdp = ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or(SensorError::MissingProgram(PROGRAM_NAME))?
            .try_into()?;
        program.load().map_err(SensorError::from_program_load)?;
        debug!(message = "XDP program loaded");
        let sources = Table::open(
            &ebpf,
            names::SOURCES,
            names::SOURCE_TAGS,
            (pools::SOURCES, names::SOURCE_FREE),
            TableLayout::for_entries(SOURCES_MAX_ENTRIES),
            seed,
        )?;
        let dst_hosts = Table::open(
            &ebpf,
            names::DST_HOSTS,
            names::DST_HOST_TAGS,
            (pools::DST_HOSTS, names::DST_HOST_FREE),
            TableLayout::for_entries(DST_HOSTS_MAX_ENTRIES),
            seed,
        )?;
        Ok(Self {
            ebpf,
            link: None,
            attached: None,
            logger,
            flow_table_size: flows.entries(),
            sources,
            dst_hosts,
            idle: Idle::default(),
            port_buffers: Mutex::default(),
        })
    }

    /// Attaches to `iface`; see [`attach::attach`] for the fallback rules.
    pub fn attach(&mut self, iface: &str, mode: XdpMode) -> Result<AttachedMode, SensorError> {
        let program = self.xdp()?;
        let (link, attached) = attach::attach(program, iface, mode)?;
        self.link = Some(link);
        self.attached = Some((iface.to_owned(), attached));
        Ok(attached)
    }

    /// Detaches from the interface, if attached. Dropping the sensor does the
    /// same; this makes the moment explicit and reports errors.
    pub fn detach(&mut self) -> Result<(), SensorError> {
        if let Some(link) = self.link.take() {
            self.attached = None;
            self.xdp()?.detach(link)?;
        }
        Ok(())
    }

    /// Interface and mode, while attached.
    pub fn attached(&self) -> Option<(&str, AttachedMode)> {
        self.attached.as_ref().map(|(i, m)| (i.as_str(), *m))
    }

    /// The loaded program, e.g. to run it on crafted frames.
    pub fn xdp(&mut self) -> Result<&mut Xdp, SensorError> {
        Ok(self
            .ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or(SensorError::MissingProgram(PROGRAM_NAME))?
            .try_into()?)
    }

    /// Reads every counter map, and frees the sources and destinations
    /// idle long enough (see [`Idle`]).
    pub fn snapshot(&self) -> Result<Snapshot, SensorError> {
        self.snapshot_at(monotonic_ns())
    }

    /// [`Sensor::snapshot`] as if the program's clock read `now_ns`: what
    /// is idle is so by then.
    pub fn snapshot_at(&self, now_ns: u64) -> Result<Snapshot, SensorError> {
        read::snapshot(
            &self.ebpf,
            &mut self.port_buffers(),
            &self.sources,
            &self.dst_hosts,
            now_ns,
            self.idle,
        )
    }

    /// Every flow in the flow table.
    pub fn flows(&self) -> Result<Vec<(FlowKey, FlowStats)>, SensorError> {
        read::flows(&self.ebpf, self.flow_table_size)
    }

    /// SYNs per destination port counted since `before` (a snapshot's
    /// `syn_ports`), the ports that grew only, busiest first: what a SYN
    /// flood event reads, without a copy of every port's count.
    pub fn syn_ports_since(&self, before: &[u64]) -> Result<Vec<(u16, u64)>, SensorError> {
        let mut grown = Vec::new();
        read::syn_port_chunks(&self.ebpf, &mut self.port_buffers(), |first, syns| {
            let was = before.get(first..first + syns.len());
            // A flood grows one of the 64 chunks: the others compare equal
            // whole.
            if was == Some(syns.as_slice()) {
                return;
            }
            for (i, &now) in syns.iter().enumerate() {
                let n = traffic::growth(was.map_or(0, |was| was[i]), now);
                if let (Ok(port), true) = (u16::try_from(first + i), n > 0) {
                    grown.push((port, n));
                }
            }
        })?;
        traffic::busiest_first(&mut grown);
        Ok(grown)
    }

    /// The buffers of the per-port reads; a panic while another thread
    /// held them left nothing a read relies on.
    fn port_buffers(&self) -> std::sync::MutexGuard<'_, read::PortBuffers> {
        self.port_buffers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One source's counters, if the kernel has them.
    pub fn source(&self, addr: IpAddr) -> Result<Option<SourceStats>, SensorError> {
        Ok(self.sources.get(&IpKey::from(addr)))
    }

    /// One destination's counters, if the kernel has them.
    pub fn dst_host(&self, addr: IpAddr) -> Result<Option<DstHostStats>, SensorError> {
        Ok(self.dst_hosts.get(&IpKey::from(addr)))
    }

    /// Sets the windows and thresholds the program signals crossings of,
    /// and with them when idle sources and destinations are freed.
    pub fn set_thresholds(&mut self, thresholds: &Thresholds) -> Result<(), SensorError> {
        self.set(names::THRESHOLDS, 0, thresholds)?;
        self.idle = Idle::for_thresholds(thresholds);
        Ok(())
    }

    /// Sets what the program samples: the switches and rate cap, and the
    /// ports (with `sample_port` flags) whose payloads are always sampled.
    pub fn set_sampling(
        &mut self,
        sampling: &Sampling,
        ports: &[(u16, u8)],
    ) -> Result<(), SensorError> {
        for (port, flag) in ports {
            self.set(names::SAMPLE_PORTS, u32::from(*port), flag)?;
        }
        self.set(names::SAMPLING, 0, sampling)
    }

    /// Writes `value` at `index` of the array map `name`.
    fn set<T: aya::Pod>(
        &mut self,
        name: &'static str,
        index: u32,
        value: &T,
    ) -> Result<(), SensorError> {
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or(SensorError::MissingMap(name))?;
        let mut array: Array<&mut MapData, T> =
            Array::try_from(map).map_err(|source| SensorError::Map { name, source })?;
        array
            .set(index, value, 0)
            .map_err(|source| SensorError::Map { name, source })
    }

    /// A handle on the kernel blocklist, to block and unblock sources and
    /// read what each entry dropped; each call opens another handle on the
    /// same map.
    pub fn blocklist(&self) -> Result<Blocklist, SensorError> {
        Blocklist::open(&self.ebpf)
    }

    /// A handle on the kernel flow table; each call opens another.
    pub fn flow_table(&self) -> Result<FlowTable, SensorError> {
        FlowTable::open(&self.ebpf, self.flow_table_size)
    }

    /// Takes the ring of payload samples, to be read by its own task.
    pub fn take_samples(&mut self) -> Result<RingBuf<MapData>, SensorError> {
        self.take_ring(names::SAMPLES)
    }

    /// Takes the ring of threshold events, to be read by its own task.
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, SensorError> {
        self.take_ring(names::EVENTS)
    }

    /// Takes the ring buffer map `name`, to be read by its own task.
    pub fn take_ring(&mut self, name: &'static str) -> Result<RingBuf<MapData>, SensorError> {
        let map = self
            .ebpf
            .take_map(name)
            .ok_or(SensorError::MissingMap(name))?;
        RingBuf::try_from(map).map_err(|source| SensorError::Map { name, source })
    }

    /// Takes the program's log reader, to be polled by its own task.
    pub fn take_logger(&mut self) -> Option<aya_log::EbpfLogger<&'static dyn log::Log>> {
        self.logger.take()
    }
}

fn aya_log_level(level: log::LevelFilter) -> u8 {
    // aya-log-ebpf: Error = 1 ... Trace = 5; 0 silences every record.
    match level {
        log::LevelFilter::Off => 0,
        log::LevelFilter::Error => 1,
        log::LevelFilter::Warn => 2,
        log::LevelFilter::Info => 3,
        log::LevelFilter::Debug => 4,
        log::LevelFilter::Trace => 5,
    }
}

fn check_kernel() -> Result<(), SensorError> {
    let current = aya::util::KernelVersion::current()
        .map_err(|e| SensorError::KernelVersion(e.to_string()))?;
    let (major, minor) = MIN_KERNEL;
    if current < aya::util::KernelVersion::new(major as u8, minor as u8, 0) {
        return Err(SensorError::KernelTooOld {
            found: format!("{current:?}"),
        });
    }
    Ok(())
}

/// Fails naming each capability the sensor needs and this process lacks.
fn check_capabilities() -> Result<(), SensorError> {
    let Some(effective) = capabilities::effective() else {
        return Ok(());
    };
    let missing = capabilities::missing(effective);
    if missing.is_empty() {
        return Ok(());
    }
    Err(SensorError::MissingCapabilities {
        missing: missing
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; lift it so the maps
/// fit. Newer kernels account maps to the cgroup and ignore this.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads a valid rlimit struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        debug!(message = "Could not lift RLIMIT_MEMLOCK; fine on Linux 5.11+");
    }
}
