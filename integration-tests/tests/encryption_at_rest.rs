//! Encryption at rest (`--encryption-provider-config`): secrets reach etcd
//! encrypted in upstream's format and read back as plaintext through get,
//! list and watch; a key rotation as upstream documents it (add a key,
//! promote it, rewrite every secret, retire the old key, restarting the
//! apiserver at each step) keeps every secret readable; resources not in
//! the file stay plaintext; a bad file keeps the apiserver from starting.

use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::GetOptions;
use futures::StreamExt;
use integration_tests::apiserver::ETCD_PREFIX;
use integration_tests::{Cluster, expect_failure, expect_success};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, WatchEvent, WatchParams};

/// base64 of two 32-byte AES keys.
const KEY1: &str = "dGhpcyBpcyB0aGUgZmlyc3QgMzItYnl0ZSBrZXkhISE=";
const KEY2: &str = "YW5kIHRoaXMgaXMgdGhlIDJuZCAzMi1ieXRlIGtleSE=";

/// (key name, base64 secret) of aescbc, in order, then identity when asked.
fn config(keys: &[(&str, &str)], identity: bool) -> String {
    let mut providers = String::new();
    if !keys.is_empty() {
        providers.push_str("  - aescbc:\n      keys:\n");
        for (name, secret) in keys {
            providers.push_str(&format!("      - name: {name}\n        secret: {secret}\n"));
        }
    }
    if identity {
        providers.push_str("  - identity: {}\n");
    }
    format!(
        "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources:
  - secrets
  providers:
{providers}"
    )
}

/// The config file lives outside the cluster's directory: it must exist
/// before the cluster starts, and is rewritten in place between restarts.
struct ConfigFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl ConfigFile {
    fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("encryption-config.yaml");
        std::fs::write(&path, text).expect("writing the encryption config");
        ConfigFile { _dir: dir, path }
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.path, text).expect("rewriting the encryption config");
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

async fn start(file: &ConfigFile) -> Cluster {
    Cluster::builder()
        .apiserver_arg(format!(
            "--encryption-provider-config={}",
            file.path().display()
        ))
        .start()
        .await
        .expect("cluster starts")
}

/// The bytes etcd holds for `namespace/name` of `resource`.
async fn raw(cluster: &Cluster, resource: &str, namespace: &str, name: &str) -> Vec<u8> {
    let key = format!("{ETCD_PREFIX}/{resource}/{namespace}/{name}");
    let mut etcd = cluster.etcd_client().await.expect("etcd client");
    let resp = etcd.get(key.as_str(), None).await.expect("etcd get");
    resp.kvs()
        .first()
        .unwrap_or_else(|| panic!("{key} is in etcd"))
        .value()
        .to_vec()
}

/// Every secret in etcd: (key, value).
async fn raw_secrets(cluster: &Cluster) -> Vec<(String, Vec<u8>)> {
    let mut etcd = cluster.etcd_client().await.expect("etcd client");
    let prefix = format!("{ETCD_PREFIX}/secrets/");
    let resp = etcd
        .get(prefix.as_str(), Some(GetOptions::new().with_prefix()))
        .await
        .expect("etcd range");
    resp.kvs()
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                kv.value().to_vec(),
            )
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// (namespace, name, password, its base64 as a Secret's JSON holds it) of
/// the secrets the test creates.
const SECRETS: [(&str, &str, &str, &str); 3] = [
    (
        "default",
        "db",
        "hunter2-correct-horse",
        "aHVudGVyMi1jb3JyZWN0LWhvcnNl",
    ),
    ("default", "api", "tr0ub4dor-and-3", "dHIwdWI0ZG9yLWFuZC0z"),
    (
        "kube-system",
        "tls",
        "battery-staple-42",
        "YmF0dGVyeS1zdGFwbGUtNDI=",
    ),
];

/// `kubectl get secret` printing the password decoded.
const PASSWORD: &str = "go-template={{.data.password | base64decode}}";

async fn create_secret(cluster: &Cluster, namespace: &str, name: &str, password: &str) {
    let literal = format!("--from-literal=password={password}");
    expect_success(
        &cluster
            .kubectl(&[
                "create", "secret", "generic", name, "-n", namespace, &literal,
            ])
            .await,
        &format!("creating secret {namespace}/{name}"),
    );
}

/// Every secret reads back through the API with its password.
async fn assert_readable(cluster: &Cluster, step: &str) {
    for (namespace, name, password, _) in SECRETS {
        let out = cluster
            .kubectl(&["get", "secret", name, "-n", namespace, "-o", PASSWORD])
            .await;
        let got = expect_success(&out, &format!("{step}: reading {namespace}/{name}"));
        assert_eq!(got, password, "{step}: {namespace}/{name}");
    }
    let list = expect_success(
        &cluster
            .kubectl(&["get", "secrets", "-A", "-o", "name"])
            .await,
        &format!("{step}: listing secrets"),
    );
    for (_, name, _, _) in SECRETS {
        assert!(list.contains(&format!("secret/{name}")), "{step}: {list}");
    }
}

/// Every secret in etcd carries `prefix` and none of the passwords.
async fn assert_stored_with(cluster: &Cluster, prefix: &str, step: &str) {
    let stored = raw_secrets(cluster).await;
    assert!(
        stored.len() >= SECRETS.len(),
        "{step}: {} secrets",
        stored.len()
    );
    for (key, value) in stored {
        assert!(
            value.starts_with(prefix.as_bytes()),
            "{step}: {key} starts with {:?}",
            String::from_utf8_lossy(&value[..value.len().min(40)])
        );
        for (_, _, password, encoded) in SECRETS {
            assert!(
                !contains(&value, password),
                "{step}: {key} holds a password"
            );
            assert!(!contains(&value, encoded), "{step}: {key} holds a password");
        }
    }
}

/// `kubectl get secrets -A -o json | kubectl replace -f -`: upstream's way
/// to rewrite every secret with the current write key. `--validate=false`:
/// kubectl validates a `List` on its side, from the protobuf `/openapi/v2`,
/// which this apiserver serves as JSON only.
async fn rewrite_all_secrets(cluster: &Cluster) {
    let all = expect_success(
        &cluster
            .kubectl(&["get", "secrets", "-A", "-o", "json"])
            .await,
        "reading every secret",
    );
    expect_success(
        &cluster
            .kubectl_stdin(&["replace", "--validate=false", "-f", "-"], &all)
            .await,
        "replacing every secret",
    );
}

async fn restart(cluster: &mut Cluster, step: &str) {
    cluster
        .restart_apiserver()
        .await
        .unwrap_or_else(|e| panic!("{step}: the apiserver restarts: {e:#}"));
}

#[tokio::test]
async fn secrets_are_encrypted_and_survive_a_key_rotation() {
    let file = ConfigFile::new(&config(&[("key1", KEY1)], true));
    let mut cluster = start(&file).await;

    // A watch started before the writes sees them as plaintext.
    let api: Api<Secret> = Api::namespaced(cluster.client().await, "default");
    let mut watch = api
        .watch(&WatchParams::default().timeout(30), "0")
        .await
        .expect("watching secrets")
        .boxed();
    for (namespace, name, password, _) in SECRETS {
        create_secret(&cluster, namespace, name, password).await;
    }
    expect_success(
        &cluster
            .kubectl(&[
                "create",
                "configmap",
                "plain",
                "--from-literal=color=blue-and-green",
            ])
            .await,
        "creating a configmap",
    );

    let db = raw(&cluster, "secrets", "default", "db").await;
    assert!(
        db.starts_with(b"k8s:enc:aescbc:v1:key1:"),
        "stored as {:?}",
        String::from_utf8_lossy(&db[..db.len().min(40)])
    );
    // The prefix, a 16-byte IV, then whole AES blocks.
    assert_eq!((db.len() - "k8s:enc:aescbc:v1:key1:".len()) % 16, 0);
    assert_stored_with(&cluster, "k8s:enc:aescbc:v1:key1:", "encrypted").await;
    let plain = raw(&cluster, "configmaps", "default", "plain").await;
    assert!(
        plain.starts_with(b"{"),
        "configmaps are not listed: plaintext"
    );
    assert!(contains(&plain, "blue-and-green"));
    assert_readable(&cluster, "encrypted").await;

    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = integration_tests::wait::next_event(&mut watch, Duration::from_secs(20)).await;
        if let WatchEvent::Added(s) = event {
            let data = s.data.unwrap_or_default();
            let password = data.get("password").expect("password in the event");
            seen.push(String::from_utf8_lossy(&password.0).into_owned());
        }
    }
    assert_eq!(
        seen,
        ["hunter2-correct-horse", "tr0ub4dor-and-3"],
        "plaintext watch events"
    );
    drop(watch);

    // Step 1: key2 added after key1; reads accept both, writes still key1.
    file.write(&config(&[("key1", KEY1), ("key2", KEY2)], true));
    restart(&mut cluster, "key2 added").await;
    assert_readable(&cluster, "key2 added").await;
    assert_stored_with(&cluster, "k8s:enc:aescbc:v1:key1:", "key2 added").await;

    // Step 2: key2 first: new writes use it, old values still read.
    file.write(&config(&[("key2", KEY2), ("key1", KEY1)], true));
    restart(&mut cluster, "key2 first").await;
    assert_readable(&cluster, "key2 first").await;
    expect_success(
        &cluster
            .kubectl(&["label", "secret", "api", "rotated=yes"])
            .await,
        "changing one secret",
    );
    let api_secret = raw(&cluster, "secrets", "default", "api").await;
    assert!(
        api_secret.starts_with(b"k8s:enc:aescbc:v1:key2:"),
        "a write uses key2"
    );
    let db = raw(&cluster, "secrets", "default", "db").await;
    assert!(
        db.starts_with(b"k8s:enc:aescbc:v1:key1:"),
        "untouched until rewritten"
    );

    // Step 3: every secret rewritten, unchanged ones too (they were stale).
    rewrite_all_secrets(&cluster).await;
    assert_stored_with(&cluster, "k8s:enc:aescbc:v1:key2:", "rewritten").await;
    assert_readable(&cluster, "rewritten").await;

    // Step 4: key1 retired.
    file.write(&config(&[("key2", KEY2)], true));
    restart(&mut cluster, "key1 removed").await;
    assert_readable(&cluster, "key1 removed").await;
    assert_stored_with(&cluster, "k8s:enc:aescbc:v1:key2:", "key1 removed").await;
    let plain = raw(&cluster, "configmaps", "default", "plain").await;
    assert!(plain.starts_with(b"{"), "the configmap stayed plaintext");
}

#[tokio::test]
async fn existing_plaintext_is_encrypted_by_a_rewrite() {
    // Identity only: secrets stored as they are.
    let file = ConfigFile::new(&config(&[], true));
    let mut cluster = start(&file).await;
    for (namespace, name, password, _) in SECRETS {
        create_secret(&cluster, namespace, name, password).await;
    }
    let db = raw(&cluster, "secrets", "default", "db").await;
    assert!(db.starts_with(b"{"), "identity writes plaintext");
    assert!(contains(&db, SECRETS[0].3));

    // aescbc without identity: plaintext no longer reads, an internal error.
    file.write(&config(&[("key1", KEY1)], false));
    restart(&mut cluster, "no identity").await;
    let err = expect_failure(
        &cluster
            .kubectl(&["get", "secret", "db", "-o", "name"])
            .await,
        "reading plaintext without identity",
    );
    assert!(
        err.contains("InternalError") || err.contains("Internal error"),
        "{err}"
    );
    assert!(err.contains("no matching prefix found"), "{err}");

    // With identity after aescbc: reads work, and a rewrite encrypts.
    file.write(&config(&[("key1", KEY1)], true));
    restart(&mut cluster, "identity second").await;
    assert_readable(&cluster, "identity second").await;
    rewrite_all_secrets(&cluster).await;
    assert_stored_with(&cluster, "k8s:enc:aescbc:v1:key1:", "rewritten").await;
    assert_readable(&cluster, "rewritten").await;
}

#[tokio::test]
async fn a_bad_config_keeps_the_apiserver_from_starting() {
    let file = ConfigFile::new(&config(&[("key1", KEY1)], true));
    let mut cluster = start(&file).await;
    create_secret(&cluster, "default", "db", "hunter2-correct-horse").await;

    file.write(
        "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
  - kms:
      name: vault
      endpoint: unix:///run/kms.sock
",
    );
    assert!(
        cluster.restart_apiserver().await.is_err(),
        "an apiserver with a kms provider starts"
    );
    let log = cluster.apiserver_log_tail(40);
    assert!(log.contains("kms provider is not supported"), "{log}");

    file.write(&config(&[("key1", "c2hvcnQ=")], true));
    assert!(
        cluster.start_apiserver().await.is_err(),
        "a 5-byte key is taken"
    );
    let log = cluster.apiserver_log_tail(40);
    assert!(
        log.contains("secret is not of the expected length, got 5"),
        "{log}"
    );

    file.write(&config(&[("key1", KEY1)], true));
    cluster
        .start_apiserver()
        .await
        .expect("a good config starts again");
    // The brief's check as a person types it: jsonpath gives the base64.
    let got = expect_success(
        &cluster
            .kubectl(&["get", "secret", "db", "-o", "jsonpath={.data.password}"])
            .await,
        "reading the secret",
    );
    assert_eq!(got.trim(), SECRETS[0].3);
}
