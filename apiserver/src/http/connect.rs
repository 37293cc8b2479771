//! Connect subresources, served by the kubelet of the pod's node:
//! `pods/log`, `pods/exec`, `pods/attach`, `pods/portforward` and
//! `nodes/proxy`. The request is forwarded over HTTPS to the kubelet's
//! API (`/containerLogs/...`, `/exec/...`, ...) and its answer streamed
//! back; exec, attach and port-forward upgrade (SPDY or WebSocket) and are
//! spliced through.

use super::App;
use super::request::ResourcePath;
use super::response::{Body, error_response};
use crate::error::ApiError;
use crate::registry::ResourceInfo;
use http::{Method, Request, Response, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::Value;

pub fn is_connect(resource: &str, subresource: Option<&str>) -> bool {
    matches!(
        (resource, subresource),
        ("pods", Some("log" | "exec" | "attach" | "portforward")) | ("nodes", Some("proxy"))
    )
}

pub async fn handle(
    app: &App,
    info: &'static ResourceInfo,
    path: &ResourcePath,
    req: Request<Incoming>,
) -> Response<Body> {
    match connect(app, info, path, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

/// The container a request is for: `container=`, else the pod's only
/// container or its `kubectl.kubernetes.io/default-container`.
fn container(pod: &Value, query: Option<&str>, init_allowed: bool) -> Result<String, ApiError> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let names = |field: &str| -> Vec<String> {
        pod["spec"][field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(String::from))
            .collect()
    };
    let containers = names("containers");
    let mut all = containers.clone();
    if init_allowed {
        all.extend(names("initContainers"));
    }
    all.extend(names("ephemeralContainers"));
    let asked = super::request::parse_query(query)
        .remove("container")
        .filter(|c| !c.is_empty());
    match asked {
        Some(c) if all.contains(&c) => Ok(c),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None => {
            if let Some(d) =
                pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"].as_str()
                && containers.iter().any(|c| c == d)
            {
                return Ok(d.to_string());
            }
            match containers.as_slice() {
                [only] => Ok(only.clone()),
                _ => Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    containers.join(" ")
                ))),
            }
        }
    }
}

/// The query without `container` (the kubelet takes it in the path).
fn rest_of_query(query: Option<&str>) -> String {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .filter(|(k, _)| k != "container")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

async fn connect(
    app: &App,
    info: &'static ResourceInfo,
    path: &ResourcePath,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let name = path.name.clone().unwrap_or_default();
    let sub = path.subresource.clone().unwrap_or_default();
    let query = req.uri().query().map(String::from);
    let method = req.method().clone();
    let (node_name, target) = if path.resource == "nodes" {
        let rest = path.proxy_path.clone().unwrap_or_default();
        let q = query
            .as_deref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        (name.clone(), format!("/{rest}{q}"))
    } else {
        let ns = path.namespace.clone().unwrap_or_default();
        let pod = app.store.get(info, &ns, &name).await?;
        let node = pod["spec"]["nodeName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if node.is_empty() {
            return Err(ApiError::bad_request(format!(
                "pod {name} does not have a host assigned"
            )));
        }
        let allowed: &[Method] = if sub == "log" {
            &[Method::GET]
        } else {
            &[Method::GET, Method::POST]
        };
        if !allowed.contains(&method) {
            return Err(ApiError::method_not_supported(
                "",
                &format!("pods/{sub}"),
                method.as_str(),
            ));
        }
        let phase = pod["status"]["phase"].as_str().unwrap_or_default();
        if sub != "log" && matches!(phase, "Succeeded" | "Failed") {
            return Err(ApiError::bad_request(format!(
                "cannot {sub} into a container in a completed pod; current phase is {phase}"
            )));
        }
        let q = rest_of_query(query.as_deref());
        let q = if q.is_empty() {
            String::new()
        } else {
            format!("?{q}")
        };
        let target = match sub.as_str() {
            "portforward" => format!("/portForward/{ns}/{name}{q}"),
            _ => {
                let c = container(&pod, query.as_deref(), sub == "log")?;
                let kind = match sub.as_str() {
                    "log" => "containerLogs",
                    other => other,
                };
                format!("/{kind}/{ns}/{name}/{c}{q}")
            }
        };
        (node, target)
    };
    let nodes = app
        .registry
        .get("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("nodes are not served"))?;
    let node = app.store.get(nodes, "", &node_name).await?;
    let (host, port) = app.kubelet.location(&node).ok_or_else(|| {
        ApiError::internal(format!("no preferred addresses found for node {node_name}"))
    })?;
    let io = app
        .kubelet
        .connect(&host, port)
        .await
        .map_err(|e| ApiError::internal(format!("error dialing backend: {e:#}")))?;
    let resp = common::proxy::forward(io, req, &target, &format!("{host}:{port}"))
        .await
        .map_err(|e| ApiError::internal(format!("error trying to reach the kubelet: {e}")))?;
    let (parts, body) = resp.into_parts();
    let ok = parts.status.is_success() || parts.status == http::StatusCode::SWITCHING_PROTOCOLS;
    if !ok && sub == "log" {
        // As upstream, a log error reaches the user as a Status.
        let text = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let message = String::from_utf8_lossy(&text).trim().to_string();
        let code = parts.status.as_u16();
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            _ => "InternalError",
        };
        return Err(ApiError::new(code, reason, message));
    }
    let body = BodyExt::boxed_unsync(common::proxy::infallible(body));
    let mut out = Response::from_parts(parts, body);
    out.headers_mut().remove(header::TRANSFER_ENCODING);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_container() {
        let pod = serde_json::json!({"metadata": {"name": "p"}, "spec": {
            "initContainers": [{"name": "init"}], "containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(container(&pod, Some("container=b"), false).unwrap(), "b");
        assert_eq!(
            container(&pod, Some("container=init"), true).unwrap(),
            "init"
        );
        let e = container(&pod, None, false).unwrap_err();
        assert_eq!(
            e.message,
            "a container name must be specified for pod p, choose one of: [a b]"
        );
        assert!(container(&pod, Some("container=zz"), true).is_err());
        let one =
            serde_json::json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}});
        assert_eq!(container(&one, None, false).unwrap(), "a");
        assert_eq!(
            rest_of_query(Some("container=a&command=sh&command=-c&tty=true")),
            "command=sh&command=-c&tty=true"
        );
    }
}
