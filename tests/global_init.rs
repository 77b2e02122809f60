//! The process-wide install, alone in its own test binary (it sets globals).

use paytrace::{init_tracer, Config, Error, LogFormat};

#[test]
fn second_init_is_an_error_not_a_panic() {
    let endpoint = "http://127.0.0.1:9"; // nothing listens; nothing is sent in this test
    let config = || {
        Config::new()
            .with_endpoint(endpoint)
            .with_log_format(LogFormat::Off)
            .with_shutdown_timeout(std::time::Duration::from_millis(200))
    };
    let telemetry = init_tracer(config()).expect("first init");
    assert!(matches!(
        init_tracer(config()),
        Err(Error::AlreadyInitialized)
    ));
    // The global tracer provider is paytrace's.
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    let span = opentelemetry::global::tracer_provider()
        .tracer("t")
        .start("s");
    assert!(span.is_recording());
    drop(span);
    let _ = telemetry.shutdown();
    // After shutdown the OTel globals may be installed again, but the tracing subscriber is
    // process-wide for good: a second install must say so, not panic.
    match init_tracer(config()) {
        Err(Error::SubscriberAlreadySet(_)) => {}
        other => panic!("expected SubscriberAlreadySet, got {other:?}"),
    }
    let again =
        init_tracer(config().with_install_subscriber(false)).expect("re-init without subscriber");
    let _ = again.shutdown();
}
