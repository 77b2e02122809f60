//! [`EventLayer`]: each `tracing` event becomes an OTLP log record written straight into the
//! export queue's form, with the ids of the span current when it happened. It makes what the
//! official bridge (`opentelemetry-appender-tracing`) makes, without an SDK record in between.

use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::logs::AnyValue;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{Context, Key};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use tracing::field::{Field, Visit};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer;
use tracing_subscriber::Layer;

use crate::export::batch::Batcher;
use crate::export::log_record::{EventAttributes, EventRecord, QueuedLog, RecordTrace};
use crate::export::processor::is_internal_target;

/// The official bridge, for logs going elsewhere than the export queue (the console).
pub(crate) type Bridge = OpenTelemetryTracingBridge<SdkLoggerProvider, SdkLogger>;

/// Writes each `tracing` event straight into the log export queue (logs over OTLP); needs no
/// span lookup, so it sits on any subscriber.
#[derive(Debug, Clone)]
pub(crate) struct EventLayer(pub(crate) Arc<Batcher<QueuedLog>>);

impl<S: Subscriber> Layer<S> for EventLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: layer::Context<'_, S>) {
        record(&self.0, event);
    }
}

/// Writes `event` into the queue as a log record.
fn record(queue: &Batcher<QueuedLog>, event: &Event<'_>) {
    let meta = event.metadata();
    let current = CurrentSpan::get();
    if !current.wants_record(meta) {
        return;
    }
    let mut fields = EventFields::default();
    event.record(&mut fields);
    let record = fields.into_record(meta, SystemTime::now(), current.trace);
    queue.push(QueuedLog::Event(record));
}

/// What a log record takes from the current OpenTelemetry context.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CurrentSpan {
    /// The current span's ids, when they are valid.
    pub(crate) trace: Option<RecordTrace>,
    /// Telemetry is suppressed here: no record, as the SDK's logger does.
    pub(crate) suppressed: bool,
}

impl CurrentSpan {
    /// Whether an event of `meta` here gets a log record: not while telemetry is suppressed,
    /// and not from the transport crates or paytrace's own export, which must not log to the
    /// collector.
    pub(crate) fn wants_record(&self, meta: &Metadata<'_>) -> bool {
        !self.suppressed && !is_internal_target(meta.target())
    }

    pub(crate) fn get() -> CurrentSpan {
        Context::map_current(|cx| {
            let span = cx.span();
            let sc = span.span_context();
            CurrentSpan {
                trace: sc.is_valid().then(|| RecordTrace {
                    trace_id: sc.trace_id(),
                    span_id: sc.span_id(),
                    flags: sc.trace_flags(),
                }),
                suppressed: cx.is_telemetry_suppressed(),
            }
        })
    }
}

/// The event's name when the code gave one: `tracing` names every other event after its file
/// and line (`event src/pay.rs:42`), which is code location, not a name.
fn given_name(meta: &'static Metadata<'static>) -> Option<&'static str> {
    let name = meta.name();
    let location = name.strip_prefix("event ");
    match (location, meta.file()) {
        (Some(location), Some(file)) if location.starts_with(file) => None,
        _ => Some(name),
    }
}

/// The body and attributes of an event, typed as the official bridge types them.
#[derive(Debug, Default)]
pub(crate) struct EventFields {
    body: Option<AnyValue>,
    attributes: EventAttributes,
}

impl EventFields {
    /// The record of an event of `meta` at `time`, inside `trace`.
    pub(crate) fn into_record(
        self,
        meta: &'static Metadata<'static>,
        time: SystemTime,
        trace: Option<RecordTrace>,
    ) -> EventRecord {
        EventRecord {
            time,
            level: *meta.level(),
            target: meta.target(),
            name: given_name(meta),
            body: self.body,
            attributes: self.attributes,
            trace,
        }
    }

    fn attribute(&mut self, field: &Field, value: AnyValue) {
        self.attributes
            .push((Key::from_static_str(field.name()), value));
    }

    /// A number an `i64` holds is an integer, a larger one its decimal text.
    fn integer(&mut self, field: &Field, value: impl TryInto<i64> + std::fmt::Debug + Copy) {
        let value = match value.try_into() {
            Ok(signed) => AnyValue::Int(signed),
            Err(_) => AnyValue::from(format!("{value:?}")),
        };
        self.attribute(field, value);
    }
}

impl Visit for EventFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = AnyValue::from(format!("{value:?}"));
        if field.name() == "message" {
            self.body = Some(text);
        } else {
            self.attribute(field, text);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let text = AnyValue::from(value.to_owned());
        if field.name() == "message" {
            self.body = Some(text);
        } else {
            self.attribute(field, text);
        }
    }

    fn record_error(&mut self, _field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.attributes.push((
            Key::from_static_str("exception.message"),
            AnyValue::from(value.to_string()),
        ));
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.attribute(field, AnyValue::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attribute(field, AnyValue::Boolean(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attribute(field, AnyValue::Double(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attribute(field, AnyValue::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.integer(field, value);
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.integer(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.integer(field, value);
    }
}
