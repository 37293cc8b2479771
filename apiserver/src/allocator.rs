//! Service cluster IPs (`--service-cluster-ip-range`) and node ports
//! (`--service-node-port-range`). Each allocation is an etcd key created in
//! a transaction, so two services never get the same address, also across
//! apiserver replicas.

use crate::error::{ApiError, FieldError};
use crate::registry::ResourceInfo;
use crate::storage::{ListOptions, Storage, StorageError};
use ipnet::Ipv4Net;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::sync::Arc;

/// Keys reserved by one write, released again if the write fails.
pub type Reserved = Vec<String>;

pub struct Allocator {
    storage: Arc<dyn Storage>,
    root: String,
    ips: Ipv4Net,
    ports: RangeInclusive<u16>,
}

fn is_service(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.resource == "services"
}

fn needs_node_ports(svc: &Value) -> bool {
    matches!(
        svc["spec"]["type"].as_str(),
        Some("NodePort") | Some("LoadBalancer")
    ) && !(svc["spec"]["type"] == "LoadBalancer"
        && svc["spec"]["allocateLoadBalancerNodePorts"] == false)
}

fn node_ports(svc: &Value) -> Vec<u16> {
    svc["spec"]["ports"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["nodePort"].as_u64())
                .map(|p| p as u16)
                .collect()
        })
        .unwrap_or_default()
}

fn cluster_ips(svc: &Value) -> Vec<String> {
    let mut ips: Vec<String> = svc["spec"]["clusterIPs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if let Some(ip) = svc["spec"]["clusterIP"].as_str()
        && !ips.iter().any(|i| i == ip)
    {
        ips.push(ip.to_string());
    }
    ips.retain(|ip| !ip.is_empty() && ip != "None");
    ips
}

fn invalid(svc: &Value, field: &str, value: Value, detail: String) -> ApiError {
    let name = svc["metadata"]["name"].as_str().unwrap_or("");
    ApiError::invalid(
        "",
        "Service",
        name,
        &[FieldError::invalid(field, value, detail)],
    )
}

impl Allocator {
    pub fn new(
        storage: Arc<dyn Storage>,
        root: String,
        ips: Ipv4Net,
        ports: RangeInclusive<u16>,
    ) -> Self {
        Allocator {
            storage,
            root,
            ips,
            ports,
        }
    }

    /// The first address of the range: the `kubernetes` service's.
    pub fn first_ip(&self) -> Ipv4Addr {
        self.ips.hosts().next().unwrap_or(self.ips.network())
    }

    fn ip_key(&self, ip: &str) -> String {
        format!("{}/ranges/serviceips/{ip}", self.root)
    }

    fn port_key(&self, port: u16) -> String {
        format!("{}{port}", self.port_key_prefix())
    }

    async fn taken(&self, key: &str) -> Result<bool, ApiError> {
        Ok(self
            .storage
            .get(key)
            .await
            .map_err(ApiError::internal)?
            .is_some())
    }

    /// Reserves `key` for `owner`; false if it was taken. Dry runs only look.
    async fn reserve(
        &self,
        key: &str,
        owner: &str,
        dry_run: bool,
        reserved: &mut Reserved,
    ) -> Result<bool, ApiError> {
        if dry_run {
            return Ok(!self.taken(key).await?);
        }
        match self.storage.create(key, owner.as_bytes().to_vec()).await {
            Ok(_) => {
                reserved.push(key.to_string());
                Ok(true)
            }
            Err(StorageError::AlreadyExists(_)) => Ok(false),
            Err(e) => Err(ApiError::internal(e)),
        }
    }

    /// Picks a free member of a range of `size` candidates: random probes
    /// first, then a scan of what is allocated.
    async fn allocate(
        &self,
        size: u64,
        candidate: &(dyn Fn(u64) -> String + Sync),
        key_of: &(dyn Fn(&str) -> String + Sync),
        owner: &str,
        dry_run: bool,
        reserved: &mut Reserved,
    ) -> Result<Option<String>, ApiError> {
        let seed = u64::from_le_bytes(
            uuid::Uuid::new_v4().as_bytes()[..8]
                .try_into()
                .expect("8 bytes"),
        );
        for i in 0..8u64 {
            let c = candidate(seed.wrapping_add(i.wrapping_mul(7919)) % size);
            if self.reserve(&key_of(&c), owner, dry_run, reserved).await? {
                return Ok(Some(c));
            }
        }
        let prefix = key_of("");
        let used = self
            .storage
            .list(&prefix, &ListOptions::default())
            .await
            .map_err(ApiError::internal)?;
        let used: HashSet<String> = used.items.into_iter().map(|kv| kv.key).collect();
        for i in 0..size {
            let c = candidate((seed + i) % size);
            let key = key_of(&c);
            if !used.contains(&key) && self.reserve(&key, owner, dry_run, reserved).await? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    async fn allocate_ip(
        &self,
        svc: &mut Value,
        owner: &str,
        dry_run: bool,
        reserved: &mut Reserved,
    ) -> Result<(), ApiError> {
        let spec = &svc["spec"];
        if spec["type"] == "ExternalName" {
            return Ok(());
        }
        let requested = spec["clusterIP"]
            .as_str()
            .or_else(|| spec["clusterIPs"][0].as_str())
            .unwrap_or("")
            .to_string();
        if requested == "None" {
            svc["spec"]["clusterIP"] = json!("None");
            svc["spec"]["clusterIPs"] = json!(["None"]);
            return Ok(());
        }
        let ip = if requested.is_empty() {
            // Skip the network address, the first host (the kubernetes service) and broadcast.
            let base = u32::from(self.ips.network());
            let size = (self.ips.hosts().count() as u64).saturating_sub(1).max(1);
            let candidate = move |i: u64| Ipv4Addr::from(base + 2 + i as u32).to_string();
            let key_of = |c: &str| self.ip_key(c);
            self.allocate(size, &candidate, &key_of, owner, dry_run, reserved)
                .await?
                .ok_or_else(|| {
                    ApiError::internal("failed to allocate a serviceIP: range is full")
                })?
        } else {
            let parsed: Ipv4Addr = requested.parse().map_err(|_| {
                invalid(
                    svc,
                    "spec.clusterIPs[0]",
                    json!(requested),
                    "must be a valid IP address".into(),
                )
            })?;
            if !self.ips.contains(&parsed)
                || parsed == self.ips.network()
                || parsed == self.ips.broadcast()
            {
                return Err(invalid(
                    svc,
                    "spec.clusterIPs[0]",
                    json!(requested),
                    format!(
                        "failed to allocate IP {requested}: provided IP is not in the valid range. The range of valid IPs is {}",
                        self.ips
                    ),
                ));
            }
            if !self
                .reserve(&self.ip_key(&requested), owner, dry_run, reserved)
                .await?
            {
                return Err(invalid(
                    svc,
                    "spec.clusterIPs[0]",
                    json!(requested),
                    format!("failed to allocate IP {requested}: provided IP is already allocated"),
                ));
            }
            requested
        };
        svc["spec"]["clusterIP"] = json!(ip);
        svc["spec"]["clusterIPs"] = json!([ip]);
        Ok(())
    }

    async fn allocate_ports(
        &self,
        svc: &mut Value,
        old_ports: &[u16],
        owner: &str,
        dry_run: bool,
        reserved: &mut Reserved,
    ) -> Result<(), ApiError> {
        let n = svc["spec"]["ports"].as_array().map_or(0, |a| a.len());
        for i in 0..n {
            let port = svc["spec"]["ports"][i]["nodePort"].as_u64();
            match port {
                Some(p) if old_ports.contains(&(p as u16)) => {}
                Some(p) => {
                    let p16 = p as u16;
                    if !self.ports.contains(&p16) || p > u16::MAX as u64 {
                        return Err(invalid(
                            svc,
                            &format!("spec.ports[{i}].nodePort"),
                            json!(p),
                            format!(
                                "provided port is not in the valid range. The range of valid ports is {}-{}",
                                self.ports.start(),
                                self.ports.end()
                            ),
                        ));
                    }
                    if !self
                        .reserve(&self.port_key(p16), owner, dry_run, reserved)
                        .await?
                    {
                        return Err(invalid(
                            svc,
                            &format!("spec.ports[{i}].nodePort"),
                            json!(p),
                            "provided port is already allocated".into(),
                        ));
                    }
                }
                None => {
                    let start = *self.ports.start() as u64;
                    let size = (*self.ports.end() as u64) - start + 1;
                    let candidate = move |i: u64| (start + i).to_string();
                    let key_of = |c: &str| format!("{}{c}", self.port_key_prefix());
                    let got = self
                        .allocate(size, &candidate, &key_of, owner, dry_run, reserved)
                        .await?
                        .ok_or_else(|| {
                            ApiError::internal("failed to allocate a nodePort: range is full")
                        })?;
                    svc["spec"]["ports"][i]["nodePort"] =
                        json!(got.parse::<u16>().expect("a port we formatted"));
                }
            }
        }
        Ok(())
    }

    fn owner(svc: &Value) -> String {
        format!(
            "{}/{}",
            svc["metadata"]["namespace"].as_str().unwrap_or(""),
            svc["metadata"]["name"].as_str().unwrap_or("")
        )
    }

    pub async fn on_create(
        &self,
        info: &ResourceInfo,
        svc: &mut Value,
        dry_run: bool,
    ) -> Result<Reserved, ApiError> {
        let mut reserved = Vec::new();
        if !is_service(info) {
            return Ok(reserved);
        }
        let owner = Self::owner(svc);
        let result = async {
            self.allocate_ip(svc, &owner, dry_run, &mut reserved)
                .await?;
            if needs_node_ports(svc) {
                self.allocate_ports(svc, &[], &owner, dry_run, &mut reserved)
                    .await?;
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => Ok(reserved),
            Err(e) => {
                self.release(&reserved).await;
                Err(e)
            }
        }
    }

    /// Allocates node ports a type change or a new port needs; drops node
    /// ports from a service that no longer has that type.
    pub async fn on_update(
        &self,
        info: &ResourceInfo,
        svc: &mut Value,
        old: &Value,
        dry_run: bool,
    ) -> Result<Reserved, ApiError> {
        let mut reserved = Vec::new();
        if !is_service(info) {
            return Ok(reserved);
        }
        if needs_node_ports(svc) {
            let owner = Self::owner(svc);
            if let Err(e) = self
                .allocate_ports(svc, &node_ports(old), &owner, dry_run, &mut reserved)
                .await
            {
                self.release(&reserved).await;
                return Err(e);
            }
        } else if let Some(ports) = svc["spec"]["ports"].as_array_mut() {
            for p in ports {
                p.as_object_mut().map(|m| m.remove("nodePort"));
            }
        }
        Ok(reserved)
    }

    /// After an update is stored: frees node ports it gave up.
    pub async fn on_updated(&self, info: &ResourceInfo, svc: &Value, old: &Value) {
        if !is_service(info) {
            return;
        }
        let now = node_ports(svc);
        let gone: Vec<String> = node_ports(old)
            .into_iter()
            .filter(|p| !now.contains(p))
            .map(|p| self.port_key(p))
            .collect();
        self.release(&gone).await;
    }

    pub async fn on_delete(&self, info: &ResourceInfo, svc: &Value) {
        if !is_service(info) {
            return;
        }
        let mut keys: Vec<String> = cluster_ips(svc).iter().map(|ip| self.ip_key(ip)).collect();
        keys.extend(node_ports(svc).into_iter().map(|p| self.port_key(p)));
        self.release(&keys).await;
    }

    /// Frees reservations no service holds (left by a crash between
    /// reservation and create). A key must be seen unowned in two runs in a
    /// row, so a create in flight on another apiserver is never robbed.
    /// Returns the unowned keys of this run, for the next one.
    pub async fn repair(&self, services: &[Value], suspects: &HashSet<String>) -> HashSet<String> {
        let mut owned: HashSet<String> = HashSet::new();
        for svc in services {
            owned.extend(cluster_ips(svc).iter().map(|ip| self.ip_key(ip)));
            owned.extend(node_ports(svc).into_iter().map(|p| self.port_key(p)));
        }
        let mut unowned = HashSet::new();
        for prefix in [self.ip_key(""), self.port_key_prefix()] {
            let Ok(page) = self.storage.list(&prefix, &ListOptions::default()).await else {
                continue;
            };
            unowned.extend(
                page.items
                    .into_iter()
                    .map(|kv| kv.key)
                    .filter(|k| !owned.contains(k)),
            );
        }
        let leaked: Vec<String> = unowned.intersection(suspects).cloned().collect();
        if !leaked.is_empty() {
            tracing::info!(
                count = leaked.len(),
                "releasing service allocations no service holds"
            );
            self.release(&leaked).await;
        }
        unowned.difference(suspects).cloned().collect()
    }

    fn port_key_prefix(&self) -> String {
        format!("{}/ranges/servicenodeports/", self.root)
    }

    pub async fn release(&self, keys: &[String]) {
        for k in keys {
            if let Err(e) = self.storage.delete(k, None).await
                && !matches!(e, StorageError::NotFound(_))
            {
                tracing::warn!(key = %k, error = %e, "could not release a service allocation");
            }
        }
    }
}
