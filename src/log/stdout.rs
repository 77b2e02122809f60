//! Non-blocking, lossy stdout: callers append finished lines to a bounded shared buffer, and one
//! thread writes the buffer out on a short tick.
//!
//! Callers never wake the writer, and hold the buffer's lock only to copy their line in (the
//! writer swaps the buffer out under it and writes outside it): a channel-based worker (such as
//! tracing-appender's) would cost every line a cross-thread wakeup. `benches/log.rs` compares
//! the two.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a line may wait in the buffer before it is written.
const TICK: Duration = Duration::from_millis(5);
/// Bytes held per line the buffer may hold, on average, before lines are dropped.
const BYTES_PER_LINE: usize = 1024;
/// How long [`Stdout::close`] waits for the last write.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    lines: usize,
}

#[derive(Debug)]
struct Shared {
    pending: Mutex<Pending>,
    max_lines: usize,
    max_bytes: usize,
    dropped: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    fn push(&self, line: &[u8]) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let full = pending.lines >= self.max_lines
            || (pending.lines > 0 && pending.bytes.len() + line.len() > self.max_bytes);
        if full {
            drop(pending);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        pending.bytes.extend_from_slice(line);
        pending.lines += 1;
    }
}

/// The buffer and its writer thread.
#[derive(Debug)]
pub struct Stdout {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Stdout {
    /// Writes to `out`, holding at most `lines` lines (and about `lines` KiB) while it is busy.
    pub fn new<T: Write + Send + 'static>(mut out: T, lines: usize) -> Self {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            max_lines: lines.max(1),
            max_bytes: lines.max(1).saturating_mul(BYTES_PER_LINE),
            dropped: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("paytrace-stdout".into())
            .spawn(move || {
                let mut spare = Vec::new();
                loop {
                    let stopping = worker.stop.load(Ordering::Acquire);
                    {
                        let mut pending = worker
                            .pending
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner);
                        std::mem::swap(&mut pending.bytes, &mut spare);
                        pending.lines = 0;
                    }
                    if !spare.is_empty() {
                        // Nowhere to report a failed stdout write: the lines are lost.
                        let _ = out.write_all(&spare).and_then(|()| out.flush());
                        spare.clear();
                        if spare.capacity() > worker.max_bytes {
                            spare = Vec::new();
                        }
                    }
                    if stopping {
                        return;
                    }
                    std::thread::park_timeout(TICK);
                }
            })
            .ok();
        if thread.is_none() {
            // No thread, no stdout: every line is dropped and counted rather than blocking.
            shared.stop.store(true, Ordering::Release);
        }
        Stdout {
            shared,
            thread: Mutex::new(thread),
        }
    }

    /// The `MakeWriter` handed to the JSON layer.
    pub fn writer(&self) -> StdoutWriter {
        StdoutWriter(self.shared.clone())
    }

    /// Lines dropped so far because the buffer was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Write what is buffered and stop, waiting at most a second for a slow stdout.
    pub(crate) fn close(&self) {
        let Some(thread) = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        self.shared.stop.store(true, Ordering::Release);
        thread.thread().unpark();
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        if thread.is_finished() {
            let _ = thread.join();
        }
    }
}

impl Drop for Stdout {
    fn drop(&mut self) {
        self.close();
    }
}

/// Appends whole lines to the shared buffer; never blocks on stdout.
#[derive(Debug, Clone)]
pub struct StdoutWriter(Arc<Shared>);

impl Write for StdoutWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        if self.0.stop.load(Ordering::Relaxed) {
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            self.0.push(line);
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for StdoutWriter {
    type Writer = StdoutWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::Lines;

    /// A stdout that never drains.
    /// Counts the events a subscriber delivers.
    struct Count(Arc<AtomicU64>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
        fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    struct Stuck(std::sync::mpsc::Receiver<()>);

    impl Write for Stuck {
        fn write(&mut self, _buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.recv(); // blocks until the test ends
            Err(std::io::Error::other("closed"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_stdout_drops_and_counts_instead_of_blocking() {
        use tracing_subscriber::layer::SubscriberExt as _;
        let (release, stuck) = std::sync::mpsc::channel();
        let stdout = Stdout::new(Stuck(stuck), 16);
        let delivered = Arc::new(AtomicU64::new(0));
        let subscriber = tracing_subscriber::registry()
            .with(crate::log::JsonLayer::new(stdout.writer()))
            .with(Count(delivered.clone()));
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..20_000 {
                tracing::info!(i, "line");
            }
        });
        // At most 16 lines are stuck in the writer (one swapped-out buffer) and at most 16 wait
        // in the buffer: the rest of the lines the layer got were dropped. (Counted, not
        // assumed: another test rebuilding `tracing`'s interest cache may skip a few events.)
        let (delivered, dropped) = (delivered.load(Ordering::Relaxed), stdout.dropped());
        assert!(delivered > 1_000, "delivered {delivered}");
        assert!(
            dropped >= delivered - 32 && dropped <= delivered,
            "dropped {dropped} of {delivered}"
        );
        drop(release);
        stdout.close();
    }

    #[test]
    fn every_line_arrives_whole_and_in_order_by_close() {
        let out = Lines::default();
        let stdout = Stdout::new(out.clone(), 100_000);
        let mut writer = stdout.writer();
        for i in 0..10_000 {
            writer.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        stdout.close();
        let text = out.text();
        let expected: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(text, expected);
        assert_eq!(stdout.dropped(), 0);
        // After close, lines are counted as dropped, not written.
        writer.write_all(b"late\n").unwrap();
        assert_eq!(stdout.dropped(), 1);
    }

    #[test]
    fn a_line_is_written_within_a_few_ticks_without_close() {
        let out = Lines::default();
        let stdout = Stdout::new(out.clone(), 16);
        stdout.writer().write_all(b"hello\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while out.text().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(out.text(), "hello\n");
        stdout.close();
    }
}
