//! Every protobuf frame of the session protocol: `ClientFrame` (login, every request kind,
//! acks, pings, pongs), which the server decodes from any peer, and `ServerFrame`, which every
//! SDK decodes from its server.
//!
//! Asserts: any bytes decode to a frame or a clean error; a decoded frame re-encodes to bytes
//! that decode to the same frame and re-encode to themselves (protobuf admits several encodings
//! of one message, so the input itself need not come back: the re-encoding is the canonical
//! one); the limits a server announces are read without panicking. (What the broker does with
//! a decoded frame is the `broker` target's.)

#![no_main]

use libfuzzer_sys::fuzz_target;

use beckon_proto::Limits;
use beckon_proto::codec::{decode_client, decode_server, encode_client, encode_server};
use beckon_proto::pb::server_frame;

fuzz_target!(|data: &[u8]| {
    if let Ok(kind) = decode_client(data) {
        let canonical = encode_client(kind.clone());
        let again = decode_client(&canonical).expect("a re-encoded client frame decodes");
        assert_eq!(again, kind);
        assert_eq!(
            encode_client(again),
            canonical,
            "the encoding is not stable"
        );
    }
    if let Ok(kind) = decode_server(data) {
        let canonical = encode_server(kind.clone());
        let again = decode_server(&canonical).expect("a re-encoded server frame decodes");
        assert_eq!(again, kind);
        assert_eq!(
            encode_server(again),
            canonical,
            "the encoding is not stable"
        );
        if let server_frame::Kind::LoginOk(ok) = &kind
            && let Some(wire) = &ok.limits
        {
            let limits = Limits::from_wire(wire);
            assert!(limits.max_name_chars > 0 && limits.max_message_bytes > 0);
        }
    }
});
