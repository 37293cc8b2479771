//! The Job controller against the real apiserver and etcd, the test
//! playing the kubelet (it finishes each pod as Succeeded or Failed):
//! completions with parallelism and a failure retried after backoff, the
//! backoff limit failing a Job, Indexed completion, every finished pod
//! counted once (its tracking finalizer removed), and a finished Job
//! deleted after its ttlSecondsAfterFinished.

use futures::StreamExt;
use integration_tests::daemon::ControllerManager;
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

fn job(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata: {{name: {name}}}
spec:
{extra}
  template:
    spec:
      restartPolicy: Never
      containers:
      - {{name: c, image: busybox}}
"
    )
}

/// Finishes every new pod of the namespace: Failed when `fails` says so, else Succeeded.
fn finish_pods(
    client: kube::Client,
    fails: impl Fn(&Pod, usize) -> bool + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<Pod> = Api::namespaced(client, "default");
        let mut seen = HashSet::new();
        let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
        while let Some(Ok(ev)) = events.next().await {
            let (watcher::Event::Apply(p) | watcher::Event::InitApply(p)) = ev else {
                continue;
            };
            let name = p.metadata.name.clone().unwrap_or_default();
            if p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Pending")
                || !seen.insert(name.clone())
            {
                continue;
            }
            let n = seen.len();
            let (phase, code) = if fails(&p, n) {
                ("Failed", 1)
            } else {
                ("Succeeded", 0)
            };
            let status = json!({"status": {"phase": phase, "containerStatuses": [{"name": "c", "image": "busybox",
                "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": code}}}]}});
            let _ = api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
                .await;
        }
    })
}

async fn condition(jobs: &Api<Job>, name: &str, type_: &str) -> Option<String> {
    jobs.get(name)
        .await
        .ok()?
        .status?
        .conditions?
        .into_iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .and_then(|c| c.reason)
}

#[tokio::test]
async fn jobs_run_to_completion_retry_failures_and_give_up() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let _cm = ControllerManager::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("controller-manager starts");
    let client = cluster.client().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    // The first pod of "work" fails, and every pod of "doomed".
    let _kubelet = finish_pods(client.clone(), |p, _| {
        let name = p.metadata.name.as_deref().unwrap_or("");
        name.starts_with("doomed-")
            || name.starts_with("work-")
                && p.metadata.annotations.is_none()
                && FIRST.swap(false, std::sync::atomic::Ordering::SeqCst)
    });

    expect_success(
        &cluster
            .kubectl_stdin(
                &["apply", "-f", "-"],
                &job(
                    "work",
                    "  completions: 3\n  parallelism: 2\n  backoffLimit: 2",
                ),
            )
            .await,
        "apply",
    );
    expect_success(
        &cluster
            .kubectl_stdin(&["apply", "-f", "-"], &job("doomed", "  backoffLimit: 0"))
            .await,
        "apply",
    );
    expect_success(
        &cluster
            .kubectl_stdin(
                &["apply", "-f", "-"],
                &job(
                    "indexed",
                    "  completions: 3\n  parallelism: 3\n  completionMode: Indexed",
                ),
            )
            .await,
        "apply",
    );

    let failed = eventually("doomed fails", Duration::from_secs(20), async || {
        let r = condition(&jobs, "doomed", "Failed").await;
        (r.is_some(), r)
    })
    .await;
    assert_eq!(failed.as_deref(), Some("BackoffLimitExceeded"));

    let done = eventually("indexed completes", Duration::from_secs(20), async || {
        let r = condition(&jobs, "indexed", "Complete").await;
        (r.is_some(), r)
    })
    .await;
    assert_eq!(done.as_deref(), Some("CompletionsReached"));
    let indexed = jobs.get("indexed").await.unwrap().status.unwrap();
    if indexed.succeeded != Some(3) {
        let list: Vec<_> = pods
            .list(&ListParams::default().labels("batch.kubernetes.io/job-name=indexed"))
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|p| {
                (
                    p.metadata.name,
                    p.status.and_then(|s| s.phase),
                    p.metadata.finalizers,
                )
            })
            .collect();
        panic!("indexed: {indexed:?}\n{list:?}");
    }
    assert_eq!(
        (indexed.succeeded, indexed.completed_indexes.as_deref()),
        (Some(3), Some("0-2"))
    );
    let mut hostnames: Vec<String> = pods
        .list(&ListParams::default().labels("batch.kubernetes.io/job-name=indexed"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.spec.and_then(|s| s.hostname))
        .collect();
    hostnames.sort();
    assert_eq!(hostnames, ["indexed-0", "indexed-1", "indexed-2"]);

    // A finished Job with a TTL goes, and its pods with it.
    eventually(
        "brief deleted after its TTL",
        Duration::from_secs(20),
        async || {
            let gone = jobs.get_opt("brief").await.unwrap().is_none();
            let left = pods
                .list(&ListParams::default().labels("batch.kubernetes.io/job-name=brief"))
                .await
                .unwrap()
                .items
                .len();
            (gone && left == 0, (gone, left))
        },
    )
    .await;

    // One failure, retried after its backoff (10 s), then three successes.
    let out = cluster
        .kubectl(&[
            "wait",
            "--for=condition=complete",
            "job/work",
            "--timeout=40s",
        ])
        .await;
    expect_success(&out, "wait for work");
    let work = jobs.get("work").await.unwrap().status.unwrap();
    assert_eq!((work.succeeded, work.failed), (Some(3), Some(1)));
    let work_pods = pods
        .list(&ListParams::default().labels("batch.kubernetes.io/job-name=work"))
        .await
        .unwrap()
        .items;
    assert_eq!(work_pods.len(), 4, "one replacement, no extra pods");
    assert!(
        work_pods.iter().all(|p| !p
            .metadata
            .finalizers
            .clone()
            .unwrap_or_default()
            .iter()
            .any(|f| f == "batch.kubernetes.io/job-tracking")),
        "finished pods keep no tracking finalizer"
    );
}

static FIRST: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);
