//! A set with a time-to-live and a size bound: the seen caches.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Keys remembered for `ttl` after insertion, at most `max` of them (oldest forgotten first),
/// each with a value.
#[derive(Debug)]
pub(crate) struct TimeCache<K, V> {
    map: HashMap<K, (Instant, V)>,
    order: VecDeque<(Instant, K)>,
    ttl: Duration,
    max: usize,
}

impl<K: Hash + Eq + Clone, V> TimeCache<K, V> {
    pub(crate) fn new(ttl: Duration, max: usize) -> Self {
        TimeCache {
            map: HashMap::new(),
            order: VecDeque::new(),
            ttl,
            max: max.max(1),
        }
    }

    /// Insert `k` unless present; `true` when it was new.
    pub(crate) fn insert(&mut self, k: K, v: V, now: Instant) -> bool {
        self.expire(now);
        if self.map.contains_key(&k) {
            return false;
        }
        while self.map.len() >= self.max || self.order.len() >= self.max.saturating_mul(2) {
            match self.order.pop_front() {
                Some((t, old)) => {
                    if self.map.get(&old).is_some_and(|(at, _)| *at == t) {
                        self.map.remove(&old);
                    }
                }
                None => break,
            }
        }
        self.map.insert(k.clone(), (now, v));
        self.order.push_back((now, k));
        true
    }

    pub(crate) fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k).map(|(_, v)| v)
    }

    /// Forget `k` (its slot in the expiry order is skipped when reached).
    pub(crate) fn remove(&mut self, k: &K) {
        self.map.remove(k);
    }

    pub(crate) fn contains(&self, k: &K) -> bool {
        self.map.contains_key(k)
    }

    /// Forget entries older than the TTL.
    pub(crate) fn expire(&mut self, now: Instant) {
        while let Some((t, _)) = self.order.front() {
            if now.saturating_duration_since(*t) < self.ttl {
                break;
            }
            if let Some((t, k)) = self.order.pop_front() {
                // A key removed and inserted again has a newer entry: keep it.
                if self.map.get(&k).is_some_and(|(at, _)| *at == t) {
                    self.map.remove(&k);
                }
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_after_ttl_and_beyond_max() {
        let t0 = Instant::now();
        let mut c = TimeCache::new(Duration::from_secs(10), 3);
        assert!(c.insert(1, (), t0));
        assert!(!c.insert(1, (), t0 + Duration::from_secs(1)));
        assert!(c.insert(2, (), t0 + Duration::from_secs(2)));
        assert!(c.insert(3, (), t0 + Duration::from_secs(3)));
        assert!(c.insert(4, (), t0 + Duration::from_secs(4)));
        assert!(!c.contains(&1), "the oldest goes when the cache is full");
        assert_eq!(c.len(), 3);
        c.expire(t0 + Duration::from_secs(12));
        assert!(!c.contains(&2));
        assert!(c.contains(&3));
        c.expire(t0 + Duration::from_secs(14));
        assert_eq!(c.len(), 0);
    }
}
