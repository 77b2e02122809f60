//! [`GrpcBody`]: the response stream of a traced call; reads the trailers, ends the call.

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::call::Call;
use super::side::Side;
use super::status;
use crate::exchange::End;

pin_project! {
    /// The response body of a traced gRPC call (server or client side): the inner body,
    /// unchanged, with the call riding along.
    ///
    /// The call ends when the stream does: after the trailers (their `grpc-status` is the
    /// call's status), at the end of a trailers-only response, on a stream error, or when the
    /// body is dropped first (`CANCELLED`, or `DEADLINE_EXCEEDED` once the call's
    /// `grpc-timeout` has passed).
    pub struct GrpcBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
    }
}

impl<B> GrpcBody<B> {
    pub(crate) fn new(inner: B, call: Option<Call>) -> Self {
        GrpcBody { inner, call }
    }
}

impl<B> fmt::Debug for GrpcBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcBody")
            .field("call", &self.call)
            .finish_non_exhaustive()
    }
}

impl<B> Body for GrpcBody<B>
where
    B: Body,
    B::Error: 'static,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let guard = this
            .call
            .as_ref()
            .filter(|c| c.side() == Side::Server)
            .map(|c| c.cx.clone().attach());
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        drop(guard);
        let Some(call) = this.call.as_mut() else {
            return Poll::Ready(frame);
        };
        let end = match &frame {
            Some(Ok(f)) => {
                if let Some(trailers) = f.trailers_ref() {
                    call.on_trailers(trailers);
                }
                this.inner.is_end_stream().then_some(End::Complete)
            }
            Some(Err(e)) => Some(End::Failed(status::from_error(e))),
            None => Some(End::Complete),
        };
        if let Some(end) = end {
            call.finish(end);
            *this.call = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
