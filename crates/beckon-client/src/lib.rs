//! The sans-IO Beckon client.
//!
//! [`Client`] is the Signaling API's state machine — login and reconnection, requests and their
//! replies, acknowledgements, heartbeats, the mirror of calls and duplicate suppression — with
//! no sockets, no threads, no async and no clock: the driver (the Rust SDK, the C ABI, the
//! simulation harness, the load generator) passes the time into every call and carries out
//! what the client asks through its `poll_*` methods. It is not an SDK by itself.
//!
//! # The contract
//!
//! A [`Client`] has four kinds of methods:
//! - **getters** read state and change nothing: [`status`](Client::status),
//!   [`uid`](Client::uid), [`account`](Client::account),
//!   [`joined_channels`](Client::joined_channels), [`calls`](Client::calls),
//!   [`pending_requests`](Client::pending_requests), [`message_ids`](Client::message_ids);
//! - **inputs** from the driver, each with the current time:
//!   [`handle_connected`](Client::handle_connected), [`handle_frame`](Client::handle_frame),
//!   [`handle_disconnected`](Client::handle_disconnected),
//!   [`handle_timeout`](Client::handle_timeout);
//! - **API commands** named after the seeds' methods (`login2`, `message_instant_send`,
//!   `channel_join`, `channel_invite_user2`, …). Each checks its arguments and queues a request;
//!   every outcome, a local refusal included, comes back as [`Event`]s (the request's own
//!   failure callback, then `onError`), never as a return value;
//! - **outputs**, drained after every input and command, in this order:
//!   [`poll_connection`](Client::poll_connection) (open or close the connection),
//!   [`poll_transmit`](Client::poll_transmit) (frames to write),
//!   [`poll_event`](Client::poll_event) (callbacks for the application), then
//!   [`poll_timeout`](Client::poll_timeout) (when to call `handle_timeout`). Every `poll_*` is
//!   `#[must_use]`.
//!
//! Inside, each kind of state has its own type: the link (connect, reconnect, back-off,
//! heartbeats), the session, the queue of pending requests, the call mirror and the
//! de-duplication window. Each request is described by one typed value that knows its frame
//! and what its reply and failure report, so adding an API method touches only the API module.
//!
//! ```
//! use std::time::Instant;
//! use beckon_client::{Client, ClientConfig, ConnectionCommand, Event, Status};
//!
//! let now = Instant::now();
//! let mut client = Client::new(ClientConfig::default(), now);
//! client.login("demo", "alice", "_no_need_token", "", now);
//! assert_eq!(client.status(), Status::LoggingIn);
//! assert_eq!(client.poll_connection(), Some(ConnectionCommand::Open));
//! client.handle_connected(now);
//! let login_frame = client.poll_transmit().expect("the login frame");
//! assert!(!login_frame.is_empty());
//! assert!(client.poll_timeout().is_some(), "the connect deadline is armed");
//!
//! // Calls before login complete fail locally with GENERAL_E_NOT_LOGIN (1003).
//! client.query_user_status("bob", now);
//! assert!(matches!(client.poll_event(), Some(Event::Error { ecode: 1003, .. })));
//!
//! // A message id left empty is generated, by the client's one generator.
//! let id = client.message_instant_send("bob", "hi", "", now);
//! assert!(!id.is_empty());
//! assert_eq!(client.poll_event(), Some(Event::MessageSendError { message_id: id, ecode: 1003 }));
//! ```

mod client;
mod config;
mod event;
mod ids;

pub use client::{CallId, Client, ConnectionCommand, Status};
pub use config::{ClientConfig, DEFAULT_RETRY_COUNT, DEFAULT_RETRY_TIME_S, SDK_VERSION};
pub use event::Event;
pub use ids::{MessageIds, Rng};
