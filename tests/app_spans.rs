//! The service's own spans inside a request, over real gRPC to the test collector:
//! `#[instrument]` functions (sync and async) and OpenTelemetry-API spans nest under the request
//! span and under each other; the two current contexts agree; a remote parent, links, the
//! `otel.*` and error fields work; fields are redacted; the log filter, the ratio, tail keep and
//! runtime control apply; spawned tasks stay in the trace; span events are opt-in.
#![cfg(feature = "axum")]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use opentelemetry::trace::{
    FutureExt as _, SpanContext, SpanId, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _,
};
use opentelemetry::Context;
use opentelemetry_sdk::trace::Tracer;
use paytrace::testing::{ReceivedSpan, TestCollector};
use paytrace::{Config, SpanError, SpanExt as _, Telemetry};
use support::WAIT;
use tracing::Instrument as _;

/// Which subscriber a case runs on: the installed one (paytrace's own span store), or a
/// registry composed with `Telemetry::layers`. Every case runs on both.
#[derive(Debug, Clone, Copy)]
enum Path {
    Installed,
    Composed,
}

fn subscriber(telemetry: &Telemetry, path: Path) -> tracing::Dispatch {
    use tracing_subscriber::layer::SubscriberExt as _;
    match path {
        Path::Installed => tracing::Dispatch::new(telemetry.subscriber()),
        Path::Composed => {
            tracing::Dispatch::new(tracing_subscriber::registry().with(telemetry.layers()))
        }
    }
}

macro_rules! on_both_subscribers {
    ($(#[$test:meta] $case:ident;)*) => {
        mod installed {
            $( #[$test] async fn $case() { super::$case(super::Path::Installed).await } )*
        }
        mod composed {
            $( #[$test] async fn $case() { super::$case(super::Path::Composed).await } )*
        }
    };
}

on_both_subscribers! {
    #[tokio::test] instrument_and_api_spans_nest_under_the_request_span;
    #[tokio::test] current_span_and_current_context_agree;
    #[tokio::test] a_remote_parent_links_and_otel_fields;
    #[tokio::test] errors_set_the_status_and_fields_are_redacted;
    #[tokio::test] the_log_filter_and_runtime_control_decide_which_spans_are_recorded;
    #[tokio::test] spawned_tasks_stay_in_the_trace;
    #[tokio::test] a_task_spawned_at_the_handlers_top_level_carries_the_request_context;
    #[tokio::test] span_events_are_a_setting;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)] tail_keep_keeps_a_failed_requests_instrument_spans_whole;
    #[tokio::test] a_full_queue_keeps_every_failed_instrument_span;
    #[tokio::test] a_span_directive_in_the_log_filter_applies_inside_that_span;
}

fn by_name<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    spans
        .iter()
        .find(|s| s.name() == name)
        .unwrap_or_else(|| panic!("no span {name} in {:?}", names(spans)))
}

fn names(spans: &[ReceivedSpan]) -> Vec<&str> {
    spans.iter().map(ReceivedSpan::name).collect()
}

fn parent_of(child: &ReceivedSpan, parent: &ReceivedSpan) -> bool {
    child.trace_id_hex() == parent.trace_id_hex()
        && child.parent_span_id_hex() == parent.span_id_hex()
}

async fn shutdown(telemetry: Telemetry) {
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .expect("clean shutdown");
}

/// One `GET /orders/1` through `app`, to the end of its body.
async fn get_order(app: &Router) -> StatusCode {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let request = http::Request::get("/orders/1")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    response.into_body().collect().await.unwrap();
    status
}

mod handler {
    use super::*;

    #[tracing::instrument(skip(tracer))]
    pub(crate) async fn authorize(tracer: Tracer, order_id: u64) -> &'static str {
        risk(order_id);
        // An OpenTelemetry-API span inside an `#[instrument]` span, and one inside it again.
        let cx = Context::current_with_span(tracer.start("ledger.write"));
        audit(order_id).with_context(cx).await;
        "ok"
    }

    #[tracing::instrument]
    pub(crate) fn risk(order_id: u64) {
        tracing::info!(order_id, "scored");
    }

    #[tracing::instrument]
    pub(crate) async fn audit(order_id: u64) {
        tokio::task::yield_now().await;
    }
}

async fn instrument_and_api_spans_nest_under_the_request_span(path: Path) {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(support::config(&collector)).unwrap();
    let _default = tracing::dispatcher::set_default(&subscriber(&telemetry, path));
    let tracer = telemetry.tracer().clone();
    let app = Router::new()
        .route("/orders/{id}", get(|| handler::authorize(tracer, 1)))
        .layer(telemetry.http_layer());
    assert_eq!(get_order(&app).await, StatusCode::OK);
    let spans = collector.wait_for_spans(5, WAIT).await;
    let logs = collector.wait_for_logs(1, WAIT).await;
    shutdown(telemetry).await;

    let request = by_name(&spans, "GET /orders/{id}");
    let authorize = by_name(&spans, "authorize");
    let risk = by_name(&spans, "risk");
    let ledger = by_name(&spans, "ledger.write");
    let audit = by_name(&spans, "audit");
    assert!(
        parent_of(authorize, request),
        "async #[instrument] under the request"
    );
    assert!(parent_of(risk, authorize), "sync #[instrument] under async");
    assert!(parent_of(ledger, authorize), "API span under #[instrument]");
    assert!(parent_of(audit, ledger), "#[instrument] under an API span");
    assert_eq!(authorize.attr_str("order_id").as_deref(), Some("1"));
    for span in [authorize, risk, audit] {
        for unasked in [
            "code.file.path",
            "thread.id",
            "busy_ns",
            "idle_ns",
            "target",
        ] {
            assert!(span.attr(unasked).is_none(), "{unasked} on {}", span.name());
        }
        assert_eq!(span.span.kind, 1, "internal");
    }
    // The event inside `risk` is a log record with its ids, not a span event by default.
    let scored = logs
        .iter()
        .find(|l| l.body_str().as_deref() == Some("scored"));
    let scored = scored.expect("the log record");
    assert_eq!(scored.span_id_hex(), risk.span_id_hex());
    assert_eq!(scored.trace_id_hex(), request.trace_id_hex());
    assert!(risk.span.events.is_empty(), "no span-event copy by default");
}

async fn current_span_and_current_context_agree(path: Path) {
    let telemetry = Telemetry::start(Config::new().with_install_subscriber(false)).unwrap();
    let _default = tracing::dispatcher::set_default(&subscriber(&telemetry, path));
    let seen = Arc::new(Mutex::new(Vec::new()));
    #[tracing::instrument(skip(seen))]
    async fn step(seen: Arc<Mutex<Vec<(SpanContext, SpanContext)>>>) {
        let of_tracing = tracing::Span::current()
            .context()
            .span()
            .span_context()
            .clone();
        let of_otel = Context::current().span().span_context().clone();
        seen.lock().unwrap().push((of_tracing, of_otel));
    }
    step(seen.clone()).await;
    let seen = seen.lock().unwrap();
    let (of_tracing, of_otel) = &seen[0];
    assert!(of_tracing.is_valid());
    assert_eq!(of_tracing, of_otel);
    assert!(
        !Context::current().span().span_context().is_valid(),
        "detached after"
    );
}

async fn a_remote_parent_links_and_otel_fields(path: Path) {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(support::config(&collector)).unwrap();
    let _default = tracing::dispatcher::set_default(&subscriber(&telemetry, path));
    let remote = SpanContext::new(
        TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736),
        SpanId::from(0x00f067aa0ba902b7),
        TraceFlags::SAMPLED,
        true,
        TraceState::NONE,
    );
    let linked = SpanContext::new(
        TraceId::from(0x11),
        SpanId::from(0x22),
        TraceFlags::SAMPLED,
        true,
        TraceState::NONE,
    );
    {
        let consume = tracing::info_span!("consume", otel.kind = "consumer");
        consume
            .set_parent(Context::new().with_remote_span_context(remote.clone()))
            .unwrap();
        consume.add_link(linked.clone());
        let _entered = consume.enter();
        assert_eq!(
            consume.set_parent(Context::new()),
            Err(SpanError::AlreadyStarted)
        );
        let charge = tracing::info_span!(
            "charge",
            otel.name = "charge card",
            otel.kind = "client",
            otel.status_code = tracing::field::Empty
        );
        charge.record("otel.status_code", "error");
        charge.in_scope(|| {});
        let batch = tracing::info_span!(parent: None, "batch");
        batch.follows_from(&charge);
        batch.in_scope(|| {});
        let settled = tracing::info_span!("settled", otel.status_code = "error");
        settled.set_status(Status::Ok);
        settled.in_scope(|| {});
    }
    assert_eq!(
        tracing::Span::none().set_parent(Context::new()),
        Err(SpanError::NotRecorded)
    );
    let spans = collector.wait_for_spans(4, WAIT).await;
    shutdown(telemetry).await;

    let consume = by_name(&spans, "consume");
    assert_eq!(consume.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(consume.parent_span_id_hex(), "00f067aa0ba902b7");
    assert_eq!(consume.span.kind, 5, "consumer");
    assert_eq!(consume.span.links.len(), 1);
    assert_eq!(
        consume.span.links[0].span_id,
        0x22_u64.to_be_bytes().to_vec()
    );
    let charge = by_name(&spans, "charge card");
    assert!(parent_of(charge, consume));
    assert_eq!(charge.span.kind, 3, "client");
    assert_eq!(
        charge.span.status.as_ref().map(|s| s.code),
        Some(2),
        "error"
    );
    let batch = by_name(&spans, "batch");
    assert_eq!(batch.span.links.len(), 1, "follows_from is a link");
    assert_eq!(batch.span.links[0].span_id, charge.span.span_id);
    assert_ne!(
        batch.trace_id_hex(),
        charge.trace_id_hex(),
        "an explicit root"
    );
    let settled = by_name(&spans, "settled");
    assert_eq!(
        settled.span.status.as_ref().map(|s| s.code),
        Some(1),
        "ok wins"
    );
}

#[tracing::instrument(err)]
async fn settle(fail: bool) -> Result<(), std::io::Error> {
    if fail {
        return Err(std::io::Error::other("ledger unreachable"));
    }
    Ok(())
}

async fn errors_set_the_status_and_fields_are_redacted(path: Path) {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(support::config(&collector)).unwrap();
    let _default = tracing::dispatcher::set_default(&subscriber(&telemetry, path));
    let _ = settle(true).await;
    let _ = settle(false).await;
    {
        let err = std::io::Error::other("card declined");
        let span = tracing::info_span!(
            "capture",
            card_number = "4111 1111 1111 1111",
            password = "hunter2",
            error = tracing::field::Empty
        );
        span.record("error", &err as &(dyn std::error::Error + 'static));
    }
    let spans = collector.wait_for_spans(3, WAIT).await;
    shutdown(telemetry).await;

    let failed: Vec<_> = spans.iter().filter(|s| s.name() == "settle").collect();
    let codes: Vec<_> = failed
        .iter()
        .map(|s| s.span.status.as_ref().map_or(0, |s| s.code))
        .collect();
    assert!(
        codes.contains(&2) && codes.contains(&0),
        "one error, one unset: {codes:?}"
    );
    let capture = by_name(&spans, "capture");
    let text = format!("{:?}", capture.span);
    assert!(
        !text.contains("4111 1111 1111 1111"),
        "card number masked: {text}"
    );
    assert!(!text.contains("hunter2"), "password redacted: {text}");
    let status = capture.span.status.as_ref().unwrap();
    assert_eq!((status.code, status.message.as_str()), (2, "card declined"));
}

async fn the_log_filter_and_runtime_control_decide_which_spans_are_recorded(path: Path) {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(support::config(&collector)).unwrap();
    let _default = tracing::dispatcher::set_default(&subscriber(&telemetry, path));
    {
        let outer = tracing::info_span!("outer");
        let _outer = outer.enter();
        let hidden = tracing::debug_span!("hidden");
        let _hidden = hidden.enter();
        tracing::info_span!("inner").in_scope(|| {});
    }
    telemetry
        .control()
        .set_log_filter("info,app_spans=debug", Duration::from_secs(60), "test")
        .unwrap();
    tracing::debug_span!("shown").in_scope(|| {});
    let spans = collector.wait_for_spans(3, WAIT).await;
    shutdown(telemetry).await;

    assert!(!names(&spans).contains(&"hidden"), "{:?}", names(&spans));
    assert!(parent_of(
        by_name(&spans, "inner"),
        by_name(&spans, "outer")
    ));
    by_name(&spans, "shown");
}

async fn spawned_tasks_stay_in_the_trace(path: Path) {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(support::config(&collector)).unwrap();
    let _default = tracing::dispatcher::set_default(&subscriber(&telemetry, path));
    #[tracing::instrument]
    async fn notify() {}
    #[tracing::instrument]
    async fn pay() {
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let current = tokio::spawn(
            async { notify().await }
                .in_current_span()
                .with_subscriber_of(&dispatch),
        );
        let named = tokio::spawn(
            async { notify().await }
                .instrument(tracing::info_span!("background"))
                .with_subscriber_of(&dispatch),
        );
        let (a, b) = tokio::join!(current, named);
        a.unwrap();
        b.unwrap();
    }
    pay().await;
    let spans = collector.wait_for_spans(4, WAIT).await;
    shutdown(telemetry).await;

    let pay = by_name(&spans, "pay");
    let background = by_name(&spans, "background");
    assert!(parent_of(background, pay));
    let notifies: Vec<_> = spans.iter().filter(|s| s.name() == "notify").collect();
    assert_eq!(notifies.len(), 2);
    assert!(notifies
        .iter()
        .any(|n| parent_of(n, pay) || parent_of(n, background)));
    assert!(notifies
        .iter()
        .all(|n| n.trace_id_hex() == pay.trace_id_hex()));
}

async fn a_task_spawned_at_the_handlers_top_level_carries_the_request_context(path: Path) {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(support::config(&collector)).unwrap();
    let dispatch = subscriber(&telemetry, path);
    #[tracing::instrument]
    async fn notify() {}
    let handler_dispatch = dispatch.clone();
    let app = Router::new()
        .route(
            "/orders/{id}",
            get(move || {
                // No `tracing` span is current here: the request span is an OpenTelemetry one.
                let task = async { notify().await }
                    .with_current_context()
                    .with_subscriber_of(&handler_dispatch);
                async move { tokio::spawn(task).await.unwrap() }
            }),
        )
        .layer(telemetry.http_layer());
    get_order(&app).with_subscriber_of(&dispatch).await;
    let spans = collector.wait_for_spans(2, WAIT).await;
    shutdown(telemetry).await;

    assert!(parent_of(
        by_name(&spans, "notify"),
        by_name(&spans, "GET /orders/{id}")
    ));
}

/// Scopes a spawned future to the test's subscriber (tests never install a global one).
trait WithSubscriberOf: Sized {
    fn with_subscriber_of(
        self,
        dispatch: &tracing::Dispatch,
    ) -> tracing::instrument::WithDispatch<Self>;
}

impl<F: std::future::Future> WithSubscriberOf for F {
    fn with_subscriber_of(
        self,
        dispatch: &tracing::Dispatch,
    ) -> tracing::instrument::WithDispatch<Self> {
        tracing::instrument::WithSubscriber::with_subscriber(self, dispatch.clone())
    }
}

async fn span_events_are_a_setting(path: Path) {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(support::config(&collector).with_span_events(true)).unwrap();
    let _default = tracing::dispatcher::set_default(&subscriber(&telemetry, path));
    tracing::info_span!("with_event").in_scope(|| tracing::info!(order_id = 3, "noted"));
    let spans = collector.wait_for_spans(1, WAIT).await;
    shutdown(telemetry).await;

    let span = by_name(&spans, "with_event");
    assert_eq!(span.span.events.len(), 1);
    assert_eq!(span.span.events[0].name, "noted");
}

async fn tail_keep_keeps_a_failed_requests_instrument_spans_whole(path: Path) {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(
        support::config(&collector).with_sampler(paytrace::Sampler::ParentBasedRatio(1e-9)),
    )
    .unwrap();
    let dispatch = subscriber(&telemetry, path);
    let app = Router::new()
        .route(
            "/orders/{id}",
            get(
                |axum::extract::Path(id): axum::extract::Path<u32>| async move {
                    step(id).await;
                    if id == 0 {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                },
            ),
        )
        .layer(telemetry.http_layer());
    #[tracing::instrument]
    async fn step(id: u32) {
        inner().await;
    }
    #[tracing::instrument]
    async fn inner() {}
    support::get_orders(&app, 20)
        .with_subscriber_of(&dispatch)
        .await;
    shutdown(telemetry).await;

    let spans = collector.spans();
    let kept: Vec<_> = names(&spans);
    assert_eq!(kept.len(), 3, "only the failed request, whole: {kept:?}");
    let request = by_name(&spans, "GET /orders/{id}");
    assert_eq!(request.attr_str("url.path").as_deref(), Some("/orders/0"));
    assert!(parent_of(by_name(&spans, "step"), request));
    assert!(parent_of(by_name(&spans, "inner"), by_name(&spans, "step")));
}

async fn a_full_queue_keeps_every_failed_instrument_span(path: Path) {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(
        support::config(&collector)
            .with_span_queue_bytes(128 * 1024)
            .with_span_schedule_delay(Duration::from_millis(50)),
    )
    .unwrap();
    let dispatch = subscriber(&telemetry, path);
    #[tracing::instrument(err)]
    async fn reserve(n: u32) -> Result<(), std::io::Error> {
        if n.is_multiple_of(20) {
            return Err(std::io::Error::other("no stock"));
        }
        Ok(())
    }
    let app = Router::new()
        .route(
            "/orders/{n}",
            get(
                |axum::extract::Path(n): axum::extract::Path<u32>| async move {
                    let _ = reserve(n).await;
                    "ok"
                },
            ),
        )
        .layer(telemetry.http_layer());
    // Every export waits a second: the burst overflows the small queue meanwhile.
    collector.set_fault(paytrace::testing::Fault::Delay(Duration::from_secs(1)));
    support::get_orders(&app, 2_000)
        .with_subscriber_of(&dispatch)
        .await;
    collector.set_fault(paytrace::testing::Fault::None);
    // Drops make flush and shutdown report an error: that is the point here.
    let telemetry = tokio::task::spawn_blocking(move || {
        let _ = telemetry.force_flush();
        telemetry
    })
    .await
    .unwrap();
    let health = telemetry.exporter_health();
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;

    let failed = collector
        .spans()
        .into_iter()
        .filter(|s| s.name() == "reserve" && s.span.status.as_ref().is_some_and(|st| st.code == 2))
        .count();
    let traces = health.get(paytrace::Signal::Traces);
    assert!(traces.dropped > 0, "the burst did overflow: {traces:?}");
    assert_eq!(traces.dropped_priority, 0, "{traces:?}");
    assert_eq!(failed, 100, "every failed reserve span arrived");
}

async fn a_span_directive_in_the_log_filter_applies_inside_that_span(path: Path) {
    let collector = TestCollector::start().await.unwrap();
    let telemetry =
        Telemetry::start(support::config(&collector).with_log_filter("info,[audit]=debug"))
            .unwrap();
    let _default = tracing::dispatcher::set_default(&subscriber(&telemetry, path));
    tracing::debug!("outside");
    tracing::info_span!("audit").in_scope(|| tracing::debug!("inside"));
    tracing::info!("after");
    let logs = collector.wait_for_logs(2, WAIT).await;
    shutdown(telemetry).await;

    let bodies: Vec<_> = logs.iter().filter_map(|l| l.body_str()).collect();
    assert!(bodies.iter().any(|b| b == "inside"), "{bodies:?}");
    assert!(!bodies.iter().any(|b| b == "outside"), "{bodies:?}");
}
