//! The layout of the program's keyed tables (flows, sources, destination
//! hosts): an array of entries, beside it an array of buckets of ways,
//! each way naming a key by its tag (a seeded hash) and the index of its
//! entry, and a pool that hands out free entries in order.
//!
//! Array entries, not hash-map ones: the verifier turns an array lookup
//! into a few instructions, where a hash map's costs a helper call and the
//! walk of a bucket's chain (about 30 ns a packet on the machine of
//! BENCHMARKS.md), and an LRU map's insert a pop from its free list under
//! a lock. The pool keeps what that free list did well: new keys' entries
//! come one after another in memory, so that a burst of them shares pages
//! and cache lines the last ones warmed, where an entry at the key's hash
//! was a cold page each (a new source cost about twice as much).

/// Ways in a bucket: the ways of one bucket fill one 64-byte cache line,
/// so looking a key up in it costs one miss.
pub const WAYS: u32 = 8;

/// Buckets in a group: the ways of a group fill a 4 KiB page, and a key's
/// two buckets are in one group, so that looking for a key that is not
/// there touches one page, not two. On the machine of BENCHMARKS.md this
/// measured no faster (the default tables' tags stay in the TLB); it costs
/// nothing, and a larger table may not.
pub const GROUP_BUCKETS: u32 = 64;

/// The ways of one bucket, a value of a table's tag array: each a
/// [`way`] word, 0 while free.
pub type BucketTags = [u64; WAYS as usize];

/// A table's layout: `buckets` × [`WAYS`] ways, and as many entries, an
/// array of them. A key lives in one of two buckets of one
/// group, picked by the two halves of its hash, whichever had more free
/// ways when it came (the power of two choices: a table half full turns
/// almost no key away, where the first bucket with room lost one in 3 000
/// at that load; a full one turns away about one in 20).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableLayout {
    /// A multiple of [`GROUP_BUCKETS`].
    pub buckets: u32,
}

impl TableLayout {
    /// The layout of a table of at least `entries` entries: whole groups,
    /// one at least (512 entries).
    pub const fn for_entries(entries: u32) -> Self {
        let per_group = GROUP_BUCKETS * WAYS;
        let groups = entries.div_ceil(per_group);
        Self {
            buckets: if groups == 0 { 1 } else { groups } * GROUP_BUCKETS,
        }
    }

    /// Entries in the table.
    pub const fn entries(&self) -> u32 {
        self.buckets * WAYS
    }

    /// The two buckets a key of hash `hash` may live in: the first from
    /// the high half (multiply and shift maps it onto `0..buckets` without
    /// a division), the second from the low half's low bits, in the
    /// first's group.
    #[inline(always)]
    pub fn candidates(&self, hash: u64) -> [u32; 2] {
        let first = (((hash >> 32) * u64::from(self.buckets)) >> 32) as u32;
        let group = first & !(GROUP_BUCKETS - 1);
        [first, group | (hash as u32 & (GROUP_BUCKETS - 1))]
    }
}

/// A key's tag: its hash folded to 32 bits, never 0. Two keys of one
/// bucket with one tag (one in 2^32) are told apart by the key kept in the
/// entry.
#[inline(always)]
pub const fn tag(hash: u64) -> u32 {
    let t = (hash ^ (hash >> 32)) as u32;
    if t == 0 { 1 } else { t }
}

/// A taken way's word: the key's tag in the high half, its entry's index in
/// the low one, so that one compare-and-swap takes the way and names the
/// entry, and a lookup finds both in the bucket's cache line. Never 0, the
/// word of a free way.
#[inline(always)]
pub const fn way(tag: u32, index: u32) -> u64 {
    (tag as u64) << 32 | index as u64
}

/// The tag of a way's word.
#[inline(always)]
pub const fn way_tag(word: u64) -> u32 {
    (word >> 32) as u32
}

/// The entry index of a way's word.
#[inline(always)]
pub const fn way_index(word: u64) -> u32 {
    word as u32
}

/// The tables' numbers in the pools' arrays.
pub mod pool {
    pub const SOURCES: u32 = 0;
    pub const DST_HOSTS: u32 = 1;
    pub const FLOWS: u32 = 2;
    /// Tables with a pool.
    pub const COUNT: u32 = 3;
}

/// The counts of a table's pool of free entries, a value of its own
/// mappable array: the program takes entries, the agent gives them back
/// once it has freed their ways, through a ring of indices of the table's
/// size. The `n`-th entry taken is entry `n` while `n` is below the
/// table's size (no ring to fill before the program runs), then the one the
/// agent gave back `n - size`-th, at ring slot `(n - size) % size`. The
/// agent never gives back more entries than were taken, so it never
/// overwrites a slot not yet taken from. Each count in a cache line of its
/// own: the CPUs write the first, the agent the second.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolCounts {
    /// Entries taken, by the program (compare-and-swap).
    pub taken: u64,
    _taken_line: [u64; 7],
    /// Entries given back, by the agent (one writer).
    pub given_back: u64,
    _given_back_line: [u64; 7],
}

/// Where the pool of a table of `entries` entries finds the entry it hands
/// out `taken`-th, having had `given_back` given back: the entry itself, a
/// ring slot to read it from, or none (every entry is out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolNext {
    Entry(u32),
    Slot(u32),
    Empty,
}

impl PoolNext {
    #[inline(always)]
    pub fn at(taken: u64, given_back: u64, entries: u32) -> Self {
        let size = u64::from(entries);
        if taken < size {
            Self::Entry(taken as u32)
        } else if taken - size < given_back {
            // Checked, though a table is never empty: a division the
            // program could not prove safe would not load.
            match (taken - size).checked_rem(size) {
                Some(slot) => Self::Slot(slot as u32),
                None => Self::Empty,
            }
        } else {
            Self::Empty
        }
    }
}

/// The ring slot the agent writes the entry it gives back `given_back`-th
/// into.
#[inline(always)]
pub const fn give_back_slot(given_back: u64, entries: u32) -> u32 {
    match given_back.checked_rem(entries as u64) {
        Some(slot) => slot as u32,
        None => 0,
    }
}

/// The seeded hash of a key's 8-byte words, by which the tables are
/// keyed. The seed is drawn at random when the program is loaded, so that
/// no one can choose keys whose hashes collide with another's; two that
/// still do are told apart by the key kept in the entry. Each word is
/// multiplied in, and the product's high half folded down: a
/// multiplication carries a difference only towards the high bits, where
/// the next word could cancel it (flow keys that differ in an address's
/// last byte and a port collided one time in 256 without the fold).
#[inline(always)]
pub fn hash_words<const N: usize>(words: &[u64; N], seed: u64) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = seed;
    for (i, w) in words.iter().enumerate() {
        h = (h ^ w).wrapping_mul(K);
        if i + 1 < N {
            h ^= h >> 32;
        }
    }
    // MurmurHash3's finaliser: every bit of the input moves every bit of
    // the output, as the bucket choice wants.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_whole_groups_and_a_key_s_buckets_share_one() {
        assert_eq!(TableLayout::for_entries(0).entries(), 512);
        assert_eq!(TableLayout::for_entries(1_024).entries(), 1_024);
        assert_eq!(TableLayout::for_entries(1_025).entries(), 1_536);
        let layout = TableLayout::for_entries(1_536);
        let mut first_of_group = [0u32; 3];
        let mut apart = 0;
        for i in 0..30_000u64 {
            let [a, b] = layout.candidates(hash_words(&[i, 80], 7));
            assert!(a < layout.buckets && b < layout.buckets, "{a} {b}");
            assert_eq!(a / GROUP_BUCKETS, b / GROUP_BUCKETS, "{i}: {a} {b}");
            first_of_group[(a / GROUP_BUCKETS) as usize] += 1;
            apart += u32::from(a != b);
        }
        // The groups share the keys evenly, and the two buckets are
        // nearly always two.
        for n in first_of_group {
            assert!((9_000..11_000).contains(&n), "{first_of_group:?}");
        }
        assert!(apart > 29_000, "{apart}");
    }

    #[test]
    fn no_tag_is_free_and_a_way_names_its_tag_and_entry() {
        assert_eq!(tag(0), 1);
        assert_eq!(tag(1 << 32 | 1), 1);
        assert_eq!(tag(5), 5);
        assert_eq!(tag(0xdead_0000_0000_0000), 0xdead_0000);
        let w = way(tag(0xabcd), 131_071);
        assert_ne!(w, 0);
        assert_eq!((way_tag(w), way_index(w)), (0xabcd, 131_071));
    }

    /// The pool as the program and the agent use it: every entry out once
    /// in order, then only what was given back, in the order given back.
    #[test]
    fn the_pool_hands_out_each_entry_once_then_what_came_back() {
        const SIZE: u32 = 4;
        let mut ring = [u32::MAX; SIZE as usize];
        let (mut taken, mut given_back) = (0u64, 0u64);
        let take = |taken: &mut u64, given_back: u64, ring: &[u32; 4]| {
            let index = match PoolNext::at(*taken, given_back, SIZE) {
                PoolNext::Entry(i) => i,
                PoolNext::Slot(s) => ring[s as usize],
                PoolNext::Empty => return None,
            };
            *taken += 1;
            Some(index)
        };
        let firsts = [(); 5].map(|_| take(&mut taken, given_back, &ring));
        assert_eq!(firsts, [Some(0), Some(1), Some(2), Some(3), None]);
        for index in [2, 0] {
            ring[give_back_slot(given_back, SIZE) as usize] = index;
            given_back += 1;
        }
        assert_eq!(take(&mut taken, given_back, &ring), Some(2));
        ring[give_back_slot(given_back, SIZE) as usize] = 3;
        given_back += 1;
        assert_eq!(take(&mut taken, given_back, &ring), Some(0));
        assert_eq!(take(&mut taken, given_back, &ring), Some(3));
        assert_eq!(take(&mut taken, given_back, &ring), None);
        // Round the ring more than once: slots are reused.
        for round in 0..3 {
            for index in [1, 3, 0] {
                ring[give_back_slot(given_back, SIZE) as usize] = index;
                given_back += 1;
            }
            let got = [(); 4].map(|_| take(&mut taken, given_back, &ring));
            assert_eq!(got, [Some(1), Some(3), Some(0), None], "round {round}");
        }
    }
}
