//! The broker's store as the server opens it: in memory, or redb in a data directory.

use std::fmt;
use std::io;
use std::path::PathBuf;

use tracing::{info, warn};

use beckon_broker::{MemoryStore, PushOutcome, Store, StoreError, StoredMessage};
use beckon_store::RedbStore;

use crate::config::{STORE_FILE, Storage};

/// The store the broker loop owns: one of the two kinds, without dynamic dispatch.
pub(crate) enum ServerStore {
    Memory(MemoryStore),
    /// The database and its file, for the logs.
    Redb(RedbStore, PathBuf),
}

impl fmt::Debug for ServerStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory(_) => f.write_str("ServerStore::Memory"),
            Self::Redb(_, path) => write!(f, "ServerStore::Redb({})", path.display()),
        }
    }
}

impl ServerStore {
    /// Opens the store `storage` names, creating the data directory and the database if they
    /// do not exist yet, and logs which store is in use.
    ///
    /// # Errors
    ///
    /// When the standard data directory cannot be found, the directory cannot be created, or
    /// the database cannot be opened (another process holds it, corrupt file, permissions);
    /// the message names the path.
    pub(crate) fn open(storage: &Storage) -> io::Result<Self> {
        let dir = storage.dir().map_err(io::Error::other)?;
        let Some(dir) = dir else {
            warn!(
                "store: in memory (ephemeral); user attributes and offline messages are lost \
                 when the server stops"
            );
            return Ok(Self::Memory(MemoryStore::new()));
        };
        std::fs::create_dir_all(&dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create the data directory {}: {e}", dir.display()),
            )
        })?;
        let path = dir.join(STORE_FILE);
        let store = RedbStore::open(&path).map_err(|e| {
            io::Error::other(format!("cannot open the store {}: {}", path.display(), e.0))
        })?;
        info!(path = %path.display(), "store: redb (durable)");
        Ok(Self::Redb(store, path))
    }
}

impl Drop for ServerStore {
    /// Dropping the database closes it; every write was committed (and synced) when it was
    /// made, so nothing is left to flush. The log says so, for operators watching a restart.
    fn drop(&mut self) {
        if let Self::Redb(_, path) = self {
            info!(path = %path.display(), "store closed");
        }
    }
}

impl Store for ServerStore {
    fn user_attr(
        &self,
        app: &str,
        account: &str,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        match self {
            Self::Memory(s) => s.user_attr(app, account, name),
            Self::Redb(s, _) => s.user_attr(app, account, name),
        }
    }

    fn user_attrs(&self, app: &str, account: &str) -> Result<Vec<(String, String)>, StoreError> {
        match self {
            Self::Memory(s) => s.user_attrs(app, account),
            Self::Redb(s, _) => s.user_attrs(app, account),
        }
    }

    fn set_user_attr(
        &mut self,
        app: &str,
        account: &str,
        name: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        match self {
            Self::Memory(s) => s.set_user_attr(app, account, name, value),
            Self::Redb(s, _) => s.set_user_attr(app, account, name, value),
        }
    }

    fn user_attr_count(&self, app: &str, account: &str) -> Result<usize, StoreError> {
        match self {
            Self::Memory(s) => s.user_attr_count(app, account),
            Self::Redb(s, _) => s.user_attr_count(app, account),
        }
    }

    fn push_offline(
        &mut self,
        app: &str,
        account: &str,
        msg: StoredMessage,
        limit: Option<usize>,
    ) -> Result<PushOutcome, StoreError> {
        match self {
            Self::Memory(s) => s.push_offline(app, account, msg, limit),
            Self::Redb(s, _) => s.push_offline(app, account, msg, limit),
        }
    }

    fn take_offline(&mut self, app: &str, account: &str) -> Result<Vec<StoredMessage>, StoreError> {
        match self {
            Self::Memory(s) => s.take_offline(app, account),
            Self::Redb(s, _) => s.take_offline(app, account),
        }
    }
}
