//! The sans-IO Beckon broker core.
//!
//! [`Broker`] owns sessions, presence, user attributes and p2p delivery for every app a server
//! serves. It performs no I/O, spawns nothing and reads no clock: a driver (the server, or the
//! simulation harness) feeds it connections, frames and the current time, and carries out the
//! [`Output`]s it returns — frames to write and connections to close. Storage goes through the
//! synchronous [`Store`] trait.
//!
//! ```
//! use std::time::Instant;
//! use beckon_broker::{Apps, Broker, BrokerConfig, ConnId, MemoryStore, Output};
//! use beckon_proto::codec::encode_client;
//! use beckon_proto::pb::{client_frame::Kind, Login};
//!
//! let now = Instant::now();
//! let mut broker = Broker::new(BrokerConfig::new(Apps::development(), [7; 32]), MemoryStore::new(), now, 0);
//! broker.connect(ConnId(1), now);
//! let login = Login { app_id: "demo".into(), account: "alice".into(), token: "_no_need_token".into(), ..Default::default() };
//! broker.handle_frame(ConnId(1), &encode_client(Kind::Login(login)), now);
//! assert!(matches!(broker.poll_output(), Some(Output::Send { conn: ConnId(1), .. })));
//! assert!(broker.is_online("demo", "alice"));
//! ```

mod broker;
mod config;
mod frame;
mod invoke;

pub use invoke::GATEWAY_REGISTER;
mod store;

pub use broker::{
    Broker, BrokerStats, CHANNEL_EVENT_CHANNEL, CloseReason, Output, USER_ONLINE_CHANNEL, uid_for,
};
pub use config::{AppConfig, Apps, BrokerConfig, OfflinePolicy};
pub use frame::OutFrame;
pub use store::{MemoryStore, PushOutcome, Store, StoreError, StoredMessage};

/// A connection, named by the driver. Ids must not be reused while the broker runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A session, named by the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);
