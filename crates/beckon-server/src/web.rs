//! The files the server's WebSocket listeners serve over plain HTTP: the Web SDK as a classic
//! script at `/sdk/beckon-sig.js`, and a demo app at `/` (`demo.js`, `demo.css`).
//!
//! They are embedded in the binary, so `cargo run -p beckon-server` serves them without Node.js.
//! The demo is hand-written HTML, CSS and JavaScript (`sdks/web/demo/`); the SDK script is built
//! from `sdks/web/src/` by `cargo xtask web`, which writes the copy embedded here
//! (`crates/beckon-server/assets/beckon-sig.js`, committed); `cargo xtask web --check` fails when
//! that copy differs from a fresh build. See `docs/decisions.md` ("Web SDK build").

use beckon_transport::{StaticFile, StaticFiles};

const SDK: &[u8] = include_bytes!("../assets/beckon-sig.js");
const DEMO_HTML: &[u8] = include_bytes!("../../../sdks/web/demo/index.html");
const DEMO_JS: &[u8] = include_bytes!("../../../sdks/web/demo/demo.js");
const DEMO_CSS: &[u8] = include_bytes!("../../../sdks/web/demo/demo.css");

/// The demo page's content security policy: scripts, styles and images from this server only,
/// connections to WebSocket servers (its own by default), no framing.
const DEMO_CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
                        style-src 'self'; script-src 'self'; base-uri 'none'; form-action 'none'; \
                        frame-ancestors 'none'";

const JS: &str = "text/javascript; charset=utf-8";

/// The table every WebSocket listener serves.
pub fn web_files() -> StaticFiles {
    StaticFiles::new()
        .with(
            "/",
            StaticFile::new("text/html; charset=utf-8", DEMO_HTML)
                .header("content-security-policy", DEMO_CSP)
                .header("referrer-policy", "no-referrer"),
        )
        .with("/demo.js", StaticFile::new(JS, DEMO_JS))
        .with(
            "/demo.css",
            StaticFile::new("text/css; charset=utf-8", DEMO_CSS),
        )
        // Pages of other origins may load the SDK with a <script> tag (CORS does not apply to
        // classic scripts); the header lets them also fetch it, e.g. with integrity checks.
        .with(
            "/sdk/beckon-sig.js",
            StaticFile::new(JS, SDK).header("access-control-allow-origin", "*"),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_the_sdk_and_the_demo() {
        let files = web_files();
        assert_eq!(
            files.paths(),
            ["/", "/demo.css", "/demo.js", "/sdk/beckon-sig.js"]
        );
        let sdk = files.get("/sdk/beckon-sig.js").unwrap();
        assert!(
            String::from_utf8_lossy(sdk.body()).contains("Signal"),
            "the SDK defines Signal"
        );
        let page = String::from_utf8_lossy(files.get("/").unwrap().body()).into_owned();
        assert!(page.contains("/sdk/beckon-sig.js") && page.contains("demo.js"));
    }
}
