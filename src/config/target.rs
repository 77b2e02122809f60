//! One signal's exporter target: one small resolver per setting, each in the same order — set
//! in code, then the signal's variable, then the general one, then the default — and each error
//! naming the variable (or the `with_*` method) the bad value came from.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::env::{exporter_var, general_var, signal_var, Env};
use super::parse::{parse_bool, parse_endpoint, parse_key_values, parse_millis};
use super::Config;
use crate::error::Error;
use crate::export::{Signal, Target, NO_OTLP_HTTP, NO_TLS};
use crate::exporter::{Exporter, Protocol};

const DEFAULT_ENDPOINT: &str = "http://localhost:4317";
const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318";
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client certificate and its key, PEM.
type PemPair = (Vec<u8>, Vec<u8>);

/// The transports this build has: the cargo features say.
#[derive(Debug, Clone, Copy)]
struct Built {
    otlp_http: bool,
    tls: bool,
}

const BUILT: Built = Built {
    otlp_http: cfg!(feature = "otlp-http"),
    tls: cfg!(feature = "tls"),
};

impl Built {
    /// `protocol`, set under `name`, unless this build lacks it.
    fn check_protocol(self, name: &'static str, protocol: Protocol) -> Result<(), Error> {
        if protocol == Protocol::HttpProtobuf && !self.otlp_http {
            return Err(Error::invalid(name, protocol.as_str(), NO_OTLP_HTTP));
        }
        Ok(())
    }

    /// `endpoint`, set under `name`, unless it is `https` and this build has no TLS.
    fn check_endpoint(self, name: &'static str, endpoint: &http::Uri) -> Result<(), Error> {
        if endpoint.scheme_str() == Some("https") && !self.tls {
            return Err(Error::invalid(name, endpoint.to_string(), NO_TLS));
        }
        Ok(())
    }
}

/// The OTLP variables of one signal: its own variable wins over the general one.
pub(super) struct SignalEnv<'a> {
    pub(super) env: &'a Env<'a>,
    pub(super) signal: Signal,
}

impl SignalEnv<'_> {
    /// The value of `OTEL_EXPORTER_OTLP_{SIGNAL_}{suffix}` and the name it was read under.
    fn get(&self, suffix: &'static str) -> Option<(&'static str, &str)> {
        let specific = signal_var(self.signal.env_name(), suffix);
        if let Some(v) = self.env.get(specific) {
            return Some((specific, v));
        }
        let general = general_var(suffix);
        self.env.get(general).map(|v| (general, v))
    }

    /// The variable parsed, its error naming the variable read.
    fn parse<T>(
        &self,
        suffix: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, Error> {
        match self.get(suffix) {
            Some((name, v)) => parse(v).map(Some).map_err(|r| Error::invalid(name, v, r)),
            None => Ok(None),
        }
    }
}

impl Config {
    /// Where and how `signal` is exported.
    pub(super) fn resolve_target(&self, env: &Env<'_>, signal: Signal) -> Result<Target, Error> {
        let vars = SignalEnv { env, signal };
        let protocol = self.resolve_protocol(&vars)?;
        Ok(Target {
            signal,
            exporter: self.resolve_exporter(env, signal)?,
            endpoint: self.resolve_endpoint(&vars, protocol)?,
            headers: resolve_headers(&vars, &self.headers)?,
            gzip: match self.compression {
                Some(g) => g,
                None => vars
                    .parse("COMPRESSION", parse_compression)?
                    .unwrap_or(true),
            },
            timeout: resolve_timeout(self.timeout, &vars)?,
            ca_pem: self.resolve_ca(&vars)?,
            client_identity: self.resolve_client_identity(&vars)?,
            protocol,
        })
    }

    /// The protocol set in code, else the variable's; one this build lacks is refused by name.
    fn resolve_protocol(&self, vars: &SignalEnv<'_>) -> Result<Protocol, Error> {
        let (name, protocol) = match (self.protocol, vars.get("PROTOCOL")) {
            (Some(p), _) => ("with_protocol", p),
            (None, Some((name, v))) => (
                name,
                Protocol::parse(v).map_err(|r| Error::invalid(name, v, r))?,
            ),
            (None, None) => return Ok(Protocol::default()),
        };
        BUILT.check_protocol(name, protocol)?;
        Ok(protocol)
    }

    fn resolve_exporter(&self, env: &Env<'_>, signal: Signal) -> Result<Exporter, Error> {
        if let Some(e) = self.exporters.get(&signal) {
            return Ok(*e);
        }
        let name = exporter_var(signal.env_name());
        Ok(env.parse(name, Exporter::parse)?.unwrap_or(Exporter::Otlp))
    }

    /// The endpoint URL: a per-signal endpoint as is, a general one with OTLP/HTTP's
    /// `/v1/{signal}` appended; a scheme-less one `https` unless `INSECURE` says otherwise.
    fn resolve_endpoint(
        &self,
        vars: &SignalEnv<'_>,
        protocol: Protocol,
    ) -> Result<http::Uri, Error> {
        let (name, endpoint, general) = self.endpoint_source(vars, protocol);
        let endpoint = with_scheme(endpoint, vars)?;
        let uri = parse_endpoint(&endpoint).map_err(|r| Error::invalid(name, &endpoint, r))?;
        BUILT.check_endpoint(name, &uri)?;
        if protocol == Protocol::HttpProtobuf && general {
            return append_signal_path(&uri, vars.signal)
                .map_err(|r| Error::invalid(name, uri.to_string(), r));
        }
        Ok(uri)
    }

    /// The endpoint as given, where from, and whether it is a general (base) endpoint.
    fn endpoint_source(
        &self,
        vars: &SignalEnv<'_>,
        protocol: Protocol,
    ) -> (&'static str, String, bool) {
        if let Some(e) = self.signal_endpoints.get(&vars.signal) {
            return ("with_signal_endpoint", e.clone(), false);
        }
        if let Some(e) = &self.endpoint {
            return ("with_endpoint", e.clone(), true);
        }
        match vars.get("ENDPOINT") {
            Some((name, v)) => (name, v.to_owned(), name == general_var("ENDPOINT")),
            None => {
                let default = match protocol {
                    Protocol::Grpc => DEFAULT_ENDPOINT,
                    Protocol::HttpProtobuf => DEFAULT_HTTP_ENDPOINT,
                };
                (general_var("ENDPOINT"), default.to_owned(), true)
            }
        }
    }

    fn resolve_ca(&self, vars: &SignalEnv<'_>) -> Result<Option<Vec<u8>>, Error> {
        let path = match &self.certificate {
            Some(p) => Some(p.clone()),
            None => vars.get("CERTIFICATE").map(|(_, v)| PathBuf::from(v)),
        };
        path.map(|p| read_pem(&p, "CA certificate")).transpose()
    }

    /// The client certificate and key for mutual TLS: both or neither.
    fn resolve_client_identity(&self, vars: &SignalEnv<'_>) -> Result<Option<PemPair>, Error> {
        let (cert, key) = match &self.client_identity {
            Some((cert, key)) => (cert.clone(), key.clone()),
            None => match (vars.get("CLIENT_CERTIFICATE"), vars.get("CLIENT_KEY")) {
                (Some((_, cert)), Some((_, key))) => (PathBuf::from(cert), PathBuf::from(key)),
                (None, None) => return Ok(None),
                (Some((set, _)), None) => return Err(alone(set, vars, "CLIENT_KEY")),
                (None, Some((set, _))) => return Err(alone(set, vars, "CLIENT_CERTIFICATE")),
            },
        };
        let cert = read_pem(&cert, "client certificate")?;
        Ok(Some((cert, read_pem(&key, "client key")?)))
    }
}

/// One of the mutual-TLS pair set without the other, named in the same family (the signal's
/// own variables, or the general ones) as the one that is set.
fn alone(set: &str, vars: &SignalEnv<'_>, missing: &'static str) -> Error {
    let per_signal = signal_var(vars.signal.env_name(), missing);
    let same_family = set.starts_with(per_signal.trim_end_matches(missing));
    let missing = if same_family {
        per_signal
    } else {
        general_var(missing)
    };
    Error::invalid(
        missing,
        "",
        format!("must be set together with {set} (mutual TLS needs both)"),
    )
}

fn read_pem(path: &Path, what: &'static str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Certificate {
        what,
        path: path.display().to_string(),
        source,
    })
}

/// `https://` or `http://` before a scheme-less endpoint; `INSECURE` checked either way.
fn with_scheme(endpoint: String, vars: &SignalEnv<'_>) -> Result<String, Error> {
    // The specification: a scheme-less endpoint is secure unless INSECURE says not.
    let insecure = vars.parse("INSECURE", parse_bool)?.unwrap_or(false);
    if endpoint.contains("://") {
        return Ok(endpoint);
    }
    Ok(format!(
        "{}://{endpoint}",
        if insecure { "http" } else { "https" }
    ))
}

/// The variable's headers, then those set in code (which win by name); every name and value
/// valid as gRPC metadata, an error naming where a bad one came from (never its value).
fn resolve_headers(
    vars: &SignalEnv<'_>,
    code: &[(String, String)],
) -> Result<Vec<(String, String)>, Error> {
    let mut headers = vars.parse("HEADERS", parse_key_values)?.unwrap_or_default();
    if let Some((name, _)) = vars.get("HEADERS") {
        check_headers(&headers, name)?;
    }
    check_headers(code, "with_header")?;
    for (k, v) in code {
        headers.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
        headers.push((k.clone(), v.clone()));
    }
    Ok(headers)
}

fn check_headers(headers: &[(String, String)], source: &'static str) -> Result<(), Error> {
    use tonic::metadata::{Ascii, MetadataKey, MetadataValue};
    for (k, v) in headers {
        let valid_name = MetadataKey::<Ascii>::from_bytes(k.as_bytes()).is_ok();
        if !valid_name || MetadataValue::try_from(v.as_str()).is_err() {
            // Never echo a header value: it is usually a credential.
            let reason = "not a valid gRPC metadata name/value";
            return Err(Error::invalid(source, k.clone(), reason));
        }
    }
    Ok(())
}

fn parse_compression(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "gzip" => Ok(true),
        "none" | "" => Ok(false),
        _ => Err("expected `gzip` or `none`".to_owned()),
    }
}

fn resolve_timeout(code: Option<Duration>, vars: &SignalEnv<'_>) -> Result<Duration, Error> {
    let (source, timeout) = match (code, vars.get("TIMEOUT")) {
        (Some(t), _) => ("with_export_timeout", t),
        (None, Some((name, v))) => (
            name,
            parse_millis(v).map_err(|r| Error::invalid(name, v, r))?,
        ),
        (None, None) => return Ok(DEFAULT_TIMEOUT),
    };
    if timeout.is_zero() {
        return Err(Error::invalid(source, "0", "must be > 0"));
    }
    Ok(timeout)
}

/// `base` with `/v1/traces` (…) appended to its path, as OTLP/HTTP asks of a general endpoint.
fn append_signal_path(base: &http::Uri, signal: Signal) -> Result<http::Uri, String> {
    let path = base.path().trim_end_matches('/');
    let full = format!("{path}/v1/{}", signal.as_str());
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(full.parse().map_err(|e| format!("{e}"))?);
    http::Uri::from_parts(parts).map_err(|e| format!("{e}"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn vars_of(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn with_vars<R>(pairs: &[(&str, &str)], f: impl FnOnce(&SignalEnv<'_>) -> R) -> R {
        let map = vars_of(pairs);
        let env = Env(&map);
        f(&SignalEnv {
            env: &env,
            signal: Signal::Traces,
        })
    }

    fn named(err: Error) -> String {
        err.to_string()
    }

    #[test]
    fn the_signals_variable_wins_and_is_named() {
        with_vars(
            &[
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000"),
                ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "soon"),
            ],
            |vars| {
                let err = named(resolve_timeout(None, vars).unwrap_err());
                assert!(err.contains("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"), "{err}");
            },
        );
        with_vars(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "1500")], |vars| {
            assert_eq!(
                resolve_timeout(None, vars).unwrap(),
                Duration::from_millis(1500)
            );
        });
    }

    #[test]
    fn a_zero_timeout_names_its_source() {
        with_vars(&[("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0")], |vars| {
            let err = named(resolve_timeout(None, vars).unwrap_err());
            assert!(err.contains("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"), "{err}");
            let err = named(resolve_timeout(Some(Duration::ZERO), vars).unwrap_err());
            assert!(err.contains("with_export_timeout"), "{err}");
        });
        with_vars(&[], |vars| {
            assert_eq!(resolve_timeout(None, vars).unwrap(), DEFAULT_TIMEOUT);
        });
    }

    #[test]
    fn headers_merge_by_name_and_bad_ones_name_their_source() {
        with_vars(
            &[("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-token=a,x-tenant=t")],
            |vars| {
                let code = [("X-Token".to_owned(), "b".to_owned())];
                let headers = resolve_headers(vars, &code).unwrap();
                assert_eq!(
                    headers,
                    [
                        ("x-tenant".to_owned(), "t".to_owned()),
                        ("X-Token".to_owned(), "b".to_owned())
                    ]
                );
                let bad = [("bad name".to_owned(), "secret".to_owned())];
                let err = named(resolve_headers(vars, &bad).unwrap_err());
                assert!(
                    err.contains("with_header") && !err.contains("secret"),
                    "{err}"
                );
            },
        );
        with_vars(
            &[("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "bad name=x")],
            |vars| {
                let err = named(resolve_headers(vars, &[]).unwrap_err());
                assert!(err.contains("OTEL_EXPORTER_OTLP_TRACES_HEADERS"), "{err}");
            },
        );
    }

    #[test]
    fn compression_and_scheme() {
        assert_eq!(parse_compression("GZIP"), Ok(true));
        assert_eq!(parse_compression("none"), Ok(false));
        assert!(parse_compression("zstd").is_err());
        with_vars(&[], |vars| {
            assert_eq!(
                with_scheme("c:4317".into(), vars).unwrap(),
                "https://c:4317"
            );
            assert_eq!(with_scheme("http://c".into(), vars).unwrap(), "http://c");
        });
        with_vars(&[("OTEL_EXPORTER_OTLP_INSECURE", "true")], |vars| {
            assert_eq!(with_scheme("c:4317".into(), vars).unwrap(), "http://c:4317");
        });
        with_vars(&[("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "maybe")], |vars| {
            let err = named(with_scheme("http://c".into(), vars).unwrap_err());
            assert!(err.contains("OTEL_EXPORTER_OTLP_TRACES_INSECURE"), "{err}");
        });
    }

    #[test]
    fn what_a_build_lacks_is_refused_by_the_name_it_was_set_under() {
        let bare = Built {
            otlp_http: false,
            tls: false,
        };
        let http = Protocol::HttpProtobuf;
        let err = named(
            bare.check_protocol("OTEL_EXPORTER_OTLP_PROTOCOL", http)
                .unwrap_err(),
        );
        assert!(err.contains("OTEL_EXPORTER_OTLP_PROTOCOL") && err.contains("`otlp-http`"));
        assert!(bare.check_protocol("with_protocol", Protocol::Grpc).is_ok());
        let https: http::Uri = "https://c:4317".parse().unwrap();
        let err = named(bare.check_endpoint("with_endpoint", &https).unwrap_err());
        assert!(
            err.contains("with_endpoint") && err.contains("`tls`"),
            "{err}"
        );
        let plain: http::Uri = "http://c:4317".parse().unwrap();
        assert!(bare.check_endpoint("with_endpoint", &plain).is_ok());
        let full = Built {
            otlp_http: true,
            tls: true,
        };
        assert!(full.check_protocol("with_protocol", http).is_ok());
        assert!(full.check_endpoint("with_endpoint", &https).is_ok());
    }

    #[test]
    fn this_build_takes_what_its_features_say() {
        let config = Config::new();
        with_vars(
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")],
            |vars| {
                let got = config.resolve_protocol(vars).map_err(named);
                assert_eq!(got.is_ok(), cfg!(feature = "otlp-http"), "{got:?}");
            },
        );
        with_vars(
            &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://c:4317")],
            |vars| {
                let got = config.resolve_endpoint(vars, Protocol::Grpc).map_err(named);
                assert_eq!(got.is_ok(), cfg!(feature = "tls"), "{got:?}");
            },
        );
    }

    #[test]
    fn endpoints_by_source() {
        let config = Config::new();
        with_vars(&[], |vars| {
            let http = config
                .resolve_endpoint(vars, Protocol::HttpProtobuf)
                .unwrap();
            assert_eq!(http.to_string(), "http://localhost:4318/v1/traces");
            let grpc = config.resolve_endpoint(vars, Protocol::Grpc).unwrap();
            assert_eq!(grpc.to_string(), "http://localhost:4317/");
        });
        with_vars(
            &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/custom")],
            |vars| {
                let uri = config
                    .resolve_endpoint(vars, Protocol::HttpProtobuf)
                    .unwrap();
                assert_eq!(uri.to_string(), "http://c:4318/custom", "used as is");
            },
        );
        let coded = Config::new().with_endpoint("http://code:4318");
        with_vars(
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318")],
            |vars| {
                let uri = coded
                    .resolve_endpoint(vars, Protocol::HttpProtobuf)
                    .unwrap();
                assert_eq!(uri.to_string(), "http://code:4318/v1/traces", "code wins");
            },
        );
    }

    #[test]
    fn the_mutual_tls_pair_goes_together_and_files_say_what_they_are() {
        let config = Config::new();
        with_vars(
            &[("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/tmp/c.pem")],
            |vars| {
                let err = named(config.resolve_client_identity(vars).unwrap_err());
                assert!(
                    err.contains("OTEL_EXPORTER_OTLP_CLIENT_KEY")
                        && err.contains("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
                    "{err}"
                );
            },
        );
        with_vars(
            &[("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "/tmp/k.pem")],
            |vars| {
                let err = named(config.resolve_client_identity(vars).unwrap_err());
                assert!(
                    err.contains("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"),
                    "{err}"
                );
            },
        );
        with_vars(&[], |vars| {
            assert_eq!(config.resolve_client_identity(vars).unwrap(), None);
            assert_eq!(config.resolve_ca(vars).unwrap(), None);
        });
        let missing =
            Config::new().with_client_certificate("/nonexistent/c.pem", "/nonexistent/k.pem");
        with_vars(&[], |vars| {
            let err = named(missing.resolve_client_identity(vars).unwrap_err());
            assert!(
                err.contains("client certificate /nonexistent/c.pem"),
                "{err}"
            );
        });
    }

    #[test]
    fn exporters_by_signal() {
        let map = vars_of(&[("OTEL_LOGS_EXPORTER", "console")]);
        let env = Env(&map);
        let config = Config::new();
        assert_eq!(
            config.resolve_exporter(&env, Signal::Logs).unwrap(),
            Exporter::Console
        );
        assert_eq!(
            config.resolve_exporter(&env, Signal::Traces).unwrap(),
            Exporter::Otlp
        );
        let coded = Config::new().with_exporter(Signal::Logs, Exporter::None);
        assert_eq!(
            coded.resolve_exporter(&env, Signal::Logs).unwrap(),
            Exporter::None
        );
    }
}
