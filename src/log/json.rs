//! The stdout layer: one JSON object per line (or one readable line), with the trace ids of the
//! current OpenTelemetry context, redacted fields, formatted into a reused buffer.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use super::event::{CurrentSpan, EventFields};
use crate::export::batch::Batcher;
use crate::export::log_record::{EventRecord, QueuedLog, RecordTrace};
use crate::redact::{OwnIds, Redactor, REDACTED};
use crate::util::hex_into;

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
    /// `,"service.name":"…"`, escaped once; empty without a service name.
    service_field: String,
    redactor: Redactor,
    pretty: bool,
    /// The log export queue, when this layer also writes each event's OTLP record: one visit of
    /// the event's fields serves both.
    records: Option<Arc<Batcher<QueuedLog>>>,
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
            service_field: String::new(),
            redactor: Redactor::default(),
            pretty: false,
            records: None,
        }
    }

    /// The `service.name` written on every line. Defaults to none.
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        let name: String = name.into();
        self.service_field.clear();
        if !name.is_empty() {
            self.service_field.push_str(",\"service.name\":");
            escape(&name, &mut self.service_field);
        }
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

    /// Also write each event's OTLP log record into `queue` (JSON lines only).
    pub(crate) fn with_records(mut self, queue: Arc<Batcher<QueuedLog>>) -> Self {
        self.records = Some(queue);
        self
    }

    /// Formats the event's line into `out`; returns its log record when this layer writes them.
    fn format(&self, event: &Event<'_>, out: &mut String) -> Option<EventRecord> {
        let meta = event.metadata();
        let current = CurrentSpan::get();
        let trace = current.trace;
        if self.pretty {
            self.format_pretty(event, trace, out);
            return None;
        }
        out.push_str("{\"timestamp\":\"");
        let time = SystemTime::now();
        rfc3339(time, out);
        out.push_str("\",\"level\":\"");
        out.push_str(meta.level().as_str());
        out.push_str("\",\"target\":");
        escape(meta.target(), out);
        if let Some(t) = &trace {
            push_ids(t, out);
        }
        out.push_str(&self.service_field);
        let recording = self.records.is_some() && current.wants_record(meta);
        let mut visitor = JsonVisitor {
            out,
            redactor: &self.redactor,
            ids: trace.map(|t| OwnIds::new(t.trace_id.to_bytes(), t.span_id.to_bytes())),
            record: recording.then(EventFields::default),
        };
        event.record(&mut visitor);
        let fields = visitor.record.take();
        out.push_str("}\n");
        fields.map(|fields| fields.into_record(meta, time, trace))
    }

    fn format_pretty(&self, event: &Event<'_>, trace: Option<RecordTrace>, out: &mut String) {
        let meta = event.metadata();
        rfc3339(SystemTime::now(), out);
        let _ = write!(out, " {:>5} {}:", meta.level(), meta.target());
        let mut visitor = PrettyVisitor {
            out,
            redactor: &self.redactor,
            message: None,
        };
        event.record(&mut visitor);
        if let Some(t) = trace {
            let _ = write!(out, " trace_id={} span_id={}", t.trace_id, t.span_id);
        }
        out.push('\n');
    }
}

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_event(&self, event: &Event<'_>, _cx: Context<'_, S>) {
        let record = with_buffer(&BUFFER, |out| {
            let record = self.format(event, out);
            let _ = self
                .writer
                .make_writer_for(event.metadata())
                .write_all(out.as_bytes());
            record
        });
        if let (Some(queue), Some(record)) = (&self.records, record) {
            queue.push(QueuedLog::Event(record));
        }
    }
}

/// Runs `f` on this thread's `buffer`, cleared; re-entrancy (a writer that logs) gets a fresh
/// buffer instead of a panic.
fn with_buffer<R>(
    buffer: &'static std::thread::LocalKey<RefCell<String>>,
    f: impl FnOnce(&mut String) -> R,
) -> R {
    buffer.with(|cell| {
        let mut fresh = String::new();
        let mut guard = cell.try_borrow_mut();
        let out: &mut String = match guard.as_deref_mut() {
            Ok(buffer) => buffer,
            Err(_) => &mut fresh,
        };
        out.clear();
        let result = f(out);
        release_if_huge(out);
        result
    })
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
    /// The event's OTLP record, filled from the same visit (unredacted: the export redacts it).
    record: Option<EventFields>,
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

impl JsonVisitor<'_> {
    /// Hands a field to the record, when this line has one.
    fn for_record(&mut self, f: impl FnOnce(&mut EventFields)) {
        if let Some(record) = &mut self.record {
            f(record);
        }
    }

    /// Writes a value formatted with `Debug` as a JSON string, and hands the same text to the
    /// record: formatted once for both.
    fn text(&mut self, field: &Field, value: &dyn std::fmt::Debug, also_record: bool) {
        let json = self.key(field);
        let record = self.record.as_mut().filter(|_| also_record);
        if !json && record.is_none() {
            return;
        }
        with_buffer(&SCRATCH, |text| {
            let _ = write!(text, "{value:?}");
            if json {
                let ids = self.ids.as_ref();
                escape(&self.redactor.redact_text_sparing(text, ids), self.out);
            }
            if let Some(record) = record {
                record.record_str(field, text);
            }
        });
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
        self.for_record(|record| record.record_str(field, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // The message arrives here: formatted into a reused buffer, not a new String.
        self.text(field, value, true);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, &tracing::field::display(value), false);
        self.for_record(|record| record.record_error(field, value));
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.text(field, &HexBytes(value), false);
        self.for_record(|record| record.record_bytes(field, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.key(field) {
            self.out.push_str(itoa::Buffer::new().format(value));
        }
        self.for_record(|record| record.record_i64(field, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.key(field) {
            self.out.push_str(itoa::Buffer::new().format(value));
        }
        self.for_record(|record| record.record_u64(field, value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.text(field, &value, false);
        self.for_record(|record| record.record_i128(field, value));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.text(field, &value, false);
        self.for_record(|record| record.record_u128(field, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.key(field) {
            self.out.push_str(if value { "true" } else { "false" });
        }
        self.for_record(|record| record.record_bool(field, value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.key(field) {
            if value.is_finite() {
                let _ = write!(self.out, "{value}");
            } else {
                escape(&value.to_string(), self.out);
            }
        }
        self.for_record(|record| record.record_f64(field, value));
    }
}

/// Bytes as `tracing` shows them by default: `[0a ff]`.
struct HexBytes<'a>(&'a [u8]);

impl std::fmt::Debug for HexBytes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_char('[')?;
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_char(' ')?;
            }
            write!(f, "{byte:02x}")?;
        }
        f.write_char(']')
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

/// `,"trace_id":"…","span_id":"…"`, built in one buffer and appended at once.
fn push_ids(trace: &RecordTrace, out: &mut String) {
    const TRACE_KEY: &[u8] = b",\"trace_id\":\"";
    const SPAN_KEY: &[u8] = b"\",\"span_id\":\"";
    const SPAN_AT: usize = TRACE_KEY.len() + 32;
    const END: usize = SPAN_AT + SPAN_KEY.len() + 16;
    let mut buf = [b'"'; END + 1];
    buf[..TRACE_KEY.len()].copy_from_slice(TRACE_KEY);
    hex_into(
        &trace.trace_id.to_bytes(),
        &mut buf[TRACE_KEY.len()..SPAN_AT],
    );
    buf[SPAN_AT..SPAN_AT + SPAN_KEY.len()].copy_from_slice(SPAN_KEY);
    hex_into(
        &trace.span_id.to_bytes(),
        &mut buf[SPAN_AT + SPAN_KEY.len()..END],
    );
    // ASCII keys and hex digits only: always UTF-8.
    out.push_str(std::str::from_utf8(&buf).unwrap_or_default());
}

/// Write `s` as a JSON string literal.
pub(crate) fn escape(s: &str, out: &mut String) {
    out.push('"');
    // Most strings need no escape: one pass, eight bytes at a time, finds out.
    if !any_needs_escape(s.as_bytes()) {
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

/// Whether any byte of `s` needs an escape: [`needs_escape`] on eight bytes per step.
fn any_needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // A byte of `x` below `n` (n <= 0x80), or equal to `b`, leaves its high bit in the result.
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH;
    let equal = |x: u64, b: u8| below(x ^ (ONES * u64::from(b)), 1);
    let mut chunks = s.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_ne_bytes(word);
        if below(x, 0x20) | equal(x, b'"') | equal(x, b'\\') | equal(x, 0x7f) != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| needs_escape(b))
}

/// RFC 3339 UTC with microseconds, e.g. `2026-11-22T12:00:00.000000Z`.
fn rfc3339(t: SystemTime, out: &mut String) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    // The date and time of day change once a second: lines within it reuse them.
    let prefix = SECOND.with(|cached| {
        let (at, text) = cached.get();
        if at == secs && at != 0 {
            return text;
        }
        let text = date_time(secs);
        cached.set((secs, text));
        text
    });
    let mut buf = [0u8; 27];
    buf[..19].copy_from_slice(&prefix);
    buf[19] = b'.';
    put_digits(&mut buf[20..26], u64::from(d.subsec_micros()));
    buf[26] = b'Z';
    // ASCII digits and separators only: always UTF-8.
    out.push_str(std::str::from_utf8(&buf).unwrap_or_default());
}

thread_local! {
    /// The last second formatted on this thread, and its `YYYY-MM-DDTHH:MM:SS`.
    static SECOND: std::cell::Cell<(u64, [u8; 19])> = const { std::cell::Cell::new((0, [0; 19])) };
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) of a Unix second.
fn date_time(secs: u64) -> [u8; 19] {
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
    let mut buf = *b"0000-00-00T00:00:00";
    put_digits(&mut buf[0..4], u64::try_from(year).unwrap_or(0).min(9999));
    put_digits(&mut buf[5..7], month as u64);
    put_digits(&mut buf[8..10], day as u64);
    put_digits(&mut buf[11..13], rem / 3600);
    put_digits(&mut buf[14..16], rem % 3600 / 60);
    put_digits(&mut buf[17..19], rem % 60);
    buf
}

/// `n`'s last `out.len()` decimal digits, zero-padded, into `out`.
fn put_digits(out: &mut [u8], mut n: u64) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
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

    proptest::proptest! {
        #[test]
        fn the_word_check_finds_what_the_byte_check_finds(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)
        ) {
            let expected = bytes.iter().any(|&b| needs_escape(b));
            proptest::prop_assert_eq!(any_needs_escape(&bytes), expected);
        }
    }

    #[test]
    fn every_byte_alone_and_in_a_word() {
        for b in 0..=255u8 {
            for at in [0, 3, 7, 8, 12] {
                let mut bytes = vec![b'a'; 13];
                bytes[at] = b;
                assert_eq!(any_needs_escape(&bytes), needs_escape(b), "{b:#x} at {at}");
            }
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
        // The same second again (the cached date and time), then the next one.
        for (t, expected) in [
            (951_782_400_000_007, "2000-02-29T00:00:00.000007Z"),
            (951_782_401_500_000, "2000-02-29T00:00:01.500000Z"),
            (0, "1970-01-01T00:00:00.000000Z"),
        ] {
            out.clear();
            rfc3339(UNIX_EPOCH + Duration::from_micros(t), &mut out);
            assert_eq!(out, expected);
        }
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
