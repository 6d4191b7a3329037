//! A bounded map whose entries expire: the per-worker caches (verified
//! tokens, keys, user answers). Time is passed in, never read, so the cache
//! is a plain state machine that tests drive with any clock.
//!
//! Eviction is first-in-first-out: behind an ALB every request carries a new
//! token, so recency tracking would cost more than it saves.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

#[derive(Debug)]
pub struct TtlCache<V> {
    entries: HashMap<Rc<str>, Entry<V>>,
    order: VecDeque<(Rc<str>, u64)>,
    max: usize,
    /// The sum of the sizes given to `insert_sized` may not exceed this.
    bytes_max: usize,
    bytes: usize,
    next_seq: u64,
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    expires_at: f64,
    seq: u64,
    size: usize,
}

impl<V> TtlCache<V> {
    /// A cache of at most `max` entries (`0` disables caching).
    pub fn new(max: usize) -> Self {
        TtlCache {
            entries: HashMap::new(),
            order: VecDeque::new(),
            max,
            bytes_max: usize::MAX,
            bytes: 0,
            next_seq: 0,
        }
    }

    /// Also bounds the sum of the sizes given to `insert_sized`.
    pub fn with_bytes_max(mut self, bytes_max: usize) -> Self {
        self.bytes_max = bytes_max;
        self
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The live value for `key`; an expired entry is dropped.
    pub fn get(&mut self, key: &str, now: f64) -> Option<&V> {
        let expired = match self.entries.get(key) {
            None => return None,
            Some(e) => now >= e.expires_at,
        };
        if expired {
            self.remove(key);
            return None;
        }
        self.entries.get(key).map(|e| &e.value)
    }

    /// Inserts or replaces; evicts the oldest entries when full.
    pub fn insert(&mut self, key: &str, value: V, expires_at: f64) {
        self.insert_sized(key, value, expires_at, 0);
    }

    /// `insert` of a value `size` bytes large: the oldest entries go until
    /// it fits the byte bound too; a value larger than the bound is not kept.
    pub fn insert_sized(&mut self, key: &str, value: V, expires_at: f64, size: usize) {
        if self.max == 0 || size > self.bytes_max {
            return;
        }
        self.remove(key);
        while self.entries.len() >= self.max || self.bytes + size > self.bytes_max {
            match self.order.pop_front() {
                Some((old, seq)) => {
                    if self.entries.get(&old).is_some_and(|e| e.seq == seq) {
                        self.remove(&old);
                    }
                }
                None => break,
            }
        }
        self.bytes += size;
        let seq = self.next_seq;
        self.next_seq += 1;
        let key: Rc<str> = Rc::from(key);
        self.order.push_back((key.clone(), seq));
        self.entries.insert(
            key,
            Entry {
                value,
                expires_at,
                seq,
                size,
            },
        );
        // Replaced and expired entries leave stale order records; keep the
        // queue proportional to the map so memory stays bounded.
        if self.order.len() > 2 * self.max + 16 {
            let entries = &self.entries;
            self.order
                .retain(|(k, s)| entries.get(k).is_some_and(|e| e.seq == *s));
        }
    }

    pub fn remove(&mut self, key: &str) {
        if let Some(entry) = self.entries.remove(key) {
            self.bytes -= entry.size;
        }
    }

    /// The sum of the sizes of the entries held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_with_injected_clock() {
        let mut c = TtlCache::new(4);
        c.insert("a", 1, 10.0);
        assert_eq!(c.get("a", 9.9), Some(&1));
        assert_eq!(c.get("a", 10.0), None);
        assert!(c.is_empty());
    }

    #[test]
    fn bounded_fifo() {
        let mut c = TtlCache::new(3);
        for (i, k) in ["a", "b", "c", "d"].iter().enumerate() {
            c.insert(k, i, 100.0);
        }
        assert_eq!(c.len(), 3);
        assert_eq!(c.get("a", 0.0), None);
        assert_eq!(c.get("d", 0.0), Some(&3));
        // Replacing does not evict.
        c.insert("d", 9, 100.0);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get("b", 0.0), Some(&1));
    }

    #[test]
    fn order_queue_stays_bounded_under_churn() {
        let mut c = TtlCache::new(8);
        for i in 0..10_000u32 {
            c.insert("same", i, 1e9);
            c.insert(&format!("k{}", i % 50), i, 1e9);
        }
        assert!(c.len() <= 8);
        assert!(c.order.len() <= 2 * 8 + 17);
    }

    #[test]
    fn zero_disables() {
        let mut c = TtlCache::new(0);
        c.insert("a", 1, 1e9);
        assert_eq!(c.get("a", 0.0), None);
    }

    #[test]
    fn bounded_in_bytes() {
        let mut c = TtlCache::new(10).with_bytes_max(100);
        c.insert_sized("a", 1, 100.0, 40);
        c.insert_sized("b", 2, 100.0, 40);
        assert_eq!(c.bytes(), 80);
        // 40 more do not fit: the oldest goes.
        c.insert_sized("c", 3, 100.0, 40);
        assert_eq!(c.get("a", 0.0), None);
        assert_eq!(c.bytes(), 80);
        // Replacing an entry gives its bytes back first.
        c.insert_sized("b", 4, 100.0, 60);
        assert_eq!(c.get("b", 0.0), Some(&4));
        assert_eq!(c.get("c", 0.0), Some(&3));
        assert_eq!(c.bytes(), 100);
        // Larger than the bound: not kept, nothing evicted.
        c.insert_sized("d", 5, 100.0, 101);
        assert_eq!(c.get("d", 0.0), None);
        assert_eq!((c.len(), c.bytes()), (2, 100));
        // Expiry gives bytes back.
        assert_eq!(c.get("c", 100.0), None);
        assert_eq!(c.bytes(), 60);
    }
}
