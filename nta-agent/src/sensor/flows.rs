//! The kernel flow table from user space: a handle of its own, to walk the
//! table and free the entries of the flows whose records are written.

use std::{
    mem::size_of,
    os::fd::{AsFd as _, OwnedFd},
};

use aya::{
    Ebpf,
    maps::{Array, IterableMap as _, Map, MapData, MapError},
};
use nta_common::{
    flow::{BucketTags, FLOW_WAYS, FlowKey, FlowStats},
    maps::names,
};

use super::{SensorError, batch, blocklist::own_fd, mapped::MappedArray};
use crate::flows::{Pick, Picked};

const NAME: &str = names::FLOWS;
const TAGS: &str = names::FLOW_TAGS;

/// A handle on the loaded program's `FLOWS` and `FLOW_TAGS` maps, with
/// file descriptors of its own, so it can move to the task that exports
/// flows while the [`Sensor`](super::Sensor) goes on reading the counters.
pub struct FlowTable {
    /// The entries, by index.
    map: Array<MapData, FlowStats>,
    /// Their tags, by bucket, which say which entries are taken.
    tags: MappedArray<BucketTags>,
    /// The same entries, to read through while entries are freed.
    walk_fd: OwnedFd,
    /// The table's size, which caps a walk.
    size: u32,
}

fn map_error(source: MapError) -> SensorError {
    SensorError::Map { name: NAME, source }
}

/// A handle of its own on the array `name`, whose values must be `V`s.
fn own_array<V: aya::Pod>(
    ebpf: &Ebpf,
    name: &'static str,
) -> Result<Array<MapData, V>, SensorError> {
    let error = |source| SensorError::Map { name, source };
    let map = ebpf.map(name).ok_or(SensorError::MissingMap(name))?;
    // Checks the map type and the value size against ours.
    let shared: Array<&MapData, V> = Array::try_from(map).map_err(error)?;
    let data = own_fd(shared.map())?;
    Array::try_from(Map::Array(data)).map_err(error)
}

impl FlowTable {
    pub(super) fn open(ebpf: &Ebpf, size: u32) -> Result<Self, SensorError> {
        let map = own_array::<FlowStats>(ebpf, NAME)?;
        // Checks the map type and the value size against ours.
        let tags = own_array::<BucketTags>(ebpf, TAGS)?;
        let tags = MappedArray::map(tags.map().fd().as_fd(), size / FLOW_WAYS).map_err(|e| {
            SensorError::Map {
                name: TAGS,
                source: MapError::IoError(e),
            }
        })?;
        let walk_fd = map
            .map()
            .fd()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| map_error(MapError::IoError(e)))?;
        Ok(Self {
            map,
            tags,
            walk_fd,
            size,
        })
    }

    /// Starts a walk of the table that hands over what it picks at most
    /// `batch` flows at a time (see [`Walk::next`]), so that a full table's
    /// records never sit in memory at once.
    pub fn walk(&mut self, batch: usize) -> Result<Walk<'_>, SensorError> {
        Ok(Walk {
            entries: batch::entries(
                self.walk_fd.as_fd(),
                size_of::<u32>(),
                size_of::<FlowStats>(),
                decode as Decode,
            ),
            map: &mut self.map,
            tags: &self.tags,
            left: self.size as usize,
            batch: batch.max(1),
        })
    }
}

type Decode = fn(&[u8], &[u8]) -> Option<(u32, FlowStats)>;

/// An entry's index and value; an entry no packet has filled is left
/// alone.
fn decode(index: &[u8], value: &[u8]) -> Option<(u32, FlowStats)> {
    let (index, f) = (batch::read::<u32>(index)?, batch::read::<FlowStats>(value)?);
    f.in_use().then_some((index, f))
}

/// A walk of the flow table under way.
pub struct Walk<'t> {
    entries: batch::Entries<'t, Decode>,
    map: &'t mut Array<MapData, FlowStats>,
    tags: &'t MappedArray<BucketTags>,
    /// Entries still to read: the walk stops at the map's size.
    left: usize,
    batch: usize,
}

impl Walk<'_> {
    /// Reads on until `pick` has ended or cut a batch of flows, frees the
    /// entries of those it ended, and returns them all as they were when
    /// read; `None` once the table is read through and nothing more was
    /// picked. An entry is zeroed, then its tag: a packet counted between
    /// the read and the zeroing is lost with the entry (the flow was idle:
    /// there is none, but for a flow waking up at that instant), and one
    /// counted between the zeroing and the freeing starts the flow again
    /// in its entry, which the next walk finds.
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
            let (index, f) = entry.map_err(|source| SensorError::Batch { name: NAME, source })?;
            match pick(&f.key, &f) {
                Pick::Keep => {}
                p => picked.push((index, f, p)),
            }
        }
        if picked.is_empty() {
            return Ok(None);
        }
        for (index, _, _) in picked.iter().filter(|(_, _, p)| *p == Pick::End) {
            self.map
                .set(*index, FlowStats::ZERO, 0)
                .map_err(map_error)?;
            let (bucket, way) = (index / FLOW_WAYS, (index % FLOW_WAYS) as usize);
            if !self.tags.store_word(bucket, way, 0) {
                return Err(SensorError::Map {
                    name: TAGS,
                    source: MapError::OutOfBounds {
                        index: bucket,
                        max_entries: self.tags.len(),
                    },
                });
            }
        }
        Ok(Some(
            picked.into_iter().map(|(_, f, p)| (f.key, f, p)).collect(),
        ))
    }
}
