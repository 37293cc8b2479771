//! cluster-dns's flags: kubelet's `--cluster-domain`, CoreDNS's defaults
//! (TTL 5 s, metrics on :9153), upstreams from resolv.conf as CoreDNS's
//! `forward . /etc/resolv.conf` takes them.

use clap::Parser;
use hickory_proto::rr::Name;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "cluster-dns",
    about = "Answers the cluster's DNS names and forwards the rest",
    version
)]
pub struct Options {
    /// Path to a kubeconfig with the apiserver's address and credentials.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The zone answered from Services and EndpointSlices.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// UDP and TCP address to answer DNS on.
    #[arg(long, default_value = "0.0.0.0:53")]
    pub listen: SocketAddr,
    /// Plain HTTP address for /healthz, /readyz and /metrics; port 0 disables it.
    #[arg(long, default_value = "0.0.0.0:9153")]
    pub metrics_bind_address: SocketAddr,
    /// TTL in seconds of cluster answers and of negative answers (0-3600).
    #[arg(long, default_value_t = 5)]
    pub ttl: u32,
    /// Where the upstream resolvers are read from (its `nameserver` lines).
    #[arg(long, default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,
    /// IP[:PORT],... upstream resolvers to use instead of --resolv-conf's.
    #[arg(long, value_delimiter = ',')]
    pub upstream: Vec<String>,
    /// How long one upstream gets to answer before the next is tried.
    #[arg(long, default_value = "2s", value_parser = common::cli::parse_duration)]
    pub forward_timeout: Duration,
    /// Log verbosity, as klog's -v.
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
}

/// The checked configuration `run` acts on.
#[derive(Debug, Clone)]
pub struct Settings {
    pub kubeconfig: Option<PathBuf>,
    /// The cluster domain, absolute and lower case.
    pub zone: Name,
    pub ttl: u32,
    pub upstreams: Vec<SocketAddr>,
    pub forward_timeout: Duration,
    pub listen: SocketAddr,
    /// None: no metrics endpoint.
    pub metrics_bind_address: Option<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--cluster-domain {0:?} is not a domain name")]
    ClusterDomain(String),
    #[error("--ttl {0} is out of range 0-3600")]
    Ttl(u32),
    #[error("--upstream {0:?} is not IP[:PORT]")]
    Upstream(String),
    #[error("reading {0}: {1}")]
    ResolvConf(PathBuf, #[source] std::io::Error),
    #[error("upstream {0} is this server's own --listen address: a forwarding loop")]
    Loop(SocketAddr),
}

/// CoreDNS refuses TTLs above an hour too.
const MAX_TTL: u32 = 3600;

impl Options {
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let domain = self.cluster_domain.trim_end_matches('.');
        let zone = Name::from_ascii(format!("{domain}."))
            .ok()
            .filter(|z| !domain.is_empty() && !z.is_root())
            .ok_or_else(|| ConfigError::ClusterDomain(self.cluster_domain.clone()))?
            .to_lowercase();
        if self.ttl > MAX_TTL {
            return Err(ConfigError::Ttl(self.ttl));
        }
        let upstreams = if self.upstream.is_empty() {
            let text = std::fs::read_to_string(&self.resolv_conf)
                .map_err(|e| ConfigError::ResolvConf(self.resolv_conf.clone(), e))?;
            nameservers(&text)
        } else {
            self.upstream
                .iter()
                .map(|u| parse_upstream(u).ok_or_else(|| ConfigError::Upstream(u.clone())))
                .collect::<Result<_, _>>()?
        };
        if let Some(own) = upstreams.iter().find(|u| is_own(**u, self.listen)) {
            return Err(ConfigError::Loop(*own));
        }
        Ok(Settings {
            kubeconfig: self.kubeconfig.clone(),
            zone,
            ttl: self.ttl,
            upstreams,
            forward_timeout: self.forward_timeout,
            listen: self.listen,
            metrics_bind_address: Some(self.metrics_bind_address).filter(|a| a.port() != 0),
        })
    }
}

/// Whether `upstream` reaches this server itself (CoreDNS has its `loop`
/// plugin for this; a listener on the wildcard address gets loopback too).
fn is_own(upstream: SocketAddr, listen: SocketAddr) -> bool {
    upstream.port() == listen.port()
        && (upstream.ip() == listen.ip()
            || (listen.ip().is_unspecified() && upstream.ip().is_loopback()))
}

/// `IP` (port 53) or `IP:PORT` / `[IPv6]:PORT`.
pub fn parse_upstream(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    s.parse()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
}

/// The `nameserver` addresses of a resolv.conf, port 53. Scoped IPv6
/// addresses (`fe80::1%eth0`) are skipped: a socket address cannot carry
/// the interface name here.
pub fn nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next())?
        })
        .filter_map(|ip| ip.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn options(args: &[&str]) -> Options {
        Options::try_parse_from(std::iter::once("cluster-dns").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults() {
        let o = options(&["--upstream=10.0.0.1"]);
        let s = o.settings().unwrap();
        assert_eq!(s.zone, Name::from_ascii("cluster.local.").unwrap());
        assert_eq!(s.ttl, 5);
        assert_eq!(s.listen, "0.0.0.0:53".parse().unwrap());
        assert_eq!(
            s.metrics_bind_address,
            Some("0.0.0.0:9153".parse().unwrap())
        );
        assert_eq!(s.forward_timeout, Duration::from_secs(2));
        assert_eq!(o.resolv_conf, Path::new("/etc/resolv.conf"));
    }

    #[test]
    fn settings_cases() {
        let cases: &[(&str, &[&str], Result<&str, &str>)] = &[
            (
                "upstreams",
                &["--upstream=10.0.0.1,127.0.0.1:5353,[::1]:54,::2"],
                Ok("10.0.0.1:53,127.0.0.1:5353,[::1]:54,[::2]:53"),
            ),
            (
                "domain with dot and case",
                &["--upstream=1.1.1.1", "--cluster-domain=Corp.Example."],
                Ok("1.1.1.1:53"),
            ),
            (
                "bad upstream",
                &["--upstream=dns.google"],
                Err("--upstream"),
            ),
            (
                "bad ttl",
                &["--upstream=1.1.1.1", "--ttl=7200"],
                Err("--ttl"),
            ),
            (
                "bad domain",
                &["--upstream=1.1.1.1", "--cluster-domain=a..b"],
                Err("--cluster-domain"),
            ),
            (
                "empty domain",
                &["--upstream=1.1.1.1", "--cluster-domain=."],
                Err("--cluster-domain"),
            ),
            (
                "loop",
                &["--upstream=127.0.0.53", "--listen=0.0.0.0:53"],
                Err("upstream 127.0.0.53:53 is this server's own"),
            ),
            (
                "own port elsewhere is fine",
                &["--upstream=127.0.0.53", "--listen=10.0.0.10:53"],
                Ok("127.0.0.53:53"),
            ),
            (
                "missing resolv.conf",
                &["--resolv-conf=/nonexistent/resolv.conf"],
                Err("reading /nonexistent"),
            ),
        ];
        for (name, args, want) in cases {
            let got = options(args).settings();
            match (got, want) {
                (Ok(s), Ok(ups)) => {
                    let shown: Vec<String> = s.upstreams.iter().map(|u| u.to_string()).collect();
                    assert_eq!(shown.join(","), *ups, "{name}");
                }
                (Err(e), Err(prefix)) => {
                    assert!(e.to_string().starts_with(prefix), "{name}: {e}")
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
        let s = options(&["--upstream=1.1.1.1", "--cluster-domain=Corp.Example."])
            .settings()
            .unwrap();
        assert_eq!(s.zone.to_string(), "corp.example.");
    }

    #[test]
    fn metrics_port_zero_disables() {
        let s = options(&["--upstream=1.1.1.1", "--metrics-bind-address=127.0.0.1:0"])
            .settings()
            .unwrap();
        assert_eq!(s.metrics_bind_address, None);
    }

    #[test]
    fn resolv_conf_nameservers() {
        let text = "# generated\nsearch example.com\nnameserver 10.0.0.2\nnameserver  ::1 \n\
                    nameserver fe80::1%eth0\noptions ndots:5\nnameserver\n";
        let got: Vec<String> = nameservers(text).iter().map(|a| a.to_string()).collect();
        assert_eq!(got, ["10.0.0.2:53", "[::1]:53"]);
    }
}
