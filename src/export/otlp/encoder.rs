//! SDK spans and log records written straight into OTLP request bytes, grouped by resource and
//! scope, split under the request size cap. No generated proto struct is built per item, so an
//! attribute costs no allocation unless redaction has to rewrite its value. All of this runs on
//! the export thread, never on the request path.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use opentelemetry::logs::AnyValue as LogValue;
use opentelemetry::trace::{SpanId, Status, TraceState};
use opentelemetry::{Array, InstrumentationScope, Key, Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind as ProtoSpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::SpanFlags;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::trace::SpanData;
use prost::Message;

use super::fields::{
    any_value, array_value, event, export_request, key_value, key_value_list, link, log_record,
    resource_items, scope, scope_items, span, status,
};
use super::sanitize::Sanitizer;
use super::wire::{field_len, Writer};
use crate::export::log_record::{LogView, QueuedLog};
use crate::redact::{OwnIds, REDACTED};

/// The scope of `tracing` events: unnamed and unversioned, its target naming it, as the official
/// bridge's logger is.
static EVENT_SCOPE: std::sync::LazyLock<InstrumentationScope> =
    std::sync::LazyLock::new(|| InstrumentationScope::builder("").build());

impl Sanitizer {
    /// Writes at most `count_limit` attributes as repeated `KeyValue` fields `tag`, values of
    /// sensitive keys replaced; returns how many were dropped.
    fn attributes<'v, V: AnyValueBody + 'v>(
        &self,
        w: &mut Writer,
        tag: u32,
        attributes: impl Iterator<Item = (&'v Key, &'v V)>,
    ) -> u32 {
        let mut attributes = attributes;
        for (key, value) in attributes.by_ref().take(self.count_limit) {
            w.message(tag, |w| {
                w.bytes(key_value::KEY, key.as_str().as_bytes());
                w.message(key_value::VALUE, |w| {
                    if self.is_sensitive(key) {
                        w.bytes_always(any_value::STRING_VALUE, REDACTED.as_bytes());
                    } else {
                        value.write(self, w);
                    }
                });
            });
        }
        u32::try_from(attributes.count()).unwrap_or(u32::MAX)
    }

    /// An `InstrumentationScope` message body, `name` standing in for the scope's own.
    fn scope(&self, w: &mut Writer, scope: &InstrumentationScope, name: &str) {
        w.bytes(scope::NAME, name.as_bytes());
        w.bytes(
            scope::VERSION,
            scope.version().unwrap_or_default().as_bytes(),
        );
        self.attributes(
            w,
            scope::ATTRIBUTES,
            scope.attributes().map(|kv| (&kv.key, &kv.value)),
        );
    }

    /// A `tracestate` field, its text reused while it repeats.
    fn trace_state(&self, w: &mut Writer, tag: u32, state: &TraceState) {
        let mut last = self.trace_state.borrow_mut();
        if last.0 != *state {
            *last = (state.clone(), state.header());
        }
        w.bytes(tag, last.1.as_bytes());
    }

    /// A `Span` message body.
    fn span(&self, w: &mut Writer, span: &SpanData) {
        let cx = &span.span_context;
        self.ids.set(Some(OwnIds::new(
            cx.trace_id().to_bytes(),
            cx.span_id().to_bytes(),
        )));
        w.bytes(span::TRACE_ID, &cx.trace_id().to_bytes());
        w.bytes(span::SPAN_ID, &cx.span_id().to_bytes());
        self.trace_state(w, span::TRACE_STATE, cx.trace_state());
        if span.parent_span_id != SpanId::INVALID {
            w.bytes(span::PARENT_SPAN_ID, &span.parent_span_id.to_bytes());
        }
        w.bytes(span::NAME, self.redactor.mask_pan(&span.name).as_bytes());
        w.uint(
            span::KIND,
            ProtoSpanKind::from(span.span_kind.clone()) as u64,
        );
        w.fixed64(span::START_TIME_UNIX_NANO, nanos(span.start_time));
        w.fixed64(span::END_TIME_UNIX_NANO, nanos(span.end_time));
        let dropped = self.attributes(w, span::ATTRIBUTES, key_values(&span.attributes));
        w.uint(
            span::DROPPED_ATTRIBUTES_COUNT,
            u64::from(span.dropped_attributes_count) + u64::from(dropped),
        );
        for event in &span.events.events {
            w.message(span::EVENTS, |w| self.event(w, event));
        }
        w.uint(span::DROPPED_EVENTS_COUNT, span.events.dropped_count.into());
        for link in &span.links.links {
            w.message(span::LINKS, |w| self.link(w, link));
        }
        w.uint(span::DROPPED_LINKS_COUNT, span.links.dropped_count.into());
        // Always present, as the SDK's own exporter sends it.
        w.message(span::STATUS, |w| self.status(w, &span.status));
        w.fixed32(
            span::FLAGS,
            span_flags(cx.trace_flags().to_u8(), span.parent_span_is_remote),
        );
    }

    /// A `Span.Event` message body.
    fn event(&self, w: &mut Writer, event: &opentelemetry::trace::Event) {
        w.fixed64(event::TIME_UNIX_NANO, nanos(event.timestamp));
        w.bytes(event::NAME, self.text(&event.name).as_bytes());
        let dropped = self.attributes(w, event::ATTRIBUTES, key_values(&event.attributes));
        w.uint(
            event::DROPPED_ATTRIBUTES_COUNT,
            u64::from(event.dropped_attributes_count) + u64::from(dropped),
        );
    }

    /// A `Span.Link` message body.
    fn link(&self, w: &mut Writer, link: &opentelemetry::trace::Link) {
        let cx = &link.span_context;
        w.bytes(link::TRACE_ID, &cx.trace_id().to_bytes());
        w.bytes(link::SPAN_ID, &cx.span_id().to_bytes());
        self.trace_state(w, link::TRACE_STATE, cx.trace_state());
        let dropped = self.attributes(w, link::ATTRIBUTES, key_values(&link.attributes));
        w.uint(
            link::DROPPED_ATTRIBUTES_COUNT,
            u64::from(link.dropped_attributes_count) + u64::from(dropped),
        );
        let flags = span_flags(cx.trace_flags().to_u8(), cx.is_remote());
        w.fixed32(link::FLAGS, flags);
    }

    /// A `Status` message body.
    fn status(&self, w: &mut Writer, outcome: &Status) {
        let code = match outcome {
            Status::Unset => StatusCode::Unset,
            Status::Ok => StatusCode::Ok,
            Status::Error { description } => {
                w.bytes(status::MESSAGE, self.text(description).as_bytes());
                StatusCode::Error
            }
        };
        w.uint(status::CODE, code as u64);
    }

    /// A `LogRecord` message body.
    fn log(&self, w: &mut Writer, record: &impl LogView) {
        let trace = record.trace();
        self.ids
            .set(trace.map(|t| OwnIds::new(t.trace_id.to_bytes(), t.span_id.to_bytes())));
        // The tracing bridge sets only the observed time, which is the event's time.
        let observed = record.observed().or(record.time());
        let time = record.time().or(observed);
        let observed_nanos = observed.map_or(0, nanos);
        let time_nanos = if time == observed {
            observed_nanos
        } else {
            time.map_or(0, nanos)
        };
        w.fixed64(log_record::TIME_UNIX_NANO, time_nanos);
        let severity = record.severity().map_or(0, |s| s as u64);
        w.uint(log_record::SEVERITY_NUMBER, severity);
        let severity_text = record.severity_text().unwrap_or_default();
        w.bytes(log_record::SEVERITY_TEXT, severity_text.as_bytes());
        if let Some(body) = record.body() {
            w.message(log_record::BODY, |w| body.write(self, w));
        }
        let dropped = self.attributes(w, log_record::ATTRIBUTES, record.attributes());
        w.uint(log_record::DROPPED_ATTRIBUTES_COUNT, dropped.into());
        if let Some(trace) = trace {
            w.fixed32(log_record::FLAGS, trace.flags.to_u8().into());
            w.bytes(log_record::TRACE_ID, &trace.trace_id.to_bytes());
            w.bytes(log_record::SPAN_ID, &trace.span_id.to_bytes());
        }
        w.fixed64(log_record::OBSERVED_TIME_UNIX_NANO, observed_nanos);
        let event_name = record.event_name().unwrap_or_default();
        w.bytes(log_record::EVENT_NAME, event_name.as_bytes());
    }
}

/// A value that can be written as the body of an `AnyValue` message.
trait AnyValueBody {
    fn write(&self, sanitizer: &Sanitizer, w: &mut Writer);
}

impl AnyValueBody for Value {
    fn write(&self, s: &Sanitizer, w: &mut Writer) {
        match self {
            Value::Bool(b) => bool_value(w, *b),
            Value::I64(i) => int_value(w, *i),
            Value::F64(f) => double_value(w, *f),
            Value::String(v) => string_value(w, s, v.as_str()),
            Value::Array(array) => w.message(any_value::ARRAY_VALUE, |w| {
                let mut each =
                    |element: &dyn Fn(&mut Writer)| w.message(array_value::VALUES, element);
                match array {
                    Array::Bool(v) => v.iter().for_each(|b| each(&|w| bool_value(w, *b))),
                    Array::I64(v) => v.iter().for_each(|i| each(&|w| int_value(w, *i))),
                    Array::F64(v) => v.iter().for_each(|f| each(&|w| double_value(w, *f))),
                    Array::String(v) => v
                        .iter()
                        .for_each(|t| each(&|w| string_value(w, s, t.as_str()))),
                    // A kind added to the API later: an empty array rather than a wrong value.
                    _ => {}
                }
            }),
            // A kind added to the API later: an empty value rather than a wrong one.
            _ => {}
        }
    }
}

impl AnyValueBody for LogValue {
    fn write(&self, s: &Sanitizer, w: &mut Writer) {
        match self {
            LogValue::Int(i) => int_value(w, *i),
            LogValue::Double(f) => double_value(w, *f),
            LogValue::String(v) => string_value(w, s, v.as_str()),
            LogValue::Boolean(b) => bool_value(w, *b),
            LogValue::Bytes(b) => w.bytes_always(any_value::BYTES_VALUE, b),
            LogValue::ListAny(values) => w.message(any_value::ARRAY_VALUE, |w| {
                for v in values.iter() {
                    w.message(array_value::VALUES, |w| v.write(s, w));
                }
            }),
            LogValue::Map(map) => w.message(any_value::KVLIST_VALUE, |w| {
                s.attributes(w, key_value_list::VALUES, map.iter());
            }),
            _ => {}
        }
    }
}

// The scalar members of the `AnyValue` oneof, written whatever their value.

fn bool_value(w: &mut Writer, b: bool) {
    w.uint_always(any_value::BOOL_VALUE, u64::from(b));
}

fn int_value(w: &mut Writer, i: i64) {
    w.uint_always(any_value::INT_VALUE, i as u64);
}

fn double_value(w: &mut Writer, f: f64) {
    w.fixed64_always(any_value::DOUBLE_VALUE, f.to_bits());
}

fn string_value(w: &mut Writer, s: &Sanitizer, text: &str) {
    w.bytes_always(any_value::STRING_VALUE, s.text(text).as_bytes());
}

fn key_values(attributes: &[opentelemetry::KeyValue]) -> impl Iterator<Item = (&Key, &Value)> {
    attributes.iter().map(|kv| (&kv.key, &kv.value))
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// W3C flags plus OTLP's "is the parent remote" bits.
fn span_flags(trace_flags: u8, remote: bool) -> u32 {
    let mut flags = u32::from(trace_flags) | SpanFlags::ContextHasIsRemoteMask as u32;
    if remote {
        flags |= SpanFlags::ContextIsRemoteMask as u32;
    }
    flags
}

pub(crate) fn proto_resource(resource: &opentelemetry_sdk::Resource) -> Resource {
    Resource {
        attributes: ResourceAttributesWithSchema::from(resource).attributes.0,
        ..Default::default()
    }
}

/// One framed request and the number of items in it.
#[derive(Debug)]
pub(crate) struct Encoded {
    pub(crate) body: Bytes,
    pub(crate) items: u64,
}

/// Encoded items of one scope.
#[derive(Debug, Default)]
struct Group {
    name: String,
    version: String,
    scope: Writer,
    items: Writer,
}

/// Room for the request's and the resource's own headers.
const REQUEST_OVERHEAD: usize = 16;
/// Room for one scope group's header.
const GROUP_OVERHEAD: usize = 8;

/// Encodes the batches of one signal into requests under `max_bytes`, grouped by scope; its
/// buffers are kept from batch to batch (growing them per batch cost page faults and copies).
///
/// Traces and logs share the request layout and its field numbers: the request holds one
/// `Resource{Spans,Logs}`, which holds the resource and one `Scope{Spans,Logs}` per scope, each
/// holding its scope and items.
#[derive(Debug)]
pub(crate) struct Encoder {
    sanitizer: Sanitizer,
    /// The `Resource` message every request repeats, encoded once.
    resource: Vec<u8>,
    max_bytes: usize,
    item: Writer,
    /// `groups[..active]` belong to the request being built; the rest wait to be reused.
    groups: Vec<Group>,
    active: usize,
    request: Writer,
    size: usize,
    items: u64,
}

impl Encoder {
    pub(crate) fn new(
        sanitizer: Sanitizer,
        resource: &opentelemetry_sdk::Resource,
        max_bytes: usize,
    ) -> Self {
        Encoder {
            sanitizer,
            resource: proto_resource(resource).encode_to_vec(),
            max_bytes,
            item: Writer::default(),
            groups: Vec::new(),
            active: 0,
            request: Writer::default(),
            size: 0,
            items: 0,
        }
    }

    /// Encode sampled spans; `emit` gets each request's bytes and its span count. A single span
    /// larger than `max_bytes` goes alone.
    ///
    /// Unsampled spans are skipped: the SDK's batch path hands over spans that were only
    /// recorded (sampler decision RecordOnly), which must not be exported.
    pub(crate) fn spans(&mut self, spans: &[SpanData], emit: &mut dyn FnMut(&[u8], u64)) {
        for span in spans.iter().filter(|s| s.span_context.is_sampled()) {
            self.item.clear();
            self.sanitizer.span(&mut self.item, span);
            let scope = &span.instrumentation_scope;
            self.push(scope, scope.name(), emit);
        }
        self.flush(emit);
        self.item.recycle(self.max_bytes);
    }

    /// Encode log records, as [`spans`](Self::spans) does. The record's target (the `tracing`
    /// target) names its scope, as the official bridge does.
    pub(crate) fn logs(&mut self, logs: &[QueuedLog], emit: &mut dyn FnMut(&[u8], u64)) {
        for queued in logs {
            self.item.clear();
            match queued {
                QueuedLog::Event(event) => {
                    self.sanitizer.log(&mut self.item, event);
                    self.push(&EVENT_SCOPE, event.target, emit);
                }
                QueuedLog::Sdk(sdk) => {
                    let (record, scope) = &**sdk;
                    self.sanitizer.log(&mut self.item, record);
                    let name = LogView::target(record).unwrap_or_else(|| scope.name());
                    self.push(scope, name, emit);
                }
            }
        }
        self.flush(emit);
        self.item.recycle(self.max_bytes);
    }

    /// Adds the item in `self.item` to its scope's group.
    fn push(&mut self, scope: &InstrumentationScope, name: &str, emit: &mut dyn FnMut(&[u8], u64)) {
        let size = field_len(self.item.buf.len());
        if self.items > 0 && self.size + size > self.max_bytes {
            self.flush(emit);
        }
        if self.items == 0 {
            self.size = REQUEST_OVERHEAD + field_len(self.resource.len());
        }
        let version = scope.version().unwrap_or_default();
        let index = match self.groups[..self.active]
            .iter()
            .position(|g| g.name == name && g.version == version)
        {
            Some(i) => i,
            None => {
                if self.active == self.groups.len() {
                    self.groups.push(Group::default());
                }
                let group = &mut self.groups[self.active];
                group.name.clear();
                group.name.push_str(name);
                group.version.clear();
                group.version.push_str(version);
                group.scope.clear();
                group.items.clear();
                self.sanitizer.scope(&mut group.scope, scope, name);
                self.size += GROUP_OVERHEAD + field_len(group.scope.buf.len());
                self.active += 1;
                self.active - 1
            }
        };
        self.groups[index]
            .items
            .bytes_always(scope_items::ITEMS, &self.item.buf);
        self.size += size;
        self.items += 1;
    }

    fn flush(&mut self, emit: &mut dyn FnMut(&[u8], u64)) {
        if self.items == 0 {
            return;
        }
        let groups = &mut self.groups[..self.active];
        let group_len = |g: &Group| field_len(g.scope.buf.len()) + g.items.buf.len();
        let resource_len = field_len(self.resource.len())
            + groups
                .iter()
                .map(|g| field_len(group_len(g)))
                .sum::<usize>();
        let w = &mut self.request;
        w.clear();
        w.header(export_request::RESOURCE_ITEMS, resource_len);
        w.bytes_always(resource_items::RESOURCE, &self.resource);
        for group in groups.iter_mut() {
            w.header(resource_items::SCOPE_ITEMS, group_len(group));
            w.bytes_always(scope_items::SCOPE, &group.scope.buf);
            w.buf.extend_from_slice(&group.items.buf);
            group.items.recycle(self.max_bytes);
        }
        emit(&w.buf, self.items);
        w.recycle(self.max_bytes);
        self.active = 0;
        self.size = 0;
        self.items = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::Redactor;
    use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
    use opentelemetry::trace::{
        Event, Link, SpanContext, SpanKind, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry::KeyValue;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, InstrumentationScope as ProtoScope};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord, SdkLoggerProvider};
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    fn span(i: u64, sampled: bool, attrs: Vec<KeyValue>) -> SpanData {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        SpanData {
            parent_span_id: SpanId::INVALID,
            span_kind: SpanKind::Server,
            name: format!("GET /orders/{{id}} {i}").into(),
            attributes: attrs,
            ..crate::fixtures::span(u128::from(i) + 1, i + 1, 0, flags)
        }
    }

    /// Everything the SDK can put in a span, none of it touched by limits or redaction.
    fn rich_span(i: u64) -> SpanData {
        let remote = SpanContext::new(
            TraceId::from(0xabcdef_u128),
            SpanId::from(7),
            TraceFlags::SAMPLED,
            true,
            TraceState::from_key_value([("vendor", "v1"), ("other", "x")]).unwrap(),
        );
        let mut data = span(
            i,
            true,
            vec![
                KeyValue::new("s", "text"),
                KeyValue::new("empty", ""),
                KeyValue::new("b", false),
                KeyValue::new("i", -5_i64),
                KeyValue::new("zero", 0_i64),
                KeyValue::new("f", 2.5),
                KeyValue::new("bs", Value::Array(Array::Bool(vec![true, false]))),
                KeyValue::new("is", Value::Array(Array::I64(vec![0, -1, i64::MAX]))),
                KeyValue::new("fs", Value::Array(Array::F64(vec![0.0, -1.5]))),
                KeyValue::new(
                    "ss",
                    Value::Array(Array::String(vec!["a".into(), "".into()])),
                ),
                KeyValue::new("long", "y".repeat(300)),
            ],
        );
        data.span_context = SpanContext::new(
            TraceId::from(0xabcdef_u128),
            SpanId::from(i + 100),
            TraceFlags::SAMPLED,
            false,
            remote.trace_state().clone(),
        );
        data.parent_span_id = SpanId::from(7);
        data.parent_span_is_remote = true;
        data.span_kind = SpanKind::Client;
        data.dropped_attributes_count = 3;
        data.events.events = vec![
            Event::new("retry", SystemTime::now(), vec![KeyValue::new("n", 2)], 1),
            Event::with_name("bare"),
        ];
        data.events.dropped_count = 4;
        data.links.links = vec![Link::new(remote, vec![KeyValue::new("why", "fan-in")], 2)];
        data.links.dropped_count = 5;
        data.status = Status::error("upstream timed out");
        data.instrumentation_scope = InstrumentationScope::builder("payments")
            .with_version("1.2.3")
            .with_attributes([KeyValue::new("lib", "x")])
            .build();
        data
    }

    fn lenient() -> Sanitizer {
        Sanitizer::new(usize::MAX, usize::MAX, Redactor::default())
    }

    fn sanitizer() -> Sanitizer {
        Sanitizer::new(16, 2, Redactor::default())
    }

    fn resource() -> opentelemetry_sdk::Resource {
        opentelemetry_sdk::Resource::builder_empty()
            .with_attributes([KeyValue::new("service.name", "checkout")])
            .build()
    }

    fn empty() -> opentelemetry_sdk::Resource {
        opentelemetry_sdk::Resource::builder_empty().build()
    }

    fn encode_spans(
        spans: Vec<SpanData>,
        resource: &opentelemetry_sdk::Resource,
        sanitizer: &Sanitizer,
        max_bytes: usize,
    ) -> Vec<Encoded> {
        let mut out = Vec::new();
        Encoder::new(sanitizer.clone(), resource, max_bytes).spans(&spans, &mut |body, items| {
            out.push(Encoded {
                body: Bytes::copy_from_slice(body),
                items,
            })
        });
        out
    }

    fn encode_logs(
        logs: &[(SdkLogRecord, InstrumentationScope)],
        resource: &opentelemetry_sdk::Resource,
        sanitizer: &Sanitizer,
        max_bytes: usize,
    ) -> Vec<Encoded> {
        let queued: Vec<_> = logs
            .iter()
            .map(|record| QueuedLog::Sdk(Box::new(record.clone())))
            .collect();
        let mut out = Vec::new();
        Encoder::new(sanitizer.clone(), resource, max_bytes).logs(&queued, &mut |body, items| {
            out.push(Encoded {
                body: Bytes::copy_from_slice(body),
                items,
            })
        });
        out
    }

    fn requests(encoded: &[Encoded]) -> Vec<ExportTraceServiceRequest> {
        encoded
            .iter()
            .map(|e| ExportTraceServiceRequest::decode(e.body.clone()).unwrap())
            .collect()
    }

    fn decode(encoded: &[Encoded]) -> Vec<Span> {
        requests(encoded)
            .into_iter()
            .flat_map(|r| r.resource_spans)
            .flat_map(|rs| rs.scope_spans)
            .flat_map(|ss| ss.spans)
            .collect()
    }

    /// What opentelemetry-proto's own conversion makes of the same spans, one scope each.
    fn reference(spans: &[SpanData]) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(proto_resource(&resource())),
                scope_spans: spans
                    .iter()
                    .map(|s| ScopeSpans {
                        scope: Some(ProtoScope::from((&s.instrumentation_scope, None))),
                        spans: vec![Span::from(s.clone())],
                        schema_url: String::new(),
                    })
                    .collect(),
                schema_url: String::new(),
            }],
        }
    }

    #[test]
    fn each_span_carries_its_own_trace_state_when_they_repeat_and_change() {
        let ot = TraceState::from_key_value([("ot", "th:8")]).unwrap();
        let vendor = TraceState::from_key_value([("vendor", "v1"), ("other", "x")]).unwrap();
        let states = [&ot, &ot, &vendor, &TraceState::NONE, &ot];
        let spans: Vec<_> = states
            .iter()
            .zip(1..)
            .map(|(state, i)| {
                let mut data = span(i, true, Vec::new());
                let cx = &data.span_context;
                data.span_context = SpanContext::new(
                    cx.trace_id(),
                    cx.span_id(),
                    cx.trace_flags(),
                    false,
                    (*state).clone(),
                );
                data
            })
            .collect();
        let out = encode_spans(spans, &resource(), &lenient(), 1 << 20);
        let written: Vec<_> = decode(&out).into_iter().map(|s| s.trace_state).collect();
        assert_eq!(
            written,
            ["ot=th:8", "ot=th:8", "vendor=v1,other=x", "", "ot=th:8"]
        );
    }

    #[test]
    fn spans_decode_to_what_the_reference_conversion_builds() {
        let spans = vec![rich_span(1)];
        let out = encode_spans(spans.clone(), &resource(), &lenient(), 1 << 20);
        assert_eq!(requests(&out), vec![reference(&spans)]);
    }

    proptest! {
        #[test]
        fn attribute_values_decode_to_the_reference(values in proptest::collection::vec(
            prop_oneof![
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                (-1e12..1e12f64).prop_map(Value::from),
                "[a-zé ]{0,200}".prop_map(Value::from),
                proptest::collection::vec(any::<i64>(), 0..5).prop_map(|v| Value::Array(Array::I64(v))),
                proptest::collection::vec("[a-z]{0,5}", 0..5)
                    .prop_map(|v| Value::Array(Array::String(v.into_iter().map(Into::into).collect()))),
            ],
            0..40,
        )) {
            let attrs = values
                .into_iter()
                .enumerate()
                .map(|(i, v)| KeyValue::new(format!("k{i}"), v))
                .collect();
            let spans = vec![span(1, true, attrs)];
            let out = encode_spans(spans.clone(), &resource(), &lenient(), 1 << 20);
            prop_assert_eq!(requests(&out), vec![reference(&spans)]);
        }
    }

    #[derive(Debug, Default, Clone)]
    struct Captured(Arc<Mutex<Vec<(SdkLogRecord, InstrumentationScope)>>>);

    impl LogProcessor for Captured {
        fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
            self.0.lock().unwrap().push((record.clone(), scope.clone()));
        }
        fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
    }

    /// The records (and scopes) an SDK logger hands its processors.
    fn log_records(
        emit: impl FnOnce(&opentelemetry_sdk::logs::SdkLogger),
    ) -> Vec<(SdkLogRecord, InstrumentationScope)> {
        let captured = Captured::default();
        let provider = SdkLoggerProvider::builder()
            .with_log_processor(captured.clone())
            .build();
        emit(&provider.logger("paytrace"));
        let records = captured.0.lock().unwrap().clone();
        records
    }

    #[test]
    fn logs_decode_to_what_the_reference_conversion_builds() {
        let logs = log_records(|logger| {
            let mut record = logger.create_log_record();
            record.set_target("checkout::pay");
            record.set_timestamp(SystemTime::now());
            record.set_observed_timestamp(SystemTime::now());
            record.set_severity_number(Severity::Warn);
            record.set_severity_text("WARN");
            record.set_body("card declined".into());
            record.set_event_name("payment.declined");
            record.set_trace_context(
                TraceId::from(9_u128),
                SpanId::from(3),
                Some(TraceFlags::SAMPLED),
            );
            record.add_attribute("n", 1_i64);
            record.add_attribute("ok", false);
            record.add_attribute("ratio", 0.5);
            record.add_attribute("raw", LogValue::Bytes(Box::new(vec![1, 2, 3])));
            record.add_attribute(
                "list",
                LogValue::ListAny(Box::new(vec![LogValue::Int(1), "a".into()])),
            );
            record.add_attribute(
                "map",
                LogValue::Map(Box::new(HashMap::from([(
                    "inner".into(),
                    LogValue::Int(2),
                )]))),
            );
            logger.emit(record);
            let mut bare = logger.create_log_record();
            bare.set_observed_timestamp(SystemTime::now());
            logger.emit(bare);
        });

        let out = encode_logs(&logs, &resource(), &lenient(), 1 << 20);
        let decoded: Vec<_> = out
            .iter()
            .map(|e| ExportLogsServiceRequest::decode(e.body.clone()).unwrap())
            .collect();
        let scope = |name: &str| ProtoScope {
            name: name.into(),
            ..Default::default()
        };
        let expected = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(proto_resource(&resource())),
                scope_logs: vec![
                    ScopeLogs {
                        scope: Some(scope("checkout::pay")),
                        log_records: vec![LogRecord::from(&logs[0].0)],
                        schema_url: String::new(),
                    },
                    ScopeLogs {
                        scope: Some(scope("paytrace")),
                        log_records: vec![{
                            // Unlike the reference, the event time falls back to the observed
                            // time: the tracing bridge sets only that one.
                            let mut bare = LogRecord::from(&logs[1].0);
                            assert_eq!(bare.time_unix_nano, 0);
                            bare.time_unix_nano = bare.observed_time_unix_nano;
                            bare
                        }],
                        schema_url: String::new(),
                    },
                ],
                schema_url: String::new(),
            }],
        };
        assert_eq!(decoded, vec![expected]);
    }

    #[test]
    fn log_values_are_sanitized_to_any_depth() {
        let logs = log_records(|logger| {
            let mut record = logger.create_log_record();
            record.set_body("paid with 4111 1111 1111 1111, password=hunter2".into());
            record.add_attribute(
                "payment",
                LogValue::Map(Box::new(HashMap::from([(
                    "cvv".into(),
                    LogValue::String("123".into()),
                )]))),
            );
            logger.emit(record);
        });
        let out = encode_logs(&logs, &empty(), &lenient(), 1 << 20);
        let request = ExportLogsServiceRequest::decode(out[0].body.clone()).unwrap();
        let log = &request.resource_logs[0].scope_logs[0].log_records[0];
        let text = |v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>| match v
            .as_ref()
            .and_then(|v| v.value.as_ref())
        {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            other => panic!("{other:?}"),
        };
        assert!(
            !text(&log.body).contains("4111 1111 1111 1111"),
            "{:?}",
            log.body
        );
        let Some(any_value::Value::KvlistValue(map)) = log.attributes[0]
            .value
            .as_ref()
            .and_then(|v| v.value.as_ref())
        else {
            panic!("{:?}", log.attributes)
        };
        assert_eq!(text(&map.values[0].value), REDACTED);
    }

    #[test]
    fn a_reused_encoder_writes_what_a_fresh_one_does() {
        let first: Vec<_> = (0..300).map(rich_span).collect();
        let second = vec![span(1, true, vec![KeyValue::new("k", "v")])];
        let mut encoder = Encoder::new(lenient(), &resource(), 16 * 1024);
        let mut reused = Vec::new();
        for batch in [&first, &second] {
            reused.clear();
            encoder.spans(batch, &mut |body, _| reused.push(body.to_vec()));
        }
        let fresh: Vec<_> = encode_spans(second, &resource(), &lenient(), 16 * 1024)
            .into_iter()
            .map(|e| e.body.to_vec())
            .collect();
        assert_eq!(reused, fresh);
    }

    #[test]
    fn unsampled_spans_are_not_exported() {
        let out = encode_spans(
            vec![span(1, true, vec![]), span(2, false, vec![])],
            &empty(),
            &sanitizer(),
            1 << 20,
        );
        assert_eq!(out.iter().map(|e| e.items).sum::<u64>(), 1);
        assert_eq!(decode(&out).len(), 1);
    }

    #[test]
    fn a_span_own_ids_are_never_masked_other_values_are() {
        // A span id whose hex digits hold a Luhn-valid run of 16, and the request id made of it.
        let mut data = span(1, true, vec![]);
        let span_id = SpanId::from(0x4111_1111_1111_1111);
        let trace_id = data.span_context.trace_id();
        data.span_context = SpanContext::new(
            trace_id,
            span_id,
            TraceFlags::SAMPLED,
            false,
            Default::default(),
        );
        let request_id = format!("{trace_id}-{span_id}");
        data.attributes = vec![
            KeyValue::new("paytrace.request_id", request_id.clone()),
            KeyValue::new("own", span_id.to_string()),
            KeyValue::new("other", "5500005555555559"),
        ];
        let exported = &decode(&encode_spans(vec![data], &empty(), &lenient(), 1 << 20))[0];
        let value = |key: &str| {
            let kv = exported.attributes.iter().find(|kv| kv.key == key).unwrap();
            match kv.value.as_ref().unwrap().value.as_ref().unwrap() {
                any_value::Value::StringValue(s) => s.clone(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(value("paytrace.request_id"), request_id);
        assert_eq!(value("own"), "4111111111111111");
        assert_eq!(value("other"), "550000******5559");
    }

    #[test]
    fn limits_and_redaction_apply() {
        let attrs = vec![
            KeyValue::new("note", "é".repeat(100)),
            KeyValue::new("card_number", "4111111111111111"),
            KeyValue::new("third", "dropped"),
        ];
        let mut data = span(1, true, attrs);
        data.name = "charge 4111111111111111".into();
        data.dropped_attributes_count = 1;
        let spans = decode(&encode_spans(vec![data], &empty(), &sanitizer(), 1 << 20));
        let attrs = &spans[0].attributes;
        assert_eq!(attrs.len(), 2);
        assert_eq!(spans[0].dropped_attributes_count, 2);
        let value = |i: usize| match attrs[i].value.as_ref().unwrap().value.as_ref().unwrap() {
            any_value::Value::StringValue(s) => s.clone(),
            other => panic!("{other:?}"),
        };
        // Cut on a char boundary: 16 bytes of two-byte chars.
        assert_eq!(value(0), "é".repeat(8));
        assert_eq!(value(1), REDACTED);
        assert!(
            !spans[0].name.contains("4111111111111111"),
            "{}",
            spans[0].name
        );
    }

    #[test]
    fn large_batches_are_split_under_the_cap_and_keep_their_scopes() {
        let spans: Vec<_> = (0..500)
            .map(|i| {
                let mut s = span(i, true, vec![KeyValue::new("k", "v".repeat(10))]);
                if i % 2 == 0 {
                    s.instrumentation_scope = InstrumentationScope::builder("other").build();
                }
                s
            })
            .collect();
        let cap = 4096;
        let out = encode_spans(
            spans,
            &resource(),
            &Sanitizer::new(2048, 2, Redactor::default()),
            cap,
        );
        assert!(out.len() > 1);
        assert!(
            out.iter().all(|e| e.body.len() <= cap),
            "{:?}",
            out.iter().map(|e| e.body.len()).collect::<Vec<_>>()
        );
        assert_eq!(out.iter().map(|e| e.items).sum::<u64>(), 500);
        for request in requests(&out) {
            let resource_spans = &request.resource_spans[0];
            assert_eq!(resource_spans.resource, Some(proto_resource(&resource())));
            let mut scopes = Vec::new();
            for group in &resource_spans.scope_spans {
                let scope = group.scope.as_ref().unwrap().name.clone();
                // span(i) is named "... {i}"; even ones were given the scope "other".
                for span in &group.spans {
                    let i: u64 = span.name.rsplit(' ').next().unwrap().parse().unwrap();
                    assert_eq!(
                        scope == "other",
                        i.is_multiple_of(2),
                        "{} in {scope}",
                        span.name
                    );
                }
                scopes.push(scope);
            }
            scopes.sort();
            assert_eq!(scopes, ["other", "paytrace"]);
        }
        assert_eq!(decode(&out).len(), 500);
    }
}
