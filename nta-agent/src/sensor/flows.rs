//! The kernel flow table from user space: a handle of its own, to walk the
//! table and remove the flows whose records are written.

use aya::{
    Ebpf,
    maps::{IterableMap as _, Map, MapData, MapError, PerCpuHashMap},
};
use nta_common::{
    flow::{FlowKey, FlowStats},
    maps::names,
};

use super::{SensorError, blocklist::own_fd};
use crate::flows::Pick;

const NAME: &str = names::FLOWS;

/// A handle on the loaded program's `FLOWS` map, with its own file
/// descriptor, so it can move to the task that exports flows while the
/// [`Sensor`](super::Sensor) goes on reading the counters.
pub struct FlowTable {
    /// Keyed by the flow key's seeded hash, a slot per CPU.
    map: PerCpuHashMap<MapData, u64, FlowStats>,
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
        let shared: PerCpuHashMap<&MapData, u64, FlowStats> =
            PerCpuHashMap::try_from(map).map_err(map_error)?;
        let data = own_fd(shared.map())?;
        let map = PerCpuHashMap::try_from(Map::PerCpuLruHashMap(data)).map_err(map_error)?;
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
        // The walk is capped at the map's size: a key evicted under the
        // cursor makes the kernel restart from the first key.
        let picked: Vec<(u64, FlowStats, Pick)> = self
            .map
            .iter()
            .take(self.size as usize)
            .filter_map(Result::ok)
            .filter_map(|(hash, slots)| {
                // `None` for an entry no packet has filled yet.
                let f = FlowStats::merge(slots.iter())?;
                match pick(&f.key, &f) {
                    Pick::Keep => None,
                    p => Some((hash, f, p)),
                }
            })
            .collect();
        for (hash, _, _) in picked.iter().filter(|(_, _, p)| *p == Pick::End) {
            match self.map.remove(hash) {
                Ok(()) | Err(MapError::KeyNotFound) => {}
                Err(source) => return Err(map_error(source)),
            }
        }
        Ok(picked.into_iter().map(|(_, f, p)| (f.key, f, p)).collect())
    }
}
