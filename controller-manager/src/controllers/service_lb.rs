//! LoadBalancer Services without a cloud (upstream's `service-lb-controller`,
//! the cloud provider's service controller, with an address pool in place
//! of a cloud): with `--loadbalancer-ip-pool`, every Service of type
//! LoadBalancer without a `spec.loadBalancerClass` gets one address of the
//! pool in `status.loadBalancer.ingress` (`ipMode: VIP`), its
//! `spec.loadBalancerIP` if that is in the pool and free.
//!
//! The Services' statuses are the record of what is given out: every sync
//! first brings the allocator in line with the cached Services (what a
//! Service that no longer wants an address held is free again; an address
//! of the pool a Service shows, and nobody holds, is its, oldest Service
//! first), so a restarted controller-manager rebuilds the allocation
//! before it hands out anything. There is nothing outside the cluster to
//! tear down, so, unlike upstream, no cleanup finalizer: the address is
//! free once the Service is gone.

use super::controller_utils::moot;
use super::nodeipam::Cidr;
use super::{Context, Controller, SyncError};
use crate::informers::{Informer, key_of, split_key};
use crate::workqueue::WorkQueue;
use k8s_openapi::api::core::v1::{LoadBalancerIngress, Service};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const NAME: &str = "service-lb-controller";
/// The event source upstream's service controller records as.
const COMPONENT: &str = "service-controller";
/// Upstream's service controller retries from 5 s up to 5 min.
const MIN_RETRY_DELAY: Duration = Duration::from_secs(5);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);

/// The addresses `--loadbalancer-ip-pool` names: IPv4 ranges that do not
/// overlap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    ranges: Vec<Cidr>,
}

impl Pool {
    /// A pool from CIDRs such as `10.96.200.0/29` (empty items are skipped).
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Pool, String> {
        let mut ranges: Vec<Cidr> = Vec::new();
        for item in items.iter().map(|s| s.as_ref().trim()) {
            if item.is_empty() {
                continue;
            }
            let c = Cidr::parse(item)?;
            if let Some(other) = ranges.iter().find(|o| o.contains(&c) || c.contains(o)) {
                return Err(format!("{c} overlaps {other}"));
            }
            ranges.push(c);
        }
        if ranges.is_empty() {
            return Err("no CIDR given".into());
        }
        Ok(Pool { ranges })
    }

    /// The first and last address of `c` to give out: all but its network
    /// and broadcast addresses, except in a /31 or /32, which have none
    /// (RFC 3021).
    fn usable(c: &Cidr) -> (u32, u32) {
        let last = (u64::from(c.network) + (1u64 << (32 - c.prefix)) - 1) as u32;
        if c.prefix >= 31 {
            (c.network, last)
        } else {
            (c.network + 1, last - 1)
        }
    }

    /// Whether `ip` is one of the pool's addresses to give out.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        self.ranges.iter().any(|c| {
            let (first, last) = Self::usable(c);
            (first..=last).contains(&ip)
        })
    }

    /// How many addresses the pool has to give out.
    pub fn size(&self) -> u64 {
        self.ranges
            .iter()
            .map(|c| {
                let (first, last) = Self::usable(c);
                u64::from(last - first) + 1
            })
            .sum()
    }

    /// The addresses in order: ranges as given, each from its lowest.
    fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.ranges.iter().flat_map(|c| {
            let (first, last) = Self::usable(c);
            (first..=last).map(Ipv4Addr::from)
        })
    }
}

impl std::fmt::Display for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ranges: Vec<String> = self.ranges.iter().map(Cidr::to_string).collect();
        f.write_str(&ranges.join(","))
    }
}

/// Why a Service gets no address (yet). Each is retried: the address may
/// be freed, the pool may grow at a restart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("requested loadBalancerIP {requested:?} is not an address of the pool {pool}")]
    NotInPool { requested: String, pool: String },
    #[error("requested loadBalancerIP {requested} is already assigned to service {holder}")]
    InUse { requested: Ipv4Addr, holder: String },
    #[error("no addresses left in the pool {pool}")]
    Exhausted { pool: String },
}

/// Which Service (by key) holds which address of the pool; at most one
/// address per Service, at most one Service per address.
#[derive(Debug)]
pub struct Allocator {
    pool: Pool,
    by_ip: BTreeMap<Ipv4Addr, String>,
    by_key: HashMap<String, Ipv4Addr>,
    /// Addresses of the pool that Services of another loadBalancerClass
    /// show: never given out while they do.
    foreign: BTreeMap<Ipv4Addr, String>,
    /// Something was released since `take_released` was last asked.
    released: bool,
}

impl Allocator {
    pub fn new(pool: Pool) -> Self {
        Allocator {
            pool,
            by_ip: BTreeMap::new(),
            by_key: HashMap::new(),
            foreign: BTreeMap::new(),
            released: false,
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The address `key` holds.
    pub fn of(&self, key: &str) -> Option<Ipv4Addr> {
        self.by_key.get(key).copied()
    }

    /// The Service holding `ip` (or showing it, of another class).
    pub fn holder(&self, ip: Ipv4Addr) -> Option<&str> {
        self.by_ip
            .get(&ip)
            .or_else(|| self.foreign.get(&ip))
            .map(String::as_str)
    }

    /// How many addresses are free.
    pub fn free(&self) -> u64 {
        let foreign = self
            .foreign
            .keys()
            .filter(|ip| !self.by_ip.contains_key(ip))
            .count();
        self.pool.size() - (self.by_ip.len() + foreign) as u64
    }

    /// Gives `key` exactly `ip`, letting go of what it held before.
    pub fn claim(&mut self, key: &str, ip: Ipv4Addr) -> Result<(), Refusal> {
        if !self.pool.contains(ip) {
            return Err(Refusal::NotInPool {
                requested: ip.to_string(),
                pool: self.pool.to_string(),
            });
        }
        match self.holder(ip) {
            Some(k) if k == key => return Ok(()),
            Some(k) => {
                return Err(Refusal::InUse {
                    requested: ip,
                    holder: k.to_string(),
                });
            }
            None => {}
        }
        self.release(key);
        self.by_ip.insert(ip, key.to_string());
        self.by_key.insert(key.to_string(), ip);
        Ok(())
    }

    /// The address `key` holds, or the lowest free one.
    pub fn allocate(&mut self, key: &str) -> Result<Ipv4Addr, Refusal> {
        if let Some(ip) = self.of(key) {
            return Ok(ip);
        }
        let ip = self
            .pool
            .addresses()
            .find(|ip| self.holder(*ip).is_none())
            .ok_or_else(|| Refusal::Exhausted {
                pool: self.pool.to_string(),
            })?;
        self.by_ip.insert(ip, key.to_string());
        self.by_key.insert(key.to_string(), ip);
        Ok(ip)
    }

    /// Frees what `key` holds.
    pub fn release(&mut self, key: &str) -> Option<Ipv4Addr> {
        let ip = self.by_key.remove(key)?;
        self.by_ip.remove(&ip);
        self.released = true;
        Some(ip)
    }

    /// Whether anything was released since the last call.
    pub fn take_released(&mut self) -> bool {
        std::mem::take(&mut self.released)
    }

    /// Brings the allocation in line with the Services as they are:
    /// what a Service that no longer wants an address (gone, another type,
    /// being deleted) holds is released; a Service that wants one and
    /// holds none gets the first address of the pool its status shows if
    /// nobody holds it, the oldest Service first (so that, after a
    /// restart, two Services showing one address keep it with the older).
    /// What Services of another loadBalancerClass show is left to them.
    pub fn refresh(&mut self, services: &[Arc<Service>]) {
        self.foreign = services
            .iter()
            .filter(|s| has_class(s) && is_load_balancer(s))
            .flat_map(|s| status_ips(s).into_iter().map(|ip| (ip, key_of(s.as_ref()))))
            .filter(|(ip, _)| self.pool.contains(*ip))
            .collect();
        let wanting: HashMap<String, &Service> = services
            .iter()
            .filter(|s| wants_address(s))
            .map(|s| (key_of(s.as_ref()), s.as_ref()))
            .collect();
        let held: Vec<String> = self.by_key.keys().cloned().collect();
        for key in held {
            if !wanting.contains_key(&key) {
                self.release(&key);
            }
        }
        let mut adopt: Vec<(&String, &Service)> = wanting
            .iter()
            .filter(|(k, _)| self.of(k).is_none())
            .map(|(k, s)| (k, *s))
            .collect();
        adopt.sort_by_key(|(k, s)| (s.metadata.creation_timestamp.as_ref().map(|t| t.0), *k));
        for (key, svc) in adopt {
            if let Some(ip) = status_ips(svc)
                .into_iter()
                .find(|ip| self.pool.contains(*ip))
            {
                // Taken by an older Service: this one gets another.
                let _ = self.claim(key, ip);
            }
        }
    }
}

/// A Service this controller gives an address: of type LoadBalancer, with
/// no loadBalancerClass (another implementation owns those), not being
/// deleted.
pub fn wants_address(svc: &Service) -> bool {
    is_load_balancer(svc) && !has_class(svc) && svc.metadata.deletion_timestamp.is_none()
}

fn is_load_balancer(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer")
}

fn has_class(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.load_balancer_class.as_ref())
        .is_some()
}

fn ingress(svc: &Service) -> &[LoadBalancerIngress] {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_deref())
        .unwrap_or_default()
}

/// The IPv4 addresses in the Service's status.loadBalancer.ingress.
fn status_ips(svc: &Service) -> Vec<Ipv4Addr> {
    ingress(svc)
        .iter()
        .filter_map(|i| i.ip.as_deref()?.parse().ok())
        .collect()
}

/// Whether a change to this Service may concern the controller.
fn concerns(svc: &Service) -> bool {
    wants_address(svc) || (!has_class(svc) && !ingress(svc).is_empty())
}

/// The status.loadBalancer.ingress this controller writes for `ip`.
fn ingress_for(ip: Ipv4Addr) -> LoadBalancerIngress {
    LoadBalancerIngress {
        ip: Some(ip.to_string()),
        ip_mode: Some("VIP".into()),
        ..Default::default()
    }
}

/// What a Service needs written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Its status is right.
    Nothing,
    /// Its status.loadBalancer.ingress becomes this address.
    Assign(Ipv4Addr),
    /// It no longer wants an address: its status.loadBalancer is emptied.
    Clear,
    /// It wants an address and cannot have one (yet).
    Pending(Refusal),
}

/// Decides for Service `key` (`svc` as cached), after `refresh`.
pub fn plan(alloc: &mut Allocator, key: &str, svc: Option<&Service>) -> Plan {
    let Some(svc) = svc else {
        alloc.release(key);
        return Plan::Nothing;
    };
    if !wants_address(svc) {
        let released = alloc.release(key);
        // Only what is recognisably ours is cleared: never the status of a
        // Service another implementation owns.
        let ours = released.is_some() || status_ips(svc).iter().any(|ip| alloc.pool.contains(*ip));
        return if !has_class(svc) && ours && !ingress(svc).is_empty() {
            Plan::Clear
        } else {
            Plan::Nothing
        };
    }
    let requested = svc
        .spec
        .as_ref()
        .and_then(|s| s.load_balancer_ip.as_deref())
        .filter(|s| !s.is_empty());
    let ip = match requested {
        Some(r) => {
            let Ok(ip) = r.parse::<Ipv4Addr>() else {
                return Plan::Pending(Refusal::NotInPool {
                    requested: r.to_string(),
                    pool: alloc.pool.to_string(),
                });
            };
            // Until the requested address is free, the Service keeps what
            // it has (if anything).
            if let Err(refusal) = alloc.claim(key, ip) {
                return Plan::Pending(refusal);
            }
            ip
        }
        None => match alloc.allocate(key) {
            Ok(ip) => ip,
            Err(refusal) => return Plan::Pending(refusal),
        },
    };
    if ingress(svc) == [ingress_for(ip)] {
        Plan::Nothing
    } else {
        Plan::Assign(ip)
    }
}

pub struct ServiceLbController {
    ctx: Arc<Context>,
    queue: Arc<WorkQueue>,
    services: Arc<Informer<Service>>,
    allocator: Mutex<Allocator>,
}

impl ServiceLbController {
    pub fn start(ctx: &Arc<Context>, pool: Pool) -> Arc<dyn Controller> {
        let queue = WorkQueue::with_backoff(
            NAME,
            ctx.queue_metrics.clone(),
            MIN_RETRY_DELAY,
            MAX_RETRY_DELAY,
        );
        let services = ctx.informers.get::<Service>();
        let q = queue.clone();
        services.on_change(move |old, new| {
            if old.is_some_and(concerns) || new.is_some_and(concerns) {
                q.add(&key_of(new.or(old).expect("one of them")));
            }
        });
        tracing::info!(%pool, addresses = pool.size(), "giving LoadBalancer Services addresses");
        Arc::new(ServiceLbController {
            ctx: ctx.clone(),
            queue,
            services,
            allocator: Mutex::new(Allocator::new(pool)),
        })
    }

    /// Queues the Services waiting for an address (one was freed).
    fn queue_waiting(&self) {
        let waiting: Vec<String> = {
            let a = self.allocator.lock().expect("never poisoned");
            self.services
                .store()
                .state()
                .iter()
                .filter(|s| wants_address(s))
                .map(|s| key_of(s.as_ref()))
                .filter(|k| a.of(k).is_none())
                .collect()
        };
        let unique: HashSet<String> = waiting.into_iter().collect();
        for key in unique {
            self.queue.add(&key);
        }
    }

    async fn write_status(
        &self,
        svc: &Service,
        load_balancer: serde_json::Value,
    ) -> Result<bool, SyncError> {
        let key = key_of(svc);
        let (ns, name) = split_key(&key);
        let api: Api<Service> = Api::namespaced(self.ctx.client.clone(), ns);
        // The uid makes it a precondition: never write to a replacement.
        let patch = json!({
            "metadata": {"uid": svc.metadata.uid},
            "status": {"loadBalancer": load_balancer},
        });
        let written = moot(
            api.patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
                .await,
        )?;
        Ok(written.is_some())
    }
}

#[async_trait::async_trait]
impl Controller for ServiceLbController {
    fn name(&self) -> &'static str {
        NAME
    }

    fn queue(&self) -> &Arc<WorkQueue> {
        &self.queue
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>, SyncError> {
        let svc = self.services.get(key);
        let (plan, released) = {
            let mut a = self.allocator.lock().expect("never poisoned");
            a.refresh(&self.services.store().state());
            let plan = plan(&mut a, key, svc.as_deref());
            (plan, a.take_released())
        };
        if released {
            self.queue_waiting();
        }
        let Some(svc) = svc else {
            return Ok(None);
        };
        let recorder = &self.ctx.recorder;
        match plan {
            Plan::Nothing => {}
            Plan::Assign(ip) => {
                if self
                    .write_status(&svc, json!({"ingress": [ingress_for(ip)]}))
                    .await?
                {
                    tracing::info!(service = key, %ip, "assigned a LoadBalancer address");
                    recorder.record(
                        COMPONENT,
                        svc.as_ref(),
                        "Normal",
                        "EnsuredLoadBalancer",
                        "Ensured load balancer".into(),
                    );
                }
            }
            Plan::Clear => {
                if self.write_status(&svc, json!({"ingress": null})).await? {
                    tracing::info!(service = key, "released its LoadBalancer address");
                    recorder.record(
                        COMPONENT,
                        svc.as_ref(),
                        "Normal",
                        "DeletedLoadBalancer",
                        "Deleted load balancer".into(),
                    );
                }
            }
            Plan::Pending(refusal) => {
                recorder.record(
                    COMPONENT,
                    svc.as_ref(),
                    "Warning",
                    "SyncLoadBalancerFailed",
                    format!(
                        "Error syncing load balancer: failed to ensure load balancer: {refusal}"
                    ),
                );
                return Err(SyncError::Other(refusal.to_string()));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Service builders: `svc("a").lb().requesting("10.0.0.5")`.
    mod fixtures {
        use super::*;

        pub struct Svc(serde_json::Value);

        pub fn svc(name: &str) -> Svc {
            Svc(json!({
                "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                    "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {"type": "ClusterIP", "ports": [{"port": 80}]},
            }))
        }

        impl Svc {
            pub fn lb(mut self) -> Self {
                self.0["spec"]["type"] = json!("LoadBalancer");
                self
            }
            pub fn requesting(mut self, ip: &str) -> Self {
                self.0["spec"]["loadBalancerIP"] = json!(ip);
                self
            }
            pub fn class(mut self, class: &str) -> Self {
                self.0["spec"]["loadBalancerClass"] = json!(class);
                self
            }
            pub fn showing(mut self, ip: &str) -> Self {
                self.0["status"] =
                    json!({"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}});
                self
            }
            pub fn created(mut self, at: &str) -> Self {
                self.0["metadata"]["creationTimestamp"] = json!(at);
                self
            }
            pub fn build(self) -> Arc<Service> {
                Arc::new(serde_json::from_value(self.0).unwrap())
            }
        }
    }
    use fixtures::svc;

    fn pool(s: &str) -> Pool {
        Pool::parse(&s.split(',').collect::<Vec<_>>()).unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    /// Refreshes against `all` and plans for each Service in turn.
    fn plan_all(a: &mut Allocator, all: &[Arc<Service>]) -> Vec<(String, Plan)> {
        all.iter()
            .map(|s| {
                a.refresh(all);
                let key = key_of(s.as_ref());
                let p = plan(a, &key, Some(s));
                (key, p)
            })
            .collect()
    }

    #[test]
    fn pools_parse_and_skip_network_and_broadcast() {
        let cases: &[(&str, &str, Result<u64, &str>)] = &[
            ("one range", "10.96.200.0/29", Ok(6)),
            ("host bits are masked", "10.96.200.3/29", Ok(6)),
            ("a list", "10.0.0.0/30,192.0.2.8/29", Ok(2 + 6)),
            (
                "a /31 has no network or broadcast address",
                "10.0.0.0/31",
                Ok(2),
            ),
            ("a /32 is its address", "10.0.0.7/32", Ok(1)),
            ("overlap", "10.0.0.0/24,10.0.0.128/25", Err("overlaps")),
            ("IPv6", "fd00::/64", Err("only IPv4")),
            ("not a CIDR", "10.0.0.1", Err("not a CIDR")),
            ("bad prefix", "10.0.0.0/33", Err("bad prefix")),
            ("nothing", "", Err("no CIDR")),
        ];
        for (name, flag, want) in cases {
            let got = Pool::parse(&flag.split(',').collect::<Vec<_>>());
            match (got, want) {
                (Ok(p), Ok(n)) => assert_eq!(p.size(), *n, "{name}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
        let p = pool("10.96.200.0/29");
        assert!(!p.contains(ip("10.96.200.0")), "network address");
        assert!(!p.contains(ip("10.96.200.7")), "broadcast address");
        assert!(p.contains(ip("10.96.200.1")) && p.contains(ip("10.96.200.6")));
        assert_eq!(p.to_string(), "10.96.200.0/29");
        assert_eq!(
            pool("10.0.0.0/30,192.0.2.8/29").to_string(),
            "10.0.0.0/30,192.0.2.8/29"
        );
    }

    #[test]
    fn addresses_go_out_lowest_first_one_per_service() {
        let mut a = Allocator::new(pool("10.0.0.0/30,192.0.2.8/30"));
        let got: Vec<String> = ["x", "y", "z", "w"]
            .iter()
            .map(|k| a.allocate(k).unwrap().to_string())
            .collect();
        assert_eq!(got, ["10.0.0.1", "10.0.0.2", "192.0.2.9", "192.0.2.10"]);
        assert_eq!(a.allocate("y").unwrap(), ip("10.0.0.2"), "it keeps its own");
        assert_eq!(a.free(), 0);
        let all = [svc("a").lb().build(), svc("b").lb().build()];
        let mut a = Allocator::new(pool("10.96.200.0/29"));
        assert_eq!(
            plan_all(&mut a, &all),
            [
                ("default/a".to_string(), Plan::Assign(ip("10.96.200.1"))),
                ("default/b".to_string(), Plan::Assign(ip("10.96.200.2"))),
            ]
        );
        // Once written, nothing more to do.
        let written = [
            svc("a").lb().showing("10.96.200.1").build(),
            svc("b").lb().showing("10.96.200.2").build(),
        ];
        let plans: Vec<Plan> = plan_all(&mut a, &written)
            .into_iter()
            .map(|p| p.1)
            .collect();
        assert_eq!(plans, [Plan::Nothing, Plan::Nothing]);
    }

    #[test]
    fn a_requested_load_balancer_ip_is_honoured_when_it_can_be() {
        let p = "10.96.200.0/29";
        let pool_s = p.to_string();
        let cases: Vec<(&str, Vec<Arc<Service>>, Plan)> = vec![
            (
                "free and in the pool",
                vec![svc("x").lb().requesting("10.96.200.5").build()],
                Plan::Assign(ip("10.96.200.5")),
            ),
            (
                "outside the pool",
                vec![svc("x").lb().requesting("192.0.2.1").build()],
                Plan::Pending(Refusal::NotInPool {
                    requested: "192.0.2.1".into(),
                    pool: pool_s.clone(),
                }),
            ),
            (
                "the broadcast address",
                vec![svc("x").lb().requesting("10.96.200.7").build()],
                Plan::Pending(Refusal::NotInPool {
                    requested: "10.96.200.7".into(),
                    pool: pool_s.clone(),
                }),
            ),
            (
                "not IPv4",
                vec![svc("x").lb().requesting("fd00::1").build()],
                Plan::Pending(Refusal::NotInPool {
                    requested: "fd00::1".into(),
                    pool: pool_s.clone(),
                }),
            ),
            (
                "held by another",
                vec![
                    svc("a").lb().showing("10.96.200.5").build(),
                    svc("x").lb().requesting("10.96.200.5").build(),
                ],
                Plan::Pending(Refusal::InUse {
                    requested: ip("10.96.200.5"),
                    holder: "default/a".into(),
                }),
            ),
        ];
        for (name, all, want) in cases {
            let mut a = Allocator::new(pool(p));
            let got = plan_all(&mut a, &all).pop().unwrap().1;
            assert_eq!(got, want, "{name}");
        }
        // A Service asking for another address moves once it is free.
        let mut a = Allocator::new(pool(p));
        let moving = [svc("x")
            .lb()
            .requesting("10.96.200.3")
            .showing("10.96.200.1")
            .build()];
        assert_eq!(
            plan_all(&mut a, &moving)[0].1,
            Plan::Assign(ip("10.96.200.3"))
        );
        assert_eq!(a.holder(ip("10.96.200.1")), None, "the old one is free");
    }

    #[test]
    fn an_exhausted_pool_leaves_services_pending_until_one_is_freed() {
        let mut all: Vec<Arc<Service>> = (1..=6)
            .map(|i| {
                svc(&format!("s{i}"))
                    .lb()
                    .showing(&format!("10.96.200.{i}"))
                    .build()
            })
            .collect();
        all.push(svc("late").lb().build());
        let mut a = Allocator::new(pool("10.96.200.0/29"));
        let plans = plan_all(&mut a, &all);
        assert!(plans[..6].iter().all(|p| p.1 == Plan::Nothing), "{plans:?}");
        assert_eq!(
            plans[6].1,
            Plan::Pending(Refusal::Exhausted {
                pool: "10.96.200.0/29".into()
            })
        );
        assert!(!a.take_released());
        // s3 is deleted: its address goes to the one waiting.
        all.remove(2);
        a.refresh(&all);
        assert!(a.take_released(), "the controller then queues who waits");
        assert_eq!(
            plan(&mut a, "default/late", Some(&all[5])),
            Plan::Assign(ip("10.96.200.3"))
        );
    }

    #[test]
    fn a_restart_rebuilds_the_allocation_from_the_statuses() {
        // As a new controller-manager finds them: addresses given before,
        // one of them (wrongly) shown by two Services, a new Service.
        let all = [
            svc("new").lb().created("2026-01-03T00:00:00Z").build(),
            svc("b")
                .lb()
                .showing("10.96.200.1")
                .created("2026-01-01T00:00:00Z")
                .build(),
            svc("dup")
                .lb()
                .showing("10.96.200.1")
                .created("2026-01-02T00:00:00Z")
                .build(),
            svc("c")
                .lb()
                .showing("10.96.200.4")
                .created("2026-01-01T00:00:00Z")
                .build(),
            svc("outside")
                .lb()
                .showing("192.0.2.1")
                .created("2026-01-01T00:00:00Z")
                .build(),
        ];
        let mut a = Allocator::new(pool("10.96.200.0/29"));
        let plans: BTreeMap<String, Plan> = plan_all(&mut a, &all).into_iter().collect();
        let want: BTreeMap<String, Plan> = [
            ("default/new", Plan::Assign(ip("10.96.200.2"))),
            ("default/b", Plan::Nothing),
            ("default/dup", Plan::Assign(ip("10.96.200.3"))),
            ("default/c", Plan::Nothing),
            ("default/outside", Plan::Assign(ip("10.96.200.5"))),
        ]
        .into_iter()
        .map(|(k, p)| (k.to_string(), p))
        .collect();
        assert_eq!(plans, want);
    }

    #[test]
    fn addresses_are_released_when_services_stop_wanting_them() {
        let p = pool("10.96.200.0/29");
        let cases: Vec<(&str, Option<Arc<Service>>, Plan)> = vec![
            ("deleted", None, Plan::Nothing),
            (
                "now ClusterIP: its status is emptied",
                Some(svc("x").showing("10.96.200.1").build()),
                Plan::Clear,
            ),
            (
                "now ClusterIP, status already empty",
                Some(svc("x").build()),
                Plan::Nothing,
            ),
        ];
        for (name, now, want) in cases {
            let mut a = Allocator::new(p.clone());
            let before = [svc("x").lb().showing("10.96.200.1").build()];
            a.refresh(&before);
            assert_eq!(a.of("default/x"), Some(ip("10.96.200.1")), "{name}");
            let all: Vec<Arc<Service>> = now.iter().cloned().collect();
            a.refresh(&all);
            assert_eq!(plan(&mut a, "default/x", now.as_deref()), want, "{name}");
            assert_eq!(a.holder(ip("10.96.200.1")), None, "{name}");
            assert!(a.take_released(), "{name}");
        }
        // A ClusterIP Service whose status shows an address outside the
        // pool is not this controller's to clear.
        let mut a = Allocator::new(p);
        let foreign = svc("y").showing("192.0.2.1").build();
        assert_eq!(plan(&mut a, "default/y", Some(&foreign)), Plan::Nothing);
    }

    #[test]
    fn services_with_a_load_balancer_class_are_left_alone() {
        let all = [
            svc("other").lb().class("example.com/lb").build(),
            svc("other-shown")
                .lb()
                .class("example.com/lb")
                .showing("10.96.200.1")
                .build(),
            svc("mine").lb().build(),
        ];
        let mut a = Allocator::new(pool("10.96.200.0/29"));
        let plans: Vec<Plan> = plan_all(&mut a, &all).into_iter().map(|p| p.1).collect();
        assert_eq!(
            plans,
            [
                Plan::Nothing,
                Plan::Nothing,
                Plan::Assign(ip("10.96.200.2"))
            ],
            "what another implementation shows is not given out"
        );
        assert_eq!(a.holder(ip("10.96.200.1")), Some("default/other-shown"));
        assert!(!concerns(&all[0]) && !concerns(&all[1]) && concerns(&all[2]));
    }
}
