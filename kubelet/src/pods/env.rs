//! A container's environment as upstream builds it: service links first,
//! then envFrom, then env in order (each `$(VAR)` expanded against what
//! came before), with values from the pod's fields, its resources,
//! ConfigMaps and Secrets.

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use kube::api::{Api, ListParams};
use std::collections::BTreeMap;

/// Expands `$(NAME)` from `lookup`; `$$` is a literal `$`; an unknown
/// name is left as written (upstream's expansion rules).
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                    continue;
                }
                b'(' => {
                    if let Some(end) = input[i + 2..].find(')') {
                        let name = &input[i + 2..i + 2 + end];
                        match lookup(name) {
                            Some(v) => out.push_str(&v),
                            None => out.push_str(&input[i..i + 3 + end]),
                        }
                        i += 3 + end;
                        continue;
                    }
                }
                _ => {}
            }
        }
        let ch = input[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// What a pod's fieldRef can read besides the pod itself.
#[derive(Debug, Clone, Default)]
pub struct Runtime {
    pub pod_ips: Vec<String>,
    pub host_ips: Vec<String>,
}

/// The value of a `fieldRef` path.
pub fn field(pod: &Pod, path: &str, rt: &Runtime) -> Result<String, String> {
    let meta = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let subscript = |prefix: &str, map: &Option<BTreeMap<String, String>>| {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(
            map.as_ref()
                .and_then(|m| m.get(key))
                .cloned()
                .unwrap_or_default(),
        )
    };
    if let Some(v) = subscript("metadata.labels['", &meta.labels) {
        return Ok(v);
    }
    if let Some(v) = subscript("metadata.annotations['", &meta.annotations) {
        return Ok(v);
    }
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" | "metadata.annotations" => {
            let map = if path == "metadata.labels" {
                &meta.labels
            } else {
                &meta.annotations
            };
            map.iter()
                .flatten()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        "spec.nodeName" => spec.node_name.unwrap_or_default(),
        "spec.serviceAccountName" => spec.service_account_name.unwrap_or_default(),
        "status.hostIP" => rt.host_ips.first().cloned().unwrap_or_default(),
        "status.hostIPs" => rt.host_ips.join(","),
        "status.podIP" => rt.pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => rt.pod_ips.join(","),
        other => return Err(format!("unsupported fieldRef path {other:?}")),
    })
}

/// The value of a `resourceFieldRef` (`limits.cpu`, `requests.memory`,
/// ...), divided by `divisor` and rounded up; an unset limit is the node's
/// allocatable, as upstream.
pub fn resource(
    c: &Container,
    resource: &str,
    divisor: Option<&str>,
    allocatable: &BTreeMap<String, i64>,
) -> Result<String, String> {
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported resourceFieldRef {resource:?}"))?;
    let value = match kind {
        "limits" => super::qos::limit(c, name).or_else(|| allocatable.get(name).copied()),
        "requests" => super::qos::request(c, name),
        _ => return Err(format!("unsupported resourceFieldRef {resource:?}")),
    }
    .unwrap_or(0);
    let divisor = match divisor {
        Some(d) => common::quantity::parse(name, d)
            .filter(|d| *d > 0)
            .ok_or_else(|| format!("bad divisor {d:?}"))?,
        None if name == "cpu" => 1000,
        None => 1,
    };
    Ok(((value + divisor - 1) / divisor).to_string())
}

/// Docker-link variables for `services` (`FOO_SERVICE_HOST`, `FOO_PORT`...).
pub fn service_links(services: &[Service]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for svc in services {
        let Some(spec) = &svc.spec else { continue };
        let ip = spec.cluster_ip.clone().unwrap_or_default();
        if ip.is_empty() || ip == "None" {
            continue;
        }
        let name = svc
            .metadata
            .name
            .clone()
            .unwrap_or_default()
            .to_uppercase()
            .replace('-', "_");
        let ports = spec.ports.clone().unwrap_or_default();
        let Some(first) = ports.first() else { continue };
        out.push((format!("{name}_SERVICE_HOST"), ip.clone()));
        out.push((format!("{name}_SERVICE_PORT"), first.port.to_string()));
        for p in &ports {
            if let Some(pn) = &p.name {
                out.push((
                    format!(
                        "{name}_SERVICE_PORT_{}",
                        pn.to_uppercase().replace('-', "_")
                    ),
                    p.port.to_string(),
                ));
            }
        }
        let proto = |p: &k8s_openapi::api::core::v1::ServicePort| {
            p.protocol.clone().unwrap_or("TCP".into()).to_lowercase()
        };
        out.push((
            format!("{name}_PORT"),
            format!("{}://{ip}:{}", proto(first), first.port),
        ));
        for p in &ports {
            let pr = proto(p);
            let prefix = format!("{name}_PORT_{}_{}", p.port, pr.to_uppercase());
            out.push((prefix.clone(), format!("{pr}://{ip}:{}", p.port)));
            out.push((format!("{prefix}_PROTO"), pr));
            out.push((format!("{prefix}_PORT"), p.port.to_string()));
            out.push((format!("{prefix}_ADDR"), ip.clone()));
        }
    }
    out
}

/// An ordered environment; a later value replaces an earlier one in place.
#[derive(Debug, Default)]
pub struct Env(Vec<(String, String)>);

impl Env {
    pub fn set(&mut self, k: String, v: String) {
        match self.0.iter_mut().find(|(n, _)| *n == k) {
            Some(slot) => slot.1 = v,
            None => self.0.push((k, v)),
        }
    }
    pub fn get(&self, k: &str) -> Option<String> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }
    pub fn into_vec(self) -> Vec<(String, String)> {
        self.0
    }
}

fn text(data: &Option<BTreeMap<String, String>>, key: &str) -> Option<String> {
    data.as_ref()?.get(key).cloned()
}

fn secret_text(s: &Secret, key: &str) -> Option<String> {
    let bytes = s.data.as_ref()?.get(key)?;
    Some(String::from_utf8_lossy(&bytes.0).into_owned())
}

/// The container's environment, reading ConfigMaps, Secrets and Services
/// from the apiserver. An error is upstream's CreateContainerConfigError
/// message (`configmap "x" not found`).
pub async fn resolve(
    client: &kube::Client,
    pod: &Pod,
    c: &Container,
    rt: &Runtime,
    allocatable: &BTreeMap<String, i64>,
) -> Result<Vec<(String, String)>, String> {
    let ns = pod.metadata.namespace.clone().unwrap_or("default".into());
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let missing = |kind: &str, name: &str| format!("{kind} \"{name}\" not found");
    let api_err = |e: kube::Error| e.to_string();
    let mut env = Env::default();
    let spec = pod.spec.clone().unwrap_or_default();
    if spec.enable_service_links.unwrap_or(true) {
        let services: Api<Service> = Api::namespaced(client.clone(), &ns);
        let mut all = services
            .list(&ListParams::default())
            .await
            .map_err(api_err)?
            .items;
        // The master service is always linked, from the default namespace.
        if ns != "default"
            && let Ok(Some(k)) = Api::<Service>::namespaced(client.clone(), "default")
                .get_opt("kubernetes")
                .await
        {
            all.push(k);
        }
        for (k, v) in service_links(&all) {
            env.set(k, v);
        }
    }
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match configmaps.get_opt(&r.name).await.map_err(api_err)? {
                Some(cm) => {
                    for (k, v) in cm.data.unwrap_or_default() {
                        env.set(format!("{prefix}{k}"), v);
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(missing("configmap", &r.name)),
            }
        }
        if let Some(r) = &from.secret_ref {
            match secrets.get_opt(&r.name).await.map_err(api_err)? {
                Some(s) => {
                    for k in s.data.clone().unwrap_or_default().keys() {
                        env.set(
                            format!("{prefix}{k}"),
                            secret_text(&s, k).unwrap_or_default(),
                        );
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(missing("secret", &r.name)),
            }
        }
    }
    for var in c.env.iter().flatten() {
        let value = match &var.value_from {
            None => {
                let raw = var.value.clone().unwrap_or_default();
                expand(&raw, &|n| env.get(n))
            }
            Some(from) => {
                if let Some(f) = &from.field_ref {
                    field(pod, &f.field_path, rt)?
                } else if let Some(r) = &from.resource_field_ref {
                    let target = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
                        Some(name) => spec
                            .containers
                            .iter()
                            .chain(spec.init_containers.iter().flatten())
                            .find(|x| x.name == name)
                            .ok_or_else(|| format!("container {name:?} not found"))?,
                        None => c,
                    };
                    resource(
                        target,
                        &r.resource,
                        r.divisor.as_ref().map(|d| d.0.as_str()),
                        allocatable,
                    )?
                } else if let Some(r) = &from.config_map_key_ref {
                    let cm = configmaps.get_opt(&r.name).await.map_err(api_err)?;
                    match cm.as_ref().map(|cm| text(&cm.data, &r.key)) {
                        Some(Some(v)) => v,
                        _ if r.optional == Some(true) => continue,
                        None => return Err(missing("configmap", &r.name)),
                        Some(None) => {
                            return Err(format!(
                                "couldn't find key {} in ConfigMap {ns}/{}",
                                r.key, r.name
                            ));
                        }
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    let s = secrets.get_opt(&r.name).await.map_err(api_err)?;
                    match s.as_ref().map(|s| secret_text(s, &r.key)) {
                        Some(Some(v)) => v,
                        _ if r.optional == Some(true) => continue,
                        None => return Err(missing("secret", &r.name)),
                        Some(None) => {
                            return Err(format!(
                                "couldn't find key {} in Secret {ns}/{}",
                                r.key, r.name
                            ));
                        }
                    }
                } else {
                    String::new()
                }
            }
        };
        env.set(var.name.clone(), value);
    }
    Ok(env.into_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_rules() {
        let lookup = |n: &str| (n == "A").then(|| "x".to_string());
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &lookup), "x-$(B)-$(A)-$");
        assert_eq!(expand("$(A", &lookup), "$(A");
        assert_eq!(expand("héllo $(A)", &lookup), "héllo x");
    }

    #[test]
    fn field_and_resource_refs() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c",
                "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}}}]}
        }))
        .unwrap();
        let rt = Runtime {
            pod_ips: vec!["10.244.0.5".into()],
            host_ips: vec!["192.0.2.1".into()],
        };
        assert_eq!(field(&pod, "metadata.labels['app']", &rt).unwrap(), "web");
        assert_eq!(field(&pod, "status.podIP", &rt).unwrap(), "10.244.0.5");
        assert_eq!(field(&pod, "spec.nodeName", &rt).unwrap(), "n1");
        assert!(field(&pod, "spec.bogus", &rt).is_err());
        let c = &pod.spec.as_ref().unwrap().containers[0];
        let alloc = BTreeMap::from([("cpu".to_string(), 2000), ("memory".to_string(), 1 << 30)]);
        assert_eq!(
            resource(c, "limits.memory", Some("1Mi"), &alloc).unwrap(),
            "64"
        );
        assert_eq!(
            resource(c, "requests.cpu", Some("1m"), &alloc).unwrap(),
            "250"
        );
        // requests.cpu rounded up to whole cores without a divisor.
        assert_eq!(resource(c, "requests.cpu", None, &alloc).unwrap(), "1");
        // No cpu limit: the node's allocatable.
        assert_eq!(resource(c, "limits.cpu", None, &alloc).unwrap(), "2");
    }

    #[test]
    fn links_for_services() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "my-db"},
            "spec": {"clusterIP": "10.32.0.9", "ports": [{"name": "sql", "port": 5432, "protocol": "TCP"}]}
        }))
        .unwrap();
        let env: BTreeMap<_, _> = service_links(&[svc]).into_iter().collect();
        assert_eq!(env["MY_DB_SERVICE_HOST"], "10.32.0.9");
        assert_eq!(env["MY_DB_SERVICE_PORT_SQL"], "5432");
        assert_eq!(env["MY_DB_PORT"], "tcp://10.32.0.9:5432");
        assert_eq!(env["MY_DB_PORT_5432_TCP_ADDR"], "10.32.0.9");
    }
}
