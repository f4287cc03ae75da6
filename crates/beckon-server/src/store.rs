//! The broker's store as the server opens it: in memory, or redb in a data directory.

use std::fmt;
use std::io;
use std::path::PathBuf;

use tracing::{error, info, warn};

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
        let store = RedbStore::open(&path).map_err(io::Error::other)?;
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

/// Calls the same method on whichever store this is (static dispatch).
macro_rules! each {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            Self::Memory($s) => $call,
            Self::Redb($s, _) => $call,
        }
    };
}

/// Logs a failed operation with its detail (paths, database messages): the broker counts the
/// failure and tells the client only that storage failed, so this log is where an operator
/// learns why.
fn logged<T>(
    op: &str,
    app: &str,
    account: &str,
    r: Result<T, StoreError>,
) -> Result<T, StoreError> {
    if let Err(e) = &r {
        error!(op, app, account, error = %e, "store operation failed");
    }
    r
}

impl Store for ServerStore {
    fn user_attr(
        &self,
        app: &str,
        account: &str,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        logged(
            "user_attr",
            app,
            account,
            each!(self, s => s.user_attr(app, account, name)),
        )
    }

    fn user_attrs(&self, app: &str, account: &str) -> Result<Vec<(String, String)>, StoreError> {
        logged(
            "user_attrs",
            app,
            account,
            each!(self, s => s.user_attrs(app, account)),
        )
    }

    fn set_user_attr(
        &mut self,
        app: &str,
        account: &str,
        name: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        let r = each!(self, s => s.set_user_attr(app, account, name, value));
        logged("set_user_attr", app, account, r)
    }

    fn user_attr_count(&self, app: &str, account: &str) -> Result<usize, StoreError> {
        logged(
            "user_attr_count",
            app,
            account,
            each!(self, s => s.user_attr_count(app, account)),
        )
    }

    fn push_offline(
        &mut self,
        app: &str,
        account: &str,
        msg: StoredMessage,
        limit: Option<usize>,
    ) -> Result<PushOutcome, StoreError> {
        let r = each!(self, s => s.push_offline(app, account, msg, limit));
        logged("push_offline", app, account, r)
    }

    fn take_offline(&mut self, app: &str, account: &str) -> Result<Vec<StoredMessage>, StoreError> {
        logged(
            "take_offline",
            app,
            account,
            each!(self, s => s.take_offline(app, account)),
        )
    }
}
