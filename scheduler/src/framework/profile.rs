//! A profile: the plugins enabled at each extension point, with score
//! weights, and the scheduling algorithm over them (upstream's
//! `schedule_one.go`: filter every node, score the feasible ones, pick the
//! best).

use super::{
    BindPlugin, ClusterEvent, Code, FilterPlugin, NodeInfo, Nomination, Permit, PermitPlugin,
    PodInfo, PostBindPlugin, PostFilterPlugin, PreBindPlugin, PreEnqueuePlugin, PreFilterPlugin,
    PreScorePlugin, ReservePlugin, ScorePlugin, Status, WaitingPods, priority,
};
use k8s_openapi::api::core::v1::Pod;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The plugins of each extension point, in order.
pub struct Profile {
    /// The `schedulerName` pods ask for.
    pub scheduler_name: String,
    pub pre_enqueues: Vec<Box<dyn PreEnqueuePlugin>>,
    pub pre_filters: Vec<Box<dyn PreFilterPlugin>>,
    pub filters: Vec<Box<dyn FilterPlugin>>,
    pub post_filters: Vec<Box<dyn PostFilterPlugin>>,
    pub pre_scores: Vec<Box<dyn PreScorePlugin>>,
    pub scores: Vec<(Box<dyn ScorePlugin>, i64)>,
    pub reserves: Vec<Box<dyn ReservePlugin>>,
    pub permits: Vec<Box<dyn PermitPlugin>>,
    pub pre_binds: Vec<Box<dyn PreBindPlugin>>,
    pub binds: Vec<Box<dyn BindPlugin>>,
    pub post_binds: Vec<Box<dyn PostBindPlugin>>,
    /// Pods held by Permit plugins.
    pub waiting: Arc<WaitingPods>,
    /// Where the next cycle starts looking, so that sampling spreads over
    /// all nodes (upstream's nextStartNodeIndex).
    pub next_start: AtomicUsize,
}

/// How many feasible nodes to find before scoring (upstream's adaptive
/// percentageOfNodesToScore: 50% less 1% per 125 nodes, at least 5%, and
/// never fewer than 100 nodes).
pub fn nodes_to_find(all: usize) -> usize {
    const MIN: usize = 100;
    if all <= MIN {
        return all;
    }
    let percent = (50 - (all / 125) as i64).max(5) as usize;
    (all * percent / 100).max(MIN)
}

/// Why no node fits, per node (upstream's `FitError` and its Diagnosis).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError {
    pub nodes: usize,
    /// Node name to the status of the plugin that refused it.
    pub statuses: BTreeMap<String, Status>,
    /// A PreFilter refused every node at once.
    pub pre_filter: Option<Status>,
    /// What the PostFilter plugins (preemption) said.
    pub post_filter_msg: Option<String>,
}

impl FitError {
    /// No refusals yet, out of `nodes`.
    pub fn new(nodes: usize) -> Self {
        FitError {
            nodes,
            statuses: BTreeMap::new(),
            pre_filter: None,
            post_filter_msg: None,
        }
    }

    /// Upstream's FailedScheduling message: `0/3 nodes are available: 1
    /// Insufficient cpu, 2 node(s) had untolerated taint {k: v}.`, then what
    /// preemption said.
    pub fn message(&self) -> String {
        if self.nodes == 0 {
            return "no nodes available to schedule pods".into();
        }
        let mut msg = format!("0/{} nodes are available:", self.nodes);
        match &self.pre_filter {
            Some(status) => msg += &format!(" {}.", status.message()),
            None => {
                let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                for status in self.statuses.values() {
                    for r in &status.reasons {
                        *counts.entry(r.as_str()).or_default() += 1;
                    }
                }
                let mut parts: Vec<String> =
                    counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
                parts.sort();
                if !parts.is_empty() {
                    msg += &format!(" {}.", parts.join(", "));
                }
            }
        }
        if let Some(post) = &self.post_filter_msg {
            msg += &format!(" {post}.");
        }
        msg
    }

    /// The statuses per node, the PreFilter's standing for every node.
    pub fn status_of(&self, node: &str) -> Option<&Status> {
        self.pre_filter.as_ref().or_else(|| self.statuses.get(node))
    }

    /// The plugins that refused some node, whose queueing hints decide
    /// when the pod is worth another try.
    pub fn plugins(&self) -> BTreeSet<&'static str> {
        self.pre_filter
            .iter()
            .chain(self.statuses.values())
            .map(|s| s.plugin)
            .filter(|p| !p.is_empty())
            .collect()
    }
}

fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

impl Profile {
    /// A profile with no plugins, for the registry to fill.
    pub fn empty(scheduler_name: &str) -> Self {
        Profile {
            scheduler_name: scheduler_name.to_string(),
            pre_enqueues: Vec::new(),
            pre_filters: Vec::new(),
            filters: Vec::new(),
            post_filters: Vec::new(),
            pre_scores: Vec::new(),
            scores: Vec::new(),
            reserves: Vec::new(),
            permits: Vec::new(),
            pre_binds: Vec::new(),
            binds: Vec::new(),
            post_binds: Vec::new(),
            waiting: Arc::default(),
            next_start: AtomicUsize::new(0),
        }
    }

    /// Whether every PreEnqueue plugin lets `pod` into the active queue.
    pub fn admits(&self, pod: &Pod) -> bool {
        self.pre_enqueues
            .iter()
            .all(|p| p.pre_enqueue(pod).is_success())
    }

    /// Every PreFilter, or the first refusal.
    pub fn run_pre_filters(&self, pod: &mut PodInfo, nodes: &[&NodeInfo]) -> Result<(), Status> {
        for p in &self.pre_filters {
            let mut status = p.pre_filter(pod, nodes);
            if status.code == Code::Skip {
                // Nothing for its Filter to check in this cycle.
                pod.skip_filters.push(p.name());
            } else if !status.is_success() {
                status.plugin = p.name();
                return Err(status);
            }
        }
        Ok(())
    }

    /// The first refusal of `node` for `pod`, or success.
    pub fn run_filters(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        for f in &self.filters {
            if pod.skip_filters.contains(&f.name()) {
                continue;
            }
            let mut status = f.filter(pod, node);
            if !status.is_success() {
                status.plugin = f.name();
                return status;
            }
        }
        Status::success()
    }

    /// Filters `node`, first with the pods nominated to it that are at
    /// least as important as `pod` counted as placed, then without them
    /// (upstream's RunFilterPluginsWithNominatedPods: a nominated pod's
    /// room is kept, and affinity to it is not taken for granted).
    pub fn filter_node(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        let prio = pod.priority();
        let mut nominated = node
            .nominated
            .iter()
            .filter(|p| uid(p) != uid(&pod.pod) && priority(p) >= prio)
            .peekable();
        if nominated.peek().is_some() {
            let (mut p, mut n) = (pod.clone(), node.clone());
            for other in nominated {
                self.add_pod(&mut p, &mut n, other.clone());
            }
            let status = self.run_filters(&p, &n);
            if !status.is_success() {
                return status;
            }
        }
        self.run_filters(pod, node)
    }

    /// Places `other` on `node` in a what-if, keeping PreFilter state right.
    pub fn add_pod(&self, pod: &mut PodInfo, node: &mut NodeInfo, other: Arc<Pod>) {
        node.add_pod(other.clone());
        for p in &self.pre_filters {
            p.add_pod(pod, &other, node);
        }
    }

    /// Takes `other` off `node` in a what-if, keeping PreFilter state right.
    pub fn remove_pod(&self, pod: &mut PodInfo, node: &mut NodeInfo, other: &Pod) {
        for p in &self.pre_filters {
            p.remove_pod(pod, other, node);
        }
        node.remove_pod(uid(other));
    }

    /// The node `pod` should go to, or why none fits. The node preemption
    /// nominated is tried first; otherwise filters run from a rotating
    /// start until enough feasible nodes are found (all of them when none
    /// fits), then the feasible ones are scored.
    pub fn find_node(&self, pod: &mut PodInfo, nodes: &[&NodeInfo]) -> Result<String, FitError> {
        if let Err(status) = self.run_pre_filters(pod, nodes) {
            let mut fit = FitError::new(nodes.len());
            fit.pre_filter = Some(status);
            return Err(fit);
        }
        let nominated = pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref());
        if let Some(n) = nominated.and_then(|name| nodes.iter().find(|n| n.name() == name))
            && self.filter_node(pod, n).is_success()
        {
            return Ok(n.name().to_string());
        }
        let want = nodes_to_find(nodes.len());
        let start = match nodes.len() {
            0 => 0,
            n => self.next_start.load(Ordering::Relaxed) % n,
        };
        let mut feasible: Vec<&NodeInfo> = Vec::new();
        let mut fit = FitError::new(nodes.len());
        let mut visited = 0;
        for &n in nodes[start..].iter().chain(&nodes[..start]) {
            if feasible.len() >= want {
                break;
            }
            visited += 1;
            let status = self.filter_node(pod, n);
            if status.is_success() {
                feasible.push(n);
            } else {
                fit.statuses.insert(n.name().to_string(), status);
            }
        }
        if !nodes.is_empty() {
            self.next_start
                .store((start + visited) % nodes.len(), Ordering::Relaxed);
        }
        if feasible.is_empty() {
            return Err(fit);
        }
        if feasible.len() == 1 || self.scores.is_empty() {
            return Ok(feasible[0].name().to_string());
        }
        let totals = self.score(pod, &feasible, nodes);
        // Highest total; ties go to the first node in the given order.
        let best = (0..feasible.len())
            .max_by_key(|&i| (totals[i], std::cmp::Reverse(i)))
            .expect("feasible is not empty");
        Ok(feasible[best].name().to_string())
    }

    /// The weighted total score of each feasible node.
    pub fn score(&self, pod: &mut PodInfo, feasible: &[&NodeInfo], all: &[&NodeInfo]) -> Vec<i64> {
        for p in &self.pre_scores {
            if p.pre_score(pod, feasible, all).code == Code::Skip {
                pod.skip_scores.push(p.name());
            }
        }
        let pod: &PodInfo = pod;
        let mut totals = vec![0i64; feasible.len()];
        for (plugin, weight) in &self.scores {
            if pod.skip_scores.contains(&plugin.name()) {
                continue;
            }
            let mut scores: Vec<i64> = feasible.iter().map(|n| plugin.score(pod, n)).collect();
            plugin.normalize(pod, feasible, &mut scores);
            for (t, s) in totals.iter_mut().zip(scores) {
                *t += s * weight;
            }
        }
        totals
    }

    /// Asks the PostFilter plugins (preemption) to make room; the first
    /// nomination wins. Adds what they said to `fit`'s message.
    pub fn run_post_filters(
        &self,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        fit: &mut FitError,
    ) -> Option<Nomination> {
        let mut said = Vec::new();
        for p in &self.post_filters {
            let (nomination, status) = p.post_filter(self, pod, nodes, fit);
            if !status.reasons.is_empty() {
                said.push(status.message());
            }
            if nomination.is_some() || status.code == Code::Error {
                fit.post_filter_msg = (!said.is_empty()).then(|| said.join(" "));
                return nomination;
            }
        }
        fit.post_filter_msg = (!said.is_empty()).then(|| said.join(" "));
        None
    }

    /// Whether a pod `plugin` refused is worth another try after `event`.
    pub fn hint(&self, plugin: &str, pod: &Pod, event: &ClusterEvent) -> bool {
        if let Some(f) = self.filters.iter().find(|f| f.name() == plugin) {
            return f.hint(pod, event);
        }
        if let Some(f) = self.pre_filters.iter().find(|f| f.name() == plugin) {
            return f.hint(pod, event);
        }
        true
    }

    /// Every Reserve plugin in order, up to the first failure (the caller
    /// then unreserves).
    pub fn reserve(&self, pod: &PodInfo, node: &str) -> Status {
        for r in &self.reserves {
            let mut status = r.reserve(pod, node);
            if !status.is_success() {
                status.plugin = r.name();
                return status;
            }
        }
        Status::success()
    }

    /// Undoes every Reserve plugin, in reverse order, as upstream: so
    /// Unreserve must cope with a Reserve that never ran.
    pub fn unreserve(&self, pod: &PodInfo, node: &str) {
        for r in self.reserves.iter().rev() {
            r.unreserve(pod, node);
        }
    }

    /// Every Permit plugin: the first rejection, else the shortest wait
    /// asked for, else allowed.
    pub fn permit(&self, pod: &PodInfo, node: &str) -> Permit {
        let mut wait: Option<Duration> = None;
        for p in &self.permits {
            match p.permit(pod, node) {
                Permit::Allow => {}
                Permit::Reject(mut status) => {
                    status.plugin = p.name();
                    return Permit::Reject(status);
                }
                Permit::Wait(d) => wait = Some(wait.map_or(d, |w| w.min(d))),
            }
        }
        wait.map_or(Permit::Allow, Permit::Wait)
    }

    /// Waits for a held pod to be allowed, up to `timeout`.
    pub async fn wait_on_permit(&self, pod: &Pod, timeout: Duration) -> Result<(), Status> {
        let verdict = self.waiting.hold(uid(pod));
        match tokio::time::timeout(timeout, verdict).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(message))) => Err(Status::unschedulable(message)),
            Ok(Err(_)) => Err(Status::error("the permit wait was dropped")),
            Err(_) => {
                self.waiting.release(uid(pod));
                Err(Status::unschedulable(format!(
                    "rejected due to timeout after waiting {timeout:?} at plugin Permit"
                )))
            }
        }
    }

    /// PreBind then Bind (the first binder that does not skip), as the
    /// binding cycle runs them.
    pub async fn bind(&self, client: &kube::Client, pod: &Pod, node: &str) -> Status {
        for p in &self.pre_binds {
            let mut status = p.pre_bind(client, pod, node).await;
            if !status.is_success() {
                status.plugin = p.name();
                return status;
            }
        }
        for b in &self.binds {
            let mut status = b.bind(client, pod, node).await;
            if status.code != Code::Skip {
                status.plugin = b.name();
                return status;
            }
        }
        Status::error("no bind plugin bound the pod")
    }

    pub fn post_bind(&self, pod: &Pod, node: &str) {
        for p in &self.post_binds {
            p.post_bind(pod, node);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{node, pod};
    use crate::plugins::test_util::info;
    use std::collections::BTreeSet;

    fn profile() -> Profile {
        Profile::default_plugins("default-scheduler")
    }

    #[test]
    fn samples_nodes_as_upstream() {
        let cases = [
            (50, 50),
            (100, 100),
            (1000, 420),
            (5000, 500),
            (10_000, 500),
        ];
        for (all, want) in cases {
            assert_eq!(nodes_to_find(all), want, "{all} nodes");
        }
    }

    #[test]
    fn picks_the_least_allocated_feasible_node() {
        let nodes = [
            info(
                node("busy").build(),
                vec![pod("x").container("3", "1Gi").build()],
            ),
            info(
                node("tainted").taint("k", "v", "NoSchedule").build(),
                vec![],
            ),
            info(node("free").build(), vec![]),
        ];
        let mut p = PodInfo::from(&pod("p").container("500m", "100Mi").build());
        let nodes: Vec<&NodeInfo> = nodes.iter().collect();
        assert_eq!(profile().find_node(&mut p, &nodes).unwrap(), "free");
    }

    #[test]
    fn says_why_nothing_fits_as_upstream() {
        let nodes = [
            info(
                node("a").build(),
                vec![pod("x").container("4", "1Gi").build()],
            ),
            info(node("b").taint("k", "v", "NoSchedule").build(), vec![]),
            info(node("c").taint("k", "v", "NoSchedule").build(), vec![]),
        ];
        let nodes: Vec<&NodeInfo> = nodes.iter().collect();
        let err = profile()
            .find_node(
                &mut PodInfo::from(&pod("p").container("1", "1Mi").build()),
                &nodes,
            )
            .unwrap_err();
        assert_eq!(
            err.message(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {k: v}."
        );
        assert_eq!(err.status_of("a").unwrap().code, Code::Unschedulable);
        assert_eq!(
            err.plugins(),
            BTreeSet::from(["NodeResourcesFit", "TaintToleration"])
        );
        let none = profile()
            .find_node(&mut PodInfo::from(&pod("p").build()), &[])
            .unwrap_err();
        assert_eq!(none.message(), "no nodes available to schedule pods");
    }

    /// Records the calls of the extension points it sits at.
    struct Recorder {
        name: &'static str,
        log: Arc<std::sync::Mutex<Vec<String>>>,
        refuse: bool,
        permit: Permit,
    }

    impl super::super::Plugin for Recorder {
        fn name(&self) -> &'static str {
            self.name
        }
    }

    impl ReservePlugin for Recorder {
        fn reserve(&self, _pod: &PodInfo, node: &str) -> Status {
            self.log
                .lock()
                .unwrap()
                .push(format!("reserve {} {node}", self.name));
            if self.refuse {
                Status::unschedulable("no room")
            } else {
                Status::success()
            }
        }
        fn unreserve(&self, _pod: &PodInfo, node: &str) {
            self.log
                .lock()
                .unwrap()
                .push(format!("unreserve {} {node}", self.name));
        }
    }

    impl PermitPlugin for Recorder {
        fn permit(&self, _pod: &PodInfo, _node: &str) -> Permit {
            self.permit.clone()
        }
    }

    fn recorder(
        name: &'static str,
        log: &Arc<std::sync::Mutex<Vec<String>>>,
        refuse: bool,
        permit: Permit,
    ) -> Box<Recorder> {
        Box::new(Recorder {
            name,
            log: log.clone(),
            refuse,
            permit,
        })
    }

    #[test]
    fn a_failed_reserve_stops_and_unreserve_runs_in_reverse() {
        let log = Arc::default();
        let mut p = Profile::empty("s");
        p.reserves.push(recorder("a", &log, false, Permit::Allow));
        p.reserves.push(recorder("b", &log, true, Permit::Allow));
        p.reserves.push(recorder("c", &log, false, Permit::Allow));
        let status = p.reserve(&PodInfo::from(&pod("p").build()), "n1");
        assert_eq!((status.code, status.plugin), (Code::Unschedulable, "b"));
        p.unreserve(&PodInfo::from(&pod("p").build()), "n1");
        assert_eq!(
            *log.lock().unwrap(),
            [
                "reserve a n1",
                "reserve b n1",
                "unreserve c n1",
                "unreserve b n1",
                "unreserve a n1"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn permit_rejects_waits_and_is_allowed() {
        let log = Arc::default();
        let p = pod("p").build();
        let info = PodInfo::from(&p);
        let mut profile = Profile::empty("s");
        profile.permits.push(recorder(
            "slow",
            &log,
            false,
            Permit::Wait(Duration::from_secs(30)),
        ));
        profile.permits.push(recorder(
            "quick",
            &log,
            false,
            Permit::Wait(Duration::from_secs(5)),
        ));
        assert_eq!(
            profile.permit(&info, "n"),
            Permit::Wait(Duration::from_secs(5))
        );
        // Nobody allows it: rejected when the shortest wait is over.
        let timed_out = profile.wait_on_permit(&p, Duration::from_secs(5)).await;
        assert_eq!(timed_out.unwrap_err().code, Code::Unschedulable);
        assert!(profile.waiting.held().is_empty());
        // Allowed while it waits: it goes on to bind.
        let profile = Arc::new(profile);
        let waiter = {
            let (profile, p) = (profile.clone(), p.clone());
            tokio::spawn(async move { profile.wait_on_permit(&p, Duration::from_secs(5)).await })
        };
        while profile.waiting.held().is_empty() {
            tokio::task::yield_now().await;
        }
        assert!(profile.waiting.allow("uid-p"));
        assert!(waiter.await.unwrap().is_ok());
        let mut strict = Profile::empty("s");
        strict.permits.push(recorder(
            "no",
            &log,
            false,
            Permit::Reject(Status::unschedulable("not now")),
        ));
        let Permit::Reject(status) = strict.permit(&info, "n") else {
            panic!("rejected")
        };
        assert_eq!(status.plugin, "no");
    }
}
