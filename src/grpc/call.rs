//! [`Call`]: one traced gRPC call, from `call` until its response stream ends or is dropped.
//!
//! Both layers hand it down the same way: the service starts it, the future notes the
//! response headers, the body notes the trailers, and whichever stage sees the end finishes
//! it. The status is read where the response carries it: the `tonic::Status` extension or
//! `grpc-status` header (trailers-only), else the trailers at the end of the stream.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, StatusCode};
use opentelemetry::trace::{Link, SpanBuilder, SpanKind, TraceContextExt, Tracer as _};
use opentelemetry::{Context, Key, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::Tracer;
use opentelemetry_semantic_conventions::attribute as sc;
use tokio::time::Instant;
use tonic::Code;

use super::methods::{Lookup, Method, Methods, OTHER_SPAN_NAME};
use super::metrics::GrpcMetrics;
use super::side::Side;
use super::status::{self, GRPC_MESSAGE};
use crate::exchange::{server_address, End, Failure, SpanEnd};
use crate::keys::{SERVER_ADDRESS, SERVER_PORT};
use crate::propagation::{PropagateTo, Trust};
use crate::redact::Redactor;
use crate::sampling::Thinned;
use crate::util::truncate;

const RPC_SYSTEM_NAME: Key = Key::from_static_str(sc::RPC_SYSTEM_NAME);
const RPC_METHOD: Key = Key::from_static_str(sc::RPC_METHOD);
const RPC_METHOD_ORIGINAL: Key = Key::from_static_str(sc::RPC_METHOD_ORIGINAL);
const RPC_RESPONSE_STATUS_CODE: Key = Key::from_static_str(sc::RPC_RESPONSE_STATUS_CODE);

/// A dropped call this close to its deadline (or a tenth of its timeout, if more) is over
/// because of it: the client's timer starts before the request leaves, so its reset can beat
/// the server's own timer.
const DEADLINE_SLACK: Duration = Duration::from_millis(20);
/// Longest `grpc-message` kept as the span status description.
const MAX_MESSAGE: usize = 256;

/// What every call of a layer reads: shared by all services the layer made.
#[derive(Debug)]
pub(crate) struct CallState {
    pub(crate) side: Side,
    pub(crate) tracer: Tracer,
    pub(crate) redactor: Redactor,
    pub(crate) metrics: Option<GrpcMetrics>,
    pub(crate) methods: Methods,
    pub(crate) slow_threshold: Duration,
    /// Allow-listed request metadata and the attribute key each is recorded under.
    pub(crate) metadata: Vec<(HeaderName, Key)>,
    /// `server.address`/`server.port` of a client whose requests carry no authority.
    pub(crate) authority: Option<http::uri::Authority>,
    /// Server side: whose incoming context is continued.
    pub(crate) trust: Trust,
    /// Client side: which hosts get the context.
    pub(crate) propagate_to: PropagateTo,
    /// The traces tail keep thinned, which no exemplar may name.
    pub(crate) thinned: Thinned,
}

/// One traced call in flight.
pub(crate) struct Call {
    pub(crate) cx: Context,
    state: Arc<CallState>,
    lookup: Lookup,
    start: Instant,
    start_time: SystemTime,
    deadline: Option<Instant>,
    /// Whether the span is its trace's root in this process, whose outcome tail keep reads.
    local_root: bool,
    status: Option<Code>,
    message: Option<String>,
    done: bool,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("side", &self.state.side)
            .field("lookup", &self.lookup)
            .field("status", &self.status)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Call {
    /// Start the span of a call whose request is `parts`, under `parent`, linked to `link`.
    pub(crate) fn start(
        state: &Arc<CallState>,
        parts: &http::request::Parts,
        parent: &Context,
        link: Option<Link>,
    ) -> Call {
        let start = Instant::now();
        let start_time = SystemTime::now();
        let lookup = state.methods.lookup(parts.uri.path());
        let kind = match state.side {
            Side::Server => SpanKind::Server,
            Side::Client => SpanKind::Client,
        };
        let mut builder = SpanBuilder::from_name(lookup.span_name())
            .with_kind(kind)
            .with_start_time(start_time);
        builder.attributes = Some(start_attributes(state, parts));
        builder.links = link.map(|link| vec![link]);
        let local_root = !parent.has_active_span() || parent.span().span_context().is_remote();
        let span = state.tracer.build_with_context(builder, parent);
        Call {
            cx: crate::propagation::mark_random(parent, parent.with_span(span)),
            state: state.clone(),
            lookup,
            start,
            start_time,
            deadline: status::timeout(&parts.headers)
                .map(|t| start + t.saturating_sub(DEADLINE_SLACK.max(t / 10))),
            local_root,
            status: None,
            message: None,
            done: false,
        }
    }

    pub(crate) fn side(&self) -> Side {
        self.state.side
    }

    /// The response headers arrived: a trailers-only response carries its status here.
    pub(crate) fn on_response<B>(&mut self, res: &http::Response<B>) {
        if let Some(s) = res.extensions().get::<tonic::Status>() {
            self.status = Some(s.code());
            self.message = Some(s.message().to_owned());
        } else if let Some(code) = status::from_headers(res.headers()) {
            self.status = Some(code);
            self.message = res
                .headers()
                .get(GRPC_MESSAGE)
                .map(|v| status::message(v.as_bytes()));
        } else if res.status() != StatusCode::OK {
            self.status = Some(status::from_http(res.status()));
        }
    }

    /// The trailers arrived: the status of a call that streamed a response.
    pub(crate) fn on_trailers(&mut self, trailers: &HeaderMap) {
        if let Some(code) = status::from_headers(trailers) {
            self.status = Some(code);
            self.message = trailers
                .get(GRPC_MESSAGE)
                .map(|v| status::message(v.as_bytes()));
        }
    }

    /// Whether the deadline (less its slack) has passed.
    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// End the span and record the call; idempotent.
    pub(crate) fn finish(&mut self, end: End<Option<Code>>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let elapsed = self.start.elapsed();
        let state = &*self.state;
        let code = self.code(end);
        let method = state.methods.settle(&self.lookup, code);
        let slow = elapsed > state.slow_threshold;
        if method.is_other() && matches!(self.lookup, Lookup::Candidate { .. }) {
            // Named after the path at the start; `_OTHER` calls are named `grpc`.
            self.cx.span().update_name(OTHER_SPAN_NAME);
        }
        let span_end = SpanEnd {
            failure: self.failed(code).then(|| self.failure(code)),
            slow,
            cancelled: matches!(end, End::Dropped) && self.status.is_none(),
            local_root: self.local_root,
            at: self.start_time + elapsed,
            exemplar: Some(&state.thinned),
        };
        let kept = span_end.end(&self.cx.span(), self.call_attributes(&method, code));
        if let Some(metrics) = &state.metrics {
            method.record(metrics, state.side, code, elapsed.as_secs_f64(), slow, kept);
        }
        if slow {
            self.warn_slow(&method, code, elapsed);
        }
    }

    /// Whether a call ending with `code` failed: on the server, when the server is to blame
    /// (semconv); on the client, anything but `OK`.
    fn failed(&self, code: Code) -> bool {
        match self.state.side {
            Side::Server => status::is_server_error(code),
            Side::Client => code != Code::Ok,
        }
    }

    /// The call's status: the one its response carried, else what its end says.
    fn code(&self, end: End<Option<Code>>) -> Code {
        match (self.status, end) {
            // tonic's server answers its own expired timer with `CANCELLED`, "Timeout expired".
            (Some(Code::Cancelled), _) if self.past_deadline() => Code::DeadlineExceeded,
            (Some(code), _) => code,
            (None, End::Complete) => {
                no_trailers_once(self.state.side);
                Code::Unknown
            }
            (None, End::Failed(Some(code))) => code,
            (None, End::Failed(None)) => match self.state.side {
                Side::Server => Code::Unknown,
                Side::Client if self.past_deadline() => Code::DeadlineExceeded,
                Side::Client => Code::Unavailable,
            },
            (None, End::Dropped) if self.past_deadline() => Code::DeadlineExceeded,
            (None, End::Dropped) => Code::Cancelled,
        }
    }

    /// `rpc.method` and `rpc.response.status_code`; for an `_OTHER` method,
    /// `rpc.method_original` too.
    fn call_attributes(&self, method: &Method, code: Code) -> [Option<KeyValue>; 3] {
        let original = method.is_other().then(|| {
            let original = self.state.redactor.redact_text(self.lookup.path());
            KeyValue::new(RPC_METHOD_ORIGINAL, original.into_owned())
        });
        [
            Some(KeyValue::new(
                RPC_METHOD,
                StringValue::from(method.name.clone()),
            )),
            Some(KeyValue::new(RPC_RESPONSE_STATUS_CODE, status::name(code))),
            original,
        ]
    }

    /// A failed call's `error.type` (the status name) and Error description: the name, and
    /// the status message (redacted, bounded) when there is one.
    fn failure(&self, code: Code) -> Failure {
        let name = status::name(code);
        let description = match self.message.as_deref() {
            Some(m) if !m.is_empty() => {
                let m = self.state.redactor.redact_text(truncate(m, MAX_MESSAGE));
                Cow::Owned(format!("{name}: {m}"))
            }
            _ => Cow::Borrowed(name),
        };
        Failure {
            error_type: name.into(),
            description,
        }
    }

    fn warn_slow(&self, method: &Method, code: Code, elapsed: Duration) {
        // Attached so log bridges stamp the record with this call's trace and span ids.
        let _guard = self.cx.clone().attach();
        tracing::warn!(
            target: "paytrace::grpc",
            side = match self.state.side { Side::Server => "server", Side::Client => "client" },
            method = &*method.name,
            status = status::name(code),
            duration_ms = elapsed.as_millis() as u64,
            threshold_ms = self.state.slow_threshold.as_millis() as u64,
            "slow gRPC call"
        );
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let end = if std::thread::panicking() {
            End::Failed(Some(Code::Unknown))
        } else {
            End::Dropped
        };
        self.finish(end);
    }
}

/// The start attributes of a call's span, with room for the end attributes: the span's vector
/// never grows.
fn start_attributes(state: &CallState, parts: &http::request::Parts) -> Vec<KeyValue> {
    let mut attrs = Vec::with_capacity(9 + state.metadata.len());
    attrs.push(KeyValue::new(RPC_SYSTEM_NAME, "grpc"));
    let authority = parts.uri.authority().or(state.authority.as_ref());
    let server = authority.and_then(|a| server_address(&state.redactor, a.as_str()));
    if let Some((host, port)) = server {
        attrs.push(KeyValue::new(SERVER_ADDRESS, host));
        if let Some(port) = port {
            attrs.push(KeyValue::new(SERVER_PORT, i64::from(port)));
        }
    }
    for (name, key) in &state.metadata {
        let values: Vec<StringValue> = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| StringValue::from(state.redactor.redact_text(truncate(v, 256)).into_owned()))
            .collect();
        if !values.is_empty() {
            attrs.push(KeyValue::new(key.clone(), Value::Array(values.into())));
        }
    }
    attrs
}

/// A 200 response that ended without trailers breaks the gRPC protocol (a proxy that drops
/// trailers, an HTTP/1.1 hop): say so once per process and side.
fn no_trailers_once(side: Side) {
    static SERVER: AtomicBool = AtomicBool::new(false);
    static CLIENT: AtomicBool = AtomicBool::new(false);
    let flag = match side {
        Side::Server => &SERVER,
        Side::Client => &CLIENT,
    };
    if !flag.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            target: "paytrace::grpc",
            "a gRPC response ended without trailers (grpc-status); recorded as UNKNOWN. A proxy \
             that drops HTTP/2 trailers, or an HTTP/1.1 hop, is the usual cause"
        );
    }
}
