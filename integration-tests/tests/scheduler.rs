//! kube-scheduler against the real apiserver and etcd, with Node objects
//! made by the test (no kubelet): placement by resources and taints, the
//! FailedScheduling message, an unschedulable pod placed once a node
//! appears, profiles by schedulerName, and its metrics.

use integration_tests::Cluster;
use integration_tests::daemon::Scheduler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::time::{Duration, Instant};

async fn add_node(cluster: &Cluster, name: &str, cpu: &str, taint: Option<(&str, &str)>) {
    let nodes: Api<Node> = Api::all(cluster.client().await);
    let mut node: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
    }))
    .unwrap();
    if let Some((k, v)) = taint {
        node.spec.as_mut().unwrap().taints = Some(vec![
            serde_json::from_value(json!({"key": k, "value": v, "effect": "NoSchedule"})).unwrap(),
        ]);
    }
    nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("create node");
    let capacity = json!({"cpu": cpu, "memory": "8Gi", "pods": "110"});
    let status = json!({"status": {"capacity": capacity, "allocatable": capacity,
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "test node"}]}});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .expect("node status");
}

async fn add_pod(cluster: &Cluster, name: &str, cpu: &str, scheduler: Option<&str>) {
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]},
    });
    if let Some(s) = scheduler {
        pod["spec"]["schedulerName"] = json!(s);
    }
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(pod).unwrap(),
    )
    .await
    .expect("create pod");
}

/// The node `name` is bound to, waiting up to `within`.
async fn node_of(cluster: &Cluster, name: &str, within: Duration) -> Option<String> {
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    let deadline = Instant::now() + within;
    loop {
        let pod = pods.get(name).await.expect("get pod");
        if let Some(n) = pod.spec.and_then(|s| s.node_name) {
            return Some(n);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Notes of the events about pod `name` with `reason`, waiting for one.
async fn event_notes(cluster: &Cluster, name: &str, reason: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(cluster.client().await, "default");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let notes: Vec<String> = events
            .list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
            })
            .filter_map(|e| e.note)
            .collect();
        if !notes.is_empty() || Instant::now() > deadline {
            return notes;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn places_pods_by_resources_and_taints_and_says_why_not() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let config = cluster.dir().join("scheduler.yaml");
    std::fs::write(
        &config,
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nleaderElection:\n  leaderElect: false\nprofiles:\n- schedulerName: default-scheduler\n- schedulerName: my-scheduler\n",
    )
    .unwrap();
    add_node(&cluster, "big", "4", None).await;
    add_node(&cluster, "small", "2", None).await;
    let scheduler = Scheduler::start(&cluster, &[&format!("--config={}", config.display())])
        .await
        .expect("scheduler starts");
    let wait = Duration::from_secs(15);

    // Only the big node has room for 3 CPUs.
    add_pod(&cluster, "three-cpus", "3", None).await;
    assert_eq!(
        node_of(&cluster, "three-cpus", wait).await.as_deref(),
        Some("big"),
        "{}",
        scheduler.log_tail(20)
    );
    assert_eq!(
        event_notes(&cluster, "three-cpus", "Scheduled").await,
        ["Successfully assigned default/three-cpus to big"]
    );
    // The assumed/bound pod counts: 1.5 more CPUs only fit on small now.
    add_pod(&cluster, "one-and-a-half", "1500m", None).await;
    assert_eq!(
        node_of(&cluster, "one-and-a-half", wait).await.as_deref(),
        Some("small")
    );

    // A pod for the second profile is placed too; one for an unknown
    // scheduler is left alone.
    add_pod(&cluster, "custom", "100m", Some("my-scheduler")).await;
    assert!(node_of(&cluster, "custom", wait).await.is_some());
    add_pod(&cluster, "someone-elses", "100m", Some("other-scheduler")).await;
    assert_eq!(
        node_of(&cluster, "someone-elses", Duration::from_secs(2)).await,
        None
    );

    // Nothing fits 3 more CPUs, and a tainted node does not help.
    add_node(&cluster, "tainted", "8", Some(("dedicated", "gpu"))).await;
    add_pod(&cluster, "too-big", "3", None).await;
    assert_eq!(
        node_of(&cluster, "too-big", Duration::from_secs(2)).await,
        None
    );
    let notes = event_notes(&cluster, "too-big", "FailedScheduling").await;
    assert!(
        notes.contains(
            &"0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu. \
              preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, \
              2 No preemption victims found for incoming pod.."
                .to_string()
        ),
        "{notes:?}"
    );
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    let condition = pods
        .get("too-big")
        .await
        .unwrap()
        .status
        .and_then(|s| s.conditions)
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled")
        .expect("a PodScheduled condition");
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_deref()),
        ("False", Some("Unschedulable"))
    );

    // A node with room appears: the waiting pod goes there.
    add_node(&cluster, "new", "8", None).await;
    assert_eq!(
        node_of(&cluster, "too-big", wait).await.as_deref(),
        Some("new"),
        "{}",
        scheduler.log_tail(20)
    );

    // nodeSelector (NodeAffinity) pins a pod to a node that has room elsewhere too.
    let pinned: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "pinned"},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": "small"},
                 "containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pinned).await.unwrap();
    assert_eq!(
        node_of(&cluster, "pinned", wait).await.as_deref(),
        Some("small")
    );

    // A gated pod waits until its gates are removed.
    let gated: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "gated"},
        "spec": {"schedulingGates": [{"name": "example.com/approval"}],
                 "containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &gated).await.unwrap();
    assert_eq!(
        node_of(&cluster, "gated", Duration::from_secs(2)).await,
        None
    );
    assert!(
        scheduler
            .metrics()
            .await
            .unwrap()
            .contains("scheduler_pending_pods{queue=\"gated\"} 1")
    );
    let ungate = json!({"spec": {"schedulingGates": null}});
    pods.patch("gated", &PatchParams::default(), &Patch::Merge(ungate))
        .await
        .expect("removing the gates");
    assert!(node_of(&cluster, "gated", wait).await.is_some());

    let metrics = scheduler.metrics().await.expect("metrics");
    assert!(
        metrics.contains(
            "scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"scheduled\"} 5"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("scheduler_pending_pods{queue=\"active\"}"));
    assert!(metrics.contains("scheduler_scheduling_attempt_duration_seconds_bucket"));
}

/// The holder of the scheduler's lease, waiting for one.
async fn lease_holder(cluster: &Cluster) -> (String, i32) {
    let leases: Api<Lease> = Api::namespaced(cluster.client().await, "kube-system");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(spec) = leases
            .get_opt("kube-scheduler")
            .await
            .unwrap()
            .and_then(|l| l.spec)
            && let Some(holder) = spec.holder_identity.filter(|h| !h.is_empty())
        {
            return (holder, spec.lease_transitions.unwrap_or(0));
        }
        assert!(Instant::now() < deadline, "no scheduler took the lease");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_standby_scheduler_takes_over_when_the_leader_dies() {
    let cluster = Cluster::start().await.expect("cluster starts");
    add_node(&cluster, "n1", "4", None).await;
    let fast = [
        "--leader-elect=true",
        "--leader-elect-lease-duration=2s",
        "--leader-elect-renew-deadline=1500ms",
        "--leader-elect-retry-period=200ms",
    ];
    let mut a = Scheduler::start(&cluster, &fast)
        .await
        .expect("first scheduler");
    let (first_holder, _) = lease_holder(&cluster).await;
    let mut b = Scheduler::start(&cluster, &fast)
        .await
        .expect("second scheduler");
    add_pod(&cluster, "before", "100m", None).await;
    assert!(
        node_of(&cluster, "before", Duration::from_secs(15))
            .await
            .is_some()
    );
    // Only the leader schedules: the standby made no attempt.
    let attempts = |m: &str| {
        m.lines()
            .any(|l| l.starts_with("scheduler_schedule_attempts_total{"))
    };
    let (leader, standby) = if attempts(&a.metrics().await.unwrap()) {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    assert!(
        !attempts(&standby.metrics().await.unwrap()),
        "the standby scheduled"
    );

    // The leader crashes without releasing: the standby waits out the lease.
    leader.kill();
    add_pod(&cluster, "after", "100m", None).await;
    assert!(
        node_of(&cluster, "after", Duration::from_secs(20))
            .await
            .is_some(),
        "{}",
        standby.log_tail(20)
    );
    let (holder, transitions) = lease_holder(&cluster).await;
    assert_ne!(holder, first_holder);
    assert!(transitions >= 1, "leaseTransitions {transitions}");
    assert!(attempts(&standby.metrics().await.unwrap()));
}

#[tokio::test]
async fn topology_spread_keeps_zones_even() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let nodes: Api<Node> = Api::all(cluster.client().await);
    for (name, zone) in [("a", "zone-a"), ("b", "zone-b"), ("c", "zone-c")] {
        add_node(&cluster, name, "8", None).await;
        let labels = json!({"metadata": {"labels": {"topology.kubernetes.io/zone": zone}}});
        nodes
            .patch(name, &PatchParams::default(), &Patch::Merge(labels))
            .await
            .unwrap();
    }
    // The biggest node would win on resources alone: spreading overrides it.
    add_node(&cluster, "huge-a", "64", None).await;
    let labels = json!({"metadata": {"labels": {"topology.kubernetes.io/zone": "zone-a"}}});
    nodes
        .patch("huge-a", &PatchParams::default(), &Patch::Merge(labels))
        .await
        .unwrap();
    let scheduler = Scheduler::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("scheduler starts");
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    for i in 0..6 {
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("web-{i}"), "labels": {"app": "web"}},
            "spec": {
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}],
                "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "100m"}}}],
            },
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        // One at a time, so each placement sees the previous ones.
        assert!(
            node_of(&cluster, &format!("web-{i}"), Duration::from_secs(15))
                .await
                .is_some(),
            "{}",
            scheduler.log_tail(20)
        );
    }
    let mut per_zone = std::collections::BTreeMap::new();
    for i in 0..6 {
        let node = node_of(&cluster, &format!("web-{i}"), Duration::from_secs(1))
            .await
            .unwrap();
        let zone =
            nodes.get(&node).await.unwrap().metadata.labels.unwrap()["topology.kubernetes.io/zone"]
                .clone();
        *per_zone.entry(zone).or_insert(0) += 1;
    }
    assert_eq!(
        per_zone.into_values().collect::<Vec<_>>(),
        [2, 2, 2],
        "two pods per zone"
    );
}

#[tokio::test]
async fn anti_affinity_keeps_replicas_on_different_nodes() {
    let cluster = Cluster::start().await.expect("cluster starts");
    add_node(&cluster, "n1", "8", None).await;
    add_node(&cluster, "n2", "8", None).await;
    let _scheduler = Scheduler::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("scheduler starts");
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    let mut placed = Vec::new();
    for i in 0..3 {
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("db-{i}"), "labels": {"app": "db"}},
            "spec": {
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}},
                "containers": [{"name": "c", "image": "busybox"}],
            },
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        let within = Duration::from_secs(if i < 2 { 15 } else { 2 });
        placed.push(node_of(&cluster, &format!("db-{i}"), within).await);
    }
    assert!(placed[0].is_some() && placed[1].is_some());
    assert_ne!(placed[0], placed[1], "replicas share a node");
    assert_eq!(placed[2], None, "a third replica has no node left");
    let notes = event_notes(&cluster, "db-2", "FailedScheduling").await;
    assert!(
        notes.contains(
            &"0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules. \
              preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.."
                .to_string()
        ),
        "{notes:?}"
    );
}

/// A pod of PriorityClass `prio-<priority>` (made on first use), whose
/// `spec.priority` the Priority admission plugin fills in.
async fn add_prio_pod(cluster: &Cluster, name: &str, cpu: &str, priority: i32) {
    let client = cluster.client().await;
    let classes: Api<PriorityClass> = Api::all(client.clone());
    let class = format!("prio-{priority}");
    let pc: PriorityClass = serde_json::from_value(json!({
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": class}, "value": priority,
    }))
    .unwrap();
    match classes.create(&PostParams::default(), &pc).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("create priority class: {e}"),
    }
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"priorityClassName": class,
                 "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]},
    }))
    .unwrap();
    let created = pods
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    assert_eq!(created.spec.unwrap().priority, Some(priority));
}

#[tokio::test]
async fn a_high_priority_pod_preempts_the_fewest_lower_ones() {
    let cluster = Cluster::start().await.expect("cluster starts");
    add_node(&cluster, "n1", "2", None).await;
    let scheduler = Scheduler::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("scheduler starts");
    let wait = Duration::from_secs(15);
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    // Two low pods fill the node; the older one is the more important.
    add_prio_pod(&cluster, "low-old", "1", 1).await;
    assert_eq!(
        node_of(&cluster, "low-old", wait).await.as_deref(),
        Some("n1")
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    add_prio_pod(&cluster, "low-new", "1", 1).await;
    assert_eq!(
        node_of(&cluster, "low-new", wait).await.as_deref(),
        Some("n1")
    );

    // A high pod needs one CPU: one victim is enough, the newer one.
    add_prio_pod(&cluster, "high", "1", 100).await;
    let deadline = Instant::now() + wait;
    let victim = loop {
        let p = pods.get("low-new").await.unwrap();
        if p.metadata.deletion_timestamp.is_some() {
            break p;
        }
        assert!(Instant::now() < deadline, "{}", scheduler.log_tail(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let condition = victim
        .status
        .and_then(|s| s.conditions)
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionTarget")
        .expect("a DisruptionTarget condition");
    assert_eq!(condition.reason.as_deref(), Some("PreemptionByScheduler"));
    assert!(
        pods.get("low-old")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_none()
    );
    let high_uid = pods.get("high").await.unwrap().metadata.uid.unwrap();
    assert_eq!(
        event_notes(&cluster, "low-new", "Preempted").await,
        [format!("Preempted by pod {high_uid} on node n1")]
    );
    let nominated = loop {
        let p = pods.get("high").await.unwrap();
        if let Some(n) = p.status.and_then(|s| s.nominated_node_name) {
            break n;
        }
        assert!(Instant::now() < deadline, "no nominatedNodeName");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(nominated, "n1");

    // A pod as unimportant as the rest cannot take the room the high pod
    // holds, nor preempt anyone.
    add_prio_pod(&cluster, "peer", "1", 1).await;
    let notes = event_notes(&cluster, "peer", "FailedScheduling").await;
    assert_eq!(
        notes.first().map(String::as_str),
        Some(
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.."
        )
    );

    // The victim finishes terminating (the test plays its kubelet): the
    // high pod goes to its nominated node, the peer stays pending.
    pods.delete(
        "low-new",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        node_of(&cluster, "high", wait).await.as_deref(),
        Some("n1"),
        "{}",
        scheduler.log_tail(30)
    );
    assert_eq!(
        node_of(&cluster, "peer", Duration::from_secs(3)).await,
        None
    );
    let metrics = scheduler.metrics().await.expect("metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("scheduler_preemption_attempts_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
    assert!(metrics.contains("scheduler_preemption_victims_bucket"));
}

#[tokio::test]
async fn pod_affinity_follows_its_group_into_a_zone_and_preferences_score() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let nodes: Api<Node> = Api::all(cluster.client().await);
    for (name, cpu, zone) in [
        ("a1", "16", "zone-a"),
        ("a2", "16", "zone-a"),
        ("b1", "2", "zone-b"),
    ] {
        add_node(&cluster, name, cpu, None).await;
        let labels = json!({"metadata": {"labels": {"topology.kubernetes.io/zone": zone}}});
        nodes
            .patch(name, &PatchParams::default(), &Patch::Merge(labels))
            .await
            .unwrap();
    }
    let scheduler = Scheduler::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("scheduler starts");
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    let create = |name: &str, app: &str, spec: serde_json::Value| {
        let mut spec = spec;
        spec["containers"] = json!([{"name": "c", "image": "busybox",
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]);
        serde_json::from_value::<Pod>(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": app}}, "spec": spec,
        }))
        .unwrap()
    };
    let wait = Duration::from_secs(15);
    // The cache is pinned to zone b; web pods must follow it there, though
    // b1 is the smallest node.
    let cache = create(
        "cache",
        "cache",
        json!({"nodeSelector": {"topology.kubernetes.io/zone": "zone-b"}}),
    );
    pods.create(&PostParams::default(), &cache).await.unwrap();
    assert_eq!(
        node_of(&cluster, "cache", wait).await.as_deref(),
        Some("b1")
    );
    let near_cache = json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "topology.kubernetes.io/zone"}]}}});
    pods.create(&PostParams::default(), &create("web", "web", near_cache))
        .await
        .unwrap();
    assert_eq!(
        node_of(&cluster, "web", wait).await.as_deref(),
        Some("b1"),
        "{}",
        scheduler.log_tail(20)
    );
    // A preferred affinity to the cache draws a pod to b1 though a nodes
    // have more room.
    let near = json!({"affinity": {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "cache"}},
         "topologyKey": "topology.kubernetes.io/zone"}}]}}});
    pods.create(&PostParams::default(), &create("reader", "reader", near))
        .await
        .unwrap();
    assert_eq!(
        node_of(&cluster, "reader", wait).await.as_deref(),
        Some("b1")
    );
}
