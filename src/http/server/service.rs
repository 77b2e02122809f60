//! [`TracedService`]: the server middleware a [`TraceLayer`](crate::http::TraceLayer) produces.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::body::ResponseBody;
use super::future::ResponseFuture;
use super::inflight::Inflight;
use super::options::LayerState;

/// The service [`TraceLayer`](crate::http::TraceLayer) wraps around an inner service: one server
/// span and the RED metrics per request. Cheap to clone when the inner service is.
///
/// ```
/// use tower_layer::Layer as _;
/// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
/// let inner = tower::service_fn(|_req: http::Request<String>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
/// });
/// let service = telemetry.http_layer().layer(inner);
/// assert!(format!("{service:?}").contains("TracedService"));
/// # Ok::<(), paytrace::Error>(())
/// ```
#[derive(Clone)]
pub struct TracedService<S> {
    inner: S,
    state: Arc<LayerState>,
}

impl<S> TracedService<S> {
    pub(crate) fn new(inner: S, state: Arc<LayerState>) -> Self {
        TracedService { inner, state }
    }

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

impl<S: fmt::Debug> fmt::Debug for TracedService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracedService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for TracedService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        if self.state.skip(&parts) {
            return ResponseFuture::new(self.inner.call(Request::from_parts(parts, body)), None);
        }
        let inflight = Inflight::start(&self.state, &mut parts);
        // Attached during `call` too: services may do work (and log) before returning a future.
        let guard = inflight.cx.clone().attach();
        let future = self.inner.call(Request::from_parts(parts, body));
        drop(guard);
        ResponseFuture::new(future, Some(inflight))
    }
}
