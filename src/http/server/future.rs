//! [`ResponseFuture`]: polls the inner service's future inside the request's context.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use super::body::ResponseBody;
use super::inflight::Inflight;
use crate::exchange::End;

pin_project! {
    /// The response future of [`TracedService`](crate::http::TracedService).
    ///
    /// Each poll attaches the request's OpenTelemetry context, so `tracing` events, OTel log
    /// records and child spans created by the handler belong to the request's trace. When the
    /// response arrives its body is wrapped in a [`ResponseBody`], which carries the span to the
    /// end of the stream. Dropped before completion, it ends the span as cancelled.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        // `None` for skipped requests, and once the response went to the body.
        inflight: Option<Inflight>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, inflight: Option<Inflight>) -> Self {
        ResponseFuture { inner, inflight }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("inflight", &self.inflight)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let guard = this.inflight.as_ref().map(|i| i.cx.clone().attach());
        let result = ready!(this.inner.poll(cx));
        drop(guard);
        let Some(mut inflight) = this.inflight.take() else {
            return Poll::Ready(result.map(|res| res.map(|b| ResponseBody::new(b, None))));
        };
        Poll::Ready(match result {
            Ok(res) => {
                let (mut parts, body) = res.into_parts();
                inflight.on_response(&mut parts);
                let inflight = if body.is_end_stream() {
                    // Nothing to stream (HEAD, 204, empty): the request is over now.
                    inflight.finish(End::Complete);
                    None
                } else {
                    Some(inflight)
                };
                Ok(Response::from_parts(
                    parts,
                    ResponseBody::new(body, inflight),
                ))
            }
            Err(e) => {
                inflight.finish(End::Failed(std::any::type_name::<E>()));
                Err(e)
            }
        })
    }
}
