//! The span processor when tail keep is on: sampled spans go straight to the export queue,
//! the others through the [`TailKeeper`]; a sweep on the export runtime promotes slow traces
//! and expires old ones.

use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::trace::{Span as _, TraceContextExt as _};
use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use tokio::runtime::Handle;

use super::keep::{is_local_root, TailKeeper};
use crate::export::batch::Batcher;

/// How often the sweep looks for slow and expired traces.
const SWEEP: Duration = Duration::from_millis(250);

/// Sampled spans to the export queue; the rest wait for their trace's outcome.
#[derive(Debug, Clone)]
pub(crate) struct TailKeepQueue {
    pub(crate) keeper: Arc<TailKeeper>,
    pub(crate) spans: Arc<Batcher<SpanData>>,
    /// The configured shutdown timeout, which also bounds the provider's `force_flush`.
    pub(crate) flush_timeout: Duration,
}

impl TailKeepQueue {
    fn push_all(&self, spans: Vec<SpanData>) {
        for span in spans {
            self.spans.push(span);
        }
    }

    /// Decide every waiting trace with what is known and queue what is kept (shutdown).
    pub(crate) fn decide_all(&self) {
        let mut out = Vec::new();
        self.keeper.decide_all(&mut out);
        self.push_all(out);
    }

    /// The sweep task, on the export runtime; ends with the runtime.
    pub(crate) fn spawn_sweep(&self, rt: &Handle) {
        let this = self.clone();
        rt.spawn(async move {
            loop {
                tokio::time::sleep(SWEEP).await;
                let mut out = Vec::new();
                this.keeper.sweep(Instant::now(), &mut out);
                this.push_all(out);
            }
        });
    }
}

impl SpanProcessor for TailKeepQueue {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        let sc = span.span_context();
        if sc.is_sampled() {
            return;
        }
        // `cx` is the parent's context: no span there, or a remote one, makes a local root.
        let local_root = !cx.has_active_span() || cx.span().span_context().is_remote();
        if local_root {
            self.keeper.root_started(sc.trace_id());
        }
    }

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            if is_local_root(span.parent_span_id, span.parent_span_is_remote) {
                self.keeper.stats().kept_by_ratio();
            }
            self.spans.push(span);
            return;
        }
        let mut out = Vec::new();
        self.keeper.span_ended(span, &mut out);
        self.push_all(out);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.spans
            .flush(self.flush_timeout)
            .map_err(|e| opentelemetry_sdk::error::OTelSdkError::InternalFailure(format!("{e:?}")))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.decide_all();
        self.spans
            .shutdown(timeout)
            .map_err(|e| opentelemetry_sdk::error::OTelSdkError::InternalFailure(format!("{e:?}")))
    }
}
