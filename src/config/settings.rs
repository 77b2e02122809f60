//! Resolved settings, one part per subsystem: each subsystem receives only its own part.

use std::time::Duration;

use opentelemetry::KeyValue;

use super::{Propagator, Sampler};
use crate::export::{BatchSettings, Target};
use crate::log::LogSettings;
use crate::propagation::{PropagateTo, Trust};
use crate::sampling::KeepSettings;
use crate::signal::PerSignal;
use crate::watchdog::WatchdogSettings;

/// Everything [`Config`](super::Config) resolves to, checked.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) disabled: bool,
    pub(crate) resource: ResourceSettings,
    pub(crate) sampler: Sampler,
    /// Tail keep's bounds, when it is on (a ratio below 1 and not turned off).
    pub(crate) tail_keep: Option<KeepSettings>,
    pub(crate) propagators: Vec<Propagator>,
    /// Whose incoming context the server layers continue.
    pub(crate) trust: Trust,
    /// Which hosts the client layers send the context to.
    pub(crate) propagate_to: PropagateTo,
    /// Settings skipped rather than refused (unknown propagators), said once telemetry runs.
    pub(crate) warnings: Vec<String>,
    pub(crate) export: ExportSettings,
    pub(crate) log: LogSettings,
    pub(crate) watchdog: WatchdogSettings,
    pub(crate) install_subscriber: bool,
    pub(crate) shutdown_timeout: Duration,
    /// The longest TTL a runtime-control change may have.
    pub(crate) control_max_ttl: Duration,
}

/// What the resource is built from.
#[derive(Debug, Clone)]
pub(crate) struct ResourceSettings {
    pub(crate) service_name: Option<String>,
    pub(crate) service_version: Option<String>,
    pub(crate) environment: Option<String>,
    /// `OTEL_RESOURCE_ATTRIBUTES`, then attributes set in code.
    pub(crate) attributes: Vec<KeyValue>,
}

/// The export pipeline: where each signal goes, how it is batched and bounded.
#[derive(Debug, Clone)]
pub(crate) struct ExportSettings {
    /// Where each signal goes.
    pub(crate) targets: PerSignal<Target>,
    pub(crate) retry: bool,
    pub(crate) span_batch: BatchSettings,
    pub(crate) log_batch: BatchSettings,
    pub(crate) metric_interval: Duration,
    /// The budget of one metrics export (`OTEL_METRIC_EXPORT_TIMEOUT`).
    pub(crate) metric_timeout: Duration,
    pub(crate) temporality: opentelemetry_sdk::metrics::Temporality,
    pub(crate) limits: Limits,
    /// `OTEL_METRICS_EXEMPLAR_FILTER=always_off`.
    pub(crate) exemplars_off: bool,
    pub(crate) max_request_bytes: usize,
}

/// Attribute, event and link limits, per signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) span_attribute_count: u32,
    pub(crate) span_value_length: usize,
    pub(crate) span_event_count: u32,
    pub(crate) span_link_count: u32,
    pub(crate) event_attribute_count: u32,
    pub(crate) link_attribute_count: u32,
    pub(crate) log_attribute_count: usize,
    pub(crate) log_value_length: usize,
}
