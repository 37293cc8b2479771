//! Restart and image-pull back-off as upstream's flowcontrol.Backoff: the
//! first retry is immediate, then 10 s doubling to 5 min; an entry idle
//! for twice the maximum is forgotten (a container that ran for a long
//! time starts over at 10 s).

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Entry {
    delay: Duration,
    last: Instant,
}

#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(INITIAL, MAX)
    }
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            entries: HashMap::new(),
        }
    }

    /// Whether `key` must still wait, counting from `since` (when the
    /// container finished, or the last pull failed): Some(remaining).
    pub fn wait(
        &mut self,
        key: &str,
        since: Instant,
        now: Instant,
    ) -> Option<(Duration, Duration)> {
        let entry = self.entries.get(key)?;
        if now.duration_since(entry.last) > self.max * 2 {
            self.entries.remove(key);
            return None;
        }
        let until = since + entry.delay;
        (now < until).then(|| (until - now, entry.delay))
    }

    /// Records a retry of `key` now: the next wait doubles.
    pub fn next(&mut self, key: &str, now: Instant) {
        let initial = self.initial;
        let max = self.max;
        let entry = self.entries.entry(key.to_string()).or_insert(Entry {
            delay: Duration::ZERO,
            last: now,
        });
        entry.delay = if entry.delay.is_zero() {
            initial
        } else {
            (entry.delay * 2).min(max)
        };
        entry.last = now;
    }

    pub fn forget(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_maximum_and_forgets() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        assert_eq!(b.wait("c", t0, t0), None);
        b.next("c", t0);
        // Exited right after: wait 10 s from the exit.
        assert_eq!(
            b.wait("c", t0, t0 + Duration::from_secs(4)).map(|w| w.0),
            Some(Duration::from_secs(6))
        );
        assert_eq!(b.wait("c", t0, t0 + Duration::from_secs(10)), None);
        b.next("c", t0 + Duration::from_secs(10));
        assert_eq!(
            b.wait(
                "c",
                t0 + Duration::from_secs(10),
                t0 + Duration::from_secs(11)
            )
            .map(|w| w.1),
            Some(Duration::from_secs(20))
        );
        for i in 0..10 {
            b.next("c", t0 + Duration::from_secs(20 + i));
        }
        let t = t0 + Duration::from_secs(30);
        assert_eq!(b.wait("c", t, t).map(|w| w.1), Some(MAX));
        let much_later = t + MAX * 3;
        assert_eq!(b.wait("c", much_later, much_later), None);
    }
}
