//! The HTTP side of auditing: the event of the request being served lives
//! in a task-local, so the handlers deep in the call tree note the bodies
//! they decode and render without passing it around; the response body is
//! wrapped so `ResponseComplete` is written when the last byte went out
//! (or the client left), which for a watch is when it ends.

use crate::audit::{Auditor, EventBuilder, Stage};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use serde_json::Value;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use super::response::Body;

/// The event of one request, shared by the handler and the response body.
#[derive(Clone)]
pub struct Recording {
    auditor: Arc<Auditor>,
    event: Arc<Mutex<EventBuilder>>,
}

tokio::task_local! {
    static CURRENT: Recording;
}

impl Recording {
    pub fn new(auditor: Arc<Auditor>, event: EventBuilder) -> Self {
        Recording {
            auditor,
            event: Arc::new(Mutex::new(event)),
        }
    }

    pub fn with(&self, f: impl FnOnce(&mut EventBuilder)) {
        f(&mut self.event.lock().expect("never poisoned"));
    }

    pub fn emit(&self, stage: Stage) {
        let mut ev = self.event.lock().expect("never poisoned");
        if let Err(e) = self.auditor.emit(&mut ev, stage) {
            // Upstream's default (blocking) mode: the request goes on.
            tracing::warn!(error = %e, "writing an audit event failed");
        }
    }

    /// Runs `f` with this recording as the current one.
    pub async fn scope<F: Future>(self, f: F) -> F::Output {
        CURRENT.scope(self, f).await
    }

    /// The response, its code noted; `ResponseComplete` follows its body.
    pub fn finish(
        self,
        response: http::Response<Body>,
        long_running: bool,
    ) -> http::Response<Body> {
        let code = response.status().as_u16();
        self.with(|ev| ev.set_response_code(code));
        if long_running {
            self.emit(Stage::ResponseStarted);
        }
        response.map(|inner| {
            Audited {
                inner,
                done: Some(self),
            }
            .boxed_unsync()
        })
    }
}

fn current(f: impl FnOnce(&mut EventBuilder)) {
    let _ = CURRENT.try_with(|r| r.with(f));
}

/// The decoded body of a create, update or delete.
pub fn note_request_object(obj: &Value) {
    current(|ev| ev.set_request_object(obj));
}

pub fn note_request_patch(patch: &[u8]) {
    current(|ev| ev.set_request_patch(patch));
}

/// An annotation of the request's event (admission's, e.g. a webhook's).
pub fn note_annotation(key: &str, value: &str) {
    current(|ev| ev.annotate(key, value));
}

/// The object (or Status) sent back.
pub fn note_response_object(obj: &Value) {
    current(|ev| ev.set_response_object(obj));
}

/// A response body that writes `ResponseComplete` when dropped.
struct Audited {
    inner: Body,
    done: Option<Recording>,
}

impl HttpBody for Audited {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Audited {
    fn drop(&mut self) {
        if let Some(r) = self.done.take() {
            r.emit(Stage::ResponseComplete);
        }
    }
}
