//! Dropping re-delivered messages.

use std::collections::{HashSet, VecDeque};

/// The server message ids seen most recently, so a message delivered twice (replayed after a
/// resume, or sent again by a peer's retry) reaches the application once. Bounded: the oldest
/// id is forgotten when the window is full.
#[derive(Debug)]
pub(super) struct Dedup {
    seen: HashSet<u64>,
    order: VecDeque<u64>,
    window: usize,
}

impl Dedup {
    pub(super) fn new(window: usize) -> Self {
        Self {
            seen: HashSet::new(),
            order: VecDeque::new(),
            window,
        }
    }

    /// Records a server message id; false if it was seen before.
    pub(super) fn first_time(&mut self, id: u64) -> bool {
        if !self.seen.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > self.window
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_inside_the_window_are_dropped_and_old_ids_forgotten() {
        let mut d = Dedup::new(2);
        assert!(d.first_time(1));
        assert!(!d.first_time(1));
        assert!(d.first_time(2));
        assert!(d.first_time(3)); // forgets 1
        assert!(!d.first_time(3));
        assert!(d.first_time(1));
    }
}
