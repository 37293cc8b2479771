//! One run: read what the output directory holds, decide file by file
//! (keep, create, renew), and only when every decision is made write the
//! new files. An existing file that cannot be parsed stops the run before
//! anything is written.

use crate::config::ClusterConfig;
use crate::error::Error;
use crate::files;
use crate::kubeconfig::{Kubeconfig, Parts};
use crate::pki::{self, Ca, Validity};
use crate::plan::{self, Authority, CaSpec, CertSpec, KubeconfigSpec, Plan};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use time::OffsetDateTime;

/// The flags of `kube-bootstrap pki`.
#[derive(Debug, Clone)]
pub struct Options {
    pub out_dir: PathBuf,
    /// `--renew-before`: a leaf certificate expiring within this is renewed.
    pub renew_before: Duration,
    /// `--validity` of a new or renewed leaf certificate.
    pub validity: Duration,
    /// `--ca-validity` of a new CA.
    pub ca_validity: Duration,
}

impl Options {
    pub fn validate(&self) -> Result<(), String> {
        if self.validity.is_zero() || self.ca_validity.is_zero() {
            return Err("--validity and --ca-validity must be positive".into());
        }
        if self.renew_before >= self.validity {
            return Err(format!(
                "--renew-before {} is not shorter than --validity {}: every run would renew every certificate",
                pki::go_duration(self.renew_before),
                pki::go_duration(self.validity)
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Created,
    Kept,
    /// Written again, and why.
    Renewed(String),
}

/// What happened to one file (its path relative to the output directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    pub path: String,
    pub action: Action,
}

impl fmt::Display for FileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.action {
            Action::Created => write!(f, "created {}", self.path),
            Action::Kept => write!(f, "kept {}", self.path),
            Action::Renewed(why) => write!(f, "renewed {} ({why})", self.path),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// One entry per file, in the order of the plan.
    pub files: Vec<FileReport>,
    /// What needs a human but did not stop the run.
    pub warnings: Vec<String>,
}

impl Report {
    pub fn action(&self, path: &str) -> Option<&Action> {
        self.files
            .iter()
            .find(|f| f.path == path)
            .map(|f| &f.action)
    }
}

/// Brings `options.out_dir` to what `config` asks for, as of `now`.
pub fn run(
    config: &ClusterConfig,
    options: &Options,
    now: OffsetDateTime,
) -> Result<Report, Error> {
    let plan = Plan::new(config)?;
    let mut run = Run {
        dir: &options.out_dir,
        validity: Validity::new(
            now,
            options.validity,
            options.ca_validity,
            options.renew_before,
        ),
        writes: Vec::new(),
        report: Report::default(),
    };
    let mut cas = HashMap::new();
    for spec in &plan.cas {
        cas.insert(spec.authority, run.ca(spec)?);
    }
    run.service_account()?;
    let mut issued = HashMap::new();
    for spec in &plan.certs {
        let ca_file = format!("{}.crt", plan.ca(spec.ca).stem);
        let pair = run.cert(spec, &cas[&spec.ca], &ca_file)?;
        issued.insert(spec.stem.as_str(), pair);
    }
    for spec in &plan.kubeconfigs {
        let (cert_pem, key_pem) = &issued[spec.cert_stem.as_str()];
        let parts = Parts {
            cluster: &plan.cluster_name,
            server: &plan.server,
            ca_pem: &cas[&Authority::Cluster].cert_pem,
            user: &spec.user,
            cert_pem,
            key_pem,
        };
        run.kubeconfig(spec, parts)?;
    }
    run.encryption_config()?;
    run.commit()
}

struct Run<'a> {
    dir: &'a Path,
    validity: Validity,
    /// Files to write once every decision is made: (relative path, contents, mode).
    writes: Vec<(String, String, u32)>,
    report: Report,
}

impl Run<'_> {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn read(&self, rel: &str) -> Result<Option<String>, Error> {
        let path = self.path(rel);
        files::read(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::InvalidData {
                Error::Unusable {
                    path,
                    reason: source.to_string(),
                }
            } else {
                Error::Read { path, source }
            }
        })
    }

    fn unusable(&self, rel: &str) -> impl FnOnce(String) -> Error {
        let path = self.path(rel);
        move |reason| Error::Unusable { path, reason }
    }

    fn sign(&self, rel: &str) -> impl FnOnce(rcgen::Error) -> Error {
        let path = self.path(rel);
        move |source| Error::Sign { path, source }
    }

    fn stage(&mut self, rel: &str, contents: &str, mode: u32, action: Action) {
        if action == Action::Kept {
            if mode == files::SECRET
                && let Some(mode) = files::too_open(&self.path(rel))
            {
                self.report.warnings.push(format!(
                    "{rel} is readable by others (mode {mode:04o}): chmod 600 it"
                ));
            }
        } else {
            self.writes
                .push((rel.to_string(), contents.to_string(), mode));
        }
        self.report.files.push(FileReport {
            path: rel.to_string(),
            action,
        });
    }

    fn commit(self) -> Result<Report, Error> {
        for (rel, contents, mode) in &self.writes {
            let path = self.path(rel);
            files::write(&path, contents, *mode).map_err(|source| Error::Write { path, source })?;
        }
        Ok(self.report)
    }

    /// A CA is kept as it is, or made when neither of its files exists.
    fn ca(&mut self, spec: &CaSpec) -> Result<Ca, Error> {
        let crt = format!("{}.crt", spec.stem);
        let key = format!("{}.key", spec.stem);
        match (self.read(&crt)?, self.read(&key)?) {
            (None, None) => {
                let (ca, key_pem) = Ca::generate(spec, &self.validity).map_err(self.sign(&crt))?;
                self.stage(&crt, &ca.cert_pem, files::PUBLIC, Action::Created);
                self.stage(&key, &key_pem, files::SECRET, Action::Created);
                Ok(ca)
            }
            (Some(cert_pem), Some(key_pem)) => {
                let info = pki::inspect(&cert_pem).map_err(self.unusable(&crt))?;
                let signer = pki::parse_key(&key_pem).map_err(self.unusable(&key))?;
                let ca =
                    Ca::from_parts(cert_pem, info, signer, &key).map_err(self.unusable(&crt))?;
                if self.validity.due(ca.info.not_after) {
                    self.report.warnings.push(format!(
                        "{crt} expires at {}: kube-bootstrap never renews a CA, and no certificate it signs lasts longer",
                        pki::rfc3339(ca.info.not_after)
                    ));
                }
                self.stage(&crt, &ca.cert_pem, files::PUBLIC, Action::Kept);
                self.stage(&key, &key_pem, files::SECRET, Action::Kept);
                Ok(ca)
            }
            (Some(_), None) => Err(self.incomplete(&crt, &key, "a CA")),
            (None, Some(_)) => Err(self.incomplete(&key, &crt, "a CA")),
        }
    }

    fn incomplete(&self, present: &str, missing: &str, what: &'static str) -> Error {
        Error::Incomplete {
            path: self.path(present),
            missing: self.path(missing).display().to_string(),
            what,
        }
    }

    /// A leaf certificate and its key: (certificate PEM, key PEM).
    fn cert(&mut self, spec: &CertSpec, ca: &Ca, ca_file: &str) -> Result<(String, String), Error> {
        let crt = format!("{}.crt", spec.stem);
        let key_file = format!("{}.key", spec.stem);
        let (key, key_pem, key_action) = match self.read(&key_file)? {
            Some(pem) => (
                pki::parse_key(&pem).map_err(self.unusable(&key_file))?,
                pem,
                Action::Kept,
            ),
            None => {
                let key = pki::generate_key().map_err(self.sign(&key_file))?;
                let pem = key.serialize_pem();
                (key, pem, Action::Created)
            }
        };
        let (cert_pem, cert_action) = match self.read(&crt)? {
            None => (None, Action::Created),
            Some(pem) => {
                let info = pki::inspect(&pem).map_err(self.unusable(&crt))?;
                let reason = if key_action == Action::Created {
                    Some(format!("{key_file} was missing: a new key"))
                } else {
                    pki::renewal_reason(&info, spec, &key, ca, &self.validity, &key_file, ca_file)
                };
                match reason {
                    None => (Some(pem), Action::Kept),
                    Some(why) => (None, Action::Renewed(why)),
                }
            }
        };
        let cert_pem = match cert_pem {
            Some(pem) => pem,
            None => ca
                .issue(spec, &key, &self.validity)
                .map_err(self.sign(&crt))?,
        };
        self.stage(&crt, &cert_pem, files::PUBLIC, cert_action);
        self.stage(&key_file, &key_pem, files::SECRET, key_action);
        Ok((cert_pem, key_pem))
    }

    /// Written when missing or when what it embeds changed; a file that
    /// says the same in another layout is kept.
    fn kubeconfig(&mut self, spec: &KubeconfigSpec, parts: Parts<'_>) -> Result<(), Error> {
        let want = Kubeconfig::new(parts);
        let yaml = want.to_yaml();
        let action = match self.read(&spec.path)? {
            None => Action::Created,
            Some(text) if text == yaml => Action::Kept,
            Some(text) => {
                let old = Kubeconfig::parse(&text).map_err(self.unusable(&spec.path))?;
                let diffs = old.differences(&want);
                if diffs.is_empty() {
                    Action::Kept
                } else {
                    Action::Renewed(format!("{} changed", diffs.join(", ")))
                }
            }
        };
        self.stage(&spec.path, &yaml, files::SECRET, action);
        Ok(())
    }

    /// The service-account key pair: never made again over an existing
    /// `sa.key` (every issued token is signed with it).
    fn service_account(&mut self) -> Result<(), Error> {
        let (key_file, pub_file) = (plan::SA_KEY, plan::SA_PUB);
        let existing_pub = self.read(pub_file)?;
        let (key, key_pem, key_action) = match (self.read(key_file)?, &existing_pub) {
            (None, Some(_)) => {
                return Err(self.incomplete(pub_file, key_file, "the service-account key"));
            }
            (None, None) => {
                let key = pki::generate_key().map_err(self.sign(key_file))?;
                let pem = key.serialize_pem();
                (key, pem, Action::Created)
            }
            (Some(pem), _) => (
                pki::parse_key(&pem).map_err(self.unusable(key_file))?,
                pem,
                Action::Kept,
            ),
        };
        let (pub_pem, pub_action) = match existing_pub {
            None => (key.public_key_pem(), Action::Created),
            Some(existing) => {
                let raw = pki::parse_public_key(&existing).map_err(self.unusable(pub_file))?;
                if raw != key.public_key_raw() {
                    return Err(self.unusable(pub_file)(format!(
                        "it is not the public key of {key_file}"
                    )));
                }
                (existing, Action::Kept)
            }
        };
        self.stage(key_file, &key_pem, files::SECRET, key_action);
        self.stage(pub_file, &pub_pem, files::PUBLIC, pub_action);
        Ok(())
    }

    /// Made once; an existing one is checked and kept.
    fn encryption_config(&mut self) -> Result<(), Error> {
        let rel = plan::ENCRYPTION_CONFIG;
        match self.read(rel)? {
            Some(text) => {
                crate::encryption::parse(&text).map_err(self.unusable(rel))?;
                self.stage(rel, &text, files::SECRET, Action::Kept);
            }
            None => {
                let text = crate::encryption::generate();
                self.stage(rel, &text, files::SECRET, Action::Created);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fixtures::EXAMPLE;
    use crate::pki::CertInfo;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use std::collections::{BTreeMap, BTreeSet};
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    const HOUR: Duration = Duration::from_secs(3600);

    fn config() -> ClusterConfig {
        ClusterConfig::from_yaml(EXAMPLE).unwrap()
    }

    fn options(dir: &Path) -> Options {
        Options {
            out_dir: dir.to_path_buf(),
            renew_before: 720 * HOUR,
            validity: 8760 * HOUR,
            ca_validity: 87600 * HOUR,
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    /// Every file under `dir` and its bytes.
    fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    let rel = path.strip_prefix(root).unwrap().display().to_string();
                    out.insert(rel, std::fs::read(&path).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(dir, dir, &mut out);
        out
    }

    fn read(dir: &Path, rel: &str) -> String {
        std::fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn cert(dir: &Path, rel: &str) -> CertInfo {
        pki::inspect(&read(dir, rel)).unwrap()
    }

    fn actions(report: &Report) -> BTreeMap<&str, &Action> {
        report
            .files
            .iter()
            .map(|f| (f.path.as_str(), &f.action))
            .collect()
    }

    fn on_path(program: &str) -> bool {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
    }

    fn fresh() -> (tempfile::TempDir, Report) {
        let dir = tempfile::tempdir().unwrap();
        let report = run(&config(), &options(dir.path()), now()).unwrap();
        (dir, report)
    }

    #[test]
    fn a_fresh_run_writes_every_file() {
        let (dir, report) = fresh();
        let plan = Plan::new(&config()).unwrap();
        let planned: BTreeSet<String> = plan.files().into_iter().map(|(p, _)| p).collect();
        let written: BTreeSet<String> = snapshot(dir.path()).into_keys().collect();
        assert_eq!(written, planned);
        for want in [
            "ca.crt",
            "ca.key",
            "admin.crt",
            "worker-0.crt",
            "worker-1.key",
            "apiserver.crt",
            "apiserver-kubelet-client.crt",
            "etcd/ca.crt",
            "etcd/controller-0/server.crt",
            "etcd/controller-0/peer.key",
            "apiserver-etcd-client.crt",
            "front-proxy-ca.key",
            "front-proxy-client.crt",
            "sa.key",
            "sa.pub",
            "admin.kubeconfig",
            "kube-controller-manager.kubeconfig",
            "kube-scheduler.kubeconfig",
            "kube-proxy.kubeconfig",
            "cluster-dns.kubeconfig",
            "worker-0.kubeconfig",
            "worker-1.kubeconfig",
            "encryption-config.yaml",
        ] {
            assert!(planned.contains(want), "{want} planned");
            assert_eq!(report.action(want), Some(&Action::Created), "{want}");
        }
        assert_eq!(report.files.len(), planned.len());
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        for path in &planned {
            let mode = std::fs::metadata(dir.path().join(path))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            let secret = path.ends_with(".key") || !path.ends_with(".crt") && path != "sa.pub";
            assert_eq!(mode, if secret { 0o600 } else { 0o644 }, "{path}");
        }
        assert_eq!(report.files[0].to_string(), "created ca.crt");
    }

    #[test]
    fn certificates_verify_against_their_ca() {
        let start = now().replace_nanosecond(0).unwrap();
        let (dir, _) = fresh();
        let d = dir.path();
        for (stem, cn) in [
            ("ca", "kubernetes-ca"),
            ("etcd/ca", "etcd-ca"),
            ("front-proxy-ca", "front-proxy-ca"),
        ] {
            let ca = cert(d, &format!("{stem}.crt"));
            assert!(ca.is_ca && ca.signed_by(&ca), "{stem}");
            assert_eq!(ca.subject, format!("CN={cn}"));
            assert_eq!((ca.not_after - start).whole_hours(), 87600, "{stem}");
        }
        // (certificate, CA, subject, client, server)
        let cases = [
            ("admin", "ca", "O=system:masters, CN=admin", true, false),
            (
                "worker-0",
                "ca",
                "O=system:nodes, CN=system:node:worker-0",
                true,
                true,
            ),
            (
                "kube-controller-manager",
                "ca",
                "CN=system:kube-controller-manager",
                true,
                false,
            ),
            (
                "kube-scheduler",
                "ca",
                "CN=system:kube-scheduler",
                true,
                false,
            ),
            ("kube-proxy", "ca", "CN=system:kube-proxy", true, false),
            ("cluster-dns", "ca", "CN=system:kube-dns", true, false),
            ("apiserver", "ca", "CN=kube-apiserver", false, true),
            (
                "apiserver-kubelet-client",
                "ca",
                "O=system:masters, CN=kube-apiserver-kubelet-client",
                true,
                false,
            ),
            (
                "etcd/controller-0/server",
                "etcd/ca",
                "CN=controller-0",
                true,
                true,
            ),
            (
                "etcd/controller-0/peer",
                "etcd/ca",
                "CN=controller-0",
                true,
                true,
            ),
            (
                "apiserver-etcd-client",
                "etcd/ca",
                "CN=kube-apiserver-etcd-client",
                true,
                false,
            ),
            (
                "front-proxy-client",
                "front-proxy-ca",
                "CN=front-proxy-client",
                true,
                false,
            ),
        ];
        for (stem, ca_stem, subject, client, server) in cases {
            let leaf = cert(d, &format!("{stem}.crt"));
            let ca = cert(d, &format!("{ca_stem}.crt"));
            assert!(leaf.signed_by(&ca), "{stem} signed by {ca_stem}");
            for other in ["ca", "etcd/ca", "front-proxy-ca"]
                .iter()
                .filter(|o| **o != ca_stem)
            {
                assert!(
                    !leaf.signed_by(&cert(d, &format!("{other}.crt"))),
                    "{stem} not by {other}"
                );
            }
            assert_eq!(leaf.subject, subject, "{stem}");
            assert_eq!(
                (leaf.client_auth, leaf.server_auth),
                (client, server),
                "{stem}"
            );
            assert!(!leaf.is_ca, "{stem}");
            assert!(leaf.not_before < start, "{stem} valid now");
            assert_eq!((leaf.not_after - start).whole_hours(), 8760, "{stem}");
            let key = pki::parse_key(&read(d, &format!("{stem}.key"))).unwrap();
            assert_eq!(key.public_key_raw(), leaf.public_key, "{stem} and its key");
        }
        let worker = cert(d, "worker-0.crt");
        assert_eq!(worker.common_name.as_deref(), Some("system:node:worker-0"));
        assert_eq!(worker.organizations, ["system:nodes"]);
        assert_eq!(
            worker.sans.iter().collect::<Vec<_>>(),
            ["DNS:worker-0", "IP:10.240.0.20"]
        );
        assert_eq!(cert(d, "admin.crt").organizations, ["system:masters"]);
        assert_eq!(
            cert(d, "etcd/controller-0/server.crt")
                .sans
                .iter()
                .collect::<Vec<_>>(),
            [
                "DNS:controller-0",
                "DNS:localhost",
                "IP:10.240.0.10",
                "IP:127.0.0.1",
                "IP:::1"
            ]
        );
    }

    #[test]
    fn the_apiserver_certificate_has_every_name() {
        let (dir, _) = fresh();
        let api = cert(dir.path(), "apiserver.crt");
        let want: BTreeSet<String> = [
            "DNS:controller-0",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
            "DNS:localhost",
            "IP:10.240.0.10",
            "IP:10.96.0.1",
            "IP:127.0.0.1",
        ]
        .map(String::from)
        .into();
        assert_eq!(api.sans, want);
    }

    #[test]
    fn kubeconfigs_embed_the_ca_and_their_certificate() {
        let (dir, _) = fresh();
        let d = dir.path();
        let ca = read(d, "ca.crt");
        for (file, stem, user) in [
            ("admin.kubeconfig", "admin", "admin"),
            (
                "kube-controller-manager.kubeconfig",
                "kube-controller-manager",
                "system:kube-controller-manager",
            ),
            (
                "kube-scheduler.kubeconfig",
                "kube-scheduler",
                "system:kube-scheduler",
            ),
            ("kube-proxy.kubeconfig", "kube-proxy", "system:kube-proxy"),
            ("cluster-dns.kubeconfig", "cluster-dns", "system:kube-dns"),
            ("worker-0.kubeconfig", "worker-0", "system:node:worker-0"),
            ("worker-1.kubeconfig", "worker-1", "system:node:worker-1"),
        ] {
            let text = read(d, file);
            let _: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
            let k = kube::config::Kubeconfig::from_yaml(&text).unwrap();
            let decode = |s: &str| String::from_utf8(STANDARD.decode(s).unwrap()).unwrap();
            assert_eq!(k.clusters.len(), 1, "{file}");
            assert_eq!(k.clusters[0].name, "kubernetes");
            let cluster = k.clusters[0].cluster.as_ref().unwrap();
            assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
            assert_eq!(
                decode(cluster.certificate_authority_data.as_ref().unwrap()),
                ca
            );
            assert_eq!(k.auth_infos[0].name, user, "{file}");
            let auth = k.auth_infos[0].auth_info.as_ref().unwrap();
            let cert_pem = decode(auth.client_certificate_data.as_ref().unwrap());
            assert_eq!(cert_pem, read(d, &format!("{stem}.crt")), "{file}");
            assert_eq!(
                cert(d, &format!("{stem}.crt")).common_name.as_deref(),
                Some(user)
            );
            assert!(auth.client_key_data.is_some(), "{file}");
            let context = format!("{user}@kubernetes");
            assert_eq!(k.current_context.as_deref(), Some(context.as_str()));
            assert_eq!(k.contexts[0].name, context);
            let ctx = k.contexts[0].context.as_ref().unwrap();
            assert_eq!(
                (ctx.cluster.as_str(), ctx.user.as_deref()),
                ("kubernetes", Some(user))
            );
        }
        let config = Kubeconfig::parse(&read(d, "admin.kubeconfig")).unwrap();
        let key = STANDARD
            .decode(&config.users[0].user.client_key_data)
            .unwrap();
        assert_eq!(String::from_utf8(key).unwrap(), read(d, "admin.key"));
    }

    #[test]
    fn the_service_account_key_pair_and_encryption_key() {
        let (dir, _) = fresh();
        let d = dir.path();
        let key = pki::parse_key(&read(d, "sa.key")).unwrap();
        assert!(key.is_compatible(&rcgen::PKCS_ECDSA_P256_SHA256));
        assert_eq!(
            pki::parse_public_key(&read(d, "sa.pub")).unwrap(),
            key.public_key_raw()
        );
        assert!(read(d, "sa.pub").starts_with("-----BEGIN PUBLIC KEY-----"));
        let enc = crate::encryption::parse(&read(d, "encryption-config.yaml")).unwrap();
        let provider = enc.resources[0].providers[0].aescbc.as_ref().unwrap();
        assert_eq!(STANDARD.decode(&provider.keys[0].secret).unwrap().len(), 32);
    }

    #[test]
    fn a_second_run_keeps_everything_byte_identical() {
        let (dir, _) = fresh();
        let before = snapshot(dir.path());
        let report = run(&config(), &options(dir.path()), now()).unwrap();
        assert_eq!(snapshot(dir.path()), before);
        for f in &report.files {
            assert_eq!(f.action, Action::Kept, "{f}");
        }
        assert_eq!(report.files.len(), before.len());
        assert_eq!(report.files[0].to_string(), "kept ca.crt");
    }

    #[test]
    fn an_expiring_certificate_is_renewed_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let short = Options {
            validity: 24 * HOUR,
            renew_before: HOUR,
            ..options(d)
        };
        run(&config(), &short, now()).unwrap();
        let before = snapshot(d);
        let report = run(&config(), &options(d), now()).unwrap();
        let after = snapshot(d);
        let plan = Plan::new(&config()).unwrap();
        for spec in &plan.certs {
            let crt = format!("{}.crt", spec.stem);
            match report.action(&crt) {
                Some(Action::Renewed(why)) => {
                    assert!(why.contains("within 720h"), "{crt}: {why}")
                }
                other => panic!("{crt}: {other:?}"),
            }
            let key = format!("{}.key", spec.stem);
            assert_eq!(report.action(&key), Some(&Action::Kept), "{key}");
            assert_eq!(after[&key], before[&key], "{key} is the same key");
            let old = pki::inspect(std::str::from_utf8(&before[&crt]).unwrap()).unwrap();
            let new = cert(d, &crt);
            assert_eq!(new.public_key, old.public_key, "{crt}");
            assert!(
                new.not_after - old.not_after > time::Duration::days(300),
                "{crt}"
            );
            let ca = cert(d, &format!("{}.crt", plan.ca(spec.ca).stem));
            assert!(new.signed_by(&ca), "{crt}");
            assert_eq!((new.subject, new.sans), (old.subject, old.sans), "{crt}");
        }
        for ca in [
            "ca.crt",
            "ca.key",
            "etcd/ca.crt",
            "front-proxy-ca.key",
            "sa.key",
            "sa.pub",
        ] {
            assert_eq!(report.action(ca), Some(&Action::Kept), "{ca}");
            assert_eq!(after[ca], before[ca], "{ca}");
        }
        assert_eq!(
            after["encryption-config.yaml"],
            before["encryption-config.yaml"]
        );
        assert_eq!(
            report.action("worker-0.kubeconfig"),
            Some(&Action::Renewed("client-certificate-data changed".into()))
        );
        let line = report
            .files
            .iter()
            .find(|f| f.path == "admin.crt")
            .unwrap()
            .to_string();
        assert!(
            line.starts_with("renewed admin.crt (it expires at "),
            "{line}"
        );
        // Renewed once: the next run keeps everything.
        let again = run(&config(), &options(d), now()).unwrap();
        assert!(again.files.iter().all(|f| f.action == Action::Kept));
    }

    #[test]
    fn a_new_node_gets_its_files_and_the_rest_is_kept() {
        let (dir, _) = fresh();
        let before = snapshot(dir.path());
        let mut config = config();
        config.nodes.push(crate::config::Machine {
            name: "worker-2".into(),
            addresses: vec!["10.240.0.22".parse().unwrap()],
        });
        let report = run(&config, &options(dir.path()), now()).unwrap();
        let new = ["worker-2.crt", "worker-2.key", "worker-2.kubeconfig"];
        for (path, action) in actions(&report) {
            let want = if new.contains(&path) {
                Action::Created
            } else {
                Action::Kept
            };
            assert_eq!(action, &want, "{path}");
        }
        let after = snapshot(dir.path());
        for (path, bytes) in &before {
            assert_eq!(&after[path], bytes, "{path}");
        }
        let node = cert(dir.path(), "worker-2.crt");
        assert_eq!(node.subject, "O=system:nodes, CN=system:node:worker-2");
        assert!(node.signed_by(&cert(dir.path(), "ca.crt")));
    }

    #[test]
    fn changed_sans_are_reissued_with_the_same_key() {
        let (dir, _) = fresh();
        let d = dir.path();
        let before = snapshot(d);
        let mut config = config();
        config
            .apiserver
            .addresses
            .push("10.240.0.11".parse().unwrap());
        config.nodes[1]
            .addresses
            .push("10.240.0.31".parse().unwrap());
        let report = run(&config, &options(d), now()).unwrap();
        let renewed: BTreeMap<&str, &str> = report
            .files
            .iter()
            .filter_map(|f| match &f.action {
                Action::Renewed(why) => Some((f.path.as_str(), why.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(
            renewed,
            BTreeMap::from([
                ("apiserver.crt", "SANs changed: added IP:10.240.0.11"),
                ("worker-1.crt", "SANs changed: added IP:10.240.0.31"),
                ("worker-1.kubeconfig", "client-certificate-data changed"),
            ])
        );
        assert_eq!(snapshot(d)["apiserver.key"], before["apiserver.key"]);
        assert!(cert(d, "apiserver.crt").sans.contains("IP:10.240.0.11"));
    }

    #[test]
    fn an_unparsable_file_is_refused_and_nothing_is_written() {
        let cases = [
            ("ca.crt", "not a certificate"),
            (
                "ca.key",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            ),
            (
                "etcd/controller-0/server.crt",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            ),
            ("admin.key", "garbage"),
            ("admin.kubeconfig", "apiVersion: v1\nkind: Pod\n"),
            ("worker-0.kubeconfig", "{{{"),
            ("sa.key", ""),
            (
                "sa.pub",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            ),
            ("encryption-config.yaml", "kind: EncryptionConfiguration\n"),
        ];
        for (file, garbage) in cases {
            let (dir, _) = fresh();
            let d = dir.path();
            std::fs::write(d.join(file), garbage).unwrap();
            // Something to do that must not be done: a missing certificate.
            std::fs::remove_file(d.join("kube-proxy.crt")).unwrap();
            let before = snapshot(d);
            let err = run(&config(), &options(d), now()).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, Error::Unusable { .. }), "{file}: {msg}");
            assert!(
                msg.contains(&d.join(file).display().to_string()),
                "{file}: {msg}"
            );
            assert!(msg.contains("refusing to overwrite"), "{file}: {msg}");
            assert_eq!(snapshot(d), before, "{file}: nothing written");
        }
    }

    #[test]
    fn half_a_ca_or_service_account_key_is_refused() {
        for (remove, kept) in [
            ("ca.key", "ca.crt"),
            ("etcd/ca.crt", "etcd/ca.key"),
            ("sa.key", "sa.pub"),
        ] {
            let (dir, _) = fresh();
            std::fs::remove_file(dir.path().join(remove)).unwrap();
            let err = run(&config(), &options(dir.path()), now()).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, Error::Incomplete { .. }), "{remove}: {msg}");
            assert!(
                msg.contains(kept) && msg.contains(remove),
                "{remove}: {msg}"
            );
            assert!(!dir.path().join(remove).exists(), "{remove}");
        }
        // sa.pub alone is derived from sa.key again.
        let (dir, _) = fresh();
        let pub_pem = read(dir.path(), "sa.pub");
        std::fs::remove_file(dir.path().join("sa.pub")).unwrap();
        let report = run(&config(), &options(dir.path()), now()).unwrap();
        assert_eq!(report.action("sa.pub"), Some(&Action::Created));
        assert_eq!(read(dir.path(), "sa.pub"), pub_pem);
    }

    #[test]
    fn a_ca_with_another_key_is_refused() {
        let (dir, _) = fresh();
        let d = dir.path();
        std::fs::copy(d.join("front-proxy-ca.key"), d.join("etcd/ca.key")).unwrap();
        let before = snapshot(d);
        let msg = run(&config(), &options(d), now()).unwrap_err().to_string();
        let want = format!(
            "{}: etcd/ca.key holds another key than this certificate's",
            d.join("etcd/ca.crt").display()
        );
        assert!(msg.starts_with(&want), "{msg}");
        assert_eq!(snapshot(d), before);
    }

    #[test]
    fn a_certificate_of_another_key_or_ca_is_reissued() {
        let (dir, _) = fresh();
        let d = dir.path();
        std::fs::copy(d.join("kube-proxy.crt"), d.join("kube-scheduler.crt")).unwrap();
        std::fs::copy(d.join("front-proxy-client.crt"), d.join("admin.crt")).unwrap();
        std::fs::remove_file(d.join("cluster-dns.key")).unwrap();
        // A new etcd CA (both files removed): what the old one signed is reissued.
        std::fs::remove_file(d.join("etcd/ca.crt")).unwrap();
        std::fs::remove_file(d.join("etcd/ca.key")).unwrap();
        let report = run(&config(), &options(d), now()).unwrap();
        assert_eq!(report.action("etcd/ca.crt"), Some(&Action::Created));
        let etcd_ca = cert(d, "etcd/ca.crt");
        for leaf in [
            "etcd/controller-0/server.crt",
            "etcd/controller-0/peer.crt",
            "apiserver-etcd-client.crt",
        ] {
            assert_eq!(
                report.action(leaf),
                Some(&Action::Renewed("it is not signed by etcd/ca.crt".into())),
                "{leaf}"
            );
            assert!(cert(d, leaf).signed_by(&etcd_ca), "{leaf}");
        }
        assert_eq!(report.action("apiserver.crt"), Some(&Action::Kept));
        let why = |p: &str| match report.action(p) {
            Some(Action::Renewed(why)) => why.clone(),
            other => panic!("{p}: {other:?}"),
        };
        assert_eq!(
            why("kube-scheduler.crt"),
            "it is not the certificate of kube-scheduler.key"
        );
        assert_eq!(why("admin.crt"), "it is not the certificate of admin.key");
        assert_eq!(
            why("cluster-dns.crt"),
            "cluster-dns.key was missing: a new key"
        );
        assert_eq!(report.action("cluster-dns.key"), Some(&Action::Created));
        assert_eq!(
            cert(d, "kube-scheduler.crt").subject,
            "CN=system:kube-scheduler"
        );
    }

    #[test]
    fn openssl_verifies_the_chains() {
        if !on_path("openssl") {
            eprintln!("skipped: no openssl on PATH");
            return;
        }
        let (dir, _) = fresh();
        for (ca, leaf) in [
            ("ca.crt", "admin.crt"),
            ("ca.crt", "worker-0.crt"),
            ("ca.crt", "apiserver.crt"),
            ("etcd/ca.crt", "etcd/controller-0/server.crt"),
            ("etcd/ca.crt", "apiserver-etcd-client.crt"),
            ("front-proxy-ca.crt", "front-proxy-client.crt"),
        ] {
            let out = Command::new("openssl")
                .args(["verify", "-CAfile", ca, leaf])
                .current_dir(dir.path())
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains(": OK"),
                "{leaf}: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let out = Command::new("openssl")
            .args(["verify", "-CAfile", "etcd/ca.crt", "admin.crt"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "admin.crt is not etcd's");
    }

    /// A PKI begun by openssl (as hack/local-up.sh makes one: an RSA CA) is
    /// adopted: its CA kept, new certificates chain to it.
    #[test]
    fn an_openssl_rsa_ca_is_adopted() {
        if !on_path("openssl") {
            eprintln!("skipped: no openssl on PATH");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let status = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
            ])
            .args([
                "-subj",
                "/CN=kubernetes-ca",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
            ])
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        let ca = read(d, "ca.crt");
        let report = run(&config(), &options(d), now()).unwrap();
        assert_eq!(report.action("ca.crt"), Some(&Action::Kept));
        assert_eq!(read(d, "ca.crt"), ca);
        let out = Command::new("openssl")
            .args(["verify", "-CAfile", "ca.crt", "admin.crt", "apiserver.crt"])
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(cert(d, "worker-0.crt").signed_by(&cert(d, "ca.crt")));
        let again = run(&config(), &options(d), now()).unwrap();
        assert!(again.files.iter().all(|f| f.action == Action::Kept));
    }

    #[test]
    fn kubectl_reads_the_kubeconfigs() {
        if !on_path("kubectl") {
            eprintln!("skipped: no kubectl on PATH");
            return;
        }
        let (dir, _) = fresh();
        for (file, stem) in [
            ("admin.kubeconfig", "admin"),
            ("worker-0.kubeconfig", "worker-0"),
        ] {
            let out = Command::new("kubectl")
                .args(["config", "view", "--raw", "--kubeconfig", file])
                .args(["-o", "jsonpath={.users[0].user.client-certificate-data}"])
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let data = STANDARD.decode(out.stdout.trim_ascii()).unwrap();
            assert_eq!(
                String::from_utf8(data).unwrap(),
                read(dir.path(), &format!("{stem}.crt"))
            );
        }
    }

    #[test]
    fn options_are_checked() {
        let d = Path::new("/x");
        assert!(options(d).validate().is_ok());
        let cases = [
            Options {
                validity: Duration::ZERO,
                ..options(d)
            },
            Options {
                renew_before: 8760 * HOUR,
                ..options(d)
            },
        ];
        for o in cases {
            assert!(o.validate().is_err(), "{o:?}");
        }
    }
}
