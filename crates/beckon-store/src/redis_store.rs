//! The broker's store in Redis, for cluster mode: several servers share one Redis (or one
//! Redis Cluster).
//!
//! Keys (every one under a configurable prefix, `beckon:` by default; names escaped, see
//! [`escape`]):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `beckon:{app:account}:msgs` | sorted set | the account's message positions (score 0, member the position as 16 hex digits: lexical order is position order over all of `u64`) |
//! | `beckon:{app:account}:bodies` | hash | position → the encoded message |
//! | `beckon:{app:account}:bytes` | string | the bytes the queue holds (for its byte bound) |
//! | `beckon:{app:account}:attrs` | hash | the account's attributes |
//! | `beckon:{windows}` | hash | `app:account` → the end of its restart window (Unix ms) |
//! | `beckon:{positions}` | string | the counter that hands out blocks of positions |
//!
//! The braces are a Redis Cluster hash tag: every key of one (app, account) lives in one slot,
//! so the operations on one account run as one Lua script (`redis.lua`), atomically. On a
//! single Redis, a whole call to [`Store::execute`] is one script, so it is atomic as the trait
//! asks. On a Redis Cluster, the call is split by slot: each account's operations are atomic
//! and in order, but a batch touching accounts in different slots is not atomic as a whole;
//! the operations of a slot that failed answer an error each, the others their answer.
//!
//! Positions: [`Store::recover`] takes a block of [`BLOCK`] positions from the shared counter
//! (`INCRBY`), and its broker hands out positions from the start of that block; a store
//! refuses to write a position beyond its block. So positions stay unique across every server
//! sharing the Redis and across restarts (each start takes a new block).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConnection};
use redis::{
    Client, Connection, ConnectionLike, ErrorKind, RedisError, Script, ServerErrorKind, Value,
};

use beckon_broker::{
    Recovered, Store, StoreAnswer, StoreBatch, StoreDone, StoreError, StoreOp, StoredMessage,
};

use crate::{HEADER, decode, encode};

/// How many positions a server takes from the shared counter when it starts: 2⁴⁰ (about 10¹²
/// messages per server start; the counter, a signed 64-bit integer in Redis, lasts 2²³ starts).
pub const BLOCK: u64 = 1 << 40;

/// The script that carries out the broker's operations.
const STORE_LUA: &str = include_str!("redis.lua");

/// Reads and deletes the restart windows, in one step.
const TAKE_WINDOWS: &str =
    "local v = redis.call('HGETALL', KEYS[1]) redis.call('DEL', KEYS[1]) return v";

/// How often a command is retried on a Redis Cluster (after a MOVED, ASK or TRYAGAIN answer, or
/// a node that does not answer) before the call fails.
const CLUSTER_RETRIES: u32 = 3;

/// The prefix of every key when none is configured.
pub const DEFAULT_PREFIX: &str = "beckon:";

/// How long to wait for Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedisTimeouts {
    /// To open a connection.
    pub connect: Duration,
    /// For the answer to one command (one script).
    pub response: Duration,
}

impl Default for RedisTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            response: Duration::from_secs(5),
        }
    }
}

/// The broker's store in Redis. Handles share one connection (and reconnect it, after a
/// failure, on their next call).
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
}

struct Shared {
    target: Target,
    /// The URL without its password, for messages.
    url: String,
    keys: Keys,
    timeouts: RedisTimeouts,
    conn: Mutex<Option<Conn>>,
    /// The end of this server's block of positions (0: not taken yet).
    block_end: AtomicU64,
    script: Script,
}

// One per store, so the variants' sizes do not matter (with the async features another crate
// enables on `redis`, the cluster client is the larger).
#[allow(clippy::large_enum_variant)]
enum Target {
    Single(Client),
    Cluster(ClusterClient),
}

enum Conn {
    Single(Connection),
    Cluster(Box<ClusterConnection>),
}

impl Conn {
    fn as_dyn(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Self::Single(c) => c,
            Self::Cluster(c) => &mut **c,
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.shared.url)
            .field("prefix", &self.shared.keys.prefix)
            .finish_non_exhaustive()
    }
}

/// `url` with the password of its user part (if any) hidden.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // Each node of a cluster URL may carry its own user part.
    let nodes: Vec<String> = rest
        .split(',')
        .map(|node| match node.rsplit_once('@') {
            Some((user, host)) => match user.split_once(':') {
                Some((name, _)) => format!("{name}:***@{host}"),
                None => format!("***@{host}"),
            },
            None => node.to_owned(),
        })
        .collect();
    format!("{scheme}://{}", nodes.join(","))
}

fn parse(url: &str, timeouts: RedisTimeouts) -> Result<Target, String> {
    if let Some(rest) = url.strip_prefix("redis+cluster://") {
        let nodes: Vec<String> = rest
            .split(',')
            .map(|node| node.trim_end_matches('/'))
            .map(|node| {
                if node.is_empty() || node.contains('/') {
                    Err(format!(
                        "a cluster node must be host:port, not {node:?} (a cluster has no database number)"
                    ))
                } else {
                    Ok(format!("redis://{node}"))
                }
            })
            .collect::<Result<_, _>>()?;
        // Few and short retries: the store thread waits for them, and a node that is down
        // (or failing over, which takes seconds) is better answered with an error at once;
        // the broker's next batch tries again.
        let client = ClusterClientBuilder::new(nodes)
            .connection_timeout(timeouts.connect)
            .response_timeout(timeouts.response)
            .retries(CLUSTER_RETRIES)
            .min_retry_wait(50)
            .max_retry_wait(200)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Target::Cluster(client))
    } else if url.starts_with("redis://") {
        Client::open(url)
            .map(Target::Single)
            .map_err(|e| e.to_string())
    } else {
        Err("expected redis://host:port[/db] or redis+cluster://host:port[,host:port…]".into())
    }
}

/// Whether the connection is to be replaced after `e`: whatever means Redis (or the way to
/// it) failed, rather than a command.
fn is_connection_failure(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
        || e.is_cluster_error()
}

impl RedisStore {
    /// Connects to `url` — `redis://host:port[/db]` (one Redis) or
    /// `redis+cluster://host:port[,host:port…]` (a Redis Cluster, found from any of the nodes)
    /// — keeping every key under `prefix` (which may not contain `{` or `}`, the hash-tag
    /// braces). Fails with [`StoreError::Open`] for a bad URL or prefix, or a Redis that does
    /// not answer.
    pub fn open(url: &str, prefix: &str, timeouts: RedisTimeouts) -> Result<Self, StoreError> {
        let shown = redact(url);
        let open_err = |why: String| StoreError::Open {
            path: shown.clone().into(),
            source: why.into(),
        };
        if prefix.contains(['{', '}']) {
            return Err(open_err(format!(
                "the key prefix {prefix:?} may not contain '{{' or '}}'"
            )));
        }
        let target = parse(url, timeouts).map_err(|e| open_err(format!("bad URL: {e}")))?;
        let store = Self {
            shared: Arc::new(Shared {
                target,
                url: shown.clone(),
                keys: Keys {
                    prefix: prefix.to_owned(),
                },
                timeouts,
                conn: Mutex::new(None),
                block_end: AtomicU64::new(0),
                script: Script::new(STORE_LUA),
            }),
        };
        store
            .with_conn(|c| redis::cmd("PING").query::<String>(c.as_dyn()))
            .map_err(|e| open_err(format!("Redis does not answer: {e}")))?;
        Ok(store)
    }

    /// Runs `f` on the connection, connecting first if there is none; drops a single Redis's
    /// connection when Redis (or the way to it) failed, so the next call connects anew.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, RedisError>,
    ) -> Result<T, StoreError> {
        let mut f = Some(f);
        self.with_conn_retrying(false, |c| (f.take().expect("called once"))(c))
    }

    /// [`with_conn`](Self::with_conn); with `retry`, a single Redis's connection made before
    /// it dropped (Redis restarted, or closed it) is replaced at once and `f` runs once more
    /// on the new one, rather than failing although Redis is back. Only for `f`s that may run
    /// twice: a script may have run before its connection dropped.
    fn with_conn_retrying<T>(
        &self,
        retry: bool,
        mut f: impl FnMut(&mut Conn) -> Result<T, RedisError>,
    ) -> Result<T, StoreError> {
        let sh = &*self.shared;
        let mut slot = sh.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let reused = slot.is_some();
        if slot.is_none() {
            *slot = Some(self.connect().map_err(|e| self.unreachable(&e))?);
        }
        let conn = slot.as_mut().expect("connected above");
        let single = matches!(conn, Conn::Single(_));
        let result = match f(conn) {
            Err(e) if retry && single && reused && e.is_connection_dropped() => {
                *slot = None;
                let fresh = self.connect().map_err(|e| self.unreachable(&e))?;
                f(slot.insert(fresh))
            }
            other => other,
        };
        result.map_err(|e| {
            if is_connection_failure(&e) {
                // A cluster connection holds one connection per node and remakes the one that
                // failed itself; made anew, it would need every node to answer again.
                if single {
                    *slot = None;
                }
                self.unreachable(&e)
            } else {
                StoreError::write(format!("Redis at {} refused: {e}", sh.url))
            }
        })
    }

    fn unreachable(&self, e: &RedisError) -> StoreError {
        StoreError::Unreachable(format!("Redis at {}: {e}", self.shared.url).into())
    }

    fn connect(&self) -> Result<Conn, RedisError> {
        let t = self.shared.timeouts;
        match &self.shared.target {
            Target::Single(client) => {
                let c = client.get_connection_with_timeout(t.connect)?;
                c.set_read_timeout(Some(t.response))?;
                c.set_write_timeout(Some(t.response))?;
                Ok(Conn::Single(c))
            }
            Target::Cluster(client) => Ok(Conn::Cluster(Box::new(client.get_connection()?))),
        }
    }

    fn is_cluster(&self) -> bool {
        matches!(self.shared.target, Target::Cluster(_))
    }

    /// Runs `ops` (with their indices) as one script; one answer per operation, in order.
    fn run_script(&self, ops: &[(usize, &StoreOp)]) -> Result<Vec<Answer>, StoreError> {
        let mut call = Call::default();
        for (_, op) in ops {
            call.add(&self.shared.keys, op);
        }
        // Every operation of a batch may run twice (see `execute`).
        let value: Value = self.with_conn_retrying(true, |c| {
            invoke(c, (&self.shared.script, STORE_LUA), &call.keys, &call.args)
        })?;
        let Value::Array(answers) = value else {
            return Err(StoreError::Corrupt(format!(
                "the store script answered {value:?}"
            )));
        };
        if answers.len() != ops.len() {
            return Err(StoreError::Corrupt(format!(
                "the store script answered {} operations of {}",
                answers.len(),
                ops.len()
            )));
        }
        Ok(ops
            .iter()
            .zip(answers)
            .map(|((_, op), v)| answer(op, v))
            .collect())
    }

    /// Refuses a write of a position this store did not take (see [`BLOCK`]).
    fn check_positions(&self, batches: &[StoreBatch]) -> Result<(), StoreError> {
        let end = self.shared.block_end.load(Ordering::Acquire);
        for op in batches.iter().flat_map(|b| &b.ops) {
            if let StoreOp::PutMessage { position, .. } = op {
                if end == 0 {
                    return Err(StoreError::write(
                        "no block of positions taken yet: call recover() before writing messages",
                    ));
                }
                if *position == 0 || *position >= end {
                    return Err(StoreError::write(format!(
                        "position {position} is outside this server's block (below {end}); \
                         restart the server to take a new block"
                    )));
                }
            }
        }
        Ok(())
    }
}

type Answer = Result<StoreAnswer, StoreError>;

/// Runs `script` by its hash, or by its text when the node does not know it yet (which then
/// keeps it). Unlike `SCRIPT LOAD`, which a cluster connection sends to every node, this only
/// needs the node that holds the keys.
fn invoke(
    c: &mut Conn,
    (script, text): (&Script, &str),
    keys: &[String],
    args: &[Vec<u8>],
) -> Result<Value, RedisError> {
    let command = |name: &str, first: &str| {
        let mut cmd = redis::cmd(name);
        cmd.arg(first).arg(keys.len()).arg(keys);
        for a in args {
            cmd.arg(&a[..]);
        }
        cmd
    };
    match command("EVALSHA", script.get_hash()).query(c.as_dyn()) {
        Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
            command("EVAL", text).query(c.as_dyn())
        }
        other => other,
    }
}

impl Store for RedisStore {
    fn execute(&mut self, batches: Vec<StoreBatch>) -> Vec<StoreDone> {
        let failed_all = |e: &StoreError| -> Vec<StoreDone> {
            batches
                .iter()
                .map(|b| StoreDone {
                    id: b.id,
                    answers: Err(e.again()),
                })
                .collect()
        };
        if let Err(e) = self.check_positions(&batches) {
            return failed_all(&e);
        }
        let ops: Vec<(usize, &StoreOp)> = batches.iter().flat_map(|b| &b.ops).enumerate().collect();
        let mut answers: Vec<Option<Answer>> = Vec::new();
        answers.resize_with(ops.len(), || None);
        if ops.is_empty() {
            // Nothing to run.
        } else if !self.is_cluster() {
            match self.run_script(&ops) {
                Ok(got) => {
                    for (slot, a) in answers.iter_mut().zip(got) {
                        *slot = Some(a);
                    }
                }
                Err(e) => return failed_all(&e),
            }
        } else {
            // One script per slot: each account's operations (and the windows') together, in
            // their order.
            let mut groups: Vec<Vec<(usize, &StoreOp)>> = Vec::new();
            let mut index: HashMap<Tag<'_>, usize> = HashMap::new();
            for &(i, op) in &ops {
                let g = *index.entry(tag(op)).or_insert_with(|| {
                    groups.push(Vec::new());
                    groups.len() - 1
                });
                groups[g].push((i, op));
            }
            for group in &groups {
                match self.run_script(group) {
                    Ok(got) => {
                        for ((i, _), a) in group.iter().zip(got) {
                            answers[*i] = Some(a);
                        }
                    }
                    Err(e) => {
                        for (i, _) in group {
                            answers[*i] = Some(Err(e.again()));
                        }
                    }
                }
            }
        }
        let mut answers = answers.into_iter();
        batches
            .iter()
            .map(|b| {
                let mine: Vec<Answer> = answers
                    .by_ref()
                    .take(b.ops.len())
                    .map(|a| a.expect("every operation was answered"))
                    .collect();
                // A batch none of whose operations reached Redis failed as a whole.
                let unreachable = !mine.is_empty()
                    && mine
                        .iter()
                        .all(|a| matches!(a, Err(StoreError::Unreachable(_))));
                StoreDone {
                    id: b.id,
                    answers: if unreachable {
                        Err(mine.into_iter().find_map(Result::err).expect("not empty"))
                    } else {
                        Ok(mine)
                    },
                }
            })
            .collect()
    }

    fn recover(&mut self) -> Result<Recovered, StoreError> {
        let keys = &self.shared.keys;
        let end: i64 = self.with_conn(|c| {
            redis::cmd("INCRBY")
                .arg(keys.positions())
                .arg(BLOCK)
                .query(c.as_dyn())
        })?;
        let end = u64::try_from(end)
            .map_err(|_| StoreError::Corrupt(format!("the position counter is {end}")))?;
        let next_position = end.saturating_sub(BLOCK).max(1);
        let take = Script::new(TAKE_WINDOWS);
        let flat: Vec<String> = self.with_conn(|c| {
            invoke(c, (&take, TAKE_WINDOWS), &[keys.windows()], &[])
                .and_then(|v| Ok(redis::FromRedisValue::from_redis_value(v)?))
        })?;
        let mut windows = Vec::with_capacity(flat.len() / 2);
        for pair in flat.chunks_exact(2) {
            let (app, account) = split_field(&pair[0]).ok_or_else(|| {
                StoreError::Corrupt(format!("a restart window for {:?}", pair[0]))
            })?;
            let until = pair[1].parse().map_err(|_| {
                StoreError::Corrupt(format!("a restart window ends at {:?}", pair[1]))
            })?;
            windows.push((app, account, until));
        }
        self.shared.block_end.store(end, Ordering::Release);
        Ok(Recovered {
            next_position,
            windows,
        })
    }
}

/// What an operation's slot is grouped by in a Redis Cluster.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Tag<'a> {
    Account(&'a str, &'a str),
    Windows,
}

fn tag(op: &StoreOp) -> Tag<'_> {
    match op {
        StoreOp::Window { .. } => Tag::Windows,
        StoreOp::PutMessage { app, account, .. }
        | StoreOp::DeleteMessage { app, account, .. }
        | StoreOp::SetAttr { app, account, .. }
        | StoreOp::Attr { app, account, .. }
        | StoreOp::Attrs { app, account }
        | StoreOp::Messages { app, account, .. } => Tag::Account(app, account),
    }
}

/// The keys and arguments of one script call.
#[derive(Default)]
struct Call<'a> {
    keys: Vec<String>,
    /// (app, account or none for the windows) → the index in `keys` (1-based) of its first key.
    bases: HashMap<Tag<'a>, usize>,
    args: Vec<Vec<u8>>,
}

impl<'a> Call<'a> {
    fn base(&mut self, keys: &Keys, tag: Tag<'a>) -> usize {
        if let Some(b) = self.bases.get(&tag) {
            return *b;
        }
        let b = self.keys.len() + 1;
        match tag {
            Tag::Account(app, account) => self.keys.extend(keys.account(app, account)),
            Tag::Windows => self.keys.push(keys.windows()),
        }
        self.bases.insert(tag, b);
        b
    }

    fn add(&mut self, keys: &Keys, op: &'a StoreOp) {
        let b = self.base(keys, tag(op));
        let s = |v: &str| v.as_bytes().to_vec();
        let mut args: Vec<Vec<u8>> = match op {
            StoreOp::PutMessage {
                position,
                message,
                limit,
                ..
            } => {
                let (count, bytes) = limit.map_or((String::new(), String::new()), |l| {
                    (l.messages.to_string(), l.bytes.to_string())
                });
                vec![
                    s("P"),
                    s(&member(*position)),
                    encode(message),
                    s(&count),
                    s(&bytes),
                ]
            }
            StoreOp::DeleteMessage { position, .. } => vec![s("X"), s(&member(*position))],
            StoreOp::SetAttr {
                name,
                value: Some(value),
                max_attrs,
                ..
            } => vec![s("S"), s(name), s(value), s(&max_attrs.to_string())],
            StoreOp::SetAttr {
                name, value: None, ..
            } => vec![s("U"), s(name)],
            StoreOp::Attr { name, .. } => vec![s("A"), s(name)],
            StoreOp::Attrs { .. } => vec![s("H")],
            StoreOp::Messages {
                after,
                max_count,
                max_bytes,
                ..
            } => vec![
                s("M"),
                s(&member(*after)),
                s(&max_count.to_string()),
                s(&max_bytes.to_string()),
            ],
            StoreOp::Window {
                app,
                account,
                until_ms,
            } => vec![s("W"), s(&field(app, account)), s(&until_ms.to_string())],
        };
        args.insert(1, s(&b.to_string()));
        self.args.extend(args);
    }
}

/// A position as a sorted-set member: 16 hex digits, so lexical order is numeric order.
fn member(position: u64) -> String {
    format!("{position:016x}")
}

fn position_of(member: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(member).ok()?;
    (s.len() == 16).then_some(())?;
    u64::from_str_radix(s, 16).ok()
}

fn text(v: Value, what: &str) -> Result<String, StoreError> {
    match v {
        Value::BulkString(b) => {
            String::from_utf8(b).map_err(|_| StoreError::Corrupt(format!("{what} is not UTF-8")))
        }
        Value::SimpleString(s) => Ok(s),
        other => Err(StoreError::Corrupt(format!("{what}: {other:?}"))),
    }
}

/// The script's answer to `op` as the broker's.
fn answer(op: &StoreOp, v: Value) -> Answer {
    let wrong = |v: &Value| StoreError::Corrupt(format!("the store script answered {v:?}"));
    match op {
        StoreOp::PutMessage { .. }
        | StoreOp::DeleteMessage { .. }
        | StoreOp::SetAttr { .. }
        | StoreOp::Window { .. } => match &v {
            Value::BulkString(b) if b == b"D" => Ok(StoreAnswer::Done),
            Value::BulkString(b) if b == b"F" => Ok(StoreAnswer::Full),
            _ => Err(wrong(&v)),
        },
        StoreOp::Attr { .. } => match v {
            Value::Array(mut a) if a.len() <= 1 => match a.pop() {
                None | Some(Value::Nil) => Ok(StoreAnswer::Attr(None)),
                Some(v) => text(v, "an attribute").map(|v| StoreAnswer::Attr(Some(v))),
            },
            other => Err(wrong(&other)),
        },
        StoreOp::Attrs { .. } => match v {
            Value::Array(flat) => {
                let mut attrs = Vec::with_capacity(flat.len() / 2);
                let mut flat = flat.into_iter();
                while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
                    attrs.push((
                        text(name, "an attribute name")?,
                        text(value, "an attribute")?,
                    ));
                }
                attrs.sort();
                Ok(StoreAnswer::Attrs(attrs))
            }
            other => Err(wrong(&other)),
        },
        StoreOp::Messages { .. } => {
            let Value::Array(pair) = v else {
                return Err(wrong(&v));
            };
            let [Value::Int(more), Value::Array(flat)] = <[Value; 2]>::try_from(pair)
                .map_err(|p| StoreError::Corrupt(format!("the store script answered {p:?}")))?
            else {
                return Err(StoreError::Corrupt(
                    "a read of messages answered wrongly".into(),
                ));
            };
            let mut messages: Vec<(u64, StoredMessage)> = Vec::with_capacity(flat.len() / 2);
            let mut flat = flat.into_iter();
            while let (Some(m), Some(body)) = (flat.next(), flat.next()) {
                let position = match &m {
                    Value::BulkString(b) => position_of(b),
                    _ => None,
                }
                .ok_or_else(|| StoreError::Corrupt(format!("a queue member {m:?}")))?;
                let Value::BulkString(body) = body else {
                    return Err(StoreError::Corrupt(format!(
                        "the message at position {position} has no body"
                    )));
                };
                if body.len() < HEADER {
                    return Err(StoreError::Corrupt(format!(
                        "the message at position {position} is too short"
                    )));
                }
                messages.push((position, decode(&body)?));
            }
            Ok(StoreAnswer::Messages {
                messages,
                more: more != 0,
            })
        }
    }
}

/// Every key of the store, under its prefix.
struct Keys {
    prefix: String,
}

impl Keys {
    /// The account's messages, their bodies, its queue's bytes and its attributes: one hash
    /// tag, so one Redis Cluster slot.
    fn account(&self, app: &str, account: &str) -> [String; 4] {
        let base = format!("{}{{{}}}", self.prefix, field(app, account));
        ["msgs", "bodies", "bytes", "attrs"].map(|k| format!("{base}:{k}"))
    }

    fn windows(&self) -> String {
        format!("{}{{windows}}", self.prefix)
    }

    fn positions(&self) -> String {
        format!("{}{{positions}}", self.prefix)
    }
}

/// `app:account`, each escaped: the one unescaped `:` separates them.
fn field(app: &str, account: &str) -> String {
    format!("{}:{}", escape(app), escape(account))
}

fn split_field(f: &str) -> Option<(String, String)> {
    let (app, account) = f.split_once(':')?;
    Some((unescape(app)?, unescape(account)?))
}

/// A name as part of a key: `%`, `{`, `}` and `:` percent-encoded, so that no name can end a
/// hash tag, start another, or pass for the separator between app and account.
pub(crate) fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            ':' => out.push_str("%3A"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3)?;
        out.push(match code {
            "25" => '%',
            "7B" => '{',
            "7D" => '}',
            "3A" => ':',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests;
