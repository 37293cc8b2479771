//! The scheduling queue (upstream's `PriorityQueue`): pods wait in
//! `active` ordered by PrioritySort, in `backoff` after
//! a failed attempt (1 s doubling to 10 s), or in `unschedulable` until the
//! cluster changes in a way that may let them fit.

use k8s_openapi::api::core::v1::Pod;
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
    /// Held back by a PreEnqueue plugin (scheduling gates).
    Gated,
}

struct Entry {
    pod: Arc<Pod>,
    attempts: u32,
    place: Place,
    /// A cluster change arrived while the pod was in flight.
    moved_while_in_flight: bool,
    /// The plugins that refused it last time, whose queueing hints decide
    /// which changes are worth a retry.
    rejectors: Rejectors,
}

pub type Rejectors = BTreeSet<&'static str>;

type ActiveKey = crate::plugins::priority_sort::SortKey;

/// Entries by uid, plus an ordered index per place, so that popping,
/// backing off and counting never scan every pending pod.
#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    active: BTreeSet<ActiveKey>,
    /// (ready at, uid)
    backoff: BTreeSet<(Instant, String)>,
    /// (unschedulable since, uid)
    unschedulable: BTreeSet<(Instant, String)>,
    in_flight: usize,
    gated: usize,
}

#[derive(Default)]
pub struct Queue {
    inner: Mutex<Inner>,
    notify: Notify,
}

fn uid(pod: &Pod) -> String {
    crate::cache::uid(pod).to_string()
}

fn active_key(pod: &Pod) -> ActiveKey {
    crate::plugins::priority_sort::key(pod)
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
    pub gated: usize,
}

impl Inner {
    /// Takes `id` out of the index of its current place.
    fn unindex(&mut self, id: &str) {
        let Some(e) = self.entries.get(id) else {
            return;
        };
        match e.place {
            Place::Active => {
                self.active.remove(&active_key(&e.pod));
            }
            Place::Backoff(at) => {
                self.backoff.remove(&(at, id.to_string()));
            }
            Place::Unschedulable(since) => {
                self.unschedulable.remove(&(since, id.to_string()));
            }
            Place::InFlight => self.in_flight -= 1,
            Place::Gated => self.gated -= 1,
        }
    }

    /// Moves `id` to `place`, keeping the indexes right.
    fn put(&mut self, id: &str, place: Place) {
        self.unindex(id);
        self.put_fresh(id, place);
    }

    /// Indexes `id` at `place`; it is in no index now.
    fn put_fresh(&mut self, id: &str, place: Place) {
        let Some(e) = self.entries.get_mut(id) else {
            return;
        };
        e.place = place;
        match place {
            Place::Active => {
                let key = active_key(&e.pod);
                self.active.insert(key);
            }
            Place::Backoff(at) => {
                self.backoff.insert((at, id.to_string()));
            }
            Place::Unschedulable(since) => {
                self.unschedulable.insert((since, id.to_string()));
            }
            Place::InFlight => self.in_flight += 1,
            Place::Gated => self.gated += 1,
        }
    }

    /// An entry for a pod that is being worked on but was not queued.
    fn insert_in_flight(&mut self, pod: Arc<Pod>) {
        let id = uid(&pod);
        self.entries.insert(
            id.clone(),
            Entry {
                pod,
                attempts: 0,
                place: Place::InFlight,
                moved_while_in_flight: false,
                rejectors: Rejectors::new(),
            },
        );
        self.put_fresh(&id, Place::InFlight);
    }

    /// Backoffs that have passed and unschedulable pods waiting too long go
    /// to active; returns when the next one will be due.
    fn flush(&mut self, now: Instant) -> Option<Instant> {
        while self.backoff.first().is_some_and(|(at, _)| *at <= now) {
            let (_, id) = self.backoff.pop_first().expect("just seen");
            self.put_fresh(&id, Place::Active);
        }
        while self
            .unschedulable
            .first()
            .is_some_and(|(since, _)| now - *since >= MAX_UNSCHEDULABLE)
        {
            let (_, id) = self.unschedulable.pop_first().expect("just seen");
            self.put_fresh(&id, Place::Active);
        }
        let next_backoff = self.backoff.first().map(|(at, _)| *at);
        let next_flush = self
            .unschedulable
            .first()
            .map(|(s, _)| *s + MAX_UNSCHEDULABLE);
        next_backoff.into_iter().chain(next_flush).min()
    }
}

impl Queue {
    /// A pending pod was added or changed; `gated` when a PreEnqueue
    /// plugin holds it back.
    pub fn add(&self, pod: Arc<Pod>, gated: bool) {
        let mut inner = self.inner.lock().expect("never poisoned");
        let id = uid(&pod);
        match inner.entries.get(&id).map(|e| (e.place, e.pod.clone())) {
            Some((place, old)) => {
                // Upstream's isPodUpdated: status, resourceVersion and the
                // like change with every report of the failure itself.
                let relevant = old.spec != pod.spec
                    || old.metadata.labels != pod.metadata.labels
                    || old.metadata.annotations != pod.metadata.annotations;
                // Re-indexed under the new object (priority may change).
                inner.unindex(&id);
                inner.entries.get_mut(&id).expect("present").pod = pod;
                let place = match (place, gated) {
                    (Place::InFlight, _) => Place::InFlight,
                    (_, true) => Place::Gated,
                    (Place::Gated, false) => Place::Active,
                    // An update may make an unschedulable pod fit: retry it.
                    (Place::Unschedulable(_), false) if relevant => Place::Active,
                    (p, false) => p,
                };
                inner.put_fresh(&id, place);
            }
            None => {
                let place = if gated { Place::Gated } else { Place::Active };
                inner.entries.insert(
                    id.clone(),
                    Entry {
                        pod,
                        attempts: 0,
                        place,
                        moved_while_in_flight: false,
                        rejectors: Rejectors::new(),
                    },
                );
                inner.put_fresh(&id, place);
            }
        }
        drop(inner);
        self.notify.notify_one();
    }

    /// The pod was bound, deleted, or is no longer ours.
    pub fn remove(&self, uid: &str) {
        let mut inner = self.inner.lock().expect("never poisoned");
        inner.unindex(uid);
        inner.entries.remove(uid);
    }

    /// The next pod to schedule, waiting for one if none is ready.
    pub async fn pop(&self) -> Arc<Pod> {
        loop {
            let wake = {
                let mut inner = self.inner.lock().expect("never poisoned");
                let wake = inner.flush(Instant::now());
                if let Some(key) = inner.active.first().cloned() {
                    inner.put(&key.2, Place::InFlight);
                    let e = inner
                        .entries
                        .get_mut(&key.2)
                        .expect("active pods have entries");
                    e.moved_while_in_flight = false;
                    return e.pod.clone();
                }
                wake
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

    /// No node fits: wait for a cluster change that one of `rejectors`
    /// says may help (or back off if some change came during the attempt).
    pub fn unschedulable(&self, pod: &Arc<Pod>, rejectors: Rejectors) {
        let mut inner = self.inner.lock().expect("never poisoned");
        let id = uid(pod);
        let uid = id.as_str();
        if !inner.entries.contains_key(uid) {
            // Dropped when it was popped for binding; a later step refused it.
            inner.insert_in_flight(pod.clone());
        }
        let e = inner.entries.get_mut(uid).expect("present");
        e.attempts += 1;
        e.rejectors = rejectors;
        let now = Instant::now();
        let place = if e.moved_while_in_flight {
            Place::Backoff(now + backoff(e.attempts))
        } else {
            Place::Unschedulable(now)
        };
        inner.put(uid, place);
        drop(inner);
        self.notify.notify_one();
    }

    /// The attempt failed (an error, a failed binding): retry after backoff.
    pub fn back_off(&self, pod: Arc<Pod>) {
        let mut inner = self.inner.lock().expect("never poisoned");
        let id = uid(&pod);
        if !inner.entries.contains_key(&id) {
            inner.insert_in_flight(pod);
        }
        let e = inner.entries.get_mut(&id).expect("present");
        e.attempts += 1;
        let at = Instant::now() + backoff(e.attempts);
        inner.put(&id, Place::Backoff(at));
        drop(inner);
        self.notify.notify_one();
    }

    /// Something changed that may let any waiting pod fit.
    pub fn move_all(&self) {
        self.move_if(|_, _| true);
    }

    /// Something changed: the unschedulable pods for which `worth` (the
    /// queueing hints of the plugins that refused them) says it may help
    /// move to backoff, or straight to active when their backoff has passed.
    pub fn move_if(&self, worth: impl Fn(&Pod, &Rejectors) -> bool) {
        let mut inner = self.inner.lock().expect("never poisoned");
        let now = Instant::now();
        let moving: Vec<(Instant, String)> = inner
            .unschedulable
            .iter()
            .filter(|(_, id)| {
                inner
                    .entries
                    .get(id)
                    .is_none_or(|e| worth(&e.pod, &e.rejectors))
            })
            .cloned()
            .collect();
        for (since, id) in moving {
            inner.unschedulable.remove(&(since, id.clone()));
            let attempts = inner.entries.get(&id).map_or(0, |e| e.attempts);
            let until = since + backoff(attempts);
            // Already out of the unschedulable index: set the place directly.
            let place = if until <= now {
                Place::Active
            } else {
                Place::Backoff(until)
            };
            inner.put_fresh(&id, place);
        }
        if inner.in_flight > 0 {
            for e in inner.entries.values_mut() {
                if e.place == Place::InFlight {
                    e.moved_while_in_flight = true;
                }
            }
        }
        drop(inner);
        self.notify.notify_one();
    }

    pub fn pending(&self) -> Pending {
        let inner = self.inner.lock().expect("never poisoned");
        Pending {
            active: inner.active.len() + inner.in_flight,
            backoff: inner.backoff.len(),
            unschedulable: inner.unschedulable.len(),
            gated: inner.gated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::pod;

    impl Queue {
        fn add_ready(&self, pod: Arc<Pod>) {
            self.add(pod, false);
        }
    }

    fn prioritized(name: &str, priority: i32) -> Arc<Pod> {
        let mut p = pod(name).build();
        p.spec.as_mut().unwrap().priority = Some(priority);
        Arc::new(p)
    }

    #[tokio::test]
    async fn pops_by_priority_then_age() {
        let q = Queue::default();
        q.add_ready(prioritized("low", 0));
        q.add_ready(prioritized("high", 100));
        q.add_ready(prioritized("mid", 10));
        let names: Vec<String> = [q.pop().await, q.pop().await, q.pop().await]
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["high", "mid", "low"]);
    }

    #[tokio::test(start_paused = true)]
    async fn unschedulable_pods_wait_for_a_change_then_back_off() {
        let q = Queue::default();
        q.add_ready(prioritized("p", 0));
        let p = q.pop().await;
        q.unschedulable(&p, Rejectors::new());
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
        q.add_ready(prioritized("p", 0));
        let p = q.pop().await;
        q.unschedulable(&p, Rejectors::new());
        let mut reported = (*p).clone();
        reported.status = Some(Default::default());
        reported.metadata.resource_version = Some("2".into());
        q.add(Arc::new(reported), false);
        assert_eq!(q.pending().unschedulable, 1);
        let mut relabelled = (*p).clone();
        relabelled.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
        q.add(Arc::new(relabelled), false);
        assert_eq!(q.pending().active, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn only_changes_a_rejector_cares_about_retry_a_pod() {
        let q = Queue::default();
        q.add_ready(prioritized("p", 0));
        let p = q.pop().await;
        q.unschedulable(&p, Rejectors::from(["NodeResourcesFit"]));
        q.move_if(|_, r| r.contains("TaintToleration"));
        assert_eq!(q.pending().unschedulable, 1);
        q.move_if(|_, r| r.contains("NodeResourcesFit"));
        assert_eq!(q.pending().unschedulable, 0);
        // Refused by no plugin (no nodes at all): the caller decides too.
        let p = q.pop().await;
        q.unschedulable(&p, Rejectors::new());
        q.move_if(|_, r| !r.is_empty());
        assert_eq!(q.pending().unschedulable, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn gated_pods_wait_until_their_gates_are_gone() {
        let q = Queue::default();
        let p = prioritized("p", 0);
        q.add(p.clone(), true);
        assert_eq!(q.pending().gated, 1);
        assert!(
            tokio::time::timeout(Duration::from_secs(30), q.pop())
                .await
                .is_err()
        );
        q.add(p, false);
        assert_eq!(
            q.pending(),
            Pending {
                active: 1,
                ..Default::default()
            }
        );
    }

    #[test]
    fn backoff_doubles_to_ten_seconds() {
        let secs: Vec<u64> = (1..=6).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
    }
}
