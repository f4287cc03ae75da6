//! Durable storage for the Beckon broker.
//!
//! [`RedbStore`] implements the broker's synchronous [`Store`] trait on redb, an embedded,
//! crash-safe (copy-on-write B-tree, fsync on commit) key-value database in pure Rust. Every
//! write is one committed transaction, so a write the broker acknowledged survives `kill -9`.
//! It is not a cache and not shared between processes: one server owns one data directory.
//!
//! ```
//! use beckon_broker::Store;
//! use beckon_store::RedbStore;
//!
//! let dir = std::env::temp_dir().join(format!("beckon-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let mut store = RedbStore::open(&dir.join("beckon.redb")).unwrap();
//! store.set_user_attr("app", "alice", "color", Some("blue")).unwrap();
//! assert_eq!(store.user_attr("app", "alice", "color").unwrap().as_deref(), Some("blue"));
//! # drop(store); std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::fmt;
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use beckon_broker::{PushOutcome, Store, StoreError, StoredMessage};

/// (app, account, attribute name) → value.
const ATTRS: TableDefinition<'_, (&str, &str, &str), &str> = TableDefinition::new("user_attrs");
/// (app, account, position) → encoded [`StoredMessage`]; positions increase per account.
const OFFLINE: TableDefinition<'_, (&str, &str, u64), &[u8]> =
    TableDefinition::new("offline_messages");

/// The broker's store in a redb database file.
pub struct RedbStore {
    db: Database,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

fn err(e: impl fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

impl RedbStore {
    /// Opens (or creates) the database at `path`, creating its tables.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(err)?;
        let txn = db.begin_write().map_err(err)?;
        txn.open_table(ATTRS).map_err(err)?;
        txn.open_table(OFFLINE).map_err(err)?;
        txn.commit().map_err(err)?;
        Ok(Self { db })
    }
}

impl Store for RedbStore {
    fn user_attr(
        &self,
        app: &str,
        account: &str,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(ATTRS).map_err(err)?;
        Ok(table
            .get((app, account, name))
            .map_err(err)?
            .map(|v| v.value().to_owned()))
    }

    fn user_attrs(&self, app: &str, account: &str) -> Result<Vec<(String, String)>, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(ATTRS).map_err(err)?;
        let mut out = Vec::new();
        for entry in table.range((app, account, "")..).map_err(err)? {
            let (k, v) = entry.map_err(err)?;
            let (a, acc, name) = k.value();
            if a != app || acc != account {
                break;
            }
            out.push((name.to_owned(), v.value().to_owned()));
        }
        Ok(out)
    }

    fn set_user_attr(
        &mut self,
        app: &str,
        account: &str,
        name: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(err)?;
        {
            let mut table = txn.open_table(ATTRS).map_err(err)?;
            match value {
                Some(v) => {
                    table.insert((app, account, name), v).map_err(err)?;
                }
                None => {
                    table.remove((app, account, name)).map_err(err)?;
                }
            }
        }
        txn.commit().map_err(err)
    }

    fn user_attr_count(&self, app: &str, account: &str) -> Result<usize, StoreError> {
        Ok(self.user_attrs(app, account)?.len())
    }

    fn push_offline(
        &mut self,
        app: &str,
        account: &str,
        msg: StoredMessage,
        limit: Option<usize>,
    ) -> Result<PushOutcome, StoreError> {
        let txn = self.db.begin_write().map_err(err)?;
        {
            let mut table = txn.open_table(OFFLINE).map_err(err)?;
            let queue = (app, account, 0u64)..=(app, account, u64::MAX);
            // Counting stops at the limit, and a push without one (a session handing back
            // what it never had acknowledged, possibly thousands) counts nothing: each push
            // costs O(limit), not O(queue).
            if let Some(limit) = limit {
                let mut count = 0usize;
                for entry in table.range(queue.clone()).map_err(err)?.take(limit) {
                    entry.map_err(err)?;
                    count += 1;
                }
                if count >= limit {
                    return Ok(PushOutcome::Full);
                }
            }
            let last = match table.range(queue).map_err(err)?.next_back() {
                Some(entry) => Some(entry.map_err(err)?.0.value().2),
                None => None,
            };
            let pos = last.map_or(0, |p| p + 1);
            table
                .insert((app, account, pos), encode(&msg).as_slice())
                .map_err(err)?;
        }
        txn.commit().map_err(err)?;
        Ok(PushOutcome::Stored)
    }

    fn take_offline(&mut self, app: &str, account: &str) -> Result<Vec<StoredMessage>, StoreError> {
        let txn = self.db.begin_write().map_err(err)?;
        let mut out = Vec::new();
        {
            let mut table = txn.open_table(OFFLINE).map_err(err)?;
            let mut keys = Vec::new();
            for entry in table
                .range((app, account, 0u64)..=(app, account, u64::MAX))
                .map_err(err)?
            {
                let (k, v) = entry.map_err(err)?;
                keys.push(k.value().2);
                out.push(decode(v.value())?);
            }
            for pos in keys {
                table.remove((app, account, pos)).map_err(err)?;
            }
        }
        txn.commit().map_err(err)?;
        Ok(out)
    }
}

/// `server_msg_id u64 | sent_at_ms u64 | sender_len u32 | sender | msg`, big-endian.
fn encode(m: &StoredMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + m.sender.len() + m.msg.len());
    out.extend_from_slice(&m.server_msg_id.to_be_bytes());
    out.extend_from_slice(&m.sent_at_ms.to_be_bytes());
    let sender_len = u32::try_from(m.sender.len()).expect("accounts are at most 128 characters");
    out.extend_from_slice(&sender_len.to_be_bytes());
    out.extend_from_slice(m.sender.as_bytes());
    out.extend_from_slice(m.msg.as_bytes());
    out
}

fn decode(b: &[u8]) -> Result<StoredMessage, StoreError> {
    let corrupt = || StoreError("corrupt stored message".into());
    let id = b.get(0..8).ok_or_else(corrupt)?;
    let at = b.get(8..16).ok_or_else(corrupt)?;
    let len = b.get(16..20).ok_or_else(corrupt)?;
    let len = u32::from_be_bytes(len.try_into().map_err(|_| corrupt())?) as usize;
    let sender = b.get(20..20 + len).ok_or_else(corrupt)?;
    let msg = b.get(20 + len..).ok_or_else(corrupt)?;
    Ok(StoredMessage {
        server_msg_id: u64::from_be_bytes(id.try_into().map_err(|_| corrupt())?),
        sent_at_ms: u64::from_be_bytes(at.try_into().map_err(|_| corrupt())?),
        sender: String::from_utf8(sender.to_vec()).map_err(|_| corrupt())?,
        msg: String::from_utf8(msg.to_vec()).map_err(|_| corrupt())?,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use beckon_broker::MemoryStore;
    use proptest::prelude::*;

    use super::*;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p =
                std::env::temp_dir().join(format!("beckon-store-{tag}-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn msg(i: u64) -> StoredMessage {
        StoredMessage {
            sender: format!("s{i}"),
            msg: format!("body é {i}"),
            server_msg_id: i * 7,
            sent_at_ms: 1000 + i,
        }
    }

    #[test]
    fn survives_reopening() {
        let dir = TempDir::new("reopen");
        let path = dir.0.join("db.redb");
        {
            let mut s = RedbStore::open(&path).unwrap();
            s.set_user_attr("app", "alice", "a", Some("1")).unwrap();
            s.set_user_attr("app", "alice", "b", Some("2")).unwrap();
            s.set_user_attr("app", "alicia", "a", Some("x")).unwrap();
            s.set_user_attr("other", "alice", "a", Some("y")).unwrap();
            for i in 0..3 {
                assert_eq!(
                    s.push_offline("app", "bob", msg(i), Some(3)).unwrap(),
                    PushOutcome::Stored
                );
            }
            assert_eq!(
                s.push_offline("app", "bob", msg(9), Some(3)).unwrap(),
                PushOutcome::Full
            );
        }
        let mut s = RedbStore::open(&path).unwrap();
        assert_eq!(
            s.user_attrs("app", "alice").unwrap(),
            [
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "2".to_owned())
            ]
        );
        assert_eq!(s.user_attr_count("app", "alicia").unwrap(), 1);
        assert_eq!(
            s.take_offline("app", "bob").unwrap(),
            [msg(0), msg(1), msg(2)]
        );
        assert!(s.take_offline("app", "bob").unwrap().is_empty());
        assert!(decode(&[1, 2, 3]).is_err());
    }

    #[test]
    fn requeues_ignore_the_limit_and_keep_the_order() {
        let dir = TempDir::new("requeue");
        let mut s = RedbStore::open(&dir.0.join("db.redb")).unwrap();
        for i in 0..5 {
            assert_eq!(
                s.push_offline("app", "bob", msg(i), None).unwrap(),
                PushOutcome::Stored
            );
        }
        // A limited push counts the whole queue, requeued messages included.
        assert_eq!(
            s.push_offline("app", "bob", msg(9), Some(5)).unwrap(),
            PushOutcome::Full
        );
        assert_eq!(
            s.push_offline("app", "bob", msg(5), Some(6)).unwrap(),
            PushOutcome::Stored
        );
        assert_eq!(
            s.push_offline("app", "bob", msg(9), Some(0)).unwrap(),
            PushOutcome::Full
        );
        // Another account's queue, sorting right after this one, is not counted.
        s.push_offline("app", "bobby", msg(7), None).unwrap();
        assert_eq!(
            s.take_offline("app", "bob").unwrap(),
            (0..6).map(msg).collect::<Vec<_>>()
        );
        // Positions start over once the queue is empty.
        s.push_offline("app", "bob", msg(8), Some(1)).unwrap();
        assert_eq!(s.take_offline("app", "bob").unwrap(), [msg(8)]);
        assert_eq!(s.take_offline("app", "bobby").unwrap(), [msg(7)]);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Set(u8, u8, Option<u8>),
        Push(u8, u64, Option<usize>),
        Take(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..3u8, 0..3u8, proptest::option::of(0..3u8)).prop_map(|(a, n, v)| Op::Set(a, n, v)),
            (0..3u8, any::<u64>(), proptest::option::of(0..4usize))
                .prop_map(|(a, i, l)| Op::Push(a, i, l)),
            (0..3u8).prop_map(Op::Take),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
        #[test]
        fn behaves_like_the_memory_store(ops in proptest::collection::vec(op(), 1..30)) {
            let dir = TempDir::new("model");
            let mut real = RedbStore::open(&dir.0.join("db.redb")).unwrap();
            let mut model = MemoryStore::new();
            for op in ops {
                match op {
                    Op::Set(a, n, v) => {
                        let (acc, name, val) = (format!("u{a}"), format!("n{n}"), v.map(|v| format!("v{v}")));
                        real.set_user_attr("app", &acc, &name, val.as_deref()).unwrap();
                        model.set_user_attr("app", &acc, &name, val.as_deref()).unwrap();
                        prop_assert_eq!(real.user_attrs("app", &acc).unwrap(), model.user_attrs("app", &acc).unwrap());
                    }
                    Op::Push(a, i, l) => {
                        let acc = format!("u{a}");
                        prop_assert_eq!(real.push_offline("app", &acc, msg(i % 1000), l).unwrap(), model.push_offline("app", &acc, msg(i % 1000), l).unwrap());
                    }
                    Op::Take(a) => {
                        let acc = format!("u{a}");
                        prop_assert_eq!(real.take_offline("app", &acc).unwrap(), model.take_offline("app", &acc).unwrap());
                    }
                }
            }
        }
    }
}
