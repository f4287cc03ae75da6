//! The storage the broker needs, as batches of operations its driver carries out.
//!
//! The broker never calls a store on a client's path (only an operator's read of an account's
//! attributes runs on its handle). It collects what it needs — write-ahead records of p2p
//! messages, their deletion once acknowledged, attribute writes, and the reads that must see
//! them — into a [`StoreBatch`] per round of inputs ([`Broker::poll_store`]); the driver runs
//! each batch on a [`Store`] (one transaction, durable before it answers) wherever it likes (the
//! server: a thread of its own) and hands the [`StoreDone`] back
//! ([`Broker::handle_store_done`]), batches in the order they were polled. Whatever depends on a
//! batch — a sender's `onMessageSendSuccess`, an attribute read back — waits for its answer.
//!
//! [`Broker::poll_store`]: crate::Broker::poll_store
//! [`Broker::handle_store_done`]: crate::Broker::handle_store_done

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use beckon_proto::CallError;

use crate::NameMap;

/// A p2p message kept for its recipient until the recipient acknowledges it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    pub sender: String,
    pub msg: String,
    pub server_msg_id: u64,
    /// Unix milliseconds when the server accepted it.
    pub sent_at_ms: u64,
}

impl StoredMessage {
    /// What the message counts for against a queue's byte bound.
    pub fn size(&self) -> usize {
        self.sender.len() + self.msg.len()
    }
}

/// How many messages (and bytes of them) an account's queue may hold before a write-ahead
/// record for it is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimit {
    pub messages: usize,
    pub bytes: usize,
}

/// One store operation. A batch's operations run in order, in one transaction: a read sees
/// the writes before it.
///
/// Messages are kept per recipient account under a *position*: positions are handed out by
/// the broker, increase with every message it accepts (for any account, across restarts: see
/// [`Recovered::next_position`]) and are never reused, so an account's queue in position order
/// is the order its messages were accepted in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// Write-ahead: `message` was accepted for `account`. With a `limit`, refused
    /// ([`StoreAnswer::Full`]) when the account's queue already holds that much.
    PutMessage {
        app: String,
        account: String,
        position: u64,
        message: StoredMessage,
        limit: Option<QueueLimit>,
    },
    /// The message at `position` was acknowledged by its recipient (or expired): it goes.
    /// Nothing happens when there is none.
    DeleteMessage {
        app: String,
        account: String,
        position: u64,
    },
    /// Sets (`Some`) or deletes (`None`) an attribute. Setting a new name when the account has
    /// `max_attrs` already is refused ([`StoreAnswer::Full`]).
    SetAttr {
        app: String,
        account: String,
        name: String,
        value: Option<String>,
        max_attrs: usize,
    },
    /// Reads one attribute: [`StoreAnswer::Attr`].
    Attr {
        app: String,
        account: String,
        name: String,
    },
    /// Reads all attributes of an account, sorted by name: [`StoreAnswer::Attrs`].
    Attrs { app: String, account: String },
    /// Reads the account's messages after `after`, in position order, at most `max_count` of
    /// them and (beyond the first) at most `max_bytes`: [`StoreAnswer::Messages`].
    Messages {
        app: String,
        account: String,
        after: u64,
        max_count: usize,
        max_bytes: usize,
    },
    /// A graceful shutdown found the account online: after the restart, messages for it are
    /// queued without the offline cap until `until_ms` (Unix milliseconds), so that senders who
    /// are back first do not fail. Read once by [`Store::recover`].
    Window {
        app: String,
        account: String,
        until_ms: u64,
    },
}

impl StoreOp {
    /// Whether this operation changes the store.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Self::PutMessage { .. }
                | Self::DeleteMessage { .. }
                | Self::SetAttr { .. }
                | Self::Window { .. }
        )
    }

    /// The operation's name, app and account, for a log line.
    pub fn describe(&self) -> (&'static str, &str, &str) {
        match self {
            Self::PutMessage { app, account, .. } => ("put_message", app, account),
            Self::DeleteMessage { app, account, .. } => ("delete_message", app, account),
            Self::SetAttr { app, account, .. } => ("set_attr", app, account),
            Self::Attr { app, account, .. } => ("attr", app, account),
            Self::Attrs { app, account } => ("attrs", app, account),
            Self::Messages { app, account, .. } => ("messages", app, account),
            Self::Window { app, account, .. } => ("window", app, account),
        }
    }
}

/// The answer to one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreAnswer {
    /// A write was made (or a delete found nothing to delete).
    Done,
    /// A write was refused for its limit; nothing changed.
    Full,
    Attr(Option<String>),
    Attrs(Vec<(String, String)>),
    /// Messages in position order, and whether more follow the last of them.
    Messages {
        messages: Vec<(u64, StoredMessage)>,
        more: bool,
    },
}

/// What the broker hands its driver: operations to carry out, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreBatch {
    /// Batches are numbered from 1 in the order the broker hands them out.
    pub id: u64,
    pub ops: Vec<StoreOp>,
}

/// The answers to a batch, for [`Broker::handle_store_done`](crate::Broker::handle_store_done).
#[derive(Debug)]
pub struct StoreDone {
    pub id: u64,
    /// One answer per operation, in order; an error for the whole batch when its writes were
    /// not kept (nothing of them was).
    pub answers: Result<Vec<Result<StoreAnswer, StoreError>>, StoreError>,
}

/// What the broker must know to run on a store that already holds data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Above every position ever stored (at least 1): where the broker's positions continue.
    pub next_position: u64,
    /// Accounts a graceful shutdown found online, with the end of their window (Unix ms).
    pub windows: Vec<(String, String, u64)>,
}

/// Why a store operation failed.
///
/// The detail (file paths, database messages) is for the server's log: a client whose request
/// failed on it gets `GENERAL_E_FAILED` with a generic message (see the `From` conversion into
/// [`CallError`]), and the broker counts the failure in [`BrokerStats::store_errors`].
///
/// [`BrokerStats::store_errors`]: crate::BrokerStats::store_errors
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be opened or created.
    Open { path: PathBuf, source: BoxError },
    /// A read did not complete.
    Read(BoxError),
    /// A write did not commit: nothing of it was kept.
    Write(BoxError),
    /// The database, or a record in it, is corrupt.
    Corrupt(String),
    /// The operating system refused (disk full, permissions, an I/O error).
    Io(io::Error),
    /// The store's server could not be reached, or stopped answering mid-call (a networked
    /// store such as Redis): a write under way may or may not have been kept.
    Unreachable(BoxError),
}

/// The error of a store's backend, kept whole for the log.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl StoreError {
    /// A failed read, from any backend error.
    pub fn read(e: impl Into<BoxError>) -> Self {
        Self::Read(e.into())
    }

    /// A failed write, from any backend error.
    pub fn write(e: impl Into<BoxError>) -> Self {
        Self::Write(e.into())
    }

    /// The same failure again, for each operation of a batch that failed as a whole.
    pub fn again(&self) -> Self {
        match self {
            Self::Unreachable(e) => Self::Unreachable(e.to_string().into()),
            _ => Self::Write(self.to_string().into()),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(e) => write!(f, "store read failed: {e}"),
            Self::Write(e) => write!(f, "store write failed (nothing was kept): {e}"),
            Self::Io(e) => write!(f, "store I/O error: {e}"),
            Self::Unreachable(e) => write!(f, "the store is unreachable: {e}"),
            Self::Corrupt(what) => write!(f, "the store is corrupt: {what}"),
            Self::Open { path, source } => {
                write!(f, "cannot open the store {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Open { source: e, .. }
            | Self::Read(e)
            | Self::Write(e)
            | Self::Unreachable(e) => Some(&**e),
            Self::Io(e) => Some(e),
            Self::Corrupt(_) => None,
        }
    }
}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// What a client hears when the store failed: `GENERAL_E_FAILED` and nothing of the detail.
impl From<StoreError> for CallError {
    fn from(_: StoreError) -> Self {
        CallError::failed("the server could not reach its storage; try again later")
    }
}

/// User attributes and p2p messages, scoped by app: where a driver carries out the broker's
/// batches.
///
/// A store is a handle (`Clone`): the broker keeps one (which it calls only for an operator's
/// read), so that drivers
/// and tests can reach the store through [`Broker::store`](crate::Broker::store); a driver
/// runs batches on a handle of its own, off the broker's path. An implementation must make the
/// batches it is given atomic and durable (for a durable store) before it answers, and may
/// merge consecutive batches into one transaction (group commit). A Redis implementation keeps
/// an account's messages in a sorted set scored by position, the counts beside it, and runs a
/// batch as one `MULTI` (or a script, for the limits).
pub trait Store: Clone {
    /// Runs `batches`, in order, atomically: either every write of them is kept (and synced,
    /// for a durable store) or none is. Reads see the writes before them and are answered only
    /// with the writes kept. One [`StoreDone`] per batch, in order.
    fn execute(&mut self, batches: Vec<StoreBatch>) -> Vec<StoreDone>;

    /// What the broker must know when it starts on this store; consumes the restart windows.
    fn recover(&mut self) -> Result<Recovered, StoreError>;
}

type Key = (String, String);

/// A store in memory, for tests and ephemeral servers. Its handles share one state.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Memory>>,
}

#[derive(Debug, Default)]
struct Memory {
    attrs: NameMap<Key, BTreeMap<String, String>>,
    queues: NameMap<Key, BTreeMap<u64, StoredMessage>>,
    windows: NameMap<Key, u64>,
    /// Above every position ever stored.
    next_position: u64,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Memory) -> T) -> T {
        // A panic while the lock is held leaves no half-made change: every operation below
        // completes or does nothing.
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The attributes of an account, sorted by name (for tests).
    pub fn user_attrs(&self, app: &str, account: &str) -> Vec<(String, String)> {
        self.with(|m| m.attrs_of(app, account))
    }

    /// The messages kept for an account, in position order (for tests).
    pub fn messages(&self, app: &str, account: &str) -> Vec<StoredMessage> {
        self.with(|m| {
            m.queues
                .get(&key(app, account))
                .map(|q| q.values().cloned().collect())
                .unwrap_or_default()
        })
    }
}

fn key(app: &str, account: &str) -> Key {
    (app.to_owned(), account.to_owned())
}

impl Memory {
    fn attrs_of(&self, app: &str, account: &str) -> Vec<(String, String)> {
        self.attrs
            .get(&key(app, account))
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Carries out one operation. It is taken by value: its strings become the keys and its
    /// message the record, with nothing copied.
    fn run(&mut self, op: StoreOp) -> StoreAnswer {
        match op {
            StoreOp::PutMessage {
                app,
                account,
                position,
                message,
                limit,
            } => {
                let q = self.queues.entry((app, account)).or_default();
                if let Some(l) = limit {
                    let bytes: usize = q.values().map(StoredMessage::size).sum();
                    if q.len() >= l.messages || bytes.saturating_add(message.size()) > l.bytes {
                        return StoreAnswer::Full;
                    }
                }
                q.insert(position, message);
                self.next_position = self.next_position.max(position.saturating_add(1));
                StoreAnswer::Done
            }
            StoreOp::DeleteMessage {
                app,
                account,
                position,
            } => {
                let k = (app, account);
                if let Some(q) = self.queues.get_mut(&k) {
                    q.remove(&position);
                    if q.is_empty() {
                        self.queues.remove(&k);
                        crate::shrink::shrink_map(&mut self.queues);
                    }
                }
                StoreAnswer::Done
            }
            StoreOp::SetAttr {
                app,
                account,
                name,
                value,
                max_attrs,
            } => {
                let k = (app, account);
                match value {
                    Some(v) => {
                        let attrs = self.attrs.entry(k).or_default();
                        if !attrs.contains_key(&name) && attrs.len() >= max_attrs {
                            return StoreAnswer::Full;
                        }
                        attrs.insert(name, v);
                    }
                    None => {
                        if let Some(attrs) = self.attrs.get_mut(&k) {
                            attrs.remove(&name);
                            if attrs.is_empty() {
                                self.attrs.remove(&k);
                                crate::shrink::shrink_map(&mut self.attrs);
                            }
                        }
                    }
                }
                StoreAnswer::Done
            }
            StoreOp::Attr { app, account, name } => StoreAnswer::Attr(
                self.attrs
                    .get(&(app, account))
                    .and_then(|m| m.get(&name).cloned()),
            ),
            StoreOp::Attrs { app, account } => StoreAnswer::Attrs(self.attrs_of(&app, &account)),
            StoreOp::Messages {
                app,
                account,
                after,
                max_count,
                max_bytes,
            } => {
                let Some(q) = self.queues.get(&(app, account)) else {
                    return StoreAnswer::Messages {
                        messages: Vec::new(),
                        more: false,
                    };
                };
                let mut portion = Portion::new(max_count, max_bytes);
                for (position, m) in q.range(after.saturating_add(1)..) {
                    if !portion.take(*position, m.clone()) {
                        break;
                    }
                }
                portion.answer()
            }
            StoreOp::Window {
                app,
                account,
                until_ms,
            } => {
                self.windows.insert((app, account), until_ms);
                StoreAnswer::Done
            }
        }
    }
}

/// A read of stored messages filling up to its bounds: every implementation reads the same
/// portion for the same queue.
#[derive(Debug)]
pub struct Portion {
    max_count: usize,
    max_bytes: usize,
    bytes: usize,
    messages: Vec<(u64, StoredMessage)>,
    more: bool,
}

impl Portion {
    pub fn new(max_count: usize, max_bytes: usize) -> Self {
        Self {
            max_count,
            max_bytes,
            bytes: 0,
            messages: Vec::new(),
            more: false,
        }
    }

    /// Offers the next message; false (and it is not taken) once the portion is full, so the
    /// read stops. The first message is always taken, whatever its size.
    pub fn take(&mut self, position: u64, m: StoredMessage) -> bool {
        let bytes = self.bytes.saturating_add(m.size());
        if self.messages.len() >= self.max_count
            || (!self.messages.is_empty() && bytes > self.max_bytes)
        {
            self.more = true;
            return false;
        }
        self.bytes = bytes;
        self.messages.push((position, m));
        true
    }

    pub fn answer(self) -> StoreAnswer {
        StoreAnswer::Messages {
            messages: self.messages,
            more: self.more,
        }
    }
}

impl Store for MemoryStore {
    fn execute(&mut self, batches: Vec<StoreBatch>) -> Vec<StoreDone> {
        self.with(|m| {
            batches
                .into_iter()
                .map(|b| StoreDone {
                    id: b.id,
                    answers: Ok(b.ops.into_iter().map(|op| Ok(m.run(op))).collect()),
                })
                .collect()
        })
    }

    fn recover(&mut self) -> Result<Recovered, StoreError> {
        Ok(self.with(|m| {
            let next_position = m.next_position.max(1);
            let windows = m
                .windows
                .drain()
                .map(|((app, account), until)| (app, account, until))
                .collect();
            Recovered {
                next_position,
                windows,
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(i: u64) -> StoredMessage {
        StoredMessage {
            sender: "s".into(),
            msg: format!("m{i}"),
            server_msg_id: i,
            sent_at_ms: 0,
        }
    }

    fn put(position: u64, limit: Option<QueueLimit>) -> StoreOp {
        StoreOp::PutMessage {
            app: "a".into(),
            account: "bob".into(),
            position,
            message: msg(position),
            limit,
        }
    }

    fn run(s: &mut MemoryStore, ops: Vec<StoreOp>) -> Vec<StoreAnswer> {
        let mut done = s.execute(vec![StoreBatch { id: 1, ops }]);
        let answers = done.pop().unwrap().answers.unwrap();
        answers.into_iter().map(Result::unwrap).collect()
    }

    #[test]
    fn queues_keep_position_order_and_their_limits() {
        let mut s = MemoryStore::new();
        let limit = Some(QueueLimit {
            messages: 2,
            bytes: usize::MAX,
        });
        let answers = run(&mut s, vec![put(5, None), put(3, limit), put(9, limit)]);
        assert_eq!(
            answers,
            [StoreAnswer::Done, StoreAnswer::Done, StoreAnswer::Full]
        );
        let read = StoreOp::Messages {
            app: "a".into(),
            account: "bob".into(),
            after: 0,
            max_count: 1,
            max_bytes: usize::MAX,
        };
        assert_eq!(
            run(&mut s, vec![read.clone()]),
            [StoreAnswer::Messages {
                messages: vec![(3, msg(3))],
                more: true
            }]
        );
        let delete = StoreOp::DeleteMessage {
            app: "a".into(),
            account: "bob".into(),
            position: 3,
        };
        let answers = run(&mut s, vec![delete, read]);
        assert_eq!(
            answers[1],
            StoreAnswer::Messages {
                messages: vec![(5, msg(5))],
                more: false
            }
        );
        assert_eq!(s.recover().unwrap().next_position, 6);
    }
}
