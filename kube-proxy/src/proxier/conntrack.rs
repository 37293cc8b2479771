//! Stale UDP flows. A UDP "connection" in conntrack keeps going to the
//! endpoint it was first NATed to, even after that endpoint is gone; as
//! upstream, kube-proxy deletes the flows of UDP endpoints that are no
//! longer used, so clients (DNS above all) move to a live one.

use crate::state::{Protocol, ServicePort};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};

/// UDP endpoints used in `old` and not in `new`.
pub fn gone_udp_endpoints(old: &[ServicePort], new: &[ServicePort]) -> BTreeSet<(Ipv4Addr, u16)> {
    let used = |ports: &[ServicePort]| -> BTreeSet<(Ipv4Addr, u16)> {
        ports
            .iter()
            .filter(|p| p.protocol == Protocol::Udp)
            .flat_map(|p| {
                let mut eps = p.usable(false);
                eps.extend(p.usable(true));
                eps.into_iter().map(|e| (e.ip, e.port)).collect::<Vec<_>>()
            })
            .collect()
    };
    let now = used(new);
    used(old).difference(&now).copied().collect()
}

pub async fn clear_stale(old: &[ServicePort], new: &[ServicePort]) {
    static MISSING: AtomicBool = AtomicBool::new(false);
    for (ip, port) in gone_udp_endpoints(old, new) {
        if MISSING.load(Ordering::Relaxed) {
            return;
        }
        let (ip, port) = (ip.to_string(), port.to_string());
        let args = [
            "-D",
            "-p",
            "udp",
            "--reply-src",
            &ip,
            "--reply-port-src",
            &port,
        ];
        match super::run("conntrack", &args, None).await {
            Ok(_) => tracing::debug!(%ip, %port, "deleted stale UDP flows"),
            Err(super::Error::Spawn { source, .. }) => {
                MISSING.store(true, Ordering::Relaxed);
                tracing::warn!(error = %source, "conntrack is not available: stale UDP flows are not deleted");
            }
            // Exit status 1 when there was no flow to delete.
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{build, tests::service, tests::slice};
    use serde_json::json;

    #[test]
    fn finds_udp_endpoints_that_went_away() {
        let svc = service(json!({
            "metadata": {"namespace": "kube-system", "name": "dns"},
            "spec": {"clusterIP": "10.96.0.10", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}
        }));
        let eps = |ips: &[&str]| {
            let endpoints: Vec<_> = ips.iter().map(|ip| json!({"addresses": [ip]})).collect();
            slice(json!({
                "metadata": {"namespace": "kube-system", "name": "dns-1",
                             "labels": {"kubernetes.io/service-name": "dns"}},
                "addressType": "IPv4",
                "ports": [{"name": "dns", "port": 5353, "protocol": "UDP"}],
                "endpoints": endpoints
            }))
        };
        let old = build(
            std::slice::from_ref(&svc),
            &[eps(&["10.244.0.2", "10.244.0.3"])],
            "n",
        );
        let new = build(&[svc], &[eps(&["10.244.0.3"])], "n");
        let gone = gone_udp_endpoints(&old, &new);
        assert_eq!(
            gone.into_iter().collect::<Vec<_>>(),
            [("10.244.0.2".parse().unwrap(), 5353)]
        );
        assert!(gone_udp_endpoints(&new, &old).is_empty());
    }
}
