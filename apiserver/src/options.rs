//! Command-line flags, named as upstream's kube-apiserver names them.

use clap::Parser;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "kube-apiserver",
    version,
    about = "The Kubernetes API server, backed by etcd.",
    // A flag given twice: the last one wins, as with upstream's pflag.
    args_override_self = true
)]
pub struct Options {
    /// etcd servers to connect to (scheme://ip:port), comma separated.
    #[arg(long = "etcd-servers", value_delimiter = ',', required = true)]
    pub etcd_servers: Vec<String>,
    /// The prefix to prepend to all resource paths in etcd.
    #[arg(long = "etcd-prefix", default_value = "/registry")]
    pub etcd_prefix: String,
    /// SSL Certificate Authority file used to secure etcd communication.
    #[arg(long = "etcd-cafile")]
    pub etcd_cafile: Option<PathBuf>,
    /// SSL certification file used to secure etcd communication.
    #[arg(long = "etcd-certfile")]
    pub etcd_certfile: Option<PathBuf>,
    /// SSL key file used to secure etcd communication.
    #[arg(long = "etcd-keyfile")]
    pub etcd_keyfile: Option<PathBuf>,
    /// The interval of compaction requests; 0 disables compaction from the apiserver.
    #[arg(long = "etcd-compaction-interval", default_value = "5m", value_parser = parse_duration)]
    pub etcd_compaction_interval: Duration,
    /// The file containing configuration for encryption providers to be used for storing secrets in etcd (an EncryptionConfiguration); read and checked at start.
    #[arg(long = "encryption-provider-config", value_name = "FILE", value_parser = crate::storage::encryption::EncryptionConfig::from_flag)]
    pub encryption_provider_config: Option<crate::storage::encryption::EncryptionConfig>,

    /// The port on which to serve HTTPS with authentication and authorization.
    #[arg(long = "secure-port", default_value_t = 6443)]
    pub secure_port: u16,
    /// The IP address on which to listen for the --secure-port port.
    #[arg(long = "bind-address", default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// The IP address on which to advertise the apiserver to members of the cluster.
    #[arg(long = "advertise-address")]
    pub advertise_address: Option<IpAddr>,
    /// File containing the default x509 Certificate for HTTPS.
    #[arg(long = "tls-cert-file")]
    pub tls_cert_file: Option<PathBuf>,
    /// File containing the default x509 private key matching --tls-cert-file.
    #[arg(long = "tls-private-key-file")]
    pub tls_private_key_file: Option<PathBuf>,
    /// The directory where the TLS certs are located; a self-signed pair is written there when none is given.
    #[arg(long = "cert-dir", default_value = "/var/run/kubernetes")]
    pub cert_dir: PathBuf,
    /// Any request presenting a client certificate signed by one of the authorities in this file is authenticated.
    #[arg(long = "client-ca-file")]
    pub client_ca_file: Option<PathBuf>,
    /// Path to a client cert file for TLS to the kubelets.
    #[arg(long = "kubelet-client-certificate")]
    pub kubelet_client_certificate: Option<PathBuf>,
    /// Path to a client key file for TLS to the kubelets.
    #[arg(long = "kubelet-client-key")]
    pub kubelet_client_key: Option<PathBuf>,
    /// Path to a cert file for the certificate authority of the kubelets' serving certificates.
    #[arg(long = "kubelet-certificate-authority")]
    pub kubelet_certificate_authority: Option<PathBuf>,
    /// List of the preferred NodeAddressTypes to use for kubelet connections.
    #[arg(long = "kubelet-preferred-address-types", default_value = crate::kubelet::DEFAULT_ADDRESS_TYPES)]
    pub kubelet_preferred_address_types: String,
    /// If set, the file that will be used to secure the secure port of the API server via token authentication.
    #[arg(long = "token-auth-file")]
    pub token_auth_file: Option<PathBuf>,

    /// The private key (PEM, RSA or ECDSA P-256) service account tokens are signed with.
    #[arg(long = "service-account-signing-key-file")]
    pub service_account_signing_key_file: Option<PathBuf>,
    /// More public keys (PEM) tokens are verified with; may be repeated.
    #[arg(long = "service-account-key-file")]
    pub service_account_key_file: Vec<PathBuf>,
    /// The `iss` of issued tokens (the first) and those accepted; may be repeated.
    #[arg(long = "service-account-issuer")]
    pub service_account_issuer: Vec<String>,
    /// Audiences a token must name (default: the issuers).
    #[arg(long = "api-audiences", value_delimiter = ',')]
    pub api_audiences: Vec<String>,
    /// The longest lifetime of an issued token.
    #[arg(long = "service-account-max-token-expiration", value_parser = common::cli::parse_duration)]
    pub service_account_max_token_expiration: Option<Duration>,
    /// Authorizers in order (AlwaysAllow, AlwaysDeny, RBAC); the first
    /// that allows or denies decides.
    #[arg(long = "authorization-mode", default_value = "AlwaysAllow")]
    pub authorization_mode: String,
    /// Admission plugins to enable besides upstream's default ones.
    #[arg(long = "enable-admission-plugins", value_delimiter = ',')]
    pub enable_admission_plugins: Vec<String>,
    /// Admission plugins to disable, default ones included.
    #[arg(long = "disable-admission-plugins", value_delimiter = ',')]
    pub disable_admission_plugins: Vec<String>,
    /// How long pods tolerate a not-ready node unless they say (DefaultTolerationSeconds).
    #[arg(long = "default-not-ready-toleration-seconds", default_value_t = 300)]
    pub default_not_ready_toleration_seconds: i64,
    /// How long pods tolerate an unreachable node unless they say.
    #[arg(long = "default-unreachable-toleration-seconds", default_value_t = 300)]
    pub default_unreachable_toleration_seconds: i64,
    /// Bearer tokens of `bootstrap.kubernetes.io/token` Secrets in kube-system authenticate.
    #[arg(long = "enable-bootstrap-token-auth", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub enable_bootstrap_token_auth: bool,
    /// Requests without credentials are served as system:anonymous (group
    /// system:unauthenticated) and authorized as such; off when
    /// AlwaysAllow authorizes, as upstream.
    #[arg(long = "anonymous-auth", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub anonymous_auth: bool,
    /// The audit policy (audit.k8s.io/v1 Policy); auditing needs it and --audit-log-path.
    #[arg(long = "audit-policy-file")]
    pub audit_policy_file: Option<PathBuf>,
    /// Where audit events go, one JSON object per line ("-" for stdout).
    #[arg(long = "audit-log-path")]
    pub audit_log_path: Option<String>,
    /// Megabytes an audit log grows to before it is rotated (0: 100).
    #[arg(long = "audit-log-maxsize", default_value_t = 0)]
    pub audit_log_maxsize: u64,
    /// Rotated audit logs to keep (0: all).
    #[arg(long = "audit-log-maxbackup", default_value_t = 0)]
    pub audit_log_maxbackup: usize,
    /// Days a rotated audit log is kept (0: no limit).
    #[arg(long = "audit-log-maxage", default_value_t = 0)]
    pub audit_log_maxage: u64,
    /// A CIDR notation IP range from which to assign service cluster IPs.
    #[arg(long = "service-cluster-ip-range", default_value = "10.0.0.0/24")]
    pub service_cluster_ip_range: ipnet::Ipv4Net,
    /// A port range to reserve for services with NodePort visibility (e.g. 30000-32767), inclusive at both ends.
    #[arg(long = "service-node-port-range", default_value = "30000-32767", value_parser = parse_port_range)]
    pub service_node_port_range: (u16, u16),
    /// The maximum number of non-mutating requests in flight at a given time.
    #[arg(long = "max-requests-inflight", default_value_t = 400)]
    pub max_requests_inflight: usize,
    /// The maximum number of mutating requests in flight at a given time.
    #[arg(long = "max-mutating-requests-inflight", default_value_t = 200)]
    pub max_mutating_requests_inflight: usize,
    /// An optional field indicating the minimum number of seconds a handler must keep a request open before timing it out.
    #[arg(long = "min-request-timeout", default_value_t = 1800)]
    pub min_request_timeout: u64,
    /// Time to wait for in-flight requests after SIGTERM.
    #[arg(long = "shutdown-delay-duration", default_value = "0s", value_parser = parse_duration)]
    pub shutdown_delay_duration: Duration,
    /// Log level verbosity (upstream's klog -v); RUST_LOG takes precedence.
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
}

/// Go-style durations: `300ms`, `5s`, `5m`, `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push(chars.next().expect("peeked"));
        }
        let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
        num.clear();
        let secs = match unit.as_str() {
            "ms" => n / 1000.0,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            _ => return Err(format!("invalid duration {s:?}: unknown unit {unit:?}")),
        };
        total += Duration::from_secs_f64(secs);
        any = true;
    }
    if !num.is_empty() || !any {
        return Err(format!("invalid duration {s:?}: missing unit"));
    }
    Ok(total)
}

fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a
        .trim()
        .parse()
        .map_err(|_| format!("invalid port range {s:?}"))?;
    let b: u16 = b
        .trim()
        .parse()
        .map_err(|_| format!("invalid port range {s:?}"))?;
    if a > b {
        return Err(format!("invalid port range {s:?}: start after end"));
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn flags_use_upstream_names() {
        let o = Options::try_parse_from([
            "kube-apiserver",
            "--etcd-servers=http://127.0.0.1:2379,http://127.0.0.1:2380",
            "--service-node-port-range=30000-30100",
            "--secure-port=7443",
        ])
        .unwrap();
        assert_eq!(o.etcd_servers.len(), 2);
        assert_eq!(o.service_node_port_range, (30000, 30100));
        assert_eq!(o.etcd_prefix, "/registry");
        assert!(
            Options::try_parse_from(["kube-apiserver"]).is_err(),
            "--etcd-servers is required"
        );
    }

    #[test]
    fn a_list_flag_given_again_adds_to_the_first_as_pflag() {
        let o = Options::try_parse_from([
            "kube-apiserver",
            "--etcd-servers=http://127.0.0.1:2379",
            "--disable-admission-plugins=ServiceAccount,Priority",
            "--disable-admission-plugins=LimitRanger",
            "--anonymous-auth=false",
        ])
        .unwrap();
        assert_eq!(
            o.disable_admission_plugins,
            ["ServiceAccount", "Priority", "LimitRanger"]
        );
        assert!(!o.anonymous_auth);
    }
}
