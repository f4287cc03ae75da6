use std::path::PathBuf;

use redb::{ReadableDatabase, ReadableTableMetadata};

use super::*;
use crate::behaviour::{self, delete, messages, msg, put, read, run};

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("beckon-store-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    fn db(&self) -> PathBuf {
        self.0.join("db.redb")
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn what_was_answered_survives_reopening() {
    let dir = TempDir::new("reopen");
    let mut s =
        behaviour::what_was_answered_survives_reopening(|| RedbStore::open(&dir.db()).unwrap());
    // Above every position stored (9 was refused, so it is free).
    assert_eq!(s.recover().unwrap().next_position, 9);
}

#[test]
fn limits_count_what_is_stored_and_deletes_free_room() {
    let dir = TempDir::new("limits");
    let mut s = RedbStore::open(&dir.db()).unwrap();
    behaviour::limits_count_what_is_stored_and_deletes_free_room(&mut s);
}

#[test]
fn batches_run_in_order() {
    let dir = TempDir::new("order");
    behaviour::batches_run_in_order(&mut RedbStore::open(&dir.db()).unwrap());
}

#[test]
fn restart_windows_are_read_once() {
    let dir = TempDir::new("windows");
    behaviour::restart_windows_are_read_once(|| RedbStore::open(&dir.db()).unwrap());
}

/// Batches of random operations: redb answers exactly as the memory store does, and so does
/// what it kept after a reopen.
#[test]
fn behaves_like_the_memory_store() {
    let dirs = std::cell::RefCell::new(Vec::new());
    behaviour::behaves_like_the_memory_store(
        32,
        || {
            let dir = TempDir::new("model");
            let s = RedbStore::open(&dir.db()).unwrap();
            dirs.borrow_mut().push(dir);
            s
        },
        |s| {
            drop(s);
            let dirs = dirs.borrow();
            RedbStore::open(&dirs.last().unwrap().db()).unwrap()
        },
        true,
    );
}

#[test]
fn a_message_acknowledged_in_the_transaction_that_stores_it_is_never_written() {
    let dir = TempDir::new("cancel");
    let mut s = RedbStore::open(&dir.db()).unwrap();
    let done = s.execute(vec![
        StoreBatch {
            id: 1,
            ops: vec![put("bob", 1, None), put("bob", 2, None)],
        },
        StoreBatch {
            id: 2,
            ops: vec![delete("bob", 1), read("bob", 0, 10)],
        },
    ]);
    assert_eq!(done.iter().map(|d| d.id).collect::<Vec<_>>(), [1, 2]);
    let second = done[1].answers.as_ref().unwrap();
    assert_eq!(messages(second[1].as_ref().unwrap()), (vec![2], false));
    let txn = s.db.begin_read().unwrap();
    assert_eq!(txn.open_table(OFFLINE).unwrap().len().unwrap(), 1);
    assert_eq!(
        txn.open_table(QUEUES)
            .unwrap()
            .get(("app", "bob"))
            .unwrap()
            .unwrap()
            .value()
            .0,
        1
    );
    drop(txn);
    // The position of a message never written is used all the same.
    run(&mut s, vec![put("bob", 3, None), delete("bob", 3)]);
    assert_eq!(s.recover().unwrap().next_position, 4);
}

/// A database from before positions were global: per-account positions from 0, no counts.
#[test]
fn an_older_database_is_brought_up_to_date() {
    let dir = TempDir::new("old");
    {
        let db = Database::create(dir.db()).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(OFFLINE).unwrap();
            for (account, n) in [("bob", 3u64), ("cid", 5)] {
                for p in 0..n {
                    t.insert(("app", account, p), encode(&msg(p)).as_slice())
                        .unwrap();
                }
            }
        }
        txn.commit().unwrap();
    }
    let mut s = RedbStore::open(&dir.db()).unwrap();
    // Positions moved up by one (0 reads as "none"); new ones follow.
    assert_eq!(s.recover().unwrap().next_position, 6);
    // cid holds 5: a limit of 5 refuses.
    let answers = run(
        &mut s,
        vec![
            put("cid", 6, Some(5)),
            put("bob", 7, Some(5)),
            read("bob", 0, 10),
        ],
    );
    assert_eq!(answers[0], StoreAnswer::Full);
    assert_eq!(messages(&answers[2]), (vec![1, 2, 3, 7], false));
    let StoreAnswer::Messages { messages: m, .. } = &answers[2] else {
        unreachable!()
    };
    assert_eq!(m[0].1, msg(0), "the oldest message, moved");
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
    let mut s = RedbStore::open(&dir.db()).unwrap();
    run(&mut s, vec![put("bob", 1, None)]);
    {
        let txn = s.db.begin_write().unwrap();
        txn.open_table(OFFLINE)
            .unwrap()
            .insert(("app", "bob", 2), [9u8, 9].as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    // The read fails on its own; the write beside it is kept.
    let mut done = s.execute(vec![StoreBatch {
        id: 7,
        ops: vec![read("bob", 0, 10), put("bob", 3, None)],
    }]);
    let answers = done.pop().unwrap().answers.unwrap();
    assert!(
        matches!(answers[0], Err(StoreError::Corrupt(_))),
        "{answers:?}"
    );
    assert!(matches!(answers[1], Ok(StoreAnswer::Done)));
    let txn = s.db.begin_read().unwrap();
    assert_eq!(txn.open_table(OFFLINE).unwrap().len().unwrap(), 3);
}
