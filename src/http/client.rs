//! [`ClientLayer`]: a client span per outgoing request, and the context injected into its
//! headers.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context as TaskContext, Poll};
use std::time::SystemTime;

use http::{Request, Response, Uri};
use opentelemetry::trace::{SpanBuilder, SpanKind, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::Tracer;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::semconv::*;
use crate::exchange::{split_host_port, Failure, SpanEnd};
use crate::keys::{SERVER_ADDRESS, SERVER_PORT};
use crate::propagation::{inject_context, strip_context_headers, PropagateTo};
use crate::redact::{Redactor, REDACTED};
use crate::util::truncate;

/// The URL template of an outgoing request, set as a request extension: the client span is
/// then named `"{METHOD} {template}"` and gets `url.template`. Without it the span is named
/// after the method alone (semantic conventions: a URL's ids must not reach span names).
///
/// ```
/// let mut req = http::Request::get("http://psp.internal/charges/ch_123").body(()).unwrap();
/// req.extensions_mut().insert(paytrace::http::UrlTemplate("/charges/{id}"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UrlTemplate(pub &'static str);

/// The tower layer for outgoing HTTP calls: one `SpanKind::Client` span per request (child of
/// the current OpenTelemetry context), W3C `traceparent`/`tracestate`/`baggage` injected into
/// the request headers, and the client semantic conventions (`http.request.method`,
/// `server.address`, `server.port`, `url.full` with credentials, sensitive query parameters
/// and card numbers redacted, `http.response.status_code`, `error.type`).
///
/// The span ends when the response headers arrive (or the call fails, or its future is
/// dropped: `paytrace.request.cancelled=true`). A status of 400 or more marks it as an error
/// (client side, per semantic conventions).
///
/// ```
/// # async fn run(telemetry: paytrace::Telemetry) -> Result<(), Box<dyn std::error::Error>> {
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use tower::{Service as _, ServiceBuilder, ServiceExt as _};
///
/// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
/// let mut client = ServiceBuilder::new().layer(telemetry.http_client_layer()).service(client);
/// let req = http::Request::get("http://ledger.internal/balance").body(String::new())?;
/// let res = client.ready().await?.call(req).await?;
/// # let _ = res; Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClientLayer {
    shared: Arc<ClientState>,
}

#[derive(Clone)]
struct ClientState {
    tracer: Tracer,
    redactor: Redactor,
    /// The hosts that get the trace context.
    propagate_to: PropagateTo,
}

impl ClientLayer {
    /// A client layer recording with `tracer` and the default [`Redactor`].
    ///
    /// ```
    /// use opentelemetry::trace::TracerProvider as _;
    /// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    /// let layer = paytrace::http::ClientLayer::from_tracer(provider.tracer("checkout"));
    /// # let _ = layer;
    /// ```
    pub fn from_tracer(tracer: Tracer) -> Self {
        ClientLayer {
            shared: Arc::new(ClientState {
                tracer,
                redactor: Redactor::default(),
                propagate_to: PropagateTo::All,
            }),
        }
    }

    /// The redactor for `url.full`. Defaults to the telemetry's with [`ClientLayer::new`],
    /// else [`Redactor::default`].
    ///
    /// ```
    /// # let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// let layer = telemetry.http_client_layer().with_redactor(paytrace::redact::Redactor::default());
    /// # let _ = layer;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_redactor(self, redactor: Redactor) -> Self {
        self.with(|s| s.redactor = redactor)
    }

    /// Which hosts get the trace context: [`PropagateTo::All`] (the default with
    /// [`ClientLayer::from_tracer`]; with [`ClientLayer::new`], the telemetry's
    /// [`Config::with_propagate_to`](crate::Config::with_propagate_to), itself `All` by
    /// default), [`PropagateTo::None`], [`PropagateTo::hosts`] or [`PropagateTo::when`]. A
    /// request to any other host leaves with no context header at all (those already on it
    /// are removed), and its client span is still recorded. See [`PropagateTo`].
    ///
    /// ```
    /// # let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
    /// use paytrace::propagation::PropagateTo;
    /// let internal = telemetry.http_client_layer().with_propagation(PropagateTo::hosts([".internal"]));
    /// let processor = telemetry.http_client_layer().with_propagation(PropagateTo::None);
    /// # let _ = (internal, processor);
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn with_propagation(self, propagate_to: PropagateTo) -> Self {
        self.with(|s| s.propagate_to = propagate_to)
    }

    fn with(self, f: impl FnOnce(&mut ClientState)) -> Self {
        let mut shared = (*self.shared).clone();
        f(&mut shared);
        ClientLayer {
            shared: Arc::new(shared),
        }
    }
}

impl fmt::Debug for ClientLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientLayer")
            .field("propagate_to", &self.shared.propagate_to)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for ClientLayer {
    type Service = ClientService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`ClientLayer`] wraps around an HTTP client.
///
/// ```
/// use tower_layer::Layer as _;
/// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
/// let inner = tower::service_fn(|_req: http::Request<String>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
/// });
/// let client = telemetry.http_client_layer().layer(inner);
/// assert!(format!("{client:?}").contains("ClientService"));
/// # Ok::<(), paytrace::Error>(())
/// ```
#[derive(Clone)]
pub struct ClientService<S> {
    inner: S,
    shared: Arc<ClientState>,
}

impl<S> ClientService<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwrap the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for ClientService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ClientService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ClientFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        let (mut parts, body) = req.into_parts();
        let method = method_index(&parts.method);
        let template = parts.extensions.get::<UrlTemplate>().copied();
        let name = match template {
            Some(t) => format!("{} {}", span_name_method(method), t.0).into(),
            None => std::borrow::Cow::Borrowed(span_name_method(method)),
        };
        let mut attrs = Vec::with_capacity(10);
        attrs.push(KeyValue::new(HTTP_REQUEST_METHOD, METHODS[method]));
        if method == OTHER {
            attrs.push(KeyValue::new(
                HTTP_REQUEST_METHOD_ORIGINAL,
                shared
                    .redactor
                    .mask_pan(method_original(&parts.method))
                    .into_owned(),
            ));
        }
        let uri = &parts.uri;
        let scheme = uri.scheme_str().unwrap_or("http");
        if let Some((host, port)) = uri.authority().and_then(|a| split_host_port(a.as_str())) {
            attrs.push(KeyValue::new(
                SERVER_ADDRESS,
                shared.redactor.mask_pan(host).into_owned(),
            ));
            if let Some(port) = port.or_else(|| default_port(scheme)) {
                attrs.push(KeyValue::new(SERVER_PORT, i64::from(port)));
            }
        }
        if let Some(full) = redacted_url(uri, &shared.redactor) {
            attrs.push(KeyValue::new(URL_FULL, full));
        }
        if let Some(t) = template {
            attrs.push(KeyValue::new(URL_TEMPLATE, t.0));
        }
        if let Some(v) = protocol_version(parts.version) {
            attrs.push(KeyValue::new(NETWORK_PROTOCOL_VERSION, v));
        }
        let mut builder = SpanBuilder::from_name(name).with_kind(SpanKind::Client);
        builder.attributes = Some(attrs);
        let parent = Context::current();
        let span = shared.tracer.build_with_context(builder, &parent);
        let cx = crate::propagation::mark_random(&parent, parent.with_span(span));
        if shared.propagate_to.allows(&parts) {
            inject_context(&cx, &mut parts.headers);
        } else {
            strip_context_headers(&mut parts.headers);
        }
        let guard = cx.clone().attach();
        let inner = self.inner.call(Request::from_parts(parts, body));
        drop(guard);
        ClientFuture {
            inner,
            state: Some(ClientInflight { cx, done: false }),
        }
    }
}

/// `url.full` for a client span: `scheme://host[:port]/path?query` with userinfo replaced by
/// `REDACTED:REDACTED`, card numbers masked and sensitive query values redacted. `None` for a
/// relative URI.
fn redacted_url(uri: &Uri, redactor: &Redactor) -> Option<String> {
    let scheme = uri.scheme_str()?;
    let authority = uri.authority()?.as_str();
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((_, host)) => (true, host),
        None => (false, authority),
    };
    let path = redactor.mask_pan(uri.path());
    let query = uri.query().map(|q| redactor.redact_query(q));
    let mut out = String::with_capacity(scheme.len() + authority.len() + path.len() + 40);
    out.push_str(scheme);
    out.push_str("://");
    if userinfo {
        out.push_str(REDACTED);
        out.push(':');
        out.push_str(REDACTED);
        out.push('@');
    }
    out.push_str(&redactor.mask_pan(host));
    out.push_str(&path);
    if let Some(q) = query {
        out.push('?');
        out.push_str(&q);
    }
    Some(truncate(&out, 4096).to_owned())
}

struct ClientInflight {
    cx: Context,
    done: bool,
}

impl ClientInflight {
    fn end(
        &mut self,
        status: Option<u16>,
        error: Option<opentelemetry::StringValue>,
        cancelled: bool,
    ) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let span_end = SpanEnd {
            failure: error.map(|error_type| Failure {
                error_type,
                description: "".into(),
            }),
            slow: false,
            cancelled,
            local_root: false,
            at: SystemTime::now(),
            exemplar: None,
        };
        let status_code =
            status.map(|code| KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(code)));
        span_end.end(&self.cx.span(), [status_code]);
    }
}

impl fmt::Debug for ClientInflight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientInflight")
            .field("span", self.cx.span().span_context())
            .finish()
    }
}

impl Drop for ClientInflight {
    fn drop(&mut self) {
        // A no-op when `poll` ended the span; otherwise the future was dropped in flight
        // (or is being unwound by a panic).
        if std::thread::panicking() {
            self.end(None, Some(PANIC_ERROR.into()), false);
        } else {
            self.end(None, Some(CANCELLED_ERROR.into()), true);
        }
    }
}

pin_project! {
    /// The response future of [`ClientService`]: ends the client span when the response
    /// headers arrive, the call fails, or the future is dropped.
    pub struct ClientFuture<F> {
        #[pin]
        inner: F,
        state: Option<ClientInflight>,
    }
}

impl<F> fmt::Debug for ClientFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientFuture")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ClientFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let guard = this.state.as_ref().map(|s| s.cx.clone().attach());
        let result = ready!(this.inner.poll(cx));
        drop(guard);
        if let Some(mut state) = this.state.take() {
            match &result {
                Ok(res) => {
                    let code = res.status().as_u16();
                    let error = (code >= 400).then(|| status_error_type(code));
                    state.end(Some(code), error, false);
                }
                Err(_) => state.end(None, Some(std::any::type_name::<E>().into()), false),
            }
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_full_is_redacted() {
        let r = Redactor::default();
        let uri: Uri = "https://user:pw@psp.example:8443/cards/4111111111111111?token=abc&amount=5"
            .parse()
            .unwrap();
        let full = redacted_url(&uri, &r).unwrap();
        assert!(
            full.starts_with("https://REDACTED:REDACTED@psp.example:8443/cards/"),
            "{full}"
        );
        assert!(!full.contains("4111111111111111"), "{full}");
        assert!(!full.contains("abc"), "{full}");
        assert!(!full.contains("pw"), "{full}");
        assert!(full.ends_with("amount=5"), "{full}");
        assert_eq!(redacted_url(&"/relative".parse().unwrap(), &r), None);
    }
}
