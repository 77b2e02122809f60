//! A log record as the export queue holds it: a `tracing` event written straight into the
//! queue's form ([`EventRecord`]), or a record made through the OpenTelemetry Logs API.
//!
//! The encoder, the queue's weight and the tests read both through [`LogView`], so an event and
//! an API record with the same content encode to the same bytes.

use std::time::SystemTime;

use opentelemetry::logs::{AnyValue, Severity};
use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
use opentelemetry::{InstrumentationScope, Key};
use opentelemetry_sdk::logs::SdkLogRecord;

/// One queued log record.
// The common variant is held inline: boxing it would add back the allocation it avoids.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum QueuedLog {
    /// A `tracing` event, recorded by paytrace's own layer.
    Event(EventRecord),
    /// A record made through the OpenTelemetry Logs API (the SDK's logger provider); boxed, as
    /// the SDK's record and its scope are larger than an event's record.
    Sdk(Box<(SdkLogRecord, InstrumentationScope)>),
}

/// The trace a record belongs to: the ids of the span current when it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordTrace {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) flags: TraceFlags,
}

/// A `tracing` event as a log record: what the OTLP record needs, nothing the SDK adds.
#[derive(Debug)]
pub(crate) struct EventRecord {
    pub(crate) time: SystemTime,
    pub(crate) level: tracing::Level,
    /// The `tracing` target, which names the record's scope.
    pub(crate) target: &'static str,
    /// A name the code gave the event (`info!(name: "…", …)`); tracing's default name, the
    /// event's file and line, is not one.
    pub(crate) name: Option<&'static str>,
    /// The `message` field.
    pub(crate) body: Option<AnyValue>,
    pub(crate) attributes: EventAttributes,
    pub(crate) trace: Option<RecordTrace>,
}

impl EventRecord {
    /// This record written into a record of the OpenTelemetry Logs API, for a logger provider
    /// whose processors export elsewhere than paytrace's queue (the console).
    pub(crate) fn write_to(self, record: &mut impl opentelemetry::logs::LogRecord) {
        record.set_timestamp(self.time);
        record.set_observed_timestamp(self.time);
        record.set_severity_number(severity(self.level));
        record.set_severity_text(self.level.as_str());
        record.set_target(self.target);
        if let Some(name) = self.name {
            record.set_event_name(name);
        }
        if let Some(body) = self.body {
            record.set_body(body);
        }
        record.add_attributes(self.attributes);
        if let Some(trace) = self.trace {
            record.set_trace_context(trace.trace_id, trace.span_id, Some(trace.flags));
        }
    }
}

/// An event's attributes: most events have a few, held inline.
pub(crate) type EventAttributes = smallvec::SmallVec<[(Key, AnyValue); 4]>;

/// What encoding and weighing read of a log record, whatever its form.
pub(crate) trait LogView {
    /// When the event happened, if known.
    fn time(&self) -> Option<SystemTime>;
    /// When it was observed; an event's own time.
    fn observed(&self) -> Option<SystemTime>;
    fn severity(&self) -> Option<Severity>;
    fn severity_text(&self) -> Option<&str>;
    /// The name of the record's scope, when it is not the scope's own (a `tracing` target).
    fn target(&self) -> Option<&str>;
    fn body(&self) -> Option<&AnyValue>;
    fn attributes(&self) -> impl Iterator<Item = (&Key, &AnyValue)>;
    fn trace(&self) -> Option<RecordTrace>;
    fn event_name(&self) -> Option<&str>;
}

impl LogView for EventRecord {
    fn time(&self) -> Option<SystemTime> {
        Some(self.time)
    }
    fn observed(&self) -> Option<SystemTime> {
        Some(self.time)
    }
    fn severity(&self) -> Option<Severity> {
        Some(severity(self.level))
    }
    fn severity_text(&self) -> Option<&str> {
        Some(self.level.as_str())
    }
    fn target(&self) -> Option<&str> {
        Some(self.target)
    }
    fn body(&self) -> Option<&AnyValue> {
        self.body.as_ref()
    }
    fn attributes(&self) -> impl Iterator<Item = (&Key, &AnyValue)> {
        self.attributes.iter().map(|(k, v)| (k, v))
    }
    fn trace(&self) -> Option<RecordTrace> {
        self.trace
    }
    fn event_name(&self) -> Option<&str> {
        self.name
    }
}

impl LogView for SdkLogRecord {
    fn time(&self) -> Option<SystemTime> {
        self.timestamp()
    }
    fn observed(&self) -> Option<SystemTime> {
        self.observed_timestamp()
    }
    fn severity(&self) -> Option<Severity> {
        self.severity_number()
    }
    fn severity_text(&self) -> Option<&str> {
        SdkLogRecord::severity_text(self)
    }
    fn target(&self) -> Option<&str> {
        SdkLogRecord::target(self).map(|t| t.as_ref())
    }
    fn body(&self) -> Option<&AnyValue> {
        SdkLogRecord::body(self)
    }
    fn attributes(&self) -> impl Iterator<Item = (&Key, &AnyValue)> {
        self.attributes_iter().map(|(k, v)| (k, v))
    }
    fn trace(&self) -> Option<RecordTrace> {
        self.trace_context().map(|cx| RecordTrace {
            trace_id: cx.trace_id,
            span_id: cx.span_id,
            flags: cx.trace_flags.unwrap_or_default(),
        })
    }
    fn event_name(&self) -> Option<&str> {
        SdkLogRecord::event_name(self)
    }
}

/// The OpenTelemetry severity of a `tracing` level, as the official bridge maps it.
pub(crate) fn severity(level: tracing::Level) -> Severity {
    match level {
        tracing::Level::TRACE => Severity::Trace,
        tracing::Level::DEBUG => Severity::Debug,
        tracing::Level::INFO => Severity::Info,
        tracing::Level::WARN => Severity::Warn,
        tracing::Level::ERROR => Severity::Error,
    }
}
