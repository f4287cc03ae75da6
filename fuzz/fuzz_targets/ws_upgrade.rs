//! The WebSocket listener's upgrade path: the HTTP request head an unauthenticated peer sends,
//! read in arbitrary pieces (`beckon_transport::upgrade`), then, for the listener's path,
//! tungstenite's handshake and the first messages, run with the listener's own settings.
//!
//! Asserts: the head is complete exactly when the bytes read hold a blank line, and refused as
//! too large only at `MAX_REQUEST_HEAD` bytes without one; the route depends on the request
//! target alone (`/healthz` without an upgrade, the listener's path, anything else); the
//! handshake and the reads after it never panic, and no message larger than the maximum frame
//! gets through.

#![no_main]

use std::io::{self, Read, Write};

use libfuzzer_sys::fuzz_target;
use tokio_tungstenite::tungstenite::{self, Message};

use beckon_transport::upgrade::{self, HeadStatus, MAX_REQUEST_HEAD, Route};

const PATH: &str = "/ws";

fuzz_target!(|data: &[u8]| {
    let Some((&[seed, max], stream)) = data.split_first_chunk::<2>() else {
        return;
    };
    let mut reads = Reads::new(stream, seed);

    // The listener's loop: look at what was read, read more while the head is incomplete.
    let mut buf = Vec::new();
    loop {
        let status = upgrade::head_status(&buf);
        let has_end = buf.windows(4).any(|w| w == b"\r\n\r\n");
        match status {
            HeadStatus::Complete => {
                assert!(has_end);
                break;
            }
            HeadStatus::TooLarge => {
                assert!(!has_end && buf.len() >= MAX_REQUEST_HEAD);
                return;
            }
            HeadStatus::Incomplete => assert!(!has_end && buf.len() < MAX_REQUEST_HEAD),
        }
        let mut chunk = [0; 2048];
        match reads.read(&mut chunk) {
            Ok(0) | Err(_) => return, // The peer closed during the head.
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }

    let route = upgrade::route(&buf, PATH);
    let first_line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
    match route {
        Route::Health => assert!(first_line.windows(8).any(|w| w == b"/healthz")),
        Route::Upgrade => assert!(first_line.windows(3).any(|w| w == PATH.as_bytes())),
        Route::NotFound => {}
    }
    if route != Route::Upgrade {
        return;
    }

    // The head and whatever followed it go to the handshake, as the listener's `Prefixed`
    // stream hands them over.
    let max_frame = usize::from(max) * 64 + 1;
    let io = Peer {
        prefix: io::Cursor::new(buf),
        rest: reads,
        written: 0,
    };
    let Ok(mut ws) =
        tungstenite::accept_with_config(io, Some(upgrade::websocket_config(max_frame)))
    else {
        return;
    };
    for _ in 0..64 {
        match ws.read() {
            Ok(Message::Binary(b)) => assert!(b.len() <= max_frame, "{} > {max_frame}", b.len()),
            Ok(Message::Text(t)) => assert!(t.len() <= max_frame, "{} > {max_frame}", t.len()),
            Ok(_) => {}
            Err(_) => break,
        }
    }
});

/// The rest of the input, handed out in reads of 1..=2048 bytes.
struct Reads<'a> {
    rest: &'a [u8],
    state: u32,
}

impl<'a> Reads<'a> {
    fn new(rest: &'a [u8], seed: u8) -> Self {
        Self {
            rest,
            state: u32::from(seed) | 1,
        }
    }
}

impl Read for Reads<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.state = self.state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = ((self.state >> 16) as usize % 2048 + 1)
            .min(out.len())
            .min(self.rest.len());
        out[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        Ok(n)
    }
}

/// The connection as the WebSocket layer sees it: what the listener read first, then the rest
/// of the peer's bytes; what is written back is counted and dropped.
struct Peer<'a> {
    prefix: io::Cursor<Vec<u8>>,
    rest: Reads<'a>,
    written: usize,
}

impl Read for Peer<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self.prefix.read(out)? {
            0 => self.rest.read(out),
            n => Ok(n),
        }
    }
}

impl Write for Peer<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.written += b.len();
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
