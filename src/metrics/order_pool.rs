//! [`OrderPoolMetrics`]: the order pool's instruments, pre-bound so recording is an atomic add.

use std::sync::Arc;
use std::time::Instant;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use super::Registration;
use crate::error::Error;
use crate::exemplars::{ExemplarStore, SeriesExemplars};

/// Buckets of `order_pool_processing_seconds`, in seconds: 10 ms to 30 s. 5 s is a boundary
/// because the shipped alert fires on p95 above 5 s (the seed's slow-request threshold).
pub const PROCESSING_BUCKETS: &[f64] =
    &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Buckets of `order_query_seconds`, in seconds: supplier queries, 5 ms to 10 s.
pub const QUERY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The label value that unknown reasons, channels, roads and face values fold into.
pub const OTHER: &str = "other";

/// The failure reason recorded when a [`ProcessingTimer`] is dropped without an outcome
/// (an early return or a panic unwinding through the handler).
pub const ABANDONED: &str = "abandoned";

/// Default failure reasons: `abandoned` and `other` are always added.
pub const DEFAULT_FAILURE_REASONS: &[&str] = &[
    "timeout",
    "supplier_error",
    "insufficient_stock",
    "invalid_order",
    "redis_error",
];

/// The order pool's metrics, as Prometheus families (and, through paytrace's bridge, OTLP
/// metrics named per OpenTelemetry conventions, e.g. `order.pool.processing.duration`):
///
/// | Prometheus | kind | labels |
/// |---|---|---|
/// | `order_pool_processed_total` | counter | |
/// | `order_pool_failed_total` | counter | `reason` (declared set + `other`) |
/// | `order_pool_processing_seconds` | histogram (10 ms to 30 s, a bucket at 5 s) | |
/// | `order_pool_size`, `order_pool_capacity`, `order_queue_length` | gauge | |
/// | `order_query_seconds` | histogram (5 ms to 10 s) | |
/// | `order_query_failed_total`, `order_redis_errors_total` | counter | |
/// | `order_channel_concurrency`, `order_road_concurrency`, `order_face_value_concurrency` | gauge | `channel` / `road` / `face_value` (declared sets + `other`) |
///
/// Cheap to clone; every recording is one or two atomic operations on pre-bound instruments.
///
/// ```
/// # fn main() -> Result<(), paytrace::Error> {
/// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
/// let pool = paytrace::metrics::OrderPoolMetrics::builder()
///     .with_channels(["alipay", "wechat"])
///     .build(&telemetry)?;
/// pool.set_capacity(1000);
/// let timer = pool.start_processing();
/// // ... process the order ...
/// timer.success();
/// assert!(telemetry.prometheus_text().contains("order_pool_processed_total 1"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct OrderPoolMetrics {
    inner: Arc<Instruments>,
}

#[derive(Debug)]
struct Instruments {
    processed: IntCounter,
    failed: Bound<IntCounter>,
    processing: Histogram,
    pool_size: IntGauge,
    capacity: IntGauge,
    queue_length: IntGauge,
    query: Histogram,
    query_failed: IntCounter,
    redis_errors: IntCounter,
    channel: Bound<IntGauge>,
    road: Bound<IntGauge>,
    face_value: Bound<IntGauge>,
    /// Exemplars of the two timers, when the telemetry keeps them.
    exemplars: Option<TimerExemplars>,
}

#[derive(Debug)]
struct TimerExemplars {
    processing: Arc<SeriesExemplars>,
    query: Arc<SeriesExemplars>,
}

/// The current trace's ids when it is sampled (exported): what an exemplar may point at.
fn kept_ids() -> Option<([u8; 16], [u8; 8])> {
    opentelemetry::Context::map_current(|cx| {
        use opentelemetry::trace::TraceContextExt as _;
        let span = cx.span();
        let sc = span.span_context();
        sc.is_sampled()
            .then(|| (sc.trace_id().to_bytes(), sc.span_id().to_bytes()))
    })
}

fn record_exemplar(series: &SeriesExemplars, seconds: f64) {
    if let Some((trace, span)) = kept_ids() {
        series.record(seconds, trace, span);
    }
}

/// Children bound once per declared label value, plus `other`.
#[derive(Debug)]
struct Bound<T> {
    values: Vec<(String, T)>,
    other: T,
}

impl<T: Clone> Bound<T> {
    fn new(values: &[String], bind: impl Fn(&str) -> T) -> Self {
        Bound {
            values: values
                .iter()
                .filter(|v| v.as_str() != OTHER)
                .map(|v| (v.clone(), bind(v)))
                .collect(),
            other: bind(OTHER),
        }
    }

    /// The child for `value`; a linear scan over the (small, bounded) declared set.
    fn get(&self, value: &str) -> &T {
        self.values
            .iter()
            .find(|(v, _)| v == value)
            .map_or(&self.other, |(_, t)| t)
    }
}

/// Builder for [`OrderPoolMetrics`]: declares the bounded label sets.
#[derive(Debug, Clone)]
pub struct OrderPoolMetricsBuilder {
    reasons: Vec<String>,
    channels: Vec<String>,
    roads: Vec<String>,
    face_values: Vec<String>,
}

fn strings<I, S>(values: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    values.into_iter().map(|v| v.as_ref().to_owned()).collect()
}

impl OrderPoolMetricsBuilder {
    /// Failure reasons for `order_pool_failed_total{reason}`. Defaults to
    /// [`DEFAULT_FAILURE_REASONS`]; `abandoned` is always added; others fold into `other`.
    pub fn with_failure_reasons<I: IntoIterator<Item = S>, S: AsRef<str>>(
        mut self,
        reasons: I,
    ) -> Self {
        self.reasons = strings(reasons);
        self
    }

    /// Channels for `order_channel_concurrency{channel}`. Defaults to none (all `other`).
    pub fn with_channels<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, channels: I) -> Self {
        self.channels = strings(channels);
        self
    }

    /// Roads for `order_road_concurrency{road}`. Defaults to none (all `other`).
    pub fn with_roads<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, roads: I) -> Self {
        self.roads = strings(roads);
        self
    }

    /// Face values for `order_face_value_concurrency{face_value}`. Defaults to none.
    pub fn with_face_values<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, values: I) -> Self {
        self.face_values = strings(values);
        self
    }

    #[cfg(test)]
    pub(crate) fn register(self, registry: &Registry) -> Result<OrderPoolMetrics, Error> {
        self.register_with(registry, None)
    }

    /// Register, keeping the timers' exemplars in `exemplars` when given.
    pub(crate) fn register_with(
        mut self,
        registry: &Registry,
        exemplars: Option<&ExemplarStore>,
    ) -> Result<OrderPoolMetrics, Error> {
        if !self.reasons.iter().any(|r| r == ABANDONED) {
            self.reasons.push(ABANDONED.to_owned());
        }
        let r = Registrar(Registration::new(registry));
        let labelled = self.labelled(&r)?;
        let instruments = Instruments::register(&r, labelled, exemplars)?;
        r.0.finish();
        Ok(OrderPoolMetrics {
            inner: Arc::new(instruments),
        })
    }

    /// The families with a label, bound to the builder's values.
    fn labelled(&self, r: &Registrar<'_>) -> Result<Labelled, Error> {
        Ok(Labelled {
            failed: r.counters(
                (
                    "order_pool_failed_total",
                    "Orders whose processing failed, by reason.",
                ),
                "reason",
                &self.reasons,
            )?,
            channel: r.gauges(
                (
                    "order_channel_concurrency",
                    "Orders in flight per payment channel.",
                ),
                "channel",
                &self.channels,
            )?,
            road: r.gauges(
                (
                    "order_road_concurrency",
                    "Orders in flight per road (supplier route).",
                ),
                "road",
                &self.roads,
            )?,
            face_value: r.gauges(
                (
                    "order_face_value_concurrency",
                    "Orders in flight per face value.",
                ),
                "face_value",
                &self.face_values,
            )?,
        })
    }
}

/// The labelled instruments, registered before the others.
struct Labelled {
    failed: Bound<IntCounter>,
    channel: Bound<IntGauge>,
    road: Bound<IntGauge>,
    face_value: Bound<IntGauge>,
}

impl Instruments {
    /// The families without a label, registered, with `labelled` and the timers' exemplars.
    fn register(
        r: &Registrar<'_>,
        labelled: Labelled,
        exemplars: Option<&ExemplarStore>,
    ) -> Result<Self, Error> {
        Ok(Instruments {
            exemplars: exemplars.map(TimerExemplars::new),
            processed: r.counter(
                "order_pool_processed_total",
                "Orders processed successfully by the order pool.",
            )?,
            failed: labelled.failed,
            processing: r.histogram(
                "order_pool_processing_seconds",
                "Time to process one order, seconds.",
                PROCESSING_BUCKETS,
            )?,
            pool_size: r.gauge(
                "order_pool_size",
                "Orders currently held by the order pool.",
            )?,
            capacity: r.gauge("order_pool_capacity", "Capacity of the order pool.")?,
            queue_length: r.gauge("order_queue_length", "Orders waiting in the queue.")?,
            query: r.histogram(
                "order_query_seconds",
                "Time of one order query to the supplier, seconds.",
                QUERY_BUCKETS,
            )?,
            query_failed: r.counter("order_query_failed_total", "Order queries that failed.")?,
            redis_errors: r.counter(
                "order_redis_errors_total",
                "Redis errors met by the order pool.",
            )?,
            channel: labelled.channel,
            road: labelled.road,
            face_value: labelled.face_value,
        })
    }
}

impl TimerExemplars {
    fn new(store: &ExemplarStore) -> Self {
        TimerExemplars {
            processing: store.series("order_pool_processing_seconds", &[], PROCESSING_BUCKETS),
            query: store.series("order_query_seconds", &[], QUERY_BUCKETS),
        }
    }
}

/// Creates the order pool's families, registered all or nothing.
struct Registrar<'a>(Registration<'a>);

impl Registrar<'_> {
    fn counter(&self, name: &str, help: &str) -> Result<IntCounter, Error> {
        self.0.add(name, IntCounter::new(name, help))
    }

    fn gauge(&self, name: &str, help: &str) -> Result<IntGauge, Error> {
        self.0.add(name, IntGauge::new(name, help))
    }

    fn histogram(&self, name: &str, help: &str, buckets: &[f64]) -> Result<Histogram, Error> {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        let vec = self.0.add(name, HistogramVec::new(opts, &[]))?;
        Ok(vec.with_label_values::<&str>(&[]))
    }

    /// A counter family with one label, bound to each of `values` and `other`.
    fn counters(
        &self,
        (name, help): (&str, &str),
        label: &str,
        values: &[String],
    ) -> Result<Bound<IntCounter>, Error> {
        let vec = self
            .0
            .add(name, IntCounterVec::new(Opts::new(name, help), &[label]))?;
        Ok(Bound::new(values, |v| vec.with_label_values(&[v])))
    }

    /// A gauge family with one label, bound to each of `values` and `other`.
    fn gauges(
        &self,
        (name, help): (&str, &str),
        label: &str,
        values: &[String],
    ) -> Result<Bound<IntGauge>, Error> {
        let vec = self
            .0
            .add(name, IntGaugeVec::new(Opts::new(name, help), &[label]))?;
        Ok(Bound::new(values, |v| vec.with_label_values(&[v])))
    }
}

impl OrderPoolMetrics {
    /// A builder with the default label sets.
    pub fn builder() -> OrderPoolMetricsBuilder {
        OrderPoolMetricsBuilder {
            reasons: strings(DEFAULT_FAILURE_REASONS),
            channels: Vec::new(),
            roads: Vec::new(),
            face_values: Vec::new(),
        }
    }

    /// Start timing one order; the returned guard records the outcome once.
    pub fn start_processing(&self) -> ProcessingTimer {
        ProcessingTimer {
            metrics: self.clone(),
            start: Instant::now(),
            done: false,
        }
    }

    /// Count one processed order and its processing time.
    pub fn processed(&self, seconds: f64) {
        self.inner.processed.inc();
        self.inner.processing.observe(seconds);
        if let Some(e) = &self.inner.exemplars {
            record_exemplar(&e.processing, seconds);
        }
    }

    /// Count one failed order (unknown reasons fold into `other`) and its processing time.
    pub fn failed(&self, reason: &str, seconds: f64) {
        self.inner.failed.get(reason).inc();
        self.inner.processing.observe(seconds);
        if let Some(e) = &self.inner.exemplars {
            record_exemplar(&e.processing, seconds);
        }
    }

    /// Set `order_pool_size`.
    pub fn set_pool_size(&self, size: i64) {
        self.inner.pool_size.set(size);
    }

    /// Set `order_pool_capacity` (for the "pool near full" alert).
    pub fn set_capacity(&self, capacity: i64) {
        self.inner.capacity.set(capacity);
    }

    /// Set `order_queue_length`.
    pub fn set_queue_length(&self, length: i64) {
        self.inner.queue_length.set(length);
    }

    /// Record one supplier query's duration.
    pub fn observe_query(&self, seconds: f64) {
        self.inner.query.observe(seconds);
        if let Some(e) = &self.inner.exemplars {
            record_exemplar(&e.query, seconds);
        }
    }

    /// Count one failed supplier query.
    pub fn query_failed(&self) {
        self.inner.query_failed.inc();
    }

    /// Count one Redis error.
    pub fn redis_error(&self) {
        self.inner.redis_errors.inc();
    }

    /// Set the orders in flight on a channel (unknown channels fold into `other`).
    pub fn set_channel_concurrency(&self, channel: &str, n: i64) {
        self.inner.channel.get(channel).set(n);
    }

    /// Set the orders in flight on a road.
    pub fn set_road_concurrency(&self, road: &str, n: i64) {
        self.inner.road.get(road).set(n);
    }

    /// Set the orders in flight for a face value.
    pub fn set_face_value_concurrency(&self, face_value: &str, n: i64) {
        self.inner.face_value.get(face_value).set(n);
    }
}

/// Times one order from [`OrderPoolMetrics::start_processing`]: [`success`](Self::success) or
/// [`failure`](Self::failure) records the count and the duration once; dropped without either,
/// it records a failure with reason `abandoned`.
#[derive(Debug)]
#[must_use = "call success() or failure(); dropping the timer records an abandoned order"]
pub struct ProcessingTimer {
    metrics: OrderPoolMetrics,
    start: Instant,
    done: bool,
}

impl ProcessingTimer {
    /// The order was processed.
    pub fn success(mut self) {
        self.done = true;
        self.metrics.processed(self.start.elapsed().as_secs_f64());
    }

    /// The order failed for `reason`.
    pub fn failure(mut self, reason: &str) {
        self.done = true;
        self.metrics
            .failed(reason, self.start.elapsed().as_secs_f64());
    }
}

impl Drop for ProcessingTimer {
    fn drop(&mut self) {
        if !self.done {
            self.metrics
                .failed(ABANDONED, self.start.elapsed().as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(registry: &Registry) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap()
    }

    fn metrics() -> (Registry, OrderPoolMetrics) {
        let registry = Registry::new();
        let m = OrderPoolMetrics::builder()
            .with_failure_reasons(["timeout"])
            .with_channels(["alipay"])
            .register(&registry)
            .unwrap();
        (registry, m)
    }

    #[test]
    fn timer_records_once_for_success_failure_and_drop() {
        let (registry, m) = metrics();
        m.start_processing().success();
        m.start_processing().failure("timeout");
        {
            let _t = m.start_processing();
        }
        let t = text(&registry);
        assert!(t.contains("order_pool_processed_total 1\n"), "{t}");
        assert!(
            t.contains("order_pool_failed_total{reason=\"timeout\"} 1\n"),
            "{t}"
        );
        assert!(
            t.contains("order_pool_failed_total{reason=\"abandoned\"} 1\n"),
            "{t}"
        );
        assert!(t.contains("order_pool_processing_seconds_count 3\n"), "{t}");
    }

    #[test]
    fn unknown_labels_fold_into_other() {
        let (registry, m) = metrics();
        for i in 0..1000 {
            m.failed(&format!("reason-{i}"), 0.1);
            m.set_channel_concurrency(&format!("channel-{i}"), i);
        }
        m.set_channel_concurrency("alipay", 3);
        let t = text(&registry);
        assert!(
            t.contains("order_pool_failed_total{reason=\"other\"} 1000"),
            "{t}"
        );
        assert_eq!(t.matches("order_channel_concurrency{").count(), 2, "{t}");
        assert!(
            t.contains("order_channel_concurrency{channel=\"alipay\"} 3"),
            "{t}"
        );
    }

    #[test]
    fn golden_text() {
        type Record = dyn Fn(&OrderPoolMetrics);
        let cases: &[(&str, &Record, &str)] = &[
            ("size", &|m| m.set_pool_size(7), "order_pool_size 7\n"),
            (
                "capacity",
                &|m| m.set_capacity(100),
                "order_pool_capacity 100\n",
            ),
            (
                "queue",
                &|m| m.set_queue_length(4),
                "order_queue_length 4\n",
            ),
            (
                "query",
                &|m| m.observe_query(0.03),
                "order_query_seconds_bucket{le=\"0.05\"} 1\n",
            ),
            (
                "query failed",
                &|m| m.query_failed(),
                "order_query_failed_total 1\n",
            ),
            (
                "redis",
                &|m| m.redis_error(),
                "order_redis_errors_total 1\n",
            ),
            (
                "processing 5s",
                &|m| m.processed(4.0),
                "order_pool_processing_seconds_bucket{le=\"5\"} 1\n",
            ),
        ];
        for (name, record, want) in cases {
            let (registry, m) = metrics();
            record(&m);
            let t = text(&registry);
            assert!(t.contains(want), "{name}: {t}");
        }
        let (registry, _m) = metrics();
        let t = text(&registry);
        assert!(t.contains("# HELP order_pool_processed_total "), "{t}");
        assert!(
            t.contains("# TYPE order_pool_processing_seconds histogram"),
            "{t}"
        );
    }

    #[test]
    fn registering_twice_is_an_error() {
        let registry = Registry::new();
        OrderPoolMetrics::builder().register(&registry).unwrap();
        assert!(OrderPoolMetrics::builder().register(&registry).is_err());
    }

    #[test]
    fn a_refused_registration_leaves_nothing_behind() {
        let registry = Registry::new();
        let squatter = IntGauge::new("order_queue_length", "Orders waiting in the queue.").unwrap();
        registry.register(Box::new(squatter.clone())).unwrap();
        let err = OrderPoolMetrics::builder().register(&registry).unwrap_err();
        assert!(err.to_string().contains("order_queue_length"), "{err}");
        registry.unregister(Box::new(squatter)).unwrap();
        assert!(registry.gather().is_empty());
        OrderPoolMetrics::builder().register(&registry).unwrap();
    }
}
