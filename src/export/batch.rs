//! A bounded queue drained by a worker task on the export runtime.
//!
//! Producers (`on_end` of a span, `emit` of a log record) only `try_send`: when the queue is
//! full the item is dropped and counted, the caller never waits. The worker exports a batch when
//! it is full or when the schedule delay since its first item has passed, one export at a time,
//! so a hanging collector fills the queue (and drops) instead of growing memory.

use std::future::Future;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::stats::SignalStats;
use crate::config::BatchSettings;

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
    stats: Arc<SignalStats>,
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
        rt.spawn(worker(rx, ctl_rx, exporter, settings));
        Batcher { tx, ctl, stats }
    }

    /// Enqueue without waiting; a full or closed queue drops and counts the item.
    #[inline]
    pub(crate) fn push(&self, item: T) {
        if self.tx.try_send(item).is_err() {
            self.stats.record_dropped(1);
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
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DrainError::Failed(e)),
            Err(std_mpsc::RecvTimeoutError::Timeout) => Err(DrainError::Timeout),
            Err(std_mpsc::RecvTimeoutError::Disconnected) => Ok(()),
        }
    }
}

async fn worker<T, E: BatchExport<T>>(
    mut rx: mpsc::Receiver<T>,
    mut ctl: mpsc::UnboundedReceiver<Control>,
    exporter: E,
    settings: BatchSettings,
) {
    let mut buf: Vec<T> = Vec::with_capacity(settings.batch);
    let mut deadline: Option<Instant> = None;
    loop {
        let timer = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let room = settings.batch - buf.len();
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
                let mut result = Ok(());
                while let Ok(item) = rx.try_recv() {
                    buf.push(item);
                    if buf.len() >= settings.batch {
                        keep_error(&mut result, exporter.export(std::mem::take(&mut buf)).await);
                    }
                }
                if !buf.is_empty() {
                    keep_error(&mut result, exporter.export(std::mem::take(&mut buf)).await);
                }
                deadline = None;
                let _ = reply.send(result);
                if last {
                    return;
                }
            }
            n = rx.recv_many(&mut buf, room) => {
                if n == 0 {
                    if !buf.is_empty() {
                        let _ = exporter.export(std::mem::take(&mut buf)).await;
                    }
                    return;
                }
                if buf.len() >= settings.batch {
                    let _ = exporter.export(std::mem::take(&mut buf)).await;
                    deadline = None;
                } else if deadline.is_none() {
                    deadline = Some(Instant::now() + settings.delay);
                }
            }
            () = timer => {
                let _ = exporter.export(std::mem::take(&mut buf)).await;
                deadline = None;
            }
        }
    }
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
        assert_eq!(b.flush(Duration::from_secs(1)), Ok(()));
    }
}
