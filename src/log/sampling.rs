//! Log sampling: keep a share (or a rate) of DEBUG/INFO records, always keep WARN/ERROR and the
//! records of critical routes, count what is dropped. It filters before every output, so stdout
//! and OTLP see the same records.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use opentelemetry::trace::TraceContextExt as _;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// Which DEBUG/INFO records to keep. Off unless set with
/// [`Config::with_log_sampling`](crate::Config::with_log_sampling).
///
/// Always kept: WARN and ERROR (the slow-request warning among them), and every record of a
/// request whose route is in [`LogSampling::with_critical_routes`] (the HTTP layer marks those
/// requests). With a ratio the decision follows the trace id, so a sampled-in trace keeps all its
/// records; records outside any trace are drawn at random.
///
/// ```
/// use paytrace::log::LogSampling;
/// let config = paytrace::Config::new()
///     .with_log_sampling(LogSampling::ratio(0.1).with_critical_routes(["/callback"]));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LogSampling {
    pub(crate) rule: Rule,
    pub(crate) critical_routes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Rule {
    Ratio(f64),
    PerSecond(u64),
}

impl LogSampling {
    /// Keep this share (0 to 1) of DEBUG/INFO records.
    pub fn ratio(ratio: f64) -> Self {
        LogSampling {
            rule: Rule::Ratio(ratio),
            critical_routes: Vec::new(),
        }
    }

    /// Keep at most this many DEBUG/INFO records per second.
    pub fn per_second(records: u64) -> Self {
        LogSampling {
            rule: Rule::PerSecond(records),
            critical_routes: Vec::new(),
        }
    }

    /// Routes (templates, e.g. `/callback`) whose records are always kept.
    pub fn with_critical_routes<I, S>(mut self, routes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.critical_routes = routes.into_iter().map(Into::into).collect();
        self
    }

    pub(crate) fn is_valid(&self) -> bool {
        match self.rule {
            Rule::Ratio(r) => (0.0..=1.0).contains(&r),
            Rule::PerSecond(_) => true,
        }
    }
}

/// The marker the HTTP layer puts in a critical request's context.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeepLogs;

/// The sampling filter; `dropped` counts what it dropped.
#[derive(Debug)]
pub(crate) struct LogSampler {
    rule: Rule,
    dropped: Arc<AtomicU64>,
    second: AtomicU64,
    in_second: AtomicU64,
}

impl LogSampler {
    pub(crate) fn new(sampling: &LogSampling, dropped: Arc<AtomicU64>) -> Self {
        LogSampler {
            rule: sampling.rule,
            dropped,
            second: AtomicU64::new(0),
            in_second: AtomicU64::new(0),
        }
    }

    fn keep(&self, level: &Level) -> bool {
        if *level <= Level::WARN {
            return true; // WARN and ERROR (tracing orders more severe as smaller)
        }
        let (critical, trace) = opentelemetry::Context::map_current(|cx| {
            let sc = cx.span().span_context().clone();
            (
                cx.get::<KeepLogs>().is_some(),
                sc.is_valid().then(|| sc.trace_id()),
            )
        });
        if critical {
            return true;
        }
        match self.rule {
            Rule::Ratio(ratio) => {
                let draw = match trace {
                    Some(id) => {
                        let bytes = id.to_bytes();
                        let mut low = [0u8; 8];
                        low.copy_from_slice(&bytes[8..]);
                        u64::from_be_bytes(low)
                    }
                    None => random(),
                };
                (draw as f64) < ratio * u64::MAX as f64
            }
            Rule::PerSecond(limit) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                if self.second.swap(now, Ordering::Relaxed) != now {
                    self.in_second.store(0, Ordering::Relaxed);
                }
                self.in_second.fetch_add(1, Ordering::Relaxed) < limit
            }
        }
    }
}

fn random() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0x9E37_79B9_7F4A_7C15)
                | 1,
        );
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}

impl<S: Subscriber> Layer<S> for LogSampler {
    fn event_enabled(&self, event: &Event<'_>, _cx: Context<'_, S>) -> bool {
        let keep = self.keep(event.metadata().level());
        if !keep {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        keep
    }
}
