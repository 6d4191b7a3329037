//! A cache shared by all of Envoy's worker VMs, with one fetch in flight per
//! name across all of them ("single flight").
//!
//! Envoy runs one wasm VM per worker thread; the only state they share is
//! proxy-wasm *shared data*: a key/value store with compare-and-swap and no
//! deletion. Two consequences shape this module:
//!
//! - Memory must be bounded by construction, so names (kids, usernames) are
//!   hashed into a fixed number of slots; each slot holds one record naming
//!   its owner. A collision only costs a refetch, never a wrong answer, and a
//!   live value is never displaced by a failure or a claim for another name
//!   (a flood of random kids cannot evict the real key).
//! - A fetch is claimed by CAS-writing an "in flight" record with a deadline.
//!   Other workers see it and wait (polling from their root context's tick)
//!   until a value or a failure is published, or the deadline passes and
//!   they claim it themselves. Nobody waits on a worker that died.
//!
//! Each worker keeps a small local cache in front (no hostcall, no decode on
//! a hit) whose entries expire when the shared ones do.

use crate::ttl_cache::TtlCache;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};

/// The host's shared key/value store (proxy-wasm shared data).
pub trait SharedStore {
    /// The value and its CAS token, `None` when absent.
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Writes when `cas` still matches (`0`: unconditionally). `false` on a
    /// CAS mismatch or a host error.
    fn set(&self, key: &str, value: &[u8], cas: u32) -> bool;
}

const VERSION: u8 = 1;
const TAG_EMPTY: u8 = 0;
const TAG_IN_FLIGHT: u8 = 1;
const TAG_READY: u8 = 2;
const TAG_FAILED: u8 = 3;

#[derive(Debug, Clone, PartialEq)]
enum Record {
    Empty,
    /// Someone is fetching `name`, until `until`.
    InFlight {
        name: String,
        until: f64,
    },
    Ready {
        name: String,
        until: f64,
        value: Vec<u8>,
    },
    Failed {
        name: String,
        until: f64,
        code: u8,
    },
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        let (tag, name, until, rest): (u8, &str, f64, &[u8]) = match self {
            Record::Empty => return vec![VERSION, TAG_EMPTY],
            Record::InFlight { name, until } => (TAG_IN_FLIGHT, name, *until, &[]),
            Record::Ready { name, until, value } => (TAG_READY, name, *until, value),
            Record::Failed { name, until, code } => {
                (TAG_FAILED, name, *until, std::slice::from_ref(code))
            }
        };
        let name_len = u16::try_from(name.len()).unwrap_or(u16::MAX);
        let mut out = Vec::with_capacity(13 + name.len() + rest.len());
        out.extend_from_slice(&[VERSION, tag]);
        out.extend_from_slice(&until.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&name.as_bytes()[..usize::from(name_len)]);
        out.extend_from_slice(rest);
        out
    }

    /// Anything unreadable (another version, corruption) reads as empty.
    fn decode(bytes: &[u8]) -> Record {
        Self::try_decode(bytes).unwrap_or(Record::Empty)
    }

    fn try_decode(bytes: &[u8]) -> Option<Record> {
        let (&version, rest) = bytes.split_first()?;
        let (&tag, rest) = rest.split_first()?;
        if version != VERSION || tag == TAG_EMPTY {
            return None;
        }
        let until = f64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
        let name_len = usize::from(u16::from_le_bytes(rest.get(8..10)?.try_into().ok()?));
        let name = std::str::from_utf8(rest.get(10..10 + name_len)?)
            .ok()?
            .to_owned();
        let value = rest.get(10 + name_len..)?;
        Some(match tag {
            TAG_IN_FLIGHT => Record::InFlight { name, until },
            TAG_READY => Record::Ready {
                name,
                until,
                value: value.to_vec(),
            },
            TAG_FAILED => Record::Failed {
                name,
                until,
                code: *value.first()?,
            },
            _ => return None,
        })
    }

    fn name(&self) -> Option<&str> {
        match self {
            Record::Empty => None,
            Record::InFlight { name, .. }
            | Record::Ready { name, .. }
            | Record::Failed { name, .. } => Some(name),
        }
    }

    fn is_live(&self, now: f64) -> bool {
        match self {
            Record::Empty => false,
            Record::InFlight { until, .. }
            | Record::Ready { until, .. }
            | Record::Failed { until, .. } => now < *until,
        }
    }
}

/// How many consecutive slots a name may occupy.
const PROBES: u64 = 8;

enum Probe {
    /// A slot holds a record for the name (live or not).
    Found {
        key: String,
        record: Record,
        cas: u32,
    },
    /// No record for the name; this slot may be taken.
    Free { key: String, cas: u32 },
    /// No record for the name and every slot is live with other names.
    Full,
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup<V> {
    Ready(V),
    Failed(u8),
    /// A fetch for this name is in flight (here or in another worker): wait.
    Wait,
    /// This worker now owns the fetch: dispatch it, then call `complete`.
    Fetch,
}

/// A shared, bounded, single-flight cache of `V`s decoded from bytes.
pub struct SharedCache<V> {
    prefix: String,
    slots: u64,
    local: TtlCache<V>,
    local_failed: TtlCache<u8>,
    fetching_here: HashSet<String>,
}

impl<V: Clone> SharedCache<V> {
    /// `namespace` separates unrelated caches (and filter configurations
    /// that talk to different key hosts) inside one Envoy's shared data.
    pub fn new(namespace: &str, slots: usize, local_max: usize) -> Self {
        SharedCache {
            prefix: format!("alb-oidc/{namespace}/"),
            slots: slots.max(1) as u64,
            local: TtlCache::new(local_max),
            local_failed: TtlCache::new(local_max),
            fetching_here: HashSet::new(),
        }
    }

    /// The slots `name` may live in: a few, chosen by its hash
    /// (probing makes a collision between two live names rare).
    fn slot_keys(&self, name: &str) -> impl Iterator<Item = String> + '_ {
        // SipHash with fixed keys: the same slots in every worker of this
        // binary. Attackers can aim at slots, but live values and fetches in
        // flight are never displaced, so the worst they get is their own
        // refetch.
        let mut h = std::hash::DefaultHasher::new();
        name.hash(&mut h);
        let hash = h.finish();
        let first = hash % self.slots;
        // Double hashing: names that share a first slot part ways after it,
        // so clusters do not build up as with linear probing.
        let step = ((hash >> 32) % self.slots) | 1;
        let probes = PROBES.min(self.slots);
        (0..probes).map(move |i| format!("{}{}", self.prefix, (first + i * step) % self.slots))
    }

    /// Reads `name`'s slots: the one holding `name` (if any) and the best
    /// one to take otherwise: empty or expired first, then another name's
    /// failure; never another name's live value or fetch in flight.
    fn probe(&self, store: &dyn SharedStore, name: &str, now: f64) -> Probe {
        let mut victim: Option<(String, u32, u8)> = None;
        for key in self.slot_keys(name) {
            let (record, cas) = match store.get(&key) {
                Some((bytes, cas)) => (Record::decode(&bytes), cas),
                None => (Record::Empty, 0),
            };
            if record.name() == Some(name) {
                return Probe::Found { key, record, cas };
            }
            let rank = match &record {
                Record::Empty => 0,
                r if !r.is_live(now) => 0,
                Record::Failed { .. } => 1,
                _ => continue,
            };
            if victim.as_ref().is_none_or(|(_, _, best)| rank < *best) {
                victim = Some((key, cas, rank));
            }
        }
        match victim {
            Some((key, cas, _)) => Probe::Free { key, cas },
            None => Probe::Full,
        }
    }

    /// Creates every slot (as empty) that does not exist yet. Shared data has
    /// no create-if-absent, so claims rely on slots existing: call this when
    /// a worker starts, before it serves requests.
    pub fn prepare(&self, store: &dyn SharedStore) {
        for slot in 0..self.slots {
            let key = format!("{}{}", self.prefix, slot);
            if store.get(&key).is_none() {
                store.set(&key, &Record::Empty.encode(), 0);
            }
        }
    }

    /// Looks `name` up locally, then in shared data; claims the fetch when
    /// nobody has it. `decode` turns shared bytes into a value (`None`:
    /// unusable, treated as absent).
    pub fn lookup(
        &mut self,
        store: &dyn SharedStore,
        name: &str,
        now: f64,
        fetch_deadline: f64,
        decode: impl Fn(&[u8]) -> Option<V>,
    ) -> Lookup<V> {
        self.lookup_fresh(store, name, now, fetch_deadline, decode, |_| false)
    }

    /// `lookup`, where a live value for which `stale` holds counts as
    /// absent: the fetch is claimed (or waited for) as for a missing one.
    /// For a value fetched again before it expires (a key set that lacks a
    /// kid). This worker's stale copy stays in its local cache, so plain
    /// `lookup`s keep using it while the new one is fetched.
    pub fn lookup_fresh(
        &mut self,
        store: &dyn SharedStore,
        name: &str,
        now: f64,
        fetch_deadline: f64,
        decode: impl Fn(&[u8]) -> Option<V>,
        stale: impl Fn(&V) -> bool,
    ) -> Lookup<V> {
        if let Some(v) = self.local.get(name, now).filter(|v| !stale(v)) {
            return Lookup::Ready(v.clone());
        }
        if let Some(code) = self.local_failed.get(name, now) {
            return Lookup::Failed(*code);
        }
        if self.fetching_here.contains(name) {
            return Lookup::Wait;
        }
        // Two rounds: a lost CAS means another worker just wrote the slot,
        // and the second read tells us what it did.
        for _ in 0..2 {
            let (key, cas) = match self.probe(store, name, now) {
                Probe::Found { key, record, cas } => {
                    match record {
                        Record::Ready { until, value, .. } if now < until => {
                            if let Some(v) = decode(&value).filter(|v| !stale(v)) {
                                self.local.insert(name, v.clone(), until);
                                return Lookup::Ready(v);
                            }
                        }
                        Record::Failed { until, code, .. } if now < until => {
                            self.local_failed.insert(name, code, until);
                            return Lookup::Failed(code);
                        }
                        Record::InFlight { until, .. } if now < until => return Lookup::Wait,
                        _ => {}
                    }
                    (key, cas)
                }
                Probe::Free { key, cas } => (key, cas),
                Probe::Full => {
                    // Every slot is busy with live entries of other names:
                    // fetch without a shared claim rather than evict them.
                    self.fetching_here.insert(name.to_owned());
                    return Lookup::Fetch;
                }
            };
            let claim = Record::InFlight {
                name: name.to_owned(),
                until: fetch_deadline,
            };
            if store.set(&key, &claim.encode(), cas) {
                self.fetching_here.insert(name.to_owned());
                return Lookup::Fetch;
            }
        }
        Lookup::Wait
    }

    /// Publishes the result of this worker's fetch: locally, and in shared
    /// data unless that would displace another name's live value.
    pub fn complete(
        &mut self,
        store: &dyn SharedStore,
        name: &str,
        result: Result<(V, Vec<u8>), u8>,
        until: f64,
        now: f64,
    ) {
        self.fetching_here.remove(name);
        let record = match result {
            Ok((value, bytes)) => {
                self.local.insert(name, value, until);
                self.local_failed.remove(name);
                Record::Ready {
                    name: name.to_owned(),
                    until,
                    value: bytes,
                }
            }
            Err(code) => {
                self.local_failed.insert(name, code, until);
                Record::Failed {
                    name: name.to_owned(),
                    until,
                    code,
                }
            }
        };
        for _ in 0..3 {
            let (key, cas) = match self.probe(store, name, now) {
                Probe::Found { key, cas, .. } | Probe::Free { key, cas } => (key, cas),
                Probe::Full => return,
            };
            if store.set(&key, &record.encode(), cas) {
                return;
            }
        }
    }

    /// Abandons this worker's fetch without a result: nothing is cached, and
    /// the shared claim is released, so the next request (of any worker)
    /// retries at once instead of waiting for the claim's deadline.
    pub fn abandon(&mut self, store: &dyn SharedStore, name: &str, now: f64) {
        self.fetching_here.remove(name);
        if let Probe::Found {
            key,
            record: Record::InFlight { .. },
            cas,
        } = self.probe(store, name, now)
        {
            // A lost CAS means another worker wrote the slot meanwhile: its
            // record stands.
            store.set(&key, &Record::Empty.encode(), cas);
        }
    }

    /// Whether this worker has a fetch for `name` in flight.
    pub fn is_fetching_here(&self, name: &str) -> bool {
        self.fetching_here.contains(name)
    }
}

// Behaviour across workers (with an in-memory store): tests/shared_cache.rs.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip() {
        for r in [
            Record::InFlight {
                name: "k".into(),
                until: 1.5,
            },
            Record::Ready {
                name: "kid-1".into(),
                until: 9.0,
                value: b"v".to_vec(),
            },
            Record::Failed {
                name: "x".into(),
                until: 2.0,
                code: 7,
            },
        ] {
            assert_eq!(Record::decode(&r.encode()), r);
        }
        assert_eq!(Record::decode(b""), Record::Empty);
        assert_eq!(Record::decode(&[9, 9, 9]), Record::Empty);
        assert_eq!(Record::decode(&[1, 2, 0, 0]), Record::Empty);
    }
}
