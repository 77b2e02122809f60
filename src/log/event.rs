//! [`EventLayer`]: each `tracing` event becomes an OTLP log record written straight into the
//! export queue's form, with the ids of the span current when it happened. It makes what the
//! official bridge (`opentelemetry-appender-tracing`) makes, without an SDK record in between.

use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::logs::{AnyValue, Logger as _, LoggerProvider as _};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{Context, Key};
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use tracing::field::{Field, Visit};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer;
use tracing_subscriber::Layer;

use crate::export::batch::Batcher;
use crate::export::log_record::{severity, EventAttributes, EventRecord, QueuedLog, RecordTrace};
use crate::export::processor::is_internal_target;

/// Where each `tracing` event becomes a log record; needs no span lookup, so it sits on any
/// subscriber.
#[derive(Debug, Clone)]
pub(crate) enum EventLayer {
    /// Straight into the log export queue (logs over OTLP).
    Queue(Arc<Batcher<QueuedLog>>),
    /// Through a logger of the provider, whose processors export elsewhere (the console).
    Logger(SdkLogger),
}

impl EventLayer {
    /// Into `queue` when there is one, else through `provider`'s processors (with the empty
    /// scope name the official bridge uses).
    pub(crate) fn new(
        queue: Option<Arc<Batcher<QueuedLog>>>,
        provider: &SdkLoggerProvider,
    ) -> Self {
        match queue {
            Some(queue) => EventLayer::Queue(queue),
            None => EventLayer::Logger(provider.logger("")),
        }
    }
}

impl<S: Subscriber> Layer<S> for EventLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: layer::Context<'_, S>) {
        let meta = event.metadata();
        let current = CurrentSpan::get();
        if !current.wants_record(meta) {
            return;
        }
        match self {
            EventLayer::Queue(queue) => queue.push(QueuedLog::Event(read(event, current))),
            EventLayer::Logger(logger) => {
                let level = severity(*meta.level());
                if !logger.event_enabled(level, meta.target(), given_name(meta)) {
                    return;
                }
                let mut record = logger.create_log_record();
                read(event, current).write_to(&mut record);
                logger.emit(record);
            }
        }
    }
}

/// The record of `event`, made now inside `current`.
fn read(event: &Event<'_>, current: CurrentSpan) -> EventRecord {
    let mut fields = EventFields::default();
    event.record(&mut fields);
    fields.into_record(event.metadata(), SystemTime::now(), current.trace)
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

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
    use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLogRecord};
    use tracing_subscriber::layer::SubscriberExt as _;

    /// What a record says, but for its times and a made-up event name (`event <file>:<line>`).
    fn said(record: &SdkLogRecord) -> String {
        let name = record.event_name().filter(|n| !n.starts_with("event "));
        let attributes: Vec<_> = record.attributes_iter().collect();
        format!(
            "{:?} {:?} {:?} {:?} {name:?} {attributes:?} {:?}",
            record.body(),
            record.severity_number(),
            record.severity_text(),
            record.target(),
            record
                .trace_context()
                .map(|t| (t.trace_id, t.span_id, t.trace_flags)),
        )
    }

    /// The records `layer` makes of a few events inside a remote parent, through a provider
    /// exporting to memory.
    fn records<L>(layer: impl FnOnce(&SdkLoggerProvider) -> L) -> Vec<String>
    where
        L: Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
    {
        let exporter = InMemoryLogExporter::default();
        let provider = SdkLoggerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry().with(layer(&provider));
        tracing::subscriber::with_default(subscriber, || {
            let parent = Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from(0x4bf9_u128),
                SpanId::from(0x00f0_u64),
                TraceFlags::SAMPLED,
                true,
                TraceState::default(),
            ));
            let _parent = parent.attach();
            let failure = std::io::Error::other("gateway timeout");
            tracing::info!(order_id = 42_u64, amount = 12.5, "order paid");
            tracing::warn!(huge = u64::MAX, wide = 1_i128 << 70, items = ?[1, 2], "declined");
            tracing::error!(
                error = &failure as &(dyn std::error::Error + 'static),
                "failed"
            );
            tracing::info!(name: "payment.captured", target: "checkout", "captured");
        });
        let logs = exporter.get_emitted_logs().unwrap();
        logs.iter().map(|log| said(&log.record)).collect()
    }

    #[test]
    fn through_a_logger_provider_the_records_are_the_official_bridges() {
        let ours = records(|provider| EventLayer::new(None, provider));
        let bridge = records(OpenTelemetryTracingBridge::new);
        assert_eq!(ours.len(), 4);
        assert_eq!(ours, bridge);
    }
}
