//! `tracing` events as OTLP log records: paytrace writes them straight into its export queue
//! (with JSON lines on stdout, from the same visit of each event), and the collector must
//! receive what the official bridge (`opentelemetry-appender-tracing`) makes of the same events,
//! but for the event name `tracing` makes up from file and line.

mod support;

use opentelemetry::trace::TraceState;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider};
use paytrace::testing::TestCollector;
use paytrace::{LogFormat, Telemetry};
use support::{child_stdout, child_test, config, json_lines, WAIT};
use tracing_subscriber::layer::SubscriberExt as _;

/// Set in the child that runs with JSON lines on its stdout.
const JSON_CHILD: &str = "PAYTRACE_LOG_RECORDS_JSON_CHILD";

/// The events both paths record: every field type `tracing` has, a message given as a field,
/// an event with a name of its own and one with another target.
fn emit() {
    let failure = std::io::Error::other("gateway timeout");
    tracing::info!(
        order_id = 42_u64,
        amount = 12.5,
        captured = true,
        "order paid"
    );
    tracing::warn!(
        huge = u64::MAX,
        delta = -3_i64,
        wide = 1_i128 << 70,
        narrow = 7_u128,
        note = "plain text",
        items = ?[1, 2],
        "declined"
    );
    tracing::error!(
        error = &failure as &(dyn std::error::Error + 'static),
        raw = &b"\x01\xff"[..],
        "failed"
    );
    tracing::info!(name: "payment.captured", target: "checkout", "captured");
    tracing::info!(message = "explicit", n = 1);
}

/// A sampled remote parent: both paths read the ids from the current context.
fn parent() -> opentelemetry::Context {
    opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128),
        SpanId::from(0x00f0_67aa_0ba9_02b7_u64),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ))
}

/// What the official bridge makes of [`emit`], converted by opentelemetry-proto, with the
/// scope name (the target) of each.
fn reference() -> Vec<(String, LogRecord)> {
    let exporter = InMemoryLogExporter::default();
    let provider = SdkLoggerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber =
        tracing_subscriber::registry().with(OpenTelemetryTracingBridge::new(&provider));
    tracing::subscriber::with_default(subscriber, || {
        let _parent = parent().attach();
        emit();
    });
    exporter
        .get_emitted_logs()
        .unwrap()
        .iter()
        .map(|log| {
            let target = log
                .record
                .target()
                .map(|t| t.to_string())
                .unwrap_or_default();
            (target, LogRecord::from(&log.record))
        })
        .collect()
}

/// Times differ between the two runs: compared as zero.
fn timeless(mut record: LogRecord) -> LogRecord {
    record.time_unix_nano = 0;
    record.observed_time_unix_nano = 0;
    record
}

fn body(record: &LogRecord) -> String {
    format!("{:?}", record.body)
}

/// Records [`emit`] through paytrace's subscriber with `format` on stdout and checks what the
/// collector receives against [`reference`].
async fn records_match_the_bridge(format: LogFormat) {
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(config(&collector).with_log_format(format)).unwrap();
    tracing::subscriber::with_default(telemetry.subscriber(), || {
        let _parent = parent().attach();
        emit();
    });
    let expected = reference();
    assert_eq!(expected.len(), 5, "{expected:#?}");
    let received = collector.wait_for_logs(expected.len(), WAIT).await;
    assert_eq!(received.len(), expected.len(), "{received:#?}");
    for (target, reference) in expected {
        let mut reference = timeless(reference);
        let got = received
            .iter()
            .find(|r| body(&r.record) == body(&reference))
            .unwrap_or_else(|| panic!("no record {:?}", reference.body));
        // An event's made-up name (`event <file>:<line>`) is code location: not exported.
        if reference.event_name.starts_with("event ") {
            reference.event_name.clear();
        }
        assert_eq!(got.scope, target, "{got:?}");
        assert_eq!(timeless(got.record.clone()), reference);
        assert_ne!(got.record.time_unix_nano, 0, "{got:?}");
        assert_eq!(
            got.record.time_unix_nano,
            got.record.observed_time_unix_nano
        );
    }
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_stdout_events_reach_the_collector_as_the_bridge_makes_them() {
    records_match_the_bridge(LogFormat::Off).await;
}

/// With JSON lines on, one visit of each event writes its line and its record. Run in a child
/// process, whose stdout is read: the lines must be there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_json_lines_events_reach_the_collector_as_the_bridge_makes_them() {
    if std::env::var_os(JSON_CHILD).is_some() {
        return records_match_the_bridge(LogFormat::Json).await;
    }
    let mut child =
        child_test("with_json_lines_events_reach_the_collector_as_the_bridge_makes_them");
    child.env(JSON_CHILD, "1");
    let lines = json_lines(&child_stdout(child), "{\"timestamp\"");
    let messages: Vec<_> = lines.iter().map(|l| l["message"].clone()).collect();
    assert_eq!(
        messages,
        ["order paid", "declined", "failed", "captured", "explicit"],
        "{lines:#?}"
    );
    let failed = &lines[2];
    assert_eq!(failed["error"], "gateway timeout");
    assert_eq!(failed["raw"], "[01 ff]");
    assert_eq!(lines[1]["wide"], (1_i128 << 70).to_string());
    assert_eq!(failed["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
}
