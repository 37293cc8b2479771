//! The scheduling queue (upstream's `PriorityQueue`): pods wait in
//! `active` ordered by priority then age (PrioritySort), in `backoff` after
//! a failed attempt (1 s doubling to 10 s), or in `unschedulable` until the
//! cluster changes in a way that may let them fit.

use k8s_openapi::api::core::v1::Pod;
use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Unschedulable pods are retried at least this often (upstream's
/// podMaxInUnschedulablePodsDuration).
pub const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Active,
    Backoff(Instant),
    Unschedulable(Instant),
    /// Popped and being scheduled.
    InFlight,
}

struct Entry {
    pod: Arc<Pod>,
    attempts: u32,
    place: Place,
    /// A cluster change arrived while the pod was in flight.
    moved_while_in_flight: bool,
}

type ActiveKey = (Reverse<i32>, String, String);

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    active: BTreeSet<ActiveKey>,
}

#[derive(Default)]
pub struct Queue {
    inner: Mutex<Inner>,
    notify: Notify,
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn active_key(pod: &Pod) -> ActiveKey {
    let priority = pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
    let created = pod
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    (Reverse(priority), created, uid(pod))
}

fn backoff(attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(16);
    (INITIAL_BACKOFF * 2u32.pow(exp)).min(MAX_BACKOFF)
}

/// How many pods wait where (for `scheduler_pending_pods{queue}`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pending {
    pub active: usize,
    pub backoff: usize,
    pub unschedulable: usize,
}

impl Queue {
    /// A pending pod was added or changed.
    pub fn add(&self, pod: Arc<Pod>) {
        let mut inner = self.inner.lock().expect("never poisoned");
        let id = uid(&pod);
        match inner.entries.get_mut(&id) {
            Some(e) => {
                let was_active = e.place == Place::Active;
                let old_key = active_key(&e.pod);
                // Upstream's isPodUpdated: status, resourceVersion and the
                // like change with every report of the failure itself.
                let relevant = e.pod.spec != pod.spec
                    || e.pod.metadata.labels != pod.metadata.labels
                    || e.pod.metadata.annotations != pod.metadata.annotations;
                e.pod = pod.clone();
                // An update may make an unschedulable pod fit: retry it.
                if let Place::Unschedulable(_) = e.place
                    && relevant
                {
                    e.place = Place::Active;
                }
                let now_active = e.place == Place::Active;
                if was_active {
                    inner.active.remove(&old_key);
                }
                if now_active {
                    inner.active.insert(active_key(&pod));
                }
            }
            None => {
                inner.active.insert(active_key(&pod));
                inner.entries.insert(
                    id,
                    Entry {
                        pod,
                        attempts: 0,
                        place: Place::Active,
                        moved_while_in_flight: false,
                    },
                );
            }
        }
        drop(inner);
        self.notify.notify_one();
    }

    /// The pod was bound, deleted, or is no longer ours.
    pub fn remove(&self, uid: &str) {
        let mut inner = self.inner.lock().expect("never poisoned");
        if let Some(e) = inner.entries.remove(uid)
            && e.place == Place::Active
        {
            inner.active.remove(&active_key(&e.pod));
        }
    }

    /// The next pod to schedule, waiting for one if none is ready.
    pub async fn pop(&self) -> Arc<Pod> {
        loop {
            let wake = {
                let mut inner = self.inner.lock().expect("never poisoned");
                let now = Instant::now();
                let ready: Vec<String> = inner
                    .entries
                    .iter()
                    .filter(|(_, e)| match e.place {
                        Place::Backoff(until) => until <= now,
                        Place::Unschedulable(since) => now - since >= MAX_UNSCHEDULABLE,
                        _ => false,
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for id in ready {
                    let e = inner.entries.get_mut(&id).expect("just listed");
                    e.place = Place::Active;
                    let key = active_key(&e.pod);
                    inner.active.insert(key);
                }
                if let Some(key) = inner.active.pop_first() {
                    let e = inner
                        .entries
                        .get_mut(&key.2)
                        .expect("active pods have entries");
                    e.place = Place::InFlight;
                    e.moved_while_in_flight = false;
                    return e.pod.clone();
                }
                inner
                    .entries
                    .values()
                    .filter_map(|e| match e.place {
                        Place::Backoff(until) => Some(until),
                        Place::Unschedulable(since) => Some(since + MAX_UNSCHEDULABLE),
                        _ => None,
                    })
                    .min()
            };
            match wake {
                Some(at) => {
                    tokio::select! {
                        _ = self.notify.notified() => {}
                        _ = tokio::time::sleep_until(at.into()) => {}
                    }
                }
                None => self.notify.notified().await,
            }
        }
    }

    /// No node fits: wait for a cluster change (or back off if one came
    /// during the attempt).
    pub fn unschedulable(&self, uid: &str) {
        let mut inner = self.inner.lock().expect("never poisoned");
        if let Some(e) = inner.entries.get_mut(uid) {
            e.attempts += 1;
            e.place = if e.moved_while_in_flight {
                Place::Backoff(Instant::now() + backoff(e.attempts))
            } else {
                Place::Unschedulable(Instant::now())
            };
        }
        drop(inner);
        self.notify.notify_one();
    }

    /// The attempt failed (an error, a failed binding): retry after backoff.
    pub fn back_off(&self, pod: Arc<Pod>) {
        let mut inner = self.inner.lock().expect("never poisoned");
        let id = uid(&pod);
        let e = inner.entries.entry(id).or_insert(Entry {
            pod,
            attempts: 0,
            place: Place::InFlight,
            moved_while_in_flight: false,
        });
        e.attempts += 1;
        e.place = Place::Backoff(Instant::now() + backoff(e.attempts));
        drop(inner);
        self.notify.notify_one();
    }

    /// Something changed that may let waiting pods fit (a node was added
    /// or changed, a pod went away): unschedulable pods move to backoff, or
    /// straight to active when their backoff has passed.
    pub fn move_all(&self) {
        let mut inner = self.inner.lock().expect("never poisoned");
        let now = Instant::now();
        let mut to_active = Vec::new();
        for e in inner.entries.values_mut() {
            match e.place {
                Place::Unschedulable(since) => {
                    let until = since + backoff(e.attempts);
                    if until <= now {
                        e.place = Place::Active;
                        to_active.push(active_key(&e.pod));
                    } else {
                        e.place = Place::Backoff(until);
                    }
                }
                Place::InFlight => e.moved_while_in_flight = true,
                _ => {}
            }
        }
        inner.active.extend(to_active);
        drop(inner);
        self.notify.notify_one();
    }

    pub fn pending(&self) -> Pending {
        let inner = self.inner.lock().expect("never poisoned");
        let mut p = Pending::default();
        for e in inner.entries.values() {
            match e.place {
                Place::Active | Place::InFlight => p.active += 1,
                Place::Backoff(_) => p.backoff += 1,
                Place::Unschedulable(_) => p.unschedulable += 1,
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::pod;

    fn prioritized(name: &str, priority: i32) -> Arc<Pod> {
        let mut p = pod(name).build();
        p.spec.as_mut().unwrap().priority = Some(priority);
        Arc::new(p)
    }

    #[tokio::test]
    async fn pops_by_priority_then_age() {
        let q = Queue::default();
        q.add(prioritized("low", 0));
        q.add(prioritized("high", 100));
        q.add(prioritized("mid", 10));
        let names: Vec<String> = [q.pop().await, q.pop().await, q.pop().await]
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["high", "mid", "low"]);
    }

    #[tokio::test(start_paused = true)]
    async fn unschedulable_pods_wait_for_a_change_then_back_off() {
        let q = Queue::default();
        q.add(prioritized("p", 0));
        let p = q.pop().await;
        q.unschedulable("uid-p");
        assert_eq!(q.pending().unschedulable, 1);
        // Nothing changes: no pod is ready.
        assert!(
            tokio::time::timeout(Duration::from_secs(30), q.pop())
                .await
                .is_err()
        );
        // A node appears: after its backoff the pod is tried again.
        q.move_all();
        let again = tokio::time::timeout(Duration::from_secs(2), q.pop())
            .await
            .expect("retried after backoff");
        assert_eq!(again.metadata.uid, p.metadata.uid);
    }

    #[tokio::test(start_paused = true)]
    async fn status_updates_do_not_retry_an_unschedulable_pod() {
        let q = Queue::default();
        q.add(prioritized("p", 0));
        let p = q.pop().await;
        q.unschedulable("uid-p");
        let mut reported = (*p).clone();
        reported.status = Some(Default::default());
        reported.metadata.resource_version = Some("2".into());
        q.add(Arc::new(reported));
        assert_eq!(q.pending().unschedulable, 1);
        let mut relabelled = (*p).clone();
        relabelled.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
        q.add(Arc::new(relabelled));
        assert_eq!(q.pending().active, 1);
    }

    #[test]
    fn backoff_doubles_to_ten_seconds() {
        let secs: Vec<u64> = (1..=6).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
    }
}
