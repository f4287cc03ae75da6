//! The sans-IO Beckon broker core.
//!
//! [`Broker`] is the server side of the Signaling API for every app a server serves: sessions
//! and presence, user attributes, p2p messages with the offline store, channels, calls and
//! `invoke`. It performs no I/O, spawns nothing, reads no clock and logs nothing: a driver (the
//! server, the simulation harness, a benchmark) feeds it inputs with the current time and
//! carries out what it asks. It is not a server: listening, TLS, framing and logging are the
//! driver's.
//!
//! **Inputs** — [`connect`](Broker::connect), [`handle_frame`](Broker::handle_frame) (one whole
//! client frame), [`disconnect`](Broker::disconnect), [`handle_timeout`](Broker::handle_timeout),
//! [`shutdown`](Broker::shutdown).
//! **Outputs**, drained after every input — [`poll_output`](Broker::poll_output) until `None`
//! ([`Output::Send`] a frame, [`Output::Close`] a connection, in the order to carry them out),
//! then [`poll_timeout`](Broker::poll_timeout) to arm the driver's one timer.
//! **Storage** goes through the synchronous [`Store`] trait ([`MemoryStore`] here; redb in
//! `beckon-store`). A [`StoreError`] keeps its detail for the driver to log; the client only
//! hears `GENERAL_E_FAILED`, and [`BrokerStats::store_errors`] counts it.
//!
//! **Invariants**: every request is applied once and answered by one reply event; everything a
//! session is told is a sequenced event kept until acknowledged (bounded: a session over its
//! bound ends); a fan-out encodes its body once; parameters are checked by
//! `beckon_proto::validate`, the same functions the client calls, before anything changes, so
//! a refused request changes nothing.
//!
//! Inside, the state owns its invariants and the broker decides who hears about a change:
//!
//! | module | what |
//! |---|---|
//! | `broker` | the [`Broker`]: inputs, outputs, timers, event plumbing |
//! | `broker::login` | login checks, one session per account, resume, grace, session end |
//! | `broker::requests` | request dispatch and replies; `invoke` functions on the same handlers |
//! | `broker::users` | presence queries, user attributes, p2p messages, offline delivery |
//! | `broker::channels` / `broker::calls` | channel and call requests, and their events |
//! | `session`, `channels`, `calls` | the state: event streams, channel table, call table |
//! | `admission`, `offline` | login buckets and retry-afters; the ledger of stored messages |
//! | `invoke` | parses `invoke(name, req)` into a typed function; writes its JSON response |
//! | `store`, `config`, `frame` | the [`Store`] trait, [`BrokerConfig`], [`OutFrame`] |
//!
//! **Quotas**: every input a client controls has a bound, a quota or a rate (the app's
//! [`AppConfig`], the server's [`AdmissionConfig`]); what the broker holds for clients is
//! counted by [`Broker::held`] and given back when it ends or expires.
//!
//! ```
//! use std::time::Instant;
//! use beckon_broker::{Apps, Broker, BrokerConfig, ConnId, MemoryStore, Output};
//! use beckon_proto::codec::{decode_server, encode_client};
//! use beckon_proto::pb::{self, client_frame::Kind, event::Body, request::Op, server_frame};
//!
//! let now = Instant::now();
//! let config = BrokerConfig::new(Apps::development(), [7; 32]);
//! let mut broker = Broker::new(config, MemoryStore::new(), now, 0);
//! broker.connect(ConnId(1), now);
//! let login = pb::Login { app_id: "demo".into(), account: "alice".into(), token: "_no_need_token".into(), ..Default::default() };
//! broker.handle_frame(ConnId(1), &encode_client(Kind::Login(login)), now);
//! assert!(matches!(broker.poll_output(), Some(Output::Send { conn: ConnId(1), .. })));
//! assert!(broker.is_online("demo", "alice"));
//!
//! // A request with a bad parameter: one reply, GENERAL_E_WRONG_PARAM, nothing changed.
//! let join = Op::ChannelJoin(pb::ChannelJoin { channel: "".into() });
//! broker.handle_frame(ConnId(1), &encode_client(Kind::Request(pb::Request { id: 1, op: Some(join) })), now);
//! let Some(Output::Send { frame, .. }) = broker.poll_output() else { panic!("a reply") };
//! let Ok(server_frame::Kind::Event(pb::Event { body: Some(Body::Reply(reply)), .. })) =
//!     decode_server(&frame.to_bytes()) else { panic!("a reply event") };
//! assert_eq!((reply.request_id, reply.code), (1, 1004));
//! assert_eq!(broker.channel_count("demo"), 0);
//! assert!(broker.poll_timeout().is_some(), "the heartbeat deadline is armed");
//! ```

pub mod admin;
mod admission;
mod broker;
mod calls;
mod channels;
pub mod cluster;
pub mod cluster_calls;
mod config;
mod frame;
mod invoke;
mod offline;
mod session;
mod shrink;
mod store;

pub use admin::{AdminCall, AdminError, AdminRequest, AdminResponse, Snapshot, Tallies};
pub use broker::{ADMIN_KICK_MESSAGE, Broker, BrokerStats, CloseReason, Held, Output, uid_for};
pub use channels::{CHANNEL_EVENT_CHANNEL, USER_ONLINE_CHANNEL};
pub use cluster::{ChannelAnswer, ChannelEvent, ChannelOp, ClusterIn, ClusterOut};
pub use cluster_calls::CallSignal;
pub use config::{
    AdmissionConfig, AppConfig, Apps, BrokerConfig, DEFAULT_MAX_EVENT_BYTES,
    OFFLINE_MESSAGE_OVERHEAD, OfflinePolicy,
};
pub use frame::OutFrame;
pub use invoke::GATEWAY_REGISTER;
pub use store::{
    BoxError, MemoryStore, Portion, QueueLimit, Recovered, Store, StoreAnswer, StoreBatch,
    StoreDone, StoreError, StoreOp, StoredMessage,
};

/// A connection, named by the driver. Ids must not be reused while the broker runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A session, named by the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

/// A map keyed by names a client chooses (App IDs, account names). Its hash is foldhash, a
/// fast hash keyed with a random seed per map: unlike the `FxHashMap`s keyed by the broker's
/// own ids, a client cannot compute keys that collide, yet it costs a fraction of SipHash on
/// the short strings of every p2p message's path.
pub(crate) type NameMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
