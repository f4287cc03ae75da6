//! Durable storage for the Beckon broker.
//!
//! [`RedbStore`] implements the broker's [`Store`] on redb, an embedded, crash-safe
//! (copy-on-write B-tree, fsync on commit) key-value database in pure Rust. It carries out the
//! broker's batches: every call to [`Store::execute`] is one transaction, committed and synced
//! before it answers, however many batches it is given (group commit). So a write the broker
//! acknowledged survives `kill -9`, and the cost of a sync is shared by everything that
//! arrived while the previous one ran. It is not a cache and not shared between processes: one
//! server owns one data directory.
//!
//! [`RedisStore`] implements the same trait on Redis (or a Redis Cluster), for cluster mode,
//! where several servers share their storage: see its module's documentation and
//! `docs/cluster.md`.
//!
//! ```
//! use beckon_broker::{Store, StoreAnswer, StoreBatch, StoreOp};
//! use beckon_store::RedbStore;
//!
//! let dir = std::env::temp_dir().join(format!("beckon-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let mut store = RedbStore::open(&dir.join("beckon.redb")).unwrap();
//! let (app, account) = ("app".to_owned(), "alice".to_owned());
//! let set = StoreOp::SetAttr { app: app.clone(), account: account.clone(), name: "color".into(),
//!     value: Some("blue".into()), max_attrs: 256 };
//! let get = StoreOp::Attr { app, account, name: "color".into() };
//! let done = store.execute(vec![StoreBatch { id: 1, ops: vec![set, get] }]);
//! let answers = done[0].answers.as_ref().unwrap();
//! assert_eq!(answers[1].as_ref().unwrap(), &StoreAnswer::Attr(Some("blue".into())));
//! # drop(store); std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableTable, Table, TableDefinition, WriteTransaction};

use beckon_broker::{
    Portion, QueueLimit, Recovered, Store, StoreAnswer, StoreBatch, StoreDone, StoreError, StoreOp,
    StoredMessage,
};

/// (app, account, attribute name) → value.
const ATTRS: TableDefinition<'_, (&str, &str, &str), &str> = TableDefinition::new("user_attrs");
/// (app, account, position) → encoded [`StoredMessage`]: an account's messages in the order
/// they were accepted.
const OFFLINE: TableDefinition<'_, (&str, &str, u64), &[u8]> =
    TableDefinition::new("offline_messages");
/// (app, account) → (messages, bytes) in the account's queue, for the queue limits.
const QUEUES: TableDefinition<'_, (&str, &str), (u64, u64)> = TableDefinition::new("queues");
/// Named counters: [`NEXT_POSITION`].
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// (app, account) → the end of its restart window (Unix ms).
const WINDOWS: TableDefinition<'_, (&str, &str), u64> = TableDefinition::new("restart_windows");

/// Above every position ever written.
const NEXT_POSITION: &str = "next_position";

/// The bytes of a record before the sender and the body (see [`encode`]).
pub(crate) const HEADER: usize = 20;

/// The broker's store in a redb database file. Handles share one database.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

/// A redb failure as the broker's error: I/O and corruption by their kind, the rest as a
/// failed read or write (`kind`).
fn classify(e: impl Into<redb::Error>, kind: fn(redb::Error) -> StoreError) -> StoreError {
    match e.into() {
        redb::Error::Io(e) => StoreError::Io(e),
        redb::Error::Corrupted(what) => StoreError::Corrupt(what),
        e => kind(e),
    }
}

fn write_err(e: impl Into<redb::Error>) -> StoreError {
    classify(e, StoreError::write)
}

fn read_err(e: impl Into<redb::Error>) -> StoreError {
    classify(e, StoreError::read)
}

impl RedbStore {
    /// Opens (or creates) the database at `path`, creating its tables. A database written
    /// before message positions were global is brought up to date (its queue counts and next
    /// position are computed once).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open = || -> Result<Database, redb::Error> {
            let db = Database::create(path)?;
            let txn = db.begin_write()?;
            txn.open_table(ATTRS)?;
            txn.open_table(OFFLINE)?;
            txn.open_table(QUEUES)?;
            txn.open_table(WINDOWS)?;
            let counted = txn.open_table(META)?.get(NEXT_POSITION)?.is_some();
            if !counted {
                count_queues(&txn)?;
            }
            txn.commit()?;
            Ok(db)
        };
        let db = open().map_err(|e| StoreError::Open {
            path: path.to_owned(),
            source: e.into(),
        })?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Runs every batch in one write transaction; commits it when anything was written.
    fn run(&self, batches: &[StoreBatch]) -> Result<Vec<Vec<Answer>>, StoreError> {
        // A message acknowledged in the same transaction that stores it never touches the
        // tables: the group commit's saving when the store is behind. Only a message stored
        // without a limit can have been handed out before it was stored. A limited write or a
        // read of the account between the two must see the message: it is kept then.
        let mut put: HashMap<(&str, &str), HashSet<u64>> = HashMap::new();
        let mut cancelled: HashSet<(&str, &str, u64)> = HashSet::new();
        for op in ops(batches) {
            match op {
                StoreOp::PutMessage {
                    app,
                    account,
                    position,
                    limit: None,
                    ..
                } => {
                    put.entry((app, account)).or_default().insert(*position);
                }
                StoreOp::DeleteMessage {
                    app,
                    account,
                    position,
                } => {
                    let pending = put.get_mut(&(app.as_str(), account.as_str()));
                    if pending.is_some_and(|p| p.remove(position)) {
                        cancelled.insert((app, account, *position));
                    }
                }
                StoreOp::PutMessage {
                    app,
                    account,
                    limit: Some(_),
                    ..
                }
                | StoreOp::Messages { app, account, .. } => {
                    put.remove(&(app.as_str(), account.as_str()));
                }
                _ => {}
            }
        }

        let txn = self.db.begin_write().map_err(write_err)?;
        let mut t = Tables {
            attrs: txn.open_table(ATTRS).map_err(write_err)?,
            offline: txn.open_table(OFFLINE).map_err(write_err)?,
            queues: txn.open_table(QUEUES).map_err(write_err)?,
            meta: txn.open_table(META).map_err(write_err)?,
            windows: txn.open_table(WINDOWS).map_err(write_err)?,
            wrote: false,
            next_position: None,
        };
        let mut out = Vec::with_capacity(batches.len());
        for b in batches {
            let mut answers = Vec::with_capacity(b.ops.len());
            for op in &b.ops {
                let skip = match op {
                    StoreOp::PutMessage {
                        app,
                        account,
                        position,
                        ..
                    }
                    | StoreOp::DeleteMessage {
                        app,
                        account,
                        position,
                    } => cancelled.contains(&(app.as_str(), account.as_str(), *position)),
                    _ => false,
                };
                answers.push(if skip {
                    // A position is used even when its message is never written: the next
                    // position must still pass it, or a restart would hand it out again.
                    if let StoreOp::PutMessage { position, .. } = op {
                        t.passed(*position);
                    }
                    Ok(StoreAnswer::Done)
                } else {
                    t.run(op)?
                });
            }
            out.push(answers);
        }
        if let Some(next) = t.next_position {
            let known = t.meta.get(NEXT_POSITION).map_err(write_err)?;
            if known.is_none_or(|k| k.value() < next) {
                t.meta.insert(NEXT_POSITION, next).map_err(write_err)?;
            }
        }
        let wrote = t.wrote || !cancelled.is_empty();
        drop(t);
        if wrote {
            txn.commit().map_err(write_err)?;
        } else {
            txn.abort().map_err(write_err)?;
        }
        Ok(out)
    }
}

/// The answer to one operation: a read may fail on its own (a corrupt record); a write that
/// fails fails the transaction (`Err` of [`Tables::run`]).
type Answer = Result<StoreAnswer, StoreError>;

fn ops(batches: &[StoreBatch]) -> impl Iterator<Item = &StoreOp> {
    batches.iter().flat_map(|b| b.ops.iter())
}

/// The tables of one write transaction.
struct Tables<'txn> {
    attrs: Table<'txn, (&'static str, &'static str, &'static str), &'static str>,
    offline: Table<'txn, (&'static str, &'static str, u64), &'static [u8]>,
    queues: Table<'txn, (&'static str, &'static str), (u64, u64)>,
    meta: Table<'txn, &'static str, u64>,
    windows: Table<'txn, (&'static str, &'static str), u64>,
    wrote: bool,
    /// Above the highest position written in this transaction.
    next_position: Option<u64>,
}

impl Tables<'_> {
    fn run(&mut self, op: &StoreOp) -> Result<Answer, StoreError> {
        match op {
            StoreOp::PutMessage {
                app,
                account,
                position,
                message,
                limit,
            } => self.put(app, account, *position, message, *limit).map(Ok),
            StoreOp::DeleteMessage {
                app,
                account,
                position,
            } => {
                let removed = self
                    .offline
                    .remove((app.as_str(), account.as_str(), *position))
                    .map_err(write_err)?
                    .map(|v| v.value().len().saturating_sub(HEADER));
                if let Some(size) = removed {
                    self.count(app, account, -1, -(size as i64))?;
                    self.wrote = true;
                }
                Ok(Ok(StoreAnswer::Done))
            }
            StoreOp::SetAttr {
                app,
                account,
                name,
                value,
                max_attrs,
            } => self
                .set_attr(app, account, name, value.as_deref(), *max_attrs)
                .map(Ok),
            StoreOp::Attr { app, account, name } => Ok(self
                .attrs
                .get((app.as_str(), account.as_str(), name.as_str()))
                .map(|v| StoreAnswer::Attr(v.map(|v| v.value().to_owned())))
                .map_err(read_err)),
            StoreOp::Attrs { app, account } => {
                Ok(self.attrs_of(app, account).map(StoreAnswer::Attrs))
            }
            StoreOp::Messages {
                app,
                account,
                after,
                max_count,
                max_bytes,
            } => Ok(self.messages(app, account, *after, *max_count, *max_bytes)),
            StoreOp::Window {
                app,
                account,
                until_ms,
            } => {
                self.windows
                    .insert((app.as_str(), account.as_str()), *until_ms)
                    .map_err(write_err)?;
                self.wrote = true;
                Ok(Ok(StoreAnswer::Done))
            }
        }
    }

    fn put(
        &mut self,
        app: &str,
        account: &str,
        position: u64,
        message: &StoredMessage,
        limit: Option<QueueLimit>,
    ) -> Result<StoreAnswer, StoreError> {
        if let Some(l) = limit {
            let (count, bytes) = self.queue(app, account)?;
            let over_bytes = usize::try_from(bytes)
                .unwrap_or(usize::MAX)
                .saturating_add(message.size())
                > l.bytes;
            if usize::try_from(count).unwrap_or(usize::MAX) >= l.messages || over_bytes {
                return Ok(StoreAnswer::Full);
            }
        }
        let old = self
            .offline
            .insert((app, account, position), encode(message).as_slice())
            .map_err(write_err)?
            .map(|v| v.value().len().saturating_sub(HEADER));
        // Positions are never reused; a second write of one replaces it.
        let (n, size) = match old {
            Some(old) => (0, message.size() as i64 - old as i64),
            None => (1, message.size() as i64),
        };
        self.count(app, account, n, size)?;
        self.wrote = true;
        self.passed(position);
        Ok(StoreAnswer::Done)
    }

    /// The next position must be above `position`.
    fn passed(&mut self, position: u64) {
        let next = position.saturating_add(1);
        self.next_position = Some(self.next_position.map_or(next, |n| n.max(next)));
    }

    /// The account's (messages, bytes).
    fn queue(&self, app: &str, account: &str) -> Result<(u64, u64), StoreError> {
        Ok(self
            .queues
            .get((app, account))
            .map_err(write_err)?
            .map_or((0, 0), |v| v.value()))
    }

    fn count(&mut self, app: &str, account: &str, n: i64, bytes: i64) -> Result<(), StoreError> {
        let (count, size) = self.queue(app, account)?;
        let count = count.saturating_add_signed(n);
        let size = size.saturating_add_signed(bytes);
        if count == 0 {
            self.queues.remove((app, account)).map_err(write_err)?;
        } else {
            self.queues
                .insert((app, account), (count, size))
                .map_err(write_err)?;
        }
        Ok(())
    }

    fn set_attr(
        &mut self,
        app: &str,
        account: &str,
        name: &str,
        value: Option<&str>,
        max_attrs: usize,
    ) -> Result<StoreAnswer, StoreError> {
        match value {
            Some(v) => {
                let exists = self
                    .attrs
                    .get((app, account, name))
                    .map_err(write_err)?
                    .is_some();
                if !exists {
                    // Counting stops at the limit: O(limit), not O(attributes).
                    let mut count = 0;
                    for entry in self
                        .attrs
                        .range((app, account, "")..)
                        .map_err(write_err)?
                        .take(max_attrs)
                    {
                        let (k, _) = entry.map_err(write_err)?;
                        let (a, acc, _) = k.value();
                        if a != app || acc != account {
                            break;
                        }
                        count += 1;
                    }
                    if count >= max_attrs {
                        return Ok(StoreAnswer::Full);
                    }
                }
                self.attrs
                    .insert((app, account, name), v)
                    .map_err(write_err)?;
            }
            None => {
                self.attrs.remove((app, account, name)).map_err(write_err)?;
            }
        }
        self.wrote = true;
        Ok(StoreAnswer::Done)
    }

    fn attrs_of(&self, app: &str, account: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.attrs.range((app, account, "")..).map_err(read_err)? {
            let (k, v) = entry.map_err(read_err)?;
            let (a, acc, name) = k.value();
            if a != app || acc != account {
                break;
            }
            out.push((name.to_owned(), v.value().to_owned()));
        }
        Ok(out)
    }

    fn messages(
        &self,
        app: &str,
        account: &str,
        after: u64,
        max_count: usize,
        max_bytes: usize,
    ) -> Answer {
        let mut portion = Portion::new(max_count, max_bytes);
        let from = after.saturating_add(1);
        for entry in self
            .offline
            .range((app, account, from)..=(app, account, u64::MAX))
            .map_err(read_err)?
        {
            let (k, v) = entry.map_err(read_err)?;
            if !portion.take(k.value().2, decode(v.value())?) {
                break;
            }
        }
        Ok(portion.answer())
    }
}

/// Brings a database from before positions were global up to date: its messages were kept
/// under per-account positions from 0, and positions now start at 1 (0 reads as "none"), so
/// each moves up by one; then every account's queue count and the next position are computed.
fn count_queues(txn: &WriteTransaction) -> Result<(), redb::Error> {
    let mut offline = txn.open_table(OFFLINE)?;
    let mut records: Vec<(String, String, u64, Vec<u8>)> = Vec::new();
    for entry in offline.iter()? {
        let (k, v) = entry?;
        let (app, account, position) = k.value();
        records.push((
            app.to_owned(),
            account.to_owned(),
            position,
            v.value().to_vec(),
        ));
    }
    offline.retain(|_, _| false)?;
    let mut queues = txn.open_table(QUEUES)?;
    let mut next = 1u64;
    for (app, account, position, record) in &records {
        let position = position.saturating_add(1);
        offline.insert(
            (app.as_str(), account.as_str(), position),
            record.as_slice(),
        )?;
        next = next.max(position.saturating_add(1));
        let key = (app.as_str(), account.as_str());
        let (n, bytes) = queues.get(key)?.map_or((0, 0), |v| v.value());
        let size = record.len().saturating_sub(HEADER) as u64;
        queues.insert(key, (n + 1, bytes + size))?;
    }
    txn.open_table(META)?.insert(NEXT_POSITION, next)?;
    Ok(())
}

impl Store for RedbStore {
    fn execute(&mut self, batches: Vec<StoreBatch>) -> Vec<StoreDone> {
        match self.run(&batches) {
            Ok(answers) => batches
                .iter()
                .zip(answers)
                .map(|(b, answers)| StoreDone {
                    id: b.id,
                    answers: Ok(answers),
                })
                .collect(),
            Err(e) => batches
                .iter()
                .map(|b| StoreDone {
                    id: b.id,
                    answers: Err(e.again()),
                })
                .collect(),
        }
    }

    fn recover(&mut self) -> Result<Recovered, StoreError> {
        let run = || -> Result<Recovered, redb::Error> {
            let txn = self.db.begin_write()?;
            let next_position = txn
                .open_table(META)?
                .get(NEXT_POSITION)?
                .map_or(0, |v| v.value());
            let mut windows = Vec::new();
            {
                let mut table = txn.open_table(WINDOWS)?;
                for entry in table.iter()? {
                    let (k, v) = entry?;
                    let (app, account) = k.value();
                    windows.push((app.to_owned(), account.to_owned(), v.value()));
                }
                table.retain(|_, _| false)?;
            }
            txn.commit()?;
            Ok(Recovered {
                next_position,
                windows,
            })
        };
        run().map_err(read_err)
    }
}

/// `server_msg_id u64 | sent_at_ms u64 | sender_len u32 | sender | msg`, big-endian.
pub(crate) fn encode(m: &StoredMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + m.sender.len() + m.msg.len());
    out.extend_from_slice(&m.server_msg_id.to_be_bytes());
    out.extend_from_slice(&m.sent_at_ms.to_be_bytes());
    let sender_len = u32::try_from(m.sender.len()).expect("accounts are at most 128 characters");
    out.extend_from_slice(&sender_len.to_be_bytes());
    out.extend_from_slice(m.sender.as_bytes());
    out.extend_from_slice(m.msg.as_bytes());
    out
}

pub(crate) fn decode(b: &[u8]) -> Result<StoredMessage, StoreError> {
    let parse = || -> Option<StoredMessage> {
        let len = u32::from_be_bytes(b.get(16..HEADER)?.try_into().ok()?) as usize;
        Some(StoredMessage {
            server_msg_id: u64::from_be_bytes(b.get(0..8)?.try_into().ok()?),
            sent_at_ms: u64::from_be_bytes(b.get(8..16)?.try_into().ok()?),
            sender: String::from_utf8(b.get(HEADER..HEADER + len)?.to_vec()).ok()?,
            msg: String::from_utf8(b.get(HEADER + len..)?.to_vec()).ok()?,
        })
    };
    parse().ok_or_else(|| StoreError::Corrupt("a stored message does not decode".into()))
}

mod redis_store;

pub use redis_store::{BLOCK, DEFAULT_PREFIX, RedisStore, RedisTimeouts};

#[cfg(test)]
mod behaviour;
#[cfg(test)]
mod tests;
