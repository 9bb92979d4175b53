//! The TSM's persistent state behind a small key-value trait ([`StateStore`]).
//!
//! Tables hold JSON-encoded records (tenants, vPods, windows, TDI states, grants, attestation
//! epochs, key-slot metadata). Key bytes are never stored: a restart re-provisions keys. The
//! trait is deliberately four operations on (table, key) so that a distributed backend (etcd)
//! can replace [`RedbStore`] without touching the rest of the TSM.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Result, TsmError};

/// The tables of the state store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// Tenants by id.
    Tenants,
    /// vPods by tenant id.
    Vpods,
    /// Memory windows by window id.
    Windows,
    /// TDI states by accelerator id.
    Tdis,
    /// Issued grants by grant id.
    Grants,
    /// Device attestation epochs by accelerator id.
    Epochs,
    /// Key-slot metadata (epoch, fingerprint) by slot name.
    KeySlots,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 7] = [
        Table::Tenants,
        Table::Vpods,
        Table::Windows,
        Table::Tdis,
        Table::Grants,
        Table::Epochs,
        Table::KeySlots,
    ];

    /// The table's stable name (also its redb table name).
    pub fn name(self) -> &'static str {
        match self {
            Table::Tenants => "tenants",
            Table::Vpods => "vpods",
            Table::Windows => "windows",
            Table::Tdis => "tdis",
            Table::Grants => "grants",
            Table::Epochs => "epochs",
            Table::KeySlots => "key_slots",
        }
    }
}

/// A durable key-value store of the TSM's state. Every `put`/`delete` is durable when it
/// returns.
pub trait StateStore: Send + Sync {
    /// The value under `key`, if any.
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>>;
    /// Stores `value` under `key` (replacing any previous value), durably.
    fn put(&self, table: Table, key: &str, value: &[u8]) -> Result<()>;
    /// Removes `key`; returns whether it existed.
    fn delete(&self, table: Table, key: &str) -> Result<bool>;
    /// Every (key, value) of `table`, in key order.
    fn list(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>>;
    /// Stores every (key, value) of `entries`, durably when it returns (a backend with
    /// transactions writes them as one; the default puts each).
    fn put_many(&self, table: Table, entries: &[(String, Vec<u8>)]) -> Result<()> {
        for (k, v) in entries {
            self.put(table, k, v)?;
        }
        Ok(())
    }
    /// Stores every (key, value) of every table in `writes`, durably when it returns (a
    /// backend with transactions writes them all as one; the default is one
    /// [`Self::put_many`] per table, in order).
    fn put_many_tables(&self, writes: &[(Table, Rows)]) -> Result<()> {
        for (table, entries) in writes {
            self.put_many(*table, entries)?;
        }
        Ok(())
    }
}

/// Encoded (key, value) rows of one table.
pub type Rows = Vec<(String, Vec<u8>)>;

/// Every (key, value) of `entries` with its value encoded as JSON, for [`StateStore::put_many`].
pub fn encode_json_many<T: Serialize>(table: Table, entries: &[(String, T)]) -> Result<Rows> {
    entries
        .iter()
        .map(|(k, v)| {
            serde_json::to_vec(v)
                .map(|b| (k.clone(), b))
                .map_err(|e| TsmError::Store(format!("encoding {} record: {e}", table.name())))
        })
        .collect()
}

/// Typed helpers over any [`StateStore`] (JSON records).
pub trait StateStoreExt: StateStore {
    /// Stores `value` as JSON.
    fn put_json<T: Serialize>(&self, table: Table, key: &str, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| TsmError::Store(format!("encoding {} record: {e}", table.name())))?;
        self.put(table, key, &bytes)
    }

    /// Stores every (key, value) as JSON in one [`StateStore::put_many`].
    fn put_json_many<T: Serialize>(&self, table: Table, entries: &[(String, T)]) -> Result<()> {
        self.put_many(table, &encode_json_many(table, entries)?)
    }

    /// Reads a JSON record.
    fn get_json<T: DeserializeOwned>(&self, table: Table, key: &str) -> Result<Option<T>> {
        self.get(table, key)?.map(|b| decode(table, &b)).transpose()
    }

    /// Every JSON record of `table`.
    fn list_json<T: DeserializeOwned>(&self, table: Table) -> Result<Vec<(String, T)>> {
        self.list(table)?
            .into_iter()
            .map(|(k, v)| Ok((k, decode(table, &v)?)))
            .collect()
    }
}

impl<S: StateStore + ?Sized> StateStoreExt for S {}

fn decode<T: DeserializeOwned>(table: Table, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| TsmError::Store(format!("decoding {} record: {e}", table.name())))
}

type MemTables = BTreeMap<(Table, String), Vec<u8>>;

/// An in-memory store (unit tests; a TSM that must not persist).
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: Mutex<MemTables>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, MemTables>> {
        self.tables
            .lock()
            .map_err(|_| TsmError::Store("memory store lock poisoned".into()))
    }
}

impl StateStore for MemoryStore {
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.lock()?.get(&(table, key.to_string())).cloned())
    }

    fn put(&self, table: Table, key: &str, value: &[u8]) -> Result<()> {
        self.lock()?
            .insert((table, key.to_string()), value.to_vec());
        Ok(())
    }

    fn delete(&self, table: Table, key: &str) -> Result<bool> {
        Ok(self.lock()?.remove(&(table, key.to_string())).is_some())
    }

    fn list(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(self
            .lock()?
            .iter()
            .filter(|((t, _), _)| *t == table)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
}

/// The redb-backed store (`STATE/state.redb`). Each write is its own durable transaction.
pub struct RedbStore {
    db: redb::Database,
}

impl core::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

fn def(table: Table) -> TableDefinition<'static, &'static str, &'static [u8]> {
    TableDefinition::new(table.name())
}

fn store_err(what: &'static str) -> impl Fn(redb::Error) -> TsmError {
    move |e| TsmError::Store(format!("{what}: {e}"))
}

impl RedbStore {
    /// Opens (or creates) the database at `path` and makes sure every table exists.
    pub fn open(path: &Path) -> Result<Self> {
        let db = redb::Database::create(path)
            .map_err(|e| store_err("opening the state database")(e.into()))?;
        let txn = db
            .begin_write()
            .map_err(|e| store_err("creating tables")(e.into()))?;
        for t in Table::ALL {
            txn.open_table(def(t))
                .map_err(|e| store_err("creating tables")(e.into()))?;
        }
        txn.commit()
            .map_err(|e| store_err("creating tables")(e.into()))?;
        Ok(Self { db })
    }
}

impl StateStore for RedbStore {
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>> {
        let e = store_err("reading state");
        let txn = self.db.begin_read().map_err(|x| e(x.into()))?;
        let t = txn.open_table(def(table)).map_err(|x| e(x.into()))?;
        let v = t.get(key).map_err(|x| e(x.into()))?;
        Ok(v.map(|g| g.value().to_vec()))
    }

    fn put(&self, table: Table, key: &str, value: &[u8]) -> Result<()> {
        let e = store_err("writing state");
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        {
            let mut t = txn.open_table(def(table)).map_err(|x| e(x.into()))?;
            t.insert(key, value).map_err(|x| e(x.into()))?;
        }
        txn.commit().map_err(|x| e(x.into()))
    }

    fn put_many(&self, table: Table, entries: &[(String, Vec<u8>)]) -> Result<()> {
        let e = store_err("writing state");
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        {
            let mut t = txn.open_table(def(table)).map_err(|x| e(x.into()))?;
            for (k, v) in entries {
                t.insert(k.as_str(), v.as_slice())
                    .map_err(|x| e(x.into()))?;
            }
        }
        txn.commit().map_err(|x| e(x.into()))
    }

    fn put_many_tables(&self, writes: &[(Table, Rows)]) -> Result<()> {
        let e = store_err("writing state");
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        for (table, entries) in writes {
            let mut t = txn.open_table(def(*table)).map_err(|x| e(x.into()))?;
            for (k, v) in entries {
                t.insert(k.as_str(), v.as_slice())
                    .map_err(|x| e(x.into()))?;
            }
        }
        txn.commit().map_err(|x| e(x.into()))
    }

    fn delete(&self, table: Table, key: &str) -> Result<bool> {
        let e = store_err("deleting state");
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        let existed = {
            let mut t = txn.open_table(def(table)).map_err(|x| e(x.into()))?;
            let old = t.remove(key).map_err(|x| e(x.into()))?;
            old.is_some()
        };
        txn.commit().map_err(|x| e(x.into()))?;
        Ok(existed)
    }

    fn list(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>> {
        let e = store_err("listing state");
        let txn = self.db.begin_read().map_err(|x| e(x.into()))?;
        let t = txn.open_table(def(table)).map_err(|x| e(x.into()))?;
        let mut out = Vec::new();
        for item in t.iter().map_err(|x| e(x.into()))? {
            let (k, v) = item.map_err(|x| e(x.into()))?;
            out.push((k.value().to_string(), v.value().to_vec()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn exercise(s: &dyn StateStore) {
        assert_eq!(s.get(Table::Tenants, "a").unwrap(), None);
        s.put(Table::Tenants, "b", b"2").unwrap();
        s.put(Table::Tenants, "a", b"1").unwrap();
        s.put(Table::Vpods, "a", b"other table").unwrap();
        assert_eq!(s.get(Table::Tenants, "a").unwrap().unwrap(), b"1");
        let l = s.list(Table::Tenants).unwrap();
        assert_eq!(
            l,
            vec![("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())]
        );
        s.put_many(
            Table::Grants,
            &[("x".into(), b"1".to_vec()), ("y".into(), b"2".to_vec())],
        )
        .unwrap();
        assert_eq!(s.list(Table::Grants).unwrap().len(), 2);
        s.put_many_tables(&[
            (
                Table::KeySlots,
                vec![("k1".into(), b"s1".to_vec()), ("k2".into(), b"s2".to_vec())],
            ),
            (Table::Epochs, vec![("x".into(), b"3".to_vec())]),
            (Table::Grants, vec![("x".into(), b"9".to_vec())]),
        ])
        .unwrap();
        assert_eq!(s.list(Table::KeySlots).unwrap().len(), 2);
        assert_eq!(s.get(Table::Epochs, "x").unwrap().unwrap(), b"3");
        // Replaced in place; the other grant stays.
        assert_eq!(s.get(Table::Grants, "x").unwrap().unwrap(), b"9");
        assert_eq!(s.list(Table::Grants).unwrap().len(), 2);
        assert!(s.delete(Table::Tenants, "a").unwrap());
        assert!(!s.delete(Table::Tenants, "a").unwrap());
        assert_eq!(s.list(Table::Tenants).unwrap().len(), 1);
        assert_eq!(s.list(Table::Vpods).unwrap().len(), 1);
    }

    #[test]
    fn memory_store_behaves_as_a_keyed_table_set() {
        exercise(&MemoryStore::new());
    }

    #[test]
    fn redb_store_behaves_the_same_and_persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        {
            let s = RedbStore::open(&path).unwrap();
            exercise(&s);
            s.put_json(Table::Epochs, "accel-0001", &7u64).unwrap();
        }
        let s = RedbStore::open(&path).unwrap();
        assert_eq!(
            s.get_json::<u64>(Table::Epochs, "accel-0001").unwrap(),
            Some(7)
        );
        assert_eq!(s.list(Table::Tenants).unwrap().len(), 1);
    }
}
