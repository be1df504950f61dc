//! The sensor's blocklist map as the [`Kernel`] side of the blocklist.

use std::collections::HashMap;

use ipnet::IpNet;

use super::blocklist::Kernel;
use crate::sensor::Blocklist as Map;

impl Kernel for Map {
    fn insert(&mut self, net: IpNet) -> Result<(), String> {
        Map::insert(self, net)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn remove(&mut self, net: IpNet) -> Result<(), String> {
        Map::remove(self, net)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn counters(&self) -> Result<HashMap<IpNet, (u64, u64)>, String> {
        Ok(self
            .list()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|entry| (entry.cidr, (entry.stats.packets, entry.stats.bytes)))
            .collect())
    }
}
