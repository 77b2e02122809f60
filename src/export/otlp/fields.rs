//! Protobuf field numbers of the OTLP messages the encoder writes, one module per message, named
//! after the fields of opentelemetry-proto's `.proto` files.

/// `ExportTraceServiceRequest` and `ExportLogsServiceRequest`, which number their fields alike.
pub(crate) mod export_request {
    /// `resource_spans` / `resource_logs`.
    pub(crate) const RESOURCE_ITEMS: u32 = 1;
}

/// `ResourceSpans` and `ResourceLogs`.
pub(crate) mod resource_items {
    pub(crate) const RESOURCE: u32 = 1;
    /// `scope_spans` / `scope_logs`.
    pub(crate) const SCOPE_ITEMS: u32 = 2;
}

/// `ScopeSpans` and `ScopeLogs`.
pub(crate) mod scope_items {
    pub(crate) const SCOPE: u32 = 1;
    /// `spans` / `log_records`.
    pub(crate) const ITEMS: u32 = 2;
}

/// `InstrumentationScope`.
pub(crate) mod scope {
    pub(crate) const NAME: u32 = 1;
    pub(crate) const VERSION: u32 = 2;
    pub(crate) const ATTRIBUTES: u32 = 3;
}

/// `Span`.
pub(crate) mod span {
    pub(crate) const TRACE_ID: u32 = 1;
    pub(crate) const SPAN_ID: u32 = 2;
    pub(crate) const TRACE_STATE: u32 = 3;
    pub(crate) const PARENT_SPAN_ID: u32 = 4;
    pub(crate) const NAME: u32 = 5;
    pub(crate) const KIND: u32 = 6;
    pub(crate) const START_TIME_UNIX_NANO: u32 = 7;
    pub(crate) const END_TIME_UNIX_NANO: u32 = 8;
    pub(crate) const ATTRIBUTES: u32 = 9;
    pub(crate) const DROPPED_ATTRIBUTES_COUNT: u32 = 10;
    pub(crate) const EVENTS: u32 = 11;
    pub(crate) const DROPPED_EVENTS_COUNT: u32 = 12;
    pub(crate) const LINKS: u32 = 13;
    pub(crate) const DROPPED_LINKS_COUNT: u32 = 14;
    pub(crate) const STATUS: u32 = 15;
    pub(crate) const FLAGS: u32 = 16;
}

/// `Span.Event`.
pub(crate) mod event {
    pub(crate) const TIME_UNIX_NANO: u32 = 1;
    pub(crate) const NAME: u32 = 2;
    pub(crate) const ATTRIBUTES: u32 = 3;
    pub(crate) const DROPPED_ATTRIBUTES_COUNT: u32 = 4;
}

/// `Span.Link`.
pub(crate) mod link {
    pub(crate) const TRACE_ID: u32 = 1;
    pub(crate) const SPAN_ID: u32 = 2;
    pub(crate) const TRACE_STATE: u32 = 3;
    pub(crate) const ATTRIBUTES: u32 = 4;
    pub(crate) const DROPPED_ATTRIBUTES_COUNT: u32 = 5;
    pub(crate) const FLAGS: u32 = 6;
}

/// `Status`.
pub(crate) mod status {
    pub(crate) const MESSAGE: u32 = 2;
    pub(crate) const CODE: u32 = 3;
}

/// `LogRecord`.
pub(crate) mod log_record {
    pub(crate) const TIME_UNIX_NANO: u32 = 1;
    pub(crate) const SEVERITY_NUMBER: u32 = 2;
    pub(crate) const SEVERITY_TEXT: u32 = 3;
    pub(crate) const BODY: u32 = 5;
    pub(crate) const ATTRIBUTES: u32 = 6;
    pub(crate) const DROPPED_ATTRIBUTES_COUNT: u32 = 7;
    pub(crate) const FLAGS: u32 = 8;
    pub(crate) const TRACE_ID: u32 = 9;
    pub(crate) const SPAN_ID: u32 = 10;
    pub(crate) const OBSERVED_TIME_UNIX_NANO: u32 = 11;
    pub(crate) const EVENT_NAME: u32 = 12;
}

/// `KeyValue`.
pub(crate) mod key_value {
    pub(crate) const KEY: u32 = 1;
    pub(crate) const VALUE: u32 = 2;
}

/// `AnyValue`, whose fields are the members of its `value` oneof.
pub(crate) mod any_value {
    pub(crate) const STRING_VALUE: u32 = 1;
    pub(crate) const BOOL_VALUE: u32 = 2;
    pub(crate) const INT_VALUE: u32 = 3;
    pub(crate) const DOUBLE_VALUE: u32 = 4;
    pub(crate) const ARRAY_VALUE: u32 = 5;
    pub(crate) const KVLIST_VALUE: u32 = 6;
    pub(crate) const BYTES_VALUE: u32 = 7;
}

/// `ArrayValue`.
pub(crate) mod array_value {
    pub(crate) const VALUES: u32 = 1;
}

/// `KeyValueList`.
pub(crate) mod key_value_list {
    pub(crate) const VALUES: u32 = 1;
}
