//! The export runtime: a single-thread tokio runtime on its own OS thread.
//!
//! Exports (encoding, gzip, gRPC) never run on the host's runtime: a host using a current-thread
//! runtime, or calling shutdown from async code, cannot stall them, and `init_tracer` works with
//! or without a runtime. The runtime is created and dropped on its own thread, so dropping it can
//! never panic in the host's async context.

use std::sync::mpsc as std_mpsc;
use std::sync::Mutex;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

#[derive(Debug)]
pub(crate) struct ExportRuntime {
    handle: Handle,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    done: Mutex<Option<std_mpsc::Receiver<()>>>,
}

impl ExportRuntime {
    pub(crate) fn start() -> std::io::Result<Self> {
        let (handle_tx, handle_rx) = std_mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = std_mpsc::channel();
        std::thread::Builder::new()
            .name("paytrace-export".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(rt.handle().clone()));
                rt.block_on(async {
                    // Every task of this runtime is polled on this thread inside this scope:
                    // telemetry produced while exporting (the SDK's, the transport's) is
                    // suppressed instead of feeding the pipeline it comes from.
                    let _suppressed = opentelemetry::Context::enter_telemetry_suppressed_scope();
                    let _ = stop_rx.await;
                });
                // Abandon whatever is still in flight (a hung export) without waiting for it.
                rt.shutdown_background();
                let _ = done_tx.send(());
            })?;
        let handle = handle_rx
            .recv()
            .map_err(|_| std::io::Error::other("export thread exited during start"))??;
        Ok(ExportRuntime {
            handle,
            stop: Mutex::new(Some(stop_tx)),
            done: Mutex::new(Some(done_rx)),
        })
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Stop the thread, waiting at most `timeout` for it to exit. Idempotent.
    pub(crate) fn stop(&self, timeout: Duration) {
        if let Some(stop) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = done.recv_timeout(timeout);
        }
    }
}

impl Drop for ExportRuntime {
    fn drop(&mut self) {
        self.stop(Duration::from_millis(100));
    }
}
