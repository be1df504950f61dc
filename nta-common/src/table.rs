//! The layout of the program's keyed tables (flows, sources, destination
//! hosts): an array of entries in buckets of ways, and beside it an array
//! of each bucket's tags, the seeded hashes of the keys its ways hold.
//!
//! Array entries, not hash-map ones: the verifier turns an array lookup
//! into a few instructions, where a hash map's costs a helper call and the
//! walk of a bucket's chain (about 30 ns a packet on the machine of
//! BENCHMARKS.md), and an LRU map's insert a pop from its free list under
//! a lock.

/// Entries in a bucket: the tags of one bucket fill one 64-byte cache
/// line, so looking a key up in it costs one miss.
pub const WAYS: u32 = 8;

/// Buckets in a group: the tags of a group fill a 4 KiB page, and a key's
/// two buckets are in one group, so that looking for a key that is not
/// there touches one page, not two. On the machine of BENCHMARKS.md this
/// measured no faster (the default tables' tags stay in the TLB); it costs
/// nothing, and a larger table may not.
pub const GROUP_BUCKETS: u32 = 64;

/// The tags of one bucket: a value of a table's tag array.
pub type BucketTags = [u64; WAYS as usize];

/// A table's layout: its entries are an array of `buckets` × [`WAYS`], its
/// tags one of `buckets` [`BucketTags`]; the entry of way `w` of bucket `b`
/// is at index `b * WAYS + w`. A key lives in one of two buckets of one
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

/// A key's tag: its hash, never 0, which marks a free way.
#[inline(always)]
pub const fn tag(hash: u64) -> u64 {
    if hash == 0 { 1 } else { hash }
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
    fn no_tag_is_free() {
        assert_eq!(tag(0), 1);
        assert_eq!(tag(5), 5);
    }
}
