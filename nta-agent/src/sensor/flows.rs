//! The kernel flow table from user space: a handle of its own, to walk the
//! table and free the entries of the flows whose records are written.

use aya::{Ebpf, maps::MapError};
use nta_common::{
    flow::{FlowKey, FlowStats},
    maps::names,
    table::{BucketTags, WAYS, pool, way_index},
};

use super::{
    SensorError,
    mapped::{MappedArray, mapped},
    pool::Pool,
};
use crate::flows::{Pick, Picked};

const NAME: &str = names::FLOWS;
const TAGS: &str = names::FLOW_TAGS;

/// A handle on the loaded program's `FLOWS` and `FLOW_TAGS` maps and the
/// flows' pool, all mapped into the agent's memory, so it can move to the
/// task that exports flows while the [`Sensor`](super::Sensor) goes on
/// reading the counters.
/// A walk reads the ways (a megabyte for the default table) and only the
/// entries the taken ones name, where a copy of the whole table through
/// `BPF_MAP_LOOKUP_BATCH` took 40 ms however few flows it held.
pub struct FlowTable {
    entries: MappedArray<FlowStats>,
    /// The ways, by bucket, which name the entries taken.
    tags: MappedArray<BucketTags>,
    pool: Pool,
}

impl FlowTable {
    pub(super) fn open(ebpf: &Ebpf, size: u32) -> Result<Self, SensorError> {
        Ok(Self {
            entries: mapped(ebpf, NAME, size)?,
            tags: mapped(ebpf, TAGS, size / WAYS)?,
            pool: Pool::open(ebpf, pool::FLOWS, names::FLOW_FREE, size)?,
        })
    }

    /// Starts a walk of the table that hands over what it picks at most
    /// `batch` flows at a time (see [`Walk::next`]), so that a full table's
    /// records never sit in memory at once.
    pub fn walk(&mut self, batch: usize) -> Result<Walk<'_>, SensorError> {
        Ok(Walk {
            table: self,
            next: 0,
            batch: batch.max(1),
        })
    }
}

/// A walk of the flow table under way.
pub struct Walk<'t> {
    table: &'t FlowTable,
    /// The next entry to look at.
    next: u32,
    batch: usize,
}

impl Walk<'_> {
    /// Reads on until `pick` has ended or cut a batch of flows, frees the
    /// entries of those it ended, and returns them all as they were when
    /// read; `None` once the table is read through and nothing more was
    /// picked. A way is freed, then its entry zeroed and given back to the
    /// pool: a packet counted between the read and the zeroing is lost with
    /// the entry (the flow was idle: there is none, but for a flow waking
    /// up at that instant, whose next packet starts it again in a new
    /// entry; rarely, a CPU that found the way before it was freed counts
    /// into the entry after it was zeroed, and the flow that takes the
    /// entry next starts with that packet, or finds it held).
    pub fn next(
        &mut self,
        mut pick: impl FnMut(&FlowKey, &FlowStats) -> Pick,
    ) -> Result<Option<Picked>, SensorError> {
        let FlowTable {
            entries,
            tags,
            pool,
        } = self.table;
        let mut picked = Vec::new();
        while picked.len() < self.batch && self.next < entries.len() {
            let position = self.next;
            self.next += 1;
            let (bucket, way) = (position / WAYS, (position % WAYS) as usize);
            let word = tags.load_word(bucket, way).unwrap_or(0);
            if word == 0 {
                continue;
            }
            let at = way_index(word);
            let Some(f) = entries
                .read(at)
                .filter(FlowStats::in_use)
                .map(FlowStats::merged)
            else {
                continue;
            };
            match pick(&f.key, &f) {
                Pick::Keep => {}
                p => picked.push(((bucket, way, at), f, p)),
            }
        }
        if picked.is_empty() {
            return Ok(None);
        }
        for ((bucket, way, at), _, _) in picked.iter().filter(|(_, _, p)| *p == Pick::End) {
            if !tags.store_word(*bucket, *way, 0) || !entries.write(*at, FlowStats::ZERO) {
                return Err(SensorError::Map {
                    name: NAME,
                    source: MapError::OutOfBounds {
                        index: *at,
                        max_entries: entries.len(),
                    },
                });
            }
            pool.give_back(*at)?;
        }
        Ok(Some(
            picked.into_iter().map(|(_, f, p)| (f.key, f, p)).collect(),
        ))
    }
}
