//! The kernel blocklist: source prefixes the XDP program drops, with what
//! each one dropped.

use std::{
    collections::BTreeMap,
    os::fd::{AsFd as _, OwnedFd},
};

use aya::{
    Ebpf,
    maps::{Array, IterableMap as _, LpmTrie, Map, MapData, MapError},
};
use ipnet::IpNet;
use nta_common::{
    BlockKey, BlockStats, IpKey,
    maps::{BLOCKLIST_MAX_ENTRIES, names},
};

use super::{SensorError, error::os_error};

/// `BPF_NOEXIST` from `linux/bpf.h`: insert only if the key is absent.
const BPF_NOEXIST: u64 = 1;

const NAME: &str = names::BLOCKLIST;

/// One blocklist entry and what it dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockEntry {
    pub cidr: IpNet,
    pub stats: BlockStats,
}

/// A handle on the loaded program's `BLOCKLIST` map.
///
/// Its own file descriptor for the map, so it can move to whichever task
/// blocks and unblocks while the [`Sensor`](super::Sensor) goes on reading
/// the counters. CIDRs are taken with host bits cleared
/// (`198.18.0.7/24` is `198.18.0.0/24`); callers should normalise them so
/// that what they store and show is what the kernel holds.
///
/// With each change it tells the program whether the trie holds anything
/// (`BLOCKLIST_ACTIVE`), so that packets skip the lookup while it is empty;
/// one handle at a time should change it, as the agent's one mitigation
/// task does.
pub struct Blocklist {
    trie: LpmTrie<MapData, IpKey, BlockStats>,
    active: Array<MapData, u32>,
}

/// A file descriptor of its own for `data`, so the handle made from it
/// can move to another task.
pub(super) fn own_fd(data: &MapData) -> Result<MapData, SensorError> {
    let fd: OwnedFd = data
        .fd()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| read_error(MapError::IoError(e)))?;
    MapData::from_fd(fd).map_err(read_error)
}

impl Blocklist {
    pub(super) fn open(ebpf: &Ebpf) -> Result<Self, SensorError> {
        let map = ebpf.map(NAME).ok_or(SensorError::MissingMap(NAME))?;
        // Checks the map type and the key and value sizes against ours.
        let shared: LpmTrie<&MapData, IpKey, BlockStats> =
            LpmTrie::try_from(map).map_err(read_error)?;
        let data = own_fd(shared.map())?;
        let trie = LpmTrie::try_from(Map::LpmTrie(data)).map_err(read_error)?;
        let name = names::BLOCKLIST_ACTIVE;
        let map = ebpf.map(name).ok_or(SensorError::MissingMap(name))?;
        let shared: Array<&MapData, u32> = Array::try_from(map).map_err(read_error)?;
        let data = own_fd(shared.map())?;
        let active = Array::try_from(Map::Array(data)).map_err(read_error)?;
        let mut blocklist = Self { trie, active };
        blocklist.tell_program()?;
        Ok(blocklist)
    }

    /// Tells the program whether the trie holds any entry.
    fn tell_program(&mut self) -> Result<(), SensorError> {
        let any = self.trie.keys().next().is_some();
        self.active
            .set(0, u32::from(any), 0)
            .map_err(|source| SensorError::Map {
                name: names::BLOCKLIST_ACTIVE,
                source,
            })
    }

    /// Blocks `cidr`: the program drops every IPv4 (for an IPv4 CIDR) or
    /// IPv6 packet whose source it covers. Returns false if it was already
    /// blocked, in which case its counters go on from where they were.
    pub fn insert(&mut self, cidr: IpNet) -> Result<bool, SensorError> {
        let (cidr, key) = kernel_key(cidr)?;
        // Kernels without upstream eae6a075e953 (6.13, December 2024
        // stable updates) ignore BPF_NOEXIST on an LPM trie and would
        // replace the entry, zeroing its counters: look first.
        if self.entry(key).map_err(read_error)?.is_some() {
            return Ok(false);
        }
        match self
            .trie
            .insert(&key.into(), BlockStats::for_net(&cidr), BPF_NOEXIST)
        {
            Ok(()) => self.tell_program().map(|()| true),
            Err(source) => match os_error(&source) {
                Some(libc::EEXIST) => Ok(false),
                Some(libc::ENOSPC) => Err(SensorError::BlocklistFull { cidr }),
                _ => Err(SensorError::Block { cidr, source }),
            },
        }
    }

    /// Unblocks `cidr` (exactly that prefix, not those inside or around
    /// it). Returns false if it was not blocked.
    pub fn remove(&mut self, cidr: IpNet) -> Result<bool, SensorError> {
        let (cidr, key) = kernel_key(cidr)?;
        match self.trie.remove(&key.into()) {
            Ok(()) => self.tell_program().map(|()| true),
            Err(source) => match os_error(&source) {
                Some(libc::ENOENT) => Ok(false),
                _ => Err(SensorError::Unblock { cidr, source }),
            },
        }
    }

    /// What `cidr` (exactly that prefix) has dropped, if it is blocked.
    pub fn get(&self, cidr: IpNet) -> Result<Option<BlockStats>, SensorError> {
        let (_, key) = kernel_key(cidr)?;
        self.entry(key).map_err(read_error)
    }

    /// Every entry with what it dropped, by address then prefix length
    /// (IPv4 first).
    pub fn list(&self) -> Result<Vec<BlockEntry>, SensorError> {
        let mut entries = BTreeMap::new();
        // Capped like the LRU walks: a key removed under the cursor makes
        // the kernel start again from the first.
        for item in self.trie.iter().take(BLOCKLIST_MAX_ENTRIES as usize) {
            let (key, stats) = item.map_err(read_error)?;
            let key = BlockKey::from(key);
            // Removed between the key and the read: the lookup then found
            // the prefix around it instead.
            if stats.prefix_len != key.prefix_len {
                continue;
            }
            entries.insert(IpNet::from(key), stats);
        }
        Ok(entries
            .into_iter()
            .map(|(cidr, stats)| BlockEntry { cidr, stats })
            .collect())
    }

    /// The entry stored under `key` itself. A lookup returns the longest
    /// prefix covering the key, which is this entry only if the prefix
    /// lengths agree.
    fn entry(&self, key: BlockKey) -> Result<Option<BlockStats>, MapError> {
        match self.trie.get(&key.into(), 0) {
            Ok(stats) if stats.prefix_len == key.prefix_len => Ok(Some(stats)),
            Ok(_) | Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// `cidr` with host bits cleared, and its trie key.
///
/// IPv4 is stored IPv4-mapped, so an IPv6 prefix inside `::ffff:0:0/96`
/// would be the same entry as an IPv4 one: refused, naming the IPv4 CIDR.
fn kernel_key(cidr: IpNet) -> Result<(IpNet, BlockKey), SensorError> {
    let cidr = cidr.trunc();
    let key = BlockKey::from(cidr);
    let stored = IpNet::from(key);
    if stored != cidr {
        return Err(SensorError::BlockIpv4Mapped { cidr, ipv4: stored });
    }
    Ok((cidr, key))
}

fn read_error(source: MapError) -> SensorError {
    SensorError::Map { name: NAME, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn keys_clear_host_bits() {
        let (cidr, key) = kernel_key(net("198.18.0.77/24")).unwrap();
        assert_eq!(cidr, net("198.18.0.0/24"));
        assert_eq!(key, BlockKey::from(net("198.18.0.0/24")));
        assert_eq!(kernel_key(net("::/0")).unwrap().1.prefix_len, 0);
    }

    #[test]
    fn ipv4_mapped_prefixes_are_refused_naming_the_ipv4_cidr() {
        let error = kernel_key(net("::ffff:198.18.0.9/120")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "::ffff:198.18.0.0/120 is an IPv4-mapped IPv6 prefix, which the kernel blocklist \
             keeps for IPv4 sources; block 198.18.0.0/24 instead"
        );
        // Shorter than /96 it is IPv6, even though it covers them.
        assert!(kernel_key(net("::ffff:0:0/95")).is_ok());
    }

    #[test]
    fn a_full_blocklist_names_the_cidr_and_the_size() {
        let error = SensorError::BlocklistFull {
            cidr: net("198.18.0.0/24"),
        };
        assert_eq!(
            error.to_string(),
            "the kernel blocklist is full (16384 entries): cannot block 198.18.0.0/24"
        );
    }

    #[test]
    fn the_handle_can_move_to_another_task() {
        fn send<T: Send + 'static>() {}
        send::<Blocklist>();
    }
}
