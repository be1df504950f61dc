//! The kernel's tables of sources and destination hosts from user space
//! (see `nta_common::table`): mapped into the agent's memory, read in
//! place, and rid of idle entries, which nothing else frees; their entries
//! go back to the table's pool.

use std::{
    collections::HashSet,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU32, Ordering},
    },
};

use aya::{Ebpf, maps::MapError};
use nta_common::{
    DstHostStats, IpKey, SourceStats,
    table::{BucketTags, TableLayout, WAYS, tag, way_index, way_tag},
};

pub use crate::idle::Idle;

use super::{
    SensorError,
    mapped::{MappedArray, mapped},
    pool::Pool,
};

/// An entry of a table of addresses.
pub trait Entry: aya::Pod + Default {
    /// The address it counts.
    fn key(&self) -> IpKey;
    /// When its last packet came, on the program's clock: for a source
    /// being filled, whose last packet's time is not written yet, when
    /// its first came.
    fn last_seen_ns(&self) -> u64;
    /// Whether a packet has filled it (a way is taken, then filled).
    fn in_use(&self) -> bool;
}

impl Entry for SourceStats {
    fn key(&self) -> IpKey {
        self.key
    }
    fn last_seen_ns(&self) -> u64 {
        self.last_seen_ns.max(self.first_seen_ns)
    }
    fn in_use(&self) -> bool {
        self.first_seen_ns != 0
    }
}

impl Entry for DstHostStats {
    fn key(&self) -> IpKey {
        self.key
    }
    fn last_seen_ns(&self) -> u64 {
        self.last_seen_ns
    }
    fn in_use(&self) -> bool {
        self.last_seen_ns != 0
    }
}

/// A table of the loaded program: its entries, its ways and its pool, all
/// mapped.
pub struct Table<V> {
    name: &'static str,
    layout: TableLayout,
    seed: u64,
    entries: MappedArray<V>,
    tags: MappedArray<BucketTags>,
    pool: Pool,
    /// Ways the last read found taken: whether the next one frees entries
    /// as under pressure.
    taken: AtomicU32,
    /// The ways the last read found taken but their entries not yet
    /// filled, by position and word: a way is freed only when two reads in
    /// a row find it so, since a CPU fills its entry just after taking it.
    unfilled: Mutex<HashSet<(u32, u64)>>,
}

impl<V: Entry> Table<V> {
    /// Maps the table `name`, with ways `tags` and pool `pool` (its number
    /// and ring), of the layout the program was built with, keyed under
    /// `seed`.
    pub(super) fn open(
        ebpf: &Ebpf,
        name: &'static str,
        tags: &'static str,
        pool: (u32, &'static str),
        layout: TableLayout,
        seed: u64,
    ) -> Result<Self, SensorError> {
        Ok(Self {
            name,
            layout,
            seed,
            entries: mapped(ebpf, name, layout.entries())?,
            tags: mapped(ebpf, tags, layout.buckets)?,
            pool: Pool::open(ebpf, pool.0, pool.1, layout.entries())?,
            taken: AtomicU32::new(0),
            unfilled: Mutex::new(HashSet::new()),
        })
    }

    /// The entry of `key`, if the table has one.
    pub fn get(&self, key: &IpKey) -> Option<V> {
        let hash = key.hash(self.seed);
        let tag = tag(hash);
        for bucket in self.layout.candidates(hash) {
            for way in 0..WAYS {
                let word = self.tags.load_word(bucket, way as usize).unwrap_or(0);
                if way_tag(word) != tag {
                    continue;
                }
                let entry = self.entries.read(way_index(word));
                if let Some(entry) = entry.filter(|e| e.in_use() && e.key().same(key)) {
                    return Some(entry);
                }
            }
        }
        None
    }

    /// Every entry in use, as `keep` makes of it; frees the entries idle
    /// at `now_ns` for as long as `idle` says, after reading them, and the
    /// ways the previous read too found taken with no packet counted. A
    /// way is freed, then its entry zeroed and given back to the pool: a
    /// packet counted between the read and the zeroing is lost with the
    /// entry (the key was idle: there is none, but for one waking up at
    /// that instant, whose next packet takes a new entry; rarely, a CPU
    /// that found the way before it was freed counts into the entry after
    /// it was zeroed, and the key that takes the entry next starts with
    /// that packet, or finds it held until it goes idle).
    pub fn read<T, C: FromIterator<(IpKey, T)>>(
        &self,
        now_ns: u64,
        idle: Idle,
        mut keep: impl FnMut(&V) -> T,
    ) -> Result<C, SensorError> {
        let idle_ns = idle.after_for(
            self.taken.load(Ordering::Relaxed) as usize,
            self.layout.entries() as usize,
        );
        let (mut next, mut taken, mut failed) = (0, 0, None);
        let (entries, tags, pool) = (&self.entries, &self.tags, &self.pool);
        let mut unfilled = self.unfilled.lock().unwrap_or_else(PoisonError::into_inner);
        let was_unfilled = std::mem::take(&mut *unfilled);
        // Collected as it is read, without a copy of the whole table
        // first: 65 536 sources take 11 MiB as the detectors keep them.
        let all = std::iter::from_fn(|| {
            while next < self.layout.entries() {
                let index = next;
                next += 1;
                let (bucket, way) = (index / WAYS, (index % WAYS) as usize);
                let word = tags.load_word(bucket, way).unwrap_or(0);
                if word == 0 {
                    continue;
                }
                taken += 1;
                let at = way_index(word);
                let entry = entries.read(at).unwrap_or_default();
                let kept = entry.in_use().then(|| (entry.key(), keep(&entry)));
                if kept.is_some() && now_ns.saturating_sub(entry.last_seen_ns()) < idle_ns {
                    return kept;
                }
                if kept.is_none() && !was_unfilled.contains(&(index, word)) {
                    unfilled.insert((index, word));
                    continue;
                }
                if !tags.store_word(bucket, way, 0) || !entries.write(at, V::default()) {
                    failed = Some(self.out_of_bounds(at));
                    return None;
                }
                if let Err(error) = pool.give_back(at) {
                    failed = Some(error);
                    return None;
                }
                taken -= 1;
                if kept.is_some() {
                    return kept;
                }
            }
            None
        })
        .collect();
        if let Some(error) = failed {
            return Err(error);
        }
        self.taken.store(taken, Ordering::Relaxed);
        Ok(all)
    }

    fn out_of_bounds(&self, index: u32) -> SensorError {
        SensorError::Map {
            name: self.name,
            source: MapError::OutOfBounds {
                index,
                max_entries: self.entries.len(),
            },
        }
    }
}
