//! The blocklist: entries in the kernel's map (where packets are dropped),
//! in the store (so that a restart restores them) and in memory (for
//! listing, expiry and the automatic cap).

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    net::IpAddr,
    sync::{Arc, Mutex},
};

use ipnet::IpNet;
use jiff::Timestamp;

use super::protect::{self, ApiClients};
use crate::{
    block::{Block, BlockView, Decision, InvalidBlock, Origin},
    store::{Store, StoreError},
};

/// The kernel side: the XDP program's blocklist map.
pub trait Kernel: Send + 'static {
    /// Adds `net`; an existing entry keeps its counters.
    fn insert(&mut self, net: IpNet) -> Result<(), String>;
    /// Removes `net` (absent is fine).
    fn remove(&mut self, net: IpNet) -> Result<(), String>;
    /// Packets and bytes dropped per entry since it was added.
    fn counters(&self) -> Result<HashMap<IpNet, (u64, u64)>, String>;
}

/// The blocklist as the API and the agent's loop share it.
pub type SharedBlocklist = Arc<Mutex<Blocklist>>;

/// Why an entry cannot be added or removed.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error(transparent)]
    Invalid(#[from] InvalidBlock),
    #[error("will not block {why}")]
    Protected { why: String },
    #[error("no block for {0}")]
    NotFound(IpNet),
    #[error("the kernel blocklist: {0}")]
    Kernel(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Automatic decisions kept for the API: the last hundred, enough to see
/// what a burst of incidents did.
const RECENT: usize = 100;

/// Addresses never blocked: loopback, the host's own, recent API clients,
/// and the configured allowlist.
#[derive(Debug, Default)]
pub struct Protected {
    pub allowlist: Vec<IpNet>,
    pub clients: Arc<ApiClients>,
}

impl Protected {
    /// Why `net` must not be blocked, if it must not.
    pub fn refusal(&self, net: &IpNet) -> Option<String> {
        protect::refusal(
            net,
            &self.allowlist,
            &protect::own_addresses(),
            &self.clients.all(),
        )
    }

    /// Notes the address of an API client.
    pub fn saw_client(&self, addr: IpAddr) {
        self.clients.saw(addr);
    }
}

pub struct Blocklist {
    kernel: Box<dyn Kernel>,
    store: Arc<Store>,
    entries: BTreeMap<IpNet, Block>,
    protected: Protected,
    decisions: VecDeque<Decision>,
}

impl Blocklist {
    /// Loads the stored entries into the kernel, dropping expired ones.
    /// Returns the blocklist and how many entries were restored.
    pub fn restore(
        mut kernel: Box<dyn Kernel>,
        store: Arc<Store>,
        protected: Protected,
        now: Timestamp,
    ) -> Result<(Self, usize), BlockError> {
        let mut entries = BTreeMap::new();
        for block in store.blocks()? {
            if block.expired(now) {
                store.delete_block(&block.cidr)?;
                continue;
            }
            kernel.insert(block.cidr).map_err(BlockError::Kernel)?;
            entries.insert(block.cidr, block);
        }
        let restored = entries.len();
        Ok((
            Blocklist {
                kernel,
                store,
                entries,
                protected,
                decisions: VecDeque::new(),
            },
            restored,
        ))
    }

    /// Adds or replaces an entry (a new reason or expiry; the kernel keeps
    /// its counters). Refuses protected networks. Returns whether it is new.
    pub fn add(&mut self, block: Block) -> Result<bool, BlockError> {
        if let Some(why) = self.protected.refusal(&block.cidr) {
            return Err(BlockError::Protected { why });
        }
        let new = !self.entries.contains_key(&block.cidr);
        self.kernel.insert(block.cidr).map_err(BlockError::Kernel)?;
        if let Err(error) = self.store.put_block(&block) {
            // Not kept, so not enforced either: a restart would silently
            // lift it.
            if new {
                let _ = self.kernel.remove(block.cidr);
            }
            return Err(error.into());
        }
        self.entries.insert(block.cidr, block);
        Ok(new)
    }

    /// Removes an entry; the packets from it pass again at once.
    pub fn remove(&mut self, cidr: &IpNet) -> Result<Block, BlockError> {
        let Some(block) = self.entries.get(cidr).cloned() else {
            return Err(BlockError::NotFound(*cidr));
        };
        self.kernel.remove(*cidr).map_err(BlockError::Kernel)?;
        self.entries.remove(cidr);
        self.store.delete_block(cidr)?;
        Ok(block)
    }

    /// Removes the entries whose time is up; returns them.
    pub fn expire(&mut self, now: Timestamp) -> Vec<Result<Block, BlockError>> {
        let due: Vec<IpNet> = self
            .entries
            .values()
            .filter(|b| b.expired(now))
            .map(|b| b.cidr)
            .collect();
        due.iter().map(|cidr| self.remove(cidr)).collect()
    }

    /// Every entry with its counters, most specific first within a family.
    pub fn list(&self) -> Result<Vec<BlockView>, BlockError> {
        let counters = self.kernel.counters().map_err(BlockError::Kernel)?;
        Ok(self
            .entries
            .values()
            .map(|block| {
                let (packets, bytes) = counters.get(&block.cidr).copied().unwrap_or((0, 0));
                BlockView {
                    block: block.clone(),
                    packets,
                    bytes,
                }
            })
            .collect())
    }

    pub fn contains(&self, cidr: &IpNet) -> bool {
        self.entries.contains_key(cidr)
    }

    /// Entries added automatically, for the cap.
    pub fn auto_entries(&self) -> usize {
        self.entries
            .values()
            .filter(|b| b.origin == Origin::Auto)
            .count()
    }

    pub fn protected(&self) -> &Protected {
        &self.protected
    }

    /// Records an automatic decision that did not block.
    pub fn note(&mut self, decision: Decision) {
        self.decisions.push_front(decision);
        self.decisions.truncate(RECENT);
    }

    /// Recent automatic decisions that did not block, newest first.
    pub fn decisions(&self) -> Vec<Decision> {
        self.decisions.iter().cloned().collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::{block::parse_cidr, store::tests::temp_store};

    pub(crate) use crate::mitigate::memory::MemoryKernel as FakeKernel;

    pub(crate) fn block(cidr: &str, expires: Option<Timestamp>) -> Block {
        Block {
            cidr: parse_cidr(cidr).unwrap(),
            reason: "test".into(),
            origin: Origin::Manual,
            alert_id: None,
            created: Timestamp::UNIX_EPOCH,
            expires,
        }
    }

    /// What an agent starting at `now` restores from `store` into `kernel`,
    /// nothing protected: the list and how many entries it restored.
    fn restore(kernel: &FakeKernel, store: &Arc<Store>, now: Timestamp) -> (Blocklist, usize) {
        Blocklist::restore(
            Box::new(kernel.clone()),
            store.clone(),
            Protected::default(),
            now,
        )
        .unwrap()
    }

    /// A first start at `now`: a blocklist over an empty store and kernel map.
    fn started(now: Timestamp) -> (tempfile::TempDir, Arc<Store>, FakeKernel, Blocklist) {
        let (dir, store) = temp_store();
        let store = Arc::new(store);
        let kernel = FakeKernel::default();
        let (list, restored) = restore(&kernel, &store, now);
        assert_eq!(restored, 0);
        (dir, store, kernel, list)
    }

    #[test]
    fn entries_reach_the_kernel_and_the_store_and_come_back_after_a_restart() {
        let now: Timestamp = "2026-11-25T10:00:00Z".parse().unwrap();
        let (_dir, store, kernel, mut list) = started(now);
        assert!(list.add(block("198.18.0.2", None)).unwrap());
        let soon = now + SignedDuration::from_secs(60);
        assert!(list.add(block("2001:db8::/48", Some(soon))).unwrap());
        // Replacing keeps the kernel entry (and so its counters).
        kernel.set_dropped(parse_cidr("198.18.0.2").unwrap(), 5, 300);
        assert!(!list.add(block("198.18.0.2", Some(soon))).unwrap());
        let views = list.list().unwrap();
        assert_eq!(views.len(), 2);
        assert_eq!((views[0].packets, views[0].bytes), (5, 300));

        // A new agent, a new (empty) kernel map: both restored.
        let fresh = FakeKernel::default();
        let (list, restored) = restore(&fresh, &store, now);
        assert_eq!(restored, 2);
        assert_eq!(fresh.entries().len(), 2);
        drop(list);

        // After their expiry, a restart drops them from the store too.
        let later = soon + SignedDuration::from_secs(1);
        let (_, restored) = restore(&FakeKernel::default(), &store, later);
        assert_eq!(restored, 0);
        assert!(store.blocks().unwrap().is_empty());
    }

    #[test]
    fn expiry_removes_from_kernel_and_store() {
        let now: Timestamp = "2026-11-25T10:00:00Z".parse().unwrap();
        let (_dir, store, kernel, mut list) = started(now);
        let soon = now + SignedDuration::from_secs(10);
        list.add(block("198.18.0.2", Some(soon))).unwrap();
        list.add(block("198.18.0.3", None)).unwrap();
        assert!(list.expire(now).is_empty());
        let expired = list.expire(soon);
        assert_eq!(expired.len(), 1);
        assert_eq!(
            expired[0].as_ref().unwrap().cidr.to_string(),
            "198.18.0.2/32"
        );
        assert_eq!(kernel.entries().len(), 1);
        assert_eq!(store.blocks().unwrap().len(), 1);
    }

    #[test]
    fn protected_networks_and_unknown_entries_are_refused() {
        let (_dir, store) = temp_store();
        let protected = Protected {
            allowlist: vec![parse_cidr("192.0.2.0/24").unwrap()],
            ..Protected::default()
        };
        protected.saw_client("203.0.113.7".parse().unwrap());
        let kernel = FakeKernel::default();
        let (mut list, _) = Blocklist::restore(
            Box::new(kernel.clone()),
            Arc::new(store),
            protected,
            Timestamp::UNIX_EPOCH,
        )
        .unwrap();
        for cidr in ["127.0.0.1", "192.0.2.9", "203.0.113.0/24"] {
            let err = list.add(block(cidr, None)).unwrap_err();
            assert!(matches!(err, BlockError::Protected { .. }), "{cidr}: {err}");
        }
        assert!(kernel.entries().is_empty());
        let err = list.remove(&parse_cidr("198.18.0.9").unwrap()).unwrap_err();
        assert_eq!(err.to_string(), "no block for 198.18.0.9/32");
    }
}
