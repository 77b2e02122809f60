//! A bounded two-lane queue ([`Queue`]) drained by a worker task on the export runtime.
//!
//! Producers (`on_end` of a span, `emit` of a log record) only push: when the queue's byte
//! budget is spent the item is dropped and counted (ordinary items first), the caller never
//! waits. The worker drains the queue every schedule delay, or as soon as a producer sees a full
//! batch waiting (then whole batches only: the rest joins the next request instead of making a
//! small one), and exports one batch at a time, priority items first, so a hanging collector
//! fills the queue (and drops) instead of growing memory.
//!
//! The worker never waits *on the queue itself*: a receiver parked on a channel would be woken
//! by every push, costing the request path a thread wake-up per span. Producers only signal it
//! once a whole batch is waiting.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, Notify};

use super::queue::{Budget, Queue, Weigh};
use super::stats::SignalStats;

/// How one signal's queue is bounded and drained.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchSettings {
    /// Estimated encoded bytes the queue may hold.
    pub(crate) queue_bytes: usize,
    /// Items the queue may hold, when a count bound is configured.
    pub(crate) queue: Option<usize>,
    pub(crate) batch: usize,
    pub(crate) delay: Duration,
    pub(crate) timeout: Duration,
}

/// How a batch leaves the process. Implementations count their own outcomes.
pub(crate) trait BatchExport<T>: Send + Sync + 'static {
    /// Export one batch; `Err` carries the last error message.
    fn export(&self, batch: Vec<T>) -> impl Future<Output = Result<(), String>> + Send;
}

type Reply = std_mpsc::SyncSender<Result<(), String>>;

enum Control {
    Flush(Reply),
    Shutdown(Reply),
}

/// Why a flush or shutdown did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DrainError {
    Timeout,
    Failed(String),
}

#[derive(Debug)]
pub(crate) struct Batcher<T> {
    queue: Arc<Queue<T>>,
    ctl: mpsc::UnboundedSender<Control>,
    full: Arc<Notify>,
    batch: usize,
    stats: Arc<SignalStats>,
    /// Drops already reported by a flush or shutdown.
    reported_drops: AtomicU64,
}

impl<T: Weigh + Send + 'static> Batcher<T> {
    pub(crate) fn start<E: BatchExport<T>>(
        rt: &Handle,
        settings: BatchSettings,
        stats: Arc<SignalStats>,
        exporter: E,
    ) -> Self {
        let queue = Arc::new(Queue::new(Budget {
            bytes: settings.queue_bytes,
            items: settings.queue,
        }));
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        let full = Arc::new(Notify::new());
        rt.spawn(worker(
            queue.clone(),
            ctl_rx,
            full.clone(),
            exporter,
            settings,
            stats.clone(),
        ));
        Batcher {
            queue,
            ctl,
            full,
            batch: settings.batch,
            reported_drops: AtomicU64::new(stats.dropped_total()),
            stats,
        }
    }

    /// Enqueue without waiting; what does not fit is dropped and counted by class.
    #[inline]
    pub(crate) fn push(&self, item: T) {
        let pushed = self.queue.push(item);
        self.stats.record_queued_bytes(pushed.bytes);
        if pushed.dropped_ordinary + pushed.dropped_priority > 0 {
            self.stats
                .record_dropped(pushed.dropped_ordinary, pushed.dropped_priority);
        }
        if pushed.queued && pushed.len >= self.batch {
            self.full.notify_one();
        }
    }

    /// Items waiting in the queue.
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Export everything queued so far; wait at most `timeout`.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), DrainError> {
        self.control(Control::Flush, timeout)
    }

    /// Export everything queued, then stop; later pushes are dropped and counted. What is
    /// still queued when `timeout` runs out is dropped and counted too.
    pub(crate) fn shutdown(&self, timeout: Duration) -> Result<(), DrainError> {
        let result = self.control(Control::Shutdown, timeout);
        self.queue.close();
        let (ordinary, priority) = self.queue.clear();
        if ordinary + priority > 0 {
            self.stats.record_dropped(ordinary, priority);
        }
        self.stats.record_queued_bytes(0);
        result
    }

    fn control(&self, make: fn(Reply) -> Control, timeout: Duration) -> Result<(), DrainError> {
        let (reply, wait) = std_mpsc::sync_channel(1);
        if self.ctl.send(make(reply)).is_err() {
            return Ok(()); // already shut down
        }
        // A plain blocking wait: the worker runs on the export thread, so this works from any
        // thread, inside or outside an async runtime, without stalling the export.
        match wait.recv_timeout(timeout) {
            Ok(Ok(())) => {
                // Ok must mean that everything recorded so far reached the collector.
                let dropped = self.stats.dropped_total();
                let before = self.reported_drops.swap(dropped, Ordering::Relaxed);
                if dropped > before {
                    return Err(DrainError::Failed(format!(
                        "{} items dropped before export (queue full)",
                        dropped - before
                    )));
                }
                Ok(())
            }
            Ok(Err(e)) => Err(DrainError::Failed(e)),
            Err(std_mpsc::RecvTimeoutError::Timeout) => Err(DrainError::Timeout),
            Err(std_mpsc::RecvTimeoutError::Disconnected) => Ok(()),
        }
    }
}

async fn worker<T: Weigh, E: BatchExport<T>>(
    queue: Arc<Queue<T>>,
    mut ctl: mpsc::UnboundedReceiver<Control>,
    full: Arc<Notify>,
    exporter: E,
    settings: BatchSettings,
    stats: Arc<SignalStats>,
) {
    // A failure of a background export, reported by the next flush or shutdown.
    let mut unreported: Option<String> = None;
    let drain = |part| drain(&queue, &exporter, settings.batch, &stats, part);
    loop {
        tokio::select! {
            biased;
            control = ctl.recv() => {
                let (reply, last) = match control {
                    Some(Control::Flush(r)) => (r, false),
                    Some(Control::Shutdown(r)) => (r, true),
                    None => return,
                };
                if last {
                    queue.close();
                }
                let result = drain(Part::All).await;
                let earlier = unreported.take();
                let _ = reply.send(result.and(earlier.map_or(Ok(()), Err)));
                if last {
                    return;
                }
            }
            () = full.notified() => {
                if let Err(e) = drain(Part::FullBatches).await {
                    unreported = Some(e);
                }
            }
            () = tokio::time::sleep(settings.delay) => {
                if let Err(e) = drain(Part::All).await {
                    unreported = Some(e);
                }
            }
        }
    }
}

/// What a drain exports of the queue.
#[derive(Debug, Clone, Copy)]
enum Part {
    /// Everything queued now: a flush, a shutdown, the schedule delay.
    All,
    /// Whole batches only, when a producer saw a full one: the rest waits for the next full
    /// batch or the delay, rather than going as a small request of its own.
    FullBatches,
}

/// Export `part` of what is queued now, in batches, priority first; `Err` if any export failed.
async fn drain<T: Weigh, E: BatchExport<T>>(
    queue: &Queue<T>,
    exporter: &E,
    batch: usize,
    stats: &SignalStats,
    part: Part,
) -> Result<(), String> {
    let mut result = Ok(());
    // What is queued now, not what keeps arriving: a flush or shutdown waiting behind this drain
    // must not wait for a steady stream to stop.
    let mut left = match part {
        Part::All => queue.len(),
        Part::FullBatches => queue.len() / batch.max(1) * batch,
    };
    while left > 0 {
        let taken = queue.take(batch.min(left));
        stats.record_queued_bytes(taken.bytes);
        if taken.items.is_empty() {
            break;
        }
        left = left.saturating_sub(taken.items.len());
        keep_error(&mut result, exporter.export(taken.items).await);
    }
    result
}

fn keep_error(result: &mut Result<(), String>, outcome: Result<(), String>) {
    if let Err(e) = outcome {
        *result = Err(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::stats::ExportStats;
    use crate::export::Signal;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Recorder {
        batches: Arc<Mutex<Vec<Vec<u32>>>>,
        fail: bool,
        hang: bool,
    }

    impl BatchExport<u32> for Recorder {
        async fn export(&self, batch: Vec<u32>) -> Result<(), String> {
            if self.hang {
                std::future::pending::<()>().await;
            }
            self.batches.lock().unwrap().push(batch);
            if self.fail {
                Err("refused".into())
            } else {
                Ok(())
            }
        }
    }

    impl Weigh for u32 {
        fn weigh(&self) -> crate::export::queue::Weight {
            crate::export::queue::Weight {
                bytes: 1,
                priority: false,
            }
        }
    }

    fn settings(queue: usize, batch: usize) -> BatchSettings {
        BatchSettings {
            queue: Some(queue),
            queue_bytes: usize::MAX / 2,
            batch,
            delay: Duration::from_secs(3600),
            timeout: Duration::from_secs(1),
        }
    }

    fn stats() -> Arc<SignalStats> {
        let stats = ExportStats::new(&prometheus::Registry::new()).unwrap();
        stats.get(Signal::Traces).clone()
    }

    fn runtime() -> crate::export::runtime::ExportRuntime {
        crate::export::runtime::ExportRuntime::start().unwrap()
    }

    #[test]
    fn a_full_batch_goes_alone_and_the_rest_waits() {
        let rt = runtime();
        let rec = Recorder::default();
        let b = Batcher::start(rt.handle(), settings(100, 4), stats(), rec.clone());
        (0..10).for_each(|i| b.push(i));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while rec.batches.lock().unwrap().len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // The schedule delay is an hour: only full batches went, the two left wait.
        assert_eq!(
            *rec.batches.lock().unwrap(),
            vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]
        );
        assert_eq!(b.queued(), 2);
        b.flush(Duration::from_secs(5)).unwrap();
        assert_eq!(rec.batches.lock().unwrap().last(), Some(&vec![8, 9]));
    }

    #[test]
    fn flush_exports_everything_in_batches() {
        let rt = runtime();
        let rec = Recorder::default();
        let b = Batcher::start(rt.handle(), settings(100, 4), stats(), rec.clone());
        (0..10).for_each(|i| b.push(i));
        b.flush(Duration::from_secs(5)).unwrap();
        let batches = rec.batches.lock().unwrap().clone();
        assert!(batches.iter().all(|x| x.len() <= 4));
        assert_eq!(batches.concat(), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn full_queue_drops_and_counts_without_blocking() {
        let rt = runtime();
        let rec = Recorder {
            hang: true,
            ..Recorder::default()
        };
        let st = stats();
        let b = Batcher::start(rt.handle(), settings(8, 8), st.clone(), rec);
        // The first batch hangs in export; everything beyond queue capacity is dropped.
        let started = std::time::Instant::now();
        (0..1000).for_each(|i| b.push(i));
        assert!(started.elapsed() < Duration::from_secs(1));
        let dropped = st.dropped_total();
        assert!(
            (1000 - 16..=1000 - 8).contains(&dropped),
            "dropped {dropped}"
        );
        assert_eq!(
            b.shutdown(Duration::from_millis(200)),
            Err(DrainError::Timeout)
        );
    }

    #[test]
    fn what_is_left_when_shutdown_expires_is_dropped_and_counted() {
        let rt = runtime();
        let rec = Recorder {
            hang: true,
            ..Recorder::default()
        };
        let st = stats();
        let b = Batcher::start(rt.handle(), settings(1000, 4), st.clone(), rec);
        (0..20).for_each(|i| b.push(i));
        // The first batch of 4 hangs in export; the other 16 wait in the queue.
        while b.queued() > 16 {
            std::thread::yield_now();
        }
        assert_eq!(
            b.shutdown(Duration::from_millis(100)),
            Err(DrainError::Timeout)
        );
        assert_eq!(st.dropped_total(), 16);
        assert_eq!(b.queued(), 0);
    }

    #[test]
    fn failure_is_reported_and_push_after_shutdown_is_dropped() {
        let rt = runtime();
        let rec = Recorder {
            fail: true,
            ..Recorder::default()
        };
        let st = stats();
        let b = Batcher::start(rt.handle(), settings(16, 4), st.clone(), rec);
        b.push(1);
        assert_eq!(
            b.shutdown(Duration::from_secs(5)),
            Err(DrainError::Failed("refused".into()))
        );
        b.push(2);
        assert_eq!(st.dropped_total(), 1);
        // After shutdown there is no worker to ask: nothing more to report.
        assert_eq!(b.flush(Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn background_failures_and_drops_are_reported_by_the_next_flush() {
        let rt = runtime();
        let rec = Recorder {
            fail: true,
            ..Recorder::default()
        };
        let st = stats();
        // Batch of one: every push triggers an export in the background.
        let b = Batcher::start(rt.handle(), settings(16, 1), st.clone(), rec.clone());
        b.push(1);
        while rec.batches.lock().unwrap().is_empty() {
            std::thread::yield_now();
        }
        assert_eq!(
            b.flush(Duration::from_secs(5)),
            Err(DrainError::Failed("refused".into()))
        );
        assert_eq!(b.flush(Duration::from_secs(5)), Ok(()), "reported once");

        // Nothing drains until the flush (batch larger than the queue, delay of an hour).
        let st = stats();
        let b = Batcher::start(
            rt.handle(),
            settings(2, 100),
            st.clone(),
            Recorder::default(),
        );
        (0..3).for_each(|i| b.push(i));
        assert_eq!(st.dropped_total(), 1);
        let err = b.flush(Duration::from_secs(5)).unwrap_err();
        assert_eq!(
            err,
            DrainError::Failed("1 items dropped before export (queue full)".into())
        );
        assert_eq!(b.flush(Duration::from_secs(5)), Ok(()));
    }
}
