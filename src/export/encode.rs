//! SDK data → OTLP protobuf bytes, applying on the way what the SDK does not: the sampled-only
//! filter, attribute limits, redaction, and the request size cap.
//!
//! All of this runs on the export thread, never on the request path.

use std::borrow::Cow;
use std::collections::HashMap;

use bytes::Bytes;
use opentelemetry::InstrumentationScope;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::logs::SdkLogRecord;
use opentelemetry_sdk::trace::SpanData;
use prost::Message;

use crate::redact::Redactor;

/// What every exported value goes through.
#[derive(Debug, Clone)]
pub(crate) struct Sanitizer {
    pub(crate) value_limit: usize,
    pub(crate) count_limit: usize,
    pub(crate) redactor: Redactor,
}

thread_local! {
    /// Sensitive-name decisions per attribute key. Every Telemetry exports on its own thread, so
    /// one thread sees one redaction policy; keys repeat from span to span (semantic-convention
    /// names), so the word splitting runs once per key instead of once per attribute.
    static SENSITIVE_KEYS: std::cell::RefCell<HashMap<String, bool>> = std::cell::RefCell::new(HashMap::new());
}

impl Sanitizer {
    fn is_sensitive(&self, key: &str) -> bool {
        if let Some(known) = SENSITIVE_KEYS.with(|c| c.borrow().get(key).copied()) {
            return known;
        }
        let sensitive = self.redactor.is_sensitive_name(key);
        SENSITIVE_KEYS.with(|c| {
            let mut cache = c.borrow_mut();
            // Bounded: attribute keys chosen by clients must not grow it without limit.
            if cache.len() >= 4096 {
                cache.clear();
            }
            cache.insert(key.to_owned(), sensitive);
        });
        sensitive
    }

    fn attributes(&self, attributes: &mut Vec<KeyValue>) -> u32 {
        let dropped = attributes.len().saturating_sub(self.count_limit);
        attributes.truncate(self.count_limit);
        for kv in attributes.iter_mut() {
            if self.is_sensitive(&kv.key) {
                kv.value = Some(string_value(crate::redact::REDACTED.to_owned()));
            } else if let Some(v) = kv.value.as_mut() {
                self.any_value(v);
            }
        }
        dropped as u32
    }

    fn any_value(&self, value: &mut AnyValue) {
        match value.value.as_mut() {
            Some(any_value::Value::StringValue(s)) => self.string(s),
            Some(any_value::Value::ArrayValue(a)) => {
                a.values.iter_mut().for_each(|v| self.any_value(v))
            }
            Some(any_value::Value::KvlistValue(kv)) => {
                self.attributes(&mut kv.values);
            }
            _ => {}
        }
    }

    pub(crate) fn string(&self, s: &mut String) {
        if let Cow::Owned(masked) = self.redactor.mask_pan(s) {
            *s = masked;
        }
        truncate(s, self.value_limit);
    }
}

fn string_value(s: String) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s)),
    }
}

/// Truncate to at most `limit` bytes on a char boundary.
fn truncate(s: &mut String, limit: usize) {
    if s.len() > limit {
        let mut end = limit;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

pub(crate) fn proto_resource(resource: &opentelemetry_sdk::Resource) -> Resource {
    Resource {
        attributes: ResourceAttributesWithSchema::from(resource).attributes.0,
        ..Default::default()
    }
}

/// One encoded request and the number of items in it.
#[derive(Debug)]
pub(crate) struct Encoded {
    pub(crate) body: Bytes,
    pub(crate) items: u64,
}

/// Splits items of one resource into requests under `max_bytes`, grouped by scope.
struct Chunker<T> {
    max_bytes: usize,
    scopes: HashMap<(String, String), usize>,
    current: Vec<(
        opentelemetry_proto::tonic::common::v1::InstrumentationScope,
        Vec<T>,
    )>,
    size: usize,
    items: u64,
}

impl<T: Message> Chunker<T> {
    fn new(max_bytes: usize) -> Self {
        Chunker {
            max_bytes,
            scopes: HashMap::new(),
            current: Vec::new(),
            size: 0,
            items: 0,
        }
    }

    fn push(
        &mut self,
        scope: &InstrumentationScope,
        scope_name: Option<&str>,
        item: T,
        out: &mut Vec<Encoded>,
        finish: &dyn Fn(
            Vec<(
                opentelemetry_proto::tonic::common::v1::InstrumentationScope,
                Vec<T>,
            )>,
        ) -> Bytes,
    ) {
        // Field tag + length prefix per item: a few bytes over encoded_len().
        let size = item.encoded_len() + 8;
        if self.items > 0 && self.size + size > self.max_bytes {
            self.flush(out, finish);
        }
        let name = scope_name.unwrap_or_else(|| scope.name());
        let key = (
            name.to_owned(),
            scope.version().unwrap_or_default().to_owned(),
        );
        let index = match self.scopes.get(&key) {
            Some(&i) => i,
            None => {
                let proto_scope =
                    opentelemetry_proto::tonic::common::v1::InstrumentationScope::from((
                        scope,
                        scope_name.map(|n| Cow::Owned(n.to_owned())),
                    ));
                self.size += proto_scope.encoded_len() + 16;
                self.current.push((proto_scope, Vec::new()));
                self.scopes.insert(key, self.current.len() - 1);
                self.current.len() - 1
            }
        };
        self.current[index].1.push(item);
        self.size += size;
        self.items += 1;
    }

    fn flush(
        &mut self,
        out: &mut Vec<Encoded>,
        finish: &dyn Fn(
            Vec<(
                opentelemetry_proto::tonic::common::v1::InstrumentationScope,
                Vec<T>,
            )>,
        ) -> Bytes,
    ) {
        if self.items == 0 {
            return;
        }
        let groups = std::mem::take(&mut self.current);
        out.push(Encoded {
            body: finish(groups),
            items: self.items,
        });
        self.scopes.clear();
        self.size = 0;
        self.items = 0;
    }
}

/// Encode sampled spans into requests of at most `max_bytes`.
///
/// Unsampled spans are skipped: the SDK's batch path hands over spans that were only recorded
/// (sampler decision RecordOnly), which must not be exported.
pub(crate) fn encode_spans(
    spans: Vec<SpanData>,
    resource: &Resource,
    sanitizer: &Sanitizer,
    max_bytes: usize,
) -> Vec<Encoded> {
    let mut out = Vec::new();
    let mut chunker = Chunker::<Span>::new(max_bytes);
    let finish = |groups: Vec<(_, Vec<Span>)>| -> Bytes {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource.clone()),
                scope_spans: groups
                    .into_iter()
                    .map(|(scope, spans)| ScopeSpans {
                        scope: Some(scope),
                        spans,
                        schema_url: String::new(),
                    })
                    .collect(),
                schema_url: String::new(),
            }],
        };
        Bytes::from(request.encode_to_vec())
    };
    for data in spans {
        if !data.span_context.is_sampled() {
            continue;
        }
        let scope = data.instrumentation_scope.clone();
        let mut span = Span::from(data);
        if let Cow::Owned(name) = sanitizer.redactor.mask_pan(&span.name) {
            span.name = name;
        }
        span.dropped_attributes_count += sanitizer.attributes(&mut span.attributes);
        for event in &mut span.events {
            sanitizer.string(&mut event.name);
            event.dropped_attributes_count += sanitizer.attributes(&mut event.attributes);
        }
        for link in &mut span.links {
            sanitizer.attributes(&mut link.attributes);
        }
        if let Some(status) = span.status.as_mut() {
            sanitizer.string(&mut status.message);
        }
        chunker.push(&scope, None, span, &mut out, &finish);
    }
    chunker.flush(&mut out, &finish);
    out
}

/// Encode log records into requests of at most `max_bytes`. The record's target (the `tracing`
/// target) names its scope, as the official bridge does.
pub(crate) fn encode_logs(
    logs: &[(SdkLogRecord, InstrumentationScope)],
    resource: &Resource,
    sanitizer: &Sanitizer,
    max_bytes: usize,
) -> Vec<Encoded> {
    let mut out = Vec::new();
    let mut chunker = Chunker::<LogRecord>::new(max_bytes);
    let finish = |groups: Vec<(_, Vec<LogRecord>)>| -> Bytes {
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(resource.clone()),
                scope_logs: groups
                    .into_iter()
                    .map(|(scope, log_records)| ScopeLogs {
                        scope: Some(scope),
                        log_records,
                        schema_url: String::new(),
                    })
                    .collect(),
                schema_url: String::new(),
            }],
        };
        Bytes::from(request.encode_to_vec())
    };
    for (record, scope) in logs {
        let mut proto = LogRecord::from(record);
        if let Some(body) = proto.body.as_mut() {
            sanitizer.any_value(body);
        }
        proto.dropped_attributes_count += sanitizer.attributes(&mut proto.attributes);
        let target = record.target().map(|t| t.as_ref());
        chunker.push(scope, target, proto, &mut out, &finish);
    }
    chunker.flush(&mut out, &finish);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{
        SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::time::SystemTime;

    fn span(i: u64, sampled: bool, attrs: Vec<opentelemetry::KeyValue>) -> SpanData {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(u128::from(i) + 1),
                SpanId::from(i + 1),
                flags,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Server,
            name: format!("GET /orders/{{id}} {i}").into(),
            start_time: SystemTime::now(),
            end_time: SystemTime::now(),
            attributes: attrs,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("paytrace").build(),
        }
    }

    fn sanitizer() -> Sanitizer {
        Sanitizer {
            value_limit: 16,
            count_limit: 2,
            redactor: Redactor::default(),
        }
    }

    fn decode(encoded: &[Encoded]) -> Vec<Span> {
        encoded
            .iter()
            .flat_map(|e| {
                ExportTraceServiceRequest::decode(e.body.clone())
                    .unwrap()
                    .resource_spans
            })
            .flat_map(|rs| rs.scope_spans)
            .flat_map(|ss| ss.spans)
            .collect()
    }

    #[test]
    fn unsampled_spans_are_not_exported() {
        let out = encode_spans(
            vec![span(1, true, vec![]), span(2, false, vec![])],
            &Resource::default(),
            &sanitizer(),
            1 << 20,
        );
        assert_eq!(out.iter().map(|e| e.items).sum::<u64>(), 1);
        assert_eq!(decode(&out).len(), 1);
    }

    #[test]
    fn limits_and_redaction_apply() {
        let attrs = vec![
            opentelemetry::KeyValue::new("note", "x".repeat(100)),
            opentelemetry::KeyValue::new("card_number", "4111111111111111"),
            opentelemetry::KeyValue::new("third", "dropped"),
        ];
        let spans = decode(&encode_spans(
            vec![span(1, true, attrs)],
            &Resource::default(),
            &sanitizer(),
            1 << 20,
        ));
        let attrs = &spans[0].attributes;
        assert_eq!(attrs.len(), 2);
        assert_eq!(spans[0].dropped_attributes_count, 1);
        let value = |i: usize| match attrs[i].value.as_ref().unwrap().value.as_ref().unwrap() {
            any_value::Value::StringValue(s) => s.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(value(0).len(), 16);
        assert_eq!(value(1), "REDACTED");
    }

    #[test]
    fn large_batches_are_split_under_the_cap() {
        let spans: Vec<_> = (0..500)
            .map(|i| {
                span(
                    i,
                    true,
                    vec![opentelemetry::KeyValue::new("k", "v".repeat(10))],
                )
            })
            .collect();
        let cap = 4096;
        let out = encode_spans(
            spans,
            &Resource::default(),
            &Sanitizer {
                value_limit: 2048,
                ..sanitizer()
            },
            cap,
        );
        assert!(out.len() > 1);
        assert!(
            out.iter().all(|e| e.body.len() <= cap),
            "{:?}",
            out.iter().map(|e| e.body.len()).collect::<Vec<_>>()
        );
        assert_eq!(out.iter().map(|e| e.items).sum::<u64>(), 500);
        assert_eq!(decode(&out).len(), 500);
    }
}
