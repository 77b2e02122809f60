//! [`GrpcFuture`]: the response future of a traced call; notes the response headers.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use super::body::GrpcBody;
use super::call::Call;
use super::side::Side;
use super::status;
use crate::exchange::End;

pin_project! {
    /// The response future of a traced gRPC call (server or client side). On the server each
    /// poll attaches the call's context, so the handler's logs and spans belong to its trace.
    /// The response body is wrapped in a [`GrpcBody`], which carries the call to the end of the
    /// stream.
    pub struct GrpcFuture<F> {
        #[pin]
        inner: F,
        call: Option<Call>,
    }
}

impl<F> GrpcFuture<F> {
    pub(crate) fn new(inner: F, call: Option<Call>) -> Self {
        GrpcFuture { inner, call }
    }
}

impl<F> fmt::Debug for GrpcFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcFuture")
            .field("call", &self.call)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for GrpcFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
    E: 'static,
{
    type Output = Result<Response<GrpcBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let guard = this
            .call
            .as_ref()
            .filter(|c| c.side() == Side::Server)
            .map(|c| c.cx.clone().attach());
        let result = ready!(this.inner.poll(cx));
        drop(guard);
        let Some(mut call) = this.call.take() else {
            return Poll::Ready(result.map(|res| res.map(|b| GrpcBody::new(b, None))));
        };
        Poll::Ready(match result {
            Ok(res) => {
                call.on_response(&res);
                let call = if res.body().is_end_stream() {
                    call.finish(End::Complete);
                    None
                } else {
                    Some(call)
                };
                Ok(res.map(|b| GrpcBody::new(b, call)))
            }
            Err(e) => {
                call.finish(End::Failed(status::from_error(&e)));
                Err(e)
            }
        })
    }
}
