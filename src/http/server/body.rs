//! [`ResponseBody`]: counts the response bytes and ends the span at the end of the stream.

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Buf as _;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::inflight::Inflight;
use crate::exchange::End;

pin_project! {
    /// The response body of [`TracedService`](crate::http::TracedService): the inner body, unchanged,
    /// with the request's span riding along.
    ///
    /// The span ends (and the request's duration stops) when the body reports its end — a
    /// `None` frame, or `is_end_stream()` after a frame — or fails, or is dropped before its
    /// end (then marked cancelled). `size_hint` and `is_end_stream` are the inner body's.
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        inflight: Option<Inflight>,
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(inner: B, inflight: Option<Inflight>) -> Self {
        ResponseBody { inner, inflight }
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("inflight", &self.inflight)
            .finish_non_exhaustive()
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let guard = this.inflight.as_ref().map(|i| i.cx.clone().attach());
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        drop(guard);
        let Some(inflight) = this.inflight.as_mut() else {
            return Poll::Ready(frame);
        };
        match &frame {
            Some(Ok(f)) => {
                if let Some(data) = f.data_ref() {
                    inflight.add_body_bytes(data.remaining());
                }
                if this.inner.is_end_stream() {
                    inflight.finish(End::Complete);
                    *this.inflight = None;
                }
            }
            Some(Err(_)) => {
                inflight.finish(End::Failed(std::any::type_name::<B::Error>()));
                *this.inflight = None;
            }
            None => {
                inflight.finish(End::Complete);
                *this.inflight = None;
            }
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
