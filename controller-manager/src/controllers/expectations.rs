//! Expectations (upstream's `ControllerExpectations`): the creations and
//! deletions a controller asked for but has not seen in its informer yet.
//! Until they are seen (or five minutes pass), the controller does not act
//! on its stale view again, so a slow watch never makes it create twice.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// After this long, expectations are assumed lost and the controller acts.
const TTL: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
struct Pending {
    adds: i64,
    dels: i64,
    set_at: Instant,
}

#[derive(Default)]
pub struct Expectations {
    by_key: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    /// Whether `key` may act: nothing pending, or the expectations expired.
    pub fn satisfied(&self, key: &str) -> bool {
        let map = self.by_key.lock().expect("never poisoned");
        map.get(key)
            .is_none_or(|p| (p.adds <= 0 && p.dels <= 0) || p.set_at.elapsed() > TTL)
    }

    /// Replaces `key`'s expectations.
    pub fn expect(&self, key: &str, adds: i64, dels: i64) {
        self.by_key.lock().expect("never poisoned").insert(
            key.to_string(),
            Pending {
                adds,
                dels,
                set_at: Instant::now(),
            },
        );
    }

    /// One expected creation was seen (or will never happen).
    pub fn creation_observed(&self, key: &str) {
        self.lower(key, 1, 0);
    }

    /// One expected deletion was seen (or will never happen).
    pub fn deletion_observed(&self, key: &str) {
        self.lower(key, 0, 1);
    }

    fn lower(&self, key: &str, adds: i64, dels: i64) {
        if let Some(p) = self.by_key.lock().expect("never poisoned").get_mut(key) {
            p.adds -= adds;
            p.dels -= dels;
        }
    }

    pub fn forget(&self, key: &str) {
        self.by_key.lock().expect("never poisoned").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acts_only_once_what_it_asked_for_is_seen() {
        let e = Expectations::default();
        assert!(e.satisfied("rs"));
        e.expect("rs", 2, 0);
        assert!(!e.satisfied("rs"));
        e.creation_observed("rs");
        assert!(!e.satisfied("rs"));
        e.creation_observed("rs");
        assert!(e.satisfied("rs"));
        e.expect("rs", 0, 1);
        e.deletion_observed("rs");
        assert!(e.satisfied("rs"));
    }
}
