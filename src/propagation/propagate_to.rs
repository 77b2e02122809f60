//! [`PropagateTo`]: which hosts a client layer sends the trace context to, and the removal of
//! every context header from calls to the others.

use std::fmt;
use std::sync::Arc;

use http::request::Parts;
use http::uri::Authority;
use http::{HeaderMap, HeaderName};

/// A predicate on an outgoing request's head, for [`PropagateTo::when`].
pub type PropagateToFn = dyn Fn(&Parts) -> bool + Send + Sync;

/// Every header paytrace's propagators read or write: W3C Trace Context and Baggage, B3 (single
/// and multiple), Jaeger.
const CONTEXT_HEADERS: [HeaderName; 10] = [
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("tracestate"),
    HeaderName::from_static("baggage"),
    HeaderName::from_static("b3"),
    HeaderName::from_static("x-b3-traceid"),
    HeaderName::from_static("x-b3-spanid"),
    HeaderName::from_static("x-b3-parentspanid"),
    HeaderName::from_static("x-b3-sampled"),
    HeaderName::from_static("x-b3-flags"),
    HeaderName::from_static("uber-trace-id"),
];
/// Prefixes of per-key baggage headers (Jaeger, OpenTracing).
const CONTEXT_PREFIXES: [&str; 2] = ["uberctx-", "ot-baggage-"];

/// Which hosts a client layer sends the trace context to. Set it with
/// [`ClientLayer::with_propagation`](crate::http::ClientLayer::with_propagation), the gRPC
/// [`ClientLayer::with_propagation`](crate::grpc::GrpcLayer::with_propagation), or for every
/// client layer a `Telemetry` builds with
/// [`Config::with_propagate_to`](crate::Config::with_propagate_to).
///
/// A request to a host that is not allowed carries **no** trace context: nothing is injected,
/// and every context header already on it is removed — `traceparent`, `tracestate`,
/// `baggage`, `b3`, `x-b3-*`, `uber-trace-id`, `uberctx-*`, `ot-baggage-*`, and whatever else
/// the installed global propagator writes — so a header copied from an incoming request (a
/// proxying handler) or injected by hand cannot leave either. The client span is recorded as
/// usual. [`inject_context`](super::inject_context) itself is not affected.
///
/// ```
/// use paytrace::propagation::PropagateTo;
/// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
/// // Our own services get the context; a card network or processor gets nothing.
/// let client = telemetry
///     .http_client_layer()
///     .with_propagation(PropagateTo::hosts([".svc.cluster.local", "ledger.internal"]));
/// # let _ = client;
/// # Ok::<(), paytrace::Error>(())
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum PropagateTo {
    /// Every host. The default.
    #[default]
    All,
    /// No host: for a client layer that only calls third parties.
    None,
    /// The hosts of an allow-list; built by [`PropagateTo::hosts`].
    Hosts(Hosts),
    /// The requests for which the predicate returns `true`; built by [`PropagateTo::when`].
    When(Arc<PropagateToFn>),
}

impl PropagateTo {
    /// Propagate to these hosts only (see [`Hosts::new`]: exact names or addresses, and
    /// `.domain` suffixes). A request whose URI carries no host — a tonic client built with
    /// `new(channel)` — is matched by the authority given to the gRPC layer's
    /// [`with_authority`](crate::grpc::GrpcLayer::with_authority), and gets no context without
    /// one.
    ///
    /// ```
    /// let to = paytrace::propagation::PropagateTo::hosts([".internal", "10.0.0.7"]);
    /// let (parts, _) = http::Request::get("https://ledger.internal/x").body(()).unwrap().into_parts();
    /// assert!(to.allows(&parts));
    /// ```
    pub fn hosts<I, S>(hosts: I) -> PropagateTo
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        PropagateTo::Hosts(Hosts::new(hosts))
    }

    /// Propagate to the requests for which `allowed` returns `true`.
    ///
    /// ```
    /// let to = paytrace::propagation::PropagateTo::when(|req| req.uri.scheme_str() == Some("http"));
    /// let (parts, _) = http::Request::get("https://psp.example/charges").body(()).unwrap().into_parts();
    /// assert!(!to.allows(&parts));
    /// ```
    pub fn when<F>(allowed: F) -> PropagateTo
    where
        F: Fn(&Parts) -> bool + Send + Sync + 'static,
    {
        PropagateTo::When(Arc::new(allowed))
    }

    /// Whether the request `parts` may carry the trace context.
    ///
    /// ```
    /// use paytrace::propagation::PropagateTo;
    /// let (parts, _) = http::Request::get("https://psp.example/").body(()).unwrap().into_parts();
    /// assert!(PropagateTo::All.allows(&parts));
    /// assert!(!PropagateTo::None.allows(&parts));
    /// ```
    pub fn allows(&self, parts: &Parts) -> bool {
        self.allows_at(parts, None)
    }

    /// [`allows`](Self::allows), with `fallback` as the host of a request whose URI has none.
    pub(crate) fn allows_at(&self, parts: &Parts, fallback: Option<&Authority>) -> bool {
        match self {
            PropagateTo::All => true,
            PropagateTo::None => false,
            PropagateTo::Hosts(hosts) => parts
                .uri
                .host()
                .or_else(|| fallback.map(Authority::host))
                .is_some_and(|host| hosts.allows(host)),
            PropagateTo::When(allowed) => allowed(parts),
        }
    }
}

impl fmt::Debug for PropagateTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropagateTo::All => f.write_str("All"),
            PropagateTo::None => f.write_str("None"),
            PropagateTo::Hosts(hosts) => f.debug_tuple("Hosts").field(hosts).finish(),
            PropagateTo::When(_) => f.write_str("When(..)"),
        }
    }
}

/// An allow-list of hosts: exact names or IP addresses (`ledger.internal`, `10.0.0.7`,
/// `::1`), and domain suffixes written `.internal` or `*.internal`, which match every host
/// under that domain but not the domain itself. Case-insensitive; ports, brackets around IPv6
/// addresses and a final dot are ignored.
///
/// ```
/// let hosts = paytrace::propagation::Hosts::new(["ledger.internal", "*.svc.cluster.local", "[::1]"]);
/// assert!(hosts.allows("LEDGER.internal."));
/// assert!(hosts.allows("risk.payments.svc.cluster.local"));
/// assert!(!hosts.allows("svc.cluster.local"));
/// assert!(!hosts.allows("ledger.internal.evil.example"));
/// assert!(hosts.allows("[::1]"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Hosts {
    /// Lowercase names, without brackets or a final dot.
    exact: Vec<Box<str>>,
    /// Lowercase suffixes, each starting with a dot.
    suffixes: Vec<Box<str>>,
}

impl Hosts {
    /// The allow-list; empty entries are skipped.
    ///
    /// ```
    /// let hosts = paytrace::propagation::Hosts::new(["", ".internal"]);
    /// assert!(hosts.allows("a.internal"));
    /// ```
    pub fn new<I, S>(hosts: I) -> Hosts
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = Hosts::default();
        for entry in hosts {
            let entry = entry.as_ref().trim().to_ascii_lowercase();
            let entry = entry.strip_prefix('*').unwrap_or(&entry);
            if entry.starts_with('.') {
                let suffix = normalize(entry);
                if suffix.len() > 1 {
                    list.suffixes.push(suffix.into());
                }
            } else if !normalize(entry).is_empty() {
                list.exact.push(normalize(entry).into());
            }
        }
        list
    }

    /// Whether `host` is on the list.
    ///
    /// ```
    /// let hosts = paytrace::propagation::Hosts::new([".internal"]);
    /// assert!(!hosts.allows("api.psp.example"));
    /// ```
    pub fn allows(&self, host: &str) -> bool {
        let host = normalize(host).as_bytes();
        self.exact
            .iter()
            .any(|e| e.as_bytes().eq_ignore_ascii_case(host))
            || self.suffixes.iter().any(|s| {
                let s = s.as_bytes();
                host.len() > s.len() && host[host.len() - s.len()..].eq_ignore_ascii_case(s)
            })
    }
}

/// `host` without IPv6 brackets and a final dot.
fn normalize(host: &str) -> &str {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

impl fmt::Debug for Hosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.exact.iter().chain(self.suffixes.iter()))
            .finish()
    }
}

/// Remove every trace-context header from `headers`: paytrace's formats, the per-key baggage
/// prefixes, and the fields of the installed global propagator.
pub(crate) fn strip_context_headers(headers: &mut HeaderMap) {
    for name in &CONTEXT_HEADERS {
        headers.remove(name);
    }
    opentelemetry::global::get_text_map_propagator(|p| {
        for field in p.fields() {
            headers.remove(field);
        }
    });
    let prefixed = |name: &HeaderName| {
        CONTEXT_PREFIXES
            .iter()
            .any(|p| name.as_str().starts_with(p))
    };
    // Collected only when one is there: the common call pays one pass over the names.
    if headers.keys().any(prefixed) {
        let names: Vec<HeaderName> = headers.keys().filter(|n| prefixed(n)).cloned().collect();
        for name in names {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_exactly_or_under_a_suffix() {
        let hosts = Hosts::new([
            "Ledger.Internal",
            ".svc.cluster.local",
            "*.corp",
            "10.0.0.7",
            "[fd00::1]",
            "  ",
            ".",
        ]);
        for ok in [
            "ledger.internal",
            "ledger.internal.",
            "a.b.svc.cluster.local",
            "x.corp",
            "10.0.0.7",
            "[fd00::1]",
            "fd00::1",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for no in [
            "svc.cluster.local",
            "corp",
            "evilcorp",
            "ledger.internal.evil",
            "xledger.internal",
            "10.0.0.70",
            "",
            "ünïcode.corp.x",
        ] {
            assert!(!hosts.allows(no), "{no}");
        }
        assert!(!Hosts::default().allows("ledger.internal"));
    }

    #[test]
    fn requests_without_a_host_use_the_fallback_or_get_nothing() {
        let to = PropagateTo::hosts(["ledger.internal"]);
        let (parts, _) = http::Request::get("/ledger.v1.Ledger/Post")
            .body(())
            .unwrap()
            .into_parts();
        assert!(!to.allows(&parts));
        let ledger = Authority::from_static("ledger.internal:50051");
        assert!(to.allows_at(&parts, Some(&ledger)));
        let (own, _) = http::Request::get("http://psp.example/")
            .body(())
            .unwrap()
            .into_parts();
        assert!(
            !to.allows_at(&own, Some(&ledger)),
            "the request's own host wins"
        );
    }

    #[test]
    fn every_context_header_is_stripped_and_nothing_else() {
        let mut headers = HeaderMap::new();
        for name in &CONTEXT_HEADERS {
            headers.append(name, "x".parse().unwrap());
            headers.append(name, "y".parse().unwrap());
        }
        for name in [
            "uberctx-tenant",
            "ot-baggage-user",
            "authorization",
            "x-request-id",
        ] {
            headers.insert(HeaderName::from_static(name), "v".parse().unwrap());
        }
        strip_context_headers(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["authorization", "x-request-id"]);
    }

    #[test]
    fn our_propagators_write_only_stripped_headers() {
        use opentelemetry::propagation::TextMapPropagator;
        let propagators: [&dyn TextMapPropagator; 5] = [
            &super::super::TraceContextPropagator::new(),
            &opentelemetry_sdk::propagation::BaggagePropagator::new(),
            &super::super::B3Propagator::single(),
            &super::super::B3Propagator::multiple(),
            &super::super::JaegerPropagator::new(),
        ];
        for p in propagators {
            for field in p.fields() {
                assert!(CONTEXT_HEADERS.iter().any(|n| n == field), "{field}");
            }
        }
    }
}
