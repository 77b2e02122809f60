//! The stdout layer: one JSON object per line (or one readable line), with the trace ids of the
//! current OpenTelemetry context, redacted fields, formatted into a reused buffer.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::TraceContextExt as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use crate::redact::{OwnIds, Redactor, REDACTED};
use crate::util::push_hex;

/// A `tracing` layer writing one JSON object per event:
/// `timestamp` (RFC 3339 UTC), `level`, `target`, `message`, `trace_id` and `span_id` (of the
/// current OpenTelemetry context: the request under [`crate::http::TraceLayer`], a
/// tracing span bridged by tracing-opentelemetry, or a context attached with
/// [`Logger::with_context`](crate::log::Logger::with_context)), `service.name`, then the
/// event's fields. Sensitive field names are written as `REDACTED`; card numbers in the message
/// and string values are masked.
///
/// [`Telemetry::layers`](crate::telemetry::Telemetry::layers) installs it on a non-blocking stdout; build
/// one yourself to write elsewhere:
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt as _;
/// let layer = paytrace::log::JsonLayer::new(std::io::sink).with_service_name("checkout");
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || tracing::info!(order_id = 7, "paid"));
/// ```
#[derive(Debug)]
pub struct JsonLayer<W> {
    writer: W,
    service_name: String,
    redactor: Redactor,
    pretty: bool,
}

thread_local! {
    static BUFFER: RefCell<String> = RefCell::new(String::with_capacity(512));
    static SCRATCH: RefCell<String> = RefCell::new(String::with_capacity(256));
}

impl<W> JsonLayer<W>
where
    W: for<'a> MakeWriter<'a> + 'static,
{
    /// A JSON layer writing to `writer`, with the default [`Redactor`] and no service name.
    pub fn new(writer: W) -> Self {
        JsonLayer {
            writer,
            service_name: String::new(),
            redactor: Redactor::default(),
            pretty: false,
        }
    }

    /// The `service.name` written on every line. Defaults to none.
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    /// The redaction policy. Defaults to [`Redactor::default`].
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// Write human-readable lines instead of JSON (development). Defaults to JSON.
    pub fn pretty(mut self, pretty: bool) -> Self {
        self.pretty = pretty;
        self
    }

    fn format(&self, event: &Event<'_>, out: &mut String) {
        let meta = event.metadata();
        let (trace_id, span_id) = opentelemetry::Context::map_current(|cx| {
            let sc = cx.span().span_context().clone();
            sc.is_valid().then(|| (sc.trace_id(), sc.span_id())).unzip()
        });
        if self.pretty {
            rfc3339(SystemTime::now(), out);
            let _ = write!(out, " {:>5} {}:", meta.level(), meta.target());
            let mut visitor = PrettyVisitor {
                out,
                redactor: &self.redactor,
                message: None,
            };
            event.record(&mut visitor);
            if let (Some(t), Some(s)) = (trace_id, span_id) {
                let _ = write!(out, " trace_id={t} span_id={s}");
            }
            out.push('\n');
            return;
        }
        out.push_str("{\"timestamp\":\"");
        rfc3339(SystemTime::now(), out);
        out.push_str("\",\"level\":\"");
        out.push_str(meta.level().as_str());
        out.push_str("\",\"target\":");
        escape(meta.target(), out);
        if let (Some(t), Some(s)) = (trace_id, span_id) {
            out.push_str(",\"trace_id\":\"");
            push_hex(&t.to_bytes(), out);
            out.push_str("\",\"span_id\":\"");
            push_hex(&s.to_bytes(), out);
            out.push('"');
        }
        if !self.service_name.is_empty() {
            out.push_str(",\"service.name\":");
            escape(&self.service_name, out);
        }
        let ids = trace_id
            .zip(span_id)
            .map(|(t, s)| OwnIds::new(t.to_bytes(), s.to_bytes()));
        let mut visitor = JsonVisitor {
            out,
            redactor: &self.redactor,
            ids,
        };
        event.record(&mut visitor);
        out.push_str("}\n");
    }
}

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_event(&self, event: &Event<'_>, _cx: Context<'_, S>) {
        BUFFER.with(|cell| {
            // Re-entrancy (a writer that logs) gets a fresh buffer instead of a panic.
            let mut fresh = String::new();
            let mut guard = cell.try_borrow_mut();
            let out: &mut String = match guard.as_deref_mut() {
                Ok(buffer) => buffer,
                Err(_) => &mut fresh,
            };
            out.clear();
            self.format(event, out);
            let _ = self
                .writer
                .make_writer_for(event.metadata())
                .write_all(out.as_bytes());
            release_if_huge(out);
        });
    }
}

/// One huge record must not pin a huge per-thread buffer forever.
fn release_if_huge(buffer: &mut String) {
    if buffer.capacity() > 64 * 1024 {
        *buffer = String::new();
    }
}

struct JsonVisitor<'a> {
    out: &'a mut String,
    redactor: &'a Redactor,
    /// The line's own `trace_id` and `span_id`, when it has them.
    ids: Option<OwnIds>,
}

/// Keys the line itself writes; a field of the same name is written as `field.<name>` so that
/// each key appears once.
fn is_own_key(name: &str) -> bool {
    // A match on string literals compiles to a length switch: most names miss at once.
    matches!(
        name,
        "timestamp" | "level" | "target" | "trace_id" | "span_id" | "service.name"
    )
}

impl JsonVisitor<'_> {
    /// Writes the field's key; false when its value is written already (redacted).
    fn key(&mut self, field: &Field) -> bool {
        let name = field.name();
        self.out.push(',');
        if is_own_key(name) {
            self.out.push_str("\"field.");
            self.out.push_str(name);
            self.out.push('"');
        } else {
            escape(name, self.out);
        }
        self.out.push(':');
        if field.name() != "message" && self.redactor.is_sensitive_field(field.name()) {
            escape(REDACTED, self.out);
            return false;
        }
        true
    }
}

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.key(field) {
            escape(
                &self.redactor.redact_text_sparing(value, self.ids.as_ref()),
                self.out,
            );
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if self.key(field) {
            // The message arrives here: formatted into a reused buffer, not a new String.
            SCRATCH.with(|cell| match cell.try_borrow_mut() {
                Ok(mut text) => {
                    text.clear();
                    let _ = write!(text, "{value:?}");
                    let ids = self.ids.as_ref();
                    escape(&self.redactor.redact_text_sparing(&text, ids), self.out);
                    release_if_huge(&mut text);
                }
                Err(_) => escape(
                    &self
                        .redactor
                        .redact_text_sparing(&format!("{value:?}"), self.ids.as_ref()),
                    self.out,
                ),
            });
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.key(field) {
            self.out.push_str(itoa::Buffer::new().format(value));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.key(field) {
            self.out.push_str(itoa::Buffer::new().format(value));
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.key(field) {
            self.out.push_str(if value { "true" } else { "false" });
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.key(field) {
            if value.is_finite() {
                let _ = write!(self.out, "{value}");
            } else {
                escape(&value.to_string(), self.out);
            }
        }
    }
}

struct PrettyVisitor<'a> {
    out: &'a mut String,
    redactor: &'a Redactor,
    message: Option<()>,
}

impl Visit for PrettyVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" && self.message.is_none() {
            self.message = Some(());
            let _ = write!(self.out, " {}", self.redactor.redact_text(&text));
        } else {
            let _ = write!(
                self.out,
                " {}={}",
                field.name(),
                self.redactor.redact_value(field.name(), &text)
            );
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }
}

/// Write `s` as a JSON string literal.
pub(crate) fn escape(s: &str, out: &mut String) {
    out.push('"');
    // Most strings need no escape: one branch-free pass finds out.
    if !s.bytes().any(needs_escape) {
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let replacement = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f | 0x7f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if replacement.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(replacement);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f
}

/// RFC 3339 UTC with microseconds, e.g. `2026-11-22T12:00:00.000000Z`.
fn rfc3339(t: SystemTime, out: &mut String) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Digits by hand: `write!` with padding costs more than the rest of the line.
    let mut buf = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut n: u64| {
        for i in (at..at + width).rev() {
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, u64::try_from(year).unwrap_or(0).min(9999));
    put(5, 2, month as u64);
    put(8, 2, day as u64);
    put(11, 2, rem / 3600);
    put(14, 2, rem % 3600 / 60);
    put(17, 2, rem % 60);
    put(20, 6, u64::from(d.subsec_micros()));
    out.push_str(std::str::from_utf8(&buf).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn escaping_produces_valid_json() {
        for s in [
            "plain",
            "quote \" backslash \\",
            "nl\ncr\rtab\t",
            "ctl \u{1} \u{1f} \u{7f}",
            "中文 ✓ 😀",
        ] {
            let mut out = String::new();
            escape(s, &mut out);
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn timestamps() {
        let mut out = String::new();
        rfc3339(
            UNIX_EPOCH + Duration::from_micros(1_795_350_333_123_456),
            &mut out,
        );
        assert_eq!(out, "2026-11-22T12:25:33.123456Z");
        out.clear();
        rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400), &mut out); // leap day 2000
        assert_eq!(out, "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn each_key_once_and_own_ids_unmasked() {
        use opentelemetry::trace::{SpanContext, TraceContextExt as _, TraceFlags, TraceState};
        use opentelemetry::trace::{SpanId, TraceId};
        use tracing_subscriber::layer::SubscriberExt as _;

        let lines = crate::fixtures::Lines::default();
        let make = lines.clone();
        let subscriber = tracing_subscriber::registry()
            .with(JsonLayer::new(move || make.clone()).with_service_name("svc"));
        // A span id whose hex digits hold a Luhn-valid run of 16.
        let (trace, span) = (0xab_u128, 0x4111_1111_1111_1111_u64);
        let cx = opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ));
        let request_id = format!("{}-{}", TraceId::from(trace), SpanId::from(span));
        tracing::subscriber::with_default(subscriber, || {
            let _attached = cx.attach();
            tracing::warn!(
                trace_id = %TraceId::from(trace),
                level = "custom",
                request_id = %request_id,
                card = "4111111111111111",
                note = "paid 5500005555555559",
                "slow"
            );
        });
        let text = lines.text();
        for key in [
            "\"trace_id\":",
            "\"span_id\":",
            "\"level\":",
            "\"field.trace_id\":",
        ] {
            assert_eq!(text.matches(key).count(), 1, "{key} in {text}");
        }
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["field.level"], "custom");
        assert_eq!(line["span_id"], "4111111111111111");
        assert_eq!(line["request_id"], request_id.as_str());
        assert_eq!(line["card"], "REDACTED");
        assert_eq!(line["note"], "paid 550000******5559");
    }
}
