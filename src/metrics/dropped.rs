//! `paytrace_log_records_dropped_total`: drops counted elsewhere (stdout, log sampling), read at
//! scrape time.

use std::sync::Mutex;

use prometheus::core::{Collector, Desc};

/// `paytrace_log_records_dropped_total{reason=...}`, read at scrape time.
pub(crate) struct DroppedCollector {
    source: Box<dyn Fn() -> u64 + Send + Sync>,
    counter: prometheus::IntCounter,
    seen: Mutex<u64>,
    descs: Vec<Desc>,
}

impl DroppedCollector {
    pub(crate) fn new(
        reason: &str,
        source: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> prometheus::Result<Self> {
        let counter = prometheus::IntCounter::with_opts(
            prometheus::Opts::new(
                "paytrace_log_records_dropped_total",
                "Log records dropped before reaching their output.",
            )
            .const_label("reason", reason),
        )?;
        let descs = counter.desc().into_iter().cloned().collect();
        Ok(DroppedCollector {
            source: Box::new(source),
            counter,
            seen: Mutex::new(0),
            descs,
        })
    }
}

impl std::fmt::Debug for DroppedCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DroppedCollector")
            .field("counter", &self.counter.get())
            .finish()
    }
}

impl Collector for DroppedCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let now = (self.source)();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if now > *seen {
            self.counter.inc_by(now - *seen);
            *seen = now;
        }
        self.counter.collect()
    }
}
