//! DefaultPreemption: when no node fits a pod, finds a node where evicting
//! pods of lower priority makes room, evicting as few and as unimportant
//! ones as possible (upstream's preemption Evaluator). The scheduler then
//! deletes the victims and nominates the node for the pod, which keeps
//! the room for it while the victims terminate.
//!
//! PodDisruptionBudgets are not consulted (every candidate counts as
//! violating none).

use crate::framework::{
    Code, FitError, NodeInfo, Nomination, Plugin, PodInfo, PostFilterPlugin, Profile, Status,
    priority,
};
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
use std::cmp::Reverse;
use std::sync::Arc;

pub const NAME: &str = "DefaultPreemption";
pub const REASON_NO_VICTIMS: &str = "No preemption victims found for incoming pod";
pub const REASON_NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";

pub struct DefaultPreemption {
    /// Candidates to find, as a share of the nodes where preemption might help
    min_candidate_percentage: usize,
    /// and at least this many (DefaultPreemptionArgs).
    min_candidate_absolute: usize,
}

impl DefaultPreemption {
    pub fn from_args(args: &Value) -> Result<Self, String> {
        let pct = args["minCandidateNodesPercentage"].as_i64().unwrap_or(10);
        let abs = args["minCandidateNodesAbsolute"].as_i64().unwrap_or(100);
        if !(0..=100).contains(&pct) || abs < 0 || (pct == 0 && abs == 0) {
            return Err(format!(
                "DefaultPreemption: minCandidateNodesPercentage {pct} must be 0-100 and minCandidateNodesAbsolute {abs} at least 0, not both 0"
            ));
        }
        Ok(DefaultPreemption {
            min_candidate_percentage: pct as usize,
            min_candidate_absolute: abs as usize,
        })
    }

    fn candidates_to_find(&self, nodes: usize) -> usize {
        (nodes * self.min_candidate_percentage / 100)
            .max(self.min_candidate_absolute)
            .min(nodes)
    }
}

/// When a pod was started (its creation when not reported yet).
fn start_time(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .or(pod.metadata.creation_timestamp.as_ref())
        .map(|t| t.0.to_string())
        .unwrap_or_default()
}

/// A pod being deleted because the scheduler preempted it.
pub fn terminating_by_preemption(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| {
                c.type_ == "DisruptionTarget"
                    && c.reason.as_deref() == Some("PreemptionByScheduler")
            })
}

/// Upstream's PodEligibleToPreemptOthers: not when the pod never preempts,
/// nor while victims it already made are still terminating.
fn eligible(pod: &PodInfo, nodes: &[&NodeInfo], fit: &FitError) -> Result<(), &'static str> {
    let spec = pod.spec.as_ref();
    if spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
        return Err("not eligible due to preemptionPolicy=Never.");
    }
    let nominated = pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty());
    let Some(name) = nominated else {
        return Ok(());
    };
    if fit
        .status_of(name)
        .is_some_and(|s| s.code == Code::UnschedulableAndUnresolvable)
    {
        return Ok(());
    }
    let prio = pod.priority();
    let waiting = nodes.iter().find(|n| n.name() == name).is_some_and(|n| {
        n.pods
            .iter()
            .any(|p| priority(p) < prio && terminating_by_preemption(p))
    });
    if waiting {
        return Err("not eligible due to a terminating pod on the nominated node.");
    }
    Ok(())
}

/// The fewest, least important pods of lower priority whose eviction lets
/// `pod` onto `node` (upstream's SelectVictimsOnNode), or why there are none.
fn select_victims(
    profile: &Profile,
    pod: &PodInfo,
    node: &NodeInfo,
) -> Result<Vec<Arc<Pod>>, Status> {
    let prio = pod.priority();
    let mut potential: Vec<Arc<Pod>> = node
        .pods
        .iter()
        .filter(|p| priority(p) < prio)
        .cloned()
        .collect();
    if potential.is_empty() {
        return Err(Status::unresolvable(REASON_NO_VICTIMS));
    }
    let (mut p, mut n) = (pod.clone(), node.clone());
    for v in &potential {
        profile.remove_pod(&mut p, &mut n, v);
    }
    let status = profile.filter_node(&p, &n);
    if !status.is_success() {
        return Err(status);
    }
    // Give back the most important first: higher priority, then older.
    potential.sort_by_key(|v| (Reverse(priority(v)), start_time(v)));
    let mut victims = Vec::new();
    for v in potential {
        profile.add_pod(&mut p, &mut n, v.clone());
        if !profile.filter_node(&p, &n).is_success() {
            profile.remove_pod(&mut p, &mut n, &v);
            victims.push(v);
        }
    }
    if victims.is_empty() {
        return Err(Status::unresolvable(REASON_NO_VICTIMS));
    }
    Ok(victims)
}

/// Upstream's pickOneNodeForPreemption: the lowest highest victim
/// priority, then the lowest priority sum, then the fewest victims, then
/// the latest start among the highest-priority victims, then the first.
fn pick(candidates: Vec<(String, Vec<Arc<Pod>>)>) -> Option<(String, Vec<Arc<Pod>>)> {
    let rank = |victims: &[Arc<Pod>]| {
        let highest = victims
            .iter()
            .map(|v| priority(v))
            .max()
            .unwrap_or(i32::MIN);
        let sum: i64 = victims
            .iter()
            .map(|v| i64::from(priority(v)) + i64::from(i32::MAX) + 1)
            .sum();
        let earliest_of_highest = victims
            .iter()
            .filter(|v| priority(v) == highest)
            .map(|v| start_time(v))
            .min()
            .unwrap_or_default();
        (highest, sum, victims.len(), Reverse(earliest_of_highest))
    };
    candidates
        .into_iter()
        .enumerate()
        .min_by_key(|(i, (_, v))| (rank(v), *i))
        .map(|(_, c)| c)
}

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl PostFilterPlugin for DefaultPreemption {
    fn post_filter(
        &self,
        profile: &Profile,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        fit: &FitError,
    ) -> (Option<Nomination>, Status) {
        let refuse = |msg: String| (None, Status::unschedulable(format!("preemption: {msg}")));
        if let Err(why) = eligible(pod, nodes, fit) {
            return refuse(why.to_string());
        }
        let mut outcome = FitError::new(nodes.len());
        let mut potential = Vec::new();
        for n in nodes {
            match fit.status_of(n.name()).map(|s| s.code) {
                Some(Code::Unschedulable) => potential.push(*n),
                _ => {
                    outcome
                        .statuses
                        .insert(n.name().into(), Status::unresolvable(REASON_NOT_HELPFUL));
                }
            }
        }
        let want = self.candidates_to_find(potential.len());
        let mut candidates = Vec::new();
        for n in potential {
            if candidates.len() >= want {
                break;
            }
            match select_victims(profile, pod, n) {
                Ok(victims) => candidates.push((n.name().to_string(), victims)),
                Err(status) => {
                    outcome.statuses.insert(n.name().into(), status);
                }
            }
        }
        match pick(candidates) {
            Some((node, victims)) => (Some(Nomination { node, victims }), Status::success()),
            None => refuse(outcome.message()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{node, pod};
    use crate::plugins::test_util::info;

    fn prio(name: &str, cpu: &str, p: i32) -> Pod {
        let mut pod = pod(name).container(cpu, "100Mi").build();
        pod.spec.as_mut().unwrap().priority = Some(p);
        pod
    }

    fn preempt(pod: &Pod, nodes: &[NodeInfo]) -> (Option<Nomination>, String) {
        let profile = Profile::default_plugins("default-scheduler");
        let refs: Vec<&NodeInfo> = nodes.iter().collect();
        let mut info = PodInfo::from(pod);
        let mut fit = profile
            .find_node(&mut info, &refs)
            .expect_err("nothing fits");
        let nomination = profile.run_post_filters(&info, &refs, &mut fit);
        (nomination, fit.message())
    }

    fn names(n: &Nomination) -> (String, Vec<String>) {
        let mut v: Vec<String> = n
            .victims
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        v.sort();
        (n.node.clone(), v)
    }

    #[test]
    fn evicts_the_fewest_least_important_pods() {
        // 4 CPUs per node. n1: two low pods of 2; n2: one mid pod of 3 and
        // one low of 1; the new pod wants 3.
        let nodes = [
            info(
                node("n1").build(),
                vec![prio("low-a", "2", 1), prio("low-b", "2", 1)],
            ),
            info(
                node("n2").build(),
                vec![prio("mid", "3", 5), prio("low-c", "1", 1)],
            ),
        ];
        let (nomination, _) = preempt(&prio("high", "3", 10), &nodes);
        // n1 needs both lows (highest victim 1) while n2 needs mid (5).
        assert_eq!(
            names(&nomination.expect("a node")),
            ("n1".into(), vec!["low-a".into(), "low-b".into()])
        );
        // With 2 CPUs wanted n1 needs one low pod only, and keeps the other.
        let (nomination, _) = preempt(
            &prio("high", "3500m", 10),
            &[info(
                node("n1").build(),
                vec![prio("low-a", "2", 1), prio("low-b", "1", 1)],
            )],
        );
        assert_eq!(names(&nomination.unwrap()).1.len(), 2);
        let (nomination, _) = preempt(
            &prio("high", "2500m", 10),
            &[info(
                node("n1").build(),
                vec![prio("low-a", "2", 1), prio("mid", "1", 3)],
            )],
        );
        assert_eq!(names(&nomination.unwrap()).1, ["low-a"], "mid is reprieved");
    }

    #[test]
    fn says_why_it_cannot_help_as_upstream() {
        let nodes = [
            info(node("n1").build(), vec![prio("peer", "3", 10)]),
            info(node("n2").taint("k", "v", "NoSchedule").build(), vec![]),
        ];
        let (nomination, msg) = preempt(&prio("p", "2", 10), &nodes);
        assert!(nomination.is_none());
        assert_eq!(
            msg,
            "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {k: v}. \
             preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, \
             1 Preemption is not helpful for scheduling.."
        );
        let mut never = prio("p", "2", 100);
        never.spec.as_mut().unwrap().preemption_policy = Some("Never".into());
        let (nomination, msg) = preempt(&never, &nodes);
        assert!(nomination.is_none());
        assert!(
            msg.ends_with("preemption: not eligible due to preemptionPolicy=Never.."),
            "{msg}"
        );
    }

    #[test]
    fn a_nominated_pods_room_is_kept_from_lower_priority_pods() {
        let profile = Profile::default_plugins("default-scheduler");
        let mut n1 = info(node("n1").build(), vec![prio("running", "2", 0)]);
        n1.nominated.push(Arc::new(prio("nominated", "2", 10)));
        let refs = [&n1];
        let fits = |p: &Pod| profile.find_node(&mut PodInfo::from(p), &refs).is_ok();
        assert!(
            !fits(&prio("lower", "1", 5)),
            "the nominated pod's 2 CPUs are held"
        );
        assert!(
            fits(&prio("higher", "1", 20)),
            "a more important pod may take them"
        );
    }

    #[test]
    fn candidates_follow_upstreams_numbers() {
        let d = DefaultPreemption::from_args(&Value::Null).unwrap();
        assert_eq!(
            [10, 500, 5000].map(|n| d.candidates_to_find(n)),
            [10, 100, 500]
        );
        assert!(
            DefaultPreemption::from_args(&serde_json::json!({"minCandidateNodesPercentage": 101}))
                .is_err()
        );
    }
}
