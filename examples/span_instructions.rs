//! One kind of span made N times, for callgrind: the per-span instructions of an
//! `#[instrument]` span through paytrace's subscriber against the OpenTelemetry-API span it
//! records, as roots or inside a request's context. The difference of two runs (N = 2,000 and
//! 4,000) divided by 2,000 is one span, without start-up.
//!
//! ```text
//! cargo build --release --example span_instructions
//! valgrind --tool=callgrind target/release/examples/span_instructions 4000 instrument-child
//! ```
//!
//! Kinds: `instrument`, `api`, `instrument-child`, `api-child`. Export is held off (an hour's
//! schedule delay), as in `benches/span.rs`.

use opentelemetry::trace::{TraceContextExt as _, Tracer as _};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().unwrap_or_else(|| "2000".into()).parse()?;
    let kind = args.next().unwrap_or_else(|| "instrument".into());
    let telemetry = paytrace::Telemetry::start(
        paytrace::Config::new()
            .with_endpoint("http://127.0.0.1:9")
            .with_install_subscriber(false)
            .with_log_format(paytrace::LogFormat::Off)
            .with_span_schedule_delay(std::time::Duration::from_secs(3600))
            .with_span_batch_size(1 << 20)
            .with_span_queue_size(1 << 20)
            .with_shutdown_timeout(std::time::Duration::from_millis(100)),
    )?;
    let _default = tracing::subscriber::set_default(telemetry.subscriber());
    let request = opentelemetry::Context::current_with_span(telemetry.tracer().start("request"));
    let _request = kind.ends_with("child").then(|| request.attach());
    let api = kind.starts_with("api");
    for _ in 0..n {
        if api {
            telemetry.tracer().in_span("op", |_cx| {});
        } else {
            instrumented();
        }
    }
    // No flush: the spans stay queued, and the process ends here.
    std::process::exit(0)
}

#[tracing::instrument]
fn instrumented() {}
