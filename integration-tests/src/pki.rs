//! Certificates and tokens for a test cluster: one CA, a serving certificate
//! for loopback, client certificates (CN = user, O = group) and a static
//! token file in the upstream CSV format.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The admin identity of the kubeconfig: full access through `system:masters`.
pub const ADMIN_USER: &str = "admin";
pub const MASTERS_GROUP: &str = "system:masters";

/// A user of the token file without any group that grants access.
pub const TOKEN_USER: &str = "alice";
pub const TOKEN_USER_GROUPS: [&str; 2] = ["developers", "qa"];

/// PEM files of a cluster's PKI.
#[derive(Debug, Clone)]
pub struct PkiFiles {
    pub ca_cert: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub admin_cert: PathBuf,
    pub admin_key: PathBuf,
    pub token_file: PathBuf,
    /// The service account signing key (ECDSA P-256, PKCS#8).
    pub service_account_key: PathBuf,
}

pub struct Pki {
    ca: Issuer<'static, KeyPair>,
    ca_pem: String,
    pub files: PkiFiles,
    /// Bearer token of a `system:masters` user in the token file.
    pub admin_token: String,
    /// Bearer token of [`TOKEN_USER`].
    pub user_token: String,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").field("files", &self.files).finish()
    }
}

/// A PEM certificate and its PEM private key.
#[derive(Debug, Clone)]
pub struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    /// Generates everything and writes the PEM files and the token file into `dir`.
    pub fn generate(dir: &Path) -> Result<Self> {
        let ca_key = KeyPair::generate().context("generating the CA key")?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "integration-tests-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_pem = ca_params.self_signed(&ca_key)?.pem();
        let ca = Issuer::new(ca_params, ca_key);

        let files = PkiFiles {
            ca_cert: dir.join("ca.crt"),
            serving_cert: dir.join("apiserver.crt"),
            serving_key: dir.join("apiserver.key"),
            admin_cert: dir.join("admin.crt"),
            admin_key: dir.join("admin.key"),
            token_file: dir.join("tokens.csv"),
            service_account_key: dir.join("sa.key"),
        };
        let admin_token = random_token();
        let user_token = random_token();
        let pki = Self {
            ca,
            ca_pem,
            files,
            admin_token,
            user_token,
        };

        write(&pki.files.ca_cert, &pki.ca_pem)?;
        let serving = pki.serving_cert()?;
        write(&pki.files.serving_cert, &serving.cert_pem)?;
        write(&pki.files.serving_key, &serving.key_pem)?;
        let admin = pki.client_cert(ADMIN_USER, Some(MASTERS_GROUP))?;
        write(&pki.files.admin_cert, &admin.cert_pem)?;
        write(&pki.files.admin_key, &admin.key_pem)?;
        write(&pki.files.token_file, &pki.token_file_contents())?;
        let sa = KeyPair::generate().context("generating the service account key")?;
        write(&pki.files.service_account_key, &sa.serialize_pem())?;
        Ok(pki)
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A serving certificate for every name a client may use for the apiserver here.
    fn serving_cert(&self) -> Result<CertAndKey> {
        let names = [
            "localhost",
            "127.0.0.1",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "10.96.0.1",
        ];
        let mut params = CertificateParams::new(names.map(String::from).to_vec())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate for `user` with at most one group (rcgen keeps a
    /// single value per distinguished-name attribute).
    pub fn client_cert(&self, user: &str, group: Option<&str>) -> Result<CertAndKey> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, user);
        if let Some(group) = group {
            params
                .distinguished_name
                .push(DnType::OrganizationName, group);
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Result<CertAndKey> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.ca)?;
        Ok(CertAndKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Upstream `--token-auth-file` format: `token,user,uid,"group1,group2"`.
    fn token_file_contents(&self) -> String {
        format!(
            "{},admin-token,uid-admin-token,\"{MASTERS_GROUP}\"\n{},{TOKEN_USER},uid-{TOKEN_USER},\"{}\"\n",
            self.admin_token,
            self.user_token,
            TOKEN_USER_GROUPS.join(",")
        )
    }
}

fn write(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

/// 32 hex characters from the process's random hasher keys: unguessable
/// enough for a loopback test cluster without another dependency.
fn random_token() -> String {
    (0..2)
        .map(|i| {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u64(i);
            format!("{:016x}", hasher.finish())
        })
        .collect()
}

/// A fresh CA and, signed by it, a TLS server configuration for 127.0.0.1
/// (HTTP/1.1): what a test's own HTTPS server (a webhook) needs, with the
/// CA's PEM for the `caBundle` that trusts it.
pub fn loopback_server_tls() -> (tokio_rustls::rustls::ServerConfig, String) {
    use tokio_rustls::rustls;
    let ca_key = KeyPair::generate().expect("a key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca_params.self_signed(&ca_key).expect("the CA").pem();
    let ca = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("a key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("parameters")
        .signed_by(&key, &ca)
        .expect("the certificate");
    let mut config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .expect("a serving configuration");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (config, ca_pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_files_and_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::generate(dir.path()).unwrap();
        let cases = [
            ("ca", &pki.files.ca_cert, "BEGIN CERTIFICATE"),
            ("serving cert", &pki.files.serving_cert, "BEGIN CERTIFICATE"),
            ("serving key", &pki.files.serving_key, "PRIVATE KEY"),
            ("admin cert", &pki.files.admin_cert, "BEGIN CERTIFICATE"),
            ("admin key", &pki.files.admin_key, "PRIVATE KEY"),
        ];
        for (name, path, marker) in cases {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.contains(marker), "{name}: {text}");
        }
        let tokens = std::fs::read_to_string(&pki.files.token_file).unwrap();
        let lines: Vec<&str> = tokens.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with(&format!("{},admin-token,", pki.admin_token)));
        assert!(lines[1].ends_with("\"developers,qa\""), "{}", lines[1]);
        assert_eq!(pki.admin_token.len(), 32);
        assert_ne!(pki.admin_token, pki.user_token);
    }
}
