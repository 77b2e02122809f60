//! The six gRPC call shapes of `tests/grpc.rs` (a real tonic server and client over a real
//! 127.0.0.1 socket) through paytrace's layers and three peer stacks, each scored on the server
//! and on the client against the status the call really ended with (`SHAPES`):
//!
//! - `paytrace`: `paytrace::grpc::ServerLayer` / `ClientLayer` (`from_tracer`: the layers
//!   `Telemetry::grpc_server_layer` builds, minus metrics and the telemetry's redactor); read: `rpc.response.status_code`;
//! - `tower-http`: `TraceLayer::new_for_grpc()` (its `GrpcErrorsAsFailures` classifier) on the
//!   server and on the client channel; read: what its callbacks report, recorded on the span by
//!   this test: `on_failure`'s status, else `OK` when it classified the call a success (at the
//!   response, or at the end of the stream), else nothing (`- (no eos)`: the head said "wait for
//!   the trailers" and the stream never ended; `- (no callback)`: the future was dropped);
//! - `tonic-tracing-otel`: `tonic_tracing_opentelemetry::middleware::{server, client}::
//!   OtelGrpcLayer` on `tracing-opentelemetry`; read: `rpc.grpc.status_code`;
//! - `tower-otel`: `tower_otel::trace::GrpcLayer::{server, client}`; read: `rpc.grpc.status_code`.
//!
//! Every stack records into its own `InMemorySpanExporter` through a scoped `tracing`
//! subscriber (`set_default` on this current-thread runtime, so the server's tasks see it too);
//! each shape runs under its own root span, whose trace id finds its server and client spans.
//! The test asserts the exact scores measured, so a peer that changes fails it (and the README
//! table that quotes them must be updated).
//!
//! Run: `cargo test --test grpc_peers -- --nocapture` prints the table.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{SpanKind, Status, TracerProvider as _};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use support::ledger::{run_shape, Incoming, LedgerClient, LedgerServer, SHAPES};
use support::{install_propagator, WAIT};
use tonic::body::Body;
use tonic::transport::Channel;
use tower_http::classify::{
    ClassifiedResponse, ClassifyResponse as _, GrpcErrorsAsFailures, GrpcFailureClass,
};
use tracing::field::Empty;
use tracing::{Instrument as _, Level, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::Layer as _;

/// The canonical status name of a code, derived from tonic's `Code` (`DeadlineExceeded` is
/// `DEADLINE_EXCEEDED`), so this oracle shares nothing with the table under test.
fn code_name(code: i64) -> String {
    let Some(code) = i32::try_from(code).ok().filter(|c| (0..=16).contains(c)) else {
        return format!("CODE({code})");
    };
    let mut name = String::new();
    for (i, ch) in format!("{:?}", tonic::Code::from(code)).chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(ch.to_ascii_uppercase());
    }
    name
}

/// What a layer recorded when it recorded nothing about the status.
const NOTHING: &str = "-";
/// What a layer recorded when it flagged an error but no gRPC status.
const ERROR_NO_CODE: &str = "ERROR, no code";

/// The span target of this test's own spans (the shape roots and tower-http's spans).
const TARGET: &str = "peers";

/// One stack's pipeline: a tracer provider exporting synchronously into memory, and the
/// `tracing` subscriber bridging to it (only the spans of this test and of the peers).
struct Pipeline {
    provider: SdkTracerProvider,
    exporter: InMemorySpanExporter,
}

impl Pipeline {
    fn new() -> Self {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        Pipeline { provider, exporter }
    }

    fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        let targets = tracing_subscriber::filter::Targets::new()
            .with_target(TARGET, Level::TRACE)
            // tonic-tracing-opentelemetry's spans (TRACE level unless `tracing_level_info`).
            .with_target("otel::tracing", Level::TRACE)
            .with_target("tower_otel", Level::TRACE);
        tracing_subscriber::registry().with(
            tracing_opentelemetry::layer()
                .with_tracer(self.provider.tracer("peers"))
                .with_filter(targets),
        )
    }
}

/// Serve `LedgerServer` under `$layer` (`Server::builder().layer(..)`) on a fresh
/// 127.0.0.1 port; evaluates to the address and the server task.
macro_rules! serve {
    ($layer:expr) => {{
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let layer = $layer;
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .layer(layer)
                .add_service(LedgerServer)
                .serve_with_incoming(Incoming(listener))
                .await;
        });
        (addr, task)
    }};
}

/// Run the six shapes against `addr`, each on a fresh channel wrapped by `wrap` and under its
/// own root span `shape` (a `tracing` span: tracing-based client layers take it as their
/// parent, and with context activation it is the current OpenTelemetry context paytrace's
/// client layer reads). Returns what tonic told the caller, per shape.
async fn six_shapes<T>(addr: SocketAddr, wrap: impl Fn(Channel) -> T) -> Vec<String>
where
    T: tonic::client::GrpcService<Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: http_body::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let mut seen = Vec::new();
    for (name, _) in SHAPES {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        let mut client = LedgerClient::new(wrap(channel));
        let root = tracing::info_span!(target: TARGET, "shape", shape = name);
        seen.push(run_shape(&mut client, name).instrument(root).await);
    }
    seen
}

fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn attr_str(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|v| v.as_str().into_owned())
}

/// Each shape's (server, client) span, found by its root's trace id; waits (bounded) until all
/// twelve arrived: a server span ends when the server drops the call, after the client left.
async fn spans_by_shape(
    exporter: &InMemorySpanExporter,
) -> Vec<(Option<SpanData>, Option<SpanData>)> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let spans = exporter.get_finished_spans().expect("finished spans");
        let found: Vec<_> = SHAPES
            .iter()
            .map(|(name, _)| {
                let trace_id = spans
                    .iter()
                    .find(|s| s.name == "shape" && attr_str(s, "shape").as_deref() == Some(*name))
                    .map(|root| root.span_context.trace_id());
                let pick = |kind: SpanKind| {
                    trace_id.and_then(|t| {
                        spans
                            .iter()
                            .find(|s| s.span_context.trace_id() == t && s.span_kind == kind)
                            .cloned()
                    })
                };
                (pick(SpanKind::Server), pick(SpanKind::Client))
            })
            .collect();
        let all = found.iter().all(|(s, c)| s.is_some() && c.is_some());
        if all || tokio::time::Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How a stack's span says what status a call ended with.
#[derive(Clone, Copy)]
enum Reader {
    /// paytrace: `rpc.response.status_code`, the status name.
    Paytrace,
    /// tonic-tracing-otel and tower-otel: `rpc.grpc.status_code`, the number.
    RpcGrpcStatusCode,
    /// tower-http: the callbacks' reports this test records on its span.
    TowerHttp,
}

fn read(reader: Reader, span: Option<&SpanData>) -> String {
    let Some(span) = span else {
        return "no span".to_owned();
    };
    let errored = matches!(span.status, Status::Error { .. });
    match reader {
        Reader::Paytrace => {
            attr_str(span, "rpc.response.status_code").unwrap_or_else(|| NOTHING.to_owned())
        }
        Reader::RpcGrpcStatusCode => match attr(span, "rpc.grpc.status_code") {
            Some(Value::I64(code)) => code_name(*code),
            // tonic-tracing-otel records a `u16`, which tracing-opentelemetry exports as text.
            Some(Value::String(code)) if code.as_str().parse::<i64>().is_ok() => {
                code_name(code.as_str().parse().unwrap_or_default())
            }
            Some(other) => format!("{other}?"),
            None if errored => ERROR_NO_CODE.to_owned(),
            None => NOTHING.to_owned(),
        },
        Reader::TowerHttp => {
            if let Some(failure) = attr_str(span, "tower_http.on_failure") {
                failure
            } else if attr_str(span, "tower_http.on_response").as_deref() == Some("success")
                || attr(span, "tower_http.on_eos").is_some()
            {
                "OK".to_owned()
            } else if attr(span, "tower_http.on_response").is_some() {
                // The head said "wait for the trailers", and the stream never ended.
                format!("{NOTHING} (no eos)")
            } else {
                // The response future was dropped: no callback ran.
                format!("{NOTHING} (no callback)")
            }
        }
    }
}

/// One stack's results: per shape, what the server and the client span recorded.
struct Measured {
    name: &'static str,
    cells: Vec<(String, String)>,
    note: &'static str,
}

impl Measured {
    fn score(&self) -> (usize, usize) {
        SHAPES
            .iter()
            .zip(&self.cells)
            .fold((0, 0), |(s, c), ((_, truth), (server, client))| {
                (
                    s + usize::from(server == truth),
                    c + usize::from(client == truth),
                )
            })
    }
}

/// Read one stack's run from its exporter, then stop its server.
async fn measure(
    name: &'static str,
    pipeline: &Pipeline,
    reader: Reader,
    server: tokio::task::JoinHandle<()>,
    note: &'static str,
) -> Measured {
    let spans = spans_by_shape(&pipeline.exporter).await;
    server.abort();
    let cells = spans
        .iter()
        .map(|(s, c)| (read(reader, s.as_ref()), read(reader, c.as_ref())))
        .collect();
    Measured { name, cells, note }
}

// === tower-http: what its gRPC classifier reports, recorded on a span of this test ===

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(k, v);
        }
    }
}

type TowerHttpLayer = tower_http::trace::TraceLayer<
    tower_http::trace::GrpcMakeClassifier,
    fn(&http::Request<Body>) -> Span,
    tower_http::trace::DefaultOnRequest,
    fn(&http::Response<Body>, Duration, &Span),
    tower_http::trace::DefaultOnBodyChunk,
    fn(Option<&http::HeaderMap>, Duration, &Span),
    fn(GrpcFailureClass, Duration, &Span),
>;

/// tower-http's span: named like the others, with room for what the callbacks report.
macro_rules! tower_http_span {
    ($kind:literal, $req:expr) => {
        tracing::info_span!(
            target: TARGET,
            "tower-http",
            otel.kind = $kind,
            otel.name = $req.uri().path().trim_start_matches('/'),
            tower_http.on_response = Empty,
            tower_http.on_failure = Empty,
            tower_http.on_eos = Empty,
        )
    };
}

/// `TraceLayer::new_for_grpc()` whose callbacks write their reports on the span: on_response
/// (what the classifier makes of the response head: success, failure, or wait for the end of
/// the stream), on_failure (the status, or an error without one), on_eos (the stream ended).
fn tower_http_layer(server: bool) -> TowerHttpLayer {
    fn server_span(req: &http::Request<Body>) -> Span {
        let span = tower_http_span!("server", req);
        let parent = opentelemetry::global::get_text_map_propagator(|p| {
            p.extract(&HeaderExtractor(req.headers()))
        });
        let _ = span.set_parent(parent);
        span
    }
    fn client_span(req: &http::Request<Body>) -> Span {
        tower_http_span!("client", req)
    }
    fn on_response(res: &http::Response<Body>, _: Duration, span: &Span) {
        let verdict = match GrpcErrorsAsFailures::new().classify_response(res) {
            ClassifiedResponse::Ready(Ok(())) => "success",
            ClassifiedResponse::Ready(Err(_)) => "failure",
            ClassifiedResponse::RequiresEos(_) => "awaiting trailers",
        };
        span.record("tower_http.on_response", verdict);
    }
    fn on_eos(_: Option<&http::HeaderMap>, _: Duration, span: &Span) {
        span.record("tower_http.on_eos", true);
    }
    fn on_failure(class: GrpcFailureClass, _: Duration, span: &Span) {
        let status = match class {
            GrpcFailureClass::Status(s) => code_name(i64::from(s.code_raw())),
            _ => ERROR_NO_CODE.to_owned(),
        };
        span.record("tower_http.on_failure", status);
    }
    let make_span: fn(&http::Request<Body>) -> Span =
        if server { server_span } else { client_span };
    tower_http::trace::TraceLayer::new_for_grpc()
        .make_span_with(make_span)
        .on_response(on_response as fn(&http::Response<Body>, Duration, &Span))
        .on_eos(on_eos as fn(Option<&http::HeaderMap>, Duration, &Span))
        .on_failure(on_failure as fn(GrpcFailureClass, Duration, &Span))
}

/// tower-http does not propagate: the test injects the current context (tower-http's client
/// span, entered while the channel is called) so the server span joins the trace.
fn inject(mut req: http::Request<Body>) -> http::Request<Body> {
    let cx = opentelemetry::Context::current();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeaderInjector(req.headers_mut()));
    });
    req
}

#[tokio::test(flavor = "current_thread")]
async fn six_shapes_through_paytrace_and_three_peers() {
    // All stacks read and write W3C context through the global propagator.
    install_propagator();
    let mut results = Vec::new();

    {
        let pipeline = Pipeline::new();
        let _default = tracing::subscriber::set_default(pipeline.subscriber());
        let tracer = pipeline.provider.tracer("paytrace");
        let (addr, server) = serve!(paytrace::grpc::ServerLayer::from_tracer(tracer.clone()));
        let client = paytrace::grpc::ClientLayer::from_tracer(tracer)
            .with_authority(http::uri::Authority::try_from(addr.to_string()).unwrap());
        six_shapes(addr, |ch| {
            tower::ServiceBuilder::new()
                .layer(client.clone())
                .service(ch)
        })
        .await;
        results.push(measure("paytrace", &pipeline, Reader::Paytrace, server, "").await);
    }
    {
        let pipeline = Pipeline::new();
        let _default = tracing::subscriber::set_default(pipeline.subscriber());
        let (addr, server) = serve!(tower_http_layer(true));
        six_shapes(addr, |ch| {
            tower::ServiceBuilder::new()
                .layer(tower_http_layer(false))
                .map_request(inject)
                .service(ch)
        })
        .await;
        results.push(measure("tower-http", &pipeline, Reader::TowerHttp, server, "").await);
    }
    {
        let pipeline = Pipeline::new();
        let _default = tracing::subscriber::set_default(pipeline.subscriber());
        let (addr, server) =
            serve!(tonic_tracing_opentelemetry::middleware::server::OtelGrpcLayer::default());
        six_shapes(addr, |ch| {
            tower::ServiceBuilder::new()
                .layer(tonic_tracing_opentelemetry::middleware::client::OtelGrpcLayer)
                .service(ch)
        })
        .await;
        results.push(
            measure(
                "tonic-tracing-otel",
                &pipeline,
                Reader::RpcGrpcStatusCode,
                server,
                "rpc.grpc.status_code is exported as a string (\"13\"), read here as its number",
            )
            .await,
        );
    }
    {
        let pipeline = Pipeline::new();
        let _default = tracing::subscriber::set_default(pipeline.subscriber());
        let (addr, server) = serve!(tower_otel::trace::GrpcLayer::server(Level::INFO));
        six_shapes(addr, |ch| {
            tower::ServiceBuilder::new()
                .layer(tower_otel::trace::GrpcLayer::client(Level::INFO))
                .service(ch)
        })
        .await;
        results.push(
            measure(
                "tower-otel",
                &pipeline,
                Reader::RpcGrpcStatusCode,
                server,
                "",
            )
            .await,
        );
    }

    let table = render(&results);
    println!("{table}");
    let scores: Vec<(&str, (usize, usize))> = results.iter().map(|m| (m.name, m.score())).collect();
    assert_eq!(
        scores,
        vec![
            ("paytrace", (6, 6)),
            ("tower-http", (4, 4)),
            ("tonic-tracing-otel", (3, 3)),
            ("tower-otel", (3, 3)),
        ],
        "(server, client) right out of six; update the README if a peer changed:\n{table}"
    );
}

/// The table: per shape and side what each stack recorded, then the scores.
fn render(results: &[Measured]) -> String {
    const W: usize = 19;
    let mut out = format!("{:<30} {:<18} {:<7}", "shape", "truth", "side");
    for m in results {
        out.push_str(&format!(" {:<W$}", m.name));
    }
    out.push('\n');
    for (i, (shape, truth)) in SHAPES.iter().enumerate() {
        for (side, label) in [(0, "server"), (1, "client")] {
            let (shape, truth) = if side == 0 {
                (*shape, *truth)
            } else {
                ("", "")
            };
            out.push_str(&format!("{shape:<30} {truth:<18} {label:<7}"));
            for m in results {
                let (s, c) = &m.cells[i];
                out.push_str(&format!(" {:<W$}", if side == 0 { s } else { c }));
            }
            out.push('\n');
        }
    }
    for (side, label) in [(0, "server"), (1, "client")] {
        let first = if side == 0 { "right out of six" } else { "" };
        out.push_str(&format!("{first:<30} {:<18} {label:<7}", ""));
        for m in results {
            let (s, c) = m.score();
            out.push_str(&format!(" {:<W$}", if side == 0 { s } else { c }));
        }
        out.push('\n');
    }
    for m in results.iter().filter(|m| !m.note.is_empty()) {
        out.push_str(&format!("{}: {}\n", m.name, m.note));
    }
    out.push_str(&format!(
        "({NOTHING}: the layer recorded no status; {ERROR_NO_CODE:?}: an error flagged without \
         a gRPC status)\n"
    ));
    out
}

#[test]
fn code_names_are_the_canonical_ones() {
    assert_eq!(code_name(0), "OK");
    assert_eq!(code_name(3), "INVALID_ARGUMENT");
    assert_eq!(code_name(4), "DEADLINE_EXCEEDED");
    assert_eq!(code_name(16), "UNAUTHENTICATED");
    assert_eq!(code_name(17), "CODE(17)");
}
