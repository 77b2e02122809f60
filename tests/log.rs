//! The context-aware logger: trace ids on stdout (JSON) and in OTLP log records, for events in a
//! request's context, in a tracing span, through `with_context`, and in a spawned task; and no
//! secret on either side.

mod support;

use std::sync::Arc;

use opentelemetry::trace::{TraceContextExt as _, Tracer as _};
use paytrace::log::JsonLayer;
use paytrace::testing::TestCollector;
use paytrace::Telemetry;
use support::{child_stdout, child_test, config, json_lines, Lines, WAIT};
use tracing_subscriber::layer::SubscriberExt as _;

fn ids(cx: &opentelemetry::Context) -> (String, String) {
    let sc = cx.span().span_context().clone();
    (sc.trace_id().to_string(), sc.span_id().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_carry_trace_ids_on_stdout_and_in_otlp() {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(config(&collector)).unwrap();
    let lines = Lines::default();
    let make = lines.clone();
    let subscriber = Arc::new(
        tracing_subscriber::registry()
            .with(JsonLayer::new(move || make.clone()).with_service_name("paytrace-test"))
            .with(telemetry.layers()),
    );

    // 1. An OpenTelemetry context attached (what the HTTP layer does during a request).
    let request =
        opentelemetry::Context::current_with_span(telemetry.tracer().start("POST /callback"));
    let (trace_a, span_a) = ids(&request);
    tracing::subscriber::with_default(subscriber.clone(), || {
        let _attached = request.clone().attach();
        tracing::info!(order_id = 1, "in request");
    });
    // 2. A plain tracing span, bridged by tracing-opentelemetry.
    let (trace_b, span_b) = tracing::subscriber::with_default(subscriber.clone(), || {
        let span = tracing::info_span!("settle");
        let _entered = span.enter();
        tracing::info!("in tracing span");
        ids(&opentelemetry::Context::current())
    });
    // 3. `with_context` in a task spawned from the request, after the request has finished.
    let cx = request.clone();
    request.span().end();
    let sub = subscriber.clone();
    tokio::spawn(async move {
        tracing::subscriber::with_default(sub, || {
            paytrace::log::logger()
                .with_context(&cx)
                .in_scope(|| tracing::info!(order_id = 1, "spawned later"));
        });
    })
    .await
    .unwrap();

    for (message, trace, span) in [
        ("in request", &trace_a, &span_a),
        ("in tracing span", &trace_b, &span_b),
        ("spawned later", &trace_a, &span_a),
    ] {
        let line = lines.find(message);
        assert_eq!(line["trace_id"], **trace, "{line}");
        assert_eq!(line["span_id"], **span, "{line}");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["service.name"], "paytrace-test");
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(lines.find("in request")["order_id"], 1);

    let telemetry = Arc::new(telemetry);
    let t = telemetry.clone();
    tokio::task::spawn_blocking(move || t.force_flush())
        .await
        .unwrap()
        .unwrap();
    collector.wait_for_logs(3, WAIT).await;
    let logs = collector.log_records();
    for (message, trace, span) in [
        ("in request", &trace_a, &span_a),
        ("in tracing span", &trace_b, &span_b),
        ("spawned later", &trace_a, &span_a),
    ] {
        let record = logs
            .iter()
            .find(|l| l.body_str().as_deref() == Some(message))
            .expect(message);
        assert_eq!(&record.trace_id_hex(), trace, "{message}");
        assert_eq!(&record.span_id_hex(), span, "{message}");
        assert_eq!(record.severity_text(), "INFO");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_stdout_or_otlp() {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(config(&collector)).unwrap();
    let lines = Lines::default();
    let make = lines.clone();
    let subscriber = tracing_subscriber::registry()
        .with(JsonLayer::new(move || make.clone()))
        .with(telemetry.layers());
    let secrets = [
        "4111111111111111",
        "hunter2",
        "tok_live_123",
        "sig-abcdef",
        "Bearer s3cr3t",
        "pa55word",
        "k_live_9f8e",
        "r0tat3d",
    ];
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(
            card_number = "4111111111111111",
            password = "hunter2",
            "card 4111 1111 1111 1111 charged"
        );
        tracing::warn!(
            access_token = "tok_live_123",
            sign = "sig-abcdef",
            "callback"
        );
        tracing::error!(
            authorization = "Bearer s3cr3t",
            note = "pan 4111-1111-1111-1111",
            "auth failed"
        );
        // Secrets written into free text: the message, a string field, a debug dump.
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Login {
            user: &'static str,
            password: &'static str,
        }
        let login = Login {
            user: "bob",
            password: "r0tat3d",
        };
        tracing::warn!(
            detail = "retry with api_key=k_live_9f8e",
            ?login,
            "login failed for bob, password=pa55word"
        );
    });
    let stdout = lines.text();
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    let telemetry = Arc::new(telemetry);
    let t = telemetry.clone();
    tokio::task::spawn_blocking(move || t.force_flush())
        .await
        .unwrap()
        .unwrap();
    let logs = collector.wait_for_logs(4, WAIT).await;
    let otlp = format!("{:?}", logs.iter().map(|l| &l.record).collect::<Vec<_>>());
    assert!(otlp.contains("login failed for bob"), "{otlp}");
    for secret in secrets {
        assert!(!stdout.contains(secret), "{secret} on stdout: {stdout}");
        assert!(!otlp.contains(secret), "{secret} in OTLP: {otlp}");
    }
    assert!(stdout.contains("411111******1111"), "{stdout}");
    assert!(stdout.contains("REDACTED"), "{stdout}");
}

/// Set in the child process of [`sdk_records_stay_off_stdout_at_the_default_settings`].
const STDOUT_CHILD: &str = "PAYTRACE_TEST_STDOUT_CHILD";

/// The OpenTelemetry SDK's own records (`TracerProvider.GlobalSet`, `MeterProvider.GlobalSet`,
/// targets `opentelemetry*`) must not reach the service's stdout at the default settings; the
/// application's records must. Run against the real stdout: the test runs itself again as a
/// child process (so that nothing else writes there, and so the globals the SDK is made to set
/// stay in that process), and reads the child's stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_records_stay_off_stdout_at_the_default_settings() {
    if std::env::var_os(STDOUT_CHILD).is_some() {
        return stdout_child().await;
    }
    let (sdk, app) = stdout_records(None);
    assert!(sdk.is_empty(), "SDK records on stdout: {sdk:#?}");
    assert_eq!(app.len(), 1, "{app:?}");
    assert_eq!(app[0]["target"], "payments");
    // OTEL_LOG_LEVEL lets them through.
    let (sdk, app) = stdout_records(Some("info"));
    assert!(
        sdk.iter().any(|r| r.to_string().contains("GlobalSet")),
        "OTEL_LOG_LEVEL=info shows the SDK's records: {sdk:#?}"
    );
    assert_eq!(app.len(), 1);
}

/// Run the child with `OTEL_LOG_LEVEL` (or without); its stdout's SDK records and app records.
fn stdout_records(level: Option<&str>) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let mut child = child_test("sdk_records_stay_off_stdout_at_the_default_settings");
    child.env(STDOUT_CHILD, "1").env_remove("OTEL_LOG_LEVEL");
    if let Some(level) = level {
        child.env("OTEL_LOG_LEVEL", level);
    }
    let records = json_lines(&child_stdout(child), "{");
    let (sdk, app): (Vec<_>, Vec<_>) = records
        .into_iter()
        .filter(|r| {
            r["target"]
                .as_str()
                .unwrap_or("")
                .starts_with("opentelemetry")
                || r.to_string().contains("GlobalSet")
                || r["message"] == "payment accepted"
        })
        .partition(|r| r["message"] != "payment accepted");
    (sdk, app)
}

/// The child: default settings (JSON on stdout, filter `info`), paytrace's subscriber in scope,
/// the SDK's records — made up, and the real ones from setting the global providers — and one
/// application record.
async fn stdout_child() {
    let collector = TestCollector::start().await.unwrap();
    let level = std::env::var("OTEL_LOG_LEVEL").ok();
    let telemetry = Telemetry::start(
        paytrace::Config::from_env_vars(level.map(|l| ("OTEL_LOG_LEVEL", l)))
            .with_endpoint(collector.endpoint())
            .with_service_name("stdout-test")
            .with_install_subscriber(false),
    )
    .unwrap();
    tracing::subscriber::with_default(telemetry.subscriber(), || {
        tracing::info!(
            target: "opentelemetry_sdk",
            name = "TracerProvider.GlobalSet",
            "Global tracer provider is set"
        );
        // What `init_tracer` does; the SDK records `TracerProvider.GlobalSet` and
        // `MeterProvider.GlobalSet` at INFO, target `opentelemetry`.
        opentelemetry::global::set_tracer_provider(telemetry.tracer_provider().clone());
        opentelemetry::global::set_meter_provider(telemetry.meter_provider().clone());
        tracing::info!(target: "payments", order_id = 7, "payment accepted");
    });
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .expect("clean shutdown");
}
