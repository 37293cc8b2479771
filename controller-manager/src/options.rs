//! kube-controller-manager's flags, with upstream's names.

use crate::controllers::service_lb::{self, Pool};
use crate::controllers::{BUILT, KNOWN};
use clap::Parser;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "kube-controller-manager",
    about = "Runs the controllers that keep the cluster's declared state true",
    version
)]
pub struct Options {
    /// Path to a kubeconfig with the apiserver's address and credentials.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Controllers to run: `*` for all on by default, `name` to add one,
    /// `-name` to leave one out.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
    /// The CA bundle published in every namespace's kube-root-ca.crt
    /// (default: the certificate authority of --kubeconfig).
    #[arg(long)]
    pub root_ca_file: Option<PathBuf>,
    /// HTTPS port for /healthz, /readyz and /metrics; 0 disables it.
    #[arg(long, default_value_t = 10257)]
    pub secure_port: u16,
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    #[arg(long, default_value_t = 5)]
    pub concurrent_replicaset_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_deployment_syncs: usize,
    #[arg(long, default_value_t = 20)]
    pub concurrent_gc_syncs: usize,
    #[arg(long, default_value_t = 10)]
    pub concurrent_namespace_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_job_syncs: usize,
    #[arg(long, default_value_t = 2)]
    pub concurrent_daemonset_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_cron_job_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_statefulset_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_endpoint_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_service_endpoint_syncs: usize,
    /// Finished pods kept before the oldest are deleted (0: keep all).
    #[arg(long, default_value_t = 12500)]
    pub terminated_pod_gc_threshold: usize,
    /// Give every node a spec.podCIDR from --cluster-cidr.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub allocate_node_cidrs: bool,
    /// The pods' address range (IPv4).
    #[arg(long)]
    pub cluster_cidr: Option<String>,
    /// Prefix length of each node's pod CIDR.
    #[arg(long, default_value_t = 24)]
    pub node_cidr_mask_size: u8,
    /// How often every quota's usage is recounted.
    #[arg(long, default_value = "5m", value_parser = common::cli::parse_duration)]
    pub resource_quota_sync_period: Duration,
    #[arg(long, default_value_t = 5)]
    pub concurrent_resource_quota_syncs: usize,
    /// How often node health is checked.
    #[arg(long, default_value = "5s", value_parser = common::cli::parse_duration)]
    pub node_monitor_period: Duration,
    /// How long a node may be silent before it is marked Unknown.
    #[arg(long, default_value = "50s", value_parser = common::cli::parse_duration)]
    pub node_monitor_grace_period: Duration,
    /// Endpoints per EndpointSlice.
    #[arg(long, default_value_t = 100)]
    pub max_endpoints_per_slice: usize,
    /// LoadBalancer without a cloud: IPv4 CIDRs (comma-separated) whose
    /// addresses the service-lb-controller gives to Services of type
    /// LoadBalancer without a spec.loadBalancerClass, in
    /// status.loadBalancer.ingress (spec.loadBalancerIP if it is in the
    /// pool and free; never a range's network or broadcast address).
    /// Unset, that controller does not run.
    #[arg(long, value_delimiter = ',')]
    pub loadbalancer_ip_pool: Vec<String>,
    /// Workers of the service-lb-controller.
    #[arg(long, default_value_t = 1)]
    pub concurrent_service_syncs: usize,
    #[command(flatten)]
    pub leader: common::leader::LeaderElectionFlags,
    /// Log verbosity, as klog's -v.
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub kubeconfig: Option<PathBuf>,
    /// The controllers to run, with their worker counts.
    pub controllers: BTreeMap<&'static str, usize>,
    pub leader_election: Option<common::leader::LeaseConfig>,
    pub root_ca_file: Option<PathBuf>,
    pub max_endpoints_per_slice: usize,
    pub terminated_pod_gc_threshold: usize,
    pub node_monitor_period: Duration,
    pub node_monitor_grace_period: Duration,
    pub resource_quota_sync_period: Duration,
    /// (--cluster-cidr, --node-cidr-mask-size) with --allocate-node-cidrs.
    pub node_cidrs: Option<(String, u8)>,
    /// --loadbalancer-ip-pool, if set.
    pub loadbalancer_ip_pool: Option<Pool>,
}

impl Options {
    /// The controllers `--controllers` names (upstream's rules: `*` is
    /// every default one, `-x` removes x, `x` adds it); an unknown name is
    /// an error, and so is one this build does not have yet.
    pub fn enabled(&self) -> Result<Vec<&'static str>, String> {
        let mut all = false;
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for item in self
            .controllers
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
        {
            if item == "*" {
                all = true;
                continue;
            }
            let (list, name) = match item.strip_prefix('-') {
                Some(n) => (&mut off, n),
                None => (&mut on, item),
            };
            let Some(known) = KNOWN.iter().find(|k| **k == name) else {
                return Err(format!("{name:?} is not in the list of known controllers"));
            };
            list.push(*known);
        }
        if let Some(missing) = on.iter().find(|n| !BUILT.contains(n)) {
            return Err(format!(
                "controller {missing:?} is not built in this kube-controller-manager yet (built: {})",
                BUILT.join(", ")
            ));
        }
        let mut out: Vec<&'static str> = BUILT
            .iter()
            .copied()
            .filter(|n| (all || on.contains(n)) && !off.contains(n))
            .collect();
        out.dedup();
        Ok(out)
    }

    pub fn workers(&self, controller: &str) -> usize {
        match controller {
            "replicaset" => self.concurrent_replicaset_syncs,
            "deployment" => self.concurrent_deployment_syncs,
            "garbagecollector" => self.concurrent_gc_syncs,
            "namespace" => self.concurrent_namespace_syncs,
            "job" => self.concurrent_job_syncs,
            "daemonset" => self.concurrent_daemonset_syncs,
            "cronjob" => self.concurrent_cron_job_syncs,
            "statefulset" => self.concurrent_statefulset_syncs,
            "resourcequota" => self.concurrent_resource_quota_syncs,
            "endpoints" => self.concurrent_endpoint_syncs,
            "endpointslice" => self.concurrent_service_endpoint_syncs,
            service_lb::NAME => self.concurrent_service_syncs,
            _ => 1,
        }
    }

    pub fn settings(&self) -> Result<Settings, String> {
        let mut controllers: BTreeMap<&'static str, usize> = self
            .enabled()?
            .into_iter()
            .map(|c| (c, self.workers(c)))
            .collect();
        let loadbalancer_ip_pool = if self.loadbalancer_ip_pool.is_empty() {
            None
        } else {
            Some(
                Pool::parse(&self.loadbalancer_ip_pool)
                    .map_err(|e| format!("--loadbalancer-ip-pool: {e}"))?,
            )
        };
        if loadbalancer_ip_pool.is_none() {
            // On by default, but with no addresses to give it does not run;
            // asked for by name, that is a mistake.
            let named = self
                .controllers
                .iter()
                .any(|c| c.trim() == service_lb::NAME);
            if named && controllers.contains_key(service_lb::NAME) {
                return Err(format!(
                    "controller {:?} needs --loadbalancer-ip-pool (the addresses it gives to Services of type LoadBalancer)",
                    service_lb::NAME
                ));
            }
            controllers.remove(service_lb::NAME);
        }
        let leader_election = self
            .leader
            .leader_elect
            .then(|| self.leader.lease("kube-controller-manager"));
        if let Some(l) = &leader_election {
            l.validate()?;
        }
        let node_cidrs = match (self.allocate_node_cidrs, &self.cluster_cidr) {
            (false, _) => None,
            (true, None) => return Err("--allocate-node-cidrs needs --cluster-cidr".into()),
            (true, Some(c)) => {
                let cidr = crate::controllers::nodeipam::Cidr::parse(c)?;
                crate::controllers::nodeipam::Allocator::new(cidr, self.node_cidr_mask_size)?;
                Some((c.clone(), self.node_cidr_mask_size))
            }
        };
        Ok(Settings {
            kubeconfig: self.kubeconfig.clone(),
            controllers,
            leader_election,
            root_ca_file: self.root_ca_file.clone(),
            max_endpoints_per_slice: self.max_endpoints_per_slice,
            terminated_pod_gc_threshold: self.terminated_pod_gc_threshold,
            node_monitor_period: self.node_monitor_period,
            node_monitor_grace_period: self.node_monitor_grace_period,
            resource_quota_sync_period: self.resource_quota_sync_period,
            node_cidrs,
            loadbalancer_ip_pool,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        Options::try_parse_from(
            std::iter::once("kube-controller-manager").chain(args.iter().copied()),
        )
        .unwrap()
    }

    #[test]
    fn controllers_follow_upstreams_rules() {
        assert_eq!(parse(&[]).enabled().unwrap(), BUILT);
        let without: Vec<&str> = BUILT
            .iter()
            .copied()
            .filter(|n| *n != "replicaset")
            .collect();
        assert_eq!(
            parse(&["--controllers=*,-replicaset"]).enabled().unwrap(),
            without
        );
        assert_eq!(
            parse(&["--controllers=replicaset"]).enabled().unwrap(),
            ["replicaset"]
        );
        let unknown = parse(&["--controllers=frobnicator"]).enabled().unwrap_err();
        assert!(
            unknown.contains("not in the list of known controllers"),
            "{unknown}"
        );
        let unbuilt = parse(&["--controllers=ttl"]).enabled().unwrap_err();
        assert!(unbuilt.contains("not built"), "{unbuilt}");
        let s = parse(&["--leader-elect=false", "--concurrent-replicaset-syncs=9"])
            .settings()
            .unwrap();
        assert_eq!(s.controllers.get("replicaset"), Some(&9));
        assert!(s.leader_election.is_none());
    }

    #[test]
    fn the_load_balancer_pool_turns_the_service_lb_controller_on() {
        let lb = service_lb::NAME;
        /// (runs, the pool) or a part of the error.
        type Want = Result<(bool, Option<&'static str>), &'static str>;
        let cases: &[(&str, &[&str], Want)] = &[
            ("no pool: inert", &[], Ok((false, None))),
            (
                "a pool",
                &["--loadbalancer-ip-pool=10.96.200.0/29"],
                Ok((true, Some("10.96.200.0/29"))),
            ),
            (
                "a list of CIDRs",
                &["--loadbalancer-ip-pool=10.96.200.0/29,192.0.2.0/28"],
                Ok((true, Some("10.96.200.0/29,192.0.2.0/28"))),
            ),
            (
                "the flag twice",
                &[
                    "--loadbalancer-ip-pool=10.96.200.0/29",
                    "--loadbalancer-ip-pool=192.0.2.0/28",
                ],
                Ok((true, Some("10.96.200.0/29,192.0.2.0/28"))),
            ),
            (
                "a pool, the controller left out",
                &[
                    "--loadbalancer-ip-pool=10.96.200.0/29",
                    "--controllers=*,-service-lb-controller",
                ],
                Ok((false, Some("10.96.200.0/29"))),
            ),
            (
                "named without a pool",
                &["--controllers=service-lb-controller"],
                Err("needs --loadbalancer-ip-pool"),
            ),
            (
                "named with all without a pool",
                &["--controllers=*,service-lb-controller"],
                Err("needs --loadbalancer-ip-pool"),
            ),
            (
                "IPv6",
                &["--loadbalancer-ip-pool=fd00::/120"],
                Err("--loadbalancer-ip-pool: \"fd00::/120\": only IPv4"),
            ),
            (
                "overlapping",
                &["--loadbalancer-ip-pool=10.0.0.0/24,10.0.0.0/28"],
                Err("overlaps"),
            ),
        ];
        for (name, args, want) in cases {
            let got = parse(args).settings();
            match (got, want) {
                (Ok(s), Ok((runs, pool))) => {
                    assert_eq!(s.controllers.contains_key(lb), *runs, "{name}");
                    assert_eq!(
                        s.loadbalancer_ip_pool.map(|p| p.to_string()).as_deref(),
                        *pool,
                        "{name}"
                    );
                }
                (Err(e), Err(w)) => assert!(e.contains(w), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
        let s = parse(&[
            "--loadbalancer-ip-pool=10.96.200.0/29",
            "--concurrent-service-syncs=3",
        ])
        .settings()
        .unwrap();
        assert_eq!(s.controllers.get(lb), Some(&3));
    }
}
