//! The admin endpoint: `GET` the state, `PUT` a change as JSON. Mount it on an admin router
//! behind the application's own authentication: paytrace does none.
//!
//! ```text
//! PUT {"log_filter": "info,payments=debug", "ttl_seconds": 600, "set_by": "alice"}
//! PUT {"keep_ratio": 1.0, "ttl_seconds": 300, "set_by": "alice"}
//! PUT {"force_keep_route": "/orders/{id}", "ttl_seconds": 600, "set_by": "alice"}
//! PUT {"reset": true, "set_by": "alice"}
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, UNIX_EPOCH};

use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use serde_json::{json, Value};

use super::{Change, Control};

/// Request bodies above this are refused: a change is a few dozen bytes.
const MAX_BODY: usize = 16 * 1024;

/// The admin tower service from
/// [`Telemetry::control_service`](crate::telemetry::Telemetry::control_service).
#[derive(Debug, Clone)]
pub struct ControlService {
    control: Control,
}

impl ControlService {
    pub(crate) fn new(control: Control) -> Self {
        ControlService { control }
    }
}

impl<B> tower_service::Service<Request<B>> for ControlService
where
    B: Body + Send + 'static,
    B::Data: Send,
{
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<String>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let control = self.control.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let (status, reply) = match parts.method {
                Method::GET => (StatusCode::OK, state(&control)),
                Method::PUT => match read(body).await {
                    Ok(text) => match apply(&control, &text) {
                        Ok(()) => (StatusCode::OK, state(&control)),
                        Err(e) => (StatusCode::BAD_REQUEST, json!({ "error": e })),
                    },
                    Err(e) => (StatusCode::BAD_REQUEST, json!({ "error": e })),
                },
                _ => (
                    StatusCode::METHOD_NOT_ALLOWED,
                    json!({ "error": "GET the state or PUT a change" }),
                ),
            };
            let mut response = Response::new(reply.to_string());
            *response.status_mut() = status;
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            Ok(response)
        })
    }
}

/// The body as text, at most [`MAX_BODY`] bytes.
async fn read<B: Body>(body: B) -> Result<String, String> {
    use bytes::Buf as _;
    let mut body = std::pin::pin!(body);
    let mut out = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|_| "the request body could not be read".to_owned())?;
        if let Ok(mut data) = frame.into_data() {
            while data.has_remaining() {
                let chunk = data.chunk();
                if out.len() + chunk.len() > MAX_BODY {
                    return Err(format!("the request body is over {MAX_BODY} bytes"));
                }
                out.extend_from_slice(chunk);
                let n = chunk.len();
                data.advance(n);
            }
        }
    }
    String::from_utf8(out).map_err(|_| "the request body is not UTF-8".to_owned())
}

/// Apply one change described by a JSON object.
pub(super) fn apply(control: &Control, text: &str) -> Result<(), String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
    let set_by = value
        .get("set_by")
        .and_then(Value::as_str)
        .unwrap_or("control endpoint");
    if value.get("reset").and_then(Value::as_bool) == Some(true) {
        control.reset(set_by);
        return Ok(());
    }
    let ttl = value
        .get("ttl_seconds")
        .and_then(Value::as_u64)
        .map(Duration::from_secs)
        .ok_or("`ttl_seconds` (a whole number of seconds) is required")?;
    let result = if let Some(filter) = value.get("log_filter").and_then(Value::as_str) {
        control.set_log_filter(filter, ttl, set_by)
    } else if let Some(ratio) = value.get("keep_ratio").and_then(Value::as_f64) {
        control.set_keep_ratio(ratio, ttl, set_by)
    } else if let Some(route) = value.get("force_keep_route").and_then(Value::as_str) {
        control.force_keep_route(route, ttl, set_by)
    } else {
        return Err(
            "expected one of `log_filter`, `keep_ratio`, `force_keep_route`, `reset`".into(),
        );
    };
    result.map_err(|e| e.to_string())
}

fn state(control: &Control) -> Value {
    let s = control.state();
    json!({
        "log_filter": s.log_filter,
        "log_filter_change": s.log_filter_change.as_ref().map(change),
        "keep_ratio": s.keep_ratio,
        "keep_ratio_change": s.keep_ratio_change.as_ref().map(change),
        "forced_routes": s.forced_routes.iter().map(change).collect::<Vec<_>>(),
    })
}

fn change<T: serde::Serialize>(c: &Change<T>) -> Value {
    let secs = |t: std::time::SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    json!({
        "value": c.value,
        "set_by": c.set_by,
        "since_unix_seconds": secs(c.since),
        "until_unix_seconds": secs(c.until),
    })
}
