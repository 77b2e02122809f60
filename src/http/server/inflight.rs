//! [`Inflight`]: one traced request, from `call` until its response body ends or is dropped.
//!
//! It owns the span (inside the request's OTel [`Context`]), chooses the request id and
//! records the end: response attributes, span status, metrics, slow flag and event.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::request::Parts;
use http::{HeaderValue, StatusCode};
use opentelemetry::trace::{SpanBuilder, SpanKind, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue, StringValue};
use tokio::time::Instant;

use super::attrs::request_attributes;
use super::options::{LayerState, REQUEST_ID_HEADER, TRACERESPONSE_HEADER};
use super::routes::{Recorded, RouteEntry};
use crate::exchange::{End, Failure, Kept, SpanEnd};
use crate::http::semconv::*;
use crate::keys::REQUEST_ID;
use crate::propagation::{upstream, valid_request_id};
use crate::util::hex_into;

/// One traced request in flight.
pub(crate) struct Inflight {
    /// The request's context: the upstream context plus the server span.
    pub(crate) cx: Context,
    state: Arc<LayerState>,
    entry: Arc<RouteEntry>,
    route: Cow<'static, str>,
    method: usize,
    start: Instant,
    start_time: SystemTime,
    request_size: Option<u64>,
    response_size: u64,
    status: Option<StatusCode>,
    request_id: Option<HeaderValue>,
    /// A generated request id, recorded at the end.
    generated_id: Option<StringValue>,
    done: bool,
}

impl std::fmt::Debug for Inflight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflight")
            .field("span", self.cx.span().span_context())
            .field("route", &self.route)
            .field("status", &self.status)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Inflight {
    /// Start the server span for a request (and set its request id on `parts`).
    pub(crate) fn start(state: &Arc<LayerState>, parts: &mut Parts) -> Inflight {
        let start = Instant::now();
        let start_time = SystemTime::now();
        let opts = &state.opts;
        let method = method_index(&parts.method);
        let resolved = state.routes.resolve(state.route(parts), method);
        let upstream = upstream(&opts.trust, parts);

        let (mut attrs, request_size) =
            request_attributes(opts, parts, method, resolved.route.clone());
        let mut request_id = None;
        if let Some((value, attribute)) = opts.request_id.then(|| incoming_id(parts)).flatten() {
            attrs.push(attribute);
            request_id = Some(value);
        }

        let mut builder = SpanBuilder::from_name(resolved.span_name)
            .with_kind(SpanKind::Server)
            .with_start_time(start_time);
        // Set directly (not `with_attributes`) so the reserved capacity reaches the span.
        builder.attributes = Some(attrs);
        builder.links = upstream.link.map(|link| vec![link]);
        let parent = upstream.parent;
        let span = opts.tracer.build_with_context(builder, &parent);
        let mut cx = crate::propagation::mark_random(&parent, parent.with_span(span));
        if opts.critical_routes.iter().any(|r| *r == *resolved.route) {
            // Log records of this request escape log sampling.
            cx = cx.with_value(crate::log::KeepLogs);
        }

        let mut generated_id = None;
        if opts.request_id && request_id.is_none() {
            let (value, text) = generate_request_id(&cx);
            parts.headers.insert(REQUEST_ID_HEADER, value.clone());
            request_id = Some(value);
            // Recorded with the end attributes: one span lock fewer.
            generated_id = Some(text);
        }
        if let Some(g) = state.routes.metrics().and_then(|m| m.active(method)) {
            g.inc();
        }
        Inflight {
            cx,
            state: state.clone(),
            entry: resolved.entry,
            route: resolved.route,
            method,
            start,
            start_time,
            request_size,
            response_size: 0,
            status: None,
            request_id,
            generated_id,
            done: false,
        }
    }

    /// The response headers are ready: note the status, add the configured headers.
    pub(crate) fn on_response(&mut self, parts: &mut http::response::Parts) {
        self.status = Some(parts.status);
        if let Some(id) = &self.request_id {
            if !parts.headers.contains_key(&REQUEST_ID_HEADER) {
                parts.headers.insert(REQUEST_ID_HEADER, id.clone());
            }
        }
        if let Some(name) = &self.state.opts.trace_id_header {
            let sc = self.cx.span().span_context().clone();
            if sc.is_valid() {
                let mut buf = [0u8; 32];
                hex_into(&sc.trace_id().to_bytes(), &mut buf);
                if let Ok(v) = HeaderValue::from_bytes(&buf) {
                    parts.headers.insert(name.clone(), v);
                }
            }
        }
        if self.state.opts.traceresponse {
            if let Some(v) = traceresponse(&self.cx) {
                parts.headers.insert(TRACERESPONSE_HEADER, v);
            }
        }
    }

    /// Count response body bytes as they stream.
    pub(crate) fn add_body_bytes(&mut self, n: usize) {
        self.response_size = self.response_size.saturating_add(n as u64);
    }

    /// End the span and record the request; idempotent.
    pub(crate) fn finish(&mut self, end: End<&'static str>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let elapsed = self.start.elapsed();
        let slow = elapsed > self.state.opts.slow_threshold;
        let status = self.status.map(|s| s.as_u16());
        let span_end = SpanEnd {
            failure: failure(end, status),
            slow,
            cancelled: matches!(end, End::Dropped),
            // The server span is its trace's local root.
            local_root: true,
            at: self.start_time + elapsed,
            exemplar: Some(&self.state.opts.thinned),
        };
        let [status_code, body_size] = response_attributes(status, self.response_size);
        let generated_id = self
            .generated_id
            .take()
            .map(|id| KeyValue::new(REQUEST_ID, id));
        let kept = span_end.end(&self.cx.span(), [status_code, body_size, generated_id]);
        self.record(status, elapsed, slow, kept);
        if slow {
            self.warn_slow(elapsed, status, matches!(end, End::Dropped));
        }
    }

    /// The request leaves the active gauge and counts in its route's instruments.
    fn record(&self, status: Option<u16>, duration: Duration, slow: bool, kept: Option<Kept>) {
        if let Some(g) = self
            .state
            .routes
            .metrics()
            .and_then(|m| m.active(self.method))
        {
            g.dec();
        }
        self.entry.record(
            self.method,
            status,
            &Recorded {
                duration,
                kept,
                request_size: self.request_size,
                response_size: self.response_size,
                slow,
            },
        );
    }

    fn warn_slow(&self, elapsed: Duration, status: Option<u16>, cancelled: bool) {
        // Attached so log bridges stamp the record with this request's trace and span ids.
        // The trace id is not a field: the record carries it from the context.
        let _guard = self.cx.clone().attach();
        let request_id = self
            .request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::warn!(
            target: "paytrace::http",
            request_id,
            method = METHODS[self.method],
            route = %self.route,
            status = status.unwrap_or(0),
            cancelled,
            duration_ms = elapsed.as_millis() as u64,
            threshold_ms = self.state.opts.slow_threshold.as_millis() as u64,
            "slow HTTP request"
        );
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        // Dropped before the response (or its body) completed: the client went away or a
        // timeout fired — or the handler panicked and this is the unwinding. The span still
        // ends, and says which.
        let end = if std::thread::panicking() {
            End::Failed(PANIC_ERROR)
        } else {
            End::Dropped
        };
        self.finish(end);
    }
}

/// How a request that ended so failed, if it did; server side a 5xx is a failure and a 4xx is
/// not (the client erred), as semconv says.
fn failure(end: End<&'static str>, status: Option<u16>) -> Option<Failure> {
    let (error_type, description) = match end {
        End::Failed(type_name) => (type_name.into(), type_name),
        End::Dropped => (
            CANCELLED_ERROR.into(),
            "request cancelled before the response completed",
        ),
        End::Complete => match status {
            Some(code) if code >= 500 => (status_error_type(code), ""),
            _ => return None,
        },
    };
    Some(Failure {
        error_type,
        description: Cow::Borrowed(description),
    })
}

/// `http.response.status_code` and `http.response.body.size`, once a response started.
fn response_attributes(status: Option<u16>, body_size: u64) -> [Option<KeyValue>; 2] {
    let body_size = i64::try_from(body_size).unwrap_or(i64::MAX);
    [
        status.map(|code| KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(code))),
        status.map(|_| KeyValue::new(HTTP_RESPONSE_BODY_SIZE, body_size)),
    ]
}

/// A valid incoming `x-request-id`: the header value, and the `paytrace.request_id` attribute.
fn incoming_id(parts: &Parts) -> Option<(HeaderValue, KeyValue)> {
    let value = parts.headers.get(&REQUEST_ID_HEADER)?;
    if !valid_request_id(value.as_bytes()) {
        return None;
    }
    // Valid ids are visible ASCII, so `to_str` cannot fail.
    let text = value.to_str().ok()?.to_owned();
    Some((value.clone(), KeyValue::new(REQUEST_ID, text)))
}

/// `00-{trace_id}-{span_id}-{flags}` (W3C Trace Context Level 2 `traceresponse`) of the span
/// of `cx` when valid; flags sampled (`01`) and random (`02`) as in an outgoing `traceparent`.
fn traceresponse(cx: &Context) -> Option<HeaderValue> {
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return None;
    }
    // "00-" + 32 + "-" + 16 + "-" + 2.
    let mut buf = *b"00-00000000000000000000000000000000-0000000000000000-00";
    hex_into(&sc.trace_id().to_bytes(), &mut buf[3..35]);
    hex_into(&sc.span_id().to_bytes(), &mut buf[36..52]);
    hex_into(&[crate::propagation::w3c_flags(cx, sc)], &mut buf[53..55]);
    HeaderValue::from_bytes(&buf).ok()
}

/// `{trace_id}-{span_id}` of the server span: unique (the span id is), and enough to find
/// the trace from a request id a customer quotes. One allocation serves the header value (and
/// its clones) and the span attribute.
fn generate_request_id(cx: &Context) -> (HeaderValue, StringValue) {
    let sc = cx.span().span_context().clone();
    let text: Arc<str> = if sc.is_valid() {
        let mut buf = [b'-'; 49];
        hex_into(&sc.trace_id().to_bytes(), &mut buf[..32]);
        hex_into(&sc.span_id().to_bytes(), &mut buf[33..]);
        // Hex digits and '-': always UTF-8.
        Arc::from(std::str::from_utf8(&buf).unwrap_or_default())
    } else {
        // Unreachable with the SDK tracer (it always assigns ids); a process-unique fallback.
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Arc::from(format!(
            "{:x}-{:x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ))
    };
    // Hex digits and '-' are valid header bytes; the fallback keeps the request untouched.
    let value = HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(SharedStr(text.clone())))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    (value, StringValue::from(text))
}

/// An `Arc<str>` as header bytes, shared with the span attribute.
struct SharedStr(Arc<str>);

impl AsRef<[u8]> for SharedStr {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}
