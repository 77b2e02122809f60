//! A hand-written tonic service (prost messages, no code generation) for the gRPC tests, the
//! gRPC benchmark and the demo: `ledger.v1.Ledger` with a unary `Post` and a server-streaming
//! `Watch`, whose behaviour the request chooses.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::body::Body;
use tonic::codegen::tokio_stream::Stream;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

pub const SERVICE: &str = "ledger.v1.Ledger";
pub const POST: &str = "/ledger.v1.Ledger/Post";
pub const WATCH: &str = "/ledger.v1.Ledger/Watch";
/// A method the server does not implement.
pub const REFUND: &str = "/ledger.v1.Ledger/Refund";

#[derive(Clone, PartialEq, prost::Message)]
pub struct PostRequest {
    #[prost(string, tag = "1")]
    pub account: String,
    #[prost(int64, tag = "2")]
    pub amount_cents: i64,
    /// `""` succeeds; `"fail"` fails with INTERNAL (trailers-only); `"deny"` fails with
    /// PERMISSION_DENIED; `"sleep"` sleeps `sleep_ms` first.
    #[prost(string, tag = "3")]
    pub mode: String,
    #[prost(uint64, tag = "4")]
    pub sleep_ms: u64,
    /// Free text the server never reads (the redaction corpus puts card numbers here).
    #[prost(string, tag = "5")]
    pub note: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PostReply {
    #[prost(string, tag = "1")]
    pub entry_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct WatchRequest {
    /// Messages to send.
    #[prost(uint32, tag = "1")]
    pub count: u32,
    /// Pause before each message.
    #[prost(uint64, tag = "2")]
    pub interval_ms: u64,
    /// End with this status code after the messages (0: OK).
    #[prost(int32, tag = "3")]
    pub fail_with: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Entry {
    #[prost(uint32, tag = "1")]
    pub seq: u32,
}

/// The server: route by path, like tonic-generated code.
#[derive(Clone, Default)]
pub struct LedgerServer;

impl tonic::server::NamedService for LedgerServer {
    const NAME: &'static str = SERVICE;
}

async fn handle_post(req: Request<PostRequest>) -> Result<Response<PostReply>, Status> {
    let req = req.into_inner();
    match req.mode.as_str() {
        "fail" => return Err(Status::internal("ledger write failed")),
        "deny" => return Err(Status::permission_denied("account frozen")),
        "sleep" => tokio::time::sleep(Duration::from_millis(req.sleep_ms)).await,
        _ => {}
    }
    Ok(Response::new(PostReply {
        entry_id: format!("e-{}", req.amount_cents),
    }))
}

/// `count` entries `interval_ms` apart, then `fail_with` (or the end of the stream).
struct Ticker {
    req: WatchRequest,
    sent: u32,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    done: bool,
}

impl Stream for Ticker {
    type Item = Result<Entry, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.sent == self.req.count {
            self.done = true;
            return Poll::Ready(match self.req.fail_with {
                0 => None,
                code => Some(Err(Status::new(
                    tonic::Code::from_i32(code),
                    "stream broke",
                ))),
            });
        }
        let interval = Duration::from_millis(self.req.interval_ms);
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(interval)));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.sleep = None;
        self.sent += 1;
        Poll::Ready(Some(Ok(Entry { seq: self.sent })))
    }
}

use std::future::Future as _;

impl Service<http::Request<Body>> for LedgerServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        match req.uri().path() {
            POST => Box::pin(async move {
                let mut grpc =
                    tonic::server::Grpc::new(ProstCodec::<PostReply, PostRequest>::default());
                Ok(grpc.unary(tower::service_fn(handle_post), req).await)
            }),
            WATCH => Box::pin(async move {
                let mut grpc =
                    tonic::server::Grpc::new(ProstCodec::<Entry, WatchRequest>::default());
                let watch = tower::service_fn(|req: Request<WatchRequest>| async move {
                    Ok::<_, Status>(Response::new(Ticker {
                        req: req.into_inner(),
                        sent: 0,
                        sleep: None,
                        done: false,
                    }))
                });
                Ok(grpc.server_streaming(watch, req).await)
            }),
            // What tonic-generated servers answer for a method they do not have.
            _ => Box::pin(async move {
                let mut res = http::Response::new(Body::default());
                let headers = res.headers_mut();
                headers.insert("grpc-status", http::HeaderValue::from_static("12"));
                headers.insert(
                    "content-type",
                    http::HeaderValue::from_static("application/grpc"),
                );
                Ok(res)
            }),
        }
    }
}

/// The client: a thin wrapper over `tonic::client::Grpc`, like tonic-generated code.
#[derive(Clone)]
pub struct LedgerClient<T> {
    inner: tonic::client::Grpc<T>,
}

impl<T> LedgerClient<T>
where
    T: tonic::client::GrpcService<Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: http_body::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    pub fn new(inner: T) -> Self {
        LedgerClient {
            inner: tonic::client::Grpc::new(inner),
        }
    }

    async fn ready(&mut self) -> Result<(), Status> {
        self.inner
            .ready()
            .await
            .map_err(|e| Status::unknown(format!("service was not ready: {}", e.into())))
    }

    pub async fn post(&mut self, req: Request<PostRequest>) -> Result<Response<PostReply>, Status> {
        self.ready().await?;
        let codec = ProstCodec::<PostRequest, PostReply>::default();
        self.inner
            .unary(req, http::uri::PathAndQuery::from_static(POST), codec)
            .await
    }

    /// `Post`'s messages sent to a method the server lacks.
    pub async fn refund(
        &mut self,
        req: Request<PostRequest>,
    ) -> Result<Response<PostReply>, Status> {
        self.ready().await?;
        let codec = ProstCodec::<PostRequest, PostReply>::default();
        self.inner
            .unary(req, http::uri::PathAndQuery::from_static(REFUND), codec)
            .await
    }

    pub async fn watch(
        &mut self,
        req: Request<WatchRequest>,
    ) -> Result<Response<tonic::Streaming<Entry>>, Status> {
        self.ready().await?;
        let codec = ProstCodec::<WatchRequest, Entry>::default();
        self.inner
            .server_streaming(req, http::uri::PathAndQuery::from_static(WATCH), codec)
            .await
    }
}

/// A `Post` request in `mode`.
pub fn post(mode: &str) -> Request<PostRequest> {
    Request::new(PostRequest {
        account: "acct-1".into(),
        amount_cents: 1250,
        mode: mode.into(),
        ..Default::default()
    })
}

/// The six response shapes and the status each call really ends with (gRPC's meaning: a
/// client whose deadline fired ends `DEADLINE_EXCEEDED`, though tonic tells its caller
/// `Cancelled`).
pub const SHAPES: [(&str, &str); 6] = [
    ("unary OK", "OK"),
    ("handler Err (trailers-only)", "INTERNAL"),
    ("stream error after 3 messages", "DATA_LOSS"),
    ("client cancel mid-stream", "CANCELLED"),
    ("client deadline exceeded", "DEADLINE_EXCEEDED"),
    ("unknown method", "UNIMPLEMENTED"),
];

/// One call shape: what the application saw, and the status the call really ended with.
#[derive(Debug)]
pub struct Shape {
    pub name: &'static str,
    pub truth: &'static str,
    pub seen_by_app: String,
}

/// Make the call of shape `name` (one of [`SHAPES`]) and return the code tonic told the caller.
pub async fn run_shape<T>(client: &mut LedgerClient<T>, name: &str) -> String
where
    T: tonic::client::GrpcService<Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: http_body::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let status = match name {
        "unary OK" => client.post(post("")).await.err(),
        "handler Err (trailers-only)" => client.post(post("fail")).await.err(),
        "stream error after 3 messages" => {
            let req = WatchRequest {
                count: 3,
                interval_ms: 5,
                fail_with: 15,
            };
            let mut stream = client.watch(Request::new(req)).await.unwrap().into_inner();
            let mut n = 0;
            loop {
                match stream.message().await {
                    Ok(Some(_)) => n += 1,
                    Ok(None) => break None,
                    Err(status) => {
                        assert_eq!(n, 3, "the error came after three messages");
                        break Some(status);
                    }
                }
            }
        }
        "client cancel mid-stream" => {
            let req = WatchRequest {
                count: 100,
                interval_ms: 20,
                fail_with: 0,
            };
            let mut stream = client.watch(Request::new(req)).await.unwrap().into_inner();
            assert!(stream.message().await.unwrap().is_some());
            drop(stream);
            Some(Status::cancelled("dropped by the caller"))
        }
        "client deadline exceeded" => {
            let mut req = post("sleep");
            req.get_mut().sleep_ms = 2_000;
            req.set_timeout(Duration::from_millis(200));
            client.post(req).await.err()
        }
        "unknown method" => client.refund(post("")).await.err(),
        other => panic!("no shape {other}"),
    };
    status.map_or("OK".to_owned(), |s| format!("{:?}", s.code()))
}

/// Accepted connections, as the stream tonic's `serve_with_incoming` takes: a server on a
/// listener bound to port 0, whose address the caller already knows.
pub struct Incoming(pub tokio::net::TcpListener);

impl Stream for Incoming {
    type Item = std::io::Result<tokio::net::TcpStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0
            .poll_accept(cx)
            .map(|r| Some(r.map(|(stream, _)| stream)))
    }
}
