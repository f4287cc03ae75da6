//! Giving memory back: a table that grew for a crowd keeps its capacity after the crowd has
//! gone, so the broker shrinks a table once it is mostly empty. Shrinking to twice the length
//! when the length falls below a quarter of the capacity keeps the cost constant per removal
//! (a table that is shrunk has to lose half its entries again before the next shrink).

use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};

/// Capacities below this are not worth a reallocation.
const MIN_CAPACITY: usize = 64;

fn mostly_empty(len: usize, capacity: usize) -> bool {
    capacity > MIN_CAPACITY && len.saturating_mul(4) < capacity
}

pub(crate) fn shrink_map<K: Eq + Hash, V, S: BuildHasher>(map: &mut HashMap<K, V, S>) {
    if mostly_empty(map.len(), map.capacity()) {
        map.shrink_to(map.len() * 2);
    }
}

pub(crate) fn shrink_deque<T>(q: &mut VecDeque<T>) {
    if mostly_empty(q.len(), q.capacity()) {
        q.shrink_to(q.len() * 2);
    }
}

pub(crate) fn shrink_heap<T: Ord>(h: &mut BinaryHeap<T>) {
    if mostly_empty(h.len(), h.capacity()) {
        h.shrink_to(h.len() * 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mostly_empty_table_shrinks_and_a_full_one_does_not() {
        let mut m: HashMap<u32, u32> = (0..10_000).map(|i| (i, i)).collect();
        let full = m.capacity();
        shrink_map(&mut m);
        assert_eq!(m.capacity(), full);
        m.retain(|k, _| *k < 100);
        shrink_map(&mut m);
        assert!(m.capacity() < full / 10, "{}", m.capacity());
        assert_eq!(m.len(), 100);
        let mut q: VecDeque<u8> = VecDeque::with_capacity(4096);
        q.push_back(1);
        shrink_deque(&mut q);
        assert!(q.capacity() < 64);
    }
}
