//! Behaviour every store must show, run on each implementation (the memory store is the
//! model): each function takes a way to open the store under test.

use beckon_broker::{
    MemoryStore, QueueLimit, Store, StoreAnswer, StoreBatch, StoreOp, StoredMessage,
};
use std::cell::RefCell;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

pub(crate) fn msg(i: u64) -> StoredMessage {
    StoredMessage {
        sender: format!("s{i}"),
        msg: format!("body é {i}"),
        server_msg_id: i * 7,
        sent_at_ms: 1000 + i,
    }
}

pub(crate) fn put(account: &str, position: u64, limit: Option<usize>) -> StoreOp {
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

pub(crate) fn delete(account: &str, position: u64) -> StoreOp {
    StoreOp::DeleteMessage {
        app: "app".into(),
        account: account.into(),
        position,
    }
}

pub(crate) fn read(account: &str, after: u64, max_count: usize) -> StoreOp {
    StoreOp::Messages {
        app: "app".into(),
        account: account.into(),
        after,
        max_count,
        max_bytes: usize::MAX,
    }
}

pub(crate) fn set(account: &str, name: &str, value: Option<&str>) -> StoreOp {
    StoreOp::SetAttr {
        app: "app".into(),
        account: account.into(),
        name: name.into(),
        value: value.map(str::to_owned),
        max_attrs: 3,
    }
}

/// Runs `ops` as one batch; every answer must be a success.
pub(crate) fn run(s: &mut impl Store, ops: Vec<StoreOp>) -> Vec<StoreAnswer> {
    let mut done = s.execute(vec![StoreBatch { id: 1, ops }]);
    let answers = done.pop().unwrap().answers.expect("the batch commits");
    answers.into_iter().map(|a| a.expect("an answer")).collect()
}

pub(crate) fn messages(answer: &StoreAnswer) -> (Vec<u64>, bool) {
    match answer {
        StoreAnswer::Messages { messages, more } => {
            (messages.iter().map(|(p, _)| *p).collect(), *more)
        }
        other => panic!("{other:?}"),
    }
}

/// Writes, reopens (`open` again on the same data), reads back what was answered. Returns the
/// reopened store.
pub(crate) fn what_was_answered_survives_reopening<S: Store>(mut open: impl FnMut() -> S) -> S {
    {
        let mut s = open();
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
    let mut s = open();
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
    s
}

pub(crate) fn limits_count_what_is_stored_and_deletes_free_room(s: &mut impl Store) {
    let answers = run(
        s,
        vec![
            put("bob", 1, None),
            put("bob", 2, None),
            put("bob", 3, Some(2)),
        ],
    );
    assert_eq!(answers[2], StoreAnswer::Full);
    let answers = run(
        s,
        vec![delete("bob", 1), delete("bob", 77), put("bob", 3, Some(2))],
    );
    assert_eq!(
        answers,
        [StoreAnswer::Done, StoreAnswer::Done, StoreAnswer::Done]
    );
    // A byte limit counts the sender and the body.
    let tight = |bytes| StoreOp::PutMessage {
        app: "app".into(),
        account: "bob".into(),
        position: 4,
        message: msg(4),
        limit: Some(QueueLimit {
            messages: 100,
            bytes,
        }),
    };
    let room = 2 * msg(2).size() + msg(4).size();
    assert_eq!(run(s, vec![tight(room - 1)]), [StoreAnswer::Full]);
    assert_eq!(run(s, vec![tight(room)]), [StoreAnswer::Done]);
    // The attribute limit (3) holds for new names, not for rewrites or deletes.
    let answers = run(
        s,
        vec![
            set("al", "a", Some("1")),
            set("al", "b", Some("1")),
            set("al", "c", Some("1")),
            set("al", "d", Some("1")),
            set("al", "c", Some("2")),
            set("al", "a", None),
            set("al", "d", Some("1")),
            set("al", "e", Some("")),
        ],
    );
    assert_eq!(answers[3], StoreAnswer::Full);
    assert_eq!(answers[7], StoreAnswer::Full);
    assert!(
        answers
            .iter()
            .enumerate()
            .all(|(i, a)| i == 3 || i == 7 || *a == StoreAnswer::Done)
    );
    let answers = run(
        s,
        vec![
            StoreOp::Attr {
                app: "app".into(),
                account: "al".into(),
                name: "a".into(),
            },
            StoreOp::Attr {
                app: "app".into(),
                account: "al".into(),
                name: "c".into(),
            },
        ],
    );
    assert_eq!(
        answers,
        [StoreAnswer::Attr(None), StoreAnswer::Attr(Some("2".into()))]
    );
}

/// Batches run together: a read in a later batch sees an earlier batch's writes.
pub(crate) fn batches_run_in_order(s: &mut impl Store) {
    let done = s.execute(vec![
        StoreBatch {
            id: 1,
            ops: vec![put("bob", 1, None), put("bob", 2, None)],
        },
        StoreBatch { id: 2, ops: vec![] },
        StoreBatch {
            id: 3,
            ops: vec![delete("bob", 1), read("bob", 0, 10)],
        },
    ]);
    assert_eq!(done.iter().map(|d| d.id).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(done[1].answers.as_ref().unwrap().is_empty());
    let third = done[2].answers.as_ref().unwrap();
    assert_eq!(messages(third[1].as_ref().unwrap()), (vec![2], false));
    // A message acknowledged in the call that stores it still counts for a limited write and
    // a read between the two.
    let answers = run(
        s,
        vec![
            put("carl", 10, None),
            put("carl", 11, Some(1)),
            read("carl", 0, 10),
            delete("carl", 10),
            read("carl", 0, 10),
        ],
    );
    assert_eq!(answers[1], StoreAnswer::Full);
    assert_eq!(messages(&answers[2]), (vec![10], false));
    assert_eq!(messages(&answers[4]), (vec![], false));
}

pub(crate) fn restart_windows_are_read_once<S: Store>(mut open: impl FnMut() -> S) {
    let mut s = open();
    let window = |account: &str, until_ms| StoreOp::Window {
        app: "app".into(),
        account: account.into(),
        until_ms,
    };
    run(&mut s, vec![window("bob", 1234), window("c:d{x}%", 99)]);
    drop(s);
    let mut s = open();
    let mut r = s.recover().unwrap();
    r.windows.sort();
    assert_eq!(
        r.windows,
        [
            ("app".to_owned(), "bob".to_owned(), 1234),
            ("app".to_owned(), "c:d{x}%".to_owned(), 99)
        ]
    );
    assert!(s.recover().unwrap().windows.is_empty());
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

/// Batches of random operations, some run together in one call: the store answers exactly as
/// the memory store does, and so does what it kept after `reopen`. `fresh` opens an empty
/// store; with `same_next_position`, recovery must agree on the next position too (a store
/// handing out blocks of positions does not).
pub(crate) fn behaves_like_the_memory_store<S: Store>(
    cases: u32,
    fresh: impl FnMut() -> S,
    reopen: impl FnMut(S) -> S,
    same_next_position: bool,
) {
    let batches = proptest::collection::vec(proptest::collection::vec(op(), 1..8), 1..8);
    // The runner takes a `Fn`: the openers are borrowed for each case.
    let (fresh, reopen) = (RefCell::new(fresh), RefCell::new(reopen));
    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    runner
        .run(&(batches, 1..4usize), |(batches, group)| {
            let mut real = (fresh.borrow_mut())();
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
                            Op::Set(a, n, v) => set(
                                &format!("u{a}"),
                                &format!("n{n}"),
                                v.map(|v| format!("v{v}")).as_deref(),
                            ),
                            Op::Put(a, l) => {
                                position += 1;
                                put(&format!("u{a}"), position, l)
                            }
                            Op::Delete(a, p) => delete(&format!("u{a}"), p),
                            Op::Read(a, p, n) => read(&format!("u{a}"), p, n),
                            Op::Attrs(a) => StoreOp::Attrs {
                                app: "app".into(),
                                account: format!("u{a}"),
                            },
                        })
                        .collect(),
                })
                .collect();
            for chunk in batches.chunks(group) {
                let got = real.execute(chunk.to_vec());
                let want = model.execute(chunk.to_vec());
                prop_assert_eq!(got.len(), want.len());
                for (g, w) in got.into_iter().zip(want) {
                    prop_assert_eq!(g.id, w.id);
                    let g: Vec<StoreAnswer> =
                        g.answers.unwrap().into_iter().map(Result::unwrap).collect();
                    let w: Vec<StoreAnswer> =
                        w.answers.unwrap().into_iter().map(Result::unwrap).collect();
                    prop_assert_eq!(g, w);
                }
            }
            let mut real = (reopen.borrow_mut())(real);
            for a in 0..3 {
                let account = format!("u{a}");
                let ops = vec![
                    read(&account, 0, 100),
                    StoreOp::Attrs {
                        app: "app".into(),
                        account: account.clone(),
                    },
                ];
                prop_assert_eq!(run(&mut real, ops.clone()), run(&mut model, ops));
            }
            if same_next_position {
                prop_assert_eq!(
                    real.recover().unwrap().next_position,
                    model.recover().unwrap().next_position
                );
            }
            Ok(())
        })
        .unwrap();
}
