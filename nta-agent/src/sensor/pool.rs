//! Giving the entries the agent frees back to their table's pool (see
//! `nta_common::table::PoolCounts`), from which the program takes a new
//! key's entry.

use std::{mem::offset_of, sync::Mutex};

use aya::{Ebpf, maps::MapError};
use nta_common::{
    maps::names,
    table::{PoolCounts, give_back_slot, pool},
};

use super::{
    SensorError,
    mapped::{MappedArray, mapped},
};

const TAKEN_WORD: usize = offset_of!(PoolCounts, taken) / 8;
const GIVEN_BACK_WORD: usize = offset_of!(PoolCounts, given_back) / 8;

/// The pool's ring has one writer: whoever gives back holds this, however
/// many handles on a table the process has opened.
static GIVING_BACK: Mutex<()> = Mutex::new(());

/// A table's pool: its counts and its ring, both mapped.
pub struct Pool {
    /// The ring's map, for errors.
    name: &'static str,
    number: u32,
    entries: u32,
    counts: MappedArray<PoolCounts>,
    ring: MappedArray<u64>,
}

impl Pool {
    /// Maps pool `number` (a `nta_common::table::pool` number), of a table
    /// of `entries` entries, whose ring is the map `ring`.
    pub(super) fn open(
        ebpf: &Ebpf,
        number: u32,
        ring: &'static str,
        entries: u32,
    ) -> Result<Self, SensorError> {
        Ok(Self {
            name: ring,
            number,
            entries,
            counts: mapped(ebpf, names::POOLS, pool::COUNT)?,
            ring: mapped(ebpf, ring, entries)?,
        })
    }

    /// Gives entry `index` back: the caller has freed the way that named
    /// it and zeroed it. An entry given back twice, or one never taken,
    /// would be handed out to two keys: the counts refuse more given back
    /// than taken.
    pub fn give_back(&self, index: u32) -> Result<(), SensorError> {
        let _one_writer = GIVING_BACK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let word = |w| self.counts.load_word(self.number, w);
        let (Some(taken), Some(given_back)) = (word(TAKEN_WORD), word(GIVEN_BACK_WORD)) else {
            return Err(self.out_of_bounds(self.number, pool::COUNT));
        };
        if index >= self.entries || given_back >= taken {
            return Err(SensorError::PoolOverflow {
                name: self.name,
                index,
                taken,
                given_back,
            });
        }
        let slot = give_back_slot(given_back, self.entries);
        if !self.ring.write(slot, u64::from(index)) {
            return Err(self.out_of_bounds(slot, self.ring.len()));
        }
        // After the slot: the program reads the count, then the slot.
        if !self
            .counts
            .store_word(self.number, GIVEN_BACK_WORD, given_back + 1)
        {
            return Err(self.out_of_bounds(self.number, pool::COUNT));
        }
        Ok(())
    }

    fn out_of_bounds(&self, index: u32, max_entries: u32) -> SensorError {
        SensorError::Map {
            name: self.name,
            source: MapError::OutOfBounds { index, max_entries },
        }
    }
}
