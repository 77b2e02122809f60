//! Attribute keys and value helpers shared by the server and client layers: static keys, the
//! bounded method set, protocol versions and a few header parsers.

use std::borrow::Cow;

use crate::util::truncate;
use http::{HeaderMap, Method, Version};
use opentelemetry::{Key, StringValue};
use opentelemetry_semantic_conventions::attribute as sc;

// Static keys: building a `Key` from a `&'static str` neither allocates nor counts references.
pub(crate) const HTTP_REQUEST_METHOD: Key = Key::from_static_str(sc::HTTP_REQUEST_METHOD);
pub(crate) const HTTP_REQUEST_METHOD_ORIGINAL: Key =
    Key::from_static_str(sc::HTTP_REQUEST_METHOD_ORIGINAL);
pub(crate) const URL_SCHEME: Key = Key::from_static_str(sc::URL_SCHEME);
pub(crate) const URL_PATH: Key = Key::from_static_str(sc::URL_PATH);
pub(crate) const URL_QUERY: Key = Key::from_static_str(sc::URL_QUERY);
pub(crate) const URL_FULL: Key = Key::from_static_str(sc::URL_FULL);
pub(crate) const URL_TEMPLATE: Key = Key::from_static_str(sc::URL_TEMPLATE);
pub(crate) const HTTP_ROUTE: Key = Key::from_static_str(sc::HTTP_ROUTE);
pub(crate) const HTTP_RESPONSE_STATUS_CODE: Key =
    Key::from_static_str(sc::HTTP_RESPONSE_STATUS_CODE);
pub(crate) const CLIENT_ADDRESS: Key = Key::from_static_str(sc::CLIENT_ADDRESS);
pub(crate) const USER_AGENT_ORIGINAL: Key = Key::from_static_str(sc::USER_AGENT_ORIGINAL);
pub(crate) const NETWORK_PROTOCOL_VERSION: Key = Key::from_static_str(sc::NETWORK_PROTOCOL_VERSION);
pub(crate) const HTTP_REQUEST_BODY_SIZE: Key = Key::from_static_str(sc::HTTP_REQUEST_BODY_SIZE);
pub(crate) const HTTP_RESPONSE_BODY_SIZE: Key = Key::from_static_str(sc::HTTP_RESPONSE_BODY_SIZE);

/// The `error.type` of a request whose future or body was dropped before it completed.
pub(crate) const CANCELLED_ERROR: &str = "cancelled";
/// The `error.type` of a request whose handler (or client call) panicked.
pub(crate) const PANIC_ERROR: &str = "panic";

/// The methods the HTTP semantic conventions know, then `_OTHER`: the index is the method's
/// slot in every per-method table, so their number bounds the `http_request_method` label.
pub(crate) const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "_OTHER",
];
/// Index of `_OTHER` in [`METHODS`].
pub(crate) const OTHER: usize = 9;

/// The slot of `method` in [`METHODS`].
pub(crate) fn method_index(method: &Method) -> usize {
    match method.as_str() {
        "GET" => 0,
        "HEAD" => 1,
        "POST" => 2,
        "PUT" => 3,
        "DELETE" => 4,
        "CONNECT" => 5,
        "OPTIONS" => 6,
        "TRACE" => 7,
        "PATCH" => 8,
        _ => OTHER,
    }
}

/// The first word of a span name: the method, or `HTTP` for a non-standard one (semconv).
pub(crate) fn span_name_method(index: usize) -> &'static str {
    if index == OTHER {
        "HTTP"
    } else {
        METHODS[index]
    }
}

/// The original spelling of a non-standard method, bounded: methods are tokens, but a hostile
/// client may send a long one.
pub(crate) fn method_original(method: &Method) -> &str {
    truncate(method.as_str(), 32)
}

/// `network.protocol.version` for a request's version.
pub(crate) fn protocol_version(version: Version) -> Option<&'static str> {
    Some(match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => return None,
    })
}

/// `error.type` for a status code (server: 5xx; client: 4xx and 5xx): the code as a string,
/// static for the codes services actually return.
pub(crate) fn status_error_type(code: u16) -> StringValue {
    let s: &'static str = match code {
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        409 => "409",
        422 => "422",
        429 => "429",
        500 => "500",
        501 => "501",
        502 => "502",
        503 => "503",
        504 => "504",
        _ => return code.to_string().into(),
    };
    s.into()
}

/// `url.scheme` of a server request: the request line's scheme when absolute, else
/// `X-Forwarded-Proto` when it says `http`/`https` (a bounded value), else `http`.
pub(crate) fn server_scheme(uri: &http::Uri, headers: &HeaderMap) -> &'static str {
    match uri.scheme_str() {
        Some("https") => return "https",
        Some("http") => return "http",
        _ => {}
    }
    // A `HeaderName` constant: looking up by `&str` would parse the name on every request.
    const X_FORWARDED_PROTO: http::HeaderName = http::HeaderName::from_static("x-forwarded-proto");
    match headers.get(&X_FORWARDED_PROTO).map(|v| v.as_bytes()) {
        Some(b"https") => "https",
        _ => "http",
    }
}

/// The default port of a scheme.
pub(crate) fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// A `Cow` into an attribute value without copying static strings.
pub(crate) fn cow_value(s: Cow<'static, str>) -> StringValue {
    s.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_bounded() {
        assert_eq!(method_index(&Method::GET), 0);
        assert_eq!(method_index(&Method::PATCH), 8);
        let odd = Method::from_bytes(b"FOO").unwrap();
        assert_eq!(method_index(&odd), OTHER);
        assert_eq!(span_name_method(OTHER), "HTTP");
        let long = Method::from_bytes("X".repeat(100).as_bytes()).unwrap();
        assert_eq!(method_original(&long).len(), 32);
    }

    #[test]
    fn status_error_types() {
        assert_eq!(status_error_type(503).as_str(), "503");
        assert_eq!(status_error_type(599).as_str(), "599");
    }
}
