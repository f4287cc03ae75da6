//! The frame codec for stream transports: a 4-byte big-endian length, then the frame.
//!
//! Decoding is two-phase: [`FrameDecoder::decode`] first reads the length prefix and checks it
//! against the maximum frame size *before* anything is allocated, then splits the frame off the
//! buffer without copying. "Incomplete" (`Ok(None)`) and "invalid" (`Err`) are kept apart.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;

use crate::pb::{ClientFrame, ServerFrame, client_frame, server_frame};

/// Bytes in the length prefix.
pub const LENGTH_PREFIX: usize = 4;

/// The default maximum frame size (64 KiB), a little over the largest legal request.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;

/// A frame could not be taken from the byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix announces a frame larger than the configured maximum.
    TooLarge { len: usize, max: usize },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the maximum of {max} bytes")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Splits length-prefixed frames off a growing buffer.
#[derive(Clone, Copy, Debug)]
pub struct FrameDecoder {
    max_frame: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl FrameDecoder {
    pub fn new(max_frame: usize) -> Self {
        Self { max_frame }
    }

    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Takes one whole frame off the front of `buf`.
    ///
    /// `Ok(None)` means more bytes are needed; the buffer is left untouched and has room
    /// reserved for the rest of the frame. An error means the stream is unusable.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if buf.len() < LENGTH_PREFIX {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len > self.max_frame {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_frame,
            });
        }
        if buf.len() < LENGTH_PREFIX + len {
            buf.reserve(LENGTH_PREFIX + len - buf.len());
            return Ok(None);
        }
        buf.advance(LENGTH_PREFIX);
        Ok(Some(buf.split_to(len).freeze()))
    }
}

/// Appends `payload` to `out` with its length prefix.
///
/// # Panics
/// If `payload` is longer than `u32::MAX` bytes; frames are bounded far below that by their
/// encoders.
pub fn write_frame(out: &mut BytesMut, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("frame payloads are far below 4 GiB");
    out.reserve(LENGTH_PREFIX + payload.len());
    out.put_u32(len);
    out.put_slice(payload);
}

/// The length prefix for a payload of `len` bytes.
pub fn length_prefix(len: usize) -> [u8; LENGTH_PREFIX] {
    u32::try_from(len)
        .expect("frame payloads are far below 4 GiB")
        .to_be_bytes()
}

/// Encodes a message into a fresh buffer (the frame payload, without the length prefix).
pub fn encode<M: Message>(msg: &M) -> Bytes {
    // A `Vec` rather than a `BytesMut`: prost writes varints a byte at a time, and a `Vec`'s
    // byte writes inline to a store where a `BytesMut`'s are each a call and a `memcpy`. It is
    // reserved to the exact length (computed once; `encode` would compute it again to check
    // the room), and a `Vec` filled to its capacity becomes `Bytes` without a copy.
    Bytes::from(msg.encode_to_vec())
}

/// A frame payload could not be parsed as a protocol frame.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not a valid protobuf encoding of the frame type.
    Malformed(String),
    /// The frame parsed but carries no known kind (empty, or from a newer protocol).
    Empty,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed frame: {why}"),
            Self::Empty => f.write_str("frame carries no known kind"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Parses a client frame payload.
pub fn decode_client(payload: &[u8]) -> Result<client_frame::Kind, DecodeError> {
    ClientFrame::decode(payload)
        .map_err(|e| DecodeError::Malformed(e.to_string()))?
        .kind
        .ok_or(DecodeError::Empty)
}

/// Parses a server frame payload.
pub fn decode_server(payload: &[u8]) -> Result<server_frame::Kind, DecodeError> {
    ServerFrame::decode(payload)
        .map_err(|e| DecodeError::Malformed(e.to_string()))?
        .kind
        .ok_or(DecodeError::Empty)
}

/// Encodes a client frame payload.
pub fn encode_client(kind: client_frame::Kind) -> Bytes {
    encode(&ClientFrame { kind: Some(kind) })
}

/// Encodes a server frame payload.
pub fn encode_server(kind: server_frame::Kind) -> Bytes {
    encode(&ServerFrame { kind: Some(kind) })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::pb;

    #[test]
    fn incomplete_then_complete() {
        let d = FrameDecoder::new(16);
        let mut buf = BytesMut::new();
        assert_eq!(d.decode(&mut buf), Ok(None));
        buf.put_slice(&[0, 0, 0, 3, b'a']);
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), 5, "incomplete input stays in the buffer");
        buf.put_slice(b"bc");
        assert_eq!(d.decode(&mut buf), Ok(Some(Bytes::from_static(b"abc"))));
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_prefix_is_rejected_before_allocation() {
        let d = FrameDecoder::new(16);
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert_eq!(
            d.decode(&mut buf),
            Err(FrameError::TooLarge {
                len: u32::MAX as usize,
                max: 16
            })
        );
        assert!(buf.capacity() < 1024);
    }

    #[test]
    fn empty_frame_has_no_kind() {
        assert_eq!(decode_client(&[]), Err(DecodeError::Empty));
        assert_eq!(decode_server(&[]), Err(DecodeError::Empty));
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(
            decode_client(&[0xff, 0xff, 0xff]),
            Err(DecodeError::Malformed(_))
        ));
    }

    fn arb_request() -> impl Strategy<Value = pb::Request> {
        (any::<u64>(), ".{0,40}", ".{0,40}", ".{0,40}", 0u8..7).prop_map(|(id, a, b, c, which)| {
            use pb::request::Op;
            let op = match which {
                0 => Op::Logout(pb::Logout {}),
                1 => Op::SendInstantMessage(pb::SendInstantMessage {
                    account: a,
                    msg: b,
                    msg_id: c,
                }),
                2 => Op::QueryUserStatus(pb::QueryUserStatus { account: a }),
                3 => Op::SetUserAttr(pb::SetUserAttr { name: a, value: b }),
                4 => Op::GetUserAttr(pb::GetUserAttr {
                    account: a,
                    name: b,
                }),
                5 => Op::GetUserAttrAll(pb::GetUserAttrAll { account: a }),
                _ => Op::Invoke(pb::Invoke {
                    name: a,
                    req: b,
                    call_id: c,
                }),
            };
            pb::Request { id, op: Some(op) }
        })
    }

    proptest! {
        #[test]
        fn any_bytes_decode_to_a_frame_or_a_clean_error(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_client(&bytes);
            let _ = decode_server(&bytes);
            let d = FrameDecoder::new(64);
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = d.decode(&mut buf) {}
        }

        #[test]
        fn request_round_trips_through_the_stream_codec(reqs in proptest::collection::vec(arb_request(), 1..8), split in 0usize..64) {
            let mut wire = BytesMut::new();
            for r in &reqs {
                write_frame(&mut wire, &encode_client(client_frame::Kind::Request(r.clone())));
            }
            // Deliver the stream in two arbitrary pieces.
            let split = split.min(wire.len());
            let second = wire.split_off(split);
            let mut buf = wire;
            let d = FrameDecoder::default();
            let mut out = Vec::new();
            while let Some(f) = d.decode(&mut buf).unwrap() { out.push(f); }
            buf.extend_from_slice(&second);
            while let Some(f) = d.decode(&mut buf).unwrap() { out.push(f); }
            prop_assert!(buf.is_empty());
            let decoded: Vec<_> = out.iter().map(|f| decode_client(f).unwrap()).collect();
            let expected: Vec<_> = reqs.into_iter().map(client_frame::Kind::Request).collect();
            prop_assert_eq!(decoded, expected);
        }
    }
}
