//! The kernel flow table from user space: a handle of its own, to walk the
//! table and remove the flows whose records are written.

use aya::{
    Ebpf,
    maps::{HashMap as BpfHashMap, IterableMap as _, Map, MapData, MapError},
};
use nta_common::{
    flow::{FLOWS_MAX_ENTRIES, FlowKey, FlowStats},
    maps::names,
};

use super::{SensorError, blocklist::own_fd};
use crate::flows::Pick;

const NAME: &str = names::FLOWS;

/// A handle on the loaded program's `FLOWS` map, with its own file
/// descriptor, so it can move to the task that exports flows while the
/// [`Sensor`](super::Sensor) goes on reading the counters.
pub struct FlowTable {
    map: BpfHashMap<MapData, FlowKey, FlowStats>,
}

fn map_error(source: MapError) -> SensorError {
    SensorError::Map { name: NAME, source }
}

impl FlowTable {
    pub(super) fn open(ebpf: &Ebpf) -> Result<Self, SensorError> {
        let map = ebpf.map(NAME).ok_or(SensorError::MissingMap(NAME))?;
        // Checks the map type and the key and value sizes against ours.
        let shared: BpfHashMap<&MapData, FlowKey, FlowStats> =
            BpfHashMap::try_from(map).map_err(map_error)?;
        let data = own_fd(shared.map())?;
        let map = BpfHashMap::try_from(Map::LruHashMap(data)).map_err(map_error)?;
        Ok(Self { map })
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
        let picked: Vec<(FlowKey, FlowStats, Pick)> = self
            .map
            .iter()
            .take(FLOWS_MAX_ENTRIES as usize)
            .filter_map(Result::ok)
            .filter_map(|(k, f)| match pick(&k, &f) {
                Pick::Keep => None,
                p => Some((k, f, p)),
            })
            .collect();
        for (key, _, _) in picked.iter().filter(|(_, _, p)| *p == Pick::End) {
            match self.map.remove(key) {
                Ok(()) | Err(MapError::KeyNotFound) => {}
                Err(source) => return Err(map_error(source)),
            }
        }
        Ok(picked)
    }
}
