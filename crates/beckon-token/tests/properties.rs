//! Properties of `mint`, `verify` and `peek` over arbitrary claims, certificates and damage.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use beckon_token::{MAX_TOKEN_LEN, Privileges, TokenClaims, TokenError, mint, peek, verify};
use hmac::{Hmac, KeyInit, Mac};
use proptest::prelude::*;
use proptest::sample::Index;
use sha2::Sha256;

/// Up to 128 characters of any kind: up to 512 bytes, the most a token carries.
fn field() -> impl Strategy<Value = String> {
    "(?s:.){0,128}"
}

fn certificate() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..100)
}

prop_compose! {
    fn claims()(
        app_id in field(),
        account in field(),
        issued_at in any::<u64>(),
        expires_at in 1..=u64::MAX,
        privileges in any::<u32>(),
    ) -> TokenClaims {
        TokenClaims {
            app_id,
            account,
            expires_at,
            issued_at,
            privileges: Privileges::from_bits_retain(privileges),
        }
    }
}

/// Whether HMAC treats two certificates as one key: keys up to the block size (64 bytes) are
/// padded with zeros, so trailing zeros do not count.
fn same_hmac_key(a: &[u8], b: &[u8]) -> bool {
    fn trim(k: &[u8]) -> &[u8] {
        let end = k.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        &k[..end]
    }
    a == b || (a.len() <= 64 && b.len() <= 64 && trim(a) == trim(b))
}

/// Payload bytes: random, or a genuine payload with one byte changed, cut, or extended.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    fn genuine() -> impl Strategy<Value = Vec<u8>> {
        claims().prop_map(|c| {
            let token = mint(b"", &c);
            let encoded = token.split('.').nth(1).unwrap();
            URL_SAFE_NO_PAD.decode(encoded).unwrap()
        })
    }
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600),
        genuine(),
        (genuine(), any::<Index>(), any::<u8>()).prop_map(|(mut p, at, byte)| {
            let i = at.index(p.len());
            p[i] = byte;
            p
        }),
        (genuine(), any::<Index>()).prop_map(|(p, at)| p[..at.index(p.len())].to_vec()),
        (genuine(), prop::collection::vec(any::<u8>(), 1..4)).prop_map(|(mut p, extra)| {
            p.extend(extra);
            p
        }),
    ]
}

/// Every character a token is made of.
const TOKEN_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip(cert in certificate(), c in claims(), now in any::<u64>()) {
        let now = now % c.expires_at;
        let token = mint(&cert, &c);
        prop_assert!(token.len() <= MAX_TOKEN_LEN);
        prop_assert!(token.starts_with("bk1."));
        prop_assert!(token.bytes().all(|b| TOKEN_ALPHABET.contains(&b)));
        prop_assert_eq!(verify(&cert, &token, &c.app_id, &c.account, now), Ok(c.clone()));
        prop_assert_eq!(peek(&token), Ok(c));
    }

    #[test]
    fn changed_character_is_refused(
        cert in certificate(),
        c in claims(),
        at in any::<Index>(),
        replacement in any::<Index>(),
    ) {
        let token = mint(&cert, &c);
        let mut bytes = token.clone().into_bytes();
        let i = at.index(bytes.len());
        let old = bytes[i];
        // Another character of the token alphabet, so the result is still plausible.
        let others: Vec<u8> = TOKEN_ALPHABET.iter().copied().filter(|&b| b != old).collect();
        bytes[i] = others[replacement.index(others.len())];
        let altered = String::from_utf8(bytes).expect("ASCII stays UTF-8");
        prop_assert!(verify(&cert, &altered, &c.app_id, &c.account, 0).is_err());
        let _ = peek(&altered);
    }

    #[test]
    fn flipped_bits_are_refused(
        cert in certificate(),
        c in claims(),
        at in any::<Index>(),
        mask in 1..=u8::MAX,
    ) {
        let token = mint(&cert, &c);
        let mut bytes = token.into_bytes();
        let i = at.index(bytes.len());
        bytes[i] ^= mask;
        let altered = String::from_utf8_lossy(&bytes);
        prop_assert!(verify(&cert, &altered, &c.app_id, &c.account, 0).is_err());
        let _ = peek(&altered);
    }

    #[test]
    fn truncated_token_is_refused(cert in certificate(), c in claims(), at in any::<Index>()) {
        let token = mint(&cert, &c);
        let cut = &token[..at.index(token.len())];
        prop_assert!(verify(&cert, cut, &c.app_id, &c.account, 0).is_err());
        let _ = peek(cut);
        // Dropping a character from the middle is refused too.
        let mut dropped = token.clone();
        dropped.remove(at.index(token.len()));
        prop_assert!(verify(&cert, &dropped, &c.app_id, &c.account, 0).is_err());
    }

    #[test]
    fn random_text_is_refused(cert in certificate(), text in any::<String>()) {
        prop_assert!(verify(&cert, &text, "app", "account", 0).is_err());
        let _ = peek(&text);
    }

    #[test]
    fn random_token_shaped_text_is_refused(
        cert in certificate(),
        text in "bk1\\.[A-Za-z0-9_-]{0,300}\\.[A-Za-z0-9_-]{0,50}",
    ) {
        let result = verify(&cert, &text, "app", "account", 0);
        prop_assert!(result.is_err());
        let _ = peek(&text);
    }

    /// A correctly signed payload of arbitrary bytes is either refused as malformed, or read
    /// into claims that mint back to exactly the same token (each token has one spelling).
    #[test]
    fn signed_arbitrary_payload_is_malformed_or_canonical(
        cert in certificate(),
        payload in payload(),
    ) {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&cert).unwrap();
        mac.update(b"bk1.");
        mac.update(&payload);
        let tag = mac.finalize().into_bytes();
        let token = format!(
            "bk1.{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag)
        );
        match peek(&token) {
            Ok(c) => {
                prop_assert_eq!(mint(&cert, &c), token.clone());
                prop_assert_eq!(verify(&cert, &token, &c.app_id, &c.account, 0).is_ok(),
                                c.expires_at > 0);
            }
            Err(e) => {
                prop_assert!(matches!(e, TokenError::Malformed(_)), "{e:?}");
                prop_assert_eq!(verify(&cert, &token, "app", "account", 0), Err(e));
            }
        }
    }

    #[test]
    fn wrong_certificate_is_bad_signature(
        cert in certificate(),
        other in certificate(),
        c in claims(),
        now in any::<u64>(),
    ) {
        prop_assume!(!same_hmac_key(&cert, &other));
        let token = mint(&cert, &c);
        // Whatever else is wrong (time, app, account), the signature is reported.
        prop_assert_eq!(
            verify(&other, &token, &c.app_id, &c.account, now),
            Err(TokenError::BadSignature)
        );
        prop_assert_eq!(
            verify(&other, &token, "not the app", "not the account", now),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn expired_at_and_after_expiry(cert in certificate(), c in claims(), late in any::<u64>()) {
        let now = c.expires_at + late % (u64::MAX - c.expires_at + 1).max(1);
        let token = mint(&cert, &c);
        for now in [c.expires_at, now] {
            let err = verify(&cert, &token, &c.app_id, &c.account, now).unwrap_err();
            prop_assert!(err.is_expired());
            prop_assert_eq!(err, TokenError::Expired { expired_at: c.expires_at, now });
        }
        prop_assert!(verify(&cert, &token, &c.app_id, &c.account, c.expires_at - 1).is_ok());
    }

    #[test]
    fn wrong_app_or_account(
        cert in certificate(),
        c in claims(),
        other in field(),
        now in any::<u64>(),
    ) {
        prop_assume!(other != c.app_id && other != c.account);
        let token = mint(&cert, &c);
        // Reported before expiry, whatever the time.
        prop_assert_eq!(
            verify(&cert, &token, &other, &c.account, now),
            Err(TokenError::WrongApp)
        );
        prop_assert_eq!(
            verify(&cert, &token, &other, &other, now),
            Err(TokenError::WrongApp)
        );
        prop_assert_eq!(
            verify(&cert, &token, &c.app_id, &other, now),
            Err(TokenError::WrongAccount)
        );
    }

    #[test]
    fn oversize_is_malformed(cert in certificate(), c in claims(), padding in "(?s:.){1,300}") {
        // A genuine token made too long, and arbitrary long text.
        let token = mint(&cert, &c);
        let fill = MAX_TOKEN_LEN + 1 - token.len().min(MAX_TOKEN_LEN);
        let long = format!("{token}{}", "A".repeat(fill));
        let long_text = format!("{}{padding}", "x".repeat(MAX_TOKEN_LEN));
        for text in [long, long_text] {
            prop_assert!(text.len() > MAX_TOKEN_LEN);
            let expected = Err(TokenError::Malformed("longer than 2048 bytes"));
            prop_assert_eq!(verify(&cert, &text, &c.app_id, &c.account, 0), expected.clone());
            prop_assert_eq!(peek(&text), expected);
        }
    }
}
