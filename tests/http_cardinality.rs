//! Label cardinality stays bounded whatever clients send: 10,000 distinct raw paths (matched
//! and unmatched) with random methods produce a small, fixed number of series.
// Route templates come from axum's `MatchedPath`, read with the `axum` feature (default).
#![cfg(feature = "axum")]

mod support;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use http_body_util::BodyExt as _;
use support::*;
use tower::ServiceExt as _;

/// A small deterministic generator (no `rand` dependency).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

fn series(registry: &prometheus::Registry) -> (usize, BTreeSet<(String, String)>) {
    let mut count = 0;
    let mut labels = BTreeSet::new();
    for family in registry.gather() {
        for metric in family.get_metric() {
            count += 1;
            for pair in metric.get_label() {
                labels.insert((pair.name().to_owned(), pair.value().to_owned()));
            }
        }
    }
    (count, labels)
}

async fn drive(app: Router, requests: usize, seed: u64) {
    let mut rng = Lcg(seed);
    for i in 0..requests {
        let method = match rng.next() % 10 {
            n @ 0..=6 => METHODS[n as usize].to_owned(),
            _ => format!("M{}", rng.next() % 100_000), // arbitrary extension methods
        };
        let n = rng.next();
        let path = match n % 3 {
            0 => format!("/orders/{i}-{n}?q={n}"),
            1 => format!("/users/{i}/cards/{n}"),
            _ => format!("/random/{i}/{n}"),
        };
        let req = Request::builder()
            .method(method.as_str())
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        res.into_body().collect().await.unwrap();
    }
}

#[tokio::test]
async fn ten_thousand_raw_paths_make_a_bounded_number_of_series() {
    let spans = Spans::with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOff);
    let (layer, registry) = spans.layer();
    let app = Router::new()
        .route("/orders/{id}", get(|| async { "o" }).post(|| async { "p" }))
        .route("/users/{id}/cards/{card}", get(|| async { "c" }))
        .layer(layer);
    drive(app, 10_000, 7).await;

    let (count, labels) = series(&registry);
    // methods (10 max) × routes (2 + fallback) × statuses (200, 404, 405 at most) per
    // histogram, plus gauges and counters: far below one series per path.
    let statuses: BTreeSet<_> = labels
        .iter()
        .filter(|(k, _)| k == "http_response_status_code")
        .map(|(_, v)| v.clone())
        .collect();
    let routes: BTreeSet<_> = labels
        .iter()
        .filter(|(k, _)| k == "http_route")
        .map(|(_, v)| v.clone())
        .collect();
    let methods: BTreeSet<_> = labels
        .iter()
        .filter(|(k, _)| k == "http_request_method")
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(
        routes,
        ["/orders/{id}", "/users/{id}/cards/{card}", "unmatched"]
            .map(String::from)
            .into()
    );
    assert!(
        methods.len() <= 10 && methods.contains("_OTHER"),
        "{methods:?}"
    );
    assert!(methods.iter().all(|m| !m.starts_with('M')), "{methods:?}");
    assert!(statuses.len() <= 3, "{statuses:?}");
    assert!(count <= 3 * 10 * 3 * 3 + 10 + 10 * 3, "{count} series");
}

#[tokio::test]
async fn a_route_hook_returning_raw_paths_is_still_bounded() {
    let spans = Spans::with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOff);
    let (layer, registry) = spans.layer();
    // A misuse: the raw path as "route". The layer's route table caps it.
    let layer = layer.with_route(|req| Some(req.uri.path()));
    let svc = tower::Layer::layer(
        &layer,
        tower::service_fn(|_req: Request<Body>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty()))
        }),
    );
    for i in 0..3_000 {
        let req = Request::get(format!("/p/{i}")).body(Body::empty()).unwrap();
        svc.clone().oneshot(req).await.unwrap();
    }
    let (_, labels) = series(&registry);
    let routes = labels.iter().filter(|(k, _)| k == "http_route").count();
    assert!(routes <= 1024 + 1, "{routes} route label values");
    assert!(labels.contains(&("http_route".to_owned(), "_OTHER".to_owned())));
}
