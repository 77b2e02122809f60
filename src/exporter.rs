//! How a signal leaves the process: the [`Exporter`] (`OTEL_*_EXPORTER`) and, for OTLP, the
//! [`Protocol`] (`OTEL_EXPORTER_OTLP_PROTOCOL`).

/// The OTLP transport for [`Config::with_protocol`](crate::Config::with_protocol).
///
/// ```
/// let config = paytrace::Config::new()
///     .with_protocol(paytrace::Protocol::HttpProtobuf)
///     .with_endpoint("http://collector:4318");
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP/gRPC (`grpc`), by default to `http://localhost:4317`. The default.
    #[default]
    Grpc,
    /// OTLP/HTTP with protobuf bodies (`http/protobuf`): `POST {endpoint}/v1/traces`, … , by
    /// default to `http://localhost:4318`.
    HttpProtobuf,
}

impl Protocol {
    /// The value of `OTEL_EXPORTER_OTLP_PROTOCOL` that names it.
    ///
    /// ```
    /// assert_eq!(paytrace::Protocol::HttpProtobuf.as_str(), "http/protobuf");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Protocol, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "grpc" => Ok(Protocol::Grpc),
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            "http/json" => Err(
                "`http/json` is not supported: use `http/protobuf` (same endpoints, \
                                smaller and faster) or `grpc`"
                    .into(),
            ),
            _ => Err("expected `grpc` or `http/protobuf`".into()),
        }
    }
}

/// Where a signal goes, for [`Config::with_exporter`](crate::Config::with_exporter)
/// (`OTEL_TRACES_EXPORTER`, `OTEL_METRICS_EXPORTER`, `OTEL_LOGS_EXPORTER`).
///
/// ```
/// use paytrace::{Config, Exporter, Signal};
/// let config = Config::new().with_exporter(Signal::Traces, Exporter::None);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Exporter {
    /// OTLP to the configured endpoint (`otlp`). The default.
    #[default]
    Otlp,
    /// Nowhere (`none`): the signal is still recorded where other parts need it (trace ids in
    /// logs, `/metrics`), but not exported.
    None,
    /// Human-readable lines on stdout (`console`), for development.
    Console,
}

impl Exporter {
    /// The value of `OTEL_*_EXPORTER` that names it.
    ///
    /// ```
    /// assert_eq!(paytrace::Exporter::Console.as_str(), "console");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Exporter::Otlp => "otlp",
            Exporter::None => "none",
            Exporter::Console => "console",
        }
    }

    /// The specification allows a list; paytrace exports each signal one way, so a list may
    /// name one exporter (and `none` alone).
    pub(crate) fn parse(s: &str) -> Result<Exporter, String> {
        let names: Vec<String> = s
            .split(',')
            .map(|n| n.trim().to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
        match names.as_slice() {
            [one] => match one.as_str() {
                "otlp" => Ok(Exporter::Otlp),
                "none" => Ok(Exporter::None),
                "console" | "logging" => Ok(Exporter::Console),
                "zipkin" | "jaeger" | "prometheus" => Err(format!(
                    "`{one}` is not an exporter paytrace has (OTLP covers it; Prometheus is served \
                     by `Telemetry::metrics_service`): expected `otlp`, `none` or `console`"
                )),
                _ => Err("expected `otlp`, `none` or `console`".into()),
            },
            _ => Err("expected one of `otlp`, `none` or `console`".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols() {
        assert_eq!(Protocol::parse("grpc"), Ok(Protocol::Grpc));
        assert_eq!(
            Protocol::parse(" HTTP/Protobuf "),
            Ok(Protocol::HttpProtobuf)
        );
        assert!(Protocol::parse("http/json")
            .unwrap_err()
            .contains("http/protobuf"));
        assert!(Protocol::parse("udp").is_err());
    }

    #[test]
    fn exporters() {
        assert_eq!(Exporter::parse("otlp"), Ok(Exporter::Otlp));
        assert_eq!(Exporter::parse("none"), Ok(Exporter::None));
        assert_eq!(Exporter::parse("console"), Ok(Exporter::Console));
        assert!(Exporter::parse("otlp,console").is_err());
        assert!(Exporter::parse("zipkin").unwrap_err().contains("zipkin"));
    }
}
