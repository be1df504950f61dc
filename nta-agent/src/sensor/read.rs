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
    let syn_ports = syn_ports(ebpf)?;
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
            .map(|f| (f.key, f))
    };
    batch::entries(fd, size_of::<u32>(), size_of::<FlowStats>(), decode)
        .take(size as usize)
        .collect::<Result<_, _>>()
        .map_err(|source| SensorError::Batch { name, source })
}

pub(super) fn syn_ports(ebpf: &Ebpf) -> Result<Vec<u64>, SensorError> {
    let name = names::SYN_PORTS;
    let array: PerCpuArray<&MapData, PortSynCounts> =
        PerCpuArray::try_from(map(ebpf, name)?).map_err(map_error(name))?;
    let mut ports = vec![0u64; PORT_COUNT];
    for chunk in 0..PORT_CHUNKS {
        let per_cpu = array.get(&chunk, 0).map_err(map_error(name))?;
        let base = chunk as usize * PORTS_PER_CHUNK;
        for cpu in per_cpu.iter() {
            for (total, n) in ports[base..base + PORTS_PER_CHUNK]
                .iter_mut()
                .zip(cpu.syns.iter())
            {
                *total += n;
            }
        }
    }
    Ok(ports)
}
