//! The storage the broker needs, behind a small synchronous trait.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::io;
use std::path::PathBuf;

use beckon_proto::CallError;

/// A p2p message kept for an offline account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    pub sender: String,
    pub msg: String,
    pub server_msg_id: u64,
    /// Unix milliseconds when the server accepted it.
    pub sent_at_ms: u64,
}

/// Whether an offline message was kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    Stored,
    /// The account already holds the maximum number of offline messages.
    Full,
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
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(e) => write!(f, "store read failed: {e}"),
            Self::Write(e) => write!(f, "store write failed (nothing was kept): {e}"),
            Self::Io(e) => write!(f, "store I/O error: {e}"),
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
            Self::Open { source: e, .. } | Self::Read(e) | Self::Write(e) => Some(&**e),
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

/// User attributes and offline messages, scoped by app.
///
/// Calls are synchronous: the broker core owns the store and an implementation must be fast
/// (in memory, or an embedded database with its own write batching).
pub trait Store {
    fn user_attr(&self, app: &str, account: &str, name: &str)
    -> Result<Option<String>, StoreError>;
    /// All attributes of an account, sorted by name.
    fn user_attrs(&self, app: &str, account: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// Sets (`Some`) or deletes (`None`) one attribute.
    fn set_user_attr(
        &mut self,
        app: &str,
        account: &str,
        name: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError>;
    fn user_attr_count(&self, app: &str, account: &str) -> Result<usize, StoreError>;
    /// Appends a message for `account`; `limit` caps the queue (`None`: no cap, used when a
    /// session ends with messages it never acknowledged).
    fn push_offline(
        &mut self,
        app: &str,
        account: &str,
        msg: StoredMessage,
        limit: Option<usize>,
    ) -> Result<PushOutcome, StoreError>;
    /// Removes and returns every stored message for `account`, oldest first.
    fn take_offline(&mut self, app: &str, account: &str) -> Result<Vec<StoredMessage>, StoreError>;
}

type Key = (String, String);

/// A store in memory, for tests and ephemeral servers.
#[derive(Debug, Default)]
pub struct MemoryStore {
    attrs: HashMap<Key, BTreeMap<String, String>>,
    offline: HashMap<Key, VecDeque<StoredMessage>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

fn key(app: &str, account: &str) -> Key {
    (app.to_owned(), account.to_owned())
}

impl Store for MemoryStore {
    fn user_attr(
        &self,
        app: &str,
        account: &str,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .attrs
            .get(&key(app, account))
            .and_then(|m| m.get(name).cloned()))
    }

    fn user_attrs(&self, app: &str, account: &str) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .attrs
            .get(&key(app, account))
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    fn set_user_attr(
        &mut self,
        app: &str,
        account: &str,
        name: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        match value {
            Some(v) => {
                self.attrs
                    .entry(key(app, account))
                    .or_default()
                    .insert(name.to_owned(), v.to_owned());
            }
            None => {
                let k = key(app, account);
                if let Some(m) = self.attrs.get_mut(&k) {
                    m.remove(name);
                    if m.is_empty() {
                        self.attrs.remove(&k);
                    }
                }
            }
        }
        Ok(())
    }

    fn user_attr_count(&self, app: &str, account: &str) -> Result<usize, StoreError> {
        Ok(self.attrs.get(&key(app, account)).map_or(0, BTreeMap::len))
    }

    fn push_offline(
        &mut self,
        app: &str,
        account: &str,
        msg: StoredMessage,
        limit: Option<usize>,
    ) -> Result<PushOutcome, StoreError> {
        let q = self.offline.entry(key(app, account)).or_default();
        if limit.is_some_and(|l| q.len() >= l) {
            return Ok(PushOutcome::Full);
        }
        q.push_back(msg);
        Ok(PushOutcome::Stored)
    }

    fn take_offline(&mut self, app: &str, account: &str) -> Result<Vec<StoredMessage>, StoreError> {
        Ok(self
            .offline
            .remove(&key(app, account))
            .map(Vec::from)
            .unwrap_or_default())
    }
}
