//! A blocklist kept in memory only: for an agent with no XDP program to
//! drop in (reading a capture, tests, fuzzing), where entries are decided,
//! stored and served but drop nothing.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use ipnet::IpNet;

use super::blocklist::Kernel;

/// Entries in a map shared by its clones, so that a test keeps one to look
/// at what the blocklist put in.
#[derive(Debug, Clone, Default)]
pub struct MemoryKernel {
    entries: Arc<Mutex<HashMap<IpNet, (u64, u64)>>>,
}

impl MemoryKernel {
    /// The prefixes in the map now.
    pub fn entries(&self) -> Vec<IpNet> {
        let mut nets: Vec<IpNet> = self.lock().keys().copied().collect();
        nets.sort();
        nets
    }

    /// Sets what `net` dropped, as an XDP program counting would (tests).
    pub fn set_dropped(&self, net: IpNet, packets: u64, bytes: u64) {
        self.lock().insert(net, (packets, bytes));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpNet, (u64, u64)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Kernel for MemoryKernel {
    fn insert(&mut self, net: IpNet) -> Result<(), String> {
        self.lock().entry(net).or_default();
        Ok(())
    }

    fn remove(&mut self, net: IpNet) -> Result<(), String> {
        self.lock().remove(&net);
        Ok(())
    }

    /// Nothing drops in memory: the counts stay zero unless set.
    fn counters(&self) -> Result<HashMap<IpNet, (u64, u64)>, String> {
        Ok(self.lock().clone())
    }
}
