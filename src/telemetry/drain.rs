//! Bounded waits for flush and shutdown: every step gets what is left of one deadline.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::export::batch::DrainError;
use crate::export::Signal;
use crate::signal::PerSignal;

/// Time left until `deadline`, zero once it has passed.
pub(super) fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Run a blocking SDK call on its own thread and wait at most `timeout` for it.
pub(super) fn bounded<F>(timeout: Duration, f: F) -> Result<(), DrainError>
where
    F: FnOnce() -> opentelemetry_sdk::error::OTelSdkResult + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("paytrace-flush".into())
        .spawn(move || {
            let _ = tx.send(f());
        });
    if spawned.is_err() {
        return Err(DrainError::Failed("cannot spawn flush thread".into()));
    }
    match rx.recv_timeout(timeout) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(opentelemetry_sdk::error::OTelSdkError::AlreadyShutdown)) => Ok(()),
        Ok(Err(e)) => Err(DrainError::Failed(e.to_string())),
        Err(_) => Err(DrainError::Timeout),
    }
}

/// The error to report for a flush or shutdown: a timeout first, then the first failed signal.
pub(super) fn first_error(
    operation: &'static str,
    timeout: Duration,
    drained: PerSignal<Result<(), DrainError>>,
    last_error: impl Fn(Signal) -> Option<String>,
) -> Result<(), Error> {
    let PerSignal {
        traces,
        metrics,
        logs,
    } = drained;
    // In the order the signals are drained.
    let results = [
        (Signal::Traces, traces),
        (Signal::Logs, logs),
        (Signal::Metrics, metrics),
    ];
    if let Some((signal, _)) = results.iter().find(|(_, r)| *r == Err(DrainError::Timeout)) {
        return Err(Error::Timeout {
            operation,
            timeout,
            last_error: last_error(*signal),
        });
    }
    for (signal, r) in results {
        if let Err(DrainError::Failed(message)) = r {
            return Err(Error::ExportFailed { signal, message });
        }
    }
    Ok(())
}
