//! Beckon's wire protocol.
//!
//! This crate holds the session protocol's frames (generated from `proto/beckon.proto`, the
//! source of truth), the length-prefixed frame codec used on stream transports, the error codes
//! of the Signaling API, and the parameter validation both the client and the broker apply.
//! It does no I/O and keeps no state beyond a decoder's configuration.
//!
//! ```
//! use beckon_proto::codec::{FrameDecoder, write_frame, encode_client, decode_client};
//! use beckon_proto::pb::{client_frame::Kind, Ping};
//! use bytes::BytesMut;
//!
//! let mut wire = BytesMut::new();
//! write_frame(&mut wire, &encode_client(Kind::Ping(Ping { nonce: 7 })));
//! let frame = FrameDecoder::default().decode(&mut wire).unwrap().unwrap();
//! assert_eq!(decode_client(&frame).unwrap(), Kind::Ping(Ping { nonce: 7 }));
//! ```

pub mod codec;
pub mod error;
pub mod validate;

/// Types generated from `proto/beckon.proto`.
#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    missing_debug_implementations
)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/beckon.v1.rs"));
}

pub use error::{CallError, CallResult, ErrorCode};
pub use validate::Limits;

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The account name the server uses as the sender of system events. Like every name starting
/// with `_`, no client may log in with it (see [`validate::RESERVED_PREFIX`]).
pub const SYSTEM_ACCOUNT: &str = "_system";

/// The special channel that receives every login and logout of the app (SPEC §7).
pub const USER_ONLINE_CHANNEL: &str = "_agora_user_online";

/// The special channel that receives every join and leave of every channel of the app.
pub const CHANNEL_EVENT_CHANNEL: &str = "_agora_channel_event";

/// The token value that asks for no token check (accepted only by apps that allow it).
pub const NO_TOKEN: &str = "_no_need_token";

/// The version number `getSdkVersion` reports, as `1MMmmppbbb`.
pub const fn sdk_version_number(major: u32, minor: u32, patch: u32, build: u32) -> u32 {
    1_000_000_000 + major * 10_000_000 + minor * 100_000 + patch * 1_000 + build
}

#[cfg(test)]
mod tests {
    #[test]
    fn sdk_version_layout() {
        assert_eq!(super::sdk_version_number(1, 1, 4, 19), 1_010_104_019);
    }
}
