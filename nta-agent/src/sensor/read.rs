//! Reading the counter maps into a [`Snapshot`].

use std::{
    mem::size_of,
    os::fd::{AsFd as _, BorrowedFd},
    time::Instant,
};

use aya::{
    Ebpf,
    maps::{Map, MapData, PerCpuArray},
};
use nta_common::{
    DstHostStats, GlobalCounters, PortSynCounts, SourceStats,
    flow::{FlowKey, FlowStats},
    maps::{PORT_CHUNKS, PORT_COUNT, PORTS_PER_CHUNK, names},
};

use super::{Idle, SensorError, Table, batch};
use crate::traffic::{DstView, Snapshot, SourceView};

fn map<'a>(ebpf: &'a Ebpf, name: &'static str) -> Result<&'a Map, SensorError> {
    ebpf.map(name).ok_or(SensorError::MissingMap(name))
}

fn map_error(name: &'static str) -> impl Fn(aya::maps::MapError) -> SensorError {
    move |source| SensorError::Map { name, source }
}

pub(super) fn snapshot(
    ebpf: &Ebpf,
    port_buffers: &mut PortBuffers,
    sources: &Table<SourceStats>,
    dst_hosts: &Table<DstHostStats>,
    now_ns: u64,
    idle: Idle,
) -> Result<Snapshot, SensorError> {
    // The totals and the per-port counters first, close together and to
    // the timestamp: the tables take longest to walk, and rates come from
    // the totals.
    let at = Instant::now();
    let global = global(ebpf)?;
    let syn_ports = syn_ports(ebpf, port_buffers)?;
    let sources = sources.read(now_ns, idle, |s| SourceView::from(s))?;
    let dst_hosts = dst_hosts.read(now_ns, idle, |d| DstView::from(d))?;
    Ok(Snapshot {
        at,
        global,
        sources,
        dst_hosts,
        syn_ports,
    })
}

fn global(ebpf: &Ebpf) -> Result<GlobalCounters, SensorError> {
    let name = names::GLOBAL;
    let array: PerCpuArray<&MapData, GlobalCounters> =
        PerCpuArray::try_from(map(ebpf, name)?).map_err(map_error(name))?;
    let per_cpu = array.get(&0, 0).map_err(map_error(name))?;
    let mut total = GlobalCounters::ZERO;
    for cpu in per_cpu.iter() {
        total += cpu;
    }
    Ok(total)
}

/// The file descriptor of a map the batch read walks: a hash map of any
/// kind, or an array.
fn batch_fd<'a>(map: &'a Map, name: &'static str) -> Result<BorrowedFd<'a>, SensorError> {
    match map {
        Map::HashMap(data)
        | Map::LruHashMap(data)
        | Map::PerCpuHashMap(data)
        | Map::PerCpuLruHashMap(data)
        | Map::Array(data) => Ok(data.fd().as_fd()),
        _ => Err(SensorError::NotBatchReadable(name)),
    }
}

/// Every flow in the flow table with a packet counted.
pub(super) fn flows(ebpf: &Ebpf, size: u32) -> Result<Vec<(FlowKey, FlowStats)>, SensorError> {
    let name = names::FLOWS;
    let fd = batch_fd(map(ebpf, name)?, name)?;
    let decode = |_: &[u8], value: &[u8]| {
        batch::read::<FlowStats>(value)
            .filter(FlowStats::in_use)
            .map(|f| (f.key, f.merged()))
    };
    batch::entries(fd, size_of::<u32>(), size_of::<FlowStats>(), decode)
        .take(size as usize)
        .collect::<Result<_, _>>()
        .map_err(|source| SensorError::Batch { name, source })
}

// The batch read lays each CPU's chunk out as `words` u64s.
const _: () = assert!(size_of::<PortSynCounts>() == PORTS_PER_CHUNK * size_of::<u64>());

/// The buffers the per-port SYN counts are read into, kept from one read
/// to the next: 1 MiB on two CPUs, read on every SYN flood event.
#[derive(Debug, Default)]
pub(super) struct PortBuffers {
    keys: Vec<u32>,
    values: Vec<u64>,
}

/// SYNs per destination port summed over the CPUs, handed to `each` a
/// chunk at a time, in port order, as the chunk's first port and the
/// counts of its [`PORTS_PER_CHUNK`] ports; every port, the unused included.
pub(super) fn syn_port_chunks(
    ebpf: &Ebpf,
    buffers: &mut PortBuffers,
    mut each: impl FnMut(usize, &[u64; PORTS_PER_CHUNK]),
) -> Result<(), SensorError> {
    let name = names::SYN_PORTS;
    let fd = match map(ebpf, name)? {
        Map::PerCpuArray(data) => data.fd().as_fd(),
        _ => return Err(SensorError::NotBatchReadable(name)),
    };
    let cpus = aya::util::nr_cpus().map_err(|(_, source)| SensorError::Batch { name, source })?;
    let PortBuffers { keys, values } = buffers;
    batch::per_cpu_array(fd, PORT_CHUNKS, PORTS_PER_CHUNK, cpus, keys, values)
        .map_err(|source| SensorError::Batch { name, source })?;
    let mut sums = [0u64; PORTS_PER_CHUNK];
    for (chunk, per_cpu) in values.chunks_exact(cpus * PORTS_PER_CHUNK).enumerate() {
        // A CPU's chunk at a time, element by element: a loop the compiler
        // vectorises.
        sums.fill(0);
        for cpu in per_cpu.chunks_exact(PORTS_PER_CHUNK) {
            for (sum, syns) in sums.iter_mut().zip(cpu) {
                *sum += syns;
            }
        }
        each(chunk * PORTS_PER_CHUNK, &sums);
    }
    Ok(())
}

/// SYNs per destination port, indexed by port.
pub(super) fn syn_ports(ebpf: &Ebpf, buffers: &mut PortBuffers) -> Result<Vec<u64>, SensorError> {
    let mut ports = vec![0u64; PORT_COUNT];
    syn_port_chunks(ebpf, buffers, |first, syns| {
        ports[first..first + PORTS_PER_CHUNK].copy_from_slice(syns)
    })?;
    Ok(ports)
}
