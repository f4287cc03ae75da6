//! The sans-IO Beckon client.
//!
//! [`Client`] is the Signaling API's state machine — login and reconnection, requests and their
//! replies, acknowledgements, heartbeats and duplicate suppression — with no sockets, no
//! threads, no async and no clock: the driver (the Rust SDK, the C ABI, the simulation harness)
//! passes the time into every call and carries out what the client asks through its `poll_*`
//! methods. It is not an SDK by itself.
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
//!
//! // Calls before login complete fail locally with GENERAL_E_NOT_LOGIN (1003).
//! client.query_user_status("bob", now);
//! assert!(matches!(client.poll_event(), Some(Event::Error { ecode: 1003, .. })));
//! ```

mod client;
mod event;

pub use client::{
    Client, ClientConfig, ConnectionCommand, DEFAULT_RETRY_COUNT, DEFAULT_RETRY_TIME_S,
    SDK_VERSION, Status,
};
pub use event::Event;
