//! Blocklist entries, kept so that a restart restores them.

use ipnet::IpNet;
use redb::{ReadableTable, TableDefinition};

use super::{Store, StoreError};
use crate::block::Block;

/// CIDR text → the entry as JSON.
pub(super) const BLOCKS: TableDefinition<&str, &[u8]> = TableDefinition::new("blocks");

impl Store {
    /// Inserts or replaces an entry, durably.
    pub fn put_block(&self, block: &Block) -> Result<(), StoreError> {
        let json = serde_json::to_vec(block).map_err(|source| StoreError::CorruptBlock {
            path: self.path.clone(),
            cidr: block.cidr.to_string(),
            source,
        })?;
        let txn = self
            .db
            .begin_write()
            .map_err(self.db_err("writing blocks"))?;
        {
            let mut table = txn
                .open_table(BLOCKS)
                .map_err(self.db_err("writing blocks"))?;
            table
                .insert(block.cidr.to_string().as_str(), json.as_slice())
                .map_err(self.db_err("writing blocks"))?;
        }
        txn.commit().map_err(self.db_err("writing blocks"))
    }

    /// Removes an entry; whether there was one.
    pub fn delete_block(&self, cidr: &IpNet) -> Result<bool, StoreError> {
        let txn = self
            .db
            .begin_write()
            .map_err(self.db_err("removing blocks"))?;
        let removed = {
            let mut table = txn
                .open_table(BLOCKS)
                .map_err(self.db_err("removing blocks"))?;
            table
                .remove(cidr.to_string().as_str())
                .map_err(self.db_err("removing blocks"))?
                .is_some()
        };
        txn.commit().map_err(self.db_err("removing blocks"))?;
        Ok(removed)
    }

    /// Every entry.
    pub fn blocks(&self) -> Result<Vec<Block>, StoreError> {
        let table = self.read_table(BLOCKS, "reading blocks")?;
        let mut blocks = Vec::new();
        for row in table.iter().map_err(self.db_err("reading blocks"))? {
            let (cidr, json) = row.map_err(self.db_err("reading blocks"))?;
            let block = serde_json::from_slice(json.value()).map_err(|source| {
                StoreError::CorruptBlock {
                    path: self.path.clone(),
                    cidr: cidr.value().to_owned(),
                    source,
                }
            })?;
            blocks.push(block);
        }
        Ok(blocks)
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use crate::{
        block::{Origin, parse_cidr},
        store::tests::temp_store,
    };

    use super::*;

    #[test]
    fn blocks_are_kept_replaced_and_removed() {
        let (dir, store) = temp_store();
        let block = Block {
            cidr: parse_cidr("198.18.0.0/24").unwrap(),
            reason: "flood".into(),
            origin: Origin::Auto,
            alert_id: Some(7),
            created: Timestamp::UNIX_EPOCH,
            expires: None,
        };
        store.put_block(&block).unwrap();
        store
            .put_block(&Block {
                reason: "still a flood".into(),
                ..block.clone()
            })
            .unwrap();
        let v6 = Block {
            cidr: parse_cidr("2001:db8::/48").unwrap(),
            ..block.clone()
        };
        store.put_block(&v6).unwrap();
        let path = store.path().to_owned();
        drop(store);

        // After a restart.
        let store = crate::store::Store::open(&path).unwrap();
        let mut blocks = store.blocks().unwrap();
        blocks.sort_by_key(|b| b.cidr.to_string());
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].reason, "still a flood");
        assert!(store.delete_block(&block.cidr).unwrap());
        assert!(!store.delete_block(&block.cidr).unwrap());
        assert_eq!(store.blocks().unwrap(), [v6]);
        drop(dir);
    }
}
