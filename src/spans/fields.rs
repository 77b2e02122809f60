//! A `tracing` span's fields read into what its OpenTelemetry span needs: attributes, and the
//! `otel.*` fields that set its name, kind and status.

use std::fmt::Write as _;

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{Key, KeyValue, Value};
use tracing::field::{Field, Visit};

/// What one `record` call (at creation or later) says about a span.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    pub(crate) attributes: Vec<KeyValue>,
    pub(crate) name: Option<String>,
    pub(crate) kind: Option<SpanKind>,
    pub(crate) status: Option<Status>,
}

impl Fields {
    /// Room for `n` attributes: a span's fields are known when it is created.
    pub(crate) fn with_capacity(n: usize) -> Fields {
        Fields {
            attributes: Vec::with_capacity(n),
            ..Fields::default()
        }
    }

    /// A field's value in its text form, read as one of the `otel.*` names; false for any
    /// other field, which becomes an attribute.
    fn special(&mut self, field: &Field, text: &str) -> bool {
        match field.name() {
            "otel.name" => self.name = Some(text.to_owned()),
            "otel.kind" => self.kind = span_kind(text),
            "otel.status_code" => {
                self.status = match text.to_ascii_lowercase().as_str() {
                    "ok" => Some(Status::Ok),
                    "error" => Some(error_status(&self.status)),
                    _ => None,
                }
            }
            "otel.status_description" | "otel.status_message" => {
                self.status = Some(Status::error(text.to_owned()))
            }
            _ => return false,
        }
        true
    }

    fn push(&mut self, field: &Field, value: impl Into<Value>) {
        self.attributes
            .push(KeyValue::new(Key::from_static_str(field.name()), value));
    }
}

/// `Error` with the description already given, if any.
fn error_status(current: &Option<Status>) -> Status {
    match current {
        Some(status @ Status::Error { .. }) => status.clone(),
        _ => Status::error(""),
    }
}

/// `otel.kind`'s values, as tracing-opentelemetry reads them.
fn span_kind(text: &str) -> Option<SpanKind> {
    match text.to_ascii_lowercase().as_str() {
        "server" => Some(SpanKind::Server),
        "client" => Some(SpanKind::Client),
        "producer" => Some(SpanKind::Producer),
        "consumer" => Some(SpanKind::Consumer),
        "internal" => Some(SpanKind::Internal),
        _ => None,
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.special(field, value) {
            self.push(field, value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        if !self.special(field, &text) {
            self.push(field, text);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match i64::try_from(value) {
            Ok(v) => self.push(field, v),
            // OTLP has no unsigned integer: the exact value as text beats a wrapped one.
            Err(_) => self.push(field, value.to_string()),
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let message = value.to_string();
        self.status = Some(Status::error(message.clone()));
        self.push(field, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(f: impl FnOnce()) -> Fields {
        use tracing_subscriber::layer::SubscriberExt as _;
        let fields = std::sync::Arc::new(std::sync::Mutex::new(None));
        let layer = Capture(fields.clone());
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
        let mut guard = fields.lock().unwrap();
        guard.take().expect("a span was created")
    }

    struct Capture(std::sync::Arc<std::sync::Mutex<Option<Fields>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
        fn on_new_span(
            &self,
            attrs: &tracing::span::Attributes<'_>,
            _id: &tracing::span::Id,
            _ctx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let mut fields = Fields::default();
            attrs.record(&mut fields);
            *self.0.lock().unwrap() = Some(fields);
        }
    }

    #[test]
    fn values_keep_their_types() {
        let f = read(|| {
            let _s = tracing::info_span!(
                "op",
                count = 3_i64,
                big = u64::MAX,
                small = 7_u64,
                ratio = 0.5,
                ok = true,
                who = "alice",
                what = ?Some(1)
            );
        });
        let get = |k: &str| {
            f.attributes
                .iter()
                .find(|kv| kv.key.as_str() == k)
                .map(|kv| kv.value.clone())
        };
        assert_eq!(get("count"), Some(Value::I64(3)));
        assert_eq!(get("big"), Some(Value::from(u64::MAX.to_string())));
        assert_eq!(get("small"), Some(Value::I64(7)));
        assert_eq!(get("ratio"), Some(Value::F64(0.5)));
        assert_eq!(get("ok"), Some(Value::Bool(true)));
        assert_eq!(get("who"), Some(Value::from("alice")));
        assert_eq!(get("what"), Some(Value::from("Some(1)")));
    }

    #[test]
    fn otel_fields_set_name_kind_and_status() {
        let f = read(|| {
            let _s = tracing::info_span!(
                "op",
                otel.name = "charge card",
                otel.kind = "client",
                otel.status_code = "ERROR",
                order_id = 9
            );
        });
        assert_eq!(f.name.as_deref(), Some("charge card"));
        assert_eq!(f.kind, Some(SpanKind::Client));
        assert_eq!(f.status, Some(Status::error("")));
        assert_eq!(f.attributes.len(), 1, "only order_id is an attribute");
    }

    #[test]
    fn an_error_field_sets_the_status_with_its_message() {
        let err = std::io::Error::other("ledger unreachable");
        let f = read(|| {
            let _s = tracing::info_span!("op", error = &err as &(dyn std::error::Error + 'static));
        });
        assert_eq!(f.status, Some(Status::error("ledger unreachable")));
        assert_eq!(f.attributes[0].value, Value::from("ledger unreachable"));
    }

    #[test]
    fn unknown_otel_values_change_nothing() {
        let f = read(|| {
            let _s = tracing::info_span!("op", otel.kind = "sideways", otel.status_code = "meh");
        });
        assert_eq!((f.kind, f.status), (None, None));
    }
}
