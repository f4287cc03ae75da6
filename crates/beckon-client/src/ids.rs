//! Seeded randomness and message ids: the one generator of each.

use std::sync::atomic::{AtomicU64, Ordering};

/// A small seeded generator (xorshift64*): enough for ids and reconnect jitter, and the same
/// sequence for the same seed, so a simulation replays exactly. Public so that a harness draws
/// its own schedule from the same generator as the clients it drives.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose state is `state` as given (a state of 0 stays 0: mix the seed first).
    pub fn new(state: u64) -> Self {
        Self(state)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// The message ids of one client for sends whose `msgID` is "": a per-client prefix and a
/// counter, `{prefix:016x}-{n}`.
///
/// It is the only place ids are made. The client owns it and shares it (an `Arc`: a prefix and
/// an atomic counter, no lock) with a driver that must return an id before the client sees the
/// call — the SDK's `message_instant_send` returns it on the caller's thread — so an id is
/// generated once, by the same generator, whichever side resolves it.
#[derive(Debug)]
pub struct MessageIds {
    prefix: u64,
    counter: AtomicU64,
}

impl MessageIds {
    pub fn new(prefix: u64) -> Self {
        Self {
            prefix,
            counter: AtomicU64::new(0),
        }
    }

    /// A fresh id.
    pub fn next(&self) -> String {
        // Relaxed: the counter only has to hand out distinct numbers.
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{:016x}-{n}", self.prefix)
    }

    /// `msg_id`, or a fresh id when it is "".
    pub fn resolve(&self, msg_id: &str) -> String {
        if msg_id.is_empty() {
            self.next()
        } else {
            msg_id.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_distinct_within_and_across_generators() {
        let a = MessageIds::new(Rng::new(1).next_u64());
        let b = MessageIds::new(Rng::new(2).next_u64());
        let ids: HashSet<String> = (0..1000).flat_map(|_| [a.next(), b.next()]).collect();
        assert_eq!(ids.len(), 2000);
        assert!(ids.iter().all(|id| id.len() <= 128 && !id.contains(' ')));
        assert_eq!(a.resolve("mine"), "mine");
        assert_ne!(a.resolve(""), a.resolve(""));
    }
}
