//! The gRPC layers against a real tonic server and client over real sockets, exporting to the
//! test collector: the status truth in six response shapes on both sides, the attribute table,
//! streaming duration, the slow flag, propagation and redaction.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use opentelemetry::trace::{
    FutureExt as _, Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use paytrace::propagation::{PropagateTo, Trust};
use paytrace::testing::{ReceivedSpan, TestCollector};
use paytrace::Telemetry;
use support::ledger::{
    post, run_shape, Incoming, LedgerClient, LedgerServer, PostRequest, Shape, WatchRequest, SHAPES,
};
use support::secrets::{leaks, Rng, Secret};
use support::{config, install_propagator, WAIT};
use tonic::transport::Channel;

/// A served ledger with the server layer, and a client channel with the client layer.
struct Rig {
    collector: TestCollector,
    telemetry: Telemetry,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

type Client = LedgerClient<paytrace::grpc::ClientService<Channel>>;

async fn rig(server_layer: impl Fn(&Telemetry) -> paytrace::grpc::ServerLayer) -> Rig {
    rig_with(|c| c, server_layer).await
}

async fn rig_with(
    configure: impl Fn(paytrace::Config) -> paytrace::Config,
    server_layer: impl Fn(&Telemetry) -> paytrace::grpc::ServerLayer,
) -> Rig {
    install_propagator();
    let collector = TestCollector::start().await.expect("collector");
    let telemetry = Telemetry::start(configure(config(&collector))).expect("telemetry");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let layer = server_layer(&telemetry);
    let server = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .layer(layer)
            .add_service(LedgerServer)
            .serve_with_incoming(Incoming(listener))
            .await;
    });
    Rig {
        collector,
        telemetry,
        addr,
        server,
    }
}

impl Rig {
    /// A plain channel to the rig's server.
    async fn channel(&self) -> Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .expect("connect")
    }

    /// A client without the client layer: its metadata is the caller's to forge.
    async fn bare_client(&self) -> LedgerClient<Channel> {
        LedgerClient::new(self.channel().await)
    }

    async fn client(&self) -> Client {
        self.client_with(|layer| layer).await
    }

    /// A client whose layer (the telemetry's, with this rig's authority) `configure` adjusts.
    async fn client_with(
        &self,
        configure: impl FnOnce(paytrace::grpc::ClientLayer) -> paytrace::grpc::ClientLayer,
    ) -> Client {
        let channel = self.channel().await;
        let authority = http::uri::Authority::try_from(self.addr.to_string()).unwrap();
        let channel = tower::ServiceBuilder::new()
            .layer(configure(
                self.telemetry.grpc_client_layer().with_authority(authority),
            ))
            .service(channel);
        LedgerClient::new(channel)
    }

    /// The client and server spans of the trace `trace_id`, once both arrived.
    async fn pair(&self, trace_id: &str) -> (ReceivedSpan, ReceivedSpan) {
        let find = |kind: i32| {
            self.collector
                .spans()
                .into_iter()
                .find(|s| s.trace_id_hex() == trace_id && s.span.kind == kind)
        };
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            // OTLP span kinds: 2 server, 3 client.
            if let (Some(c), Some(s)) = (find(3), find(2)) {
                return (c, s);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no client and server span for {trace_id}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Shut telemetry down (flushing everything) and hand back the collector.
    async fn shutdown(self) -> TestCollector {
        self.server.abort();
        let t = self.telemetry;
        tokio::task::spawn_blocking(move || t.shutdown())
            .await
            .unwrap()
            .expect("clean shutdown");
        self.collector
    }
}

/// Run the six shapes, each in its own trace (a root span of `tracer`); return the shapes and
/// their trace ids.
async fn six_shapes(rig: &Rig, tracer: &opentelemetry_sdk::trace::Tracer) -> Vec<(Shape, String)> {
    let mut out = Vec::new();
    for (name, truth) in SHAPES {
        let root = tracer.start(format!("shape {name}"));
        let trace_id = root.span_context().trace_id().to_string();
        let cx = opentelemetry::Context::current_with_span(root);
        let mut client = rig.client().await;
        let seen = run_shape(&mut client, name).with_context(cx.clone()).await;
        cx.span().end();
        out.push((
            Shape {
                name,
                truth,
                seen_by_app: seen,
            },
            trace_id,
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_truth_in_six_shapes_on_both_sides() {
    let rig = rig(|t| t.grpc_server_layer()).await;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let tracer = provider.tracer("shapes");
    let shapes = six_shapes(&rig, &tracer).await;
    let mut right = (0, 0);
    let mut table = String::new();
    for (shape, trace_id) in &shapes {
        let (client, server) = rig.pair(trace_id).await;
        let c = client
            .attr_str("rpc.response.status_code")
            .unwrap_or_default();
        let s = server
            .attr_str("rpc.response.status_code")
            .unwrap_or_default();
        right.0 += usize::from(s == shape.truth);
        right.1 += usize::from(c == shape.truth);
        table.push_str(&format!(
            "{:<32} truth {:<18} server {:<18} client {:<18} tonic told the caller {}\n",
            shape.name, shape.truth, s, c, shape.seen_by_app
        ));
        // Server and client spans share the trace; the server span is the client span's child.
        assert_eq!(
            server.span.parent_span_id, client.span.span_id,
            "{}",
            shape.name
        );
    }
    println!("{table}");
    assert_eq!(
        right,
        (6, 6),
        "server and client right out of six:\n{table}"
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_table() {
    let rig = rig(|t| t.grpc_server_layer()).await;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let tracer = provider.tracer("table");
    let mut client = rig.client().await;
    let mut traces = Vec::new();
    for mode in ["", "fail", "deny"] {
        let root = tracer.start("call");
        traces.push(root.span_context().trace_id().to_string());
        let cx = opentelemetry::Context::current_with_span(root);
        let _ = client.post(post(mode)).with_context(cx).await;
    }
    let _ = client.refund(post("")).await;

    let port = rig.addr.port().to_string();
    let (c, s) = rig.pair(&traces[0]).await;
    for span in [&c, &s] {
        assert_eq!(span.name(), "ledger.v1.Ledger/Post");
        assert_eq!(span.attr_str("rpc.system.name").as_deref(), Some("grpc"));
        assert_eq!(
            span.attr_str("rpc.method").as_deref(),
            Some("ledger.v1.Ledger/Post")
        );
        assert_eq!(
            span.attr_str("rpc.response.status_code").as_deref(),
            Some("OK")
        );
        assert_eq!(
            span.attr_str("server.address").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(span.attr_str("server.port").as_deref(), Some(port.as_str()));
        assert!(span.attr("error.type").is_none());
        assert!(span.attr("rpc.method_original").is_none());
        assert!(
            span.attr("rpc.system").is_none(),
            "no deprecated attributes"
        );
        assert_eq!(span.span.status.as_ref().map_or(0, |s| s.code), 0, "unset");
    }
    assert_eq!(s.span.kind, 2);
    assert_eq!(c.span.kind, 3);

    // INTERNAL is a server error: both spans are errors, the description has the message.
    let (c, s) = rig.pair(&traces[1]).await;
    for span in [&c, &s] {
        assert_eq!(
            span.attr_str("rpc.response.status_code").as_deref(),
            Some("INTERNAL")
        );
        assert_eq!(span.attr_str("error.type").as_deref(), Some("INTERNAL"));
        let status = span.span.status.clone().unwrap();
        assert_eq!(status.code, 2, "error");
        assert_eq!(status.message, "INTERNAL: ledger write failed");
    }
    // PERMISSION_DENIED is the caller's problem: an error for the client only.
    let (c, s) = rig.pair(&traces[2]).await;
    assert_eq!(
        s.attr_str("rpc.response.status_code").as_deref(),
        Some("PERMISSION_DENIED")
    );
    assert!(s.attr("error.type").is_none());
    assert_eq!(s.span.status.as_ref().map_or(0, |s| s.code), 0);
    assert_eq!(
        c.attr_str("error.type").as_deref(),
        Some("PERMISSION_DENIED")
    );
    assert_eq!(c.span.status.as_ref().map_or(0, |s| s.code), 2);

    // The unknown method: _OTHER, the original kept, named `grpc`.
    let other = rig
        .collector
        .wait_until(WAIT, |c| {
            c.spans()
                .into_iter()
                .filter(|s| s.attr_str("rpc.method").as_deref() == Some("_OTHER"))
                .count()
                == 2
        })
        .await;
    assert!(other, "both spans of the unknown method are _OTHER");
    for span in rig
        .collector
        .spans()
        .iter()
        .filter(|s| s.attr_str("rpc.method").as_deref() == Some("_OTHER"))
    {
        assert_eq!(span.name(), "grpc");
        assert_eq!(
            span.attr_str("rpc.method_original").as_deref(),
            Some("ledger.v1.Ledger/Refund")
        );
        assert_eq!(
            span.attr_str("rpc.response.status_code").as_deref(),
            Some("UNIMPLEMENTED")
        );
    }

    // The duration histograms, with bounded labels.
    let text = rig.telemetry.prometheus_text();
    for line in [
        r#"rpc_server_call_duration_seconds_count{rpc_method="ledger.v1.Ledger/Post",rpc_response_status_code="OK",rpc_system_name="grpc"} 1"#,
        r#"rpc_client_call_duration_seconds_count{rpc_method="ledger.v1.Ledger/Post",rpc_response_status_code="INTERNAL",rpc_system_name="grpc"} 1"#,
        r#"rpc_server_call_duration_seconds_count{rpc_method="_OTHER",rpc_response_status_code="UNIMPLEMENTED",rpc_system_name="grpc"} 1"#,
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert!(
        !text.contains("Refund"),
        "unknown methods never become labels"
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_second_stream_is_measured_whole_and_flagged_slow() {
    let rig = rig(|t| {
        t.grpc_server_layer()
            .with_slow_threshold(Duration::from_secs(1))
    })
    .await;
    let mut client = rig.client().await;
    let req = WatchRequest {
        count: 4,
        interval_ms: 500,
        fail_with: 0,
    };
    let mut stream = client
        .watch(tonic::Request::new(req))
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    while stream.message().await.unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 4);
    let span = loop {
        if let Some(s) = rig.collector.spans().into_iter().find(|s| s.span.kind == 2) {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let nanos = span.span.end_time_unix_nano - span.span.start_time_unix_nano;
    assert!(
        nanos >= 2_000_000_000,
        "the span covers the stream: {nanos} ns"
    );
    assert_eq!(span.attr_str("paytrace.slow").as_deref(), Some("true"));
    let text = rig.telemetry.prometheus_text();
    let sum: f64 = text
        .lines()
        .find(|l| {
            l.starts_with(
                "rpc_server_call_duration_seconds_sum{rpc_method=\"ledger.v1.Ledger/Watch\"",
            )
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("a Watch duration");
    assert!(sum >= 2.0, "the histogram covers the stream: {sum} s");
    assert!(
        text.contains(r#"rpc_server_slow_calls_total{rpc_method="ledger.v1.Ledger/Watch",rpc_system_name="grpc"} 1"#),
        "{text}"
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_trace_context_in_metadata_starts_a_new_root() {
    let rig = rig(|t| t.grpc_server_layer()).await;
    let mut client = rig.bare_client().await;
    let mut req = post("");
    req.metadata_mut().insert(
        "traceparent",
        "00-zzzz-00f067aa0ba902b7-01".parse().unwrap(),
    );
    client.post(req).await.unwrap();
    let span = rig
        .collector
        .wait_for_span("ledger.v1.Ledger/Post", WAIT)
        .await
        .expect("a span");
    assert!(
        span.span.parent_span_id.is_empty(),
        "an invalid traceparent is ignored"
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_metadata_and_messages_never_leave() {
    let rig = rig(|t| {
        t.grpc_server_layer().with_request_metadata([
            http::HeaderName::from_static("x-note"),
            http::HeaderName::from_static("authorization"),
            http::HeaderName::from_static("x-api-key"),
        ])
    })
    .await;
    let mut client = rig.client().await;
    let mut rng = Rng::new(16);
    let mut secrets = Vec::new();
    for _ in 0..50 {
        let (card, in_note, token, key) = (
            rng.card(),
            rng.card(),
            rng.word(b"abcdefXYZ0123456789", 24),
            rng.word(b"ABCDEF0123456789", 32),
        );
        secrets.push(Secret::Card(card.clone()));
        secrets.push(Secret::Card(in_note.clone()));
        secrets.push(Secret::Opaque(token.clone()));
        secrets.push(Secret::Opaque(key.clone()));
        let mut req = tonic::Request::new(PostRequest {
            account: "acct".into(),
            amount_cents: 1,
            mode: "fail".into(),
            note: format!("card {card} token {token}"),
            ..Default::default()
        });
        let md = req.metadata_mut();
        md.insert("authorization", format!("Bearer {token}").parse().unwrap());
        md.insert("x-api-key", key.parse().unwrap());
        md.insert("x-note", format!("card {in_note}").parse().unwrap());
        let _ = client.post(req).await;
    }
    assert!(
        rig.collector
            .wait_until(WAIT, |c| c.spans().len() >= 100)
            .await
    );
    let spans = rig.collector.spans();
    assert!(
        spans
            .iter()
            .any(|s| s.attr_str("rpc.request.metadata.x-note").is_some()),
        "the allow-listed key is recorded (redacted)"
    );
    assert!(spans
        .iter()
        .all(|s| s.attr("rpc.request.metadata.authorization").is_none()));
    assert!(spans
        .iter()
        .all(|s| s.attr("rpc.request.metadata.x-api-key").is_none()));
    let telemetry_text = rig.telemetry.prometheus_text();
    let collector = rig.shutdown().await;
    use prost::Message as _;
    let mut found = Vec::new();
    for r in collector.trace_requests() {
        found.extend(leaks("traces", &r.message.encode_to_vec(), &secrets));
    }
    for r in collector.log_requests() {
        found.extend(leaks("logs", &r.message.encode_to_vec(), &secrets));
    }
    for r in collector.metric_requests() {
        found.extend(leaks("metrics", &r.message.encode_to_vec(), &secrets));
    }
    found.extend(leaks("/metrics", telemetry_text.as_bytes(), &secrets));
    assert!(
        found.is_empty(),
        "{} leaks: {:?}",
        found.len(),
        &found[..found.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_keep_keeps_failed_calls_whole_at_a_tiny_ratio() {
    let rig = rig_with(
        |c| c.with_sampler(paytrace::Sampler::ParentBasedRatio(0.000_001)),
        |t| t.grpc_server_layer(),
    )
    .await;
    let mut client = rig.client().await;
    for i in 0..40 {
        // Every tenth call fails with INTERNAL (a server error); the rest succeed or are denied.
        let mode = match i % 10 {
            0 => "fail",
            5 => "deny",
            _ => "",
        };
        let _ = client.post(post(mode)).await;
    }
    let openmetrics = {
        use tower::ServiceExt as _;
        let request = http::Request::get("/metrics")
            .header("accept", "application/openmetrics-text;version=1.0.0")
            .body(())
            .unwrap();
        let response = rig.telemetry.metrics_service().oneshot(request).await;
        response.unwrap().into_body()
    };
    let collector = rig.shutdown().await;
    let spans = collector.spans();
    // Duration exemplars name exported traces only: the failed calls', never a dropped OK one.
    let exported: Vec<String> = spans.iter().map(|s| s.trace_id_hex()).collect();
    let mut exemplars = Vec::new();
    for line in openmetrics.lines() {
        if let Some((sample, exemplar)) = line.split_once(" # {") {
            let trace = exemplar
                .split("trace_id=\"")
                .nth(1)
                .and_then(|t| t.get(..32));
            assert!(
                exported.iter().any(|e| Some(e.as_str()) == trace),
                "exemplar of an unexported trace: {line}"
            );
            assert!(!sample.contains("=\"OK\""), "{line}");
            exemplars.push(sample.split('{').next().unwrap_or_default().to_owned());
        }
    }
    for family in [
        "rpc_server_call_duration_seconds_bucket",
        "rpc_client_call_duration_seconds_bucket",
    ] {
        assert!(
            exemplars.iter().any(|f| f == family),
            "{family}: {openmetrics}"
        );
    }
    let codes: Vec<(i32, String)> = spans
        .iter()
        .map(|s| {
            (
                s.span.kind,
                s.attr_str("rpc.response.status_code").unwrap_or_default(),
            )
        })
        .collect();
    // The client span is each trace's local root: kept with its server child.
    assert_eq!(
        codes.iter().filter(|(_, c)| c == "INTERNAL").count(),
        8,
        "4 failed calls, client and server span each: {codes:?}"
    );
    assert!(
        codes.iter().all(|(_, c)| c != "OK"),
        "successful calls are not kept at a ratio of 1e-6: {codes:?}"
    );
    for s in spans.iter().filter(|s| s.span.kind == 2) {
        assert!(
            spans
                .iter()
                .any(|c| c.span.kind == 3 && c.span.span_id == s.span.parent_span_id),
            "each kept trace arrives whole"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_number_in_the_authority_is_masked() {
    use http_body_util::BodyExt as _;
    use tower::{Layer as _, ServiceExt as _};
    install_propagator();
    let collector = TestCollector::start().await.unwrap();
    let telemetry = Telemetry::start(config(&collector)).unwrap();
    let service = telemetry.grpc_server_layer().layer(LedgerServer);
    let request =
        http::Request::post("http://4111111111111111.pay.example:50051/ledger.v1.Ledger/Refund")
            .header("content-type", "application/grpc")
            .body(tonic::body::Body::empty())
            .unwrap();
    let response = service.oneshot(request).await.unwrap();
    let _ = response.into_body().collect().await;
    let span = collector.wait_for_span("grpc", WAIT).await.expect("span");
    let address = span.attr_str("server.address").unwrap_or_default();
    assert!(!address.contains("4111111111111111"), "{address}");
    assert!(address.contains("411111******1111"), "{address}");
    assert_eq!(span.attr_str("server.port").as_deref(), Some("50051"));
    let t = telemetry;
    tokio::task::spawn_blocking(move || t.shutdown())
        .await
        .unwrap()
        .unwrap();
}

const FORGED_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const FORGED_SPAN: &str = "b7ad6b7169203331";

/// A call without the client layer, its metadata forged: a sampled parent and baggage.
async fn forged_call(rig: &Rig) -> ReceivedSpan {
    let mut client = rig.bare_client().await;
    let mut req = post("");
    let forged = format!("00-{FORGED_TRACE}-{FORGED_SPAN}-01");
    req.metadata_mut()
        .insert("traceparent", forged.parse().unwrap());
    req.metadata_mut()
        .insert("baggage", "tenant=evil".parse().unwrap());
    client.post(req).await.unwrap();
    rig.collector
        .wait_for_span("ledger.v1.Ledger/Post", WAIT)
        .await
        .expect("a server span")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_grpc_caller_gets_a_new_root_linked_to_its_context() {
    // Config::with_trust reaches the layer Telemetry::grpc_server_layer builds.
    let rig = rig_with(|c| c.with_trust(Trust::None), |t| t.grpc_server_layer()).await;
    let span = forged_call(&rig).await;
    assert_ne!(span.trace_id_hex(), FORGED_TRACE);
    assert!(span.span.parent_span_id.is_empty(), "a root");
    assert_eq!(span.span.links.len(), 1);
    let link = &span.span.links[0];
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(hex(&link.trace_id), FORGED_TRACE);
    assert_eq!(hex(&link.span_id), FORGED_SPAN);
    assert_eq!(link.flags & 0x01, 0x01, "the sampled flag, recorded");
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_peer_in_the_trusted_networks_is_continued() {
    let rig = rig(|t| {
        let loopback = Trust::peers_in(["127.0.0.0/8", "::1"]).unwrap();
        t.grpc_server_layer().with_trust(loopback)
    })
    .await;
    let span = forged_call(&rig).await;
    assert_eq!(span.trace_id_hex(), FORGED_TRACE);
    assert_eq!(span.parent_span_id_hex(), FORGED_SPAN);
    assert!(span.span.links.is_empty());
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_client_sends_the_context_to_allowed_hosts_only() {
    let rig = rig(|t| t.grpc_server_layer()).await;
    let tracer = rig.telemetry.tracer_provider().tracer("test");
    for (allowed, hosts) in [(false, "ledger.internal"), (true, "127.0.0.1")] {
        rig.collector.clear();
        let mut client = rig
            .client_with(|layer| layer.with_propagation(PropagateTo::hosts([hosts])))
            .await;
        let root = tracer.start("caller");
        let trace_id = root.span_context().trace_id().to_string();
        let cx = opentelemetry::Context::current_with_span(root);
        client
            .post(post(""))
            .with_context(cx.clone())
            .await
            .unwrap();
        cx.span().end();
        let spans = rig.collector.wait_for_spans(3, WAIT).await;
        let kind = |k: i32| spans.iter().find(|s| s.span.kind == k).expect("a span");
        let (client_span, server_span) = (kind(3), kind(2));
        assert_eq!(
            client_span.trace_id_hex(),
            trace_id,
            "the client span is recorded"
        );
        if allowed {
            assert_eq!(server_span.trace_id_hex(), trace_id, "{hosts}: continued");
            assert_eq!(server_span.parent_span_id_hex(), client_span.span_id_hex());
        } else {
            assert_ne!(
                server_span.trace_id_hex(),
                trace_id,
                "{hosts}: nothing sent"
            );
            assert!(server_span.span.parent_span_id.is_empty());
        }
    }
    rig.shutdown().await;
}
