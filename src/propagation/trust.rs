//! [`Trust`]: whose incoming trace context a server layer continues, and what it starts
//! instead for everyone else.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use http::request::Parts;
use opentelemetry::trace::Link;
use opentelemetry::Context;

use super::networks::Networks;
use crate::error::Error;

/// A predicate on an incoming request's head, for [`Trust::when`].
pub type TrustFn = dyn Fn(&Parts) -> bool + Send + Sync;

/// Whose incoming trace context (`traceparent`, `tracestate`, `baggage`, B3, Jaeger) a server
/// layer continues. Set it with [`TraceLayer::with_trust`](crate::http::TraceLayer::with_trust),
/// [`ServerLayer::with_trust`](crate::grpc::GrpcLayer::with_trust), or for every layer a
/// `Telemetry` builds with [`Config::with_trust`](crate::Config::with_trust).
///
/// An untrusted request starts a **new trace**: the sampler decides for it exactly as for any
/// root (a forged `-01` cannot force a trace to be recorded, nor bypass a ratio), its incoming
/// `tracestate` and `baggage` are dropped (nothing of it reaches internal calls), and the
/// incoming span context, when valid, becomes the span's one **link**, its sampled flag
/// recorded there and never obeyed (the link carries no `tracestate`). Go's otelhttp calls this
/// `WithPublicEndpoint`.
///
/// ```
/// use paytrace::propagation::Trust;
/// let telemetry = paytrace::Telemetry::start(paytrace::Config::disabled())?;
/// // Internet-facing listener: nobody's context is trusted.
/// let public = telemetry.http_layer().with_trust(Trust::None);
/// // Internal listener: the mesh's peers are trusted, anyone else is not.
/// let internal = telemetry.http_layer().with_trust(Trust::peers_in(["10.0.0.0/8", "fd00::/8"])?);
/// # let _ = (public, internal);
/// # Ok::<(), paytrace::Error>(())
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Trust {
    /// Every request's context is continued. The default.
    #[default]
    All,
    /// No request's context is continued: a public endpoint.
    None,
    /// Requests whose socket peer is inside these networks; built by [`Trust::peers_in`].
    Peers(Networks),
    /// Requests for which the predicate returns `true`; built by [`Trust::when`].
    When(Arc<TrustFn>),
}

impl Trust {
    /// Trust the requests whose **socket peer** (never a header a client can write) is in one
    /// of `networks` (CIDR: `10.0.0.0/8`, `fd00::/8`; a bare address is itself alone). The peer
    /// is read from axum's `ConnectInfo<SocketAddr>` (serve with
    /// `into_make_service_with_connect_info::<SocketAddr>()`) or tonic's `TcpConnectInfo` (also
    /// under TLS); a request without one is not trusted. Behind a load balancer the peer is
    /// the balancer: use [`Trust::None`] on listeners the internet reaches through it.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first value that is not a network (see
    /// [`Networks::parse`]).
    ///
    /// ```
    /// let trust = paytrace::propagation::Trust::peers_in(["10.0.0.0/8", "fd00::/8"])?;
    /// assert!(paytrace::propagation::Trust::peers_in(["10.0.0.0/40"]).is_err());
    /// # let _ = trust;
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn peers_in<I, S>(networks: I) -> Result<Trust, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Networks::parse(networks).map(Trust::Peers)
    }

    /// Trust the requests for which `trusted` returns `true`: e.g. those carrying a verified
    /// mTLS identity an earlier layer put in the extensions. A header a client can write is no
    /// proof of anything.
    ///
    /// ```
    /// #[derive(Clone)]
    /// struct VerifiedPeer; // inserted by an authenticating layer
    /// let trust = paytrace::propagation::Trust::when(|req| req.extensions.get::<VerifiedPeer>().is_some());
    /// # let _ = trust;
    /// ```
    pub fn when<F>(trusted: F) -> Trust
    where
        F: Fn(&Parts) -> bool + Send + Sync + 'static,
    {
        Trust::When(Arc::new(trusted))
    }

    /// Whether the context of the request `parts` is continued.
    ///
    /// ```
    /// use paytrace::propagation::Trust;
    /// let (parts, _) = http::Request::get("/").body(()).unwrap().into_parts();
    /// assert!(Trust::All.trusts(&parts));
    /// assert!(!Trust::None.trusts(&parts));
    /// assert!(!Trust::peers_in(["0.0.0.0/0"])?.trusts(&parts), "no peer address known");
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn trusts(&self, parts: &Parts) -> bool {
        match self {
            Trust::All => true,
            Trust::None => false,
            Trust::Peers(networks) => peer_ip(parts).is_some_and(|ip| networks.contains(ip)),
            Trust::When(trusted) => trusted(parts),
        }
    }
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trust::All => f.write_str("All"),
            Trust::None => f.write_str("None"),
            Trust::Peers(networks) => f.debug_tuple("Peers").field(networks).finish(),
            Trust::When(_) => f.write_str("When(..)"),
        }
    }
}

/// The socket peer of a request, from the connection info the server inserted.
fn peer_ip(parts: &Parts) -> Option<IpAddr> {
    use tonic::transport::server::TcpConnectInfo;
    #[cfg(feature = "axum")]
    if let Some(info) = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return Some(info.0.ip());
    }
    let tcp = parts.extensions.get::<TcpConnectInfo>();
    #[cfg(feature = "tls")]
    let tcp = tcp.or_else(|| {
        use tonic::transport::server::TlsConnectInfo;
        parts
            .extensions
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .map(TlsConnectInfo::get_ref)
    });
    let tcp = tcp?;
    tcp.remote_addr().map(|addr| addr.ip())
}

/// Where a server span starts: under the caller's context, or as a new root linked to it.
#[derive(Debug)]
pub(crate) struct Upstream {
    /// The span's parent: the caller's context when trusted, else one without a span (a
    /// root).
    pub(crate) parent: Context,
    /// The untrusted caller's span context, when it sent a valid one.
    pub(crate) link: Option<Link>,
}

/// The parent (and link) of the server span for the request `parts` under `trust`. An
/// untrusted request's headers are read for its span context alone: no `tracestate`, no
/// `baggage`, so it costs no more than a trusted one, and nothing when it sent no context.
pub(crate) fn upstream(trust: &Trust, parts: &Parts) -> Upstream {
    if trust.trusts(parts) {
        return Upstream {
            parent: super::extract_context(&parts.headers),
            link: None,
        };
    }
    let link = super::extract_span_context(&parts.headers).map(Link::with_context);
    Upstream {
        // A new trace: the shared random-marked base, as for a request that sent nothing.
        parent: super::w3c::random_base(),
        link,
    }
}

#[cfg(all(test, feature = "axum"))]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt as _;
    use std::net::SocketAddr;

    fn has_parent(cx: &Context) -> bool {
        cx.span().span_context().is_valid()
    }

    const FORGED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn request(peer: Option<&str>, headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::get("/pay");
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let (mut parts, _) = builder.body(()).unwrap().into_parts();
        if let Some(peer) = peer {
            let addr: SocketAddr = peer.parse().unwrap();
            parts.extensions.insert(axum::extract::ConnectInfo(addr));
        }
        parts
    }

    #[test]
    fn peers_are_read_from_the_socket_never_from_headers() {
        let trust = Trust::peers_in(["10.0.0.0/8"]).unwrap();
        assert!(trust.trusts(&request(Some("10.1.2.3:5000"), &[])));
        assert!(!trust.trusts(&request(Some("203.0.113.5:5000"), &[])));
        let spoofed = [
            ("x-forwarded-for", "10.1.2.3"),
            ("forwarded", "for=10.1.2.3"),
        ];
        assert!(!trust.trusts(&request(None, &spoofed)));
        assert!(!trust.trusts(&request(Some("203.0.113.5:1"), &spoofed)));
        assert!(trust.trusts(&request(Some("[::ffff:10.0.0.9]:1"), &[])));
    }

    #[test]
    fn tonic_connection_info_is_a_peer_too() {
        let (mut parts, _) = http::Request::get("/").body(()).unwrap().into_parts();
        let trust = Trust::peers_in(["127.0.0.0/8"]).unwrap();
        assert!(!trust.trusts(&parts));
        let tcp = tonic::transport::server::TcpConnectInfo {
            local_addr: None,
            remote_addr: Some("127.0.0.1:9".parse().unwrap()),
        };
        parts.extensions.insert(tcp);
        assert!(trust.trusts(&parts));
    }

    #[test]
    fn untrusted_requests_are_roots_linked_to_the_caller() {
        super::super::tests::install();
        let parts = request(
            Some("203.0.113.5:1"),
            &[
                ("traceparent", FORGED),
                ("tracestate", "a=b"),
                ("baggage", "k=v"),
            ],
        );
        let trusted = upstream(&Trust::All, &parts);
        assert!(has_parent(&trusted.parent) && trusted.link.is_none());

        let up = upstream(&Trust::None, &parts);
        assert!(!has_parent(&up.parent));
        assert!(
            super::super::w3c::marked(&up.parent),
            "a new random trace, no mark allocated"
        );
        assert!(opentelemetry::baggage::BaggageExt::baggage(&up.parent).is_empty());
        let link = up.link.expect("a link to the caller");
        let sc = &link.span_context;
        assert_eq!(sc.trace_id().to_string(), &FORGED[3..35]);
        assert_eq!(sc.span_id().to_string(), &FORGED[36..52]);
        assert!(sc.is_sampled() && sc.is_remote());
        assert_eq!(sc.trace_state().header(), "", "no tracestate in the link");
        assert!(link.attributes.is_empty());

        let bare = upstream(&Trust::None, &request(None, &[("baggage", "k=v")]));
        assert!(!has_parent(&bare.parent) && bare.link.is_none());
        let bad = upstream(
            &Trust::None,
            &request(None, &[("traceparent", "00-1-2-01")]),
        );
        assert!(bad.link.is_none());
    }

    #[test]
    fn predicates_see_the_request() {
        let trust = Trust::when(|p| p.uri.path() == "/internal");
        let (parts, _) = http::Request::get("/internal")
            .body(())
            .unwrap()
            .into_parts();
        assert!(trust.trusts(&parts));
        assert!(!trust.trusts(&request(None, &[])));
        assert_eq!(format!("{trust:?}"), "When(..)");
        assert_eq!(format!("{:?}", Trust::default()), "All");
    }
}
