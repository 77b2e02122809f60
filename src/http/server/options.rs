//! [`LayerState`]: what every stage of the server layer reads, its options and their defaults.

use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use http::HeaderName;
use opentelemetry::Key;
use opentelemetry_sdk::trace::Tracer;

use super::metrics::HttpMetrics;
use super::routes::Routes;
use crate::propagation::Trust;
use crate::redact::Redactor;
use crate::sampling::Thinned;

/// Paths the layer skips by default: health, readiness and metrics endpoints, which would
/// otherwise drown the interesting traffic and cost a span each.
pub const DEFAULT_SKIP_PATHS: &[&str] = &[
    "/health", "/healthz", "/ready", "/readyz", "/livez", "/metrics",
];

/// The route recorded when no route template is known (default of
/// [`TraceLayer::with_fallback_route`](crate::http::TraceLayer::with_fallback_route)).
pub const DEFAULT_FALLBACK_ROUTE: &str = "unmatched";

/// The header that carries the request id, in and out.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The W3C Trace Context Level 2 response header
/// ([`TraceLayer::with_traceresponse`](crate::http::TraceLayer::with_traceresponse)).
pub(crate) const TRACERESPONSE_HEADER: HeaderName = HeaderName::from_static("traceresponse");

type SkipFn = dyn Fn(&Parts) -> bool + Send + Sync;
type RouteFn = dyn Fn(&Parts) -> Option<&str> + Send + Sync;

/// Everything a request needs from its layer, shared by all services the layer made.
pub(crate) struct LayerState {
    pub(crate) opts: Options,
    pub(crate) routes: Routes,
}

/// The builder state; cloned (cheaply) on each setter, which then rebuilds [`LayerState`].
#[derive(Clone)]
pub(crate) struct Options {
    pub(crate) tracer: Tracer,
    pub(crate) redactor: Redactor,
    pub(crate) metrics: Option<HttpMetrics>,
    pub(crate) slow_threshold: Duration,
    pub(crate) skip: Option<Arc<SkipFn>>,
    pub(crate) route: Option<Arc<RouteFn>>,
    pub(crate) fallback_route: &'static str,
    pub(crate) request_id: bool,
    pub(crate) trace_id_header: Option<HeaderName>,
    /// Return the W3C Trace Context Level 2 `traceresponse` header.
    pub(crate) traceresponse: bool,
    pub(crate) record_headers: Arc<[(HeaderName, Key)]>,
    /// Routes whose log records escape log sampling ([`crate::log::LogSampling`]).
    pub(crate) critical_routes: Arc<[String]>,
    /// Whose incoming trace context is continued.
    pub(crate) trust: Trust,
    /// The traces tail keep thinned, which no exemplar may name.
    pub(crate) thinned: Thinned,
}

impl LayerState {
    pub(crate) fn new(opts: Options) -> Self {
        LayerState {
            routes: Routes::new(opts.fallback_route, opts.metrics.clone()),
            opts,
        }
    }

    /// Whether the request gets neither span nor metrics.
    pub(crate) fn skip(&self, parts: &Parts) -> bool {
        match &self.opts.skip {
            Some(f) => f(parts),
            None => is_default_skip_path(parts.uri.path()),
        }
    }

    /// The route template: the hook's, then axum's `MatchedPath`, then none (fallback).
    pub(crate) fn route<'a>(&self, parts: &'a Parts) -> Option<&'a str> {
        if let Some(f) = &self.opts.route {
            if let Some(route) = f(parts) {
                return Some(route);
            }
        }
        matched_path(parts)
    }
}

#[cfg(feature = "axum")]
fn matched_path(parts: &Parts) -> Option<&str> {
    parts
        .extensions
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str())
}

#[cfg(not(feature = "axum"))]
fn matched_path(_: &Parts) -> Option<&str> {
    None
}

/// Whether `path` is one of [`DEFAULT_SKIP_PATHS`].
///
/// ```
/// assert!(paytrace::http::is_default_skip_path("/healthz"));
/// assert!(!paytrace::http::is_default_skip_path("/orders"));
/// ```
pub fn is_default_skip_path(path: &str) -> bool {
    DEFAULT_SKIP_PATHS.contains(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_skip_paths() {
        for p in DEFAULT_SKIP_PATHS {
            assert!(is_default_skip_path(p));
        }
        assert!(!is_default_skip_path("/health/deep"));
        assert!(!is_default_skip_path("/"));
    }
}
