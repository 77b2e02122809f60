//! The bridge from paytrace's Prometheus registry to OTLP metrics: one set of instruments, two
//! ways out, the same numbers in both.
//!
//! paytrace's own instruments (order pool, HTTP RED, exporter health, process) are `prometheus`
//! crate atomics — the cheapest possible recording. Every metric interval the registry is
//! gathered and converted: counters become monotonic cumulative sums, gauges gauges, histograms
//! cumulative explicit-bucket histograms (Prometheus buckets are cumulative, OTLP's are per
//! bucket, so counts are differenced). Names and units follow OpenTelemetry conventions through
//! a table; label names map to attribute keys (`http_route` → `http.route`).

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric, number_data_point, AggregationTemporality, Exemplar as ProtoExemplar, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prometheus::proto::{MetricFamily, MetricType};

use crate::exemplars::ExemplarStore;

/// How one Prometheus family is named in OTLP, where the conventions name it differently.
struct Naming {
    prometheus: &'static str,
    otlp: &'static str,
    unit: &'static str,
}

const fn naming(prometheus: &'static str, otlp: &'static str, unit: &'static str) -> Naming {
    Naming {
        prometheus,
        otlp,
        unit,
    }
}

/// The semantic-convention names of the families paytrace registers itself.
#[rustfmt::skip]
const NAMINGS: &[Naming] = &[
    naming("order_pool_processed_total",           "order.pool.processed",               "{order}"),
    naming("order_pool_failed_total",              "order.pool.failed",                  "{order}"),
    naming("order_pool_processing_seconds",        "order.pool.processing.duration",     "s"),
    naming("order_pool_size",                      "order.pool.size",                    "{order}"),
    naming("order_pool_capacity",                  "order.pool.capacity",                "{order}"),
    naming("order_queue_length",                   "order.queue.length",                 "{order}"),
    naming("order_query_seconds",                  "order.query.duration",               "s"),
    naming("order_query_failed_total",             "order.query.failed",                 "{query}"),
    naming("order_redis_errors_total",             "order.redis.errors",                 "{error}"),
    naming("order_channel_concurrency",            "order.channel.concurrency",          "{order}"),
    naming("order_road_concurrency",               "order.road.concurrency",             "{order}"),
    naming("order_face_value_concurrency",         "order.face_value.concurrency",       "{order}"),
    naming("http_server_request_duration_seconds", "http.server.request.duration",       "s"),
    naming("http_server_active_requests",          "http.server.active_requests",        "{request}"),
    naming("http_server_request_body_size_bytes",  "http.server.request.body.size",      "By"),
    naming("http_server_response_body_size_bytes", "http.server.response.body.size",     "By"),
    naming("http_server_slow_requests_total",      "paytrace.http.server.slow_requests", "{request}"),
    naming("rpc_server_call_duration_seconds",     "rpc.server.call.duration",           "s"),
    naming("rpc_client_call_duration_seconds",     "rpc.client.call.duration",           "s"),
    naming("rpc_server_slow_calls_total",          "paytrace.rpc.server.slow_calls",     "{call}"),
    naming("rpc_client_slow_calls_total",          "paytrace.rpc.client.slow_calls",     "{call}"),
    naming("process_cpu_seconds_total",            "process.cpu.time",                   "s"),
    naming("process_resident_memory_bytes",        "process.memory.usage",               "By"),
    naming("process_open_fds",                     "process.open_file_descriptor.count", "{file_descriptor}"),
    naming("process_threads",                      "process.thread.count",               "{thread}"),
];

/// OTLP name and unit of a Prometheus family.
fn identity(prom: &str) -> (String, &'static str) {
    match NAMINGS.iter().find(|n| n.prometheus == prom) {
        Some(n) => (n.otlp.to_owned(), n.unit),
        None => (dotted_name(prom), unit_of(prom)),
    }
}

/// The unit a family's name suffix says.
fn unit_of(prom: &str) -> &'static str {
    if prom.contains("_seconds") {
        "s"
    } else if prom.contains("_bytes") {
        "By"
    } else {
        "1"
    }
}

/// paytrace's own families: `paytrace_{area}_{rest}` → `paytrace.{area}.{rest}`, as OTLP
/// names are dotted namespaces; `_total` is a Prometheus suffix, not part of the name.
fn dotted_name(prom: &str) -> String {
    for prefix in ["paytrace_", "tokio_"] {
        if let Some(rest) = prom.strip_prefix(prefix) {
            let rest = rest.strip_suffix("_total").unwrap_or(rest);
            let namespace = prefix.trim_end_matches('_');
            return match rest.split_once('_') {
                Some((area, name)) if namespace == "paytrace" => {
                    format!("{namespace}.{area}.{name}")
                }
                _ => format!("{namespace}.{rest}"),
            };
        }
    }
    prom.to_owned()
}

/// Attribute key of a Prometheus label.
fn attribute_key(label: &str) -> &str {
    match label {
        "http_request_method" => "http.request.method",
        "http_route" => "http.route",
        "http_response_status_code" => "http.response.status_code",
        "rpc_system_name" => "rpc.system.name",
        "rpc_method" => "rpc.method",
        "rpc_response_status_code" => "rpc.response.status_code",
        other => other,
    }
}

fn attributes(metric: &prometheus::proto::Metric) -> Vec<KeyValue> {
    metric
        .get_label()
        .iter()
        // An empty label value (e.g. no status code: the request was cancelled) is an absent
        // attribute.
        .filter(|l| !l.value().is_empty())
        .map(|l| {
            let key = attribute_key(l.name());
            let value = match (key, l.value().parse::<i64>()) {
                ("http.response.status_code", Ok(code)) => any_value::Value::IntValue(code),
                _ => any_value::Value::StringValue(l.value().to_owned()),
            };
            KeyValue {
                key: key.to_owned(),
                value: Some(AnyValue { value: Some(value) }),
                ..Default::default()
            }
        })
        .collect()
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The cumulative interval every point of a request covers, in Unix nanoseconds.
#[derive(Debug, Clone, Copy)]
struct Interval {
    start: u64,
    now: u64,
}

/// Convert gathered families into one OTLP request.
pub(crate) fn to_request(
    families: &[MetricFamily],
    resource: &Resource,
    start: SystemTime,
    now: SystemTime,
    exemplars: Option<&ExemplarStore>,
) -> ExportMetricsServiceRequest {
    let interval = Interval {
        start: nanos(start),
        now: nanos(now),
    };
    let metrics = families
        .iter()
        .filter(|f| !f.get_metric().is_empty())
        .filter_map(|family| convert(family, interval, exemplars))
        .collect();
    request(resource, metrics)
}

/// One family as an OTLP metric; `None` for summaries and untyped families, which paytrace
/// does not register.
fn convert(
    family: &MetricFamily,
    interval: Interval,
    exemplars: Option<&ExemplarStore>,
) -> Option<Metric> {
    let (name, unit) = identity(family.name());
    let points = family.get_metric();
    let data = match family.get_field_type() {
        MetricType::COUNTER => metric::Data::Sum(Sum {
            data_points: numbers(points, interval, |m| m.get_counter().get_value()),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        }),
        MetricType::GAUGE => metric::Data::Gauge(Gauge {
            data_points: numbers(points, interval, |m| m.get_gauge().get_value()),
        }),
        MetricType::HISTOGRAM => metric::Data::Histogram(Histogram {
            data_points: points
                .iter()
                .map(|m| histogram_point(family.name(), m, interval, exemplars))
                .collect(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
        _ => return None,
    };
    Some(Metric {
        name,
        description: family.help().to_owned(),
        unit: unit.to_owned(),
        data: Some(data),
        ..Default::default()
    })
}

fn numbers(
    points: &[prometheus::proto::Metric],
    interval: Interval,
    value: impl Fn(&prometheus::proto::Metric) -> f64,
) -> Vec<NumberDataPoint> {
    points
        .iter()
        .map(|m| NumberDataPoint {
            attributes: attributes(m),
            start_time_unix_nano: interval.start,
            time_unix_nano: interval.now,
            value: Some(number_data_point::Value::AsDouble(value(m))),
            ..Default::default()
        })
        .collect()
}

fn histogram_point(
    family: &str,
    m: &prometheus::proto::Metric,
    interval: Interval,
    exemplars: Option<&ExemplarStore>,
) -> HistogramDataPoint {
    let h = m.get_histogram();
    let (bounds, counts) = per_bucket(h);
    HistogramDataPoint {
        attributes: attributes(m),
        start_time_unix_nano: interval.start,
        time_unix_nano: interval.now,
        count: h.get_sample_count(),
        sum: Some(h.get_sample_sum()),
        bucket_counts: counts,
        explicit_bounds: bounds,
        exemplars: exemplars
            .and_then(|s| s.lookup(family, m))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| ProtoExemplar {
                time_unix_nano: e.time_nanos,
                span_id: e.span_id.to_vec(),
                trace_id: e.trace_id.to_vec(),
                value: Some(exemplar::Value::AsDouble(e.value)),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Prometheus' cumulative buckets as OTLP's explicit bounds and per-bucket counts, the last
/// count for the bucket above every bound.
fn per_bucket(h: &prometheus::proto::Histogram) -> (Vec<f64>, Vec<u64>) {
    let mut bounds = Vec::with_capacity(h.get_bucket().len());
    let mut counts = Vec::with_capacity(h.get_bucket().len() + 1);
    let mut below = 0;
    for b in h.get_bucket() {
        if b.upper_bound().is_infinite() {
            continue;
        }
        bounds.push(b.upper_bound());
        counts.push(b.cumulative_count().saturating_sub(below));
        below = b.cumulative_count();
    }
    counts.push(h.get_sample_count().saturating_sub(below));
    (bounds, counts)
}

/// The request: one resource, paytrace's scope, every metric.
fn request(resource: &Resource, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource.clone()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: crate::signal::SCOPE_NAME.to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..Default::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

    #[test]
    fn values_agree_with_the_prometheus_side() {
        let registry = Registry::new();
        let counter =
            IntCounterVec::new(Opts::new("order_pool_failed_total", "h"), &["reason"]).unwrap();
        let gauge = IntGauge::new("order_pool_size", "h").unwrap();
        let hist = HistogramVec::new(
            HistogramOpts::new("http_server_request_duration_seconds", "h").buckets(vec![0.1, 1.0]),
            &["http_route", "http_response_status_code"],
        )
        .unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        registry.register(Box::new(gauge.clone())).unwrap();
        registry.register(Box::new(hist.clone())).unwrap();
        counter.with_label_values(&["timeout"]).inc_by(3);
        gauge.set(42);
        let h = hist.with_label_values(&["/orders/{id}", "200"]);
        for v in [0.05, 0.05, 0.5, 3.0] {
            h.observe(v);
        }

        let now = SystemTime::now();
        let request = to_request(&registry.gather(), &Resource::default(), now, now, None);
        let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
        let find = |name: &str| metrics.iter().find(|m| m.name == name).unwrap();

        match find("order.pool.failed").data.as_ref().unwrap() {
            metric::Data::Sum(s) => {
                assert!(s.is_monotonic);
                assert_eq!(
                    s.data_points[0].value,
                    Some(number_data_point::Value::AsDouble(3.0))
                );
                assert_eq!(s.data_points[0].attributes[0].key, "reason");
            }
            other => panic!("{other:?}"),
        }
        match find("order.pool.size").data.as_ref().unwrap() {
            metric::Data::Gauge(g) => assert_eq!(
                g.data_points[0].value,
                Some(number_data_point::Value::AsDouble(42.0))
            ),
            other => panic!("{other:?}"),
        }
        let duration = find("http.server.request.duration");
        assert_eq!(duration.unit, "s");
        match duration.data.as_ref().unwrap() {
            metric::Data::Histogram(hg) => {
                let p = &hg.data_points[0];
                assert_eq!(p.count, 4);
                assert_eq!(p.sum, Some(3.6));
                assert_eq!(p.explicit_bounds, vec![0.1, 1.0]);
                // Prometheus: le=0.1 → 2, le=1 → 3, +Inf → 4; OTLP per bucket: 2, 1, 1.
                assert_eq!(p.bucket_counts, vec![2, 1, 1]);
                let code = p
                    .attributes
                    .iter()
                    .find(|a| a.key == "http.response.status_code")
                    .unwrap();
                assert_eq!(
                    code.value.as_ref().unwrap().value,
                    Some(any_value::Value::IntValue(200))
                );
                assert!(p.attributes.iter().any(|a| a.key == "http.route"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names() {
        assert_eq!(
            identity("paytrace_exporter_items_dropped_total").0,
            "paytrace.exporter.items_dropped"
        );
        assert_eq!(
            identity("custom_latency_seconds"),
            ("custom_latency_seconds".to_owned(), "s")
        );
    }

    /// The Prometheus text exposition of `registry`, parsed back: one entry per sample line,
    /// keyed by the sample name and its labels in order.
    fn exposition(registry: &Registry) -> std::collections::BTreeMap<String, f64> {
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').unwrap();
                let value = match value {
                    "+Inf" => f64::INFINITY,
                    v => v.parse().unwrap(),
                };
                (series.to_owned(), value)
            })
            .collect()
    }

    /// The OTLP request written back as Prometheus samples: names through the inverse of the
    /// name table, attributes back to labels, per-bucket counts re-accumulated.
    fn as_samples(
        request: &ExportMetricsServiceRequest,
        families: &[MetricFamily],
    ) -> std::collections::BTreeMap<String, f64> {
        let prom_name = |otel: &str| {
            families
                .iter()
                .map(|f| f.name())
                .find(|p| identity(p).0 == otel)
                .unwrap()
                .to_owned()
        };
        let labels = |attrs: &[KeyValue], extra: Option<String>| {
            let mut parts: Vec<String> = attrs
                .iter()
                .map(|kv| {
                    let label = kv.key.replace('.', "_");
                    let value = match kv.value.as_ref().unwrap().value.as_ref().unwrap() {
                        any_value::Value::StringValue(v) => v.clone(),
                        any_value::Value::IntValue(v) => v.to_string(),
                        other => panic!("{other:?}"),
                    };
                    format!("{label}=\"{value}\"")
                })
                .collect();
            parts.extend(extra);
            if parts.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", parts.join(","))
            }
        };
        let as_f64 = |v: &Option<number_data_point::Value>| match v {
            Some(number_data_point::Value::AsDouble(d)) => *d,
            other => panic!("{other:?}"),
        };
        let mut out = std::collections::BTreeMap::new();
        for metric in &request.resource_metrics[0].scope_metrics[0].metrics {
            let name = prom_name(&metric.name);
            match metric.data.as_ref().unwrap() {
                metric::Data::Sum(sum) => sum.data_points.iter().for_each(|p| {
                    out.insert(
                        format!("{name}{}", labels(&p.attributes, None)),
                        as_f64(&p.value),
                    );
                }),
                metric::Data::Gauge(g) => g.data_points.iter().for_each(|p| {
                    out.insert(
                        format!("{name}{}", labels(&p.attributes, None)),
                        as_f64(&p.value),
                    );
                }),
                metric::Data::Histogram(h) => {
                    for p in &h.data_points {
                        let mut cumulative = 0;
                        let bounds = p.explicit_bounds.iter().map(|b| b.to_string());
                        for (count, le) in p.bucket_counts.iter().zip(bounds.chain(["+Inf".into()]))
                        {
                            cumulative += count;
                            let le = Some(format!("le=\"{le}\""));
                            out.insert(
                                format!("{name}_bucket{}", labels(&p.attributes, le)),
                                cumulative as f64,
                            );
                        }
                        let plain = labels(&p.attributes, None);
                        out.insert(format!("{name}_sum{plain}"), p.sum.unwrap());
                        out.insert(format!("{name}_count{plain}"), p.count as f64);
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn every_point_matches_the_exposition(
            counts in proptest::collection::vec(0u64..1_000, 3),
            gauge in -1_000i64..1_000,
            observations in proptest::collection::vec((0usize..2, 0.0f64..20.0), 0..40),
        ) {
            let registry = Registry::new();
            let counter = IntCounterVec::new(
                Opts::new("order_pool_failed_total", "h"),
                &["reason"],
            ).unwrap();
            let size = IntGauge::new("order_pool_size", "h").unwrap();
            let hist = HistogramVec::new(
                HistogramOpts::new("http_server_request_duration_seconds", "h")
                    .buckets(vec![0.005, 0.1, 1.0, 5.0]),
                &["http_request_method", "http_route"],
            ).unwrap();
            registry.register(Box::new(counter.clone())).unwrap();
            registry.register(Box::new(size.clone())).unwrap();
            registry.register(Box::new(hist.clone())).unwrap();
            for (reason, n) in ["timeout", "declined", "other"].iter().zip(&counts) {
                counter.with_label_values(&[reason]).inc_by(*n);
            }
            size.set(gauge);
            for (route, value) in &observations {
                hist.with_label_values(&["GET", ["/a", "/b/{id}"][*route]]).observe(*value);
            }

            let families = registry.gather();
            let now = SystemTime::now();
            let request = to_request(&families, &Resource::default(), now, now, None);
            let reference = exposition(&registry);
            let bridged = as_samples(&request, &families);
            proptest::prop_assert_eq!(
                reference.keys().collect::<Vec<_>>(),
                bridged.keys().collect::<Vec<_>>()
            );
            for (series, want) in &reference {
                let got = bridged[series];
                proptest::prop_assert!(
                    (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                    "{series}: exposition {want}, OTLP {got}"
                );
            }
        }
    }
}
