//! The length-prefixed frame codec of the stream transports (`beckon_proto::codec`), fed a
//! byte stream in arbitrary pieces.
//!
//! Asserts: whatever the bytes and however they are split, the decoder yields exactly the
//! frames a plain reading of the format finds (4-byte big-endian length, then that many bytes),
//! refuses a length above its maximum before taking anything, keeps an incomplete frame in the
//! buffer, and re-encoding the frames it yields reproduces the bytes it consumed.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

use beckon_proto::codec::{FrameDecoder, FrameError, LENGTH_PREFIX, length_prefix, write_frame};

/// What a plain reading of the stream finds: the frames, and whether it ends in a length above
/// `max` (else it ends in nothing or in an incomplete frame).
fn reference(stream: &[u8], max: usize) -> (Vec<&[u8]>, Option<usize>) {
    let mut frames = Vec::new();
    let mut rest = stream;
    while let Some((prefix, tail)) = rest.split_first_chunk::<LENGTH_PREFIX>() {
        let len = u32::from_be_bytes(*prefix) as usize;
        if len > max {
            return (frames, Some(len));
        }
        let Some((frame, tail)) = tail.split_at_checked(len) else {
            break;
        };
        frames.push(frame);
        rest = tail;
    }
    (frames, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&[max_hi, max_lo, seed], stream)) = data.split_first_chunk::<3>() else {
        return;
    };
    let max = usize::from(u16::from_be_bytes([max_hi, max_lo]));
    let decoder = FrameDecoder::new(max);
    let (expected, too_large) = reference(stream, max);

    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut error = None;
    let mut fed = 0;
    let mut piece = u32::from(seed) | 1;
    'feed: while fed < stream.len() {
        // Pieces of 1..=64 bytes, sized by a little generator seeded from the input.
        piece = piece.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = ((piece >> 16) as usize % 64 + 1).min(stream.len() - fed);
        buf.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break 'feed;
                }
            }
        }
    }

    let frames: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    assert_eq!(frames, expected, "the decoder and the format disagree");
    match (error, too_large) {
        (None, None) => {
            // Whatever was not taken stays in the buffer: an incomplete frame, or nothing.
            let mut wire = BytesMut::new();
            for f in &frames {
                write_frame(&mut wire, f);
                assert_eq!(
                    &wire[wire.len() - f.len() - LENGTH_PREFIX..][..4],
                    length_prefix(f.len())
                );
            }
            assert_eq!(
                &wire[..],
                &stream[..wire.len()],
                "re-encoding differs from the input"
            );
            assert_eq!(
                &buf[..],
                &stream[wire.len()..],
                "bytes were lost or invented"
            );
            assert!(decoder.decode(&mut buf).unwrap().is_none());
        }
        (Some(FrameError::TooLarge { len, max: m }), Some(expected_len)) => {
            assert_eq!((len, m), (expected_len, max));
            // Refused before anything was taken: the prefix is still there.
            assert_eq!(&buf[..LENGTH_PREFIX], &(len as u32).to_be_bytes());
        }
        (error, too_large) => panic!("decoder said {error:?}, the format {too_large:?}"),
    }
});
