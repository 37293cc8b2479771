//! Kubeconfigs with everything embedded: one cluster (the apiserver URL and
//! the cluster CA as `certificate-authority-data`), one user (its client
//! certificate and key as `client-certificate-data`/`client-key-data`), one
//! context `<user>@<cluster>` that is the current one, as kubeadm writes them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Kubeconfig {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub clusters: Vec<NamedCluster>,
    pub contexts: Vec<NamedContext>,
    pub current_context: String,
    pub preferences: Preferences,
    pub users: Vec<NamedUser>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NamedCluster {
    pub cluster: Cluster,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Cluster {
    pub certificate_authority_data: String,
    pub server: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NamedContext {
    pub context: Context,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Context {
    pub cluster: String,
    pub user: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NamedUser {
    pub name: String,
    pub user: User,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct User {
    pub client_certificate_data: String,
    pub client_key_data: String,
}

/// What a kubeconfig is made of.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'a> {
    pub cluster: &'a str,
    pub server: &'a str,
    pub ca_pem: &'a str,
    pub user: &'a str,
    pub cert_pem: &'a str,
    pub key_pem: &'a str,
}

impl Kubeconfig {
    pub fn new(p: Parts<'_>) -> Kubeconfig {
        let context = format!("{}@{}", p.user, p.cluster);
        Kubeconfig {
            api_version: "v1".into(),
            kind: "Config".into(),
            clusters: vec![NamedCluster {
                name: p.cluster.into(),
                cluster: Cluster {
                    certificate_authority_data: STANDARD.encode(p.ca_pem),
                    server: p.server.into(),
                },
            }],
            contexts: vec![NamedContext {
                name: context.clone(),
                context: Context {
                    cluster: p.cluster.into(),
                    user: p.user.into(),
                },
            }],
            current_context: context,
            preferences: Preferences {},
            users: vec![NamedUser {
                name: p.user.into(),
                user: User {
                    client_certificate_data: STANDARD.encode(p.cert_pem),
                    client_key_data: STANDARD.encode(p.key_pem),
                },
            }],
        }
    }

    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).expect("a kubeconfig serializes")
    }

    /// An existing kubeconfig: YAML of `kind: Config`, `apiVersion: v1`.
    pub fn parse(text: &str) -> Result<Kubeconfig, String> {
        let k: Kubeconfig =
            serde_yaml_ng::from_str(text).map_err(|e| format!("not a kubeconfig: {e}"))?;
        if k.kind != "Config" || k.api_version != "v1" {
            return Err(format!(
                "not a kubeconfig (apiVersion {:?}, kind {:?}, want v1 Config)",
                k.api_version, k.kind
            ));
        }
        Ok(k)
    }

    /// What `self` (existing) has otherwise than `want` in its current
    /// context: empty when it already says what `want` says.
    pub fn differences(&self, want: &Kubeconfig) -> Vec<&'static str> {
        let (old, new) = (self.current(), want.current());
        let decoded = |s: Option<&str>| s.map(|s| STANDARD.decode(s.trim()).ok());
        let mut diffs = Vec::new();
        let checks = [
            ("names", old.names == new.names),
            ("server", old.server == new.server),
            (
                "certificate-authority-data",
                decoded(old.ca) == decoded(new.ca),
            ),
            (
                "client-certificate-data",
                decoded(old.cert) == decoded(new.cert),
            ),
            ("client-key-data", decoded(old.key) == decoded(new.key)),
        ];
        for (what, same) in checks {
            if !same {
                diffs.push(what);
            }
        }
        diffs
    }

    fn current(&self) -> Current<'_> {
        let context = self
            .contexts
            .iter()
            .find(|c| c.name == self.current_context);
        let cluster =
            context.and_then(|c| self.clusters.iter().find(|n| n.name == c.context.cluster));
        let user = context.and_then(|c| self.users.iter().find(|n| n.name == c.context.user));
        Current {
            names: (
                self.current_context.as_str(),
                cluster.map(|c| c.name.as_str()),
                user.map(|u| u.name.as_str()),
            ),
            server: cluster.map(|c| c.cluster.server.as_str()),
            ca: cluster.map(|c| c.cluster.certificate_authority_data.as_str()),
            cert: user.map(|u| u.user.client_certificate_data.as_str()),
            key: user.map(|u| u.user.client_key_data.as_str()),
        }
    }
}

type Names<'a> = (&'a str, Option<&'a str>, Option<&'a str>);

/// The entries the current context points at.
struct Current<'a> {
    names: Names<'a>,
    server: Option<&'a str>,
    ca: Option<&'a str>,
    cert: Option<&'a str>,
    key: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(cert: &'a str) -> Parts<'a> {
        Parts {
            cluster: "kubernetes",
            server: "https://127.0.0.1:6443",
            ca_pem: "CA",
            user: "system:node:worker-0",
            cert_pem: cert,
            key_pem: "KEY",
        }
    }

    #[test]
    fn renders_what_kubectl_reads() {
        let yaml = Kubeconfig::new(parts("CERT")).to_yaml();
        let k = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
        assert_eq!(
            k.current_context.as_deref(),
            Some("system:node:worker-0@kubernetes")
        );
        let cluster = k.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
        assert_eq!(
            cluster.certificate_authority_data.as_deref(),
            Some(STANDARD.encode("CA").as_str())
        );
        let user = k.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(k.auth_infos[0].name, "system:node:worker-0");
        assert_eq!(
            user.client_certificate_data.as_deref(),
            Some(STANDARD.encode("CERT").as_str())
        );
        assert!(user.client_key_data.is_some());
        assert!(yaml.contains("preferences: {}"), "{yaml}");
    }

    #[test]
    fn differences() {
        let want = Kubeconfig::new(parts("CERT"));
        let parse = |k: &Kubeconfig| Kubeconfig::parse(&k.to_yaml()).unwrap();
        assert_eq!(parse(&want).differences(&want), Vec::<&str>::new());
        let other_cert = Kubeconfig::new(parts("OLD"));
        assert_eq!(
            parse(&other_cert).differences(&want),
            ["client-certificate-data"]
        );
        let mut moved = want.clone();
        moved.clusters[0].cluster.server = "https://10.0.0.1:6443".into();
        assert_eq!(moved.differences(&want), ["server"]);
        let mut renamed = want.clone();
        renamed.current_context = "other".into();
        assert_eq!(
            renamed.differences(&want),
            [
                "names",
                "server",
                "certificate-authority-data",
                "client-certificate-data",
                "client-key-data"
            ]
        );
    }

    #[test]
    fn refuses_what_is_not_a_kubeconfig() {
        for (name, text) in [
            ("not yaml", "{{{"),
            ("other kind", "apiVersion: v1\nkind: Pod\n"),
            ("a list", "- a\n- b\n"),
        ] {
            assert!(Kubeconfig::parse(text).is_err(), "{name}");
        }
    }
}
