//! [`Traced`]: the service a [`GrpcLayer`](super::GrpcLayer) wraps around a tonic server or
//! channel.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::body::GrpcBody;
use super::call::{Call, CallState};
use super::future::GrpcFuture;
use super::side::{ClientSide, ServerSide, Side};
use crate::propagation::{inject_context, strip_context_headers, upstream, Upstream};

/// The service of a [`ServerLayer`](super::ServerLayer) (`Traced<S, ServerSide>`) or a
/// [`ClientLayer`](super::ClientLayer) (`Traced<S, ClientSide>`). Requests that are not gRPC
/// (no `application/grpc` content type) pass through untouched. Cheap to clone when the inner
/// service is.
///
/// ```
/// use tower_layer::Layer as _;
/// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
/// let inner = tower::service_fn(|_req: http::Request<String>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
/// });
/// let service = telemetry.grpc_server_layer().layer(inner);
/// assert!(format!("{service:?}").contains("Traced"));
/// # Ok::<(), paytrace::Error>(())
/// ```
pub struct Traced<S, K> {
    inner: S,
    state: Arc<CallState>,
    kind: PhantomData<K>,
}

/// The service of a [`ServerLayer`](super::ServerLayer).
pub type ServerService<S> = Traced<S, ServerSide>;
/// The service of a [`ClientLayer`](super::ClientLayer).
pub type ClientService<S> = Traced<S, ClientSide>;

impl<S, K> Traced<S, K> {
    pub(crate) fn new(inner: S, state: Arc<CallState>) -> Self {
        Traced {
            inner,
            state,
            kind: PhantomData,
        }
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

impl<S: Clone, K> Clone for Traced<S, K> {
    fn clone(&self) -> Self {
        Traced::new(self.inner.clone(), self.state.clone())
    }
}

impl<S: fmt::Debug, K> fmt::Debug for Traced<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Traced")
            .field("side", &self.state.side)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// Whether a request is gRPC: `application/grpc`, `application/grpc+proto`, ….
fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

impl<S, K, ReqBody, ResBody> Service<Request<ReqBody>> for Traced<S, K>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: 'static,
    ResBody: http_body::Body,
{
    type Response = Response<GrpcBody<ResBody>>;
    type Error = S::Error;
    type Future = GrpcFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if !is_grpc(req.headers()) {
            return GrpcFuture::new(self.inner.call(req), None);
        }
        let (mut parts, body) = req.into_parts();
        let server = self.state.side == Side::Server;
        // The server continues the caller's trace when trusted; the client continues the
        // current one and passes it on to the hosts allowed.
        let Upstream { parent, link } = if server {
            upstream(&self.state.trust, &parts)
        } else {
            Upstream {
                parent: opentelemetry::Context::current(),
                link: None,
            }
        };
        let call = Call::start(&self.state, &parts, &parent, link);
        if !server {
            let state = &*self.state;
            if state
                .propagate_to
                .allows_at(&parts, state.authority.as_ref())
            {
                inject_context(&call.cx, &mut parts.headers);
            } else {
                strip_context_headers(&mut parts.headers);
            }
        }
        // Attached during the server's `call` too: services may do work (and log) before
        // returning a future.
        let guard = server.then(|| call.cx.clone().attach());
        let future = self.inner.call(Request::from_parts(parts, body));
        drop(guard);
        GrpcFuture::new(future, Some(call))
    }
}
