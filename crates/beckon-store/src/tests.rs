use std::path::PathBuf;

use beckon_broker::MemoryStore;
use proptest::prelude::*;
use redb::{ReadableDatabase, ReadableTableMetadata};

use super::*;

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

fn msg(i: u64) -> StoredMessage {
    StoredMessage {
        sender: format!("s{i}"),
        msg: format!("body é {i}"),
        server_msg_id: i * 7,
        sent_at_ms: 1000 + i,
    }
}

fn put(account: &str, position: u64, limit: Option<usize>) -> StoreOp {
    StoreOp::PutMessage {
        app: "app".into(),
        account: account.into(),
        position,
        message: msg(position),
        limit: limit.map(|messages| QueueLimit {
            messages,
            bytes: usize::MAX,
        }),
    }
}

fn delete(account: &str, position: u64) -> StoreOp {
    StoreOp::DeleteMessage {
        app: "app".into(),
        account: account.into(),
        position,
    }
}

fn read(account: &str, after: u64, max_count: usize) -> StoreOp {
    StoreOp::Messages {
        app: "app".into(),
        account: account.into(),
        after,
        max_count,
        max_bytes: usize::MAX,
    }
}

fn set(account: &str, name: &str, value: Option<&str>) -> StoreOp {
    StoreOp::SetAttr {
        app: "app".into(),
        account: account.into(),
        name: name.into(),
        value: value.map(str::to_owned),
        max_attrs: 3,
    }
}

/// Runs `ops` as one batch; every answer must be a success.
fn run(s: &mut impl Store, ops: Vec<StoreOp>) -> Vec<StoreAnswer> {
    let mut done = s.execute(vec![StoreBatch { id: 1, ops }]);
    let answers = done.pop().unwrap().answers.expect("the batch commits");
    answers.into_iter().map(|a| a.expect("an answer")).collect()
}

fn messages(answer: &StoreAnswer) -> (Vec<u64>, bool) {
    match answer {
        StoreAnswer::Messages { messages, more } => {
            (messages.iter().map(|(p, _)| *p).collect(), *more)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn what_was_answered_survives_reopening() {
    let dir = TempDir::new("reopen");
    {
        let mut s = RedbStore::open(&dir.db()).unwrap();
        let answers = run(
            &mut s,
            vec![
                set("alice", "a", Some("1")),
                set("alice", "b", Some("2")),
                set("alicia", "a", Some("x")),
                put("bob", 3, Some(3)),
                put("bob", 5, Some(3)),
                put("bob", 8, Some(3)),
                put("bob", 9, Some(3)),
                put("bobby", 4, None),
            ],
        );
        assert_eq!(
            answers[6],
            StoreAnswer::Full,
            "the fourth is over the limit"
        );
    }
    let mut s = RedbStore::open(&dir.db()).unwrap();
    let answers = run(
        &mut s,
        vec![
            StoreOp::Attrs {
                app: "app".into(),
                account: "alice".into(),
            },
            read("bob", 0, 10),
            read("bob", 3, 1),
        ],
    );
    assert_eq!(
        answers[0],
        StoreAnswer::Attrs(vec![("a".into(), "1".into()), ("b".into(), "2".into())])
    );
    assert_eq!(messages(&answers[1]), (vec![3, 5, 8], false));
    assert_eq!(messages(&answers[2]), (vec![5], true));
    let StoreAnswer::Messages { messages: m, .. } = &answers[1] else {
        unreachable!()
    };
    assert_eq!(m[0].1, msg(3));
    // Above every position stored (9 was refused, so it is free).
    assert_eq!(s.recover().unwrap().next_position, 9);
}

#[test]
fn limits_count_what_is_stored_and_deletes_free_room() {
    let dir = TempDir::new("limits");
    let mut s = RedbStore::open(&dir.db()).unwrap();
    let answers = run(
        &mut s,
        vec![
            put("bob", 1, None),
            put("bob", 2, None),
            put("bob", 3, Some(2)),
        ],
    );
    assert_eq!(answers[2], StoreAnswer::Full);
    let answers = run(
        &mut s,
        vec![delete("bob", 1), delete("bob", 77), put("bob", 3, Some(2))],
    );
    assert_eq!(
        answers,
        [StoreAnswer::Done, StoreAnswer::Done, StoreAnswer::Done]
    );
    // A byte limit counts the sender and the body.
    let tight = StoreOp::PutMessage {
        app: "app".into(),
        account: "bob".into(),
        position: 4,
        message: msg(4),
        limit: Some(QueueLimit {
            messages: 100,
            bytes: 2 * msg(2).size() + msg(4).size() - 1,
        }),
    };
    assert_eq!(run(&mut s, vec![tight]), [StoreAnswer::Full]);
    // The attribute limit (3) holds for new names, not for rewrites or deletes.
    let answers = run(
        &mut s,
        vec![
            set("al", "a", Some("1")),
            set("al", "b", Some("1")),
            set("al", "c", Some("1")),
            set("al", "d", Some("1")),
            set("al", "c", Some("2")),
            set("al", "a", None),
            set("al", "d", Some("1")),
        ],
    );
    assert_eq!(answers[3], StoreAnswer::Full);
    assert!(
        answers
            .iter()
            .enumerate()
            .all(|(i, a)| i == 3 || *a == StoreAnswer::Done)
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
}

#[test]
fn restart_windows_are_read_once() {
    let dir = TempDir::new("windows");
    let mut s = RedbStore::open(&dir.db()).unwrap();
    let window = StoreOp::Window {
        app: "app".into(),
        account: "bob".into(),
        until_ms: 1234,
    };
    run(&mut s, vec![window]);
    drop(s);
    let mut s = RedbStore::open(&dir.db()).unwrap();
    let r = s.recover().unwrap();
    assert_eq!(r.windows, [("app".to_owned(), "bob".to_owned(), 1234)]);
    assert!(s.recover().unwrap().windows.is_empty());
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

#[derive(Clone, Debug)]
enum Op {
    Set(u8, u8, Option<u8>),
    Put(u8, Option<usize>),
    Delete(u8, u64),
    Read(u8, u64, usize),
    Attrs(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3u8, 0..4u8, proptest::option::of(0..3u8)).prop_map(|(a, n, v)| Op::Set(a, n, v)),
        (0..3u8, proptest::option::of(0..4usize)).prop_map(|(a, l)| Op::Put(a, l)),
        (0..3u8, 0..40u64).prop_map(|(a, p)| Op::Delete(a, p)),
        (0..3u8, 0..40u64, 1..5usize).prop_map(|(a, p, n)| Op::Read(a, p, n)),
        (0..3u8).prop_map(Op::Attrs),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    /// Batches of random operations, some run together in one transaction: redb answers
    /// exactly as the memory store does, and so does what it kept after a reopen.
    #[test]
    fn behaves_like_the_memory_store(batches in proptest::collection::vec(proptest::collection::vec(op(), 1..8), 1..8), group in 1..4usize) {
        let dir = TempDir::new("model");
        let mut real = RedbStore::open(&dir.db()).unwrap();
        let mut model = MemoryStore::new();
        let mut position = 0;
        let batches: Vec<StoreBatch> = batches
            .into_iter()
            .enumerate()
            .map(|(i, ops)| StoreBatch {
                id: i as u64 + 1,
                ops: ops
                    .into_iter()
                    .map(|op| match op {
                        Op::Set(a, n, v) => set(&format!("u{a}"), &format!("n{n}"), v.map(|v| format!("v{v}")).as_deref()),
                        Op::Put(a, l) => {
                            position += 1;
                            put(&format!("u{a}"), position, l)
                        }
                        Op::Delete(a, p) => delete(&format!("u{a}"), p),
                        Op::Read(a, p, n) => read(&format!("u{a}"), p, n),
                        Op::Attrs(a) => StoreOp::Attrs { app: "app".into(), account: format!("u{a}") },
                    })
                    .collect(),
            })
            .collect();
        for chunk in batches.chunks(group) {
            let got = real.execute(chunk.to_vec());
            let want = model.execute(chunk.to_vec());
            prop_assert_eq!(got.len(), want.len());
            for (g, w) in got.into_iter().zip(want) {
                let g: Vec<StoreAnswer> = g.answers.unwrap().into_iter().map(Result::unwrap).collect();
                let w: Vec<StoreAnswer> = w.answers.unwrap().into_iter().map(Result::unwrap).collect();
                prop_assert_eq!(g, w);
            }
        }
        drop(real);
        let mut real = RedbStore::open(&dir.db()).unwrap();
        for a in 0..3 {
            let account = format!("u{a}");
            let ops = vec![read(&account, 0, 100), StoreOp::Attrs { app: "app".into(), account: account.clone() }];
            prop_assert_eq!(run(&mut real, ops.clone()), run(&mut model, ops));
        }
        prop_assert_eq!(real.recover().unwrap().next_position, model.recover().unwrap().next_position);
    }
}
