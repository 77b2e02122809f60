//! [`ReceivedSpan`]: a span as received, with accessors for its name, attributes and ids.

use super::read::{find_attr, hex, render};
use crate::testing::{AnyValue, KeyValue, Span};

/// A span as received, with the attributes of its resource and the name of its
/// instrumentation scope.
///
/// # Example
///
/// ```
/// use paytrace::testing::{proto, ReceivedSpan, Span};
///
/// let span = ReceivedSpan {
///     resource: proto::Attributes::from([opentelemetry::KeyValue::new("service.name", "pay")]).0,
///     scope: "checkout".to_owned(),
///     span: Span {
///         name: "charge card".into(),
///         trace_id: vec![0xab; 16],
///         span_id: vec![0x01; 8],
///         attributes: proto::Attributes::from([opentelemetry::KeyValue::new("retries", 2)]).0,
///         ..Default::default()
///     },
/// };
/// assert_eq!(span.name(), "charge card");
/// assert_eq!(span.attr_str("retries").as_deref(), Some("2"));
/// assert_eq!(span.resource_attr_str("service.name").as_deref(), Some("pay"));
/// assert_eq!(span.span_id_hex(), "0101010101010101");
/// assert_eq!(span.parent_span_id_hex(), ""); // a root span
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// The attributes of the resource the span was exported with.
    pub resource: Vec<KeyValue>,
    /// The name of the span's instrumentation scope (the tracer name); empty if it had none.
    pub scope: String,
    /// The span itself.
    pub span: Span,
}

impl ReceivedSpan {
    /// The span's name.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{ReceivedSpan, Span};
    /// let span = ReceivedSpan {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     span: Span { name: "capture".into(), ..Default::default() },
    /// };
    /// assert_eq!(span.name(), "capture");
    /// ```
    pub fn name(&self) -> &str {
        &self.span.name
    }

    /// The value of the span attribute `key`, if the span has it.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{any_value::Value, proto, ReceivedSpan, Span};
    /// let span = ReceivedSpan {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     span: Span {
    ///         attributes: proto::Attributes::from([opentelemetry::KeyValue::new("amount", 12.5)]).0,
    ///         ..Default::default()
    ///     },
    /// };
    /// let amount = span.attr("amount").and_then(|v| v.value.clone());
    /// assert_eq!(amount, Some(Value::DoubleValue(12.5)));
    /// assert!(span.attr("currency").is_none());
    /// ```
    pub fn attr(&self, key: &str) -> Option<&AnyValue> {
        find_attr(&self.span.attributes, key)
    }

    /// The value of the span attribute `key` rendered as text.
    ///
    /// Strings as they are, integers, booleans and doubles in their usual form (`42`, `true`,
    /// `12.5`), bytes in lowercase hex, arrays as `[a, b]` and key-value lists as `{k: v}`.
    /// `None` if the span lacks the attribute or its value is empty.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, ReceivedSpan, Span};
    /// let span = ReceivedSpan {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     span: Span {
    ///         attributes: proto::Attributes::from([
    ///             opentelemetry::KeyValue::new("http.response.status_code", 402),
    ///             opentelemetry::KeyValue::new("retried", true),
    ///         ])
    ///         .0,
    ///         ..Default::default()
    ///     },
    /// };
    /// assert_eq!(span.attr_str("http.response.status_code").as_deref(), Some("402"));
    /// assert_eq!(span.attr_str("retried").as_deref(), Some("true"));
    /// ```
    pub fn attr_str(&self, key: &str) -> Option<String> {
        self.attr(key).and_then(render)
    }

    /// The trace id as 32 lowercase hex digits.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{ReceivedSpan, Span};
    /// let span = ReceivedSpan {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     span: Span { trace_id: vec![0x0a; 16], ..Default::default() },
    /// };
    /// assert_eq!(span.trace_id_hex(), "0a".repeat(16));
    /// ```
    pub fn trace_id_hex(&self) -> String {
        hex(&self.span.trace_id)
    }

    /// The span id as 16 lowercase hex digits.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{ReceivedSpan, Span};
    /// let span = ReceivedSpan {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     span: Span { span_id: vec![0xff; 8], ..Default::default() },
    /// };
    /// assert_eq!(span.span_id_hex(), "ffffffffffffffff");
    /// ```
    pub fn span_id_hex(&self) -> String {
        hex(&self.span.span_id)
    }

    /// The parent span id as 16 lowercase hex digits; empty for a root span.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{ReceivedSpan, Span};
    /// let child = ReceivedSpan {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     span: Span { parent_span_id: vec![0x12; 8], ..Default::default() },
    /// };
    /// assert_eq!(child.parent_span_id_hex(), "1212121212121212");
    /// ```
    pub fn parent_span_id_hex(&self) -> String {
        hex(&self.span.parent_span_id)
    }

    /// The value of the resource attribute `key` rendered as text, like
    /// [`ReceivedSpan::attr_str`].
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, ReceivedSpan, Span};
    /// let span = ReceivedSpan {
    ///     resource: proto::Attributes::from([opentelemetry::KeyValue::new("service.name", "pay")]).0,
    ///     scope: String::new(),
    ///     span: Span::default(),
    /// };
    /// assert_eq!(span.resource_attr_str("service.name").as_deref(), Some("pay"));
    /// ```
    pub fn resource_attr_str(&self, key: &str) -> Option<String> {
        find_attr(&self.resource, key).and_then(render)
    }
}
