//! The OpenTelemetry resource: who is sending (service, version, environment, host, process).

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;

use crate::config::ResourceSettings;

/// The resource every signal carries: detected values, then `OTEL_RESOURCE_ATTRIBUTES` and
/// attributes set in code, then the dedicated setters.
pub(super) fn build_resource(s: &ResourceSettings) -> Resource {
    let mut base = vec![
        KeyValue::new("process.pid", i64::from(std::process::id())),
        KeyValue::new("telemetry.sdk.name", "opentelemetry"),
        KeyValue::new("telemetry.sdk.language", "rust"),
        KeyValue::new("telemetry.sdk.version", "0.33"),
        KeyValue::new("telemetry.distro.name", "paytrace"),
        KeyValue::new("telemetry.distro.version", env!("CARGO_PKG_VERSION")),
    ];
    if let Some(host) = host_name() {
        base.push(KeyValue::new("host.name", host));
    }
    let mut explicit = Vec::new();
    match &s.service_name {
        Some(name) => explicit.push(KeyValue::new("service.name", name.clone())),
        None => base.extend(unknown_service(&s.attributes)),
    }
    if let Some(v) = &s.service_version {
        explicit.push(KeyValue::new("service.version", v.clone()));
    }
    if let Some(e) = &s.environment {
        explicit.push(KeyValue::new("deployment.environment.name", e.clone()));
    }
    // Later entries win: detected values, then OTEL_RESOURCE_ATTRIBUTES and code attributes,
    // then the dedicated setters.
    Resource::builder_empty()
        .with_attributes(base)
        .with_attributes(s.attributes.iter().cloned())
        .with_attributes(explicit)
        .build()
}

/// `unknown_service:<executable>` when no attribute names the service either.
fn unknown_service(attributes: &[KeyValue]) -> Option<KeyValue> {
    if attributes
        .iter()
        .any(|kv| kv.key.as_str() == "service.name")
    {
        return None;
    }
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    Some(KeyValue::new(
        "service.name",
        format!("unknown_service:{exe}"),
    ))
}

fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|h| !h.is_empty())
}
