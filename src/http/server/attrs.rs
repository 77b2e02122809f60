//! The start attributes of a server span: what the request says about itself, masked and bounded.

use std::borrow::Cow;
use std::sync::Arc;

use http::header::{CONTENT_LENGTH, HOST, USER_AGENT};
use http::request::Parts;
use http::HeaderName;
use opentelemetry::{Array, Key, KeyValue, StringValue, Value};

use super::options::Options;
use crate::exchange::{server_address, value_cache};
use crate::http::semconv::*;
use crate::keys::{SERVER_ADDRESS, SERVER_PORT};
use crate::redact::Redactor;
use crate::util::truncate;

/// Room for a typical request's attributes, start and end, so the span's vector is allocated
/// once; kept under 1 KiB (`KeyValue` is 56 bytes), where small allocations stay cheap.
const ATTR_CAPACITY: usize = 14;
/// `url.path` / `url.query` / `user_agent.original` are cut to this many bytes (after masking).
const MAX_VALUE: usize = 2048;

/// The start attributes of a request's server span, in recording order, with room for the
/// end attributes; and the request body size (`Content-Length`), which the metrics need too.
// One caller, on the request path: the hint lets it inline across codegen units.
#[inline]
pub(crate) fn request_attributes(
    opts: &Options,
    parts: &Parts,
    method: usize,
    route: Cow<'static, str>,
) -> (Vec<KeyValue>, Option<u64>) {
    let redactor = &opts.redactor;
    let mut attrs = Vec::with_capacity(ATTR_CAPACITY + opts.record_headers.len());
    push_method(&mut attrs, redactor, parts, method);
    let scheme = push_url(&mut attrs, redactor, parts);
    attrs.push(KeyValue::new(HTTP_ROUTE, cow_value(route)));
    push_server(&mut attrs, redactor, parts, scheme);
    push_client(&mut attrs, redactor, parts);
    if let Some(v) = protocol_version(parts.version) {
        attrs.push(KeyValue::new(NETWORK_PROTOCOL_VERSION, v));
    }
    let request_size = content_length(parts);
    if let Some(size) = request_size {
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        attrs.push(KeyValue::new(HTTP_REQUEST_BODY_SIZE, size));
    }
    push_headers(&mut attrs, redactor, parts, &opts.record_headers);
    (attrs, request_size)
}

/// `http.request.method`, and `http.request.method_original` for a non-standard one.
#[inline]
fn push_method(attrs: &mut Vec<KeyValue>, redactor: &Redactor, parts: &Parts, method: usize) {
    attrs.push(KeyValue::new(HTTP_REQUEST_METHOD, METHODS[method]));
    if method == OTHER {
        // Client-chosen tokens: masked like everything else a client sends.
        let original = redactor.mask_pan(method_original(&parts.method));
        attrs.push(KeyValue::new(
            HTTP_REQUEST_METHOD_ORIGINAL,
            original.into_owned(),
        ));
    }
}

/// `url.scheme`, `url.path` (card numbers masked) and `url.query` (sensitive parameters
/// redacted); the scheme, whose default port `server.port` may need.
#[inline]
fn push_url(attrs: &mut Vec<KeyValue>, redactor: &Redactor, parts: &Parts) -> &'static str {
    let scheme = server_scheme(&parts.uri, &parts.headers);
    attrs.push(KeyValue::new(URL_SCHEME, scheme));
    let path = bounded(redactor.mask_pan(parts.uri.path()));
    attrs.push(KeyValue::new(URL_PATH, path));
    if let Some(query) = parts.uri.query() {
        attrs.push(KeyValue::new(
            URL_QUERY,
            bounded(redactor.redact_query(query)),
        ));
    }
    scheme
}

/// `server.address` and `server.port` from the request's authority, else its `Host` header;
/// the port defaults to the scheme's.
#[inline]
fn push_server(attrs: &mut Vec<KeyValue>, redactor: &Redactor, parts: &Parts, scheme: &str) {
    let authority = match parts.uri.authority() {
        Some(a) => Some(a.as_str()),
        None => parts.headers.get(HOST).and_then(|v| v.to_str().ok()),
    };
    let Some((host, port)) = authority.and_then(|a| server_address(redactor, a)) else {
        return;
    };
    attrs.push(KeyValue::new(SERVER_ADDRESS, host));
    if let Some(port) = port.or_else(|| default_port(scheme)) {
        attrs.push(KeyValue::new(SERVER_PORT, i64::from(port)));
    }
}

/// `client.address` (from axum's `ConnectInfo`) and `user_agent.original` (masked, bounded).
#[inline]
fn push_client(attrs: &mut Vec<KeyValue>, redactor: &Redactor, parts: &Parts) {
    if let Some(ip) = client_ip(parts) {
        attrs.push(KeyValue::new(
            CLIENT_ADDRESS,
            value_cache::client(ip, ip_text),
        ));
    }
    if let Some(ua) = parts.headers.get(USER_AGENT).and_then(|v| v.to_str().ok()) {
        let ua = value_cache::agent(redactor.policy_id(), ua, |ua| {
            Arc::from(truncate(&redactor.mask_pan(ua), MAX_VALUE))
        });
        attrs.push(KeyValue::new(USER_AGENT_ORIGINAL, ua));
    }
}

/// The allow-listed request headers, each under its key: up to eight values, redacted.
fn push_headers(
    attrs: &mut Vec<KeyValue>,
    redactor: &Redactor,
    parts: &Parts,
    record_headers: &[(HeaderName, Key)],
) {
    for (name, key) in record_headers {
        // Checked again here: the redactor may have changed after the list was set.
        if redactor.is_sensitive_header(name) {
            continue;
        }
        let values: Vec<StringValue> = parts
            .headers
            .get_all(name)
            .iter()
            .take(8)
            .map(|v| {
                let v = String::from_utf8_lossy(v.as_bytes());
                bounded(redactor.redact_value(name.as_str(), &v)).into()
            })
            .collect();
        if !values.is_empty() {
            attrs.push(KeyValue::new(
                key.clone(),
                Value::Array(Array::String(values)),
            ));
        }
    }
}

/// A masked value, cut to [`MAX_VALUE`] bytes (after masking, so no partial card number is
/// left readable by the cut).
fn bounded(value: Cow<'_, str>) -> String {
    match value {
        Cow::Owned(mut s) => {
            let end = truncate(&s, MAX_VALUE).len();
            s.truncate(end);
            s
        }
        Cow::Borrowed(s) => truncate(s, MAX_VALUE).to_owned(),
    }
}

fn content_length(parts: &Parts) -> Option<u64> {
    parts
        .headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `client.address`: IPv4 written by hand (`to_string` runs the formatting machinery once per
/// octet), IPv6 as std writes it.
fn ip_text(ip: std::net::IpAddr) -> Arc<str> {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let mut buf = [0u8; 15];
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[len] = b'.';
                    len += 1;
                }
                let mut itoa = itoa::Buffer::new();
                let digits = itoa.format(octet).as_bytes();
                buf[len..len + digits.len()].copy_from_slice(digits);
                len += digits.len();
            }
            // Digits and dots: always UTF-8.
            Arc::from(std::str::from_utf8(&buf[..len]).unwrap_or_default())
        }
        std::net::IpAddr::V6(v6) => Arc::from(v6.to_string()),
    }
}

#[cfg(feature = "axum")]
fn client_ip(parts: &Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

#[cfg(not(feature = "axum"))]
fn client_ip(_: &Parts) -> Option<std::net::IpAddr> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    #[test]
    fn client_addresses_read_as_std_writes_them() {
        for ip in [
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)),
            IpAddr::V4(Ipv4Addr::new(255, 10, 100, 9)),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6("2001:db8::ff00:42:8329".parse().unwrap()),
        ] {
            assert_eq!(*ip_text(ip), ip.to_string());
        }
    }
}
