//! Message ids the SDK generates when the application passes "".

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// A random number from the operating system, or, should that fail, from std's randomly keyed
/// hasher over the time (unique enough for ids and jitter, which is all it is used for).
pub(crate) fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    if getrandom::fill(&mut buf).is_ok() {
        return u64::from_le_bytes(buf);
    }
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Generates ids unique across instances and processes: a random per-instance prefix and a
/// counter. Generated on the caller's thread so `message_instant_send` can return the id at once.
#[derive(Debug)]
pub(crate) struct MessageIds {
    prefix: u64,
    counter: AtomicU64,
}

impl MessageIds {
    pub(crate) fn new() -> Self {
        Self {
            prefix: random_u64(),
            counter: AtomicU64::new(0),
        }
    }

    pub(crate) fn next(&self) -> String {
        // Relaxed: the counter only has to hand out distinct numbers.
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{:016x}-{n}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_distinct_within_and_across_generators() {
        let a = MessageIds::new();
        let b = MessageIds::new();
        let ids: HashSet<String> = (0..1000).flat_map(|_| [a.next(), b.next()]).collect();
        assert_eq!(ids.len(), 2000);
        assert!(ids.iter().all(|id| id.len() <= 128 && !id.contains(' ')));
    }
}
