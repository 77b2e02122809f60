//! [`ReceivedLog`]: a log record as received, with accessors for body, severity, attributes, ids.

use super::read::{find_attr, hex, render};
use crate::testing::{AnyValue, KeyValue, LogRecord};

#[cfg(doc)]
use super::ReceivedSpan;

/// A log record as received, with the attributes of its resource and the name of its
/// instrumentation scope.
///
/// # Example
///
/// ```
/// use paytrace::testing::{any_value::Value, AnyValue, LogRecord, ReceivedLog};
///
/// let log = ReceivedLog {
///     resource: vec![],
///     scope: "paytrace".to_owned(),
///     record: LogRecord {
///         severity_text: "ERROR".into(),
///         body: Some(AnyValue { value: Some(Value::StringValue("card declined".into())) }),
///         trace_id: vec![0x01; 16],
///         ..Default::default()
///     },
/// };
/// assert_eq!(log.body_str().as_deref(), Some("card declined"));
/// assert_eq!(log.severity_text(), "ERROR");
/// assert_eq!(log.trace_id_hex(), "01".repeat(16));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedLog {
    /// The attributes of the resource the record was exported with.
    pub resource: Vec<KeyValue>,
    /// The name of the record's instrumentation scope; empty if it had none.
    pub scope: String,
    /// The log record itself.
    pub record: LogRecord,
}

impl ReceivedLog {
    /// The body rendered as text, like [`ReceivedSpan::attr_str`]; `None` without a body.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{any_value::Value, AnyValue, LogRecord, ReceivedLog};
    /// let log = ReceivedLog {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     record: LogRecord {
    ///         body: Some(AnyValue { value: Some(Value::StringValue("refund issued".into())) }),
    ///         ..Default::default()
    ///     },
    /// };
    /// assert_eq!(log.body_str().as_deref(), Some("refund issued"));
    /// ```
    pub fn body_str(&self) -> Option<String> {
        self.record.body.as_ref().and_then(render)
    }

    /// The value of the record attribute `key`, if the record has it.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{any_value::Value, proto, LogRecord, ReceivedLog};
    /// let log = ReceivedLog {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     record: LogRecord {
    ///         attributes: proto::Attributes::from([opentelemetry::KeyValue::new("order_id", 42)]).0,
    ///         ..Default::default()
    ///     },
    /// };
    /// let order_id = log.attr("order_id").and_then(|v| v.value.clone());
    /// assert_eq!(order_id, Some(Value::IntValue(42)));
    /// ```
    pub fn attr(&self, key: &str) -> Option<&AnyValue> {
        find_attr(&self.record.attributes, key)
    }

    /// The value of the record attribute `key` rendered as text, like
    /// [`ReceivedSpan::attr_str`].
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, LogRecord, ReceivedLog};
    /// let log = ReceivedLog {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     record: LogRecord {
    ///         attributes: proto::Attributes::from([opentelemetry::KeyValue::new("order_id", 42)]).0,
    ///         ..Default::default()
    ///     },
    /// };
    /// assert_eq!(log.attr_str("order_id").as_deref(), Some("42"));
    /// ```
    pub fn attr_str(&self, key: &str) -> Option<String> {
        self.attr(key).and_then(render)
    }

    /// The trace id as 32 lowercase hex digits; empty for a record logged outside any span.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{LogRecord, ReceivedLog};
    /// let log = ReceivedLog { resource: vec![], scope: String::new(), record: LogRecord::default() };
    /// assert_eq!(log.trace_id_hex(), "");
    /// ```
    pub fn trace_id_hex(&self) -> String {
        hex(&self.record.trace_id)
    }

    /// The span id as 16 lowercase hex digits; empty for a record logged outside any span.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{LogRecord, ReceivedLog};
    /// let log = ReceivedLog {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     record: LogRecord { span_id: vec![0xbe, 0xef, 0, 0, 0, 0, 0, 1], ..Default::default() },
    /// };
    /// assert_eq!(log.span_id_hex(), "beef000000000001");
    /// ```
    pub fn span_id_hex(&self) -> String {
        hex(&self.record.span_id)
    }

    /// The severity text, such as `INFO` or `ERROR`; empty if the record has none.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{LogRecord, ReceivedLog};
    /// let log = ReceivedLog {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     record: LogRecord { severity_text: "INFO".into(), ..Default::default() },
    /// };
    /// assert_eq!(log.severity_text(), "INFO");
    /// ```
    pub fn severity_text(&self) -> &str {
        &self.record.severity_text
    }

    /// The value of the resource attribute `key` rendered as text, like
    /// [`ReceivedSpan::attr_str`].
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, LogRecord, ReceivedLog};
    /// let log = ReceivedLog {
    ///     resource: proto::Attributes::from([opentelemetry::KeyValue::new("service.name", "pay")]).0,
    ///     scope: String::new(),
    ///     record: LogRecord::default(),
    /// };
    /// assert_eq!(log.resource_attr_str("service.name").as_deref(), Some("pay"));
    /// ```
    pub fn resource_attr_str(&self, key: &str) -> Option<String> {
        find_attr(&self.resource, key).and_then(render)
    }
}
