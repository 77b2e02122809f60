//! [`TraceLayer`]: the server layer and its builder methods.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use http::HeaderName;
use opentelemetry::Key;
use opentelemetry_sdk::trace::Tracer;
use tower_layer::Layer;

use super::metrics::HttpMetrics;
use super::options::{LayerState, Options, DEFAULT_FALLBACK_ROUTE};
use super::service::TracedService;
use crate::exchange::DEFAULT_SLOW_THRESHOLD;
use crate::propagation::Trust;
use crate::redact::Redactor;
use crate::sampling::Thinned;

/// The tower layer that traces and measures every HTTP request of a server: one
/// `SpanKind::Server` span per request (OpenTelemetry HTTP semantic conventions), the RED
/// metrics, a slow-request flag, request ids and W3C context propagation. See the
/// [module docs](crate::http) for the full behaviour, ordering and examples.
///
/// Cheap to clone (one `Arc`); [`Layer::layer`] only clones it. Works on an axum 0.8 `Router`
/// (`Router::layer`) and on any tower/hyper service of `http::Request<B>` →
/// `http::Response<B>`.
///
/// ```
/// use std::time::Duration;
/// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
/// let app: axum::Router = axum::Router::new()
///     .route("/orders/{id}", axum::routing::get(|| async { "ok" }))
///     .layer(telemetry.http_layer().with_slow_threshold(Duration::from_secs(2)));
/// # let _ = app;
/// # Ok::<(), paytrace::Error>(())
/// ```
#[derive(Clone)]
pub struct TraceLayer {
    state: Arc<LayerState>,
}

impl TraceLayer {
    /// A layer recording with `tracer`, without metrics (add them with
    /// [`TraceLayer::with_metrics`]) and with the default [`Redactor`]. For tests with an
    /// in-memory exporter, and for services that build their own tracer provider.
    ///
    /// ```
    /// use opentelemetry::trace::TracerProvider as _;
    /// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    /// let registry = prometheus::Registry::new();
    /// let layer = paytrace::http::TraceLayer::from_tracer(provider.tracer("checkout"))
    ///     .with_metrics(Some(paytrace::http::HttpMetrics::new(&registry)?));
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn from_tracer(tracer: Tracer) -> Self {
        let opts = Options {
            tracer,
            redactor: Redactor::default(),
            metrics: None,
            slow_threshold: DEFAULT_SLOW_THRESHOLD,
            skip: None,
            route: None,
            fallback_route: DEFAULT_FALLBACK_ROUTE,
            request_id: true,
            trace_id_header: None,
            traceresponse: false,
            record_headers: Arc::from(Vec::new()),
            critical_routes: Arc::from(Vec::new()),
            trust: Trust::All,
            thinned: Thinned::default(),
        };
        TraceLayer {
            state: Arc::new(LayerState::new(opts)),
        }
    }

    /// The record of traces the telemetry's tail keep thinned, which no exemplar may name.
    pub(crate) fn with_thinned(self, thinned: Thinned) -> Self {
        self.with(|o| o.thinned = thinned)
    }

    /// Routes whose log records escape log sampling.
    pub(crate) fn with_critical_routes(self, routes: Arc<[String]>) -> Self {
        self.with(|o| o.critical_routes = routes)
    }

    fn with(self, f: impl FnOnce(&mut Options)) -> Self {
        let mut opts = self.state.opts.clone();
        f(&mut opts);
        TraceLayer {
            state: Arc::new(LayerState::new(opts)),
        }
    }

    /// Record the RED metrics into these instruments; `None` records none. Defaults to the
    /// telemetry's instruments with [`TraceLayer::new`], to `None` with
    /// [`TraceLayer::from_tracer`].
    ///
    /// ```
    /// # use opentelemetry::trace::TracerProvider as _;
    /// # let tracer = opentelemetry_sdk::trace::SdkTracerProvider::builder().build().tracer("t");
    /// let layer = paytrace::http::TraceLayer::from_tracer(tracer).with_metrics(None);
    /// # let _ = layer;
    /// ```
    pub fn with_metrics(self, metrics: Option<HttpMetrics>) -> Self {
        self.with(|o| o.metrics = metrics)
    }

    /// The redactor for `url.path`, `url.query`, `user_agent.original` and recorded headers.
    /// Defaults to the telemetry's with [`TraceLayer::new`], else [`Redactor::default`].
    ///
    /// ```
    /// # let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let layer = telemetry.http_layer().with_redactor(paytrace::redact::Redactor::default());
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_redactor(self, redactor: Redactor) -> Self {
        self.with(|o| o.redactor = redactor)
    }

    /// Requests slower than this (until the end of the response body) get `paytrace.slow=true`,
    /// one WARN event (target `paytrace::http`) and a count in
    /// `http_server_slow_requests_total`. Defaults to 5 seconds.
    ///
    /// ```
    /// # let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let layer = telemetry.http_layer().with_slow_threshold(std::time::Duration::from_millis(800));
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_slow_threshold(self, threshold: Duration) -> Self {
        self.with(|o| o.slow_threshold = threshold)
    }

    /// Requests for which `skip` returns `true` pass through untouched: no span, no metrics,
    /// no request id. Replaces the default,
    /// [`is_default_skip_path`](crate::http::is_default_skip_path) on the path
    /// ([`DEFAULT_SKIP_PATHS`](crate::http::DEFAULT_SKIP_PATHS)); `|_| false` traces everything.
    ///
    /// ```
    /// # let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// use paytrace::http::is_default_skip_path;
    /// let layer = telemetry.http_layer().with_skip(|req| {
    ///     is_default_skip_path(req.uri.path()) || req.uri.path().starts_with("/internal/")
    /// });
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_skip<F>(self, skip: F) -> Self
    where
        F: Fn(&Parts) -> bool + Send + Sync + 'static,
    {
        self.with(|o| o.skip = Some(Arc::new(skip)))
    }

    /// A route extractor, asked first; when it returns `None` the layer falls back to axum's
    /// `MatchedPath` (feature `axum`, on by default), then to the fallback route. Use it for
    /// plain hyper services that route themselves. It must return a template (bounded set),
    /// never the raw path: the value becomes a metric label.
    ///
    /// ```
    /// # let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let layer = telemetry.http_layer().with_route(|req| {
    ///     req.uri.path().starts_with("/orders/").then_some("/orders/{id}")
    /// });
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_route<F>(self, route: F) -> Self
    where
        F: Fn(&Parts) -> Option<&str> + Send + Sync + 'static,
    {
        self.with(|o| o.route = Some(Arc::new(route)))
    }

    /// The route recorded (span name, `http.route`, metric label) when no template is known:
    /// unmatched paths (404s), or a layer applied outside axum's routing. Defaults to
    /// [`DEFAULT_FALLBACK_ROUTE`] (`"unmatched"`). Never the raw path, whose ids would explode
    /// metric cardinality.
    ///
    /// ```
    /// # let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let layer = telemetry.http_layer().with_fallback_route("other");
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_fallback_route(self, route: &'static str) -> Self {
        self.with(|o| o.fallback_route = route)
    }

    /// Honour a valid incoming `x-request-id` (bounded length, safe characters) or generate
    /// one (`{trace_id}-{span_id}` of the server span, 49 characters); set it on the request
    /// (so handlers read it), record it as `paytrace.request_id` and return it in the
    /// response's `x-request-id` unless the handler set one. Invalid incoming values are
    /// replaced. Defaults to `true`.
    ///
    /// ```
    /// # let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let layer = telemetry.http_layer().with_request_id(false);
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_request_id(self, enabled: bool) -> Self {
        self.with(|o| o.request_id = enabled)
    }

    /// Return the trace id (32 lower-hex digits) in this response header. Defaults to `None`
    /// (trace ids stay internal).
    ///
    /// ```
    /// # let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let layer = telemetry
    ///     .http_layer()
    ///     .with_trace_id_header(Some(http::HeaderName::from_static("x-trace-id")));
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_trace_id_header(self, header: Option<HeaderName>) -> Self {
        self.with(|o| o.trace_id_header = header)
    }

    /// Return the server span's context in the W3C Trace Context Level 2 `traceresponse`
    /// header: `00-{trace_id}-{span_id}-{flags}`, the span id being the server span's and the
    /// flags `01` when the trace is sampled at the time the response headers are written,
    /// `00` otherwise (a trace that tail keep exports later for an error or a slow end still
    /// says `00`). Lets a caller, a browser or a load-test tool find the server's part of the
    /// trace. A `traceresponse` the handler set itself is replaced. Defaults to `false` (trace
    /// ids stay internal); independent of
    /// [`with_trace_id_header`](Self::with_trace_id_header).
    ///
    /// ```
    /// # let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let layer = telemetry.http_layer().with_traceresponse(true);
    /// // A response then carries e.g.
    /// // traceresponse: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_traceresponse(self, enabled: bool) -> Self {
        self.with(|o| o.traceresponse = enabled)
    }

    /// Whose incoming trace context the layer continues: [`Trust::All`] (the default with
    /// [`TraceLayer::from_tracer`]; with [`TraceLayer::new`], the telemetry's
    /// [`Config::with_trust`](crate::Config::with_trust), itself `All` by default),
    /// [`Trust::None`] for a public endpoint (every request a new root, linked to the context
    /// it sent), [`Trust::peers_in`] or [`Trust::when`]. See [`Trust`].
    ///
    /// ```
    /// # let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// use paytrace::propagation::Trust;
    /// let public_api = telemetry.http_layer().with_trust(Trust::None);
    /// # let _ = public_api;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_trust(self, trust: Trust) -> Self {
        self.with(|o| o.trust = trust)
    }

    /// Request headers to record as `http.request.header.<name>` (string arrays, values
    /// redacted). Sensitive headers ([`Redactor::is_sensitive_header`]: `Authorization`,
    /// `Cookie`, ...) are never recorded, even when listed. Defaults to none.
    ///
    /// ```
    /// # let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let layer = telemetry
    ///     .http_layer()
    ///     .with_request_headers([http::HeaderName::from_static("x-merchant-id")]);
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_request_headers(self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        let redactor = self.state.opts.redactor.clone();
        let list: Vec<(HeaderName, Key)> = headers
            .into_iter()
            .filter(|h| !redactor.is_sensitive_header(h))
            .map(|h| {
                let key = Key::from(Arc::<str>::from(format!(
                    "http.request.header.{}",
                    h.as_str()
                )));
                (h, key)
            })
            .collect();
        self.with(|o| o.record_headers = list.into())
    }
}

impl fmt::Debug for TraceLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.state.opts;
        f.debug_struct("TraceLayer")
            .field("metrics", &o.metrics.is_some())
            .field("slow_threshold", &o.slow_threshold)
            .field(
                "skip",
                &if o.skip.is_some() {
                    "custom"
                } else {
                    "default paths"
                },
            )
            .field(
                "route",
                &if o.route.is_some() {
                    "custom, then MatchedPath"
                } else {
                    "MatchedPath"
                },
            )
            .field("fallback_route", &o.fallback_route)
            .field("request_id", &o.request_id)
            .field("trace_id_header", &o.trace_id_header)
            .field("traceresponse", &o.traceresponse)
            .field("trust", &o.trust)
            .field(
                "record_headers",
                &o.record_headers.iter().map(|(h, _)| h).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = TracedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TracedService::new(inner, self.state.clone())
    }
}
