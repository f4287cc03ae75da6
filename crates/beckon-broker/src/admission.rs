//! Admission control (SPEC §10): token buckets on logins, for the whole server and per source
//! address, and the retry-after hint a refused login carries.
//!
//! A bucket holds up to `burst` tokens and gains `rate` a second; a login takes one. A login
//! that finds none is refused and told when to come back. Those times are booked one token
//! interval apart, so the clients refused in one instant — a restarted server's whole
//! population — come back as a ramp at the bucket's rate instead of all at once again.
//! Clients returning at their time find the token that accrued for them; one that comes back
//! early, or whose token a newcomer took, is simply booked again, at the end.
//!
//! Per-address buckets exist only while they hold less than a full burst or a booking; a
//! sweep, run each time the table has doubled since the last one (so its cost is constant per
//! login), forgets the rest. The table is bounded ([`MAX_ADDRESSES`]): beyond it, new addresses
//! meet only the server's bucket.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::AdmissionConfig;

/// Source addresses tracked at once, at most (each costs about 60 bytes).
pub(crate) const MAX_ADDRESSES: usize = 100_000;

/// Tables this small are not worth sweeping.
const MIN_SWEEP: usize = 1_024;

/// A token bucket with bookings of future tokens for refused callers.
#[derive(Clone, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// The time after the last booked return: the next refused caller is booked here.
    booked_until: Instant,
}

/// Why a login waits: whose bucket was empty, and until when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) retry_after: Duration,
    /// True when the caller's address, not the server, is over its rate.
    pub(crate) by_address: bool,
}

impl Bucket {
    fn full(burst: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            at: now,
            booked_until: now,
        }
    }

    fn refill(&mut self, now: Instant, rate: u32, burst: u32) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(f64::from(burst));
        self.at = now.max(self.at);
    }

    fn has_token(&self) -> bool {
        self.tokens >= 1.0
    }

    fn take(&mut self) {
        self.tokens -= 1.0;
    }

    /// Books the next free token for a refused caller; returns how long it waits. Beyond
    /// `max` nothing is booked: the caller is told a time within the last half of `max`,
    /// spread by `spread` (a number that differs from caller to caller).
    fn book(&mut self, now: Instant, rate: u32, max: Duration, spread: u64) -> Duration {
        let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
        let next_token =
            now + Duration::from_secs_f64(((1.0 - self.tokens) / f64::from(rate.max(1))).max(0.0));
        let slot = self.booked_until.max(next_token);
        let wait = slot - now;
        if wait > max {
            let half = u64::try_from(max.as_micros() / 2)
                .unwrap_or(u64::MAX)
                .max(1);
            return max / 2 + Duration::from_micros(spread % half);
        }
        self.booked_until = slot + interval;
        wait
    }

    /// Whether the bucket is as if it had never been used: full, nothing booked ahead.
    fn idle(&self, now: Instant, burst: u32) -> bool {
        self.tokens >= f64::from(burst) && self.booked_until <= now
    }
}

/// The admission state of a broker.
#[derive(Debug)]
pub(crate) struct Admission {
    config: AdmissionConfig,
    server: Bucket,
    /// Keyed by addresses the network chooses: SipHash, not a fast hash.
    addresses: HashMap<IpAddr, Bucket>,
    /// The table is swept when it reaches this size, or once a full refill after the last
    /// sweep (so idle buckets are forgotten even when no new address comes).
    sweep_at: usize,
    last_sweep: Instant,
    /// Spreads the waits of callers told the longest wait.
    refusals: u64,
}

impl Admission {
    pub(crate) fn new(config: AdmissionConfig, now: Instant) -> Self {
        Self {
            server: Bucket::full(config.login_burst, now),
            config,
            addresses: HashMap::new(),
            sweep_at: MIN_SWEEP,
            last_sweep: now,
            refusals: 0,
        }
    }

    /// Takes a login from `peer` (`None`: the driver did not say) at `now`, or refuses it
    /// with the wait it should take. A refused login takes no token.
    pub(crate) fn admit(&mut self, peer: Option<IpAddr>, now: Instant) -> Result<(), Refusal> {
        let c = &self.config;
        let (rate, burst) = (c.logins_per_s, c.login_burst);
        let (addr_rate, addr_burst) = (c.logins_per_address_per_s, c.login_burst_per_address);
        let max = c.max_retry_after;
        let key = peer
            .filter(|ip| c.limit_loopback || !ip.is_loopback())
            .map(address_key);
        self.server.refill(now, rate, burst);
        if let Some(key) = key {
            self.sweep(now);
            let tracked = self.addresses.len() < MAX_ADDRESSES || self.addresses.contains_key(&key);
            if tracked {
                let bucket = self
                    .addresses
                    .entry(key)
                    .or_insert_with(|| Bucket::full(addr_burst, now));
                bucket.refill(now, addr_rate, addr_burst);
                if !bucket.has_token() {
                    self.refusals += 1;
                    let spread = splitmix(self.refusals);
                    let retry_after = bucket.book(now, addr_rate, max, spread);
                    return Err(Refusal {
                        retry_after,
                        by_address: true,
                    });
                }
                if self.server.has_token() {
                    bucket.take();
                }
            }
        }
        if !self.server.has_token() {
            self.refusals += 1;
            let spread = splitmix(self.refusals);
            return Err(Refusal {
                retry_after: self.server.book(now, rate, max, spread),
                by_address: false,
            });
        }
        self.server.take();
        Ok(())
    }

    /// Takes a token if one is there, never refusing: for a login that resumes a session,
    /// which must not wait past its grace period.
    pub(crate) fn admit_anyway(&mut self, now: Instant) {
        let c = &self.config;
        self.server.refill(now, c.logins_per_s, c.login_burst);
        if self.server.has_token() {
            self.server.take();
        }
    }

    /// Source addresses with a bucket of their own now.
    pub(crate) fn tracked_addresses(&self) -> usize {
        self.addresses.len()
    }

    /// Forgets idle per-address buckets once the table has doubled since the last sweep, or
    /// once every bucket has had time to fill up again.
    fn sweep(&mut self, now: Instant) {
        let (rate, burst) = (
            self.config.logins_per_address_per_s,
            self.config.login_burst_per_address,
        );
        let refill = Duration::from_secs_f64(f64::from(burst) / f64::from(rate.max(1)))
            .max(Duration::from_secs(1));
        let stale = !self.addresses.is_empty() && now >= self.last_sweep + refill;
        if self.addresses.len() < self.sweep_at && !stale {
            return;
        }
        self.last_sweep = now;
        self.addresses.retain(|_, b| {
            b.refill(now, rate, burst);
            !b.idle(now, burst)
        });
        crate::shrink::shrink_map(&mut self.addresses);
        self.sweep_at = (self.addresses.len() * 2).max(MIN_SWEEP);
    }
}

/// The key of an address's bucket: IPv4 addresses (also when mapped into IPv6) as they are,
/// IPv6 addresses by their /64, the block one subscriber usually holds.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

fn splitmix(z: u64) -> u64 {
    crate::broker::splitmix64(z)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn config(rate: u32, burst: u32, addr_rate: u32, addr_burst: u32) -> AdmissionConfig {
        AdmissionConfig {
            logins_per_s: rate,
            login_burst: burst,
            logins_per_address_per_s: addr_rate,
            login_burst_per_address: addr_burst,
            limit_loopback: false,
            max_retry_after: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_burst_then_the_rate_and_refusals_booked_a_token_apart() {
        let now = Instant::now();
        let mut a = Admission::new(config(10, 5, 1000, 1000), now);
        for _ in 0..5 {
            assert_eq!(a.admit(None, now), Ok(()));
        }
        let waits: Vec<Duration> = (0..4)
            .map(|_| a.admit(None, now).unwrap_err().retry_after)
            .collect();
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 300, 400], "one token interval apart");
        // Each comes back at its time and finds its token.
        for w in waits {
            assert_eq!(a.admit(None, now + w), Ok(()));
        }
    }

    #[test]
    fn the_longest_wait_is_bounded_and_spread() {
        let now = Instant::now();
        let mut c = config(1, 1, 1000, 1000);
        c.max_retry_after = Duration::from_secs(10);
        let mut a = Admission::new(c, now);
        assert!(a.admit(None, now).is_ok());
        let waits: Vec<Duration> = (0..30)
            .map(|_| a.admit(None, now).unwrap_err().retry_after)
            .collect();
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(10)));
        let beyond: Vec<&Duration> = waits[10..].iter().collect();
        assert!(beyond.iter().all(|w| **w >= Duration::from_secs(5)));
        let distinct: std::collections::HashSet<_> = beyond.iter().collect();
        assert!(distinct.len() > 10, "spread: {beyond:?}");
    }

    #[test]
    fn one_address_over_its_rate_does_not_hold_up_another() {
        let now = Instant::now();
        let mut a = Admission::new(config(1000, 1000, 2, 3), now);
        let flood = Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)));
        let other = Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)));
        for _ in 0..3 {
            assert!(a.admit(flood, now).is_ok());
        }
        let refusal = a.admit(flood, now).unwrap_err();
        assert!(refusal.by_address);
        assert_eq!(refusal.retry_after, Duration::from_millis(500));
        assert!(a.admit(other, now).is_ok());
        assert!(a.admit(flood, now + Duration::from_millis(500)).is_ok());
    }

    #[test]
    fn ipv6_is_limited_by_its_64_and_loopback_only_when_asked() {
        let now = Instant::now();
        let mut a = Admission::new(config(1000, 1000, 1, 1), now);
        let one: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert!(a.admit(Some(one.into()), now).is_ok());
        assert!(a.admit(Some(same_64.into()), now).is_err());
        let mapped: Ipv6Addr = "::ffff:192.0.2.1".parse().unwrap();
        assert!(a.admit(Some(mapped.into()), now).is_ok());
        assert!(
            a.admit(Some(Ipv4Addr::new(192, 0, 2, 1).into()), now)
                .is_err()
        );
        for _ in 0..10 {
            assert!(a.admit(Some(Ipv4Addr::LOCALHOST.into()), now).is_ok());
        }
        let mut strict = config(1000, 1000, 1, 1);
        strict.limit_loopback = true;
        let mut a = Admission::new(strict, now);
        assert!(a.admit(Some(Ipv4Addr::LOCALHOST.into()), now).is_ok());
        assert!(a.admit(Some(Ipv6Addr::LOCALHOST.into()), now).is_ok());
        assert!(a.admit(Some(Ipv4Addr::LOCALHOST.into()), now).is_err());
    }

    #[test]
    fn idle_addresses_are_forgotten() {
        let now = Instant::now();
        let mut a = Admission::new(config(u32::MAX, u32::MAX, 10, 10), now);
        for i in 0..5_000u32 {
            assert!(a.admit(Some(Ipv4Addr::from(i).into()), now).is_ok());
        }
        assert!(a.tracked_addresses() >= MIN_SWEEP);
        // A second later every bucket is full again; the next sweep forgets them.
        let later = now + Duration::from_secs(1);
        for i in 0..5_000u32 {
            assert!(
                a.admit(Some(Ipv4Addr::from(1 << 24 | i).into()), later)
                    .is_ok()
            );
        }
        // The first 5,000 were forgotten at the sweep the second 5,000 set off.
        assert_eq!(a.tracked_addresses(), 5_000);
        // Once every bucket has had time to fill up, the next login forgets them.
        let later = later + Duration::from_secs(2);
        assert!(
            a.admit(Some(Ipv4Addr::new(10, 0, 0, 1).into()), later)
                .is_ok()
        );
        assert_eq!(a.tracked_addresses(), 1);
    }
}
