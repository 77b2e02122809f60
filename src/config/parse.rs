//! Parsers for variable values: each returns the reason a value is refused, and the caller
//! names the variable.

use std::time::Duration;

use super::Propagator;

pub(super) fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected `true` or `false`".into()),
    }
}

pub(super) fn parse_usize(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .map_err(|e| format!("expected a non-negative integer: {e}"))
}

pub(super) fn parse_millis(s: &str) -> Result<Duration, String> {
    s.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|e| format!("expected milliseconds as an integer: {e}"))
}

pub(super) fn parse_ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        Ok(_) => Err("ratio must be within [0, 1]".into()),
        Err(e) => Err(format!("expected a number: {e}")),
    }
}

/// The propagators named, and the names not known (the specification: warn and skip them).
pub(super) fn parse_propagators(s: &str) -> Result<(Vec<Propagator>, Vec<String>), String> {
    let mut out = Vec::new();
    let mut unknown = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let p = match name.to_ascii_lowercase().as_str() {
            "tracecontext" => Propagator::TraceContext,
            "baggage" => Propagator::Baggage,
            "b3" => Propagator::B3,
            "b3multi" => Propagator::B3Multi,
            "jaeger" => Propagator::Jaeger,
            "none" => return Ok((Vec::new(), unknown)),
            _ => {
                unknown.push(name.to_owned());
                continue;
            }
        };
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok((out, unknown))
}

/// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`.
pub(super) fn parse_temporality(
    s: &str,
) -> Result<opentelemetry_sdk::metrics::Temporality, String> {
    use opentelemetry_sdk::metrics::Temporality;
    match s.to_ascii_lowercase().as_str() {
        "cumulative" => Ok(Temporality::Cumulative),
        "delta" => Ok(Temporality::Delta),
        "lowmemory" => Ok(Temporality::LowMemory),
        _ => Err("expected `cumulative`, `delta` or `lowmemory`".into()),
    }
}

/// `OTEL_LOG_LEVEL` as an `EnvFilter` level.
pub(super) fn parse_log_level(s: &str) -> Result<&'static str, String> {
    match s.to_ascii_lowercase().as_str() {
        "none" | "off" => Ok("off"),
        "error" => Ok("error"),
        "warn" | "warning" => Ok("warn"),
        "info" => Ok("info"),
        "debug" => Ok("debug"),
        "trace" | "verbose" | "all" => Ok("trace"),
        _ => Err("expected `none`, `error`, `warn`, `info`, `debug` or `trace`".into()),
    }
}

/// `k=v,k2=v2` with percent-encoded values (W3C baggage-like syntax used by the OTel spec).
pub(super) fn parse_key_values(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not key=value"))?;
        let k = k.trim();
        if k.is_empty() {
            return Err(format!("empty key in `{pair}`"));
        }
        out.push((percent_decode(k)?, percent_decode(v.trim())?));
    }
    Ok(out)
}

pub(super) fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = crate::util::percent_escape_at(bytes, i)
                .ok_or_else(|| format!("bad percent-encoding in `{s}`"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{s}` is not UTF-8 after percent-decoding"))
}

pub(super) fn parse_endpoint(s: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = s.trim().parse().map_err(|e| format!("not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err("the scheme must be http:// or https://".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("missing host".into());
    }
    Ok(uri)
}
