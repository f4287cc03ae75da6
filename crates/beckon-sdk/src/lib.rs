//! The async Rust SDK for Beckon: the Signaling API of the seeds, over a Beckon server.
//!
//! An [`Instance`] is one client — the seed's `IAgoraAPI` — with the seed's methods in
//! snake_case: login and users (`login2`, `message_instant_send`, `get_user_attr_all`,
//! `invoke`, …), channels (`channel_join`, `channel_set_attr`, `message_channel_send`,
//! `message_channel_send_force`, …), calls (`channel_invite_user2`, `channel_invite_accept`,
//! `channel_invite_end`, `channel_invite_dtmf`, …) and the obsolete interfaces of the C++ seed
//! (`channel_invite_phone*`, `message_dtmf_send`, `is_online`). Each instance spawns one tokio
//! task, its driver, which owns the sans-IO [`beckon_client::Client`] and the connection; the
//! methods hand their arguments to it and return at once. What happens is reported in order,
//! twice over: to the [`Callbacks`] trait (the seed's `ICallBack`, one method per callback) and
//! to every [`EventStream`] of typed [`Event`]s.
//!
//! Each method of [`Instance`] is one line: it sends the driver a closure that calls the client
//! method of the same name (`FnOnce(&mut Client, Instant)`), which the driver runs with the
//! time it takes it, then carries out the client's outputs in the client's stated order
//! (connection commands, frames, events; one timer from `poll_timeout`). Questions such as
//! [`Instance::calls`] are closures too, answering through a channel. A message id left "" is
//! resolved on the caller's thread by the client's own generator
//! ([`beckon_client::Client::message_ids`]), so the method can return it at once.
//!
//! The reconnect policy, request replay, acknowledgements, heartbeats, channel rejoining, the
//! local view of calls, message ids and parameter checks are the client's (`beckon-client`);
//! this crate only does the I/O, the timer and the fan-out of events. It is not a server and not
//! a blocking API (use it from a tokio runtime). Servers are reached over `tcp://`, `tls://`,
//! `quic://`, `ws://` or `wss://` (see [`Config::server`]); other schemes are refused when the
//! instance is created.
//!
//! ```no_run
//! use std::sync::Arc;
//! use beckon_sdk::{Callbacks, Config, Event, Instance};
//!
//! struct Printer;
//! impl Callbacks for Printer {
//!     fn on_message_instant_receive(&self, account: &str, _uid: u32, msg: &str) {
//!         println!("{account}: {msg}");
//!     }
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let alice = Instance::new(Config::new("tcp://127.0.0.1:7400"))?;
//! alice.callback_set(Arc::new(Printer));
//! let mut events = alice.events();
//! alice.login("my-app-id", "alice", "_no_need_token", 0, "");
//! while let Some(ev) = events.next().await {
//!     match ev {
//!         Event::LoginSuccess { uid, .. } => {
//!             println!("logged in as uid {uid}");
//!             let id = alice.message_instant_send("bob", 0, "hello", "");
//!             println!("sending message {id}");
//!         }
//!         Event::MessageSendSuccess { message_id } => {
//!             println!("{message_id} delivered or stored");
//!             break;
//!         }
//!         Event::LoginFailed { ecode } => return Err(format!("login failed: {ecode}").into()),
//!         _ => {}
//!     }
//! }
//! alice.destroy().await;
//! # Ok(()) }
//! ```
//!
//! Channels and calls work the same way: call, then watch the events.
//!
//! ```no_run
//! use beckon_sdk::{Event, Instance};
//!
//! # async fn demo(alice: Instance) {
//! let mut events = alice.events();
//! alice.channel_join("lobby");
//! while let Some(ev) = events.next().await {
//!     match ev {
//!         Event::ChannelJoined { channel } => {
//!             alice.message_channel_send(&channel, "hello, everyone", "");
//!         }
//!         Event::MessageChannelReceive { channel, account, msg, .. } => {
//!             println!("[{channel}] {account}: {msg}");
//!         }
//!         Event::InviteReceived { channel, account, .. } => {
//!             // Answering does not join: join `channel` too to talk there.
//!             alice.channel_invite_accept(&channel, &account, 0, r#"{"ready":true}"#);
//!         }
//!         Event::InviteEndByPeer { .. } => break,
//!         _ => {}
//!     }
//! }
//! # }
//! ```

mod callbacks;
mod config;
mod driver;
mod instance;

pub use beckon_client::{CallId, ClientConfig, Event, SDK_VERSION, Status};
pub use beckon_transport::ClientTls;
pub use callbacks::{Callbacks, dispatch};
pub use config::{Config, DEFAULT_MAX_SERVER_FRAME, SdkError};
pub use instance::{EventStream, Instance};
