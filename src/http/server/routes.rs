//! The route table: per route template and method, the span name and bound metric children.
//!
//! The `prometheus` crate's `with_label_values` hashes the label values and takes a read lock
//! on every call. The layer instead resolves each request's route once in this table (one
//! uncontended read lock and one string hash), and finds there the span name and the bound
//! children: recording is then a few relaxed atomic adds. The table holds at most
//! [`MAX_ROUTES`] routes (later ones share the `_OTHER` route label), so the route label stays
//! bounded.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use prometheus::IntCounter;
use rustc_hash::FxHashMap;

use super::metrics::{HttpMetrics, StatusSeries};
use crate::exchange::intern;
use crate::http::semconv::{span_name_method, METHODS};

/// Routes a layer caches; later distinct routes share the [`OVERFLOW_ROUTE`] label.
pub(crate) const MAX_ROUTES: usize = 1024;
/// The route label of routes beyond [`MAX_ROUTES`].
pub(crate) const OVERFLOW_ROUTE: &str = "_OTHER";

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
            let seconds = outcome.duration.as_secs_f64();
            s.duration.observe(seconds);
            if let (Some((trace, span)), Some(exemplars)) = (outcome.kept, &s.exemplars) {
                exemplars.record(seconds, trace, span);
            }
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
    /// The request's trace and span id when its trace is kept: its duration becomes the
    /// exemplar of its bucket.
    pub(crate) kept: Option<([u8; 16], [u8; 8])>,
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
    /// FxHash: route templates are short and come from the application's code (or a bounded
    /// table), so a DoS-resistant hash buys nothing here.
    map: RwLock<FxHashMap<Box<str>, Arc<RouteEntry>>>,
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
            map: RwLock::new(FxHashMap::default()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Registry;

    #[test]
    fn status_labels() {
        let mut buf = [0u8; 5];
        assert_eq!(status_label(Some(200), &mut buf), "200");
        assert_eq!(status_label(Some(999), &mut buf), "999");
        assert_eq!(status_label(None, &mut buf), "");
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
            kept: None,
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
