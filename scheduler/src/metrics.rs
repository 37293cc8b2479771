//! The scheduler's metrics, with upstream's names and labels.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

pub struct Metrics {
    pub registry: Registry,
    /// `result`: scheduled, unschedulable, error.
    pub attempts: IntCounterVec,
    pub attempt_duration: HistogramVec,
    /// Filter and score only, without binding.
    pub algorithm_duration: Histogram,
    /// `queue`: active, backoff, unschedulable.
    pub pending: IntGaugeVec,
    pub preemption_attempts: IntCounter,
    pub preemption_victims: Histogram,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let attempts = IntCounterVec::new(
            Opts::new(
                "scheduler_schedule_attempts_total",
                "Number of attempts to schedule pods, by the result.",
            ),
            &["result", "profile"],
        )
        .expect("valid metric");
        let attempt_duration = HistogramVec::new(
            HistogramOpts::new(
                "scheduler_scheduling_attempt_duration_seconds",
                "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
            )
            .buckets(prometheus::exponential_buckets(0.001, 2.0, 15).expect("valid buckets")),
            &["result", "profile"],
        )
        .expect("valid metric");
        let algorithm_duration = Histogram::with_opts(
            HistogramOpts::new(
                "scheduler_scheduling_algorithm_duration_seconds",
                "Scheduling algorithm latency in seconds",
            )
            .buckets(prometheus::exponential_buckets(0.001, 2.0, 15).expect("valid buckets")),
        )
        .expect("valid metric");
        let pending = IntGaugeVec::new(
            Opts::new(
                "scheduler_pending_pods",
                "Number of pending pods, by the queue type.",
            ),
            &["queue"],
        )
        .expect("valid metric");
        let preemption_attempts = IntCounter::new(
            "scheduler_preemption_attempts_total",
            "Total preemption attempts in the cluster till now",
        )
        .expect("valid metric");
        let preemption_victims = Histogram::with_opts(
            HistogramOpts::new(
                "scheduler_preemption_victims",
                "Number of selected preemption victims",
            )
            .buckets(prometheus::exponential_buckets(1.0, 2.0, 7).expect("valid buckets")),
        )
        .expect("valid metric");
        for m in [
            Box::new(attempts.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(attempt_duration.clone()),
            Box::new(algorithm_duration.clone()),
            Box::new(pending.clone()),
            Box::new(preemption_attempts.clone()),
            Box::new(preemption_victims.clone()),
        ] {
            registry.register(m).expect("registered once");
        }
        Metrics {
            registry,
            attempts,
            attempt_duration,
            algorithm_duration,
            pending,
            preemption_attempts,
            preemption_victims,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
