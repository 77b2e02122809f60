//! Run with: `cargo run --release --example bench_server -- --mode paytrace --port 8080 --endpoint http://127.0.0.1:4317`
//!
//! The minimal axum service `scripts/bench_load.sh` puts under `wrk`: one route,
//! `GET /orders/{id}`, answering a short body. `--mode` picks the instrumentation:
//!
//! - `bare`: none;
//! - `paytrace`: `paytrace::http::TraceLayer` with its RED metrics, spans over paytrace's
//!   gzip OTLP/gRPC pipeline, no log records;
//! - `paytrace-log`: the same plus one INFO record per request, JSON to stdout and OTLP;
//! - `common`: tower-http `TraceLayer::new_for_http()` + `tracing-opentelemetry` +
//!   `tracing-subscriber` JSON to stdout under the usual `info,tower_http=debug` filter (so
//!   tower-http's DEBUG span is traced and its two DEBUG events per request are written) + the stock
//!   `opentelemetry-otlp` gRPC exporter with gzip behind the stock batch span processor;
//! - `fastrace`: fastrace-axum's `FastraceLayer` + fastrace's collector + `fastrace-opentelemetry`
//!   reporting to the stock `opentelemetry-otlp` gRPC exporter with gzip.
//!
//! `--handler` picks what the handler does inside the request:
//!
//! - `plain` (default): nothing but the answer (and `--children`);
//! - `app`: its work in three nested async functions, each a child span made the way that
//!   stack's users make one (`#[tracing::instrument]`; `#[fastrace::trace]` under `fastrace`),
//!   and one INFO event with 3 fields in the innermost (`tracing::info!`; a span event under
//!   `fastrace`). In paytrace modes the event is a JSON line on stdout and an OTLP log record;
//! - `app-otel`: the same three spans made with the OpenTelemetry API
//!   (`FutureExt::with_context`) and the same `info!`.
//!
//! Sampling is 100 % in every instrumented mode unless `--ratio R` sets a parent-based ratio
//! (paytrace modes; tail keep on, unless `--no-tail-keep`: then nothing of a request the ratio
//! did not keep is recorded, the floor such a request can cost). `--children N` makes the handler
//! start and end N child spans of the request's span. `--public` makes the server layer trust
//! no incoming context (a public endpoint). `--full-batches` sets paytrace's schedule delays to
//! a minute, so its queues export full batches only, as they do at thousands of requests per
//! second (under callgrind the server serves about a hundred a second, and a 1 s delay exports a
//! batch of whatever arrived). On SIGTERM or Ctrl-C the server stops
//! accepting, shuts telemetry down (final flush) and prints one line to stderr:
//! `bench_server mode=.. requests=N cpu_s=.. exported=N dropped=N failed=N spans=N not_kept=N`
//! (spans per request; spans of traces neither the ratio nor their outcome kept, or never
//! recorded), so the script
//! can check that no span was silently lost.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::layer::SubscriberExt as _;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Bare,
    Paytrace,
    PaytraceLog,
    Common,
    Fastrace,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Handler {
    Plain,
    App,
    AppOtel,
}

impl Handler {
    /// Spans the handler makes below the request span.
    fn spans(self) -> u64 {
        match self {
            Handler::Plain => 0,
            Handler::App | Handler::AppOtel => 3,
        }
    }
}

struct Args {
    mode: Mode,
    handler: Handler,
    port: u16,
    endpoint: String,
    ratio: f64,
    children: u32,
    tail_keep: bool,
    /// `--public`: the server layer trusts no incoming context (`Trust::None`).
    public: bool,
    /// `--full-batches`: paytrace's queues export when a batch is full, not on a timer.
    full_batches: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        mode: Mode::Bare,
        handler: Handler::Plain,
        port: 8080,
        endpoint: "http://127.0.0.1:4317".to_owned(),
        ratio: 1.0,
        children: 0,
        tail_keep: true,
        public: false,
        full_batches: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--mode" => {
                args.mode = match value()?.as_str() {
                    "bare" => Mode::Bare,
                    "paytrace" => Mode::Paytrace,
                    "paytrace-log" => Mode::PaytraceLog,
                    "common" => Mode::Common,
                    "fastrace" => Mode::Fastrace,
                    other => return Err(format!("unknown mode {other}")),
                }
            }
            "--handler" => {
                args.handler = match value()?.as_str() {
                    "plain" => Handler::Plain,
                    "app" => Handler::App,
                    "app-otel" => Handler::AppOtel,
                    other => return Err(format!("unknown handler {other}")),
                }
            }
            "--port" => args.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--endpoint" => args.endpoint = value()?,
            "--ratio" => args.ratio = value()?.parse().map_err(|e| format!("--ratio: {e}"))?,
            "--children" => {
                args.children = value()?.parse().map_err(|e| format!("--children: {e}"))?
            }
            "--no-tail-keep" => args.tail_keep = false,
            "--public" => args.public = true,
            "--full-batches" => args.full_batches = true,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// Requests answered, counted in the handler (all modes alike).
static SERVED: AtomicU64 = AtomicU64::new(0);
/// Requests whose spans were never recorded (`--no-tail-keep` below 100 %), counted in the
/// handler: the load script then accounts for their spans.
static UNRECORDED: AtomicU64 = AtomicU64::new(0);
/// Count [`UNRECORDED`] (`--no-tail-keep`).
static COUNT_UNRECORDED: AtomicBool = AtomicBool::new(false);
/// Child spans per request (`--children`).
static CHILDREN: AtomicU32 = AtomicU32::new(0);

async fn order(Path(id): Path<u64>) -> &'static str {
    SERVED.fetch_add(1, Ordering::Relaxed);
    order_logged(id, false)
}

async fn order_with_log(Path(id): Path<u64>) -> &'static str {
    SERVED.fetch_add(1, Ordering::Relaxed);
    order_logged(id, true)
}

fn order_logged(id: u64, log: bool) -> &'static str {
    if COUNT_UNRECORDED.load(Ordering::Relaxed) {
        use opentelemetry::trace::TraceContextExt as _;
        if !opentelemetry::Context::current().span().is_recording() {
            UNRECORDED.fetch_add(1, Ordering::Relaxed);
        }
    }
    let children = CHILDREN.load(Ordering::Relaxed);
    if children > 0 {
        use opentelemetry::trace::{Span as _, Tracer as _};
        let tracer = opentelemetry::global::tracer("bench_server");
        let cx = opentelemetry::Context::current();
        for _ in 0..children {
            tracer.start_with_context("lookup", &cx).end();
        }
    }
    if log {
        tracing::info!(order_id = id, "order fetched");
    }
    "{\"status\":\"paid\"}"
}

/// `--handler app`: the service's own work in `#[instrument]` functions, one log line inside.
async fn app_order(Path(id): Path<u64>) -> &'static str {
    SERVED.fetch_add(1, Ordering::Relaxed);
    if FASTRACE.load(Ordering::Relaxed) {
        return fastrace_app::authorize(id).await;
    }
    app::authorize(id).await
}

/// `--handler app-otel`: the same work in OpenTelemetry-API spans.
async fn app_otel_order(Path(id): Path<u64>) -> &'static str {
    SERVED.fetch_add(1, Ordering::Relaxed);
    app_otel::authorize(id).await
}

/// Set under `--mode fastrace`: the app handler uses fastrace's own spans and events.
static FASTRACE: AtomicBool = AtomicBool::new(false);

const ANSWER: &str = "{\"status\":\"paid\"}";

/// The app handler's one log line: INFO with 3 fields.
fn ledger_entry_written(id: u64) {
    tracing::info!(
        order_id = id,
        amount_cents = 1999_u64,
        currency = "EUR",
        "ledger entry written"
    );
}

mod app {
    #[tracing::instrument]
    pub(crate) async fn authorize(id: u64) -> &'static str {
        risk(id).await
    }

    #[tracing::instrument]
    async fn risk(id: u64) -> &'static str {
        ledger(id).await
    }

    #[tracing::instrument]
    async fn ledger(id: u64) -> &'static str {
        super::ledger_entry_written(id);
        super::ANSWER
    }
}

mod app_otel {
    use opentelemetry::trace::{FutureExt as _, TraceContextExt as _, Tracer as _};
    use opentelemetry::{Context, KeyValue};

    /// A child span of the current context, as the OpenTelemetry API's users make one.
    fn child(name: &'static str, id: u64) -> Context {
        let tracer = opentelemetry::global::tracer("bench_server");
        let span = tracer
            .span_builder(name)
            .with_attributes([KeyValue::new("id", id as i64)])
            .start(&tracer);
        Context::current_with_span(span)
    }

    pub(crate) async fn authorize(id: u64) -> &'static str {
        risk(id).with_context(child("authorize", id)).await
    }

    async fn risk(id: u64) -> &'static str {
        ledger(id).with_context(child("risk", id)).await
    }

    async fn ledger(id: u64) -> &'static str {
        let cx = child("ledger", id);
        let _attached = cx.clone().attach();
        super::ledger_entry_written(id);
        super::ANSWER
    }
}

mod fastrace_app {
    use fastrace::local::LocalSpan;
    use fastrace::Event;

    #[fastrace::trace(properties = { "id": "{id}" })]
    pub(crate) async fn authorize(id: u64) -> &'static str {
        risk(id).await
    }

    #[fastrace::trace(properties = { "id": "{id}" })]
    async fn risk(id: u64) -> &'static str {
        ledger(id).await
    }

    #[fastrace::trace(properties = { "id": "{id}" })]
    async fn ledger(id: u64) -> &'static str {
        LocalSpan::add_event(Event::new("ledger entry written").with_properties(|| {
            [
                ("order_id", id.to_string()),
                ("amount_cents", "1999".to_owned()),
                ("currency", "EUR".to_owned()),
            ]
        }));
        super::ANSWER
    }
}

/// Counts what the stock exporter really delivered (the stock batch processor reports drops
/// only in its own log at shutdown).
#[derive(Debug)]
struct Counting {
    inner: opentelemetry_otlp::SpanExporter,
    exported: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl SpanExporter for Counting {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len() as u64;
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => self.exported.fetch_add(n, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(n, Ordering::Relaxed),
        };
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// The stock OTLP/gRPC span exporter with gzip, counted.
fn counting(endpoint: &str, exported: &Arc<AtomicU64>, failed: &Arc<AtomicU64>) -> Counting {
    let inner = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.to_owned())
        .with_compression(opentelemetry_otlp::Compression::Gzip)
        .build()
        .expect("otlp exporter");
    Counting {
        inner,
        exported: exported.clone(),
        failed: failed.clone(),
    }
}

fn resource() -> opentelemetry_sdk::Resource {
    opentelemetry_sdk::Resource::builder()
        .with_service_name("bench_server")
        .build()
}

/// user + system CPU seconds of this process so far (Linux; 0 elsewhere).
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // USER_HZ is 100 on every Linux configuration this runs on.
    (ticks(11) + ticks(12)) / 100.0
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

// One worker thread: the script pins the process to one core, and a payment service's
// per-request CPU is what is compared, not its scaling.
#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("bench_server: {e}");
            std::process::exit(2);
        }
    };
    CHILDREN.store(args.children, Ordering::Relaxed);
    COUNT_UNRECORDED.store(!args.tail_keep, Ordering::Relaxed);
    let mut telemetry = None;
    let mut stock = None;
    let mut fastrace_stack = false;
    let (exported, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));

    let route = |plain: axum::routing::MethodRouter| match args.handler {
        Handler::Plain => plain,
        Handler::App => get(app_order),
        Handler::AppOtel => get(app_otel_order),
    };
    let app = match args.mode {
        Mode::Bare => Router::new().route("/orders/{id}", route(get(order))),
        Mode::Paytrace | Mode::PaytraceLog => {
            let log = args.mode == Mode::PaytraceLog;
            let config = paytrace::Config::new()
                .with_sampler(if args.ratio < 1.0 {
                    paytrace::Sampler::ParentBasedRatio(args.ratio)
                } else {
                    paytrace::Sampler::ParentBasedAlwaysOn
                })
                .with_tail_keep(args.tail_keep)
                .with_service_name("bench_server")
                .with_endpoint(args.endpoint.clone())
                .with_gzip(true)
                .with_log_format(if log || args.handler != Handler::Plain {
                    paytrace::LogFormat::Json
                } else {
                    paytrace::LogFormat::Off
                });
            let config = if args.full_batches {
                config
                    .with_span_schedule_delay(Duration::from_secs(60))
                    .with_log_schedule_delay(Duration::from_secs(60))
            } else {
                config
            };
            let t = paytrace::init_tracer(config).expect("paytrace init");
            let layer = paytrace::http::TraceLayer::new(&t).with_trust(if args.public {
                paytrace::propagation::Trust::None
            } else {
                paytrace::propagation::Trust::All
            });
            telemetry = Some(t);
            let plain = if log { get(order_with_log) } else { get(order) };
            Router::new()
                .route("/orders/{id}", route(plain))
                .layer(layer)
        }
        Mode::Common => {
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(counting(&args.endpoint, &exported, &failed))
                .with_resource(resource())
                .build();
            let tracer = provider.tracer("bench_server");
            // The usual axum setup: `info,tower_http=debug`. Without a filter the exporter's own
            // tonic/h2 spans would be traced and exported too (a feedback loop).
            let subscriber = tracing_subscriber::registry()
                .with(tracing_subscriber::EnvFilter::new("info,tower_http=debug"))
                .with(tracing_subscriber::fmt::layer().json())
                .with(tracing_opentelemetry::layer().with_tracer(tracer));
            tracing::subscriber::set_global_default(subscriber).expect("subscriber");
            stock = Some(provider);
            Router::new()
                .route("/orders/{id}", route(get(order)))
                .layer(tower_http::trace::TraceLayer::new_for_http())
        }
        Mode::Fastrace => {
            FASTRACE.store(true, Ordering::Relaxed);
            let handle = tokio::runtime::Handle::current();
            let reporter = fastrace_opentelemetry::OpenTelemetryReporter::new(
                counting(&args.endpoint, &exported, &failed),
                std::borrow::Cow::Owned(resource()),
                opentelemetry::InstrumentationScope::builder("bench_server").build(),
            )
            .with_block_on(move |export| handle.block_on(export));
            fastrace::set_reporter(reporter, fastrace::collector::Config::default());
            fastrace_stack = true;
            Router::new()
                .route("/orders/{id}", route(get(order)))
                .layer(fastrace_axum::FastraceLayer::default())
        }
    };

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .expect("bind");
    eprintln!(
        "bench_server listening on {} mode={:?}",
        listener.local_addr().expect("local addr"),
        args.mode
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .expect("serve");

    let requests = SERVED.load(Ordering::Relaxed);
    let spans = 1 + u64::from(args.children) + args.handler.spans();
    let mut not_kept = 0;
    let (exported, dropped, failed) = if let Some(t) = telemetry {
        // Shut down off the runtime's worker: the final flush blocks.
        let health = tokio::task::spawn_blocking(move || {
            if let Err(e) = t.force_flush() {
                eprintln!("bench_server: flush: {e}");
            }
            let h = t.exporter_health();
            let _ = t.shutdown();
            h
        })
        .await
        .expect("flush task");
        if let Some(keep) = health.tail_keep() {
            not_kept = keep.dropped * spans + keep.late_dropped;
        }
        not_kept += UNRECORDED.load(Ordering::Relaxed) * spans;
        let traces = health.get(paytrace::Signal::Traces);
        (traces.exported, traces.dropped, traces.failed)
    } else if stock.is_some() || fastrace_stack {
        let _ = tokio::task::spawn_blocking(move || match stock {
            Some(provider) => provider.shutdown(),
            None => {
                fastrace::flush();
                Ok(())
            }
        })
        .await;
        let (e, f) = (
            exported.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
        );
        // The stock processor does not tell; whatever neither succeeded nor failed was dropped.
        (e, (requests * spans).saturating_sub(e + f), f)
    } else {
        (0, 0, 0)
    };
    eprintln!(
        "bench_server mode={:?} requests={requests} cpu_s={:.2} exported={exported} dropped={dropped} failed={failed} spans={spans} not_kept={not_kept}",
        args.mode,
        process_cpu_seconds()
    );
}
