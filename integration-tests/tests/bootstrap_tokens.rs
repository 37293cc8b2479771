//! Bootstrap tokens (`--enable-bootstrap-token-auth`) on the real
//! apiserver with the real kubectl: the Secret kubeadm would write makes
//! `<id>.<secret>` a bearer token of `system:bootstrap:<id>`; an expired or
//! wrong one is refused with 401.

use integration_tests::{Cluster, expect_failure, expect_success};

fn token_secret(id: &str, secret: &str, expiration: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: bootstrap-token-{id}, namespace: kube-system}}\ntype: bootstrap.kubernetes.io/token\nstringData:\n  token-id: {id}\n  token-secret: {secret}\n  usage-bootstrap-authentication: 'true'\n  auth-extra-groups: system:bootstrappers:worker\n  expiration: '{expiration}'\n"
    )
}

#[tokio::test]
async fn bootstrap_tokens_authenticate_until_they_expire() {
    let cluster = Cluster::builder()
        .apiserver_arg("--enable-bootstrap-token-auth")
        .start()
        .await
        .expect("cluster starts");
    for (id, exp) in [
        ("abcdef", "2099-01-01T00:00:00Z"),
        ("oldold", "2020-01-01T00:00:00Z"),
    ] {
        expect_success(
            &cluster
                .kubectl_stdin(
                    &["create", "-f", "-"],
                    &token_secret(id, "0123456789abcdef", exp),
                )
                .await,
            "token secret",
        );
    }
    let joiner = cluster.token_kubectl("abcdef.0123456789abcdef");
    let who = expect_success(
        &joiner.run(&["auth", "whoami", "-o", "json"]).await,
        "whoami",
    );
    let review: serde_json::Value = serde_json::from_str(&who).unwrap();
    assert_eq!(
        review["status"]["userInfo"]["username"],
        "system:bootstrap:abcdef"
    );
    let groups = &review["status"]["userInfo"]["groups"];
    for g in [
        "system:bootstrappers",
        "system:bootstrappers:worker",
        "system:authenticated",
    ] {
        assert!(
            groups.as_array().unwrap().iter().any(|x| x == g),
            "{groups}"
        );
    }
    for bad in [
        "abcdef.0123456789abcdee",
        "oldold.0123456789abcdef",
        "zzzzzz.0123456789abcdef",
    ] {
        let err = expect_failure(
            &cluster.token_kubectl(bad).run(&["auth", "whoami"]).await,
            bad,
        );
        assert!(err.contains("Unauthorized"), "{bad}: {err}");
    }
}
