//! Outbound frames, shaped so that a fan-out encodes its body once.
//!
//! An event frame is `ServerFrame { event: Event { seq, <body> } }`. Everything but the body
//! depends on the recipient's sequence number, so it is written as a small per-recipient `head`
//! while the `body` is one shared, reference-counted encoding.

use bytes::{Bytes, BytesMut};
use prost::Message;
use prost::encoding::{WireType, encoded_len_varint, key_len};

use beckon_proto::codec;
use beckon_proto::pb::server_frame;

/// One frame for one connection: its payload is `head` followed by `body`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutFrame {
    pub head: Bytes,
    pub body: Bytes,
}

impl OutFrame {
    /// A frame encoded in one piece.
    pub fn whole(payload: Bytes) -> Self {
        Self {
            head: payload,
            body: Bytes::new(),
        }
    }

    /// A non-event server frame.
    pub fn server(kind: server_frame::Kind) -> Self {
        Self::whole(codec::encode_server(kind))
    }

    /// The payload length in bytes.
    pub fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload as one contiguous buffer (copies when the frame has two parts).
    pub fn to_bytes(&self) -> Bytes {
        if self.body.is_empty() {
            return self.head.clone();
        }
        let mut buf = BytesMut::with_capacity(self.len());
        buf.extend_from_slice(&self.head);
        buf.extend_from_slice(&self.body);
        buf.freeze()
    }
}

/// Field numbers of `Event.body` (see beckon.proto).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum BodyField {
    Reply = 2,
    InstantMessage = 3,
    ChannelMessage = 4,
    ChannelUserJoined = 5,
    ChannelUserLeft = 6,
    ChannelAttrUpdated = 7,
    #[allow(dead_code)] // Sent when the server takes a session out of a channel (admin kick).
    ChannelLeft = 8,
    Call = 9,
}

const SERVER_FRAME_EVENT_FIELD: u32 = 3;
/// The longest head: three one-byte keys and three ten-byte varints.
const MAX_HEAD: usize = 33;
/// Heads are carved out of chunks of this size.
const HEAD_CHUNK: usize = 16 * 1024;
const EVENT_SEQ_FIELD: u32 = 1;

/// An event body encoded once, ready to be framed for any number of recipients.
#[derive(Clone, Debug)]
pub(crate) struct EventBody {
    field: BodyField,
    bytes: Bytes,
}

impl EventBody {
    pub(crate) fn new<M: Message>(field: BodyField, msg: &M) -> Self {
        Self {
            field,
            bytes: codec::encode(msg),
        }
    }

    /// Frames the body for one recipient; only the small head is written.
    #[cfg(test)]
    pub(crate) fn frame(&self, seq: u64) -> OutFrame {
        self.frame_in(seq, &mut BytesMut::new())
    }

    /// Like `frame`, writing the head into `scratch` so that the heads of a fan-out share a
    /// few allocations instead of one each.
    pub(crate) fn frame_in(&self, seq: u64, scratch: &mut BytesMut) -> OutFrame {
        let body_len = self.bytes.len();
        let inner_len = key_len(EVENT_SEQ_FIELD)
            + encoded_len_varint(seq)
            + key_len(self.field as u32)
            + encoded_len_varint(body_len as u64)
            + body_len;
        if scratch.capacity() - scratch.len() < MAX_HEAD {
            scratch.reserve(HEAD_CHUNK);
        }
        // Written on the stack and appended in one piece: prost's writers would append to the
        // `BytesMut` a byte at a time, each a call and a `memcpy`.
        let mut head = Head::default();
        head.key(SERVER_FRAME_EVENT_FIELD, WireType::LengthDelimited);
        head.varint(inner_len as u64);
        head.key(EVENT_SEQ_FIELD, WireType::Varint);
        head.varint(seq);
        head.key(self.field as u32, WireType::LengthDelimited);
        head.varint(body_len as u64);
        scratch.extend_from_slice(head.bytes());
        OutFrame {
            head: scratch.split().freeze(),
            body: self.bytes.clone(),
        }
    }
}

/// A frame head being written: at most three keys and three varints.
struct Head {
    buf: [u8; MAX_HEAD],
    len: usize,
}

impl Default for Head {
    fn default() -> Self {
        Self {
            buf: [0; MAX_HEAD],
            len: 0,
        }
    }
}

impl Head {
    /// A protobuf varint (LEB128), as `prost::encoding::encode_varint` writes it.
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf[self.len] = (value as u8) | 0x80;
            self.len += 1;
            value >>= 7;
        }
        self.buf[self.len] = value as u8;
        self.len += 1;
    }

    /// A field's key, as `prost::encoding::encode_key` writes it.
    fn key(&mut self, field: u32, wire_type: WireType) {
        self.varint(u64::from(field << 3 | wire_type as u32));
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use beckon_proto::pb::{self, event::Body};

    use super::*;

    #[test]
    fn split_encoding_equals_prost_encoding() {
        let im = pb::InstantMessage {
            sender: "alice".into(),
            msg: "x".repeat(300),
            server_msg_id: 99,
            sent_at_ms: 1234,
            offline: true,
        };
        for seq in [1u64, 127, 128, 1 << 40] {
            let frame = EventBody::new(BodyField::InstantMessage, &im).frame(seq);
            let expected = codec::encode_server(server_frame::Kind::Event(pb::Event {
                seq,
                body: Some(Body::InstantMessage(im.clone())),
            }));
            assert_eq!(frame.to_bytes(), expected, "seq {seq}");
        }
        let reply = pb::Reply {
            request_id: 5,
            code: 0,
            message: String::new(),
            result: None,
        };
        let frame = EventBody::new(BodyField::Reply, &reply).frame(3);
        let expected = codec::encode_server(server_frame::Kind::Event(pb::Event {
            seq: 3,
            body: Some(Body::Reply(reply)),
        }));
        assert_eq!(frame.to_bytes(), expected);
    }
}
