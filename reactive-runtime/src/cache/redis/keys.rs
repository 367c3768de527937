//! The names of the store's Redis keys, and the index keys of a read set.

use std::collections::HashSet;

use super::{RedisStore, json};
use crate::types::{CacheKey, ReadSet};

impl RedisStore {
    pub(super) fn k(&self, suffix: &str) -> String {
        format!("{}{}", self.config.prefix, suffix)
    }
    pub(super) fn entry_key(&self, key: &CacheKey) -> String {
        self.k(&format!("e:{}", key.encode()))
    }
    pub(super) fn routing_key(&self, member: &str) -> String {
        self.k(&format!("r:{member}"))
    }
    pub(super) fn version_key(&self, table: &str) -> String {
        self.k(&format!("t:{table}"))
    }
    pub(super) fn whole_key(&self, table: &str) -> String {
        self.k(&format!("iw:{table}"))
    }
    pub(super) fn columns_key(&self, table: &str) -> String {
        self.k(&format!("ic:{table}"))
    }
    pub(super) fn column_key(&self, table: &str, column: &str) -> String {
        self.k(&format!("ia:{}", json(&(table, column))))
    }
    pub(super) fn value_key(&self, table: &str, column: &str, value: &str) -> String {
        self.k(&format!("iv:{}", json(&(table, column, value))))
    }

    /// The index keys an entry with `reads` is added to (besides `iall`), and
    /// `(columns key, column)` pairs.
    pub(super) fn index_keys(&self, reads: &ReadSet) -> (Vec<String>, Vec<(String, String)>) {
        let mut zsets = Vec::new();
        let mut columns = Vec::new();
        if reads.everything {
            zsets.push(self.k("ieverything"));
        }
        for (table, alts) in &reads.tables {
            for alt in alts {
                // Same choice as the in-process index: the column with fewest values.
                match alt
                    .columns
                    .iter()
                    .min_by_key(|(c, vs)| (vs.len(), c.as_str()))
                {
                    None => zsets.push(self.whole_key(table)),
                    Some((column, values)) => {
                        columns.push((self.columns_key(table), column.clone()));
                        zsets.push(self.column_key(table, column));
                        zsets.extend(
                            values
                                .iter()
                                .map(|v| self.value_key(table, column, v.as_str())),
                        );
                    }
                }
            }
        }
        let mut seen = HashSet::new();
        zsets.retain(|z| seen.insert(z.clone()));
        (zsets, columns)
    }
}
