use super::*;

const KEY: &str = "/registry/secrets/default/s1";
const PLAIN: &[u8] = br#"{"kind":"Secret","data":{"password":"aHVudGVyMg=="}}"#;
/// base64 of 0x00..0x1f, of its first 16 and 24 bytes, and of another 32.
const KEY32: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY16: &str = "AAECAwQFBgcICQoLDA0ODw==";
const KEY24: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";
const OTHER32: &str = "c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluayBzbyA/ISE=";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A configuration of `resources` with providers given as YAML flow maps.
fn config(resources: &[&str], providers: &[&str]) -> String {
    format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [{}]\n  providers:\n{}",
        resources.join(", "),
        providers
            .iter()
            .map(|p| format!("  - {p}\n"))
            .collect::<String>()
    )
}

fn aes(kind: &str, keys: &[(&str, &str)]) -> String {
    let keys: Vec<String> = keys
        .iter()
        .map(|(n, s)| format!("{{name: {n}, secret: \"{s}\"}}"))
        .collect();
    format!("{{{kind}: {{keys: [{}]}}}}", keys.join(", "))
}

const IDENTITY: &str = "{identity: {}}";

fn secrets(providers: &[&str]) -> Arc<dyn Transformer> {
    EncryptionConfig::parse(&config(&["secrets"], providers))
        .unwrap()
        .transformer_for("", "secrets")
}

fn read(t: &Arc<dyn Transformer>, stored: &[u8]) -> Result<(Vec<u8>, bool), TransformError> {
    t.transform_from_storage(stored, KEY.as_bytes())
        .map(|(p, stale)| (p.into_owned(), stale))
}

fn write(t: &Arc<dyn Transformer>) -> Vec<u8> {
    t.transform_to_storage(PLAIN.to_vec(), KEY.as_bytes())
        .unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn every_provider_round_trips_with_its_prefix() {
    let cases = [
        (
            "aescbc-128",
            aes("aescbc", &[("key1", KEY16)]),
            "k8s:enc:aescbc:v1:key1:",
        ),
        (
            "aescbc-192",
            aes("aescbc", &[("key1", KEY24)]),
            "k8s:enc:aescbc:v1:key1:",
        ),
        (
            "aescbc-256",
            aes("aescbc", &[("key1", KEY32)]),
            "k8s:enc:aescbc:v1:key1:",
        ),
        (
            "aesgcm-128",
            aes("aesgcm", &[("k", KEY16)]),
            "k8s:enc:aesgcm:v1:k:",
        ),
        (
            "aesgcm-192",
            aes("aesgcm", &[("k", KEY24)]),
            "k8s:enc:aesgcm:v1:k:",
        ),
        (
            "aesgcm-256",
            aes("aesgcm", &[("k", KEY32)]),
            "k8s:enc:aesgcm:v1:k:",
        ),
        (
            "secretbox",
            aes("secretbox", &[("sb", KEY32)]),
            "k8s:enc:secretbox:v1:sb:",
        ),
    ];
    for (name, provider, prefix) in cases {
        let t = secrets(&[&provider]);
        let stored = write(&t);
        assert!(stored.starts_with(prefix.as_bytes()), "{name}: {stored:?}");
        assert!(
            !contains(&stored, b"Secret"),
            "{name}: plaintext in storage"
        );
        assert!(
            !contains(&stored, b"aHVudGVyMg=="),
            "{name}: plaintext in storage"
        );
        assert_eq!(
            read(&t, &stored).unwrap(),
            (PLAIN.to_vec(), false),
            "{name}"
        );
        // A random IV or nonce per write.
        assert_ne!(write(&t), stored, "{name}");
    }
}

#[test]
fn stored_sizes_are_upstreams() {
    let body = |provider: &str, prefix: &str| write(&secrets(&[provider])).len() - prefix.len();
    let padded = (PLAIN.len() / 16 + 1) * 16;
    assert_eq!(
        body(
            &aes("aescbc", &[("key1", KEY32)]),
            "k8s:enc:aescbc:v1:key1:"
        ),
        16 + padded,
        "IV, then whole blocks"
    );
    assert_eq!(
        body(
            &aes("aesgcm", &[("key1", KEY32)]),
            "k8s:enc:aesgcm:v1:key1:"
        ),
        12 + PLAIN.len() + 16,
        "nonce, ciphertext, tag"
    );
    assert_eq!(
        body(
            &aes("secretbox", &[("key1", KEY32)]),
            "k8s:enc:secretbox:v1:key1:"
        ),
        24 + 16 + PLAIN.len(),
        "nonce, tag, ciphertext"
    );
}

/// Values made by other implementations (Python's `cryptography` for AES,
/// NaCl's own test vector for secretbox) read back: the format is the
/// standard one upstream writes.
#[test]
fn reads_values_other_implementations_wrote() {
    let plain = br#"{"kind":"Secret","data":{"a":"b"}}"#;
    let cbc = [
        b"k8s:enc:aescbc:v1:key1:".to_vec(),
        hex("6465666768696a6b6c6d6e6f7071727344283a8a80a45cba29966b60a5c5bdab63e500cef0f6b33ba3e6a39900c26e205d8689e7b29c69bd297aa3dcc970f1e9"),
    ]
    .concat();
    let t = secrets(&[&aes("aescbc", &[("key1", KEY32)])]);
    assert_eq!(read(&t, &cbc).unwrap().0, plain);

    let gcm = [
        b"k8s:enc:aesgcm:v1:key1:".to_vec(),
        hex("c8c9cacbcccdcecfd0d1d2d34d0affd760570913fcc4cd21b30417845c329968a54e3f29af9526ea2cdd93e7834777837f899703651d1c1d790ba57a5648"),
    ]
    .concat();
    let t = secrets(&[&aes("aesgcm", &[("key1", KEY16)])]);
    assert_eq!(read(&t, &gcm).unwrap().0, plain, "AAD is the etcd key");

    let key = hex("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389");
    let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key);
    let boxed = [
        b"k8s:enc:secretbox:v1:n:".to_vec(),
        hex("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37"),
        hex(concat!(
            "f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce48332ea7164d96a4",
            "476fb8c531a1186ac0dfc17c98dce87b4da7f011ec48c97271d2c20f9b928fe2270d6fb863d51738",
            "b48eeee314a7cc8ab932164548e526ae90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de",
            "56244a9e88d5f9b37973f622a43d14a6599b1f654cb45a74e355a5"
        )),
    ]
    .concat();
    let t = secrets(&[&aes("secretbox", &[("n", &key)])]);
    let message = hex(concat!(
        "be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffce5ecbaaf33bd751a",
        "1ac728d45e6c61296cdc3c01233561f41db66cce314adb310e3be8250c46f06dceea3a7fa1348057",
        "e2f6556ad6b1318a024a838f21af1fde048977eb48f59ffd4924ca1c60902e52f0a089bc76897040",
        "e082f937763848645e0705"
    ));
    assert_eq!(read(&t, &boxed).unwrap().0, message);
}

#[test]
fn rotation_reads_old_keys_and_marks_them_stale() {
    let old = secrets(&[&aes("aescbc", &[("key1", KEY32)])]);
    let stored = write(&old);
    // Step 1: key2 added second; writes still use key1.
    let added = secrets(&[&aes("aescbc", &[("key1", KEY32), ("key2", OTHER32)])]);
    assert_eq!(read(&added, &stored).unwrap(), (PLAIN.to_vec(), false));
    assert!(write(&added).starts_with(b"k8s:enc:aescbc:v1:key1:"));
    // Step 2: key2 first; key1 values read, stale, and writes use key2.
    let promoted = secrets(&[&aes("aescbc", &[("key2", OTHER32), ("key1", KEY32)])]);
    assert_eq!(read(&promoted, &stored).unwrap(), (PLAIN.to_vec(), true));
    let rewritten = write(&promoted);
    assert!(rewritten.starts_with(b"k8s:enc:aescbc:v1:key2:"));
    assert_eq!(
        read(&promoted, &rewritten).unwrap(),
        (PLAIN.to_vec(), false)
    );
    // Step 3: key1 removed; the rewritten value still reads, the old one not.
    let retired = secrets(&[&aes("aescbc", &[("key2", OTHER32)])]);
    assert_eq!(read(&retired, &rewritten).unwrap().0, PLAIN);
    assert_eq!(
        read(&retired, &stored),
        Err(TransformError::NoMatchingKey("AES"))
    );
}

#[test]
fn a_later_provider_is_stale_too() {
    // Moving from aescbc to secretbox: the aescbc value reads, stale.
    let stored = write(&secrets(&[&aes("aescbc", &[("a", KEY32)])]));
    let moved = secrets(&[
        &aes("secretbox", &[("s", KEY32)]),
        &aes("aescbc", &[("a", KEY32)]),
    ]);
    assert_eq!(read(&moved, &stored).unwrap(), (PLAIN.to_vec(), true));
    assert!(write(&moved).starts_with(b"k8s:enc:secretbox:v1:s:"));
}

#[test]
fn plaintext_reads_only_with_identity() {
    let cases: [(&str, Vec<String>, Result<bool, TransformError>); 4] = [
        (
            "encryption only",
            vec![aes("aescbc", &[("key1", KEY32)])],
            Err(TransformError::NoMatchingPrefix),
        ),
        (
            "identity after: stale",
            vec![aes("aescbc", &[("key1", KEY32)]), IDENTITY.to_string()],
            Ok(true),
        ),
        (
            "identity first",
            vec![IDENTITY.to_string(), aes("aescbc", &[("key1", KEY32)])],
            Ok(false),
        ),
        ("identity alone", vec![IDENTITY.to_string()], Ok(false)),
    ];
    for (name, providers, want) in cases {
        let providers: Vec<&str> = providers.iter().map(String::as_str).collect();
        let got = read(&secrets(&providers), PLAIN).map(|(plain, stale)| {
            assert_eq!(plain, PLAIN, "{name}");
            stale
        });
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn identity_first_writes_plaintext_and_still_reads_encrypted() {
    // Upstream's way out of encryption: identity first, the old provider after.
    let stored = write(&secrets(&[&aes("aesgcm", &[("g", KEY32)])]));
    let decrypting = secrets(&[IDENTITY, &aes("aesgcm", &[("g", KEY32)])]);
    assert_eq!(read(&decrypting, &stored).unwrap(), (PLAIN.to_vec(), true));
    assert_eq!(write(&decrypting), PLAIN);
}

#[test]
fn unknown_keys_and_providers_are_errors() {
    let stored = write(&secrets(&[&aes("aescbc", &[("key2", KEY32)])]));
    let cases: [(&str, Vec<String>, TransformError); 4] = [
        (
            "another key name",
            vec![aes("aescbc", &[("key1", KEY32)])],
            TransformError::NoMatchingKey("AES"),
        ),
        (
            "another key name, identity too",
            vec![aes("aescbc", &[("key1", KEY32)]), IDENTITY.to_string()],
            TransformError::NoMatchingKey("AES"),
        ),
        // Identity's own refusal gives way to the list's, as upstream's.
        (
            "identity only",
            vec![IDENTITY.to_string()],
            TransformError::NoMatchingPrefix,
        ),
        (
            "another provider",
            vec![aes("secretbox", &[("key2", KEY32)])],
            TransformError::NoMatchingPrefix,
        ),
    ];
    for (name, providers, want) in cases {
        let providers: Vec<&str> = providers.iter().map(String::as_str).collect();
        assert_eq!(read(&secrets(&providers), &stored), Err(want), "{name}");
    }
}

#[test]
fn a_wrong_secret_under_the_same_name_does_not_decrypt() {
    for kind in ["aesgcm", "secretbox"] {
        let stored = write(&secrets(&[&aes(kind, &[("k", KEY32)])]));
        let wrong = secrets(&[&aes(kind, &[("k", OTHER32)])]);
        assert_eq!(
            read(&wrong, &stored),
            Err(TransformError::Authentication),
            "{kind}"
        );
    }
    // CBC is not authenticated: only the padding can tell (almost always).
    let stored = write(&secrets(&[&aes("aescbc", &[("k", KEY32)])]));
    let wrong = secrets(&[&aes("aescbc", &[("k", OTHER32)])]);
    assert_ne!(read(&wrong, &stored).map(|r| r.0), Ok(PLAIN.to_vec()));
}

#[test]
fn aesgcm_values_are_bound_to_their_key() {
    let t = secrets(&[&aes("aesgcm", &[("key1", KEY32)])]);
    let stored = write(&t);
    assert_eq!(
        t.transform_from_storage(&stored, b"/registry/secrets/default/other")
            .map(|r| r.1),
        Err(TransformError::Authentication)
    );
    // CBC and secretbox use no authenticated data: a moved value reads.
    for kind in ["aescbc", "secretbox"] {
        let t = secrets(&[&aes(kind, &[("key1", KEY32)])]);
        let stored = write(&t);
        let (plain, _) = t
            .transform_from_storage(&stored, b"/registry/secrets/default/other")
            .unwrap();
        assert_eq!(plain.as_ref(), PLAIN, "{kind}");
    }
}

#[test]
fn truncated_and_tampered_values_are_errors() {
    let cbc = secrets(&[&aes("aescbc", &[("k", KEY32)])]);
    let prefix = b"k8s:enc:aescbc:v1:k:".to_vec();
    let cases: [(&str, Vec<u8>, TransformError); 3] = [
        (
            "no IV",
            [prefix.clone(), vec![0; 15]].concat(),
            TransformError::TooShort,
        ),
        (
            "partial block",
            [prefix.clone(), vec![0; 16 + 17]].concat(),
            TransformError::NotBlockMultiple,
        ),
        (
            "IV only",
            [prefix, vec![0; 16]].concat(),
            TransformError::InvalidPkcs7Data,
        ),
    ];
    for (name, stored, want) in cases {
        assert_eq!(read(&cbc, &stored), Err(want), "{name}");
    }
    let gcm = secrets(&[&aes("aesgcm", &[("k", KEY32)])]);
    let mut stored = write(&gcm);
    let last = stored.len() - 1;
    stored[last] ^= 1;
    assert_eq!(read(&gcm, &stored), Err(TransformError::Authentication));
    assert_eq!(
        read(&gcm, b"k8s:enc:aesgcm:v1:k:short"),
        Err(TransformError::TooShort)
    );
    let sb = secrets(&[&aes("secretbox", &[("k", KEY32)])]);
    assert_eq!(
        read(&sb, b"k8s:enc:secretbox:v1:k:short"),
        Err(TransformError::TooShort)
    );
}

#[test]
fn rules_resolve_exact_then_group_then_everything() {
    let text = format!(
        "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets, deployments.apps]
  providers: [{}]
- resources: ['*.apps']
  providers: [{}]
- resources: ['*.*']
  providers: [{}]
",
        aes("aescbc", &[("exact", KEY32)]),
        aes("aesgcm", &[("group", KEY32)]),
        aes("secretbox", &[("all", KEY32)]),
    );
    let c = EncryptionConfig::parse(&text).unwrap();
    let cases = [
        ("", "secrets", "k8s:enc:aescbc:v1:exact:"),
        ("apps", "deployments", "k8s:enc:aescbc:v1:exact:"),
        ("apps", "statefulsets", "k8s:enc:aesgcm:v1:group:"),
        ("", "configmaps", "k8s:enc:secretbox:v1:all:"),
        ("batch", "jobs", "k8s:enc:secretbox:v1:all:"),
    ];
    for (group, resource, prefix) in cases {
        let stored = c
            .transformer_for(group, resource)
            .transform_to_storage(PLAIN.to_vec(), KEY.as_bytes())
            .unwrap();
        assert!(
            stored.starts_with(prefix.as_bytes()),
            "{resource}.{group}: {}",
            String::from_utf8_lossy(&stored[..prefix.len()])
        );
    }
    assert_eq!(
        c.summary()[0],
        ("secrets".to_string(), vec!["aescbc"]),
        "rules in file order"
    );
    assert_eq!(c.summary()[3].0, "*.*");
}

#[test]
fn the_core_wildcard_and_unconfigured_resources() {
    let c =
        EncryptionConfig::parse(&config(&["'*.'"], &[&aes("aescbc", &[("k", KEY32)])])).unwrap();
    let core = c.transformer_for("", "configmaps");
    assert!(write(&core).starts_with(b"k8s:enc:aescbc:v1:k:"));
    // Not configured: stored as is, but encrypted data is refused.
    let apps = c.transformer_for("apps", "deployments");
    assert_eq!(write(&apps), PLAIN);
    assert_eq!(
        read(&apps, &write(&core)),
        Err(TransformError::IdentityReadEncrypted)
    );
}

#[test]
fn keys_pick_their_resources_transformer() {
    let c = EncryptionConfig::parse(&config(
        &["secrets", "deployments.apps"],
        &[&aes("aescbc", &[("k", KEY32)])],
    ))
    .unwrap();
    let values = ValueTransformers::new(
        c,
        "/registry/",
        [("secrets", ""), ("configmaps", ""), ("deployments", "apps")],
    );
    let encrypted = |key: &str| {
        values
            .transform_to_storage(key, PLAIN.to_vec())
            .unwrap()
            .starts_with(ENCRYPTED_PREFIX)
    };
    assert!(encrypted("/registry/secrets/default/s1"));
    assert!(encrypted("/registry/secrets/kube-system/s2"));
    assert!(encrypted("/registry/deployments/default/d"));
    assert!(!encrypted("/registry/configmaps/default/c"));
    assert!(!encrypted("/registry/ranges/serviceips/10.0.0.1"));
    assert!(!encrypted("/registry/secretsx/default/s"));
    assert!(!encrypted("/other/secrets/default/s"));
    let stored = values.transform_to_storage(KEY, PLAIN.to_vec()).unwrap();
    let (plain, stale) = values.transform_from_storage(KEY, &stored).unwrap();
    assert_eq!((plain.as_ref(), stale), (PLAIN, false));
    // Without a configuration nothing is transformed, and encrypted data is refused.
    let none = ValueTransformers::default();
    assert_eq!(
        none.transform_to_storage(KEY, PLAIN.to_vec()).unwrap(),
        PLAIN
    );
    assert_eq!(
        none.transform_from_storage(KEY, &stored).map(|r| r.1),
        Err(TransformError::IdentityReadEncrypted)
    );
}

#[test]
fn the_legacy_kind_and_json_parse() {
    let legacy = format!(
        "kind: EncryptionConfig\napiVersion: v1\nresources:\n- resources: [secrets]\n  providers: [{}]\n",
        aes("aescbc", &[("k", KEY32)])
    );
    assert!(EncryptionConfig::parse(&legacy).is_ok());
    let json = format!(
        r#"{{"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration","resources":[{{"resources":["secrets"],"providers":[{{"secretbox":{{"keys":[{{"name":"k","secret":"{KEY32}"}}]}}}},{{"identity":{{}}}}]}}]}}"#
    );
    let c = EncryptionConfig::parse(&json).unwrap();
    assert_eq!(c.summary()[0].1, ["secretbox", "identity"]);
}

#[test]
fn bad_files_are_refused_saying_why() {
    let cbc = aes("aescbc", &[("k", KEY32)]);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "kms",
            config(&["secrets"], &["{kms: {name: p, endpoint: 'unix:///kms.sock'}}"]),
            "the kms provider is not supported",
        ),
        (
            "unknown provider",
            config(&["secrets"], &["{aesctr: {keys: []}}"]),
            "Unsupported value: \"aesctr\"",
        ),
        (
            "short key",
            config(&["secrets"], &[&aes("aescbc", &[("k", "c2hvcnQ=")])]),
            "secret is not of the expected length, got 5, expected one of [16, 24, 32]",
        ),
        (
            "secretbox takes 32 bytes",
            config(&["secrets"], &[&aes("secretbox", &[("k", KEY16)])]),
            "got 16, expected one of [32]",
        ),
        (
            "bad base64",
            config(&["secrets"], &[&aes("aesgcm", &[("k", "not base64!")])]),
            "resources[0].providers[0].aesgcm.keys[0].secret: Invalid value: \"REDACTED\": secrets must be base64 encoded",
        ),
        (
            "no providers",
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers: []\n".to_string(),
            "at least one resources[0].providers is required",
        ),
        (
            "no resources",
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources: []\n".to_string(),
            "at least one resources is required",
        ),
        (
            "no keys",
            config(&["secrets"], &["{aescbc: {keys: []}}"]),
            "aescbc.keys: Required value: at least one keys is required",
        ),
        (
            "a key without a name",
            config(&["secrets"], &[&format!("{{aescbc: {{keys: [{{secret: \"{KEY32}\"}}]}}}}")]),
            "name is a mandatory field for a key",
        ),
        (
            "two providers in one element",
            config(&["secrets"], &[&format!("{{identity: {{}}, aescbc: {{keys: [{{name: k, secret: \"{KEY32}\"}}]}}}}")]),
            "more than one provider specified in a single element",
        ),
        (
            "an empty provider",
            config(&["secrets"], &["{}"]),
            "provider does not contain any of the expected providers",
        ),
        (
            "capital letters",
            config(&["Secrets"], &[&cbc]),
            "resource name should not contain capital letters",
        ),
        ("a bare star", config(&["'*'"], &[&cbc]), "use '*.' to encrypt all the resources"),
        (
            "overlap",
            config(&["secrets", "'*.'"], &[&cbc]),
            "using overlapping resources",
        ),
        (
            "a duplicate",
            config(&["secrets", "secrets"], &[&cbc]),
            "the same resource cannot be specified multiple times",
        ),
        (
            "events.k8s.io",
            config(&["events.events.k8s.io"], &[&cbc]),
            "Use 'events' instead",
        ),
        (
            "across groups",
            config(&["'secrets.*'"], &[&cbc]),
            "encrypting the same resource across groups is not supported",
        ),
        (
            "allocations",
            config(&["serviceipallocations"], &[&cbc]),
            "resources which do not have REST API/s cannot be encrypted",
        ),
        (
            "masked by an earlier rule",
            format!(
                "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: ['*.*']\n  providers: [{cbc}]\n- resources: [secrets]\n  providers: [{cbc}]\n"
            ),
            "resource \"secrets\" is masked by earlier rule \"*.*\"",
        ),
        (
            "wrong kind",
            "apiVersion: v1\nkind: ConfigMap\n".to_string(),
            "got unexpected config type",
        ),
        ("not YAML", "resources: [".to_string(), "error while parsing file"),
    ];
    for (name, text, want) in cases {
        let err = EncryptionConfig::parse(&text)
            .map(|c| format!("{c:?}"))
            .expect_err(name)
            .to_string();
        assert!(err.contains(want), "{name}: {err}");
        assert!(!err.contains(KEY32), "{name}: a secret in the error");
    }
}

#[test]
fn several_errors_are_all_reported() {
    let text = config(
        &["secrets"],
        &[&aes("aescbc", &[("k", "c2hvcnQ=")]), "{kms: {name: x}}"],
    );
    let err = EncryptionConfig::parse(&text).unwrap_err().to_string();
    assert!(err.contains("providers[0].aescbc.keys[0].secret"), "{err}");
    assert!(err.contains("providers[1].kms"), "{err}");
}

#[test]
fn the_flag_reads_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enc.yaml");
    assert!(matches!(
        EncryptionConfig::from_flag(path.to_str().unwrap()),
        Err(ConfigError::Read { .. })
    ));
    std::fs::write(&path, "").unwrap();
    assert!(matches!(
        EncryptionConfig::from_flag(path.to_str().unwrap()),
        Err(ConfigError::Empty(_))
    ));
    std::fs::write(
        &path,
        config(&["secrets"], &[&aes("aescbc", &[("k", KEY32)])]),
    )
    .unwrap();
    let c = EncryptionConfig::from_flag(path.to_str().unwrap()).unwrap();
    let debug = format!("{c:?}");
    assert!(
        debug.contains("enc.yaml") && debug.contains("aescbc"),
        "{debug}"
    );
    assert!(!debug.contains(KEY32), "Debug shows no key: {debug}");
}

#[test]
fn transformations_are_counted_as_upstream_labels_them() {
    let t = secrets(&[&aes("aescbc", &[("metered", KEY32)]), IDENTITY]);
    let count = |kind: &str, prefix: &str, status: &str| {
        OPERATIONS.with_label_values(&[kind, prefix, status]).get()
    };
    let (w, r, id, bad) = (
        count("to_storage", "k8s:enc:aescbc:v1:", "OK"),
        count("from_storage", "k8s:enc:aescbc:v1:", "OK"),
        count("from_storage", "identity", "OK"),
        count("from_storage", "k8s:enc:aescbc:v1:", "unknown-non-grpc"),
    );
    let stored = write(&t);
    read(&t, &stored).unwrap();
    read(&t, PLAIN).unwrap();
    let _ = read(&t, b"k8s:enc:aescbc:v1:gone:0123456789abcdef");
    // Other tests run at once: at least this test's operations were counted.
    assert!(count("to_storage", "k8s:enc:aescbc:v1:", "OK") > w);
    assert!(count("from_storage", "k8s:enc:aescbc:v1:", "OK") > r);
    assert!(count("from_storage", "identity", "OK") > id);
    assert!(count("from_storage", "k8s:enc:aescbc:v1:", "unknown-non-grpc") > bad);
}

#[test]
fn a_bad_file_is_a_flag_error() {
    use clap::Parser;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enc.yaml");
    std::fs::write(&path, config(&["secrets"], &["{kms: {name: p}}"])).unwrap();
    let err = crate::options::Options::try_parse_from([
        "kube-apiserver".to_string(),
        "--etcd-servers=http://127.0.0.1:2379".to_string(),
        format!("--encryption-provider-config={}", path.display()),
    ])
    .unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    assert!(
        err.to_string().contains("kms provider is not supported"),
        "{err}"
    );
}
