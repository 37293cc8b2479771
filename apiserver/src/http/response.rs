//! Response encoding: JSON, YAML or a meta.k8s.io Table, chosen from the
//! Accept header as upstream's content negotiation does.

use crate::error::ApiError;
use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use serde_json::Value;
use std::convert::Infallible;

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into()).boxed_unsync()
}

/// What the client asked the object to be rendered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
    /// `application/json;as=Table;v=v1;g=meta.k8s.io`
    Table,
    /// `application/json;as=PartialObjectMetadata(List);v=v1;g=meta.k8s.io`
    Metadata,
}

/// Picks the first acceptable media type in the client's order.
pub fn negotiate(accept: Option<&str>) -> Result<Format, ApiError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Format::Json);
    };
    for part in accept.split(',') {
        let mut params = part.split(';').map(str::trim);
        let media = params.next().unwrap_or("");
        let params: Vec<&str> = params.collect();
        let has = |p: &str| params.iter().any(|x| x.replace(' ', "") == p);
        match media {
            "application/json" | "*/*" | "application/*"
                if has("as=Table") && has("g=meta.k8s.io") && (has("v=v1") || has("v=v1beta1")) =>
            {
                return Ok(Format::Table);
            }
            "application/json" | "*/*" | "application/*"
                if (has("as=PartialObjectMetadata") || has("as=PartialObjectMetadataList"))
                    && has("g=meta.k8s.io") =>
            {
                return Ok(Format::Metadata);
            }
            "application/json" | "*/*" | "application/*"
                if params.iter().any(|p| p.starts_with("as=")) => {}
            "application/json" | "*/*" | "application/*" => return Ok(Format::Json),
            "application/yaml" => return Ok(Format::Yaml),
            _ => {}
        }
    }
    Err(ApiError::not_acceptable())
}

pub fn json_bytes(status: StatusCode, body: Bytes) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(body))
        .expect("valid response")
}

/// A JSON list written from its head (kind, apiVersion, metadata) and items
/// that are JSON already, without decoding them.
pub fn json_list(head: &Value, items: &[Bytes]) -> Response<Body> {
    let mut out = serde_json::to_vec(head).expect("JSON values serialize");
    out.pop(); // the closing brace: the items go before it
    out.reserve(items.iter().map(|i| i.len() + 1).sum::<usize>() + 12);
    out.extend_from_slice(br#","items":["#);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.extend_from_slice(b"]}");
    json_bytes(StatusCode::OK, out.into())
}

pub fn object(
    status: StatusCode,
    obj: &Value,
    format: Format,
    warnings: &[String],
) -> Response<Body> {
    let mut b = Response::builder().status(status);
    for w in warnings {
        // RFC 7234 warning as upstream sends it: code 299, agent "-".
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        b = b.header(header::WARNING, format!("299 - \"{escaped}\""));
    }
    let (ct, body) = match format {
        Format::Yaml => (
            "application/yaml",
            serde_yaml_ng::to_string(obj)
                .map(String::into_bytes)
                .unwrap_or_default(),
        ),
        _ => (
            "application/json",
            serde_json::to_vec(obj).expect("JSON values serialize"),
        ),
    };
    b.header(header::CONTENT_TYPE, ct)
        .body(full(body))
        .expect("valid response")
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    let status = e.status();
    super::audit::note_response_object(&status);
    let mut b = Response::builder()
        .status(StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(secs) = e.retry_after {
        b = b.header(header::RETRY_AFTER, secs.to_string());
    }
    b.body(full(
        serde_json::to_vec(&status).expect("JSON values serialize"),
    ))
    .expect("valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_kubectl_headers() {
        let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(Some(table)).unwrap(), Format::Table);
        assert_eq!(negotiate(None).unwrap(), Format::Json);
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf, */*")).unwrap(),
            Format::Json
        );
        assert_eq!(negotiate(Some("application/yaml")).unwrap(), Format::Yaml);
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf"))
                .unwrap_err()
                .code,
            406
        );
        assert_eq!(
            negotiate(Some(
                "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"
            ))
            .unwrap(),
            Format::Metadata
        );
        // Asking for a kind we do not render, with no fallback, is not acceptable.
        assert_eq!(
            negotiate(Some(
                "application/json;as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io"
            ))
            .unwrap_err()
            .code,
            406
        );
    }
}
