//! The shared cache across workers: one fetch per name however many workers
//! ask, failures remembered, floods bounded. Workers share the test kit's
//! in-memory store (Envoy's shared-data semantics).

use alb_oidc::shared_cache::{Lookup, SharedCache};
use alb_oidc_testkit::store::MemoryStore;

fn dec(b: &[u8]) -> Option<String> {
    String::from_utf8(b.to_vec()).ok()
}

#[test]
fn one_fetch_across_workers() {
    let store = MemoryStore::default();
    let mut w1: SharedCache<String> = SharedCache::new("t", 8, 8);
    let mut w2: SharedCache<String> = SharedCache::new("t", 8, 8);
    w1.prepare(&store);
    w2.prepare(&store);
    assert_eq!(w1.lookup(&store, "k", 0.0, 5.0, dec), Lookup::Fetch);
    assert_eq!(w1.lookup(&store, "k", 0.0, 5.0, dec), Lookup::Wait);
    assert_eq!(w2.lookup(&store, "k", 0.1, 5.1, dec), Lookup::Wait);
    w1.complete(&store, "k", Ok(("v".into(), b"v".to_vec())), 100.0, 0.2);
    assert_eq!(
        w1.lookup(&store, "k", 0.3, 5.0, dec),
        Lookup::Ready("v".into())
    );
    assert_eq!(
        w2.lookup(&store, "k", 0.3, 5.0, dec),
        Lookup::Ready("v".into())
    );
    assert_eq!(w2.lookup(&store, "k", 100.0, 105.0, dec), Lookup::Fetch);
}

#[test]
fn stale_claim_is_taken_over() {
    let store = MemoryStore::default();
    let mut w1: SharedCache<String> = SharedCache::new("t", 8, 8);
    let mut w2: SharedCache<String> = SharedCache::new("t", 8, 8);
    w1.prepare(&store);
    assert_eq!(w1.lookup(&store, "k", 0.0, 5.0, dec), Lookup::Fetch);
    assert_eq!(w2.lookup(&store, "k", 4.9, 9.9, dec), Lookup::Wait);
    assert_eq!(w2.lookup(&store, "k", 5.0, 10.0, dec), Lookup::Fetch);
}

#[test]
fn failures_are_cached_and_expire() {
    let store = MemoryStore::default();
    let mut w1: SharedCache<String> = SharedCache::new("t", 8, 8);
    let mut w2: SharedCache<String> = SharedCache::new("t", 8, 8);
    w1.prepare(&store);
    assert_eq!(w1.lookup(&store, "bad", 0.0, 5.0, dec), Lookup::Fetch);
    w1.complete(&store, "bad", Err(4), 30.0, 1.0);
    assert_eq!(w1.lookup(&store, "bad", 2.0, 7.0, dec), Lookup::Failed(4));
    assert_eq!(w2.lookup(&store, "bad", 2.0, 7.0, dec), Lookup::Failed(4));
    assert_eq!(w2.lookup(&store, "bad", 30.0, 35.0, dec), Lookup::Fetch);
}

#[test]
fn floods_never_evict_a_live_value_and_memory_is_bounded() {
    let store = MemoryStore::default();
    let mut w: SharedCache<String> = SharedCache::new("t", 4, 4);
    w.prepare(&store);
    assert_eq!(w.lookup(&store, "real", 0.0, 5.0, dec), Lookup::Fetch);
    w.complete(
        &store,
        "real",
        Ok(("key".into(), b"key".to_vec())),
        300.0,
        0.0,
    );
    for i in 0..1000 {
        let kid = format!("random-{i}");
        if w.lookup(&store, &kid, 1.0, 6.0, dec) == Lookup::Fetch {
            w.complete(&store, &kid, Err(1), 31.0, 1.0);
        }
    }
    assert_eq!(store.len(), 4);
    let mut fresh: SharedCache<String> = SharedCache::new("t", 4, 4);
    assert_eq!(
        fresh.lookup(&store, "real", 2.0, 7.0, dec),
        Lookup::Ready("key".into())
    );
}

#[test]
fn unusable_bytes_read_as_absent() {
    let store = MemoryStore::default();
    let mut w: SharedCache<String> = SharedCache::new("t", 1, 1);
    w.prepare(&store);
    assert_eq!(w.lookup(&store, "k", 0.0, 5.0, dec), Lookup::Fetch);
    w.complete(&store, "k", Ok(("x".into(), vec![0xff])), 100.0, 0.0);
    let mut other: SharedCache<String> = SharedCache::new("t", 1, 1);
    assert_eq!(other.lookup(&store, "k", 1.0, 6.0, dec), Lookup::Fetch);
}

#[test]
fn many_new_names_across_two_workers_fetch_once_each() {
    let store = MemoryStore::default();
    let mut workers: Vec<SharedCache<String>> =
        (0..2).map(|_| SharedCache::new("t", 128, 128)).collect();
    workers[0].prepare(&store);
    let names: Vec<String> = (0..60).map(|i| format!("kid-{i}")).collect();
    let mut fetches = 0;
    let mut owned = Vec::new();
    // Both workers see every name before any fetch completes.
    for name in &names {
        for (w, worker) in workers.iter_mut().enumerate() {
            if worker.lookup(&store, name, 0.0, 5.0, |b| {
                String::from_utf8(b.to_vec()).ok()
            }) == Lookup::Fetch
            {
                fetches += 1;
                owned.push((w, name.clone()));
            }
        }
    }
    assert_eq!(fetches, names.len());
    for (w, name) in owned {
        workers[w].complete(&store, &name, Err(1), 30.0, 1.0);
    }
    for name in &names {
        for worker in workers.iter_mut() {
            assert_eq!(
                worker.lookup(&store, name, 2.0, 7.0, |b| String::from_utf8(b.to_vec())
                    .ok()),
                Lookup::Failed(1)
            );
        }
    }
}

/// `with_bytes_max`: a slot holds at most its share of the bytes; a larger
/// value stays with the worker that fetched it, and its claim is released
/// so that nobody waits for a value that will never be shared.
#[test]
fn a_value_larger_than_its_slot_share_stays_local() {
    let store = MemoryStore::default();
    let cache = || -> SharedCache<String> { SharedCache::new("b", 4, 4).with_bytes_max(400) };
    let (mut w1, mut w2) = (cache(), cache());
    w1.prepare(&store);
    let small = "s".repeat(100);
    let large = "l".repeat(101);
    assert_eq!(w1.lookup(&store, "small", 0.0, 5.0, dec), Lookup::Fetch);
    assert!(w1.complete(
        &store,
        "small",
        Ok((small.clone(), small.clone().into_bytes())),
        100.0,
        0.1
    ));
    assert_eq!(
        w2.lookup(&store, "small", 0.2, 5.0, dec),
        Lookup::Ready(small)
    );
    assert_eq!(w1.lookup(&store, "large", 0.0, 5.0, dec), Lookup::Fetch);
    assert_eq!(w2.lookup(&store, "large", 0.1, 5.0, dec), Lookup::Wait);
    assert!(!w1.complete(
        &store,
        "large",
        Ok((large.clone(), large.clone().into_bytes())),
        100.0,
        0.2
    ));
    assert_eq!(
        w1.lookup(&store, "large", 0.3, 5.0, dec),
        Lookup::Ready(large)
    );
    assert_eq!(w2.lookup(&store, "large", 0.3, 5.0, dec), Lookup::Fetch);
}
