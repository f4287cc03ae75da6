//! A small table of in-memory files that a WebSocket listener serves over plain HTTP before the
//! upgrade: the Web SDK and a demo page, so that a browser can load them from the very origin
//! it then connects to.
//!
//! It is deliberately not a web server. Paths are looked up exactly as written in the table —
//! no file system, no percent-decoding, no directory listing — so no request can reach anything
//! the table does not name (`/sdk/../etc/passwd` is simply not a key). Only `GET` and `HEAD` are
//! answered; every response closes the connection; the request head is bounded by the
//! listener (8 KiB). A strong `ETag` lets browsers revalidate with `If-None-Match` and get a
//! `304 Not Modified`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// One file of a [`StaticFiles`] table.
#[derive(Clone, Debug)]
pub struct StaticFile {
    content_type: &'static str,
    cache_control: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    etag: String,
    body: Bytes,
}

impl StaticFile {
    /// A file served with `content_type` and `Cache-Control: no-cache` (browsers keep it but
    /// revalidate with its `ETag` before each use, so a server upgrade is seen at once).
    pub fn new(content_type: &'static str, body: impl Into<Bytes>) -> Self {
        let body = body.into();
        Self {
            content_type,
            cache_control: "no-cache",
            headers: Vec::new(),
            etag: format!("\"{:016x}-{:x}\"", fnv1a(&body), body.len()),
            body,
        }
    }

    /// Replaces the `Cache-Control` value.
    #[must_use]
    pub fn cache_control(mut self, value: &'static str) -> Self {
        self.cache_control = value;
        self
    }

    /// Adds a response header, e.g. `Content-Security-Policy`.
    #[must_use]
    pub fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn content_type(&self) -> &'static str {
        self.content_type
    }

    pub fn body(&self) -> &Bytes {
        &self.body
    }
}

/// Files by exact request path (`/`, `/sdk/beckon-sig.js`, …).
#[derive(Clone, Debug, Default)]
pub struct StaticFiles {
    files: HashMap<String, StaticFile>,
}

impl StaticFiles {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the file at `path`.
    ///
    /// # Panics
    ///
    /// When `path` does not start with `/`: it could never match a request, which is a bug in
    /// the table.
    #[must_use]
    pub fn with(mut self, path: &str, file: StaticFile) -> Self {
        assert!(path.starts_with('/'), "static paths start with /: {path:?}");
        self.files.insert(path.to_owned(), file);
        self
    }

    /// The file at exactly `path` (without its query string).
    pub fn get(&self, path: &str) -> Option<&StaticFile> {
        self.files.get(path)
    }

    /// Every path of the table, sorted.
    pub fn paths(&self) -> Vec<&str> {
        let mut p: Vec<&str> = self.files.keys().map(String::as_str).collect();
        p.sort_unstable();
        p
    }
}

/// Answers one request for `file` (already looked up) and closes the write side.
pub(crate) async fn respond_file<W: AsyncWrite + Unpin>(
    io: &mut W,
    head: &[u8],
    file: &StaticFile,
) -> io::Result<()> {
    let method = request_method(head);
    let (status, with_body) = match method {
        "GET" | "HEAD" if if_none_match(head, &file.etag) => ("304 Not Modified", false),
        "GET" => ("200 OK", true),
        "HEAD" => ("200 OK", false),
        _ => {
            let body = "method not allowed\n";
            let response = format!(
                "HTTP/1.1 405 Method Not Allowed\r\nallow: GET, HEAD\r\ncontent-type: \
                 text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            io.write_all(response.as_bytes()).await?;
            return io.shutdown().await;
        }
    };
    let mut head_out = format!("HTTP/1.1 {status}\r\n");
    if status != "304 Not Modified" {
        let _ = write!(
            head_out,
            "content-type: {}\r\ncontent-length: {}\r\n",
            file.content_type,
            file.body.len()
        );
    }
    let _ = write!(
        head_out,
        "cache-control: {}\r\netag: {}\r\nx-content-type-options: nosniff\r\n",
        file.cache_control, file.etag
    );
    for (name, value) in &file.headers {
        let _ = write!(head_out, "{name}: {value}\r\n");
    }
    head_out.push_str("connection: close\r\n\r\n");
    io.write_all(head_out.as_bytes()).await?;
    if with_body {
        io.write_all(&file.body).await?;
    }
    io.shutdown().await
}

fn request_method(head: &[u8]) -> &str {
    let end = head.iter().position(|b| *b == b' ').unwrap_or(0);
    std::str::from_utf8(&head[..end]).unwrap_or("")
}

/// Whether an `If-None-Match` header names `etag` (or `*`).
fn if_none_match(head: &[u8], etag: &str) -> bool {
    let text = String::from_utf8_lossy(head);
    text.split("\r\n").skip(1).any(|line| {
        let Some((name, value)) = line.split_once(':') else {
            return false;
        };
        name.trim().eq_ignore_ascii_case("if-none-match")
            && value
                .split(',')
                .map(|v| v.trim().trim_start_matches("W/"))
                .any(|v| v == etag || v == "*")
    })
}

/// FNV-1a, 64 bits: enough to tell two versions of a file apart in an `ETag`.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_differ_with_content_and_match_if_none_match() {
        let a = StaticFile::new("text/plain", &b"one"[..]);
        let b = StaticFile::new("text/plain", &b"two"[..]);
        assert_ne!(a.etag, b.etag);
        let head = format!(
            "GET / HTTP/1.1\r\nIf-None-Match: W/{}, \"x\"\r\n\r\n",
            a.etag
        );
        assert!(if_none_match(head.as_bytes(), &a.etag));
        assert!(!if_none_match(head.as_bytes(), &b.etag));
        assert!(!if_none_match(b"GET / HTTP/1.1\r\n\r\n", &a.etag));
    }

    #[test]
    #[should_panic(expected = "static paths start with /")]
    fn relative_paths_are_a_bug() {
        let _ = StaticFiles::new().with("index.html", StaticFile::new("text/html", ""));
    }
}
