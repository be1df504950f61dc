//! Where a key lands in the fixed-size sketches the counters keep: the
//! per-source port and host bitmaps (linear counting) and the
//! per-destination source registers (HyperLogLog). The estimators that
//! read them back live in the agent; the hashing is here so both packet
//! sources fill the sketches identically.

use crate::maps::IpKey;

/// Words in a linear-counting bitmap.
pub const BITMAP_WORDS: usize = 8;
/// Bits in a linear-counting bitmap: 512, so 64 bytes per sketch, enough
/// to estimate up to ~3 000 distinct values within a few percent.
pub const BITMAP_BITS: u32 = (BITMAP_WORDS * 64) as u32;

/// HyperLogLog registers per destination: 128 one-byte registers estimate
/// any number of distinct sources within about 9 % (1.04/√128).
pub const HLL_REGISTERS: usize = 128;
/// Bits of the hash that pick the register.
pub const HLL_INDEX_BITS: u32 = 7;

/// MurmurHash3's 64-bit finaliser: every input bit flips each output bit
/// with probability one half, so sequential ports and addresses (what
/// scanners and spoofing tools send) land as if at random and the
/// estimators' error bounds hold.
#[inline(always)]
pub const fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// A 64-bit hash of an address.
#[inline(always)]
pub const fn addr_hash(key: &IpKey) -> u64 {
    let a = key.addr;
    let hi = u64::from_be_bytes([a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]]);
    let lo = u64::from_be_bytes([a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]]);
    mix64(lo ^ mix64(hi))
}

/// Bit of a port bitmap that destination port `port` sets.
#[inline(always)]
pub const fn port_bit(port: u16) -> u32 {
    (mix64(port as u64) >> (64 - 9)) as u32
}

/// Bit of a host bitmap that destination `key` sets.
#[inline(always)]
pub const fn host_bit(key: &IpKey) -> u32 {
    (addr_hash(key) >> (64 - 9)) as u32
}

/// The word and mask of `bit` in a bitmap.
#[inline(always)]
pub const fn bitmap_slot(bit: u32) -> (usize, u64) {
    ((bit >> 6) as usize & (BITMAP_WORDS - 1), 1u64 << (bit & 63))
}

/// The HyperLogLog register a source updates and the rank it offers
/// (position of the first set bit after the index bits, 1..=58): the
/// register keeps the largest rank it is offered.
#[inline(always)]
pub const fn hll_slot(source: &IpKey) -> (usize, u8) {
    let (index, rest) = hll_hash(source);
    (index, hll_rank(rest))
}

/// The HyperLogLog register a source updates, and the rest of its hash,
/// whose leading zeros give the rank it offers ([`hll_rank`]).
#[inline(always)]
pub const fn hll_hash(source: &IpKey) -> (usize, u64) {
    hll_split(addr_hash(source))
}

/// [`hll_hash`] of a source whose [`addr_hash`] is `h`.
#[inline(always)]
pub const fn hll_split(h: u64) -> (usize, u64) {
    let index = (h >> (64 - HLL_INDEX_BITS)) as usize;
    // A sentinel bit bounds the rank when the rest of the hash is zero.
    let rest = (h << HLL_INDEX_BITS) | (1 << (HLL_INDEX_BITS - 1));
    (index & (HLL_REGISTERS - 1), rest)
}

/// The rank `rest` offers: the position of its first set bit.
#[inline(always)]
pub const fn hll_rank(rest: u64) -> u8 {
    rest.leading_zeros() as u8 + 1
}

/// Whether `rest` offers a rank above `register`, i.e. its first
/// `register` bits are zero: one shift, where counting the leading zeros
/// takes BPF some 40 instructions (it has no such instruction). Once the
/// registers have filled, almost no packet raises one.
#[inline(always)]
pub const fn hll_raises(register: u8, rest: u64) -> bool {
    register == 0 || (register < 64 && rest >> (64 - register as u32) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_ports_spread_like_random_ones() {
        // 100 random values in 512 bits collide ~9 times on average; a
        // range must not do much better or worse, or the estimate is biased.
        let mut seen = [false; BITMAP_BITS as usize];
        let mut bits = 0;
        for port in 1..=100u16 {
            let b = port_bit(port) as usize;
            if !seen[b] {
                seen[b] = true;
                bits += 1;
            }
        }
        assert!((85..=98).contains(&bits), "{bits}");
    }

    #[test]
    fn ranks_are_bounded_and_indices_in_range() {
        for i in 0..10_000u32 {
            let (index, rank) = hll_slot(&IpKey::from_v4(i.to_be_bytes()));
            assert!(index < HLL_REGISTERS);
            assert!((1..=58).contains(&rank), "{rank}");
        }
    }

    #[test]
    fn a_rest_raises_a_register_exactly_when_its_rank_is_above_it() {
        let mut rest = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..20_000u64 {
            // Every rank, from hashes with ever more leading zeros.
            rest = mix64(rest ^ i);
            let shifted = (rest >> (i % 64)) | (1 << (HLL_INDEX_BITS - 1));
            for register in 0..=u8::MAX {
                assert_eq!(
                    hll_raises(register, shifted),
                    hll_rank(shifted) > register,
                    "register {register}, rest {shifted:#x}"
                );
            }
        }
    }

    #[test]
    fn ipv4_and_ipv6_hosts_hash_apart() {
        let v4 = IpKey::from_v4([198, 18, 0, 1]);
        let mut v6 = v4;
        v6.addr[10] = 0;
        v6.addr[11] = 0;
        assert_ne!(addr_hash(&v4), addr_hash(&v6));
    }
}
