//! What a span or a log record weighs in the export queue: its estimated encoded size, and
//! whether it is a priority item (an error or slow span, a WARN or ERROR record).
//!
//! Computed on the request path in one pass over the attributes, without formatting anything:
//! string lengths as they are, a fixed size for every other value, a few bytes of protobuf
//! framing per field.

use opentelemetry::logs::{AnyValue, Severity};
use opentelemetry::trace::Status;
use opentelemetry::{Array, Value};
use opentelemetry_sdk::trace::SpanData;

use super::log_record::{LogView, QueuedLog};
use super::queue::{Weigh, Weight};
use crate::keys::SLOW;

/// Ids, times, kind, flags and status of a span, with their framing.
const SPAN_FIXED: usize = 80;
/// Times, severity, flags and ids of a log record, with their framing.
const RECORD_FIXED: usize = 64;
/// Key and value framing of one attribute.
const ATTRIBUTE_FRAMING: usize = 8;
/// A number or a boolean, encoded.
const SCALAR: usize = 9;
/// An event or a link beyond its attributes.
const EVENT: usize = 32;

impl Weigh for SpanData {
    #[inline]
    fn weigh(&self) -> Weight {
        let mut bytes = SPAN_FIXED + self.name.len();
        let mut slow = false;
        for kv in &self.attributes {
            bytes += ATTRIBUTE_FRAMING + kv.key.as_str().len() + value_size(&kv.value);
            slow |= matches!(kv.value, Value::Bool(true)) && kv.key == SLOW;
        }
        for event in &self.events.events {
            bytes += EVENT + event.name.len() + event.attributes.len() * (ATTRIBUTE_FRAMING + 24);
        }
        bytes += self.links.links.len() * (EVENT + 32);
        Weight {
            bytes,
            priority: slow || matches!(self.status, Status::Error { .. }),
        }
    }
}

impl Weigh for QueuedLog {
    #[inline]
    fn weigh(&self) -> Weight {
        match self {
            QueuedLog::Event(event) => weigh_log(event),
            QueuedLog::Sdk(sdk) => weigh_log(&sdk.0),
        }
    }
}

#[inline]
fn weigh_log(record: &impl LogView) -> Weight {
    let mut bytes = RECORD_FIXED
        + record.severity_text().map_or(0, str::len)
        + record.event_name().map_or(0, str::len)
        + record.body().map_or(0, any_value_size);
    for (key, value) in record.attributes() {
        bytes += ATTRIBUTE_FRAMING + key.as_str().len() + any_value_size(value);
    }
    Weight {
        bytes,
        priority: record.severity().is_some_and(|s| s >= Severity::Warn),
    }
}

fn value_size(value: &Value) -> usize {
    match value {
        Value::String(s) => s.as_str().len(),
        Value::Array(Array::String(v)) => v.iter().map(|s| s.as_str().len() + 2).sum(),
        Value::Array(Array::Bool(v)) => v.len() * 2,
        Value::Array(Array::I64(v)) => v.len() * SCALAR,
        Value::Array(Array::F64(v)) => v.len() * SCALAR,
        _ => SCALAR,
    }
}

fn any_value_size(value: &AnyValue) -> usize {
    match value {
        AnyValue::String(s) => s.as_str().len(),
        AnyValue::Bytes(b) => b.len(),
        AnyValue::ListAny(list) => list.iter().map(|v| any_value_size(v) + 2).sum(),
        AnyValue::Map(map) => map
            .iter()
            .map(|(k, v)| k.as_str().len() + any_value_size(v) + ATTRIBUTE_FRAMING)
            .sum(),
        _ => SCALAR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::KeyValue;

    fn span(attributes: Vec<KeyValue>, status: Status) -> SpanData {
        SpanData {
            span_kind: opentelemetry::trace::SpanKind::Server,
            name: "GET /orders/{id}".into(),
            attributes,
            status,
            ..crate::fixtures::span(0, 0, 0, Default::default())
        }
    }

    #[test]
    fn errors_and_slow_spans_are_priority_and_size_follows_the_attributes() {
        let plain = span(
            vec![KeyValue::new("http.route", "/orders/{id}")],
            Status::Unset,
        );
        let w = plain.weigh();
        assert!(!w.priority);
        assert_eq!(w.bytes, SPAN_FIXED + 16 + ATTRIBUTE_FRAMING + 10 + 12);
        assert!(span(vec![], Status::error("boom")).weigh().priority);
        assert!(
            span(vec![KeyValue::new(SLOW, true)], Status::Unset)
                .weigh()
                .priority
        );
        assert!(
            !span(vec![KeyValue::new(SLOW, false)], Status::Unset)
                .weigh()
                .priority
        );
        let long = span(
            vec![KeyValue::new("url.path", "x".repeat(2000))],
            Status::Unset,
        );
        assert!(long.weigh().bytes > 2000);
    }
}
