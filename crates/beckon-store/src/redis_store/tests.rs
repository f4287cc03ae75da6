//! Against real `redis-server` processes started here, on free 127.0.0.1 ports. A machine
//! without `redis-server` and `redis-cli` fails these tests (CI installs them).

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use beckon_broker::StoreBatch;

use super::*;
use crate::behaviour::{self, delete, messages, msg, put, read, run, set};

fn tool(name: &str) -> &'static str {
    let found = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`{name}` is not installed: the Redis store's tests need redis-server and redis-cli \
         (Debian: apt-get install redis-server redis-tools)"
    );
    match name {
        "redis-server" => "redis-server",
        _ => "redis-cli",
    }
}

/// A port free on 127.0.0.1 (and, for a cluster node, its bus port 10000 above).
fn free_port(with_bus: bool) -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id() as u32;
    loop {
        let n = NEXT.fetch_add(1, AtomicOrdering::Relaxed);
        let port = if with_bus {
            // 20000..50000: the bus port (+10000) stays a valid port.
            20000 + (seed.wrapping_mul(7919).wrapping_add(n * 37) % 30000) as u16
        } else {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            drop(l);
            return port;
        };
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10000) {
            return port;
        }
    }
}

/// A redis-server child, killed when dropped.
struct Server {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
}

impl Server {
    /// Persistence off.
    fn start() -> Self {
        Self::start_with(&["--save", "", "--appendonly", "no"], false)
    }

    fn start_with(args: &[&str], cluster: bool) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, AtomicOrdering::Relaxed);
        let dir = std::env::temp_dir().join(format!("beckon-redis-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = Self {
            child: None,
            port: free_port(cluster),
            dir,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        };
        s.run();
        s
    }

    /// Starts (again) on the same port, in the same directory.
    fn run(&mut self) {
        let child = Command::new(tool("redis-server"))
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ready = Client::open(self.url())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if ready.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer",
                self.port
            );
            sleep(Duration::from_millis(20));
        }
    }

    /// Kills it (SIGKILL) and waits until its port is closed.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            sleep(Duration::from_millis(10));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn timeouts() -> RedisTimeouts {
    RedisTimeouts {
        connect: Duration::from_secs(1),
        response: Duration::from_secs(2),
    }
}

/// Opens a store on `url` under `prefix` and takes its block of positions, as a server does.
fn open(url: &str, prefix: &str) -> RedisStore {
    let mut s = RedisStore::open(url, prefix, timeouts()).unwrap();
    s.recover().unwrap();
    s
}

#[test]
fn what_was_answered_survives_reopening() {
    let r = Server::start();
    let mut s = behaviour::what_was_answered_survives_reopening(|| open(&r.url(), "t:"));
    // Every start took a block of its own: the next is above all of them.
    let next = s.recover().unwrap().next_position;
    assert_eq!(next, 2 * BLOCK, "the third block starts after two");
}

#[test]
fn limits_count_what_is_stored_and_deletes_free_room() {
    let r = Server::start();
    behaviour::limits_count_what_is_stored_and_deletes_free_room(&mut open(
        &r.url(),
        DEFAULT_PREFIX,
    ));
}

#[test]
fn batches_run_in_order() {
    let r = Server::start();
    behaviour::batches_run_in_order(&mut open(&r.url(), DEFAULT_PREFIX));
}

#[test]
fn restart_windows_are_read_once() {
    let r = Server::start();
    behaviour::restart_windows_are_read_once(|| {
        RedisStore::open(&r.url(), "w:", timeouts()).unwrap()
    });
}

#[test]
fn behaves_like_the_memory_store() {
    let r = Server::start();
    model_check(&r.url(), 24);
}

/// The model test on the Redis at `url`: each case under a prefix of its own, reopened on it.
fn model_check(url: &str, cases: u32) {
    let mut n = 0;
    behaviour::behaves_like_the_memory_store(
        cases,
        || {
            n += 1;
            open(url, &format!("case{n}:"))
        },
        |s| {
            let prefix = s.shared.keys.prefix.clone();
            drop(s);
            open(url, &prefix)
        },
        false,
    );
}

/// Two servers on one Redis take disjoint blocks; a store writes only positions of its own
/// block, and only once it has one.
#[test]
fn positions_stay_unique_across_servers_and_restarts() {
    let r = Server::start();
    let mut a = RedisStore::open(&r.url(), DEFAULT_PREFIX, timeouts()).unwrap();
    let done = a.execute(vec![StoreBatch {
        id: 1,
        ops: vec![put("bob", 1, None)],
    }]);
    let e = done[0].answers.as_ref().unwrap_err();
    assert!(e.to_string().contains("recover"), "{e}");

    let first = a.recover().unwrap().next_position;
    let mut b = open(&r.url(), DEFAULT_PREFIX);
    let second = b.recover().unwrap().next_position;
    let third = a.recover().unwrap().next_position;
    assert_eq!((first, second, third), (1, 2 * BLOCK, 3 * BLOCK));
    // `a` now holds the block [3·BLOCK, 4·BLOCK).
    assert_eq!(
        run(&mut a, vec![put("bob", 4 * BLOCK - 1, None)]),
        [StoreAnswer::Done]
    );
    let done = a.execute(vec![StoreBatch {
        id: 2,
        ops: vec![put("bob", 4 * BLOCK, None), set("bob", "x", Some("1"))],
    }]);
    let e = done[0].answers.as_ref().unwrap_err();
    assert!(e.to_string().contains("outside this server's block"), "{e}");
    // Nothing of the refused batch was kept.
    let answers = run(
        &mut b,
        vec![
            read("bob", 0, 10),
            StoreOp::Attrs {
                app: "app".into(),
                account: "bob".into(),
            },
        ],
    );
    assert_eq!(messages(&answers[0]), (vec![4 * BLOCK - 1], false));
    assert_eq!(answers[1], StoreAnswer::Attrs(vec![]));
}

#[test]
fn keys_share_a_slot_per_account_and_hostile_names_cannot_collide() {
    let keys = Keys {
        prefix: DEFAULT_PREFIX.into(),
    };
    let [msgs, bodies, bytes, attrs] = keys.account("app", "bob");
    assert_eq!(msgs, "beckon:{app:bob}:msgs");
    assert_eq!(bodies, "beckon:{app:bob}:bodies");
    assert_eq!(bytes, "beckon:{app:bob}:bytes");
    assert_eq!(attrs, "beckon:{app:bob}:attrs");
    let hostile = ["b:c", "a:b", "}{", "{x}", "%7B", "%", ":", "", "c"];
    let mut seen = std::collections::HashSet::new();
    for app in ["a", "a:b", "{a}"] {
        for account in hostile {
            let [k, ..] = keys.account(app, account);
            // One hash tag: the first '{' and the first '}' after it enclose the escaped
            // names, whatever the names hold.
            let open = k.find('{').unwrap();
            let close = k[open..].find('}').unwrap() + open;
            assert_eq!(&k[open + 1..close], field(app, account), "{k}");
            assert_eq!(k.matches(['{', '}']).count(), 2, "{k}");
            assert_eq!(
                split_field(&k[open + 1..close]),
                Some((app.to_owned(), account.to_owned()))
            );
            assert!(seen.insert(k.clone()), "{k} collides");
        }
    }
    assert_ne!(keys.account("a", "b:c")[0], keys.account("a:b", "c")[0]);
    assert!(!seen.contains(&keys.windows()) && !seen.contains(&keys.positions()));

    // In Redis: the accounts ("a", "b:c") and ("a:b", "c") keep apart.
    let r = Server::start();
    let mut s = open(&r.url(), DEFAULT_PREFIX);
    let attr = |app: &str, account: &str, value: Option<&str>| StoreOp::SetAttr {
        app: app.into(),
        account: account.into(),
        name: "n".into(),
        value: value.map(str::to_owned),
        max_attrs: 1,
    };
    let get = |app: &str, account: &str| StoreOp::Attrs {
        app: app.into(),
        account: account.into(),
    };
    let answers = run(
        &mut s,
        vec![
            attr("a", "b:c", Some("1")),
            attr("a:b", "c", Some("2")),
            attr("{a}", "}{", Some("3")),
            get("a", "b:c"),
            get("a:b", "c"),
            get("{a}", "}{"),
        ],
    );
    let one = |v: &str| StoreAnswer::Attrs(vec![("n".into(), v.into())]);
    assert_eq!(
        answers[..3],
        [StoreAnswer::Done, StoreAnswer::Done, StoreAnswer::Done]
    );
    assert_eq!(answers[3..], [one("1"), one("2"), one("3")]);
}

#[test]
fn bad_urls_prefixes_and_unreachable_servers_are_refused_clearly() {
    let bad = |url: &str, prefix: &str| match RedisStore::open(url, prefix, timeouts()) {
        Err(e @ StoreError::Open { .. }) => e.to_string(),
        other => panic!("{url}: {other:?}"),
    };
    let e = bad("http://127.0.0.1:6379", DEFAULT_PREFIX);
    assert!(
        e.contains("bad URL") && e.contains("redis+cluster://"),
        "{e}"
    );
    let e = bad("redis+cluster://", DEFAULT_PREFIX);
    assert!(e.contains("host:port"), "{e}");
    let e = bad("redis+cluster://127.0.0.1:1/0", DEFAULT_PREFIX);
    assert!(e.contains("database"), "{e}");
    let e = bad("redis://127.0.0.1:1", "a{b");
    assert!(e.contains("prefix"), "{e}");
    let port = free_port(false);
    let e = bad(
        &format!("redis://user:secret@127.0.0.1:{port}"),
        DEFAULT_PREFIX,
    );
    assert!(e.contains("does not answer"), "{e}");
    assert!(
        !e.contains("secret"),
        "the password stays out of messages: {e}"
    );
    let e = bad(&format!("redis+cluster://127.0.0.1:{port}"), DEFAULT_PREFIX);
    assert!(e.contains("does not answer"), "{e}");
}

/// Redis goes away mid-run: batches fail with a clear error (nothing is reported kept), and
/// the store reconnects by itself once Redis is back. With `appendfsync always`, what was
/// answered before the kill is still there.
#[test]
fn a_lost_redis_fails_batches_and_is_reconnected_when_back() {
    let mut r = Server::start_with(
        &[
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ],
        false,
    );
    let mut s = open(&r.url(), DEFAULT_PREFIX);
    assert_eq!(run(&mut s, vec![put("bob", 1, None)]), [StoreAnswer::Done]);
    r.kill();
    for id in 2..4 {
        let done = s.execute(vec![StoreBatch {
            id,
            ops: vec![put("bob", id, None), read("bob", 0, 10)],
        }]);
        match &done[0].answers {
            Err(e @ StoreError::Unreachable(_)) => {
                assert!(e.to_string().contains(&r.addr()), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(s.recover().is_err());
    r.run();
    let answers = run(&mut s, vec![put("bob", 5, None), read("bob", 0, 10)]);
    assert_eq!(messages(&answers[1]), (vec![1, 5], false));
    let StoreAnswer::Messages { messages: m, .. } = &answers[1] else {
        unreachable!()
    };
    assert_eq!(m[0].1, msg(1));
}

/// Redis restarts between two batches: the connection made before fails its first command,
/// and the store makes a new one and runs the batch on it at once, rather than failing a
/// batch although Redis answers again.
#[test]
fn the_first_batch_after_a_redis_restart_is_answered() {
    let mut r = Server::start_with(
        &[
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ],
        false,
    );
    let mut s = open(&r.url(), DEFAULT_PREFIX);
    assert_eq!(run(&mut s, vec![put("bob", 1, None)]), [StoreAnswer::Done]);
    r.kill();
    r.run();
    let answers = run(&mut s, vec![put("bob", 2, None), read("bob", 0, 10)]);
    assert_eq!(messages(&answers[1]), (vec![1, 2], false));
}

/// A queue's record that lost its body reads as corrupt; the write beside it is kept.
#[test]
fn a_corrupt_queue_fails_its_read_alone() {
    let r = Server::start();
    let mut s = open(&r.url(), DEFAULT_PREFIX);
    run(&mut s, vec![put("bob", 1, None), put("bob", 2, None)]);
    let mut c = Client::open(r.url()).unwrap().get_connection().unwrap();
    let _: i64 = redis::cmd("HDEL")
        .arg("beckon:{app:bob}:bodies")
        .arg(member(2))
        .query(&mut c)
        .unwrap();
    let mut done = s.execute(vec![StoreBatch {
        id: 1,
        ops: vec![read("bob", 0, 10), put("bob", 3, None), delete("bob", 1)],
    }]);
    let answers = done.pop().unwrap().answers.unwrap();
    assert!(
        matches!(answers[0], Err(StoreError::Corrupt(_))),
        "{answers:?}"
    );
    assert!(matches!(answers[1], Ok(StoreAnswer::Done)));
    let left: Vec<String> = redis::cmd("ZRANGE")
        .arg("beckon:{app:bob}:msgs")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .unwrap();
    assert_eq!(left, [member(2), member(3)]);
}

/// Three masters, slots spread over them: the same behaviour, batches whose accounts live in
/// different slots (and on different nodes) included.
#[test]
fn a_redis_cluster_of_three_masters() {
    let (nodes, url) = start_cluster(&[]);
    behaviour::limits_count_what_is_stored_and_deletes_free_room(&mut open(&url, "l:"));
    behaviour::batches_run_in_order(&mut open(&url, "o:"));
    behaviour::restart_windows_are_read_once(|| RedisStore::open(&url, "w:", timeouts()).unwrap());
    model_check(&url, 8);

    // One batch over many accounts, hostile names among them: their slots differ (checked
    // with CLUSTER KEYSLOT), each account's operations are answered in order.
    let mut s = open(&url, DEFAULT_PREFIX);
    let accounts: Vec<String> = (0..12)
        .map(|i| format!("u{i}"))
        .chain(["}{", "a:b", "{u1}"].map(str::to_owned))
        .collect();
    let mut c = Client::open(nodes[0].url())
        .unwrap()
        .get_connection()
        .unwrap();
    let slots: std::collections::HashSet<i64> = accounts
        .iter()
        .map(|a| {
            let [k, ..] = s.shared.keys.account("app", a);
            redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(k)
                .query(&mut c)
                .unwrap()
        })
        .collect();
    assert!(slots.len() > 3, "the accounts spread over slots: {slots:?}");
    let mut ops = Vec::new();
    for (i, a) in accounts.iter().enumerate() {
        let p = i as u64 * 2 + 1;
        ops.extend([
            put(a, p, Some(1)),
            put(a, p + 1, Some(1)),
            set(a, "who", Some(a)),
            read(a, 0, 10),
        ]);
    }
    let answers = run(&mut s, ops);
    for (i, a) in accounts.iter().enumerate() {
        let p = i as u64 * 2 + 1;
        let mine = &answers[i * 4..i * 4 + 4];
        assert_eq!(
            mine[..3],
            [StoreAnswer::Done, StoreAnswer::Full, StoreAnswer::Done],
            "{a}"
        );
        assert_eq!(messages(&mine[3]), (vec![p], false), "{a}");
    }
}

/// Three masters on free ports, made a cluster with `redis-cli --cluster create`, once every
/// node reports `cluster_state:ok`; and the store's URL for it.
fn start_cluster(extra: &[&str]) -> (Vec<Server>, String) {
    let nodes: Vec<Server> = (0..3)
        .map(|_| {
            Server::start_with(
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ]
                .iter()
                .chain(extra)
                .copied()
                .collect::<Vec<_>>(),
                true,
            )
        })
        .collect();
    let status = Command::new(tool("redis-cli"))
        .arg("--cluster")
        .arg("create")
        .args(nodes.iter().map(Server::addr))
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "redis-cli --cluster create failed");
    let deadline = Instant::now() + Duration::from_secs(30);
    for n in &nodes {
        loop {
            let mut c = Client::open(n.url()).unwrap().get_connection().unwrap();
            let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut c).unwrap();
            if info.contains("cluster_state:ok") {
                break;
            }
            assert!(Instant::now() < deadline, "the cluster is not ok: {info}");
            sleep(Duration::from_millis(50));
        }
    }
    let url = format!(
        "redis+cluster://{}",
        nodes.iter().map(Server::addr).collect::<Vec<_>>().join(",")
    );
    (nodes, url)
}

/// A master goes down: the operations of the accounts in its slots fail, each with the error,
/// while the other accounts' are answered and kept; once it is back, every account works again.
#[test]
fn a_cluster_node_down_fails_its_slots_only() {
    let (mut nodes, url) = start_cluster(&["--cluster-require-full-coverage", "no"]);
    let mut s = open(&url, DEFAULT_PREFIX);
    let accounts: Vec<String> = (0..12).map(|i| format!("u{i}")).collect();
    // Which accounts the third node serves: it answers for its own keys, MOVED for others.
    let mut c = Client::open(nodes[2].url())
        .unwrap()
        .get_connection()
        .unwrap();
    let on_third: Vec<bool> = accounts
        .iter()
        .map(|a| {
            let [k, ..] = s.shared.keys.account("app", a);
            redis::cmd("EXISTS").arg(k).query::<i64>(&mut c).is_ok()
        })
        .collect();
    assert!(
        on_third.contains(&true) && on_third.contains(&false),
        "{on_third:?}"
    );
    drop(c);
    let batch = |id: u64| StoreBatch {
        id,
        ops: accounts
            .iter()
            .flat_map(|a| [put(a, id, None), read(a, 0, 10)])
            .collect(),
    };
    nodes[2].kill();
    let done = s.execute(vec![batch(1)]);
    let answers = done[0].answers.as_ref().expect("some slots answered");
    for (i, a) in accounts.iter().enumerate() {
        let mine = &answers[i * 2..i * 2 + 2];
        if on_third[i] {
            assert!(
                mine.iter()
                    .all(|a| matches!(a, Err(StoreError::Unreachable(_)))),
                "{a}: {mine:?}"
            );
        } else {
            assert!(matches!(mine[0], Ok(StoreAnswer::Done)), "{a}: {mine:?}");
            assert_eq!(messages(mine[1].as_ref().unwrap()), (vec![1], false), "{a}");
        }
    }
    nodes[2].run();
    // Back with its slots (its nodes.conf kept them) and empty (no persistence). Every put
    // answered done is kept; none that failed is.
    let mut kept: Vec<Vec<u64>> = on_third
        .iter()
        .map(|&third| if third { vec![] } else { vec![1] })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in 2.. {
        let done = s.execute(vec![batch(id)]);
        let all = match &done[0].answers {
            Ok(answers) => {
                for (i, k) in kept.iter_mut().enumerate() {
                    if answers[i * 2].is_ok() {
                        k.push(id);
                    }
                }
                answers.iter().all(Result::is_ok)
            }
            Err(_) => false,
        };
        if all {
            let answers = done[0].answers.as_ref().unwrap();
            for (i, a) in accounts.iter().enumerate() {
                let got = messages(answers[i * 2 + 1].as_ref().unwrap());
                assert_eq!(got, (kept[i].clone(), false), "{a}");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster did not recover: {done:?}"
        );
        sleep(Duration::from_millis(200));
    }
}
