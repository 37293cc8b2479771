//! A work queue of keys as client-go's (`util/workqueue`): a key added
//! while queued is collapsed into one, a key being processed is never
//! handed to a second worker (an add meanwhile queues it again once it is
//! done), and retries follow a rate limiter (per-key exponential backoff,
//! by default from 5 ms to 1000 s, max'ed with an overall 10 qps bucket of
//! 100), with upstream's `workqueue_*` metrics labelled by the queue's
//! name.

use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

const BASE_DELAY: Duration = Duration::from_millis(5);
const MAX_DELAY: Duration = Duration::from_secs(1000);
const BUCKET_QPS: f64 = 10.0;
const BUCKET_BURST: f64 = 100.0;

/// The `workqueue_*` metrics, shared by every queue of a process.
#[derive(Clone)]
pub struct QueueMetrics {
    depth: IntGaugeVec,
    adds: IntCounterVec,
    queue_duration: HistogramVec,
    work_duration: HistogramVec,
    retries: IntCounterVec,
    unfinished: GaugeVec,
    longest_running: GaugeVec,
}

impl QueueMetrics {
    pub fn new(registry: &Registry) -> Self {
        let buckets = prometheus::exponential_buckets(1e-8, 10.0, 10).expect("valid buckets");
        let by_name = |name: &str, help: &str| Opts::new(name, help);
        let m = QueueMetrics {
            depth: IntGaugeVec::new(by_name("workqueue_depth", "Current depth of workqueue"), &["name"])
                .expect("valid metric"),
            adds: IntCounterVec::new(
                by_name("workqueue_adds_total", "Total number of adds handled by workqueue"),
                &["name"],
            )
            .expect("valid metric"),
            queue_duration: HistogramVec::new(
                HistogramOpts::new(
                    "workqueue_queue_duration_seconds",
                    "How long in seconds an item stays in workqueue before being requested.",
                )
                .buckets(buckets.clone()),
                &["name"],
            )
            .expect("valid metric"),
            work_duration: HistogramVec::new(
                HistogramOpts::new(
                    "workqueue_work_duration_seconds",
                    "How long in seconds processing an item from workqueue takes.",
                )
                .buckets(buckets),
                &["name"],
            )
            .expect("valid metric"),
            retries: IntCounterVec::new(
                by_name("workqueue_retries_total", "Total number of retries handled by workqueue"),
                &["name"],
            )
            .expect("valid metric"),
            unfinished: GaugeVec::new(
                by_name(
                    "workqueue_unfinished_work_seconds",
                    "How many seconds of work has been done that is in progress and hasn't been observed by work_duration.",
                ),
                &["name"],
            )
            .expect("valid metric"),
            longest_running: GaugeVec::new(
                by_name(
                    "workqueue_longest_running_processor_seconds",
                    "How many seconds has the longest running processor for workqueue been running.",
                ),
                &["name"],
            )
            .expect("valid metric"),
        };
        for c in [
            Box::new(m.depth.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.adds.clone()),
            Box::new(m.queue_duration.clone()),
            Box::new(m.work_duration.clone()),
            Box::new(m.retries.clone()),
            Box::new(m.unfinished.clone()),
            Box::new(m.longest_running.clone()),
        ] {
            registry.register(c).expect("registered once");
        }
        m
    }
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<String>,
    /// Keys waiting to be processed (in `queue`, or re-added while processing).
    dirty: HashSet<String>,
    /// Keys handed to a worker, and since when.
    processing: HashMap<String, Instant>,
    /// When each queued key was added, for the queue duration.
    added_at: HashMap<String, Instant>,
    failures: HashMap<String, u32>,
    /// The overall bucket: tokens and when it was last filled.
    tokens: f64,
    filled: Option<Instant>,
    shut_down: bool,
}

/// A named, rate-limited queue of keys.
pub struct WorkQueue {
    name: String,
    /// The per-key backoff: first retry delay and ceiling.
    base_delay: Duration,
    max_delay: Duration,
    inner: Mutex<Inner>,
    notify: Notify,
    metrics: QueueMetrics,
}

impl WorkQueue {
    pub fn new(name: &str, metrics: QueueMetrics) -> Arc<Self> {
        Self::with_backoff(name, metrics, BASE_DELAY, MAX_DELAY)
    }

    /// A queue whose per-key backoff runs from `base` to `max` (as
    /// upstream's ItemExponentialFailureRateLimiter for controllers that
    /// do not use the default one), still max'ed with the overall bucket.
    pub fn with_backoff(
        name: &str,
        metrics: QueueMetrics,
        base: Duration,
        max: Duration,
    ) -> Arc<Self> {
        Arc::new(WorkQueue {
            name: name.to_string(),
            base_delay: base,
            max_delay: max,
            inner: Mutex::new(Inner {
                tokens: BUCKET_BURST,
                ..Default::default()
            }),
            notify: Notify::new(),
            metrics,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("never poisoned")
    }

    /// Queues `key` unless it is already waiting.
    pub fn add(&self, key: &str) {
        let mut inner = self.lock();
        if inner.shut_down || inner.dirty.contains(key) {
            return;
        }
        self.metrics.adds.with_label_values(&[&self.name]).inc();
        inner.dirty.insert(key.to_string());
        if inner.processing.contains_key(key) {
            // Queued again when its worker is done.
            return;
        }
        inner.added_at.insert(key.to_string(), Instant::now());
        inner.queue.push_back(key.to_string());
        self.metrics
            .depth
            .with_label_values(&[&self.name])
            .set(inner.queue.len() as i64);
        drop(inner);
        self.notify.notify_one();
    }

    /// Queues `key` after `delay`.
    pub fn add_after(self: &Arc<Self>, key: &str, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let (me, key) = (self.clone(), key.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            me.add(&key);
        });
    }

    /// Queues `key` after its rate-limited delay (a retry).
    pub fn add_rate_limited(self: &Arc<Self>, key: &str) {
        self.metrics.retries.with_label_values(&[&self.name]).inc();
        let delay = self.when(key);
        self.add_after(key, delay);
    }

    /// The retry delay of `key`: its own exponential backoff or the
    /// overall bucket's wait, whichever is longer.
    fn when(&self, key: &str) -> Duration {
        let mut inner = self.lock();
        let failures = inner.failures.entry(key.to_string()).or_default();
        let exp = (*failures).min(30);
        *failures += 1;
        let per_item = self
            .base_delay
            .checked_mul(1u32 << exp.min(31))
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let now = Instant::now();
        let elapsed = inner.filled.map_or(0.0, |t| (now - t).as_secs_f64());
        inner.filled = Some(now);
        inner.tokens = (inner.tokens + elapsed * BUCKET_QPS).min(BUCKET_BURST) - 1.0;
        let bucket = if inner.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-inner.tokens / BUCKET_QPS)
        };
        per_item.max(bucket)
    }

    /// Stops tracking `key`'s failures (it succeeded).
    pub fn forget(&self, key: &str) {
        self.lock().failures.remove(key);
    }

    /// How many times `key` was retried since it last succeeded.
    pub fn requeues(&self, key: &str) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// The next key to process, waiting for one; None once shut down.
    pub async fn get(&self) -> Option<String> {
        loop {
            let notified = self.notify.notified();
            {
                let mut inner = self.lock();
                if let Some(key) = inner.queue.pop_front() {
                    inner.dirty.remove(&key);
                    let now = Instant::now();
                    if let Some(at) = inner.added_at.remove(&key) {
                        self.metrics
                            .queue_duration
                            .with_label_values(&[&self.name])
                            .observe((now - at).as_secs_f64());
                    }
                    inner.processing.insert(key.clone(), now);
                    self.metrics
                        .depth
                        .with_label_values(&[&self.name])
                        .set(inner.queue.len() as i64);
                    return Some(key);
                }
                if inner.shut_down {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// `key`'s worker is finished; if it was added meanwhile, it is queued again.
    pub fn done(&self, key: &str) {
        let mut inner = self.lock();
        if let Some(started) = inner.processing.remove(key) {
            self.metrics
                .work_duration
                .with_label_values(&[&self.name])
                .observe(started.elapsed().as_secs_f64());
        }
        if inner.dirty.contains(key) {
            inner.added_at.insert(key.to_string(), Instant::now());
            inner.queue.push_back(key.to_string());
            drop(inner);
            self.notify.notify_one();
        }
    }

    /// Publishes the in-progress gauges (called periodically).
    pub fn observe_in_progress(&self) {
        let inner = self.lock();
        let now = Instant::now();
        let running: Vec<f64> = inner
            .processing
            .values()
            .map(|t| (now - *t).as_secs_f64())
            .collect();
        let labels = [self.name.as_str()];
        self.metrics
            .unfinished
            .with_label_values(&labels)
            .set(running.iter().sum());
        self.metrics
            .longest_running
            .with_label_values(&labels)
            .set(running.iter().copied().fold(0.0, f64::max));
    }

    /// Wakes every waiting worker with None.
    pub fn shut_down(&self) {
        self.lock().shut_down = true;
        self.notify.notify_waiters();
    }

    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> Arc<WorkQueue> {
        WorkQueue::new("test", QueueMetrics::new(&Registry::new()))
    }

    #[tokio::test]
    async fn duplicates_collapse_and_a_key_runs_once_at_a_time() {
        let q = queue();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let a = q.get().await.unwrap();
        assert_eq!(a, "a");
        // Added while processing: not handed out again until done.
        q.add("a");
        assert_eq!(q.get().await.unwrap(), "b");
        assert!(q.is_empty());
        q.done("a");
        assert_eq!(q.get().await.unwrap(), "a");
    }

    #[tokio::test(start_paused = true)]
    async fn retries_back_off_per_key_and_forget_resets() {
        let q = queue();
        let delays: Vec<Duration> = (0..4).map(|_| q.when("k")).collect();
        assert_eq!(delays, [5, 10, 20, 40].map(Duration::from_millis));
        assert_eq!(q.requeues("k"), 4);
        q.forget("k");
        assert_eq!(q.when("k"), Duration::from_millis(5));
        // The overall bucket: past 100 quick retries, 10 per second.
        for i in 0..200 {
            q.when(&format!("other-{i}"));
        }
        assert!(q.when("late") >= Duration::from_secs(9));
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_may_back_off_on_its_own_scale() {
        let q = WorkQueue::with_backoff(
            "slow",
            QueueMetrics::new(&Registry::new()),
            Duration::from_secs(5),
            Duration::from_secs(300),
        );
        let delays: Vec<Duration> = (0..8).map(|_| q.when("k")).collect();
        assert_eq!(
            delays,
            [5, 10, 20, 40, 80, 160, 300, 300].map(Duration::from_secs)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_adds_arrive_later() {
        let q = queue();
        q.add_rate_limited("k");
        assert!(q.is_empty());
        tokio::time::sleep(Duration::from_millis(6)).await;
        assert_eq!(q.get().await.unwrap(), "k");
    }

    #[tokio::test]
    async fn shut_down_wakes_workers() {
        let q = queue();
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.get().await })
        };
        tokio::task::yield_now().await;
        q.shut_down();
        assert_eq!(waiter.await.unwrap(), None);
    }
}
