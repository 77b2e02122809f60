//! RED metrics of the server layer, and the per-route cache that keeps them (and span names)
//! off the hot path.
//!
//! The `prometheus` crate's `with_label_values` hashes the label values and takes a read lock
//! on every call. The layer instead resolves each request's route once in a small table (one
//! uncontended read lock and one string hash), and finds there the span name and the metric
//! children already bound to their labels: recording is then a few relaxed atomic adds.
//!
//! Cardinality is bounded whatever clients send: methods fold into ten values (nine standard
//! and `_OTHER`), routes are templates (or the fallback) and the table holds at most
//! [`MAX_ROUTES`] of them (later ones share the `_OTHER` route label), status codes are
//! three-digit numbers.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, RwLock};
use std::time::Duration;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use super::semconv::{span_name_method, METHODS};
use crate::Error;

/// Request duration histogram: `http_server_request_duration_seconds`.
pub(crate) const DURATION: &str = "http_server_request_duration_seconds";
/// In-flight requests gauge: `http_server_active_requests`.
pub(crate) const ACTIVE: &str = "http_server_active_requests";
/// Request body size histogram: `http_server_request_body_size_bytes`.
pub(crate) const REQUEST_SIZE: &str = "http_server_request_body_size_bytes";
/// Response body size histogram: `http_server_response_body_size_bytes`.
pub(crate) const RESPONSE_SIZE: &str = "http_server_response_body_size_bytes";
/// Slow request counter: `http_server_slow_requests_total`.
pub(crate) const SLOW: &str = "http_server_slow_requests_total";

const L_METHOD: &str = "http_request_method";
const L_ROUTE: &str = "http_route";
const L_STATUS: &str = "http_response_status_code";

/// The OpenTelemetry HTTP advisory buckets, in seconds.
pub(crate) const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// Body size buckets in bytes: empty, then ×4 steps from 64 B to 16 MiB.
pub(crate) const SIZE_BUCKETS: [f64; 11] = [
    0.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
];

/// Routes a layer caches; later distinct routes share the [`OVERFLOW_ROUTE`] label.
pub(crate) const MAX_ROUTES: usize = 1024;
/// The route label of routes beyond [`MAX_ROUTES`].
pub(crate) const OVERFLOW_ROUTE: &str = "_OTHER";

/// The Prometheus instruments of the HTTP server layer, registered once per registry.
///
/// [`TraceLayer::new`](super::TraceLayer::new) uses the telemetry's registry (created once per
/// [`Telemetry`](crate::Telemetry)); build one yourself only with
/// [`TraceLayer::from_tracer`](super::TraceLayer::from_tracer), and share it between layers
/// that record into the same registry (a second registration of the same names fails).
///
/// Families (the metrics module bridges them to OTLP under the OpenTelemetry names):
/// - `http_server_request_duration_seconds` (histogram, OTel advisory buckets 5 ms … 10 s),
///   labels `http_request_method`, `http_route`, `http_response_status_code`;
/// - `http_server_active_requests` (gauge), label `http_request_method`;
/// - `http_server_request_body_size_bytes`, `http_server_response_body_size_bytes` (histograms,
///   buckets 0, 64 B … 16 MiB in ×4 steps), the same three labels;
/// - `http_server_slow_requests_total` (counter), labels `http_request_method`, `http_route`.
///
/// `http_response_status_code` is empty (absent, to Prometheus) when no response was produced:
/// an inner service error or a cancelled request.
///
/// ```
/// let registry = prometheus::Registry::new();
/// let metrics = paytrace::http::HttpMetrics::new(&registry)?;
/// # let _ = metrics;
/// assert!(paytrace::http::HttpMetrics::new(&registry).is_err(), "names are taken");
/// # Ok::<(), paytrace::Error>(())
/// ```
#[derive(Clone)]
pub struct HttpMetrics {
    inner: Arc<MetricsInner>,
}

struct MetricsInner {
    duration: HistogramVec,
    active: IntGaugeVec,
    request_size: HistogramVec,
    response_size: HistogramVec,
    slow: IntCounterVec,
    active_by_method: [OnceLock<IntGauge>; METHODS.len()],
}

impl std::fmt::Debug for HttpMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpMetrics").finish_non_exhaustive()
    }
}

impl HttpMetrics {
    /// Create the five `http_server_*` families and register them in `registry`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the registry refuses them, typically because they are
    /// registered there already (nothing stays registered then).
    ///
    /// ```
    /// let registry = prometheus::Registry::new();
    /// let metrics = paytrace::http::HttpMetrics::new(&registry)?;
    /// # let _ = metrics;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn new(registry: &Registry) -> Result<Self, Error> {
        let err = |name: &'static str| {
            move |e: prometheus::Error| Error::invalid("prometheus registry", name, e)
        };
        let three = [L_METHOD, L_ROUTE, L_STATUS];
        let duration = HistogramVec::new(
            HistogramOpts::new(
                DURATION,
                "Duration of HTTP server requests, until the response body ended.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &three,
        )
        .map_err(err(DURATION))?;
        let active = IntGaugeVec::new(
            Opts::new(ACTIVE, "Number of active HTTP server requests."),
            &[L_METHOD],
        )
        .map_err(err(ACTIVE))?;
        let request_size = HistogramVec::new(
            HistogramOpts::new(
                REQUEST_SIZE,
                "Size of HTTP server request bodies (from Content-Length).",
            )
            .buckets(SIZE_BUCKETS.to_vec()),
            &three,
        )
        .map_err(err(REQUEST_SIZE))?;
        let response_size = HistogramVec::new(
            HistogramOpts::new(
                RESPONSE_SIZE,
                "Size of HTTP server response bodies, as sent.",
            )
            .buckets(SIZE_BUCKETS.to_vec()),
            &three,
        )
        .map_err(err(RESPONSE_SIZE))?;
        let slow = IntCounterVec::new(
            Opts::new(
                SLOW,
                "HTTP server requests slower than the layer's slow threshold.",
            ),
            &[L_METHOD, L_ROUTE],
        )
        .map_err(err(SLOW))?;

        let all = || -> [(&'static str, Box<dyn prometheus::core::Collector>); 5] {
            [
                (DURATION, Box::new(duration.clone())),
                (ACTIVE, Box::new(active.clone())),
                (REQUEST_SIZE, Box::new(request_size.clone())),
                (RESPONSE_SIZE, Box::new(response_size.clone())),
                (SLOW, Box::new(slow.clone())),
            ]
        };
        for (i, (name, c)) in all().into_iter().enumerate() {
            if let Err(e) = registry.register(c) {
                // All or nothing: a half-registered set would collide on the next attempt.
                for (_, c) in all().into_iter().take(i) {
                    let _ = registry.unregister(c);
                }
                return Err(err(name)(e));
            }
        }
        Ok(HttpMetrics {
            inner: Arc::new(MetricsInner {
                duration,
                active,
                request_size,
                response_size,
                slow,
                active_by_method: Default::default(),
            }),
        })
    }

    /// The in-flight gauge of a method slot.
    pub(crate) fn active(&self, method: usize) -> Option<&IntGauge> {
        let slot = self.inner.active_by_method.get(method)?;
        if let Some(g) = slot.get() {
            return Some(g);
        }
        let g = self
            .inner
            .active
            .get_metric_with_label_values(&[METHODS[method]])
            .ok()?;
        Some(slot.get_or_init(|| g))
    }

    fn series(&self, method: usize, route: &str, status: &str) -> Option<StatusSeries> {
        let labels = [METHODS[method], route, status];
        let i = &self.inner;
        Some(StatusSeries {
            duration: i.duration.get_metric_with_label_values(&labels).ok()?,
            request_size: i.request_size.get_metric_with_label_values(&labels).ok()?,
            response_size: i.response_size.get_metric_with_label_values(&labels).ok()?,
        })
    }

    fn slow(&self, method: usize, route: &str) -> Option<IntCounter> {
        self.inner
            .slow
            .get_metric_with_label_values(&[METHODS[method], route])
            .ok()
    }
}

// === impl Routes ===

/// The three histograms of one (method, route, status) series.
#[derive(Debug)]
struct StatusSeries {
    duration: Histogram,
    request_size: Histogram,
    response_size: Histogram,
}

/// Status codes with a pre-bound slot (lock-free after first use); others go through
/// `with_label_values`. The last slot is "no status" (error or cancelled).
const COMMON_STATUSES: [u16; 19] = [
    200, 201, 202, 204, 301, 302, 304, 400, 401, 403, 404, 405, 409, 422, 429, 500, 502, 503, 504,
];
const NO_STATUS: usize = COMMON_STATUSES.len();

fn status_slot(status: Option<u16>) -> Option<usize> {
    match status {
        None => Some(NO_STATUS),
        Some(code) => COMMON_STATUSES.iter().position(|&c| c == code),
    }
}

/// What the layer knows about one method of one route: its span name and bound metrics.
#[derive(Debug)]
pub(crate) struct MethodEntry {
    pub(crate) span_name: Cow<'static, str>,
    slow: OnceLock<Option<IntCounter>>,
    statuses: [OnceLock<Option<StatusSeries>>; NO_STATUS + 1],
}

/// One route template (or the fallback, or the overflow bucket).
#[derive(Debug)]
pub(crate) struct RouteEntry {
    /// The route as recorded on spans and as metric label.
    pub(crate) route: Cow<'static, str>,
    methods: [OnceLock<MethodEntry>; METHODS.len()],
    metrics: Option<HttpMetrics>,
}

impl RouteEntry {
    fn new(route: Cow<'static, str>, metrics: Option<HttpMetrics>) -> Self {
        RouteEntry {
            route,
            methods: Default::default(),
            metrics,
        }
    }

    /// The entry of a method slot, built on first use.
    pub(crate) fn method(&self, method: usize) -> &MethodEntry {
        let method = method.min(METHODS.len() - 1);
        self.methods[method].get_or_init(|| {
            let name = format!("{} {}", span_name_method(method), self.route);
            MethodEntry {
                span_name: intern(&name).map_or(Cow::Owned(name), Cow::Borrowed),
                slow: OnceLock::new(),
                statuses: Default::default(),
            }
        })
    }

    /// Record one finished request.
    pub(crate) fn record(&self, method: usize, status: Option<u16>, outcome: &Recorded) {
        let Some(metrics) = &self.metrics else { return };
        let entry = self.method(method);
        let record = |s: &StatusSeries| {
            s.duration.observe(outcome.duration.as_secs_f64());
            if let Some(size) = outcome.request_size {
                s.request_size.observe(size as f64);
            }
            if status.is_some() {
                s.response_size.observe(outcome.response_size as f64);
            }
        };
        let mut buf = [0u8; 5];
        let status_label = status_label(status, &mut buf);
        match status_slot(status) {
            Some(slot) => {
                let series = entry.statuses[slot]
                    .get_or_init(|| metrics.series(method, &self.route, status_label));
                if let Some(s) = series {
                    record(s);
                }
            }
            None => {
                if let Some(s) = metrics.series(method, &self.route, status_label) {
                    record(&s);
                }
            }
        }
        if outcome.slow {
            if let Some(c) = entry.slow.get_or_init(|| metrics.slow(method, &self.route)) {
                c.inc();
            }
        }
    }
}

/// The metric-relevant facts of a finished request.
#[derive(Debug)]
pub(crate) struct Recorded {
    pub(crate) duration: Duration,
    pub(crate) request_size: Option<u64>,
    pub(crate) response_size: u64,
    pub(crate) slow: bool,
}

fn status_label(status: Option<u16>, buf: &mut [u8; 5]) -> &str {
    let Some(code) = status else { return "" };
    let mut n = code;
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("")
}

/// A resolved route: the entry (metrics, cached span name) and the names to record.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) entry: Arc<RouteEntry>,
    pub(crate) route: Cow<'static, str>,
    pub(crate) span_name: Cow<'static, str>,
}

/// A layer's route table.
#[derive(Debug)]
pub(crate) struct Routes {
    fallback: Arc<RouteEntry>,
    overflow: Arc<RouteEntry>,
    map: RwLock<HashMap<Box<str>, Arc<RouteEntry>, BuildHasherDefault<Fnv>>>,
    metrics: Option<HttpMetrics>,
}

impl Routes {
    pub(crate) fn new(fallback: &'static str, metrics: Option<HttpMetrics>) -> Self {
        Routes {
            fallback: Arc::new(RouteEntry::new(Cow::Borrowed(fallback), metrics.clone())),
            overflow: Arc::new(RouteEntry::new(
                Cow::Borrowed(OVERFLOW_ROUTE),
                metrics.clone(),
            )),
            map: RwLock::new(HashMap::default()),
            metrics,
        }
    }

    pub(crate) fn metrics(&self) -> Option<&HttpMetrics> {
        self.metrics.as_ref()
    }

    /// The entry of `route` (the fallback when `None`), inserting it on first sight.
    pub(crate) fn resolve(&self, route: Option<&str>, method: usize) -> Resolved {
        let entry = match route {
            None => self.fallback.clone(),
            Some(route) => match self.lookup(route) {
                Some(entry) => entry,
                None => {
                    // Past the bound: the span keeps the real route, metrics share `_OTHER`.
                    let route = route.to_owned();
                    let span_name = format!("{} {}", span_name_method(method), route);
                    return Resolved {
                        entry: self.overflow.clone(),
                        route: Cow::Owned(route),
                        span_name: Cow::Owned(span_name),
                    };
                }
            },
        };
        let span_name = entry.method(method).span_name.clone();
        Resolved {
            route: entry.route.clone(),
            span_name,
            entry,
        }
    }

    fn lookup(&self, route: &str) -> Option<Arc<RouteEntry>> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still valid.
        if let Some(e) = self
            .map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(route)
        {
            return Some(e.clone());
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get(route) {
            return Some(e.clone());
        }
        if map.len() >= MAX_ROUTES {
            return None;
        }
        let name = intern(route).map_or_else(|| Cow::Owned(route.to_owned()), Cow::Borrowed);
        let entry = Arc::new(RouteEntry::new(name, self.metrics.clone()));
        map.insert(route.into(), entry.clone());
        Some(entry)
    }
}

/// FNV-1a: route templates are short, and come from the application's code (or a bounded
/// table), so the DoS resistance of SipHash buys nothing here while costing most of a lookup.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

// === interning ===

/// Strings the whole process interns, at most.
const MAX_INTERNED: usize = 4096;
/// Bytes the whole process interns, at most.
const MAX_INTERNED_BYTES: usize = 256 * 1024;

struct Interner {
    set: HashSet<&'static str>,
    bytes: usize,
}

static INTERNER: LazyLock<Mutex<Interner>> = LazyLock::new(|| {
    Mutex::new(Interner {
        set: HashSet::new(),
        bytes: 0,
    })
});

/// A `'static` copy of `s`, shared process-wide, or `None` once the interner is full.
///
/// Span names must be `Cow<'static, str>`; interning route templates (a finite set written in
/// the application's code) makes every later span name and `http.route` value free. The
/// leak is bounded by [`MAX_INTERNED`] strings and [`MAX_INTERNED_BYTES`]; past it callers
/// fall back to owned strings. Only called when a route is first seen, never per request.
fn intern(s: &str) -> Option<&'static str> {
    let mut i = INTERNER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&found) = i.set.get(s) {
        return Some(found);
    }
    if i.set.len() >= MAX_INTERNED || i.bytes + s.len() > MAX_INTERNED_BYTES {
        return None;
    }
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    i.bytes += s.len();
    i.set.insert(leaked);
    Some(leaked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_labels() {
        let mut buf = [0u8; 5];
        assert_eq!(status_label(Some(200), &mut buf), "200");
        assert_eq!(status_label(Some(999), &mut buf), "999");
        assert_eq!(status_label(None, &mut buf), "");
    }

    #[test]
    fn interning_is_shared() {
        let a = intern("/intern/test/{id}").unwrap();
        let b = intern(&String::from("/intern/test/{id}")).unwrap();
        assert!(std::ptr::eq(a, b));
    }

    #[test]
    fn registration_is_all_or_nothing() {
        let registry = Registry::new();
        // Take one of the names so the set cannot register.
        let squatter = IntCounterVec::new(Opts::new(SLOW, "x"), &["a"]).unwrap();
        registry.register(Box::new(squatter)).unwrap();
        assert!(HttpMetrics::new(&registry).is_err());
        assert_eq!(
            registry.gather().len(),
            0,
            "nothing but the squatter (which has no series)"
        );
        let fresh = Registry::new();
        HttpMetrics::new(&fresh).unwrap();
        assert!(HttpMetrics::new(&fresh).is_err());
    }

    #[test]
    fn routes_are_bounded_and_cached() {
        let registry = Registry::new();
        let metrics = HttpMetrics::new(&registry).unwrap();
        let routes = Routes::new("unmatched", Some(metrics));
        let a = routes.resolve(Some("/a/{id}"), 0);
        let b = routes.resolve(Some("/a/{id}"), 0);
        assert!(Arc::ptr_eq(&a.entry, &b.entry));
        assert_eq!(a.span_name, "GET /a/{id}");
        assert_eq!(routes.resolve(None, 9).span_name, "HTTP unmatched");
        for i in 0..MAX_ROUTES + 10 {
            routes.resolve(Some(&format!("/r{i}")), 0);
        }
        let over = routes.resolve(Some("/beyond"), 2);
        assert_eq!(over.route, "/beyond");
        assert_eq!(over.span_name, "POST /beyond");
        assert_eq!(over.entry.route, OVERFLOW_ROUTE);
        let r = Recorded {
            duration: Duration::from_millis(3),
            request_size: Some(10),
            response_size: 20,
            slow: true,
        };
        over.entry.record(2, Some(201), &r);
        over.entry.record(2, Some(299), &r);
        over.entry.record(2, None, &r);
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap();
        assert!(text.contains(r#"http_server_request_duration_seconds_count{http_request_method="POST",http_response_status_code="201",http_route="_OTHER"} 1"#), "{text}");
        assert!(
            text.contains(r#"http_response_status_code="299""#),
            "{text}"
        );
        assert!(text.contains(r#"http_server_slow_requests_total{http_request_method="POST",http_route="_OTHER"} 3"#), "{text}");
        assert!(!text.contains("/beyond"));
    }
}
