//! Service account tokens against the real apiserver and etcd, with the
//! real kubectl: `kubectl create token` (the TokenRequest API) issues a JWT
//! that authenticates as the service account, with audiences and expiry;
//! a token bound to a pod dies with the pod, one of a deleted service
//! account is refused, a forged one too; the OIDC discovery documents
//! describe the issuer and its key. With RBAC, the service account gets
//! only what it is bound to.

use integration_tests::apiserver::SERVICE_ACCOUNT_ISSUER;
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_failure, expect_success};
use std::time::Duration;

#[tokio::test]
async fn tokens_from_the_token_request_api_authenticate() {
    let cluster = Cluster::builder()
        .apiserver_arg("--authorization-mode=RBAC")
        .start()
        .await
        .expect("cluster");
    expect_success(
        &cluster.kubectl(&["create", "serviceaccount", "bot"]).await,
        "sa",
    );
    let token = expect_success(
        &cluster.kubectl(&["create", "token", "bot"]).await,
        "create token",
    )
    .trim()
    .to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let bot = cluster.token_kubectl(&token);
    let whoami = expect_success(&bot.run(&["auth", "whoami", "-o", "json"]).await, "whoami");
    let v: serde_json::Value = serde_json::from_str(&whoami).unwrap();
    assert_eq!(
        v["status"]["userInfo"]["username"],
        "system:serviceaccount:default:bot"
    );
    let groups = v["status"]["userInfo"]["groups"].to_string();
    assert!(
        groups.contains("system:serviceaccounts:default"),
        "{groups}"
    );

    // RBAC: nothing until bound.
    let err = expect_failure(&bot.run(&["get", "pods"]).await, "unbound");
    assert!(
        err.contains("User \"system:serviceaccount:default:bot\" cannot list resource \"pods\""),
        "{err}"
    );
    expect_success(
        &cluster
            .kubectl(&[
                "create",
                "rolebinding",
                "bot-view",
                "--clusterrole=view",
                "--serviceaccount=default:bot",
            ])
            .await,
        "bind",
    );
    integration_tests::wait::eventually(
        "the binding applies",
        std::time::Duration::from_secs(10),
        async || {
            let out = bot.run(&["get", "pods"]).await;
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        },
    )
    .await;

    // Service accounts may read the issuer's discovery documents.
    let jwks = expect_success(
        &bot.run(&["get", "--raw", "/openid/v1/jwks"]).await,
        "jwks as the bot",
    );
    assert!(jwks.contains("\"keys\""), "{jwks}");

    // Another audience is not for this apiserver.
    let other = expect_success(
        &cluster
            .kubectl(&["create", "token", "bot", "--audience=vault"])
            .await,
        "vault token",
    );
    expect_failure(
        &cluster
            .token_kubectl(other.trim())
            .run(&["get", "pods"])
            .await,
        "foreign audience",
    );
    // Too short a lifetime is refused as upstream.
    let err = expect_failure(
        &cluster
            .kubectl(&["create", "token", "bot", "--duration=1m"])
            .await,
        "short",
    );
    assert!(
        err.contains("may not specify a duration less than 10 minutes"),
        "{err}"
    );
    // A forged token (claims changed) is refused.
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!("{}.{}x.{}", parts[0], parts[1], parts[2]);
    expect_failure(
        &cluster.token_kubectl(&forged).run(&["get", "pods"]).await,
        "forged",
    );

    // Bound to a pod: the token dies with the pod.
    expect_success(
        &cluster
            .kubectl(&[
                "run",
                "holder",
                "--image=localhost/busybox:1.35",
                "--restart=Never",
            ])
            .await,
        "pod",
    );
    let bound = expect_success(
        &cluster
            .kubectl(&[
                "create",
                "token",
                "bot",
                "--bound-object-kind=Pod",
                "--bound-object-name=holder",
            ])
            .await,
        "bound token",
    );
    let holder = cluster.token_kubectl(bound.trim());
    expect_success(&holder.run(&["auth", "whoami"]).await, "bound token works");
    expect_success(
        &cluster
            .kubectl(&["delete", "pod", "holder", "--grace-period=0", "--force"])
            .await,
        "delete pod",
    );
    // The authenticator follows pods through a watch: a moment's lag, as upstream's informers.
    eventually(
        "the pod's token is refused",
        Duration::from_secs(5),
        async || (!holder.run(&["auth", "whoami"]).await.status.success(), ()),
    )
    .await;

    // A deleted service account's tokens stop working.
    expect_success(
        &cluster.kubectl(&["delete", "serviceaccount", "bot"]).await,
        "delete sa",
    );
    eventually(
        "the account's token is refused",
        Duration::from_secs(5),
        async || (!bot.run(&["auth", "whoami"]).await.status.success(), ()),
    )
    .await;

    // OIDC discovery.
    let config = expect_success(
        &cluster
            .kubectl(&["get", "--raw", "/.well-known/openid-configuration"])
            .await,
        "discovery",
    );
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["issuer"], SERVICE_ACCOUNT_ISSUER);
    let jwks = expect_success(
        &cluster.kubectl(&["get", "--raw", "/openid/v1/jwks"]).await,
        "jwks",
    );
    let jwks: serde_json::Value = serde_json::from_str(&jwks).unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
}
