//! The kernel flow table from user space: a handle of its own, to walk the
//! table and remove the flows whose records are written.

use std::{mem::size_of, os::fd::AsFd as _};

use aya::{
    Ebpf,
    maps::{HashMap, IterableMap as _, Map, MapData, MapError},
};
use nta_common::{
    flow::{FlowKey, FlowStats},
    maps::names,
};

use super::{SensorError, batch, blocklist::own_fd};
use crate::flows::Pick;

const NAME: &str = names::FLOWS;

/// A handle on the loaded program's `FLOWS` map, with its own file
/// descriptor, so it can move to the task that exports flows while the
/// [`Sensor`](super::Sensor) goes on reading the counters.
pub struct FlowTable {
    /// Keyed by the flow key's seeded hash.
    map: HashMap<MapData, u64, FlowStats>,
    /// The table's size, which caps a walk.
    size: u32,
}

fn map_error(source: MapError) -> SensorError {
    SensorError::Map { name: NAME, source }
}

impl FlowTable {
    pub(super) fn open(ebpf: &Ebpf, size: u32) -> Result<Self, SensorError> {
        let map = ebpf.map(NAME).ok_or(SensorError::MissingMap(NAME))?;
        // Checks the map type and the key and value sizes against ours.
        let shared: HashMap<&MapData, u64, FlowStats> =
            HashMap::try_from(map).map_err(map_error)?;
        let data = own_fd(shared.map())?;
        let map = HashMap::try_from(Map::LruHashMap(data)).map_err(map_error)?;
        Ok(Self { map, size })
    }

    /// Walks the table: returns the flows `pick` ends or cuts, as they
    /// were when read, and removes those it ends. A packet counted between
    /// the read and the removal is lost with the entry (the flow was idle:
    /// there is none, but for a flow waking up at that instant).
    pub fn walk(
        &mut self,
        mut pick: impl FnMut(&FlowKey, &FlowStats) -> Pick,
    ) -> Result<Vec<(FlowKey, FlowStats, Pick)>, SensorError> {
        // In batches, a thousand entries a syscall (see `batch`). The walk
        // is capped at the map's size: an entry evicted and re-created
        // under the kernel's cursor may be seen twice.
        let fd = self.map.map().fd().as_fd();
        let decode = |key: &[u8], value: &[u8]| {
            let (hash, f) = (batch::read::<u64>(key)?, batch::read::<FlowStats>(value)?);
            // An entry no packet has filled yet is left alone.
            f.in_use().then_some((hash, f))
        };
        let mut picked = Vec::new();
        for entry in batch::entries(fd, size_of::<u64>(), size_of::<FlowStats>(), decode)
            .take(self.size as usize)
        {
            let (hash, f) = entry.map_err(|source| SensorError::Batch { name: NAME, source })?;
            match pick(&f.key, &f) {
                Pick::Keep => {}
                p => picked.push((hash, f, p)),
            }
        }
        for (hash, _, _) in picked.iter().filter(|(_, _, p)| *p == Pick::End) {
            match self.map.remove(hash) {
                Ok(()) | Err(MapError::KeyNotFound) => {}
                Err(source) => return Err(map_error(source)),
            }
        }
        Ok(picked.into_iter().map(|(_, f, p)| (f.key, f, p)).collect())
    }
}
