//! `OTEL_*_EXPORTER=console`: spans and log records as readable lines on stdout, for
//! development. Values go through the redactor as they would on the way to a collector, and
//! lines go to a lossy writer: a slow terminal drops lines, it never blocks a request.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::logs::AnyValue;
use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

use super::processor::is_internal_target;
use crate::redact::Redactor;

/// Where console lines go: one call per line, newline included.
pub(crate) type LineSink = Arc<dyn Fn(&str) + Send + Sync>;

/// The console processor, for spans and for log records: one line each, sampled spans when
/// they end.
#[derive(Clone)]
pub(crate) struct Console {
    sink: LineSink,
    redactor: Redactor,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console").finish_non_exhaustive()
    }
}

impl Console {
    pub(crate) fn new(sink: LineSink, redactor: Redactor) -> Self {
        Console { sink, redactor }
    }

    /// Where its lines go, for other console output (the metrics exposition).
    pub(crate) fn sink(&self) -> &LineSink {
        &self.sink
    }
}

/// `12:34:56.789` (UTC) of a time.
fn clock(t: SystemTime) -> String {
    let ms = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}Z",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// A span as one line: `span <name> <kind> <status> <duration> trace=… span=… parent=… k=v …`.
pub(crate) fn span_line(span: &SpanData, redactor: &Redactor) -> String {
    let duration = span
        .end_time
        .duration_since(span.start_time)
        .unwrap_or(Duration::ZERO);
    let mut line = format!(
        "{} span {:?} {:?} {:?} {:.3}ms trace_id={} span_id={}",
        clock(span.start_time),
        span.name,
        span.span_kind,
        span.status,
        duration.as_secs_f64() * 1000.0,
        span.span_context.trace_id(),
        span.span_context.span_id(),
    );
    if span.parent_span_id != opentelemetry::trace::SpanId::INVALID {
        let _ = write!(line, " parent_id={}", span.parent_span_id);
    }
    for kv in &span.attributes {
        let value = kv.value.to_string();
        let _ = write!(
            line,
            " {}={:?}",
            kv.key,
            redactor.redact_value(kv.key.as_str(), &value)
        );
    }
    line.push('\n');
    line
}

impl SpanProcessor for Console {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            (self.sink)(&span_line(&span, &self.redactor));
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

fn any_value(v: &AnyValue) -> String {
    match v {
        AnyValue::String(s) => s.to_string(),
        AnyValue::Int(i) => i.to_string(),
        AnyValue::Double(d) => d.to_string(),
        AnyValue::Boolean(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// A record as one line: `log <LEVEL> <target> trace_id=… span_id=… <body> k=v …`.
pub(crate) fn log_line(record: &SdkLogRecord, redactor: &Redactor) -> String {
    let time = record
        .timestamp()
        .or(record.observed_timestamp())
        .unwrap_or_else(SystemTime::now);
    let mut line = format!(
        "{} log {} {}",
        clock(time),
        record.severity_text().unwrap_or("-"),
        record.target().map(|t| t.as_ref()).unwrap_or("-"),
    );
    if let Some(tc) = record.trace_context() {
        let _ = write!(line, " trace_id={} span_id={}", tc.trace_id, tc.span_id);
    }
    if let Some(body) = record.body() {
        let _ = write!(line, " {:?}", redactor.redact_text(&any_value(body)));
    }
    for (key, value) in record.attributes_iter() {
        let _ = write!(
            line,
            " {key}={:?}",
            redactor.redact_value(key.as_str(), &any_value(value))
        );
    }
    line.push('\n');
    line
}

impl LogProcessor for Console {
    fn emit(&self, record: &mut SdkLogRecord, _scope: &InstrumentationScope) {
        if record.target().is_some_and(|t| is_internal_target(t)) {
            return;
        }
        (self.sink)(&log_line(record, &self.redactor));
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use std::sync::Mutex;

    #[test]
    fn spans_print_as_redacted_lines() {
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let out = lines.clone();
        let sink: LineSink = Arc::new(move |l| out.lock().unwrap().push(l.to_owned()));
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_span_processor(Console::new(sink, Redactor::default()))
            .build();
        let mut span = provider.tracer("t").start("charge");
        span.set_attribute(opentelemetry::KeyValue::new(
            "note",
            "card 4111111111111111",
        ));
        span.set_attribute(opentelemetry::KeyValue::new("password", "hunter2"));
        span.end();
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert!(
            line.contains("span \"charge\"") && line.contains("trace_id="),
            "{line}"
        );
        assert!(
            !line.contains("4111111111111111") && !line.contains("hunter2"),
            "{line}"
        );
        assert!(line.ends_with('\n'));
    }
}
