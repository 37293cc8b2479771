//! Node IPAM (upstream's `nodeipam` with the range allocator): with
//! `--allocate-node-cidrs`, every node gets a `spec.podCIDR` of
//! `--node-cidr-mask-size` bits from `--cluster-cidr`, never one in use.

use super::controller_utils::moot;
use super::{Context, Controller, SyncError};
use crate::informers::{Informer, key_of};
use crate::workqueue::WorkQueue;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const NAME: &str = "nodeipam";

/// An IPv4 range: network address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub network: u32,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (ip, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("{s:?}: only IPv4 CIDRs are supported"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| format!("{s:?}: bad prefix length"))?;
        if prefix > 32 {
            return Err(format!("{s:?}: bad prefix length"));
        }
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Ok(Cidr {
            network: u32::from(ip) & mask,
            prefix,
        })
    }

    pub fn contains(&self, other: &Cidr) -> bool {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        };
        other.prefix >= self.prefix && other.network & mask == self.network
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }
}

/// The ranges of `cluster` of `mask` bits, handed out in order.
pub struct Allocator {
    cluster: Cidr,
    mask: u8,
    used: Vec<Cidr>,
}

impl Allocator {
    pub fn new(cluster: Cidr, mask: u8) -> Result<Self, String> {
        if mask < cluster.prefix || mask > 32 {
            return Err(format!(
                "--node-cidr-mask-size {mask} does not fit in --cluster-cidr {cluster}"
            ));
        }
        Ok(Allocator {
            cluster,
            mask,
            used: Vec::new(),
        })
    }

    pub fn occupy(&mut self, c: Cidr) {
        if self.cluster.contains(&c) && !self.used.contains(&c) {
            self.used.push(c);
        }
    }

    pub fn allocate(&mut self) -> Option<Cidr> {
        let count = 1u64 << (self.mask - self.cluster.prefix);
        let step = 1u64 << (32 - self.mask);
        (0..count)
            .map(|i| Cidr {
                network: (u64::from(self.cluster.network) + i * step) as u32,
                prefix: self.mask,
            })
            .find(|c| !self.used.iter().any(|u| u.contains(c) || c.contains(u)))
            .inspect(|c| self.used.push(*c))
    }
}

pub struct NodeIpam {
    ctx: Arc<Context>,
    queue: Arc<WorkQueue>,
    nodes: Arc<Informer<Node>>,
    allocator: Mutex<Allocator>,
}

fn pod_cidr(n: &Node) -> Option<&str> {
    n.spec
        .as_ref()?
        .pod_cidr
        .as_deref()
        .filter(|c| !c.is_empty())
}

impl NodeIpam {
    pub fn start(ctx: &Arc<Context>, allocator: Allocator) -> Arc<dyn Controller> {
        let queue = WorkQueue::new(NAME, ctx.queue_metrics.clone());
        let nodes = ctx.informers.get::<Node>();
        let q = queue.clone();
        nodes.on_change(move |_, new| {
            if let Some(n) = new.filter(|n| pod_cidr(n).is_none()) {
                q.add(&key_of(n));
            }
        });
        Arc::new(NodeIpam {
            ctx: ctx.clone(),
            queue,
            nodes,
            allocator: Mutex::new(allocator),
        })
    }
}

#[async_trait::async_trait]
impl Controller for NodeIpam {
    fn name(&self) -> &'static str {
        NAME
    }

    fn queue(&self) -> &Arc<WorkQueue> {
        &self.queue
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>, SyncError> {
        let Some(node) = self.nodes.get(key).filter(|n| pod_cidr(n).is_none()) else {
            return Ok(None);
        };
        let cidr = {
            let mut a = self.allocator.lock().expect("never poisoned");
            // What the other nodes hold, as the cache has it now.
            for n in self.nodes.store().state() {
                if let Some(c) = pod_cidr(&n).and_then(|c| Cidr::parse(c).ok()) {
                    a.occupy(c);
                }
            }
            a.allocate()
        };
        let Some(cidr) = cidr else {
            self.ctx.recorder.record(
                "node-ipam-controller",
                node.as_ref(),
                "Normal",
                "CIDRNotAvailable",
                format!("Node {key} status is now: CIDRNotAvailable"),
            );
            return Err(SyncError::Other(
                "no pod CIDR is left in --cluster-cidr".into(),
            ));
        };
        let api: Api<Node> = Api::all(self.ctx.client.clone());
        let patch = json!({"spec": {"podCIDR": cidr.to_string(), "podCIDRs": [cidr.to_string()]}});
        tracing::info!(node = key, %cidr, "assigned a pod CIDR");
        moot(
            api.patch(key, &PatchParams::default(), &Patch::Merge(patch))
                .await,
        )
        .map(|_| None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_handed_out_in_order_around_those_in_use() {
        let mut a = Allocator::new(Cidr::parse("10.200.0.0/16").unwrap(), 24).unwrap();
        a.occupy(Cidr::parse("10.200.1.0/24").unwrap());
        let got: Vec<String> = (0..3).map(|_| a.allocate().unwrap().to_string()).collect();
        assert_eq!(got, ["10.200.0.0/24", "10.200.2.0/24", "10.200.3.0/24"]);
        let mut tiny = Allocator::new(Cidr::parse("10.0.0.0/23").unwrap(), 24).unwrap();
        assert!(tiny.allocate().is_some() && tiny.allocate().is_some());
        assert_eq!(tiny.allocate(), None, "the range is used up");
        assert!(Allocator::new(Cidr::parse("10.0.0.0/24").unwrap(), 16).is_err());
        assert!(Cidr::parse("fd00::/64").is_err());
    }
}
