//! Admission control (SPEC §10) in the simulation: a server with 100,000 clients restarts, and
//! their return is a ramp at the configured login rate, not a stampede, with no session lost.
//!
//! The clients are real sans-IO clients with the SDK's defaults (3 attempts within 30 s); the
//! broker has the default admission control (5,000 logins/s, a burst of 5,000). Invariants:
//! - no one-second window takes more logins than the rate plus the burst, and once the burst is
//!   spent, none takes more than the rate and a few (clients booked for a second arrive in it);
//! - every client is logged in again, none gave up (no `onLogout`, no `onLoginFailed`): a
//!   refusal for load costs no attempt, so the 30 s / 3 attempts policy is never used up;
//! - refused logins are few per client: they were told when to come back, and came then.
//!
//! Run with `--nocapture` to see the series: `cargo test -p beckon-testkit --test admission --
//! --nocapture` (the full 100,000 clients; `BECKON_SIM_CLIENTS` sets another number).

use std::time::Duration;

use beckon_broker::{Apps, BrokerConfig, BrokerStats};
use beckon_client::{Event, Status};
use beckon_testkit::{NetConfig, Sim};

fn clients() -> usize {
    std::env::var("BECKON_SIM_CLIENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000)
}

/// One second of a ramp: (second, logins taken, logins refused, sessions at its end).
type Second = (u64, u64, u64, usize);

/// Runs the simulation a second at a time until every client has a session (at most
/// `limit`); the series of what each second saw.
fn ramp(sim: &mut Sim, clients: usize, limit: Duration) -> Vec<Second> {
    let mut series = Vec::new();
    let mut last: BrokerStats = sim.broker().stats();
    let mut t = 0;
    while sim.broker().stats().sessions < clients {
        assert!(
            Duration::from_secs(t) < limit,
            "not everyone was back after {limit:?}: {series:?}"
        );
        sim.advance(Duration::from_secs(1));
        t += 1;
        let now = sim.broker().stats();
        series.push((
            t,
            now.logins - last.logins,
            now.logins_refused - last.logins_refused,
            now.sessions,
        ));
        last = now;
    }
    series
}

fn print(title: &str, series: &[Second]) {
    println!("{title}");
    println!(
        "{:>6} {:>10} {:>10} {:>10}",
        "second", "logins/s", "refused/s", "sessions"
    );
    for (t, logins, refused, sessions) in series {
        println!("{t:>6} {logins:>10} {refused:>10} {sessions:>10}");
    }
}

fn check(series: &[Second], rate: u64, burst: u64, clients: usize) {
    let (first, rest) = series.split_first().expect("at least a second");
    assert!(first.1 <= rate + burst, "first second: {first:?}");
    for s in rest {
        // A second may take the tokens of its own refill and what was left of the last.
        assert!(s.1 <= rate + rate / 10, "over the rate: {s:?}");
    }
    let refused: u64 = series.iter().map(|s| s.2).sum();
    assert!(
        refused <= 3 * clients as u64,
        "{refused} refusals for {clients} clients: the retry-after should bring each back once"
    );
    let seconds = series.len() as u64;
    let needed = (clients as u64).saturating_sub(burst) / rate + 1;
    assert!(
        seconds <= 2 * needed + 2,
        "{seconds} s for what the rate does in {needed} s"
    );
}

#[test]
fn a_restart_with_a_hundred_thousand_clients_is_a_ramp() {
    let clients = clients();
    let mut config = BrokerConfig::new(Apps::development(), [1; 32]);
    // Heartbeats every minute rather than ten seconds: fewer pings to simulate, same ramp.
    config.heartbeat_interval = Duration::from_secs(60);
    let rate = u64::from(config.admission.logins_per_s);
    let burst = u64::from(config.admission.login_burst);
    let mut sim = Sim::with_config(42, config, NetConfig::default());
    for i in 0..clients {
        let c = sim.add_client();
        sim.login(c, &format!("user{i}"));
    }

    let cold = ramp(&mut sim, clients, Duration::from_secs(120));
    print(
        &format!("{clients} clients log in at once (cold start):"),
        &cold,
    );
    check(&cold, rate, burst, clients);
    sim.settle(Duration::from_secs(1));

    // The server crashes and comes back: every client reconnects within its first
    // attempt's jitter (0.5 s).
    sim.crash();
    let warm = ramp(&mut sim, clients, Duration::from_secs(120));
    print(
        &format!("{clients} clients reconnect after a restart:"),
        &warm,
    );
    check(&warm, rate, burst, clients);
    sim.settle(Duration::from_secs(1));

    let mut reconnected = 0;
    for c in 0..clients {
        assert_eq!(sim.client(c).status(), Status::LoggedIn, "client {c}");
        for e in sim.events(c) {
            assert!(
                !matches!(e, Event::Logout { .. } | Event::LoginFailed { .. }),
                "client {c} gave up: {e:?}"
            );
        }
        reconnected += usize::from(sim.events(c).contains(&Event::Reconnected { fd: 0 }));
    }
    assert_eq!(
        reconnected, clients,
        "every client reconnected, no session lost"
    );
    let stats = sim.broker().stats();
    println!(
        "after the restart: {} logins, {} refused for load ({:.2} per client)",
        stats.logins,
        stats.logins_refused,
        stats.logins_refused as f64 / clients as f64
    );
}
