//! Trust boundaries of the HTTP layers: a public endpoint starts its own traces (the forged
//! context a link, its sampled flag never obeyed, its tracestate and baggage dropped), a
//! trusted peer's context is continued, and the client layer sends the context only to the
//! hosts allowed — checked on the receiving side of real sockets.
// `ConnectInfo` and the route templates come from axum (feature `axum`, default).
#![cfg(feature = "axum")]

mod support;

use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{Sampler as SdkSampler, SpanData};
use paytrace::http::ClientLayer;
use paytrace::propagation::{PropagateTo, Trust};
use paytrace::testing::TestCollector;
use paytrace::{Sampler, Telemetry};
use support::*;
use tower::{Layer as _, ServiceExt as _};

const FORGED_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const FORGED_SPAN: &str = "b7ad6b7169203331";

fn forged() -> String {
    format!("00-{FORGED_TRACE}-{FORGED_SPAN}-01")
}

/// `GET /pay` answering with the baggage the handler sees (`tenant`, or nothing).
fn pay_app(layer: paytrace::http::TraceLayer) -> Router {
    Router::new()
        .route(
            "/pay",
            get(|| async {
                let cx = opentelemetry::Context::current();
                cx.baggage()
                    .get("tenant")
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            }),
        )
        .layer(layer)
}

/// A forged request: sampled parent, tracestate and baggage.
fn forged_request(uri: &str) -> http::Request<String> {
    http::Request::get(uri)
        .header("traceparent", forged())
        .header("tracestate", "vendor=secret")
        .header("baggage", "tenant=evil")
        .body(String::new())
        .unwrap()
}

async fn body_text(res: http::Response<impl http_body::Body<Error: std::fmt::Debug>>) -> String {
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn assert_new_root_linked_to_forged(span: &SpanData) {
    assert_ne!(
        span.span_context.trace_id().to_string(),
        FORGED_TRACE,
        "the forged trace id is not taken"
    );
    assert_eq!(span.parent_span_id, SpanId::INVALID, "a root");
    let links = &span.links.links;
    assert_eq!(links.len(), 1, "exactly one link: {links:?}");
    let link = &links[0].span_context;
    assert_eq!(link.trace_id().to_string(), FORGED_TRACE);
    assert_eq!(link.span_id().to_string(), FORGED_SPAN);
    assert!(link.is_remote());
    assert!(
        link.is_sampled(),
        "the forged sampled flag is recorded in the link"
    );
    assert_eq!(link.trace_state().header(), "", "no tracestate in the link");
}

#[tokio::test]
async fn a_public_endpoint_starts_its_own_trace_linked_to_the_forged_one() {
    // Roots are never sampled: a forged `-01` must not make the request recorded.
    let spans = Spans::with_sampler(SdkSampler::ParentBased(Box::new(SdkSampler::AlwaysOff)));
    let trusting = pay_app(spans.layer().0);
    let res = trusting.oneshot(forged_request("/pay")).await.unwrap();
    assert_eq!(body_text(res).await, "evil", "trusted: baggage flows in");
    let honoured = spans.only();
    assert_eq!(
        honoured.span_context.trace_id().to_string(),
        FORGED_TRACE,
        "control: the default trusts the forged parent and records it"
    );
    spans.exporter.reset();

    let public = pay_app(spans.layer().0.with_trust(Trust::None));
    let res = public.oneshot(forged_request("/pay")).await.unwrap();
    assert_eq!(
        body_text(res).await,
        "",
        "untrusted baggage never reaches the handler"
    );
    assert!(
        spans.finished().is_empty(),
        "the sampler decided as for a root: not sampled, whatever the forged flag said"
    );

    // With roots sampled, the exported span is a new root with one link to the forged context.
    let spans = Spans::new();
    let public = pay_app(spans.layer().0.with_trust(Trust::None));
    let res = public.oneshot(forged_request("/pay")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_new_root_linked_to_forged(&spans.only());

    // No context sent: a plain root, no link.
    spans.exporter.reset();
    let req = http::Request::get("/pay").body(String::new()).unwrap();
    pay_app(spans.layer().0.with_trust(Trust::None))
        .oneshot(req)
        .await
        .unwrap();
    assert!(spans.only().links.links.is_empty());
}

#[tokio::test]
async fn untrusted_sampled_parents_get_the_ratio_not_their_flag() {
    install_propagator();
    const N: u32 = 10_000;
    let collector = TestCollector::start().await.expect("collector");
    let telemetry = Telemetry::start(
        config(&collector)
            .with_sampler(Sampler::ParentBasedRatio(0.1))
            .with_tail_keep(false)
            .with_trust(Trust::None),
    )
    .expect("telemetry");
    let app = Router::new()
        .route("/pay", get(|| async { "ok" }))
        .layer(telemetry.http_layer());
    for n in 0..N {
        // Each request a different forged trace, all claiming to be sampled.
        let tp = format!("00-{:032x}-{FORGED_SPAN}-01", u128::from(n) + 1);
        let req = http::Request::get("/pay")
            .header("traceparent", tp)
            .body(axum::body::Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        res.into_body().collect().await.unwrap();
    }
    let t = telemetry;
    tokio::task::spawn_blocking(move || t.shutdown())
        .await
        .unwrap()
        .expect("clean shutdown");
    let spans = collector.spans();
    let exported = spans.len() as f64;
    let share = exported / f64::from(N);
    println!("exported {exported} of {N} forged sampled requests from an untrusted peer");
    assert!(
        (0.08..=0.12).contains(&share),
        "exported {exported} of {N} forged sampled requests: the ratio's 10 % ± 2 %"
    );
    for s in &spans {
        assert!(
            s.span.parent_span_id.is_empty(),
            "a root: {}",
            s.parent_span_id_hex()
        );
        assert_eq!(s.span.links.len(), 1, "one link each");
        let link = &s.span.links[0];
        let forged_id = hex(&link.trace_id);
        assert_ne!(s.trace_id_hex(), forged_id, "never the forged trace id");
        assert_eq!(link.flags & 0x01, 0x01, "the forged sampled flag, recorded");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Serve `app` on 127.0.0.1:0 with axum's `ConnectInfo<SocketAddr>`: the layer sees the peer.
async fn serve_with_peer(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let make = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, make).await.unwrap() });
    addr
}

#[tokio::test]
async fn a_trusted_peer_is_continued_an_untrusted_one_is_not() {
    let caller = Client::builder(TokioExecutor::new()).build_http::<String>();

    let spans = Spans::new();
    let loopback = Trust::peers_in(["127.0.0.0/8", "::1/128"]).unwrap();
    let addr = serve_with_peer(pay_app(spans.layer().0.with_trust(loopback))).await;
    let res = caller
        .request(forged_request(&format!("http://{addr}/pay")))
        .await
        .unwrap();
    assert_eq!(
        body_text(res).await,
        "evil",
        "a trusted peer's baggage flows in"
    );
    let span = spans.only();
    assert_eq!(span.span_context.trace_id().to_string(), FORGED_TRACE);
    assert_eq!(span.parent_span_id.to_string(), FORGED_SPAN);
    assert!(span.parent_span_is_remote && span.links.links.is_empty());

    // The same socket peer outside the trusted networks; a forwarded-for header claiming an
    // internal address changes nothing.
    let spans = Spans::new();
    let mesh = Trust::peers_in(["10.0.0.0/8"]).unwrap();
    let addr = serve_with_peer(pay_app(spans.layer().0.with_trust(mesh))).await;
    let mut req = forged_request(&format!("http://{addr}/pay"));
    req.headers_mut()
        .insert("x-forwarded-for", "10.0.0.1".parse().unwrap());
    let res = caller.request(req).await.unwrap();
    assert_eq!(body_text(res).await, "");
    assert_new_root_linked_to_forged(&spans.only());
}

#[tokio::test]
async fn untrusted_tracestate_and_baggage_do_not_reach_internal_calls() {
    let (ledger, received) = header_recorder().await;
    let spans = Spans::new();
    let client = ClientLayer::from_tracer(spans.tracer()).layer(client_to(ledger));
    let gateway = Router::new()
        .route(
            "/pay",
            get(move || {
                let client = client.clone();
                async move {
                    let req = http::Request::get("http://ledger.internal/entries")
                        .body(String::new())
                        .unwrap();
                    client
                        .oneshot(req)
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                        .to_string()
                }
            }),
        )
        .layer(spans.layer().0.with_trust(Trust::None));
    let res = gateway.oneshot(forged_request("/pay")).await.unwrap();
    assert_eq!(body_text(res).await, "200");

    let headers = received
        .lock()
        .unwrap()
        .pop()
        .expect("the ledger was called");
    let traceparent = headers["traceparent"].to_str().unwrap();
    assert!(
        !traceparent.contains(FORGED_TRACE),
        "the internal call continues the gateway's own trace: {traceparent}"
    );
    assert!(!headers.contains_key("baggage"), "{headers:?}");
    assert!(!headers.contains_key("tracestate"), "{headers:?}");
    let server = spans
        .finished()
        .into_iter()
        .find(|s| s.span_kind == opentelemetry::trace::SpanKind::Server)
        .unwrap();
    assert_eq!(
        TraceId::from_hex(&traceparent[3..35]).unwrap(),
        server.span_context.trace_id()
    );
}

#[tokio::test]
async fn third_parties_get_no_context_and_the_client_span_is_still_exported() {
    install_propagator();
    let (addr, received) = header_recorder().await;
    let collector = TestCollector::start().await.expect("collector");
    let telemetry =
        Telemetry::start(config(&collector).with_propagate_to(PropagateTo::hosts([".internal"])))
            .expect("telemetry");
    let client = telemetry.http_client_layer().layer(client_to(addr));

    let call = |uri: &str, with_stale_headers: bool| {
        let mut req = http::Request::post(uri).body(String::new()).unwrap();
        if with_stale_headers {
            // Copied from an incoming request, or injected by hand: removed all the same.
            for (k, v) in [
                ("baggage", "tenant=acme"),
                ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"),
                ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
                ("uber-trace-id", "4bf92f3577b34da6:00f067aa0ba902b7:0:1"),
                ("uberctx-tenant", "acme"),
                ("tracestate", "ours=1"),
                (
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ),
            ] {
                req.headers_mut().insert(k, v.parse().unwrap());
            }
        }
        let cx = opentelemetry::Context::current_with_baggage([opentelemetry::KeyValue::new(
            "tenant", "acme",
        )]);
        let client = client.clone();
        async move {
            let _guard = cx.attach();
            client.oneshot(req).await.unwrap().status()
        }
    };
    assert_eq!(call("http://psp.example/charges", true).await, 200);
    assert_eq!(call("http://ledger.internal/entries", false).await, 200);

    let all = received.lock().unwrap().clone();
    let (psp, ledger) = (&all[0], &all[1]);
    assert_eq!(psp["host"], "psp.example");
    let context_headers = [
        "traceparent",
        "tracestate",
        "baggage",
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-sampled",
        "uber-trace-id",
        "uberctx-tenant",
    ];
    for name in context_headers {
        assert!(
            !psp.contains_key(name),
            "{name} reached the processor: {psp:?}"
        );
    }
    assert_eq!(ledger["host"], "ledger.internal");
    assert!(ledger.contains_key("traceparent"), "{ledger:?}");
    assert_eq!(ledger["baggage"], "tenant=acme");

    let exported = collector.wait_for_spans(2, WAIT).await;
    let psp_span = exported
        .iter()
        .find(|s| s.attr_str("server.address").as_deref() == Some("psp.example"))
        .expect("the processor call's client span is exported");
    assert_eq!(psp_span.name(), "POST");
    let t = telemetry;
    tokio::task::spawn_blocking(move || t.shutdown())
        .await
        .unwrap()
        .expect("clean shutdown");
}
