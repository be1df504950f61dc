//! The kernel flow table from user space: a handle of its own, to walk the
//! table and remove the flows whose records are written.

use std::{
    mem::size_of,
    os::fd::{AsFd as _, OwnedFd},
};

use aya::{
    Ebpf,
    maps::{HashMap, IterableMap as _, Map, MapData, MapError},
};
use nta_common::{
    flow::{FlowKey, FlowStats},
    maps::names,
};

use super::{SensorError, batch, blocklist::own_fd};
use crate::flows::{Pick, Picked};

const NAME: &str = names::FLOWS;

/// A handle on the loaded program's `FLOWS` map, with its own file
/// descriptor, so it can move to the task that exports flows while the
/// [`Sensor`](super::Sensor) goes on reading the counters.
pub struct FlowTable {
    /// Keyed by the flow key's seeded hash.
    map: HashMap<MapData, u64, FlowStats>,
    /// The same map, to read through while entries are removed.
    walk_fd: OwnedFd,
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
        let walk_fd = data
            .fd()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| map_error(MapError::IoError(e)))?;
        let map = HashMap::try_from(Map::LruHashMap(data)).map_err(map_error)?;
        Ok(Self { map, walk_fd, size })
    }

    /// Starts a walk of the table that hands over what it picks at most
    /// `batch` flows at a time (see [`Walk::next`]), so that a full table's
    /// records never sit in memory at once.
    pub fn walk(&mut self, batch: usize) -> Result<Walk<'_>, SensorError> {
        Ok(Walk {
            entries: batch::entries(
                self.walk_fd.as_fd(),
                size_of::<u64>(),
                size_of::<FlowStats>(),
                decode as Decode,
            ),
            map: &mut self.map,
            left: self.size as usize,
            batch: batch.max(1),
        })
    }
}

type Decode = fn(&[u8], &[u8]) -> Option<(u64, FlowStats)>;

/// An entry's key (the flow key's hash) and value; an entry no packet has
/// filled yet is left alone.
fn decode(key: &[u8], value: &[u8]) -> Option<(u64, FlowStats)> {
    let (hash, f) = (batch::read::<u64>(key)?, batch::read::<FlowStats>(value)?);
    f.in_use().then_some((hash, f))
}

/// A walk of the flow table under way.
pub struct Walk<'t> {
    entries: batch::Entries<'t, Decode>,
    map: &'t mut HashMap<MapData, u64, FlowStats>,
    /// Entries still to read: the walk is capped at the map's size, as an
    /// entry evicted and re-created under the kernel's cursor may be seen
    /// twice.
    left: usize,
    batch: usize,
}

impl Walk<'_> {
    /// Reads on until `pick` has ended or cut a batch of flows, removes
    /// those it ended, and returns them all as they were when read; `None`
    /// once the table is read through and nothing more was picked. A
    /// packet counted between the read and the removal is lost with the
    /// entry (the flow was idle: there is none, but for a flow waking up
    /// at that instant).
    pub fn next(
        &mut self,
        mut pick: impl FnMut(&FlowKey, &FlowStats) -> Pick,
    ) -> Result<Option<Picked>, SensorError> {
        let mut picked = Vec::new();
        while picked.len() < self.batch && self.left > 0 {
            let Some(entry) = self.entries.next() else {
                break;
            };
            self.left -= 1;
            let (hash, f) = entry.map_err(|source| SensorError::Batch { name: NAME, source })?;
            match pick(&f.key, &f) {
                Pick::Keep => {}
                p => picked.push((hash, f, p)),
            }
        }
        if picked.is_empty() {
            return Ok(None);
        }
        for (hash, _, _) in picked.iter().filter(|(_, _, p)| *p == Pick::End) {
            match self.map.remove(hash) {
                Ok(()) | Err(MapError::KeyNotFound) => {}
                Err(source) => return Err(map_error(source)),
            }
        }
        Ok(Some(
            picked.into_iter().map(|(_, f, p)| (f.key, f, p)).collect(),
        ))
    }
}
