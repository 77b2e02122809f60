//! [`GrpcLayer`]: the server and client layers and their builder methods.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Authority;
use http::HeaderName;
use opentelemetry::Key;
use opentelemetry_sdk::trace::Tracer;
use rustc_hash::FxHashSet;
use tower_layer::Layer;

use super::call::CallState;
use super::methods::{Methods, DEFAULT_MAX_METHODS};
use super::metrics::GrpcMetrics;
use super::service::Traced;
use super::side::{side, ClientSide, Kind, ServerSide};
use crate::exchange::DEFAULT_SLOW_THRESHOLD;
use crate::propagation::{PropagateTo, Trust};
use crate::redact::Redactor;
use crate::sampling::Thinned;

/// The tower layer for tonic servers (`Server::builder().layer(...)`): one server span and one
/// duration observation per call. See the [module docs](crate::grpc).
pub type ServerLayer = GrpcLayer<ServerSide>;
/// The tower layer for tonic channels (`ServiceBuilder::new().layer(...).service(channel)`):
/// one client span per call, context injected. See the [module docs](crate::grpc).
pub type ClientLayer = GrpcLayer<ClientSide>;

/// A gRPC layer, [`ServerLayer`] or [`ClientLayer`]. Cheap to clone (one `Arc`).
///
/// ```
/// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
/// let server = telemetry
///     .grpc_server_layer()
///     .with_methods(["ledger.v1.Ledger"])
///     .with_slow_threshold(std::time::Duration::from_secs(2));
/// let client = telemetry.grpc_client_layer();
/// # let _ = (server, client);
/// # Ok::<(), paytrace::Error>(())
/// ```
pub struct GrpcLayer<K> {
    opts: Options,
    state: Arc<CallState>,
    kind: PhantomData<K>,
}

#[derive(Clone)]
struct Options {
    tracer: Tracer,
    redactor: Redactor,
    metrics: Option<GrpcMetrics>,
    slow_threshold: Duration,
    registered: Option<FxHashSet<Box<str>>>,
    max_methods: usize,
    metadata: Vec<HeaderName>,
    authority: Option<Authority>,
    trust: Trust,
    propagate_to: PropagateTo,
    thinned: Thinned,
}

impl<K> Clone for GrpcLayer<K> {
    fn clone(&self) -> Self {
        GrpcLayer {
            opts: self.opts.clone(),
            state: self.state.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: Kind> GrpcLayer<K> {
    /// A layer recording with `tracer`, without metrics and with the default [`Redactor`]:
    /// for services that build their own tracer provider, and for tests.
    ///
    /// ```
    /// use opentelemetry::trace::TracerProvider as _;
    /// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    /// let layer = paytrace::grpc::ServerLayer::from_tracer(provider.tracer("ledger"));
    /// # let _ = layer;
    /// ```
    pub fn from_tracer(tracer: Tracer) -> Self {
        Self::build(Options {
            tracer,
            redactor: Redactor::default(),
            metrics: None,
            slow_threshold: DEFAULT_SLOW_THRESHOLD,
            registered: None,
            max_methods: DEFAULT_MAX_METHODS,
            metadata: Vec::new(),
            authority: None,
            trust: Trust::All,
            propagate_to: PropagateTo::All,
            thinned: Thinned::default(),
        })
    }

    fn build(opts: Options) -> Self {
        let redactor = opts.redactor.clone();
        let metadata = opts
            .metadata
            .iter()
            .filter(|h| !redactor.is_sensitive_header(h))
            .map(|h| {
                let key = Key::from(format!("rpc.request.metadata.{}", h.as_str()));
                (h.clone(), key)
            })
            .collect();
        let state = Arc::new(CallState {
            side: side::<K>(),
            tracer: opts.tracer.clone(),
            redactor,
            metrics: opts.metrics.clone(),
            methods: Methods::new(opts.registered.clone(), opts.max_methods),
            slow_threshold: opts.slow_threshold,
            metadata,
            authority: opts.authority.clone(),
            trust: opts.trust.clone(),
            propagate_to: opts.propagate_to.clone(),
            thinned: opts.thinned.clone(),
        });
        GrpcLayer {
            opts,
            state,
            kind: PhantomData,
        }
    }

    fn with(self, f: impl FnOnce(&mut Options)) -> Self {
        let mut opts = self.opts;
        f(&mut opts);
        Self::build(opts)
    }

    /// Record call durations into these instruments; `None` records none. Defaults to the
    /// telemetry's with `Telemetry::grpc_server_layer` and `Telemetry::grpc_client_layer`.
    ///
    /// ```
    /// # use opentelemetry::trace::TracerProvider as _;
    /// # let tracer = opentelemetry_sdk::trace::SdkTracerProvider::builder().build().tracer("t");
    /// let registry = prometheus::Registry::new();
    /// let metrics = paytrace::grpc::GrpcMetrics::new(&registry)?;
    /// let layer = paytrace::grpc::ServerLayer::from_tracer(tracer).with_metrics(Some(metrics));
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_metrics(self, metrics: Option<GrpcMetrics>) -> Self {
        self.with(|o| o.metrics = metrics)
    }

    /// The redactor for recorded metadata, `grpc-message` and `rpc.method_original`.
    ///
    /// ```
    /// # let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let layer = telemetry.grpc_server_layer().with_redactor(paytrace::redact::Redactor::default());
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_redactor(self, redactor: Redactor) -> Self {
        self.with(|o| o.redactor = redactor)
    }

    /// Calls longer than this (until the end of the response stream) get `paytrace.slow=true`,
    /// one WARN event (target `paytrace::grpc`) and a count in `rpc_*_slow_calls_total`.
    /// Defaults to 5 seconds, like the HTTP layer.
    ///
    /// ```
    /// # let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let layer = telemetry.grpc_server_layer().with_slow_threshold(std::time::Duration::from_secs(1));
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_slow_threshold(self, threshold: Duration) -> Self {
        self.with(|o| o.slow_threshold = threshold)
    }

    /// The methods this layer knows: fully qualified methods (`ledger.v1.Ledger/Post`) or whole
    /// services (`ledger.v1.Ledger`, e.g. a tonic server's `NamedService::NAME`). Calls of
    /// anything else are `_OTHER`. Without a list, a method is known once a call of it ended in
    /// anything but `UNIMPLEMENTED`. Either way at most
    /// [`with_max_methods`](Self::with_max_methods) distinct methods are known.
    ///
    /// ```
    /// # let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let layer = telemetry
    ///     .grpc_server_layer()
    ///     .with_methods(["ledger.v1.Ledger", "risk.v1.Risk/Score"]);
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_methods<I, S>(self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let set = methods
            .into_iter()
            .map(|m| Box::from(m.as_ref().trim_start_matches('/')))
            .collect();
        self.with(|o| o.registered = Some(set))
    }

    /// The cap on distinct methods (span names and `rpc_method` label values); calls past it
    /// are `_OTHER`. Defaults to 256.
    ///
    /// ```
    /// # let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let layer = telemetry.grpc_server_layer().with_max_methods(64);
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_max_methods(self, max: usize) -> Self {
        self.with(|o| o.max_methods = max)
    }

    /// Request metadata to record as `rpc.request.metadata.<key>` (string arrays, redacted).
    /// Sensitive keys ([`Redactor::is_sensitive_header`]: `authorization`, `cookie`, API keys,
    /// …) are never recorded, even when listed; message contents never are. Defaults to none.
    ///
    /// ```
    /// # let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let layer = telemetry
    ///     .grpc_server_layer()
    ///     .with_request_metadata([http::HeaderName::from_static("x-merchant-id")]);
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_request_metadata(self, keys: impl IntoIterator<Item = HeaderName>) -> Self {
        let keys = keys.into_iter().collect();
        self.with(|o| o.metadata = keys)
    }

    /// The record of traces the telemetry's tail keep thinned, which no exemplar may name.
    pub(crate) fn with_thinned(self, thinned: Thinned) -> Self {
        self.with(|o| o.thinned = thinned)
    }

    /// Both trust boundaries from the telemetry's settings: the server side reads `trust`,
    /// the client side `propagate_to`.
    pub(crate) fn with_boundaries(self, trust: Trust, propagate_to: PropagateTo) -> Self {
        self.with(|o| {
            o.trust = trust;
            o.propagate_to = propagate_to;
        })
    }
}

impl GrpcLayer<ServerSide> {
    /// Whose incoming trace context the server continues: [`Trust::All`] (the default with
    /// [`from_tracer`](Self::from_tracer); with `Telemetry::grpc_server_layer`, the
    /// telemetry's [`Config::with_trust`](crate::Config::with_trust), itself `All` by
    /// default), [`Trust::None`] (every call a new root, linked to the context it sent),
    /// [`Trust::peers_in`] (tonic's `TcpConnectInfo` peer) or [`Trust::when`]. See [`Trust`].
    ///
    /// ```
    /// # let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// use paytrace::propagation::Trust;
    /// let layer = telemetry.grpc_server_layer().with_trust(Trust::peers_in(["10.0.0.0/8"])?);
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_trust(self, trust: Trust) -> Self {
        self.with(|o| o.trust = trust)
    }
}

impl GrpcLayer<ClientSide> {
    /// `server.address` and `server.port` for requests that carry no authority (tonic clients
    /// built with `new(channel)` send the path only; the channel adds its origin below the
    /// layer). A request's own authority wins.
    ///
    /// ```
    /// # let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let layer = telemetry
    ///     .grpc_client_layer()
    ///     .with_authority(http::uri::Authority::from_static("ledger.internal:50051"));
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_authority(self, authority: Authority) -> Self {
        self.with(|o| o.authority = Some(authority))
    }

    /// Which hosts get the trace context: [`PropagateTo::All`] (the default with
    /// [`from_tracer`](Self::from_tracer); with `Telemetry::grpc_client_layer`, the
    /// telemetry's [`Config::with_propagate_to`](crate::Config::with_propagate_to), itself
    /// `All` by default), [`PropagateTo::None`], [`PropagateTo::hosts`] (matched against the
    /// request's authority, else [`with_authority`](Self::with_authority)'s) or
    /// [`PropagateTo::when`]. A call to any other host carries no context metadata at all;
    /// its span is still recorded. See [`PropagateTo`].
    ///
    /// ```
    /// # let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// use paytrace::propagation::PropagateTo;
    /// let layer = telemetry
    ///     .grpc_client_layer()
    ///     .with_authority(http::uri::Authority::from_static("risk.vendor.example:443"))
    ///     .with_propagation(PropagateTo::hosts([".internal"]));
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_propagation(self, propagate_to: PropagateTo) -> Self {
        self.with(|o| o.propagate_to = propagate_to)
    }
}

impl<K: Kind> fmt::Debug for GrpcLayer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.opts;
        f.debug_struct("GrpcLayer")
            .field("side", &side::<K>())
            .field("metrics", &o.metrics.is_some())
            .field("slow_threshold", &o.slow_threshold)
            .field("registered", &o.registered.as_ref().map(|s| s.len()))
            .field("max_methods", &o.max_methods)
            .field("metadata", &o.metadata)
            .field("authority", &o.authority)
            .field("trust", &o.trust)
            .field("propagate_to", &o.propagate_to)
            .finish()
    }
}

impl<S, K: Kind> Layer<S> for GrpcLayer<K> {
    type Service = Traced<S, K>;

    fn layer(&self, inner: S) -> Self::Service {
        Traced::new(inner, self.state.clone())
    }
}
