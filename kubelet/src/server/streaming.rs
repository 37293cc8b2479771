//! exec, attach and port-forward.

use super::{Body, text};
use crate::pods::Ctx;
use http::{Request, StatusCode};
use hyper::body::Incoming;

pub async fn handle(
    _ctx: &Ctx,
    _req: Request<Incoming>,
    _segments: &[&str],
) -> http::Response<Body> {
    text(
        StatusCode::NOT_IMPLEMENTED,
        "exec, attach and port-forward are not built in this kubelet yet",
    )
}
