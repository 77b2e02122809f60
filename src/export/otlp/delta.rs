//! Delta temporality for the metrics bridge: paytrace's own instruments are cumulative
//! Prometheus atomics; with `delta` (or `lowmemory`) each push reports what changed since the
//! previous one, series by series.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Histogram, Sum,
};
use prost::Message as _;

/// The previous cumulative value of each series, and when it was read.
#[derive(Debug, Default)]
pub(crate) struct Deltas {
    /// `lowmemory`: observed (asynchronous) counters stay cumulative.
    low_memory: bool,
    previous: HashMap<Vec<u8>, Previous>,
}

#[derive(Debug, Clone)]
enum Previous {
    Sum {
        at: u64,
        value: f64,
    },
    Histogram {
        at: u64,
        count: u64,
        sum: f64,
        buckets: Vec<u64>,
    },
}

/// A series' identity: metric name and encoded attributes.
fn key(name: &str, attributes: &[KeyValue]) -> Vec<u8> {
    let mut k = name.as_bytes().to_vec();
    k.push(0);
    for a in attributes {
        a.encode(&mut k).unwrap_or_default();
    }
    k
}

impl Deltas {
    pub(crate) fn new(low_memory: bool) -> Self {
        Deltas {
            low_memory,
            previous: HashMap::new(),
        }
    }

    /// Rewrite the monotonic sums and histograms of `request` as deltas since the last call;
    /// a series seen for the first time reports its whole value since the start.
    pub(crate) fn apply(&mut self, request: &mut ExportMetricsServiceRequest) {
        for metric in request
            .resource_metrics
            .iter_mut()
            .flat_map(|r| r.scope_metrics.iter_mut())
            .flat_map(|s| s.metrics.iter_mut())
        {
            // Observed process counters are asynchronous: `lowmemory` keeps them cumulative.
            if self.low_memory && metric.name.starts_with("process.") {
                continue;
            }
            match &mut metric.data {
                Some(metric::Data::Sum(sum)) if sum.is_monotonic => self.sum(&metric.name, sum),
                Some(metric::Data::Histogram(h)) => self.histogram(&metric.name, h),
                _ => {}
            }
        }
    }

    fn sum(&mut self, name: &str, sum: &mut Sum) {
        sum.aggregation_temporality = AggregationTemporality::Delta as i32;
        for p in &mut sum.data_points {
            let Some(number_data_point::Value::AsDouble(v)) = p.value else {
                continue;
            };
            let k = key(name, &p.attributes);
            if let Some(Previous::Sum { at, value }) = self.previous.get(&k) {
                // A smaller value is a reset: the whole value is new.
                let delta = if v >= *value { v - value } else { v };
                p.value = Some(number_data_point::Value::AsDouble(delta));
                p.start_time_unix_nano = *at;
            }
            self.previous.insert(
                k,
                Previous::Sum {
                    at: p.time_unix_nano,
                    value: v,
                },
            );
        }
    }

    fn histogram(&mut self, name: &str, h: &mut Histogram) {
        h.aggregation_temporality = AggregationTemporality::Delta as i32;
        for p in &mut h.data_points {
            let k = key(name, &p.attributes);
            let now = Previous::Histogram {
                at: p.time_unix_nano,
                count: p.count,
                sum: p.sum.unwrap_or(0.0),
                buckets: p.bucket_counts.clone(),
            };
            if let Some(Previous::Histogram {
                at,
                count,
                sum,
                buckets,
            }) = self.previous.get(&k)
            {
                // A smaller count is a reset: the whole value is new.
                if p.count >= *count && buckets.len() == p.bucket_counts.len() {
                    p.count -= count;
                    p.sum = p.sum.map(|s| s - sum);
                    for (b, before) in p.bucket_counts.iter_mut().zip(buckets) {
                        *b = b.saturating_sub(*before);
                    }
                    p.start_time_unix_nano = *at;
                    // Exemplars are of recent requests; they stay.
                }
            }
            self.previous.insert(k, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::{
        HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    };

    fn request(
        counter: f64,
        count: u64,
        buckets: Vec<u64>,
        at: u64,
    ) -> ExportMetricsServiceRequest {
        let sum = Metric {
            name: "order.pool.processed".into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![NumberDataPoint {
                    start_time_unix_nano: 1,
                    time_unix_nano: at,
                    value: Some(number_data_point::Value::AsDouble(counter)),
                    ..Default::default()
                }],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        };
        let histogram = Metric {
            name: "http.server.request.duration".into(),
            data: Some(metric::Data::Histogram(
                opentelemetry_proto::tonic::metrics::v1::Histogram {
                    data_points: vec![HistogramDataPoint {
                        start_time_unix_nano: 1,
                        time_unix_nano: at,
                        count,
                        sum: Some(count as f64),
                        bucket_counts: buckets,
                        explicit_bounds: vec![1.0],
                        ..Default::default()
                    }],
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                },
            )),
            ..Default::default()
        };
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![sum, histogram],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn points(r: &ExportMetricsServiceRequest) -> (f64, u64, u64, Vec<u64>) {
        let m = &r.resource_metrics[0].scope_metrics[0].metrics;
        let Some(metric::Data::Sum(s)) = &m[0].data else {
            panic!()
        };
        let Some(metric::Data::Histogram(h)) = &m[1].data else {
            panic!()
        };
        let Some(number_data_point::Value::AsDouble(v)) = s.data_points[0].value else {
            panic!()
        };
        (
            v,
            s.data_points[0].start_time_unix_nano,
            h.data_points[0].count,
            h.data_points[0].bucket_counts.clone(),
        )
    }

    #[test]
    fn cumulative_becomes_delta() {
        let mut d = Deltas::new(false);
        let mut first = request(5.0, 3, vec![2, 1], 10);
        d.apply(&mut first);
        assert_eq!(
            points(&first),
            (5.0, 1, 3, vec![2, 1]),
            "first push: all since start"
        );
        let mut second = request(8.0, 7, vec![5, 2], 20);
        d.apply(&mut second);
        assert_eq!(
            points(&second),
            (3.0, 10, 4, vec![3, 1]),
            "then what changed"
        );
        let m = &second.resource_metrics[0].scope_metrics[0].metrics[0];
        let Some(metric::Data::Sum(s)) = &m.data else {
            panic!()
        };
        assert_eq!(
            s.aggregation_temporality,
            AggregationTemporality::Delta as i32
        );
        // A reset (a smaller cumulative value) reports the new value whole.
        let mut third = request(2.0, 7, vec![5, 2], 30);
        d.apply(&mut third);
        assert_eq!(points(&third).0, 2.0);
    }
}
