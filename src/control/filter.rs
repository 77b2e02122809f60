//! The log filter in force, swappable while the service runs: every `tracing` layer stack that
//! [`Telemetry::layers`](crate::telemetry::Telemetry::layers) builds reads the same slot.
//!
//! Events the filter disables never reach it: `tracing` caches each callsite's interest, and a
//! change rebuilds that cache, so a disabled event costs what it costs under a plain
//! `EnvFilter`.

use std::sync::{Arc, PoisonError, RwLock};

use tracing_core::span;
use tracing_core::subscriber::Interest;
use tracing_core::{Metadata, Subscriber};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::{Context, Layer};

/// The filter in force.
#[derive(Debug)]
pub(crate) struct FilterSlot {
    filter: RwLock<Arc<EnvFilter>>,
}

impl FilterSlot {
    /// A slot holding `directives` (already validated; falls back to `info`).
    pub(crate) fn new(directives: &str) -> Self {
        FilterSlot {
            filter: RwLock::new(Arc::new(
                EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info")),
            )),
        }
    }

    /// Put `directives` in force for every event from now on.
    pub(crate) fn set(&self, directives: &str) -> Result<(), String> {
        let filter = EnvFilter::try_new(directives).map_err(|e| e.to_string())?;
        *self.filter.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(filter);
        // Callsites cached as never (or always) interesting are asked again.
        tracing_core::callsite::rebuild_interest_cache();
        Ok(())
    }

    fn current(&self) -> Arc<EnvFilter> {
        self.filter
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A layer that filters as the slot's current [`EnvFilter`] does.
#[derive(Debug, Clone)]
pub(crate) struct DynamicFilter(pub(crate) Arc<FilterSlot>);

impl<S: Subscriber> Layer<S> for DynamicFilter {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        Layer::<S>::register_callsite(&*self.0.current(), metadata)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Layer::<S>::max_level_hint(&*self.0.current())
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        Layer::<S>::enabled(&*self.0.current(), metadata, ctx)
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        Layer::<S>::on_new_span(&*self.0.current(), attrs, id, ctx)
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        Layer::<S>::on_record(&*self.0.current(), id, values, ctx)
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        Layer::<S>::on_enter(&*self.0.current(), id, ctx)
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        Layer::<S>::on_exit(&*self.0.current(), id, ctx)
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        Layer::<S>::on_close(&*self.0.current(), id, ctx)
    }
}
