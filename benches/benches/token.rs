//! SignalingToken costs: minting, verifying a valid token (the login path), and refusing a
//! token signed with another certificate.

use std::hint::black_box;

use beckon_token::{Privileges, TokenClaims, mint, verify};
use criterion::{Criterion, criterion_group, criterion_main};

/// A realistic App Certificate: 32 hex characters.
const CERTIFICATE: &[u8] = b"5cfd2fd1755d40ecb72977518be15d3b";
const APP_ID: &str = "970CA35de60c44645bbae8a215061b33";
const ACCOUNT: &str = "alice@example.com";
const NOW: u64 = 1_700_000_000;

fn claims() -> TokenClaims {
    TokenClaims {
        app_id: APP_ID.to_owned(),
        account: ACCOUNT.to_owned(),
        expires_at: NOW + 24 * 3600,
        issued_at: NOW,
        privileges: Privileges::NONE,
    }
}

fn token(c: &mut Criterion) {
    let claims = claims();
    let valid = mint(CERTIFICATE, &claims);
    let forged = mint(b"00000000000000000000000000000000", &claims);
    // The benches below measure the paths they are named after.
    assert!(verify(CERTIFICATE, &valid, APP_ID, ACCOUNT, NOW).is_ok());
    assert_eq!(
        verify(CERTIFICATE, &forged, APP_ID, ACCOUNT, NOW),
        Err(beckon_token::TokenError::BadSignature)
    );

    let mut group = c.benchmark_group("token");
    group.bench_function("mint", |b| {
        b.iter(|| mint(black_box(CERTIFICATE), black_box(&claims)));
    });
    group.bench_function("verify", |b| {
        b.iter(|| {
            verify(
                black_box(CERTIFICATE),
                black_box(&valid),
                black_box(APP_ID),
                black_box(ACCOUNT),
                black_box(NOW),
            )
        });
    });
    group.bench_function("verify_bad_signature", |b| {
        b.iter(|| {
            verify(
                black_box(CERTIFICATE),
                black_box(&forged),
                black_box(APP_ID),
                black_box(ACCOUNT),
                black_box(NOW),
            )
        });
    });
    group.finish();
}

criterion_group!(benches, token);
criterion_main!(benches);
