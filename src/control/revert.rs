//! A revert waiting for its change's TTL: a task on the service's runtime, or a thread of its own
//! when telemetry is disabled and there is no runtime. Dropping it cancels the wait, so a change
//! that was replaced, reset or reverted holds no task or thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::Thread;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::task::AbortHandle;

/// A pending revert; it is cancelled when dropped.
#[derive(Debug)]
pub(super) enum Revert {
    Task(AbortHandle),
    Thread {
        cancelled: Arc<AtomicBool>,
        thread: Thread,
    },
}

impl Revert {
    /// Run `revert` once `ttl` has passed, unless the returned handle is dropped first.
    pub(super) fn after(
        ttl: Duration,
        runtime: Option<&Handle>,
        revert: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Revert> {
        if let Some(runtime) = runtime {
            let task = runtime.spawn(async move {
                tokio::time::sleep(ttl).await;
                revert();
            });
            return Ok(Revert::Task(task.abort_handle()));
        }
        let cancelled = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&cancelled);
        let thread = std::thread::Builder::new()
            .name("paytrace-control".into())
            .spawn(move || {
                if wait_until(Instant::now() + ttl, &flag) {
                    revert();
                }
            })?
            .thread()
            .clone();
        Ok(Revert::Thread { cancelled, thread })
    }
}

/// Park until `deadline`; false when cancelled first.
fn wait_until(deadline: Instant, cancelled: &AtomicBool) -> bool {
    loop {
        if cancelled.load(Ordering::Acquire) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::park_timeout(deadline - now);
    }
}

impl Drop for Revert {
    fn drop(&mut self) {
        match self {
            Revert::Task(task) => task.abort(),
            Revert::Thread { cancelled, thread } => {
                cancelled.store(true, Ordering::Release);
                thread.unpark();
            }
        }
    }
}

/// What the control's tests share: a runtime for reverts, and a wait for what they do.
#[cfg(test)]
pub(super) mod test_support {
    use std::time::{Duration, Instant};

    /// One worker with timers, for reverts to run on.
    pub(in crate::control) fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .unwrap()
    }

    /// Polls `done` until it holds; false after 30 s.
    pub(in crate::control) fn eventually(done: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{eventually, runtime};
    use super::*;

    const LONG: Duration = Duration::from_secs(3600);

    /// Waits until the revert closure (which holds a clone of `held`) has been dropped.
    fn released(held: &Arc<()>) -> bool {
        eventually(|| Arc::strong_count(held) == 1)
    }

    fn waiting(runtime: Option<&Handle>, held: &Arc<()>, ran: &Arc<AtomicBool>) -> Revert {
        let (held, ran) = (Arc::clone(held), Arc::clone(ran));
        Revert::after(LONG, runtime, move || {
            let _held = held;
            ran.store(true, Ordering::SeqCst);
        })
        .unwrap()
    }

    #[test]
    fn a_dropped_thread_revert_ends_its_thread_without_running() {
        let (held, ran) = (Arc::new(()), Arc::new(AtomicBool::new(false)));
        drop(waiting(None, &held, &ran));
        assert!(released(&held), "the thread still waits for its TTL");
        assert!(!ran.load(Ordering::SeqCst));
    }

    #[test]
    fn a_dropped_task_revert_ends_its_task_without_running() {
        let rt = runtime();
        let (held, ran) = (Arc::new(()), Arc::new(AtomicBool::new(false)));
        drop(waiting(Some(rt.handle()), &held, &ran));
        assert!(released(&held), "the task still waits for its TTL");
        assert!(!ran.load(Ordering::SeqCst));
    }

    #[test]
    fn a_revert_kept_runs_at_its_ttl_on_either_timer() {
        let rt = runtime();
        for runtime in [None, Some(rt.handle())] {
            let (tx, rx) = std::sync::mpsc::channel();
            let _revert = Revert::after(Duration::from_millis(10), runtime, move || {
                let _ = tx.send(());
            })
            .unwrap();
            assert!(rx.recv_timeout(Duration::from_secs(30)).is_ok());
        }
    }
}
