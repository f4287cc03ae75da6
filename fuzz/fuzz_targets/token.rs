//! The SignalingToken parser (`beckon_token::verify` and `peek`), which reads the token of
//! every login before anything else is trusted.
//!
//! Asserts, for arbitrary text (checked as a login of `alice` to `app`): `peek` and `verify` never panic; a text `peek` accepts is in the
//! one canonical form (minting its claims gives back the same text up to the signature); a
//! text `verify` accepts is exactly the token minted for its claims. For arbitrary claims: the
//! minted token is short, printable, verifies to the same claims until it expires, and with any
//! one character changed it no longer verifies.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

use beckon_token::{MAX_FIELD_LEN, MAX_TOKEN_LEN, Privileges, TokenClaims, TokenError};

const CERT: &[u8] = b"5cfd2fd1755d40ecb72977518be15d3b";

/// The app, account and time a `Text` input is checked for; the seed tokens are minted for
/// them, so that mutations of a valid token start from one that verifies.
const APP: &str = "app";
const ACCOUNT: &str = "alice";
const NOW: u64 = 1_800_000_000;

/// Claims to mint, verify at `now`, and then verify again with one character replaced.
#[derive(Arbitrary, Debug)]
struct Claims {
    app_id: String,
    account: String,
    issued_at: u64,
    expires_at: u64,
    privileges: u32,
    now: u64,
    edit: Option<(u16, u8)>,
}

fuzz_target!(|data: &[u8]| {
    // The first byte chooses: even, the rest is a token's text as a client sends it; odd, the
    // rest is read as `Claims`.
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        if let Ok(token) = std::str::from_utf8(rest) {
            text(APP, ACCOUNT, NOW, token);
        }
        return;
    }
    let Ok(c) = Claims::arbitrary_take_rest(Unstructured::new(rest)) else {
        return;
    };
    let claims = TokenClaims {
        app_id: truncate(c.app_id),
        account: truncate(c.account),
        issued_at: c.issued_at,
        expires_at: c.expires_at,
        privileges: Privileges::from_bits_retain(c.privileges),
    };
    claims_round_trip(&claims, c.now, c.edit);
});

fn text(app_id: &str, account: &str, now: u64, token: &str) {
    let peeked = beckon_token::peek(token);
    let verified = beckon_token::verify(CERT, token, app_id, account, now);
    if let Ok(claims) = &peeked {
        // One spelling per token: the text before the signature is what minting writes.
        let minted = beckon_token::mint(CERT, claims);
        assert_eq!(
            unsigned(&minted),
            unsigned(token),
            "a non-canonical token was read"
        );
    }
    match verified {
        Ok(claims) => {
            assert_eq!(beckon_token::mint(CERT, &claims), token);
            assert_eq!(peeked, Ok(claims));
        }
        // Nothing about the claims is said before the signature is checked.
        Err(TokenError::WrongApp | TokenError::WrongAccount | TokenError::Expired { .. }) => {
            let claims = peeked.expect("verify got past the shape, so peek does");
            assert_eq!(
                beckon_token::mint(CERT, &claims),
                token,
                "signature not checked first"
            );
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
        }
    }
}

fn claims_round_trip(claims: &TokenClaims, now: u64, edit: Option<(u16, u8)>) {
    let token = beckon_token::mint(CERT, claims);
    assert!(token.len() <= MAX_TOKEN_LEN, "{} bytes", token.len());
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
        "{token}"
    );
    assert_eq!(beckon_token::peek(&token).as_ref(), Ok(claims));
    let verified = beckon_token::verify(CERT, &token, &claims.app_id, &claims.account, now);
    if now < claims.expires_at {
        assert_eq!(verified.as_ref(), Ok(claims));
    } else {
        assert!(verified.unwrap_err().is_expired());
    }
    if let Some((at, byte)) = edit {
        const ALPHABET: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
        let at = usize::from(at) % token.len();
        let replacement = ALPHABET[usize::from(byte) % ALPHABET.len()];
        if token.as_bytes()[at] == replacement {
            return;
        }
        let mut edited = token.clone().into_bytes();
        edited[at] = replacement;
        let edited = String::from_utf8(edited).expect("ASCII stays ASCII");
        let result = beckon_token::verify(CERT, &edited, &claims.app_id, &claims.account, 0);
        assert!(
            result.is_err(),
            "{edited} verifies after an edit of {token}"
        );
    }
}

/// The text before the last `.` (the signed part).
fn unsigned(token: &str) -> &str {
    token.rsplit_once('.').map_or(token, |(head, _)| head)
}

/// Cuts a field to at most `MAX_FIELD_LEN` bytes on a character boundary (`mint` refuses more).
fn truncate(mut s: String) -> String {
    let mut end = s.len().min(MAX_FIELD_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}
