//! The token's text and binary layout (see the crate doc), without any key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::{CURRENT_VERSION, MAX_FIELD_LEN, MAX_TOKEN_LEN, Privileges, TokenClaims, TokenError};

/// What every token starts with, before its version number.
const MAGIC: &str = "bk";

/// The text before a version 1 payload; also the first bytes the tag is computed over.
pub(crate) const V1_PREFIX: &str = "bk1.";

/// Length of the HMAC-SHA256 tag, in bytes.
const TAG_LEN: usize = 32;

/// A token taken apart, its signature not yet checked.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// The decoded payload, which the tag signs (after [`V1_PREFIX`]).
    pub(crate) payload: Vec<u8>,
    /// The decoded tag.
    pub(crate) tag: [u8; TAG_LEN],
    /// What the payload says.
    pub(crate) claims: TokenClaims,
}

/// Takes a token apart: size, prefix, version, then the payload's fields. Never panics.
pub(crate) fn parse(token: &str) -> Result<Parsed, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed("longer than 2048 bytes"));
    }
    let rest = token
        .strip_prefix(MAGIC)
        .ok_or(TokenError::Malformed("does not start with `bk`"))?;
    let (version, rest) = rest
        .split_once('.')
        .ok_or(TokenError::Malformed("no `.` after the version"))?;
    let version = parse_version(version)?;
    if version != CURRENT_VERSION {
        return Err(TokenError::UnsupportedVersion(version));
    }
    let (payload, tag) = rest
        .split_once('.')
        .ok_or(TokenError::Malformed("no `.` before the signature"))?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed("payload is not base64url"))?;
    let tag = decode_tag(tag)?;
    let claims = decode_payload(version, &payload)?;
    Ok(Parsed {
        payload,
        tag,
        claims,
    })
}

/// Writes `"bk1." base64url(payload) "." base64url(tag)`.
pub(crate) fn assemble(payload: &[u8], tag: &[u8]) -> String {
    let mut token = String::with_capacity(
        V1_PREFIX.len() + base64_len(payload.len()) + 1 + base64_len(tag.len()),
    );
    token.push_str(V1_PREFIX);
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(tag, &mut token);
    token
}

/// The binary payload for `claims`; the caller has checked the field lengths.
pub(crate) fn encode_payload(version: u8, claims: &TokenClaims) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(1 + 8 + 8 + 4 + 2 + claims.app_id.len() + 2 + claims.account.len());
    out.push(version);
    out.extend_from_slice(&claims.issued_at.to_be_bytes());
    out.extend_from_slice(&claims.expires_at.to_be_bytes());
    out.extend_from_slice(&claims.privileges.bits().to_be_bytes());
    put_field(&mut out, &claims.app_id);
    put_field(&mut out, &claims.account);
    out
}

/// Writes a u16 length and the bytes of a field of at most [`MAX_FIELD_LEN`] bytes.
fn put_field(out: &mut Vec<u8>, field: &str) {
    debug_assert!(field.len() <= MAX_FIELD_LEN);
    // MAX_FIELD_LEN < u16::MAX, and the caller checked the length against it.
    let len = u16::try_from(field.len()).expect("field length checked against MAX_FIELD_LEN");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field.as_bytes());
}

/// The version number between `bk` and the first `.`: a decimal u8 without leading zeros, so
/// that each version has one spelling.
fn parse_version(text: &str) -> Result<u8, TokenError> {
    const BAD: TokenError = TokenError::Malformed("version is not a number from 0 to 255");
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return Err(BAD);
    }
    text.parse().map_err(|_| BAD)
}

/// Decodes the tag, which must be exactly [`TAG_LEN`] bytes.
fn decode_tag(text: &str) -> Result<[u8; TAG_LEN], TokenError> {
    const BAD: TokenError = TokenError::Malformed("signature is not 32 bytes of base64url");
    if text.len() != base64_len(TAG_LEN) {
        return Err(BAD);
    }
    let mut tag = [0; TAG_LEN];
    match URL_SAFE_NO_PAD.decode_slice(text, &mut tag) {
        Ok(TAG_LEN) => Ok(tag),
        _ => Err(BAD),
    }
}

/// Reads the payload's fields; every byte must be used.
fn decode_payload(version: u8, payload: &[u8]) -> Result<TokenClaims, TokenError> {
    let mut r = Reader(payload);
    let [inner_version] = r.array("payload is empty")?;
    if inner_version != version {
        return Err(TokenError::Malformed(
            "payload version differs from the prefix",
        ));
    }
    let issued_at = u64::from_be_bytes(r.array("payload ends in issued_at")?);
    let expires_at = u64::from_be_bytes(r.array("payload ends in expires_at")?);
    let privileges =
        Privileges::from_bits_retain(u32::from_be_bytes(r.array("payload ends in privileges")?));
    let app_id = r.field(FieldErrors::APP_ID)?;
    let account = r.field(FieldErrors::ACCOUNT)?;
    if !r.0.is_empty() {
        return Err(TokenError::Malformed("trailing bytes after the account"));
    }
    Ok(TokenClaims {
        app_id,
        account,
        expires_at,
        issued_at,
        privileges,
    })
}

/// Unpadded base64 length of `n` bytes.
const fn base64_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

/// The messages for what can be wrong with one string field of the payload.
#[derive(Debug, Clone, Copy)]
struct FieldErrors {
    truncated: &'static str,
    too_long: &'static str,
    not_utf8: &'static str,
}

// The messages below spell out the limits.
const _: () = assert!(MAX_TOKEN_LEN == 2048 && MAX_FIELD_LEN == 512);

impl FieldErrors {
    const APP_ID: Self = Self {
        truncated: "payload ends in the app id",
        too_long: "app id is longer than 512 bytes",
        not_utf8: "app id is not UTF-8",
    };
    const ACCOUNT: Self = Self {
        truncated: "payload ends in the account",
        too_long: "account is longer than 512 bytes",
        not_utf8: "account is not UTF-8",
    };
}

/// A cursor over the payload that refuses to read past its end.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    /// The next `N` bytes, or `Malformed(what)` if fewer are left.
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], TokenError> {
        let (head, tail) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(TokenError::Malformed(what))?;
        self.0 = tail;
        Ok(*head)
    }

    /// A u16-length-prefixed UTF-8 string of at most [`MAX_FIELD_LEN`] bytes.
    fn field(&mut self, errors: FieldErrors) -> Result<String, TokenError> {
        let len = usize::from(u16::from_be_bytes(self.array(errors.truncated)?));
        if len > MAX_FIELD_LEN {
            return Err(TokenError::Malformed(errors.too_long));
        }
        let (bytes, tail) = self
            .0
            .split_at_checked(len)
            .ok_or(TokenError::Malformed(errors.truncated))?;
        self.0 = tail;
        let text =
            std::str::from_utf8(bytes).map_err(|_| TokenError::Malformed(errors.not_utf8))?;
        Ok(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> TokenClaims {
        TokenClaims {
            app_id: "app".to_owned(),
            account: "bob".to_owned(),
            issued_at: 1,
            expires_at: 2,
            privileges: Privileges::NONE,
        }
    }

    /// A token with this version text and payload and a (wrong) all-zero tag.
    fn token(version: &str, payload: &[u8]) -> String {
        format!(
            "bk{version}.{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode([0u8; TAG_LEN])
        )
    }

    fn malformed(token: &str) -> &'static str {
        match parse(token) {
            Err(TokenError::Malformed(what)) => what,
            other => panic!("expected Malformed for {token:?}, got {other:?}"),
        }
    }

    #[test]
    fn well_formed_parses_without_a_key() {
        let payload = encode_payload(1, &claims());
        let parsed = parse(&token("1", &payload)).unwrap();
        assert_eq!(parsed.claims, claims());
        assert_eq!(parsed.payload, payload);
        assert_eq!(parsed.tag, [0; TAG_LEN]);
    }

    #[test]
    fn payload_layout() {
        let c = TokenClaims {
            privileges: Privileges::SERVER,
            ..claims()
        };
        let mut expected = vec![1];
        expected.extend_from_slice(&1u64.to_be_bytes());
        expected.extend_from_slice(&2u64.to_be_bytes());
        expected.extend_from_slice(&1u32.to_be_bytes());
        expected.extend_from_slice(b"\0\x03app\0\x03bob");
        assert_eq!(encode_payload(1, &c), expected);
    }

    #[test]
    fn size_is_checked_first() {
        let oversize = format!("bk1.{}", "A".repeat(MAX_TOKEN_LEN));
        assert_eq!(malformed(&oversize), "longer than 2048 bytes");
        // Even a text that is not a token at all is refused for its size alone.
        assert_eq!(
            malformed(&"\u{e9}".repeat(MAX_TOKEN_LEN)),
            "longer than 2048 bytes"
        );
        // The limit itself is allowed through to the other checks.
        let at_limit = "x".repeat(MAX_TOKEN_LEN);
        assert_eq!(malformed(&at_limit), "does not start with `bk`");
    }

    #[test]
    fn versions() {
        let payload = encode_payload(1, &claims());
        assert_eq!(
            parse(&token("2", &payload)).unwrap_err(),
            TokenError::UnsupportedVersion(2)
        );
        assert_eq!(
            parse("bk0.anything").unwrap_err(),
            TokenError::UnsupportedVersion(0)
        );
        assert_eq!(
            parse("bk255.").unwrap_err(),
            TokenError::UnsupportedVersion(255)
        );
        for bad in [
            "01", "001", "256", "1000", "", "-1", "+1", "1a", " 1", "\u{661}",
        ] {
            assert_eq!(
                malformed(&token(bad, &payload)),
                "version is not a number from 0 to 255",
                "{bad:?}"
            );
        }
        assert_eq!(
            malformed(&token("1", &encode_payload(2, &claims()))),
            "payload version differs from the prefix"
        );
    }

    #[test]
    fn shape_errors() {
        assert_eq!(malformed(""), "does not start with `bk`");
        assert_eq!(malformed("1:app:123:abcdef"), "does not start with `bk`");
        assert_eq!(malformed("bk1"), "no `.` after the version");
        assert_eq!(malformed("bk1.AQ"), "no `.` before the signature");
        assert_eq!(malformed("bk1.A.x"), "payload is not base64url");
        assert_eq!(malformed("bk1.AQ==.x"), "payload is not base64url");
        assert_eq!(malformed("bk1.AQ+/.x"), "payload is not base64url");
        let payload = URL_SAFE_NO_PAD.encode(encode_payload(1, &claims()));
        for tag in [
            "",
            "x",
            &"A".repeat(42),
            &"A".repeat(44),
            &"A".repeat(43)[..],
        ] {
            let t = format!("bk1.{payload}.{tag}");
            if tag.len() == 43 {
                assert!(parse(&t).is_ok());
            } else {
                assert_eq!(malformed(&t), "signature is not 32 bytes of base64url");
            }
        }
        // 43 characters whose last one carries non-zero trailing bits: not canonical.
        let t = format!("bk1.{payload}.{}B", "A".repeat(42));
        assert_eq!(malformed(&t), "signature is not 32 bytes of base64url");
        // A third `.` lands in the tag, which then is not base64url.
        let t = format!("bk1.{payload}.{}.", "A".repeat(42));
        assert_eq!(malformed(&t), "signature is not 32 bytes of base64url");
    }

    #[test]
    fn payload_errors() {
        let full = encode_payload(1, &claims());
        // The payload cut short inside each field: 1 version byte, then 8 + 8 + 4 bytes of
        // numbers, then the app id (2 + 3 bytes) and the account (2 + 3).
        for (len, what) in [
            (0, "payload is empty"),
            (5, "payload ends in issued_at"),
            (12, "payload ends in expires_at"),
            (20, "payload ends in privileges"),
            (22, "payload ends in the app id"),
            (25, "payload ends in the app id"),
            (28, "payload ends in the account"),
        ] {
            assert_eq!(malformed(&token("1", &full[..len])), what, "{len} bytes");
        }
        let mut trailing = full.clone();
        trailing.push(0);
        assert_eq!(
            malformed(&token("1", &trailing)),
            "trailing bytes after the account"
        );

        let mut bad_utf8 = full.clone();
        bad_utf8[full.len() - 1] = 0xff;
        assert_eq!(malformed(&token("1", &bad_utf8)), "account is not UTF-8");
        let mut bad_utf8 = full.clone();
        bad_utf8[23] = 0xc3;
        assert_eq!(malformed(&token("1", &bad_utf8)), "app id is not UTF-8");

        let mut long = full[..21].to_vec();
        long.extend_from_slice(&513u16.to_be_bytes());
        long.extend(std::iter::repeat_n(b'a', 513));
        long.extend_from_slice(b"\0\x03bob");
        assert_eq!(
            malformed(&token("1", &long)),
            "app id is longer than 512 bytes"
        );
        let mut long = full[..26].to_vec();
        long.extend_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(
            malformed(&token("1", &long)),
            "account is longer than 512 bytes"
        );
    }

    #[test]
    fn base64_len_matches_the_engine() {
        for n in 0..100 {
            assert_eq!(base64_len(n), URL_SAFE_NO_PAD.encode(vec![0; n]).len());
        }
    }
}
