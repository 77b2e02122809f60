//! How a request or call ends, and what every end writes on its span whatever the protocol:
//! one place for `error.type`, the slow and cancelled flags, the status and the exemplar claim.

use std::borrow::Cow;
use std::time::SystemTime;

use opentelemetry::trace::{SpanRef, Status};
use opentelemetry::{KeyValue, StringValue};

use crate::keys::{CANCELLED, ERROR_TYPE, SLOW};
use crate::sampling::{ExemplarClaim, Thinned};

/// How a request or call ended. `F` is what the protocol knows of a failure: HTTP the error's
/// type name, gRPC the status the error stands for (when it says).
#[derive(Debug, Clone, Copy)]
pub(crate) enum End<F> {
    /// The response (headers and body, or stream and trailers) completed.
    Complete,
    /// The inner service or the response body failed.
    Failed(F),
    /// The future or body was dropped first (client gone, timeout).
    Dropped,
}

/// The trace and span ids a kept span's duration exemplar names.
pub(crate) type Kept = ([u8; 16], [u8; 8]);

/// Why a request failed, as its span says it.
#[derive(Debug)]
pub(crate) struct Failure {
    /// `error.type`.
    pub(crate) error_type: StringValue,
    /// The description of the span's Error status.
    pub(crate) description: Cow<'static, str>,
}

/// What every end writes on its span beside the protocol's own attributes.
#[derive(Debug)]
pub(crate) struct SpanEnd<'a> {
    /// Set when the request failed: `error.type` and an Error status.
    pub(crate) failure: Option<Failure>,
    /// `paytrace.slow`: the request took longer than its layer's threshold.
    pub(crate) slow: bool,
    /// `paytrace.request.cancelled`: the request was dropped before it completed.
    pub(crate) cancelled: bool,
    /// Whether the span is its trace's root in this process: only a root's failure or
    /// slowness is an outcome tail keep keeps, so only then may an unsampled span claim an
    /// exemplar.
    pub(crate) local_root: bool,
    /// When the span ends: its start time plus the measured duration.
    pub(crate) at: SystemTime,
    /// Where the span's duration exemplar is claimed: the record of traces tail keep thinned,
    /// which an unsampled span's claim asks. `None` when its duration has no exemplar.
    pub(crate) exemplar: Option<&'a Thinned>,
}

impl SpanEnd<'_> {
    /// Write `protocol`'s attributes (those present) and the end's own, in one call (one span
    /// lock), set the status and end the span; the ids its duration exemplar names when its
    /// trace is exported. An array, not an iterator: one flat loop where the span takes them.
    pub(crate) fn end<const N: usize>(
        self,
        span: &SpanRef<'_>,
        protocol: [Option<KeyValue>; N],
    ) -> Option<Kept> {
        let failed = self.failure.is_some();
        let (error_type, description) = self.failure.map(|f| (f.error_type, f.description)).unzip();
        let own = [
            error_type.map(|e| KeyValue::new(ERROR_TYPE, e)),
            self.slow.then(|| KeyValue::new(SLOW, true)),
            self.cancelled.then(|| KeyValue::new(CANCELLED, true)),
        ];
        span.set_attributes(protocol.into_iter().chain(own).flatten());
        if let Some(description) = description {
            span.set_status(Status::error(description));
        }
        let outcome = self.local_root && (failed || self.slow);
        let claim = self
            .exemplar
            .and_then(|thinned| thinned.claim(span, outcome));
        span.end_with_timestamp(self.at);
        claim.and_then(ExemplarClaim::after_end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{TraceContextExt, Tracer as _, TracerProvider as _};
    use opentelemetry::{Context, Value};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
    use std::time::Duration;

    /// End one sampled span with `end` and `protocol`; what was exported, and the kept ids.
    fn ended<const N: usize>(
        end: SpanEnd<'_>,
        protocol: [Option<KeyValue>; N],
    ) -> (SpanData, Option<Kept>) {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let span = provider.tracer("test").start("request");
        let cx = Context::new().with_span(span);
        let kept = end.end(&cx.span(), protocol);
        let mut spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 1);
        (spans.remove(0), kept)
    }

    fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    /// Thinned traces for ends that no keeper marks.
    static NONE_THINNED: std::sync::LazyLock<Thinned> = std::sync::LazyLock::new(Thinned::default);

    fn span_end(at: SystemTime) -> SpanEnd<'static> {
        SpanEnd {
            failure: None,
            slow: false,
            cancelled: false,
            local_root: true,
            at,
            exemplar: Some(&NONE_THINNED),
        }
    }

    #[test]
    fn a_failed_slow_cancelled_end_says_so_by_name() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let end = SpanEnd {
            failure: Some(Failure {
                error_type: "cancelled".into(),
                description: "request cancelled".into(),
            }),
            slow: true,
            cancelled: true,
            ..span_end(at)
        };
        let (span, kept) = ended(end, [Some(KeyValue::new("rpc.method", "s.S/M"))]);
        assert_eq!(attribute(&span, "rpc.method"), Some(&Value::from("s.S/M")));
        assert_eq!(
            attribute(&span, "error.type"),
            Some(&Value::from("cancelled"))
        );
        assert_eq!(attribute(&span, "paytrace.slow"), Some(&Value::Bool(true)));
        assert_eq!(
            attribute(&span, "paytrace.request.cancelled"),
            Some(&Value::Bool(true))
        );
        assert_eq!(span.status, Status::error("request cancelled"));
        assert_eq!(span.end_time, at);
        let sc = &span.span_context;
        assert_eq!(
            kept,
            Some((sc.trace_id().to_bytes(), sc.span_id().to_bytes())),
            "a sampled span names its trace"
        );
    }

    #[test]
    fn a_complete_end_writes_only_the_protocol_attributes() {
        let at = SystemTime::now();
        let (span, _) = ended(
            span_end(at),
            [Some(KeyValue::new("http.response.status_code", 200)), None],
        );
        let keys: Vec<&str> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["http.response.status_code"]);
        assert_eq!(span.status, Status::Unset);
    }
}
