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

use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};

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

/// Whether a write transaction's changes are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Commit,
    /// Nothing changed: the transaction is dropped, which costs no commit.
    Abort,
}

/// A redb failure as the broker's error: I/O and corruption by their kind, the rest as a
/// failed read or write (`kind`).
fn classify(e: redb::Error, kind: fn(redb::Error) -> StoreError) -> StoreError {
    match e {
        redb::Error::Io(e) => StoreError::Io(e),
        redb::Error::Corrupted(what) => StoreError::Corrupt(what),
        e => kind(e),
    }
}

impl RedbStore {
    /// Opens (or creates) the database at `path`, creating its tables.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open = || -> Result<Database, redb::Error> {
            let db = Database::create(path)?;
            let txn = db.begin_write()?;
            txn.open_table(ATTRS)?;
            txn.open_table(OFFLINE)?;
            txn.commit()?;
            Ok(db)
        };
        let db = open().map_err(|e| StoreError::Open {
            path: path.to_owned(),
            source: e.into(),
        })?;
        Ok(Self { db })
    }

    /// Runs `f` in a read transaction.
    fn read<T>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, redb::Error>,
    ) -> Result<T, StoreError> {
        let run = || f(&self.db.begin_read()?);
        run().map_err(|e| classify(e, StoreError::read))
    }

    /// Runs `f` in a write transaction, committed (and synced) before this returns when `f`
    /// says so.
    fn write<T>(
        &mut self,
        f: impl FnOnce(&WriteTransaction) -> Result<(T, Outcome), redb::Error>,
    ) -> Result<T, StoreError> {
        let run = || {
            let txn = self.db.begin_write()?;
            let (out, outcome) = f(&txn)?;
            if outcome == Outcome::Commit {
                txn.commit()?;
            }
            Ok(out)
        };
        run().map_err(|e| classify(e, StoreError::write))
    }
}

impl Store for RedbStore {
    fn user_attr(
        &self,
        app: &str,
        account: &str,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(ATTRS)?;
            Ok(table
                .get((app, account, name))?
                .map(|v| v.value().to_owned()))
        })
    }

    fn user_attrs(&self, app: &str, account: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(ATTRS)?;
            let mut out = Vec::new();
            for entry in table.range((app, account, "")..)? {
                let (k, v) = entry?;
                let (a, acc, name) = k.value();
                if a != app || acc != account {
                    break;
                }
                out.push((name.to_owned(), v.value().to_owned()));
            }
            Ok(out)
        })
    }

    fn set_user_attr(
        &mut self,
        app: &str,
        account: &str,
        name: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut table = txn.open_table(ATTRS)?;
            match value {
                Some(v) => table.insert((app, account, name), v)?,
                None => table.remove((app, account, name))?,
            };
            Ok(((), Outcome::Commit))
        })
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
        self.write(|txn| {
            let mut table = txn.open_table(OFFLINE)?;
            let queue = (app, account, 0u64)..=(app, account, u64::MAX);
            // Counting stops at the limit, and a push without one (a session handing back
            // what it never had acknowledged, possibly thousands) counts nothing: each push
            // costs O(limit), not O(queue).
            if let Some(limit) = limit {
                let mut count = 0usize;
                for entry in table.range(queue.clone())?.take(limit) {
                    entry?;
                    count += 1;
                }
                if count >= limit {
                    return Ok((PushOutcome::Full, Outcome::Abort));
                }
            }
            let last = match table.range(queue)?.next_back() {
                Some(entry) => Some(entry?.0.value().2),
                None => None,
            };
            let pos = last.map_or(0, |p| p + 1);
            table.insert((app, account, pos), encode(&msg).as_slice())?;
            Ok((PushOutcome::Stored, Outcome::Commit))
        })
    }

    fn take_offline(&mut self, app: &str, account: &str) -> Result<Vec<StoredMessage>, StoreError> {
        self.write(|txn| {
            let mut table = txn.open_table(OFFLINE)?;
            let mut out = Vec::new();
            let mut keys = Vec::new();
            for entry in table.range((app, account, 0u64)..=(app, account, u64::MAX))? {
                let (k, v) = entry?;
                keys.push(k.value().2);
                // A record that does not decode aborts the whole take: nothing is removed.
                out.push(decode(v.value())?);
            }
            for pos in keys {
                table.remove((app, account, pos))?;
            }
            Ok((out, Outcome::Commit))
        })
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

fn decode(b: &[u8]) -> Result<StoredMessage, redb::Error> {
    let parse = || -> Option<StoredMessage> {
        let len = u32::from_be_bytes(b.get(16..20)?.try_into().ok()?) as usize;
        Some(StoredMessage {
            server_msg_id: u64::from_be_bytes(b.get(0..8)?.try_into().ok()?),
            sent_at_ms: u64::from_be_bytes(b.get(8..16)?.try_into().ok()?),
            sender: String::from_utf8(b.get(20..20 + len)?.to_vec()).ok()?,
            msg: String::from_utf8(b.get(20 + len..)?.to_vec()).ok()?,
        })
    };
    parse().ok_or_else(|| redb::Error::Corrupted("an offline message does not decode".into()))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use beckon_broker::MemoryStore;
    use proptest::prelude::*;
    use redb::ReadableTableMetadata;

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

    #[test]
    fn failures_say_what_failed() {
        let dir = TempDir::new("failures");
        let missing = dir.0.join("no-such-dir").join("db.redb");
        match RedbStore::open(&missing) {
            Err(e @ StoreError::Open { .. }) => {
                assert!(e.to_string().contains("no-such-dir"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        let mut s = RedbStore::open(&dir.0.join("db.redb")).unwrap();
        s.push_offline("app", "bob", msg(1), None).unwrap();
        {
            let txn = s.db.begin_write().unwrap();
            txn.open_table(OFFLINE)
                .unwrap()
                .insert(("app", "bob", 1), [9u8, 9].as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
        assert!(matches!(
            s.take_offline("app", "bob"),
            Err(StoreError::Corrupt(_))
        ));
        // The take was not committed: the readable message is still there.
        let txn = s.db.begin_read().unwrap();
        assert_eq!(txn.open_table(OFFLINE).unwrap().len().unwrap(), 2);
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
