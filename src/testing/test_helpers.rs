//! Fixtures for the unit tests: export requests of each signal, their parts, and a trace client.

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;

use super::{
    any_value, AnyValue, ExportLogsServiceRequest, ExportMetricsServiceRequest,
    ExportTraceServiceRequest, KeyValue, LogRecord, Metric, Span, TestCollector,
};

pub(super) fn string(value: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(value.to_owned())),
    }
}

pub(super) fn kv(key: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(value),
        ..Default::default()
    }
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", string("payments"))],
        ..Default::default()
    })
}

fn scope(name: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.to_owned(),
        ..Default::default()
    })
}

pub(super) fn trace_request(names: &[&str]) -> ExportTraceServiceRequest {
    let spans = names
        .iter()
        .map(|name| Span {
            name: (*name).to_owned(),
            trace_id: (1..=16).collect(),
            span_id: vec![0xab; 8],
            parent_span_id: vec![0x0c; 8],
            attributes: vec![kv("order.id", string("o-1"))],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: scope("checkout"),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub(super) fn log_request(bodies: &[&str]) -> ExportLogsServiceRequest {
    let log_records = bodies
        .iter()
        .map(|body| LogRecord {
            severity_text: "WARN".to_owned(),
            body: Some(string(body)),
            trace_id: vec![0xff; 16],
            span_id: vec![0x01; 8],
            attributes: vec![kv(
                "attempt",
                AnyValue {
                    value: Some(any_value::Value::IntValue(3)),
                },
            )],
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                scope: scope("paytrace.log"),
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub(super) fn number(time: u64, status: &str, value: number_data_point::Value) -> NumberDataPoint {
    NumberDataPoint {
        attributes: vec![kv("status", string(status)), kv("pool", string("orders"))],
        time_unix_nano: time,
        value: Some(value),
        ..Default::default()
    }
}

pub(super) fn metric_request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                scope: scope("paytrace.metrics"),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub(super) fn counter(name: &str, approved: i64) -> Metric {
    Metric {
        name: name.to_owned(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![
                number(10, "approved", number_data_point::Value::AsInt(approved)),
                number(10, "declined", number_data_point::Value::AsInt(2)),
            ],
            is_monotonic: true,
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub(super) async fn trace_client(
    collector: &TestCollector,
    gzip: bool,
) -> TraceServiceClient<Channel> {
    let client = TraceServiceClient::connect(collector.endpoint())
        .await
        .expect("connect to the collector");
    if gzip {
        client.send_compressed(CompressionEncoding::Gzip)
    } else {
        client
    }
}
