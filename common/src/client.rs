//! Clients of the apiserver: a kube client from `--kubeconfig` (or the
//! in-cluster / default configuration without one).

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("reading kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("no kubeconfig given and none inferred: {0}")]
    Infer(#[from] kube::config::InferConfigError),
    #[error("building the client: {0}")]
    Build(#[from] kube::Error),
}

/// The CA bundle (PEM) the client trusts the apiserver with, from the
/// kubeconfig's certificate authority.
pub async fn root_ca_pem(kubeconfig: Option<&Path>) -> Option<String> {
    use base64::Engine;
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).ok()?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .ok()?
        }
        None => kube::Config::infer().await.ok()?,
    };
    let certs = config.root_cert?;
    let mut pem = String::new();
    for der in certs {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    (!pem.is_empty()).then_some(pem)
}

/// A client for the apiserver named by `kubeconfig`, identifying itself
/// with `user_agent` (upstream components send `<name>/<version>`).
pub async fn from_kubeconfig(
    kubeconfig: Option<&Path>,
    user_agent: &str,
) -> Result<kube::Client, ClientError> {
    let mut config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|source| {
                ClientError::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                }
            })?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|source| ClientError::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                })?
        }
        None => kube::Config::infer().await?,
    };
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_str(user_agent).unwrap_or(http::HeaderValue::from_static("kube")),
    ));
    Ok(kube::Client::try_from(config)?)
}
