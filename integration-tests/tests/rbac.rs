//! RBAC against the real apiserver (`--authorization-mode=RBAC`) and etcd,
//! driven by the real kubectl: the bootstrap policy exists, `system:masters`
//! may do everything, a user with no binding may only discover, a user
//! bound to `view` in a namespace reads but cannot write there (403 with
//! upstream's message) nor read elsewhere, `kubectl auth can-i` (and
//! `--list`) answers for the caller and, through SubjectAccessReview, for
//! others, and a change of bindings takes effect at once.

use integration_tests::pki::TOKEN_USER;
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_failure, expect_success};
use std::time::Duration;

async fn rbac_cluster() -> Cluster {
    Cluster::builder()
        .apiserver_arg("--authorization-mode=RBAC")
        .start()
        .await
        .expect("cluster")
}

#[tokio::test]
async fn rbac_decides_what_users_may_do() {
    let cluster = rbac_cluster().await;
    let alice = cluster.token_kubectl(&cluster.pki().user_token);

    // The bootstrap policy.
    let roles = expect_success(
        &cluster.kubectl(&["get", "clusterroles"]).await,
        "clusterroles",
    );
    for role in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:node-proxier",
        "system:kube-scheduler",
        "system:discovery",
    ] {
        assert!(roles.contains(role), "{role} missing:\n{roles}");
    }

    // No binding: discovery yes, objects no.
    expect_success(&alice.run(&["api-resources"]).await, "discovery");
    let out = alice.run(&["get", "configmaps", "-n", "default"]).await;
    let err = expect_failure(&out, "list without a binding");
    assert!(
        err.contains(&format!("configmaps is forbidden: User \"{TOKEN_USER}\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\"")),
        "{err}"
    );
    let whoami = expect_success(&alice.run(&["auth", "whoami"]).await, "whoami");
    assert!(whoami.contains(TOKEN_USER), "{whoami}");

    // view in "default": read there, not write, not elsewhere.
    expect_success(
        &cluster
            .kubectl(&[
                "create",
                "rolebinding",
                "alice-view",
                "--clusterrole=view",
                &format!("--user={TOKEN_USER}"),
                "-n",
                "default",
            ])
            .await,
        "bind view",
    );
    expect_success(
        &cluster
            .kubectl(&[
                "create",
                "configmap",
                "c1",
                "-n",
                "default",
                "--from-literal=k=v",
            ])
            .await,
        "admin creates",
    );
    eventually(
        "the binding takes effect",
        Duration::from_secs(10),
        async || {
            let out = alice
                .run(&["get", "configmap", "c1", "-n", "default"])
                .await;
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        },
    )
    .await;
    let out = alice
        .run(&["create", "configmap", "c2", "-n", "default"])
        .await;
    let err = expect_failure(&out, "create with view");
    assert!(
        err.contains("configmaps is forbidden: User \"alice\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"default\""),
        "{err}"
    );
    let out = alice.run(&["get", "secrets", "-n", "default"]).await;
    expect_failure(&out, "view does not read secrets");
    let out = alice.run(&["get", "configmaps", "-n", "kube-system"]).await;
    expect_failure(&out, "view is only in default");

    // kubectl auth can-i for the caller, and --list.
    let can = |args: &'static [&'static str]| {
        let alice = alice.clone();
        async move {
            let mut all = vec!["auth", "can-i"];
            all.extend_from_slice(args);
            let out = alice.run(&all).await;
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        }
    };
    assert_eq!(can(&["list", "pods", "-n", "default"]).await, "yes");
    assert_eq!(can(&["create", "pods", "-n", "default"]).await, "no");
    assert_eq!(
        can(&["get", "deployments.apps", "-n", "default"]).await,
        "yes"
    );
    assert_eq!(can(&["get", "/healthz"]).await, "yes");
    assert_eq!(can(&["get", "/metrics"]).await, "no");
    let list = expect_success(
        &alice
            .run(&["auth", "can-i", "--list", "-n", "default"])
            .await,
        "can-i --list",
    );
    assert!(
        list.contains("configmaps") && list.contains("[get list watch]"),
        "{list}"
    );

    // For others, as an admin (SubjectAccessReview), including groups.
    let review = format!(
        r#"{{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{{"user":"{TOKEN_USER}","resourceAttributes":{{"namespace":"default","verb":"delete","resource":"configmaps"}}}}}}"#
    );
    let out = expect_success(
        &cluster
            .kubectl_stdin(
                &["create", "--validate=false", "-f", "-", "-o", "json"],
                &review,
            )
            .await,
        "SAR",
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"]["allowed"], false, "{v}");
    let review = review.replace("delete", "watch");
    let out = expect_success(
        &cluster
            .kubectl_stdin(
                &["create", "--validate=false", "-f", "-", "-o", "json"],
                &review,
            )
            .await,
        "SAR",
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"]["allowed"], true, "{v}");
    // alice may not ask about others (no binding grants subjectaccessreviews).
    let out = alice
        .run_stdin(&["create", "--validate=false", "-f", "-"], &review)
        .await;
    expect_failure(&out, "SAR without the right");

    // edit in default through a group binding: now she may create.
    expect_success(
        &cluster
            .kubectl(&[
                "create",
                "rolebinding",
                "qa-edit",
                "--clusterrole=edit",
                "--group=qa",
                "-n",
                "default",
            ])
            .await,
        "bind edit to qa",
    );
    eventually(
        "the group binding takes effect",
        Duration::from_secs(10),
        async || {
            let out = alice
                .run(&["create", "configmap", "c3", "-n", "default"])
                .await;
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        },
    )
    .await;
    // Deleting the bindings takes the rights away again.
    expect_success(
        &cluster
            .kubectl(&[
                "delete",
                "rolebinding",
                "qa-edit",
                "alice-view",
                "-n",
                "default",
            ])
            .await,
        "unbind",
    );
    eventually("the rights are gone", Duration::from_secs(10), async || {
        let out = alice
            .run(&["get", "configmap", "c1", "-n", "default"])
            .await;
        (
            !out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await;
}

#[tokio::test]
async fn no_one_grants_what_they_do_not_hold() {
    let cluster = rbac_cluster().await;
    let alice = cluster.token_kubectl(&cluster.pki().user_token);
    expect_success(
        &cluster.kubectl(&["create", "namespace", "team"]).await,
        "ns",
    );
    expect_success(
        &cluster
            .kubectl(&[
                "create",
                "rolebinding",
                "alice-admin",
                "--clusterrole=admin",
                &format!("--user={TOKEN_USER}"),
                "-n",
                "team",
            ])
            .await,
        "bind admin",
    );
    // What she holds she may hand on; nodes she cannot read, so she cannot grant them.
    let wait = Duration::from_secs(10);
    eventually("alice is admin of team", wait, async || {
        let out = alice
            .run(&[
                "create",
                "role",
                "reader",
                "--verb=get",
                "--resource=pods",
                "-n",
                "team",
            ])
            .await;
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await;
    let err = expect_failure(
        &alice
            .run(&[
                "create",
                "role",
                "spy",
                "--verb=get,list",
                "--resource=nodes,pods",
                "-n",
                "team",
            ])
            .await,
        "escalate",
    );
    assert!(
        err.contains(&format!(
            "roles.rbac.authorization.k8s.io \"spy\" is forbidden: user \"{TOKEN_USER}\" (groups=[\"developers\" \"qa\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{{APIGroups:[\"\"], Resources:[\"nodes\"], Verbs:[\"get\" \"list\"]}}"
        )),
        "{err}"
    );
    // Binding: view is within admin; cluster-admin is not.
    expect_success(
        &alice
            .run(&[
                "create",
                "rolebinding",
                "bob-view",
                "--clusterrole=view",
                "--user=bob",
                "-n",
                "team",
            ])
            .await,
        "bind view",
    );
    let err = expect_failure(
        &alice
            .run(&[
                "create",
                "rolebinding",
                "bob-root",
                "--clusterrole=cluster-admin",
                "--user=bob",
                "-n",
                "team",
            ])
            .await,
        "bind cluster-admin",
    );
    assert!(
        err.contains("rolebindings.rbac.authorization.k8s.io \"bob-root\" is forbidden: user")
            && err.contains("is attempting to grant RBAC permissions not currently held"),
        "{err}"
    );
    // With `bind` on cluster-admin, she may.
    expect_success(
        &cluster
            .kubectl_stdin(
                &["apply", "-f", "-"],
                &format!(
                    "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: bind-root}}\nrules: [{{apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind], resourceNames: [cluster-admin]}}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: alice-bind-root}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: bind-root}}\nsubjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {TOKEN_USER}}}]\n"
                ),
            )
            .await,
        "grant bind",
    );
    eventually("bind is granted", wait, async || {
        let out = alice
            .run(&[
                "create",
                "rolebinding",
                "bob-root",
                "--clusterrole=cluster-admin",
                "--user=bob",
                "-n",
                "team",
            ])
            .await;
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await;
}

#[tokio::test]
async fn anonymous_and_always_deny() {
    let cluster = Cluster::builder()
        .apiserver_arg("--authorization-mode=AlwaysDeny")
        .start()
        .await
        .expect("cluster");
    // system:masters is allowed before any mode, as upstream.
    expect_success(&cluster.kubectl(&["get", "namespaces"]).await, "masters");
    let alice = cluster.token_kubectl(&cluster.pki().user_token);
    let err = expect_failure(&alice.run(&["get", "namespaces"]).await, "always deny");
    assert!(err.contains("forbidden"), "{err}");
    // Even asking is denied, as upstream (SelfSubjectAccessReview is a request too).
    let err = expect_failure(
        &alice.run(&["auth", "can-i", "get", "pods"]).await,
        "can-i under AlwaysDeny",
    );
    assert!(err.contains("forbidden"), "{err}");
}
