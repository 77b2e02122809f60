//! The OTLP/HTTP face of the collector (`http/protobuf`): `POST /v1/traces`, `/v1/metrics` and
//! `/v1/logs` with protobuf bodies, gzip or plain, recorded like the gRPC ones and answered as
//! the fault says.

use std::convert::Infallible;
use std::io::Read as _;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use prost::Message;
use tonic::codegen::tokio_stream::StreamExt as _;

use super::connections::Incoming;
use super::record::{ExportRequest, Recording};
use super::server::Response as _;
use super::{
    ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest, Fault,
};

/// Largest request body read, as for gRPC.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Serve OTLP/HTTP on the accepted connections until the task is aborted.
pub(super) async fn serve(mut incoming: Incoming, shared: Arc<Recording>) {
    while let Some(accepted) = incoming.next().await {
        let Ok(connection) = accepted else { continue };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(answer(&shared, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(connection), service)
                .await;
        });
    }
}

async fn answer(shared: &Recording, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let gzip = req
        .headers()
        .get(http::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let response = respond(shared, req, gzip).await;
    // Answered in the request's encoding, as some collectors do unasked.
    let response = if gzip { compressed(response) } else { response };
    response.map(Full::new)
}

async fn respond(
    shared: &Recording,
    req: Request<hyper::body::Incoming>,
    gzip: bool,
) -> Response<Bytes> {
    let (parts, body) = req.into_parts();
    let Ok(body) = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
    else {
        return status(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    };
    let body = if gzip {
        let mut out = Vec::new();
        if flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .is_err()
        {
            return status(StatusCode::BAD_REQUEST, "bad gzip body");
        }
        Bytes::from(out)
    } else {
        body
    };
    let fault = match parts.uri.path() {
        "/v1/traces" => record::<ExportTraceServiceRequest>(shared, &parts, &body),
        "/v1/metrics" => record::<ExportMetricsServiceRequest>(shared, &parts, &body),
        "/v1/logs" => record::<ExportLogsServiceRequest>(shared, &parts, &body),
        _ => return status(StatusCode::NOT_FOUND, "not an OTLP path"),
    };
    let Some(fault) = fault else {
        return status(StatusCode::BAD_REQUEST, "not an OTLP protobuf request");
    };
    match fault {
        Fault::None => {}
        Fault::Refuse => {
            return status(
                StatusCode::SERVICE_UNAVAILABLE,
                "TestCollector: Fault::Refuse",
            )
        }
        Fault::Delay(delay) => tokio::time::sleep(delay).await,
        Fault::Hang => std::future::pending::<()>().await,
        Fault::Reject(code) => {
            let http = match code {
                tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                tonic::Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::BAD_REQUEST,
            };
            return status(http, "TestCollector: Fault::Reject");
        }
        Fault::PartialSuccess(rejected) => {
            // The three responses are the same on the wire: field 1 { rejected, message }.
            let report =
                opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::partial(
                    rejected,
                )
                .encode_to_vec();
            return protobuf(Bytes::from(report));
        }
    }
    // An empty export response: no partial success, everything accepted.
    protobuf(Bytes::new())
}

/// `response` with a gzip-compressed body (an empty body stays empty).
fn compressed(response: Response<Bytes>) -> Response<Bytes> {
    use std::io::Write as _;
    let (mut parts, body) = response.into_parts();
    if body.is_empty() {
        return Response::from_parts(parts, body);
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zipped = encoder
        .write_all(&body)
        .and_then(|()| encoder.finish())
        .unwrap_or_default();
    parts.headers.insert(
        http::header::CONTENT_ENCODING,
        HeaderValue::from_static("gzip"),
    );
    Response::from_parts(parts, Bytes::from(zipped))
}

/// A `200` with a protobuf export response.
fn protobuf(body: Bytes) -> Response<Bytes> {
    let mut res = Response::new(body);
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    res
}

/// Record a decoded request with its headers (the content encoding as `grpc-encoding`, so
/// [`TestCollector::encodings`](super::TestCollector::encodings) reads the same for both
/// protocols); `None` if the body is not the message.
fn record<T: ExportRequest + Message + Default>(
    shared: &Recording,
    parts: &http::request::Parts,
    body: &[u8],
) -> Option<Fault> {
    let message = T::decode(body).ok()?;
    let mut headers = parts.headers.clone();
    if let Some(encoding) = parts.headers.get(http::header::CONTENT_ENCODING) {
        headers.insert("grpc-encoding", encoding.clone());
    }
    let mut request = tonic::Request::new(message);
    *request.metadata_mut() = tonic::metadata::MetadataMap::from_headers(headers);
    Some(shared.record(request))
}

/// An OTLP/HTTP error: `google.rpc.Status` in the body.
fn status(code: StatusCode, message: &str) -> Response<Bytes> {
    let body = crate::export::RpcStatus {
        code: 14,
        message: message.to_owned(),
    }
    .encode_to_vec();
    let mut res = Response::new(Bytes::from(body));
    *res.status_mut() = code;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    res
}
