//! `server.address` and `server.port` from an authority a client sent: parsed, checked and
//! masked once, then shared while it repeats.

use std::sync::Arc;

use opentelemetry::StringValue;

use super::value_cache;
use crate::redact::Redactor;

/// A host as clients send it (`Host` header or URI authority): length-bounded, host-name
/// characters only, so a hostile value never reaches a span verbatim.
pub(crate) fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    if authority.is_empty() || authority.len() > 261 {
        return None;
    }
    // Credentials are never part of server.address. Byte searches: `rsplit` and friends go
    // through the char-pattern machinery, dearer on every request.
    let authority = match memchr::memrchr(b'@', authority.as_bytes()) {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        // [v6]:port
        let end = memchr::memchr(b']', rest.as_bytes())?;
        let host = &authority[..end + 2];
        match &rest[end + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?.parse().ok()?)),
        }
    } else {
        match memchr::memrchr(b':', authority.as_bytes()) {
            Some(at) => (&authority[..at], Some(authority[at + 1..].parse().ok()?)),
            None => (authority, None),
        }
    };
    let ok = !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':' | b'[' | b']')
        });
    ok.then_some((host, port))
}

/// `server.address` (card numbers masked under `redactor`) and the port an `authority` names;
/// `None` when it is not a valid one. An authority is client input: masked like the rest.
pub(crate) fn server_address(
    redactor: &Redactor,
    authority: &str,
) -> Option<(StringValue, Option<u16>)> {
    value_cache::server(redactor.policy_id(), authority, |authority| {
        let (host, port) = split_host_port(authority)?;
        Some((Arc::from(&*redactor.mask_pan(host)), port))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_parsing() {
        assert_eq!(split_host_port("example.com"), Some(("example.com", None)));
        assert_eq!(
            split_host_port("example.com:8443"),
            Some(("example.com", Some(8443)))
        );
        assert_eq!(split_host_port("[::1]:80"), Some(("[::1]", Some(80))));
        assert_eq!(split_host_port("[::1]"), Some(("[::1]", None)));
        assert_eq!(split_host_port("user:pw@host:1"), Some(("host", Some(1))));
        assert_eq!(split_host_port("host:99999"), None);
        assert_eq!(split_host_port("bad host"), None);
        assert_eq!(split_host_port("[::1"), None);
        assert_eq!(split_host_port(""), None);
        assert_eq!(split_host_port(&"a".repeat(300)), None);
    }

    #[test]
    fn server_address_is_masked_and_split() {
        let redactor = Redactor::default();
        let (host, port) = server_address(&redactor, "4111111111111111.shop:8443").unwrap();
        assert!(!host.as_str().contains("4111111111111111"), "{host}");
        assert_eq!(port, Some(8443));
        let (host, port) = server_address(&redactor, "ledger.internal").unwrap();
        assert_eq!((host.as_str(), port), ("ledger.internal", None));
        assert_eq!(server_address(&redactor, "bad host"), None);
    }
}
