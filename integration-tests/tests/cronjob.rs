//! The CronJob controller with the Job controller, against the real
//! apiserver and etcd (the test finishes pods as a kubelet would). To not
//! wait for the clock, the test records an earlier schedule time in the
//! status while the CronJob is suspended; resumed, it finds the minutes
//! it missed and starts the Job of the latest.

use futures::StreamExt;
use integration_tests::daemon::ControllerManager;
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::json;
use std::time::Duration;

const TICK: &str = "apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: '* * * * *'
  timeZone: Etc/UTC
  suspend: true
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox}]
";

#[tokio::test]
async fn a_cron_job_starts_the_job_of_its_latest_missed_minute() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let _cm = ControllerManager::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("controller-manager starts");
    let client = cluster.client().await;
    // Every pod succeeds.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let kubelet = {
        let pods = pods.clone();
        tokio::spawn(async move {
            let mut events = watcher(pods.clone(), watcher::Config::default()).boxed();
            while let Some(Ok(ev)) = events.next().await {
                let (watcher::Event::Apply(p) | watcher::Event::InitApply(p)) = ev else {
                    continue;
                };
                if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending") {
                    let status = json!({"status": {"phase": "Succeeded"}});
                    let name = p.metadata.name.unwrap_or_default();
                    let _ = pods
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
                        .await;
                }
            }
        })
    };
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], TICK).await,
        "apply",
    );
    let cronjobs: Api<CronJob> = Api::namespaced(client.clone(), "default");
    let earlier = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(180))
        .strftime("%Y-%m-%dT%H:%M:00Z")
        .to_string();
    cronjobs
        .patch_status(
            "tick",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"lastScheduleTime": earlier}})),
        )
        .await
        .unwrap();
    expect_success(
        &cluster
            .kubectl(&[
                "patch",
                "cronjob",
                "tick",
                "-p",
                r#"{"spec":{"suspend":false}}"#,
            ])
            .await,
        "resume",
    );

    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let job = eventually("a job", Duration::from_secs(15), async || {
        let list = jobs.list(&ListParams::default()).await.unwrap().items;
        (list.len() == 1, list.into_iter().next())
    })
    .await
    .unwrap();
    // The status write follows the Job's creation.
    let before = earlier.parse::<jiff::Timestamp>().unwrap().as_second();
    let last = eventually(
        "lastScheduleTime moves to the latest missed minute",
        Duration::from_secs(15),
        async || {
            let t = cronjobs
                .get("tick")
                .await
                .unwrap()
                .status
                .and_then(|s| s.last_schedule_time)
                .map(|t| t.0);
            (t.is_some_and(|t| t.as_second() > before), t)
        },
    )
    .await
    .unwrap();
    assert_eq!(
        job.metadata.name.as_deref(),
        Some(format!("tick-{}", last.as_second() / 60).as_str())
    );
    assert!(
        job.metadata
            .annotations
            .unwrap_or_default()
            .contains_key("batch.kubernetes.io/cronjob-scheduled-timestamp")
    );

    // The Job succeeds: the CronJob records it and has nothing active.
    let done = eventually("lastSuccessfulTime", Duration::from_secs(20), async || {
        let s = cronjobs
            .get("tick")
            .await
            .unwrap()
            .status
            .unwrap_or_default();
        (s.last_successful_time.is_some() && s.active.is_none(), s)
    })
    .await;
    assert!(done.last_successful_time.is_some());
    kubelet.abort();
}
