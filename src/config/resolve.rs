//! From [`Config`] to [`Settings`]: one small resolver per setting, each in the same order —
//! set in code, then the signal's variable, then the general variable, then the default.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::Temporality;

use super::env::*;
use super::parse::*;
use super::settings::{ExportSettings, Limits, ResourceSettings, Settings};
use super::{BatchOverrides, Config, Propagator, Sampler};
use crate::error::Error;
use crate::export::BatchSettings;
use crate::log::{LogSampling, LogSettings};
use crate::sampling::KeepSettings;
use crate::signal::PerSignal;
use crate::watchdog::WatchdogSettings;

pub(super) use super::target::DEFAULT_TIMEOUT;
// A server span of the HTTP layer is estimated at about 540 bytes (it encodes to about 490):
// 16 MiB holds a burst of 20,000 requests with room to spare while the export thread waits.
const DEFAULT_SPAN_QUEUE_BYTES: usize = 16 * 1024 * 1024;
// 512 spans gzip to well under 1 MiB: far below collectors' 4 MiB receive limit.
const DEFAULT_BATCH_SIZE: usize = 512;
// 1 s rather than the SDK's 5 s: spans reach the on-call engineer sooner and the queue drains
// before it fills at high request rates.
const DEFAULT_SCHEDULE_DELAY: Duration = Duration::from_secs(1);
const DEFAULT_METRIC_INTERVAL: Duration = Duration::from_secs(30);
// One huge header or field must not bloat every export.
const DEFAULT_ATTRIBUTE_VALUE_LENGTH: usize = 2048;
const DEFAULT_SPAN_ATTRIBUTE_COUNT: u32 = 128;
/// The specification's default budget of one metrics export.
const DEFAULT_METRIC_TIMEOUT: Duration = Duration::from_secs(30);
// Collectors refuse requests above 4 MiB by default (gRPC's receive limit): stay well below.
const DEFAULT_MAX_REQUEST_BYTES: usize = 3 * 1024 * 1024;
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_WATCHDOG_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_FAILURE_THRESHOLD: u64 = 10;
const DEFAULT_STALE_WINDOWS: u32 = 2;
// A log record weighs about 300–400 bytes encoded: 16 MiB holds one or two per request of such
// a burst.
const DEFAULT_LOG_QUEUE_BYTES: usize = 16 * 1024 * 1024;
const DEFAULT_STDOUT_BUFFER: usize = 8192;

/// What `init_tracer` logs at WARN: settings it read but did not follow as written.
fn warnings(env: &Env<'_>, unknown_propagators: &[String]) -> Vec<String> {
    let propagators = unknown_propagators.iter().map(|name| {
        format!(
            "{OTEL_PROPAGATORS}: unknown propagator `{name}` skipped (known: tracecontext, baggage, b3, b3multi, jaeger, none)"
        )
    });
    let exemplars = env
        .get(OTEL_METRICS_EXEMPLAR_FILTER)
        .filter(|v| v.trim().eq_ignore_ascii_case("always_on"))
        .map(|_| {
            format!(
                "{OTEL_METRICS_EXEMPLAR_FILTER}=always_on read as trace_based: an exemplar points only at a trace that is exported"
            )
        });
    propagators.chain(exemplars).collect()
}

impl Config {
    /// Every setting resolved and checked.
    pub(crate) fn resolve(&self) -> Result<Settings, Error> {
        let env = Env(&self.env);
        let sampler = self.resolve_sampler(&env)?;
        let (propagators, unknown_propagators) = self.resolve_propagators(&env)?;
        Ok(Settings {
            disabled: match self.disabled {
                Some(d) => d,
                None => env.parse(OTEL_SDK_DISABLED, parse_bool)?.unwrap_or(false),
            },
            resource: self.resolve_resource(&env)?,
            sampler,
            tail_keep: self.resolve_tail_keep(sampler)?,
            propagators,
            trust: self.trust.clone(),
            propagate_to: self.propagate_to.clone(),
            warnings: warnings(&env, &unknown_propagators),
            export: self.resolve_export(&env)?,
            log: self.resolve_log(&env)?,
            watchdog: self.resolve_watchdog()?,
            install_subscriber: self.install_subscriber.unwrap_or(true),
            control_max_ttl: positive_duration(
                "with_control_max_ttl",
                self.control_max_ttl,
                None,
                crate::control::DEFAULT_MAX_TTL,
            )?,
            shutdown_timeout: positive_duration(
                "with_shutdown_timeout",
                self.shutdown_timeout,
                None,
                DEFAULT_SHUTDOWN_TIMEOUT,
            )?,
        })
    }

    /// The propagators to install, and the unknown names `OTEL_PROPAGATORS` gave.
    fn resolve_propagators(&self, env: &Env<'_>) -> Result<(Vec<Propagator>, Vec<String>), Error> {
        if let Some(p) = &self.propagators {
            return Ok((p.clone(), Vec::new()));
        }
        Ok(env
            .parse(OTEL_PROPAGATORS, parse_propagators)?
            .unwrap_or_else(|| {
                (
                    vec![Propagator::TraceContext, Propagator::Baggage],
                    Vec::new(),
                )
            }))
    }

    fn resolve_watchdog(&self) -> Result<WatchdogSettings, Error> {
        Ok(WatchdogSettings {
            interval: positive_duration(
                "with_watchdog_interval",
                self.watchdog_interval,
                None,
                DEFAULT_WATCHDOG_INTERVAL,
            )?,
            failure_threshold: self.failure_threshold.unwrap_or(DEFAULT_FAILURE_THRESHOLD),
            stale_windows: self.stale_windows.unwrap_or(DEFAULT_STALE_WINDOWS).max(1),
        })
    }

    fn resolve_resource(&self, env: &Env<'_>) -> Result<ResourceSettings, Error> {
        let mut attributes = env
            .parse(OTEL_RESOURCE_ATTRIBUTES, parse_key_values)?
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| KeyValue::new(k, v))
            .collect::<Vec<_>>();
        attributes.extend(self.resource.iter().cloned());
        Ok(ResourceSettings {
            service_name: self
                .service_name
                .clone()
                .or_else(|| env.get(OTEL_SERVICE_NAME).map(str::to_owned)),
            service_version: self.service_version.clone(),
            environment: self.environment.clone(),
            attributes,
        })
    }

    fn resolve_sampler(&self, env: &Env<'_>) -> Result<Sampler, Error> {
        let sampler = match self.sampler {
            Some(s) => s,
            None => sampler_from_env(env)?,
        };
        match sampler.ratio() {
            Some(r) if !(0.0..=1.0).contains(&r) => Err(Error::invalid(
                "with_sampler",
                r.to_string(),
                "ratio must be within [0, 1]",
            )),
            _ => Ok(sampler),
        }
    }

    fn resolve_tail_keep(&self, sampler: Sampler) -> Result<Option<KeepSettings>, Error> {
        let Some(ratio) = sampler.ratio() else {
            return Ok(None);
        };
        if ratio >= 1.0 || self.tail_keep == Some(false) {
            return Ok(None);
        }
        let defaults = KeepSettings::default();
        let budget_bytes = self.keep_budget.unwrap_or(defaults.budget_bytes);
        if budget_bytes < 1024 {
            return Err(Error::invalid(
                "with_tail_keep_budget",
                budget_bytes.to_string(),
                "must be at least 1024",
            ));
        }
        Ok(Some(KeepSettings {
            budget_bytes,
            max_keeps_per_second: self
                .keep_rate_limit
                .unwrap_or(defaults.max_keeps_per_second),
            slow_after: positive_duration(
                "with_tail_keep_slow_after",
                self.keep_slow_after,
                None,
                defaults.slow_after,
            )?,
            ..defaults
        }))
    }

    /// Export settings; the checks run in this order, so the first invalid setting is the
    /// one reported.
    fn resolve_export(&self, env: &Env<'_>) -> Result<ExportSettings, Error> {
        let targets = PerSignal::try_from_fn(|signal| self.resolve_target(env, signal))?;
        let (span_batch, log_batch) = self.resolve_batches(env)?;
        let metric_interval = positive_duration(
            "with_metric_interval",
            self.metric_interval,
            env.parse(OTEL_METRIC_EXPORT_INTERVAL, parse_millis)?,
            DEFAULT_METRIC_INTERVAL,
        )?;
        let limits = self.resolve_limits(env)?;
        let metric_timeout = positive_duration(
            OTEL_METRIC_EXPORT_TIMEOUT,
            None,
            env.parse(OTEL_METRIC_EXPORT_TIMEOUT, parse_millis)?,
            DEFAULT_METRIC_TIMEOUT,
        )?;
        let temporality = self.resolve_temporality(env)?;
        let max_request_bytes = self.resolve_max_request_bytes()?;
        Ok(ExportSettings {
            targets,
            retry: self.retry.unwrap_or(true),
            span_batch,
            log_batch,
            metric_interval,
            metric_timeout,
            temporality,
            limits,
            exemplars_off: exemplars_off(env)?,
            max_request_bytes,
        })
    }

    /// The span and log queues: code, then the `OTEL_BSP_*` and `OTEL_BLRP_*` variables.
    fn resolve_batches(&self, env: &Env<'_>) -> Result<(BatchSettings, BatchSettings), Error> {
        let span_batch = self.span_queue.resolve(
            env,
            [
                OTEL_BSP_MAX_QUEUE_SIZE,
                OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
                OTEL_BSP_SCHEDULE_DELAY,
                OTEL_BSP_EXPORT_TIMEOUT,
            ],
            DEFAULT_SPAN_QUEUE_BYTES,
        )?;
        let log_batch = self.log_queue.resolve(
            env,
            [
                OTEL_BLRP_MAX_QUEUE_SIZE,
                OTEL_BLRP_MAX_EXPORT_BATCH_SIZE,
                OTEL_BLRP_SCHEDULE_DELAY,
                OTEL_BLRP_EXPORT_TIMEOUT,
            ],
            DEFAULT_LOG_QUEUE_BYTES,
        )?;
        Ok((span_batch, log_batch))
    }

    fn resolve_temporality(&self, env: &Env<'_>) -> Result<Temporality, Error> {
        Ok(match self.temporality {
            Some(t) => t,
            None => env
                .parse(
                    OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE,
                    parse_temporality,
                )?
                .unwrap_or_default(),
        })
    }

    fn resolve_max_request_bytes(&self) -> Result<usize, Error> {
        let max_request_bytes = self.max_request_bytes.unwrap_or(DEFAULT_MAX_REQUEST_BYTES);
        if max_request_bytes < 1024 {
            return Err(Error::invalid(
                "with_max_request_bytes",
                max_request_bytes.to_string(),
                "must be at least 1024",
            ));
        }
        Ok(max_request_bytes)
    }

    /// Each signal's own variable, then the general one, then the default.
    fn resolve_limits(&self, env: &Env<'_>) -> Result<Limits, Error> {
        let count =
            |name: &'static str| env.parse(name, |s| s.parse::<u32>().map_err(|e| e.to_string()));
        let length = |name: &'static str| env.parse(name, parse_usize);
        let general_count =
            count(OTEL_ATTRIBUTE_COUNT_LIMIT)?.unwrap_or(DEFAULT_SPAN_ATTRIBUTE_COUNT);
        let general_length = match self.attribute_value_length {
            Some(v) => v,
            None => {
                length(OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT)?.unwrap_or(DEFAULT_ATTRIBUTE_VALUE_LENGTH)
            }
        };
        Ok(Limits {
            span_attribute_count: match self.span_attribute_count {
                Some(v) => v,
                None => count(OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT)?.unwrap_or(general_count),
            },
            span_value_length: match self.attribute_value_length {
                Some(v) => v,
                None => length(OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT)?.unwrap_or(general_length),
            },
            span_event_count: count(OTEL_SPAN_EVENT_COUNT_LIMIT)?
                .unwrap_or(DEFAULT_SPAN_ATTRIBUTE_COUNT),
            span_link_count: count(OTEL_SPAN_LINK_COUNT_LIMIT)?
                .unwrap_or(DEFAULT_SPAN_ATTRIBUTE_COUNT),
            event_attribute_count: count(OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT)?
                .unwrap_or(DEFAULT_SPAN_ATTRIBUTE_COUNT),
            link_attribute_count: count(OTEL_LINK_ATTRIBUTE_COUNT_LIMIT)?
                .unwrap_or(DEFAULT_SPAN_ATTRIBUTE_COUNT),
            log_attribute_count: count(OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT)?
                .unwrap_or(general_count) as usize,
            log_value_length: match self.attribute_value_length {
                Some(v) => v,
                None => {
                    length(OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT)?.unwrap_or(general_length)
                }
            },
        })
    }

    fn resolve_log(&self, env: &Env<'_>) -> Result<LogSettings, Error> {
        let (name, filter) = match &self.log_filter {
            Some(f) => ("with_log_filter", crate::control::tidy_filter(f)),
            None => (
                RUST_LOG,
                crate::control::tidy_filter(env.get(RUST_LOG).unwrap_or("info")),
            ),
        };
        tracing_subscriber::EnvFilter::try_new(&filter)
            .map_err(|e| Error::invalid(name, filter.clone(), e))?;
        let diagnostics = env.parse(OTEL_LOG_LEVEL, parse_log_level)?;
        if let Some(sampling) = &self.log_sampling {
            check_log_sampling(sampling)?;
        }
        Ok(LogSettings {
            format: self.log_format.unwrap_or_default(),
            filter,
            diagnostics,
            stdout_buffer: self.stdout_buffer.unwrap_or(DEFAULT_STDOUT_BUFFER).max(1),
            sampling: self.log_sampling.clone(),
            span_events: self.span_events.unwrap_or(false),
        })
    }
}

/// Whether `OTEL_METRICS_EXEMPLAR_FILTER` turns exemplars off (`always_off`).
fn exemplars_off(env: &Env<'_>) -> Result<bool, Error> {
    let Some(v) = env.get(OTEL_METRICS_EXEMPLAR_FILTER).map(str::trim) else {
        return Ok(false);
    };
    match v.to_ascii_lowercase().as_str() {
        "always_off" => Ok(true),
        "trace_based" | "always_on" => Ok(false),
        _ => Err(Error::invalid(
            OTEL_METRICS_EXEMPLAR_FILTER,
            v,
            "expected `trace_based`, `always_off` or `always_on`",
        )),
    }
}

fn check_log_sampling(sampling: &LogSampling) -> Result<(), Error> {
    if sampling.is_valid() {
        Ok(())
    } else {
        Err(Error::invalid(
            "with_log_sampling",
            format!("{sampling:?}"),
            "ratio must be within [0, 1]",
        ))
    }
}

/// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`.
fn sampler_from_env(env: &Env<'_>) -> Result<Sampler, Error> {
    let ratio = |default: f64| -> Result<f64, Error> {
        Ok(env
            .parse(OTEL_TRACES_SAMPLER_ARG, parse_ratio)?
            .unwrap_or(default))
    };
    let Some(name) = env.get(OTEL_TRACES_SAMPLER) else {
        return Ok(Sampler::ParentBasedAlwaysOn);
    };
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::Ratio(ratio(1.0)?),
        "parentbased_always_on" => Sampler::ParentBasedAlwaysOn,
        "parentbased_always_off" => Sampler::ParentBasedAlwaysOff,
        "parentbased_traceidratio" => Sampler::ParentBasedRatio(ratio(1.0)?),
        _ => {
            return Err(Error::invalid(
                OTEL_TRACES_SAMPLER,
                name,
                "expected always_on, always_off, traceidratio, parentbased_always_on, \
                 parentbased_always_off or parentbased_traceidratio",
            ))
        }
    })
}

impl BatchOverrides {
    fn resolve(
        &self,
        env: &Env<'_>,
        [queue_var, batch_var, delay_var, timeout_var]: [&'static str; 4],
        default_bytes: usize,
    ) -> Result<BatchSettings, Error> {
        // A count bound only where one is asked for: the byte budget is the memory bound.
        let queue = match self.queue {
            Some(q) => Some(q),
            None => env.parse(queue_var, parse_usize)?,
        };
        let queue_bytes = self.queue_bytes.unwrap_or(default_bytes);
        let batch = match self.batch {
            Some(b) => b,
            None => env
                .parse(batch_var, parse_usize)?
                .unwrap_or(DEFAULT_BATCH_SIZE),
        };
        if queue == Some(0) || batch == 0 {
            return Err(Error::invalid(
                queue_var,
                format!("{queue:?} / {batch}"),
                "queue and batch sizes must be > 0",
            ));
        }
        if queue_bytes < 1024 {
            return Err(Error::invalid(
                "with_span_queue_bytes / with_log_queue_bytes",
                queue_bytes.to_string(),
                "must be at least 1024",
            ));
        }
        let delay = positive_duration(
            delay_var,
            self.delay,
            env.parse(delay_var, parse_millis)?,
            DEFAULT_SCHEDULE_DELAY,
        )?;
        let timeout = positive_duration(
            timeout_var,
            self.timeout,
            env.parse(timeout_var, parse_millis)?,
            DEFAULT_TIMEOUT,
        )?;
        Ok(BatchSettings {
            queue,
            queue_bytes,
            // A batch larger than the queue could never fill.
            batch: queue.map_or(batch, |q| batch.min(q)),
            delay,
            timeout,
        })
    }
}

fn positive_duration(
    name: &'static str,
    code: Option<Duration>,
    env: Option<Duration>,
    default: Duration,
) -> Result<Duration, Error> {
    let d = code.or(env).unwrap_or(default);
    if d.is_zero() {
        return Err(Error::invalid(name, "0", "must be greater than zero"));
    }
    Ok(d)
}
