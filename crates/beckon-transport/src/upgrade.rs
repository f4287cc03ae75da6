//! The HTTP request head a `ws`/`wss` listener reads before the WebSocket upgrade.
//!
//! A WebSocket listener reads the request head itself, before tungstenite sees it, so that it
//! can answer `GET /healthz` and wrong paths with plain HTTP. What it decides from those bytes
//! is here as pure functions (no I/O, no state), which the listener calls as it reads and
//! which can be tested and fuzzed on their own: [`head_status`] says whether the bytes read so
//! far hold a whole head, and [`route`] says what the listener does with it.
//!
//! ```
//! use beckon_transport::upgrade::{HeadStatus, Route, head_status, route};
//!
//! let head = b"GET /ws?v=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n";
//! assert_eq!(head_status(&head[..10]), HeadStatus::Incomplete);
//! assert_eq!(head_status(head), HeadStatus::Complete);
//! assert_eq!(route(head, "/ws"), Route::Upgrade);
//! assert_eq!(route(b"GET /healthz HTTP/1.1\r\n\r\n", "/ws"), Route::Health);
//! assert_eq!(route(b"GET /other HTTP/1.1\r\n\r\n", "/ws"), Route::NotFound);
//! ```

/// The largest HTTP request head accepted before the WebSocket upgrade.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// What the bytes read so far from a new WebSocket connection amount to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadStatus {
    /// They hold a whole head (and possibly bytes after it); the listener stops reading.
    Complete,
    /// More bytes are needed.
    Incomplete,
    /// [`MAX_REQUEST_HEAD`] bytes or more without the end of a head: the connection is closed.
    TooLarge,
}

/// The WebSocket settings of every `ws`/`wss` connection of this crate, client and server
/// alike: messages and frames of at most `max_frame` bytes, small buffers. The listener hands a
/// [`Route::Upgrade`] head to tungstenite's handshake with these; a test or fuzzer that drives
/// that handshake itself uses them to see what the listener sees.
pub fn websocket_config(
    max_frame: usize,
) -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    crate::conn::ws_config(max_frame)
}

/// Whether `buf`, everything read from the connection so far, holds a whole request head.
///
/// A head is complete once `\r\n\r\n` appears anywhere in `buf`; `buf` is whole as soon as it
/// is, so whatever follows the blank line (a client that sends WebSocket frames right away) is
/// kept and handed to the WebSocket layer with the head.
pub fn head_status(buf: &[u8]) -> HeadStatus {
    if buf.windows(4).any(|w| w == b"\r\n\r\n") {
        HeadStatus::Complete
    } else if buf.len() >= MAX_REQUEST_HEAD {
        HeadStatus::TooLarge
    } else {
        HeadStatus::Incomplete
    }
}

/// What the listener does with a whole request head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /healthz` without an upgrade: answer `200 OK` and close.
    Health,
    /// Any other path than the listener's: answer `404 Not Found` and close.
    NotFound,
    /// The listener's path: hand the head to the WebSocket handshake, which checks the rest.
    Upgrade,
}

/// Routes a request head on a listener serving WebSocket on `path`.
///
/// Only the request target of the first line is looked at (its query string ignored), plus
/// whether the head asks for a WebSocket upgrade; a head whose first line cannot be read has no
/// target and is not found (unless `path` is empty). The method, the version and every other
/// header are the WebSocket handshake's to check.
pub fn route(head: &[u8], path: &str) -> Route {
    let target = target(head);
    if target == "/healthz" && !is_upgrade(head) {
        Route::Health
    } else if target != path {
        Route::NotFound
    } else {
        Route::Upgrade
    }
}

/// The path a request head asks for: its request target without the query string ("" when the
/// first line cannot be read).
pub fn target(head: &[u8]) -> &str {
    let target = request_target(head).unwrap_or_default();
    target.split('?').next().unwrap_or_default()
}

/// The request target: the second space-separated word of the first line, if that line is
/// UTF-8 and has one.
fn request_target(head: &[u8]) -> Option<&str> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut parts = line.split(' ');
    let _method = parts.next()?;
    parts.next()
}

/// Whether the head asks for a WebSocket upgrade.
pub fn is_upgrade(head: &[u8]) -> bool {
    String::from_utf8_lossy(head)
        .to_ascii_lowercase()
        .contains("upgrade: websocket")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_complete_at_its_blank_line_wherever_the_reads_split_it() {
        let head = b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\nframes";
        for cut in 0..head.len() {
            let status = head_status(&head[..cut]);
            let whole = cut >= head.len() - "frames".len();
            assert_eq!(
                status,
                if whole {
                    HeadStatus::Complete
                } else {
                    HeadStatus::Incomplete
                },
                "{cut}"
            );
        }
    }

    #[test]
    fn an_endless_head_is_too_large_at_the_limit() {
        let mut buf = vec![b'a'; MAX_REQUEST_HEAD - 1];
        assert_eq!(head_status(&buf), HeadStatus::Incomplete);
        buf.push(b'a');
        assert_eq!(head_status(&buf), HeadStatus::TooLarge);
        // A head that ends past the limit in the same read is still whole.
        buf.extend_from_slice(b"\r\n\r\n");
        assert_eq!(head_status(&buf), HeadStatus::Complete);
    }

    #[test]
    fn routes() {
        let up = "Upgrade: websocket\r\n";
        for (head, want) in [
            ("GET /healthz HTTP/1.1\r\n\r\n".to_owned(), Route::Health),
            (
                "GET /healthz?x=1 HTTP/1.1\r\n\r\n".to_owned(),
                Route::Health,
            ),
            (
                format!("GET /healthz HTTP/1.1\r\n{up}\r\n"),
                Route::NotFound,
            ),
            (format!("GET /ws HTTP/1.1\r\n{up}\r\n"), Route::Upgrade),
            (
                format!("GET /ws?token=x HTTP/1.1\r\n{up}\r\n"),
                Route::Upgrade,
            ),
            // The handshake, not the router, refuses a request that does not upgrade.
            ("GET /ws HTTP/1.1\r\n\r\n".to_owned(), Route::Upgrade),
            ("GET /wss HTTP/1.1\r\n\r\n".to_owned(), Route::NotFound),
            ("GET\r\n\r\n".to_owned(), Route::NotFound),
            ("\r\n\r\n".to_owned(), Route::NotFound),
        ] {
            assert_eq!(route(head.as_bytes(), "/ws"), want, "{head:?}");
        }
        assert_eq!(route(b"GET /\xff HTTP/1.1\r\n\r\n", "/ws"), Route::NotFound);
    }
}
