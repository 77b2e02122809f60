//! What every stage of [`Telemetry::start`](super::Telemetry::start) shares: paytrace's own
//! instruments, the export counters, the exemplar store, tail keep's counters and thinned
//! traces, the redactor.

use std::sync::Arc;

use crate::config::Settings;
use crate::error::Error;
use crate::exemplars::ExemplarStore;
use crate::export::stats::ExportStats;
use crate::redact::Redactor;
use crate::sampling::{KeepStats, Thinned};

/// paytrace's own instruments and what every stage shares.
pub(super) struct Shared {
    pub(super) registry: prometheus::Registry,
    pub(super) stats: Arc<ExportStats>,
    pub(super) exemplars: Arc<ExemplarStore>,
    pub(super) keep_stats: KeepStats,
    /// Traces tail keep thinned, for the layers' exemplar claims.
    pub(super) thinned: Thinned,
    pub(super) redactor: Redactor,
}

impl Shared {
    pub(super) fn register(settings: &Settings) -> Result<Self, Error> {
        let registry = prometheus::Registry::new();
        let stats = ExportStats::new(&registry)
            .map_err(|e| Error::invalid("metrics registry", "paytrace_exporter_*", e))?;
        crate::metrics::register_defaults(&registry)?;
        // Registered whether tail keep is on or not: dashboards and alerts find the families.
        let keep_stats = KeepStats::new(&registry)
            .map_err(|e| Error::invalid("metrics registry", "paytrace_sampling_*", e))?;
        let exemplars = match settings.export.exemplars_off {
            true => ExemplarStore::off(),
            false => ExemplarStore::default(),
        };
        Ok(Shared {
            registry,
            stats: Arc::new(stats),
            exemplars: Arc::new(exemplars),
            keep_stats,
            thinned: Thinned::default(),
            redactor: Redactor::default(),
        })
    }
}
