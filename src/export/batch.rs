//! A bounded queue drained by a worker task on the export runtime.
//!
//! Producers (`on_end` of a span, `emit` of a log record) only `try_send`: when the queue is
//! full the item is dropped and counted, the caller never waits. The worker drains the queue
//! every schedule delay, or as soon as a producer sees a full batch waiting, and exports one
//! batch at a time, so a hanging collector fills the queue (and drops) instead of growing memory.
//!
//! The worker never waits *on the queue itself*: a receiver parked on the channel would be woken
//! by every push, costing the request path a thread wake-up per span. Producers only signal it
//! once a whole batch is waiting.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, Notify};

use super::stats::SignalStats;

/// How one signal's queue is bounded and drained.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchSettings {
    pub(crate) queue: usize,
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
    tx: mpsc::Sender<T>,
    ctl: mpsc::UnboundedSender<Control>,
    full: Arc<Notify>,
    batch: usize,
    stats: Arc<SignalStats>,
    /// Drops already reported by a flush or shutdown.
    reported_drops: AtomicU64,
}

impl<T: Send + 'static> Batcher<T> {
    pub(crate) fn start<E: BatchExport<T>>(
        rt: &Handle,
        settings: BatchSettings,
        stats: Arc<SignalStats>,
        exporter: E,
    ) -> Self {
        let (tx, rx) = mpsc::channel(settings.queue);
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        let full = Arc::new(Notify::new());
        rt.spawn(worker(rx, ctl_rx, full.clone(), exporter, settings));
        Batcher {
            tx,
            ctl,
            full,
            batch: settings.batch,
            reported_drops: AtomicU64::new(stats.dropped.get()),
            stats,
        }
    }

    /// Enqueue without waiting; a full or closed queue drops and counts the item.
    #[inline]
    pub(crate) fn push(&self, item: T) {
        match self.tx.try_send(item) {
            Ok(()) if self.queued() >= self.batch => self.full.notify_one(),
            Ok(()) => {}
            Err(_) => self.stats.record_dropped(1),
        }
    }

    /// Items waiting in the queue.
    pub(crate) fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Export everything queued so far; wait at most `timeout`.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), DrainError> {
        self.control(Control::Flush, timeout)
    }

    /// Export everything queued, then stop; later pushes are dropped and counted.
    pub(crate) fn shutdown(&self, timeout: Duration) -> Result<(), DrainError> {
        self.control(Control::Shutdown, timeout)
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
                let dropped = self.stats.dropped.get();
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

async fn worker<T, E: BatchExport<T>>(
    mut rx: mpsc::Receiver<T>,
    mut ctl: mpsc::UnboundedReceiver<Control>,
    full: Arc<Notify>,
    exporter: E,
    settings: BatchSettings,
) {
    // A failure of a background export, reported by the next flush or shutdown.
    let mut unreported: Option<String> = None;
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
                    rx.close();
                }
                let result = drain(&mut rx, &exporter, settings.batch).await;
                let earlier = unreported.take();
                let _ = reply.send(result.and(earlier.map_or(Ok(()), Err)));
                if last {
                    return;
                }
            }
            () = full.notified() => {
                if let Err(e) = drain(&mut rx, &exporter, settings.batch).await {
                    unreported = Some(e);
                }
            }
            () = tokio::time::sleep(settings.delay) => {
                if rx.is_closed() && rx.is_empty() {
                    return;
                }
                if let Err(e) = drain(&mut rx, &exporter, settings.batch).await {
                    unreported = Some(e);
                }
            }
        }
    }
}

/// Export everything queued now, in batches; `Err` if any export failed.
async fn drain<T, E: BatchExport<T>>(
    rx: &mut mpsc::Receiver<T>,
    exporter: &E,
    batch: usize,
) -> Result<(), String> {
    let mut result = Ok(());
    let mut buf = Vec::with_capacity(batch.min(rx.len()));
    while let Ok(item) = rx.try_recv() {
        buf.push(item);
        if buf.len() >= batch {
            keep_error(&mut result, exporter.export(std::mem::take(&mut buf)).await);
        }
    }
    if !buf.is_empty() {
        keep_error(&mut result, exporter.export(buf).await);
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

    fn settings(queue: usize, batch: usize) -> BatchSettings {
        BatchSettings {
            queue,
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
        let dropped = st.dropped.get();
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
        assert_eq!(st.dropped.get(), 1);
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
        assert_eq!(st.dropped.get(), 1);
        let err = b.flush(Duration::from_secs(5)).unwrap_err();
        assert_eq!(
            err,
            DrainError::Failed("1 items dropped before export (queue full)".into())
        );
        assert_eq!(b.flush(Duration::from_secs(5)), Ok(()));
    }
}
