//! [`Inflight`]: one traced request, from `call` until the response body ended (or was
//! dropped). It owns the span (inside the request's OTel [`Context`]) and records the end:
//! response attributes, span status, metrics, slow flag and event.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::{CONTENT_LENGTH, HOST, USER_AGENT};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use opentelemetry::trace::{SpanBuilder, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use tokio::time::Instant;

use super::layer::{Shared, REQUEST_ID_HEADER};
use super::metrics::{Recorded, RouteEntry};
use super::recent;
use super::semconv::*;
use crate::propagation::{extract_context, hex_into, valid_request_id};

/// Room for the attributes of a typical request, start and end, so the span's attribute
/// vector is allocated once. Kept under 1 KiB (`KeyValue` is 56 bytes): glibc serves larger
/// requests from its large bins, consolidating fast bins first, which costs more than the
/// rare regrowth (error, slow, cancelled on top of every optional attribute).
const ATTR_CAPACITY: usize = 14;
/// `url.path` / `url.query` / `user_agent.original` are cut to this many bytes (after masking).
const MAX_VALUE: usize = 2048;

/// How a request ended.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    /// The response (headers and body) completed.
    Complete,
    /// The inner service or the response body failed; the error's type name.
    Error(&'static str),
    /// The future or body was dropped first (client gone, timeout).
    Cancelled,
}

/// One traced request in flight.
pub(crate) struct Inflight {
    /// The request's context: the upstream context plus the server span.
    pub(crate) cx: Context,
    shared: Arc<Shared>,
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
    pub(crate) fn start(shared: &Arc<Shared>, parts: &mut Parts) -> Inflight {
        let start = Instant::now();
        let start_time = SystemTime::now();
        let opts = &shared.opts;
        let redactor = &opts.redactor;
        let method = method_index(&parts.method);
        let resolved = shared.routes.resolve(shared.route(parts), method);
        let parent = extract_context(&parts.headers);

        let mut attrs = Vec::with_capacity(ATTR_CAPACITY + opts.record_headers.len());
        attrs.push(KeyValue::new(HTTP_REQUEST_METHOD, METHODS[method]));
        if method == OTHER {
            // Client-chosen tokens: masked like everything else a client sends.
            attrs.push(KeyValue::new(
                HTTP_REQUEST_METHOD_ORIGINAL,
                redactor
                    .mask_pan(method_original(&parts.method))
                    .into_owned(),
            ));
        }
        let scheme = server_scheme(&parts.uri, &parts.headers);
        attrs.push(KeyValue::new(URL_SCHEME, scheme));
        attrs.push(KeyValue::new(
            URL_PATH,
            bounded(redactor.mask_pan(parts.uri.path())),
        ));
        if let Some(query) = parts.uri.query() {
            attrs.push(KeyValue::new(
                URL_QUERY,
                bounded(redactor.redact_query(query)),
            ));
        }
        attrs.push(KeyValue::new(HTTP_ROUTE, cow_value(resolved.route.clone())));
        let authority = match parts.uri.authority() {
            Some(a) => Some(a.as_str()),
            None => parts.headers.get(HOST).and_then(|v| v.to_str().ok()),
        };
        let server = authority.and_then(|authority| {
            recent::server(redactor.policy_id(), authority, |authority| {
                let (host, port) = split_host_port(authority)?;
                Some((Arc::from(&*redactor.mask_pan(host)), port))
            })
        });
        if let Some((host, port)) = server {
            attrs.push(KeyValue::new(SERVER_ADDRESS, host));
            if let Some(port) = port.or_else(|| default_port(scheme)) {
                attrs.push(KeyValue::new(SERVER_PORT, i64::from(port)));
            }
        }
        if let Some(ip) = client_ip(parts) {
            attrs.push(KeyValue::new(CLIENT_ADDRESS, recent::client(ip, ip_text)));
        }
        if let Some(ua) = parts.headers.get(USER_AGENT).and_then(|v| v.to_str().ok()) {
            let ua = recent::agent(redactor.policy_id(), ua, |ua| {
                Arc::from(truncate(&redactor.mask_pan(ua), MAX_VALUE))
            });
            attrs.push(KeyValue::new(USER_AGENT_ORIGINAL, ua));
        }
        if let Some(v) = protocol_version(parts.version) {
            attrs.push(KeyValue::new(NETWORK_PROTOCOL_VERSION, v));
        }
        let request_size = content_length(parts);
        if let Some(size) = request_size {
            attrs.push(KeyValue::new(
                HTTP_REQUEST_BODY_SIZE,
                i64::try_from(size).unwrap_or(i64::MAX),
            ));
        }
        for (name, key) in opts.record_headers.iter() {
            // Checked again here: the redactor may have changed after the list was set.
            if redactor.is_sensitive_header(name) {
                continue;
            }
            let values: Vec<StringValue> = parts
                .headers
                .get_all(name)
                .iter()
                .take(8)
                .map(|v| {
                    let v = String::from_utf8_lossy(v.as_bytes());
                    bounded(redactor.redact_value(name.as_str(), &v)).into()
                })
                .collect();
            if !values.is_empty() {
                attrs.push(KeyValue::new(
                    key.clone(),
                    Value::Array(Array::String(values)),
                ));
            }
        }
        let mut request_id = None;
        if opts.request_id {
            if let Some(v) = parts.headers.get(&REQUEST_ID_HEADER) {
                if valid_request_id(v.as_bytes()) {
                    // Valid ids are visible ASCII, so `to_str` cannot fail.
                    if let Ok(s) = v.to_str() {
                        attrs.push(KeyValue::new(REQUEST_ID, s.to_owned()));
                        request_id = Some(v.clone());
                    }
                }
            }
        }

        let mut builder = SpanBuilder::from_name(resolved.span_name)
            .with_kind(SpanKind::Server)
            .with_start_time(start_time);
        // Set directly (not `with_attributes`) so the reserved capacity reaches the span.
        builder.attributes = Some(attrs);
        let span = opts.tracer.build_with_context(builder, &parent);
        let mut cx = parent.with_span(span);
        if !opts.critical_routes.is_empty()
            && opts.critical_routes.iter().any(|r| *r == *resolved.route)
        {
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
        if let Some(m) = shared.routes.metrics() {
            if let Some(g) = m.active(method) {
                g.inc();
            }
        }
        Inflight {
            cx,
            shared: shared.clone(),
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
        if let Some(name) = &self.shared.opts.trace_id_header {
            let sc = self.cx.span().span_context().clone();
            if sc.is_valid() {
                let mut buf = [0u8; 32];
                hex_into(&sc.trace_id().to_bytes(), &mut buf);
                if let Ok(v) = HeaderValue::from_bytes(&buf) {
                    parts.headers.insert(name.clone(), v);
                }
            }
        }
    }

    /// Count response body bytes as they stream.
    pub(crate) fn add_body_bytes(&mut self, n: usize) {
        self.response_size = self.response_size.saturating_add(n as u64);
    }

    /// End the span and record the request; idempotent.
    pub(crate) fn finish(&mut self, outcome: Outcome) {
        if self.done {
            return;
        }
        self.done = true;
        let elapsed = self.start.elapsed();
        let opts = &self.shared.opts;
        let slow = elapsed > opts.slow_threshold;
        let status = self.status.map(|s| s.as_u16());
        let span = self.cx.span();

        let mut end: [Option<KeyValue>; 6] = Default::default();
        end[5] = self
            .generated_id
            .take()
            .map(|id| KeyValue::new(REQUEST_ID, id));
        if let Some(code) = status {
            end[0] = Some(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(code)));
            end[1] = Some(KeyValue::new(
                HTTP_RESPONSE_BODY_SIZE,
                i64::try_from(self.response_size).unwrap_or(i64::MAX),
            ));
        }
        let (error_type, description): (Option<StringValue>, &'static str) = match outcome {
            Outcome::Error(type_name) => (Some(type_name.into()), type_name),
            Outcome::Cancelled => {
                end[3] = Some(KeyValue::new(CANCELLED, true));
                (
                    Some(CANCELLED_ERROR.into()),
                    "request cancelled before the response completed",
                )
            }
            // Server side: 5xx is an error, 4xx is the client's (semconv).
            Outcome::Complete => match status {
                Some(code) if code >= 500 => (Some(status_error_type(code)), ""),
                _ => (None, ""),
            },
        };
        let failed = error_type.is_some();
        if let Some(e) = error_type {
            end[2] = Some(KeyValue::new(ERROR_TYPE, e));
        }
        if slow {
            end[4] = Some(KeyValue::new(SLOW, true));
        }
        span.set_attributes(end.into_iter().flatten());
        if failed {
            span.set_status(Status::error(description));
        }
        span.end_with_timestamp(self.start_time + elapsed);

        if let Some(m) = self.shared.routes.metrics() {
            if let Some(g) = m.active(self.method) {
                g.dec();
            }
        }
        self.entry.record(
            self.method,
            status,
            &Recorded {
                duration: elapsed,
                request_size: self.request_size,
                response_size: self.response_size,
                slow,
            },
        );
        if slow {
            self.warn_slow(elapsed, status, matches!(outcome, Outcome::Cancelled));
        }
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
            threshold_ms = self.shared.opts.slow_threshold.as_millis() as u64,
            "slow HTTP request"
        );
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        // Dropped before the response (or its body) completed: the client went away or a
        // timeout fired — or the handler panicked and this is the unwinding. The span still
        // ends, and says which.
        let outcome = if std::thread::panicking() {
            Outcome::Error(PANIC_ERROR)
        } else {
            Outcome::Cancelled
        };
        self.finish(outcome);
    }
}

/// A masked value, cut to [`MAX_VALUE`] bytes (after masking, so no partial card number is
/// left readable by the cut).
fn bounded(value: Cow<'_, str>) -> String {
    match value {
        Cow::Owned(mut s) => {
            let end = truncate(&s, MAX_VALUE).len();
            s.truncate(end);
            s
        }
        Cow::Borrowed(s) => truncate(s, MAX_VALUE).to_owned(),
    }
}

fn content_length(parts: &Parts) -> Option<u64> {
    parts
        .headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `client.address`: IPv4 written by hand (`to_string` runs the formatting machinery once per
/// octet), IPv6 as std writes it.
fn ip_text(ip: std::net::IpAddr) -> Arc<str> {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let mut buf = [0u8; 15];
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[len] = b'.';
                    len += 1;
                }
                let mut itoa = itoa::Buffer::new();
                let digits = itoa.format(octet).as_bytes();
                buf[len..len + digits.len()].copy_from_slice(digits);
                len += digits.len();
            }
            // Digits and dots: always UTF-8.
            Arc::from(std::str::from_utf8(&buf[..len]).unwrap_or_default())
        }
        std::net::IpAddr::V6(v6) => Arc::from(v6.to_string()),
    }
}

#[cfg(feature = "axum")]
fn client_ip(parts: &Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

#[cfg(not(feature = "axum"))]
fn client_ip(_: &Parts) -> Option<std::net::IpAddr> {
    None
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    #[test]
    fn client_addresses_read_as_std_writes_them() {
        for ip in [
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)),
            IpAddr::V4(Ipv4Addr::new(255, 10, 100, 9)),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6("2001:db8::ff00:42:8329".parse().unwrap()),
        ] {
            assert_eq!(*ip_text(ip), ip.to_string());
        }
    }
}
