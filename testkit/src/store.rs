//! An in-memory [`SharedStore`] with Envoy's shared-data semantics, for
//! native tests, fuzzing and benchmarks of the engine.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use alb_oidc::shared_cache::SharedStore;

/// Envoy's shared data in memory: CAS on existing keys, unconditional
/// create for absent ones, nothing ever removed. Clones are independent
/// copies (a snapshot of the store).
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    map: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    next_cas: Cell<u32>,
}

impl MemoryStore {
    /// How many keys the store holds (shared data never shrinks).
    pub fn len(&self) -> usize {
        self.map.borrow().len()
    }

    /// True when nothing was ever stored.
    pub fn is_empty(&self) -> bool {
        self.map.borrow().is_empty()
    }
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.map.borrow().get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> bool {
        let mut map = self.map.borrow_mut();
        if let Some((_, current)) = map.get(key) {
            if cas != 0 && cas != *current {
                return false;
            }
        }
        let next = self.next_cas.get().wrapping_add(1).max(1);
        self.next_cas.set(next);
        map.insert(key.to_owned(), (value.to_vec(), next));
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn compare_and_swap() {
        let store = MemoryStore::default();
        assert!(store.is_empty());
        assert!(
            store.set("k", b"a", 7),
            "absent keys are created whatever the cas"
        );
        let (value, cas) = store.get("k").unwrap();
        assert_eq!(value, b"a");
        assert!(!store.set("k", b"b", cas.wrapping_add(1)));
        assert!(store.set("k", b"b", cas));
        assert!(!store.set("k", b"c", cas), "the cas moved on");
        assert!(store.set("k", b"d", 0));
        assert_eq!(store.get("k").unwrap().0, b"d");
        assert_eq!(store.len(), 1);
    }
}
