//! [`ReceivedMetric`]: a metric as received, and its data points ([`MetricPoint`], [`PointValue`]).

use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, NumberDataPoint};

use super::read::{find_attr, render, render_attributes};
use crate::testing::{KeyValue, Metric};

#[cfg(doc)]
use super::ReceivedSpan;

/// A metric as received, with the attributes of its resource and the name of its
/// instrumentation scope (the meter name).
///
/// The helpers read the metric's data points: [`ReceivedMetric::points`] lists them all, and
/// [`ReceivedMetric::point`], [`ReceivedMetric::sum_value`], [`ReceivedMetric::gauge_value`] and
/// the `histogram_*` helpers pick the newest point whose attributes include a given subset.
///
/// # Example
///
/// ```
/// use paytrace::testing::{proto, Metric, ReceivedMetric};
/// use proto::metrics::v1::{metric::Data, number_data_point::Value, NumberDataPoint, Sum};
///
/// let point = |status: &str, value: i64| NumberDataPoint {
///     attributes: proto::Attributes::from([opentelemetry::KeyValue::new("status", status.to_owned())]).0,
///     value: Some(Value::AsInt(value)),
///     ..Default::default()
/// };
/// let metric = ReceivedMetric {
///     resource: vec![],
///     scope: "paytrace".to_owned(),
///     metric: Metric {
///         name: "payments".into(),
///         data: Some(Data::Sum(Sum {
///             data_points: vec![point("approved", 7), point("declined", 2)],
///             ..Default::default()
///         })),
///         ..Default::default()
///     },
/// };
/// assert_eq!(metric.sum_value(&[("status", "declined")]), Some(2.0));
/// assert_eq!(metric.gauge_value(&[]), None); // a sum, not a gauge
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedMetric {
    /// The attributes of the resource the metric was exported with.
    pub resource: Vec<KeyValue>,
    /// The name of the metric's instrumentation scope (the meter name); empty if it had none.
    pub scope: String,
    /// The metric itself.
    pub metric: Metric,
}

impl ReceivedMetric {
    /// The metric's name.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{Metric, ReceivedMetric};
    /// let metric = ReceivedMetric {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     metric: Metric { name: "orders.pending".into(), ..Default::default() },
    /// };
    /// assert_eq!(metric.name(), "orders.pending");
    /// ```
    pub fn name(&self) -> &str {
        &self.metric.name
    }

    /// Every data point of the metric, in the order the exporter sent them.
    ///
    /// Sums and gauges give [`PointValue::Number`] (integers converted to `f64`), histograms
    /// [`PointValue::Histogram`]. Exponential histograms, summaries and number points without a
    /// value are left out; read those from [`ReceivedMetric::metric`].
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, Metric, MetricPoint, PointValue, ReceivedMetric};
    /// use proto::metrics::v1::{metric::Data, Histogram, HistogramDataPoint};
    ///
    /// let metric = ReceivedMetric {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     metric: Metric {
    ///         name: "payment.duration".into(),
    ///         data: Some(Data::Histogram(Histogram {
    ///             data_points: vec![HistogramDataPoint {
    ///                 count: 3,
    ///                 sum: Some(0.6),
    ///                 explicit_bounds: vec![0.1, 0.5],
    ///                 bucket_counts: vec![1, 1, 1],
    ///                 ..Default::default()
    ///             }],
    ///             ..Default::default()
    ///         })),
    ///         ..Default::default()
    ///     },
    /// };
    /// let expected = MetricPoint {
    ///     attributes: vec![],
    ///     value: PointValue::Histogram {
    ///         count: 3,
    ///         sum: 0.6,
    ///         bounds: vec![0.1, 0.5],
    ///         bucket_counts: vec![1, 1, 1],
    ///     },
    /// };
    /// assert_eq!(metric.points(), [expected]);
    /// ```
    pub fn points(&self) -> Vec<MetricPoint> {
        self.timed_points()
            .into_iter()
            .map(|(_, point)| point)
            .collect()
    }

    /// The newest data point (by timestamp; the last one on a tie) whose attributes include
    /// every `(key, value)` pair of `attrs`, compared as rendered text. `&[]` matches any point.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, Metric, PointValue, ReceivedMetric};
    /// use proto::metrics::v1::{metric::Data, number_data_point::Value, Gauge, NumberDataPoint};
    ///
    /// let point = |time: u64, value: f64| NumberDataPoint {
    ///     attributes: proto::Attributes::from([opentelemetry::KeyValue::new("pool", "orders")]).0,
    ///     time_unix_nano: time,
    ///     value: Some(Value::AsDouble(value)),
    ///     ..Default::default()
    /// };
    /// let metric = ReceivedMetric {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     metric: Metric {
    ///         data: Some(Data::Gauge(Gauge { data_points: vec![point(2, 0.75), point(1, 0.5)] })),
    ///         ..Default::default()
    ///     },
    /// };
    /// let newest = metric.point(&[("pool", "orders")]).unwrap();
    /// assert_eq!(newest.value, PointValue::Number(0.75));
    /// assert!(metric.point(&[("pool", "refunds")]).is_none());
    /// ```
    pub fn point(&self, attrs: &[(&str, &str)]) -> Option<MetricPoint> {
        self.timed_points()
            .into_iter()
            .filter(|(_, point)| point.matches(attrs))
            // `max_by_key` keeps the last of equal maxima: the point sent last wins a tie.
            .max_by_key(|(time, _)| *time)
            .map(|(_, point)| point)
    }

    /// The value of the newest point matching `attrs` (see [`ReceivedMetric::point`]), if this
    /// metric is a sum (a counter or up-down counter).
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, Metric, ReceivedMetric};
    /// use proto::metrics::v1::{metric::Data, number_data_point::Value, NumberDataPoint, Sum};
    ///
    /// let metric = ReceivedMetric {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     metric: Metric {
    ///         data: Some(Data::Sum(Sum {
    ///             data_points: vec![NumberDataPoint {
    ///                 value: Some(Value::AsInt(5)),
    ///                 ..Default::default()
    ///             }],
    ///             ..Default::default()
    ///         })),
    ///         ..Default::default()
    ///     },
    /// };
    /// assert_eq!(metric.sum_value(&[]), Some(5.0));
    /// ```
    pub fn sum_value(&self, attrs: &[(&str, &str)]) -> Option<f64> {
        match self.metric.data {
            Some(metric::Data::Sum(_)) => self.point(attrs)?.value.as_number(),
            _ => None,
        }
    }

    /// The value of the newest point matching `attrs` (see [`ReceivedMetric::point`]), if this
    /// metric is a gauge.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, Metric, ReceivedMetric};
    /// use proto::metrics::v1::{metric::Data, number_data_point::Value, Gauge, NumberDataPoint};
    ///
    /// let metric = ReceivedMetric {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     metric: Metric {
    ///         data: Some(Data::Gauge(Gauge {
    ///             data_points: vec![NumberDataPoint {
    ///                 value: Some(Value::AsDouble(0.25)),
    ///                 ..Default::default()
    ///             }],
    ///         })),
    ///         ..Default::default()
    ///     },
    /// };
    /// assert_eq!(metric.gauge_value(&[]), Some(0.25));
    /// assert_eq!(metric.sum_value(&[]), None);
    /// ```
    pub fn gauge_value(&self, attrs: &[(&str, &str)]) -> Option<f64> {
        match self.metric.data {
            Some(metric::Data::Gauge(_)) => self.point(attrs)?.value.as_number(),
            _ => None,
        }
    }

    /// The count of the newest histogram point matching `attrs` (see [`ReceivedMetric::point`]).
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, Metric, ReceivedMetric};
    /// use proto::metrics::v1::{metric::Data, Histogram, HistogramDataPoint};
    ///
    /// let metric = ReceivedMetric {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     metric: Metric {
    ///         data: Some(Data::Histogram(Histogram {
    ///             data_points: vec![HistogramDataPoint { count: 4, ..Default::default() }],
    ///             ..Default::default()
    ///         })),
    ///         ..Default::default()
    ///     },
    /// };
    /// assert_eq!(metric.histogram_count(&[]), Some(4));
    /// ```
    pub fn histogram_count(&self, attrs: &[(&str, &str)]) -> Option<u64> {
        match self.point(attrs)?.value {
            PointValue::Histogram { count, .. } => Some(count),
            PointValue::Number(_) => None,
        }
    }

    /// The sum of the newest histogram point matching `attrs` (see [`ReceivedMetric::point`]).
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, Metric, ReceivedMetric};
    /// use proto::metrics::v1::{metric::Data, Histogram, HistogramDataPoint};
    ///
    /// let metric = ReceivedMetric {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     metric: Metric {
    ///         data: Some(Data::Histogram(Histogram {
    ///             data_points: vec![HistogramDataPoint { sum: Some(1.5), ..Default::default() }],
    ///             ..Default::default()
    ///         })),
    ///         ..Default::default()
    ///     },
    /// };
    /// assert_eq!(metric.histogram_sum(&[]), Some(1.5));
    /// ```
    pub fn histogram_sum(&self, attrs: &[(&str, &str)]) -> Option<f64> {
        match self.point(attrs)?.value {
            PointValue::Histogram { sum, .. } => Some(sum),
            PointValue::Number(_) => None,
        }
    }

    /// The bucket counts of the newest histogram point matching `attrs` (see
    /// [`ReceivedMetric::point`]); one more than there are bounds.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, Metric, ReceivedMetric};
    /// use proto::metrics::v1::{metric::Data, Histogram, HistogramDataPoint};
    ///
    /// let metric = ReceivedMetric {
    ///     resource: vec![],
    ///     scope: String::new(),
    ///     metric: Metric {
    ///         data: Some(Data::Histogram(Histogram {
    ///             data_points: vec![HistogramDataPoint {
    ///                 explicit_bounds: vec![0.1],
    ///                 bucket_counts: vec![2, 1],
    ///                 ..Default::default()
    ///             }],
    ///             ..Default::default()
    ///         })),
    ///         ..Default::default()
    ///     },
    /// };
    /// assert_eq!(metric.histogram_bucket_counts(&[]), Some(vec![2, 1]));
    /// ```
    pub fn histogram_bucket_counts(&self, attrs: &[(&str, &str)]) -> Option<Vec<u64>> {
        match self.point(attrs)?.value {
            PointValue::Histogram { bucket_counts, .. } => Some(bucket_counts),
            PointValue::Number(_) => None,
        }
    }

    /// The value of the resource attribute `key` rendered as text, like
    /// [`ReceivedSpan::attr_str`].
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{proto, Metric, ReceivedMetric};
    /// let metric = ReceivedMetric {
    ///     resource: proto::Attributes::from([opentelemetry::KeyValue::new("service.name", "pay")]).0,
    ///     scope: String::new(),
    ///     metric: Metric::default(),
    /// };
    /// assert_eq!(metric.resource_attr_str("service.name").as_deref(), Some("pay"));
    /// ```
    pub fn resource_attr_str(&self, key: &str) -> Option<String> {
        find_attr(&self.resource, key).and_then(render)
    }

    /// The supported data points with their `time_unix_nano`.
    fn timed_points(&self) -> Vec<(u64, MetricPoint)> {
        let numbers = |points: &[NumberDataPoint]| -> Vec<(u64, MetricPoint)> {
            points
                .iter()
                .filter_map(|point| {
                    let value = match point.value? {
                        number_data_point::Value::AsDouble(value) => value,
                        // Lossy beyond 2^53, far above what a test counts.
                        number_data_point::Value::AsInt(value) => value as f64,
                    };
                    let point_value = MetricPoint {
                        attributes: render_attributes(&point.attributes),
                        value: PointValue::Number(value),
                    };
                    Some((point.time_unix_nano, point_value))
                })
                .collect()
        };
        match &self.metric.data {
            Some(metric::Data::Sum(sum)) => numbers(&sum.data_points),
            Some(metric::Data::Gauge(gauge)) => numbers(&gauge.data_points),
            Some(metric::Data::Histogram(histogram)) => histogram
                .data_points
                .iter()
                .map(|point| {
                    let value = PointValue::Histogram {
                        count: point.count,
                        sum: point.sum.unwrap_or_default(),
                        bounds: point.explicit_bounds.clone(),
                        bucket_counts: point.bucket_counts.clone(),
                    };
                    let point_value = MetricPoint {
                        attributes: render_attributes(&point.attributes),
                        value,
                    };
                    (point.time_unix_nano, point_value)
                })
                .collect(),
            Some(metric::Data::ExponentialHistogram(_) | metric::Data::Summary(_)) | None => {
                Vec::new()
            }
        }
    }
}

/// One data point of a [`ReceivedMetric`]: its attributes rendered as text, and its value.
///
/// # Example
///
/// ```
/// use paytrace::testing::{MetricPoint, PointValue};
///
/// let point = MetricPoint {
///     attributes: vec![("status".to_owned(), "approved".to_owned())],
///     value: PointValue::Number(7.0),
/// };
/// assert_eq!(point.attr("status"), Some("approved"));
/// assert_eq!(point.value.as_number(), Some(7.0));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// The point's attributes as `(key, value)` pairs, values rendered like
    /// [`ReceivedSpan::attr_str`], in the order the exporter sent them.
    pub attributes: Vec<(String, String)>,
    /// The point's value.
    pub value: PointValue,
}

impl MetricPoint {
    /// The rendered value of the attribute `key`, if the point has it.
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::{MetricPoint, PointValue};
    /// let point = MetricPoint {
    ///     attributes: vec![("method".to_owned(), "card".to_owned())],
    ///     value: PointValue::Number(1.0),
    /// };
    /// assert_eq!(point.attr("method"), Some("card"));
    /// assert_eq!(point.attr("currency"), None);
    /// ```
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn matches(&self, attrs: &[(&str, &str)]) -> bool {
        attrs
            .iter()
            .all(|(key, value)| self.attr(key) == Some(*value))
    }
}

/// The value of a [`MetricPoint`].
///
/// # Example
///
/// ```
/// use paytrace::testing::PointValue;
///
/// let value = PointValue::Histogram { count: 2, sum: 0.3, bounds: vec![0.1], bucket_counts: vec![1, 1] };
/// match value {
///     PointValue::Histogram { count, .. } => assert_eq!(count, 2),
///     _ => unreachable!(),
/// }
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum PointValue {
    /// The value of a sum or gauge point.
    Number(f64),
    /// The aggregate of a histogram point.
    Histogram {
        /// How many values were recorded.
        count: u64,
        /// Their sum; `0.0` when the point carries none.
        sum: f64,
        /// The explicit bucket boundaries.
        bounds: Vec<f64>,
        /// The count of each bucket; one more than there are bounds.
        bucket_counts: Vec<u64>,
    },
}

impl PointValue {
    /// The number, if this is a [`PointValue::Number`].
    ///
    /// # Example
    ///
    /// ```
    /// # use paytrace::testing::PointValue;
    /// assert_eq!(PointValue::Number(3.0).as_number(), Some(3.0));
    /// ```
    pub fn as_number(&self) -> Option<f64> {
        match self {
            PointValue::Number(value) => Some(*value),
            PointValue::Histogram { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::metrics::v1::Sum;

    use super::*;
    use crate::testing::test_helpers::number;

    #[test]
    fn newest_point_wins_ties_by_order() {
        let metric = ReceivedMetric {
            resource: vec![],
            scope: String::new(),
            metric: Metric {
                data: Some(metric::Data::Sum(Sum {
                    data_points: vec![
                        number(5, "approved", number_data_point::Value::AsInt(1)),
                        number(5, "approved", number_data_point::Value::AsInt(2)),
                        number(4, "approved", number_data_point::Value::AsInt(3)),
                    ],
                    ..Default::default()
                })),
                ..Default::default()
            },
        };
        assert_eq!(metric.sum_value(&[]), Some(2.0));
    }
}
