//! VolumeBinding, as far as claims that are already bound: a pod's
//! PersistentVolumeClaims (and generic ephemeral volumes' claims) must
//! exist and be bound, and the node must satisfy each bound volume's
//! nodeAffinity. Binding claims at scheduling time (WaitForFirstConsumer)
//! is not built: an unbound claim keeps the pod pending, as an unbound
//! Immediate claim does upstream.

use super::node_affinity::term_matches;
use crate::framework::{
    ClusterEvent, FilterPlugin, Listers, NodeInfo, Plugin, PodInfo, PreFilterPlugin, Status,
};
use k8s_openapi::api::core::v1::{PersistentVolume, Pod};
use std::sync::Arc;

pub const NAME: &str = "VolumeBinding";
pub const REASON_UNBOUND: &str = "pod has unbound immediate PersistentVolumeClaims";
pub const REASON_NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";
pub const REASON_PV_MISSING: &str =
    "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)";

pub struct VolumeBinding {
    listers: Listers,
}

impl VolumeBinding {
    pub fn new(listers: Listers) -> Self {
        VolumeBinding { listers }
    }
}

/// The names of the claims `pod` uses.
fn claim_names(pod: &Pod) -> Vec<String> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or("");
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| match (&v.persistent_volume_claim, &v.ephemeral) {
            (Some(c), _) => Some(c.claim_name.clone()),
            // A generic ephemeral volume's claim is named after pod and volume.
            (None, Some(_)) => Some(format!("{pod_name}-{}", v.name)),
            _ => None,
        })
        .collect()
}

/// The bound volumes of the pod's claims; None where a claim names a
/// volume that does not exist.
#[derive(Clone)]
struct State(Vec<Option<Arc<PersistentVolume>>>);

impl Plugin for VolumeBinding {
    fn name(&self) -> &'static str {
        NAME
    }

    fn hint(&self, _pod: &Pod, event: &ClusterEvent) -> bool {
        match event {
            ClusterEvent::VolumeChanged | ClusterEvent::NodeAdded(_) => true,
            ClusterEvent::NodeChanged { old, new } => old.metadata.labels != new.metadata.labels,
            _ => false,
        }
    }
}

impl PreFilterPlugin for VolumeBinding {
    fn pre_filter(&self, pod: &mut PodInfo, _nodes: &[&NodeInfo]) -> Status {
        let claims = claim_names(&pod.pod);
        if claims.is_empty() {
            return Status::skip();
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let mut volumes = Vec::new();
        for name in claims {
            let Some(claim) = self.listers.claim(&ns, &name) else {
                return Status::unresolvable(format!("persistentvolumeclaim \"{name}\" not found"));
            };
            if claim.metadata.deletion_timestamp.is_some() {
                return Status::unresolvable(format!(
                    "persistentvolumeclaim \"{name}\" is being deleted"
                ));
            }
            match claim.spec.as_ref().and_then(|s| s.volume_name.as_deref()) {
                Some(pv) if !pv.is_empty() => volumes.push(self.listers.volume(pv)),
                _ => return Status::unresolvable(REASON_UNBOUND),
            }
        }
        pod.write_state(NAME, State(volumes));
        Status::success()
    }
}

impl FilterPlugin for VolumeBinding {
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(State(volumes)) = pod.read_state::<State>(NAME) else {
            return Status::success();
        };
        for pv in volumes {
            let Some(pv) = pv else {
                return Status::unresolvable(REASON_PV_MISSING);
            };
            let required = pv
                .spec
                .as_ref()
                .and_then(|s| s.node_affinity.as_ref())
                .and_then(|a| a.required.as_ref());
            if let Some(selector) = required
                && !selector
                    .node_selector_terms
                    .iter()
                    .any(|t| term_matches(t, &node.node))
            {
                return Status::unresolvable(REASON_NODE_CONFLICT);
            }
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{node, pod};
    use crate::framework::ListerWriters;
    use crate::plugins::test_util::info;
    use kube::runtime::watcher::Event;
    use serde_json::json;

    fn with_claim(claim: &str) -> Pod {
        let mut p = pod("p").build();
        p.spec.as_mut().unwrap().volumes = Some(vec![
            serde_json::from_value(
                json!({"name": "data", "persistentVolumeClaim": {"claimName": claim}}),
            )
            .unwrap(),
        ]);
        p
    }

    fn in_zone(name: &str, zone: &str) -> k8s_openapi::api::core::v1::Node {
        let mut n = node(name).build();
        n.metadata.labels = Some([("zone".to_string(), zone.to_string())].into());
        n
    }

    #[test]
    fn bound_claims_follow_their_volumes_node_affinity() {
        let mut w = ListerWriters::default();
        for (name, volume) in [
            ("bound", Some("pv-a")),
            ("unbound", None),
            ("dangling", Some("gone")),
        ] {
            let mut claim = json!({"metadata": {"name": name, "namespace": "default"}, "spec": {}});
            if let Some(v) = volume {
                claim["spec"]["volumeName"] = json!(v);
            }
            w.claims
                .apply_watcher_event(&Event::Apply(serde_json::from_value(claim).unwrap()));
        }
        w.volumes.apply_watcher_event(&Event::Apply(
            serde_json::from_value(json!({"metadata": {"name": "pv-a"}, "spec": {"nodeAffinity": {"required": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}}))
            .unwrap(),
        ));
        let plugin = VolumeBinding::new(w.listers());
        let nodes = [
            info(in_zone("n1", "a"), vec![]),
            info(in_zone("n2", "b"), vec![]),
        ];
        let refs: Vec<&NodeInfo> = nodes.iter().collect();
        let run = |p: &Pod| -> Result<Vec<Option<String>>, String> {
            let mut p = PodInfo::from(p);
            let status = plugin.pre_filter(&mut p, &refs);
            if !status.is_success() {
                return Err(status.message());
            }
            Ok(nodes
                .iter()
                .map(|n| plugin.filter(&p, n).reasons.first().cloned())
                .collect())
        };
        assert_eq!(
            run(&with_claim("bound")),
            Ok(vec![None, Some(REASON_NODE_CONFLICT.into())])
        );
        assert_eq!(run(&with_claim("unbound")), Err(REASON_UNBOUND.into()));
        assert_eq!(
            run(&with_claim("missing")),
            Err("persistentvolumeclaim \"missing\" not found".into())
        );
        assert_eq!(
            run(&with_claim("dangling")),
            Ok(vec![Some(REASON_PV_MISSING.into()); 2])
        );
        assert_eq!(run(&pod("plain").build()), Ok(vec![None, None]));
    }
}
