//! Process and tokio runtime gauges, read at scrape time (the seed watched CPU, memory and
//! goroutines; these are the Rust equivalents).

use std::sync::Mutex;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, IntGauge};

/// `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`,
/// `process_threads`, from `/proc/self` (Linux; elsewhere the families stay at zero).
#[derive(Debug)]
pub(crate) struct ProcessCollector {
    cpu: Counter,
    cpu_seen: Mutex<f64>,
    rss: IntGauge,
    fds: IntGauge,
    threads: IntGauge,
    descs: Vec<Desc>,
}

impl ProcessCollector {
    pub(crate) fn new() -> prometheus::Result<Self> {
        let cpu = Counter::new(
            "process_cpu_seconds_total",
            "User and system CPU time spent, seconds.",
        )?;
        let rss = IntGauge::new(
            "process_resident_memory_bytes",
            "Resident memory size, bytes.",
        )?;
        let fds = IntGauge::new("process_open_fds", "Open file descriptors.")?;
        let threads = IntGauge::new("process_threads", "OS threads in the process.")?;
        let descs = [cpu.desc(), rss.desc(), fds.desc(), threads.desc()]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        Ok(ProcessCollector {
            cpu,
            cpu_seen: Mutex::new(0.0),
            rss,
            fds,
            threads,
            descs,
        })
    }

    fn refresh(&self) {
        // Clock ticks are 100 Hz on every mainstream Linux configuration (USER_HZ).
        const TICKS: f64 = 100.0;
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the parenthesised command name, which may contain spaces.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            let num = |i: usize| {
                fields
                    .get(i)
                    .and_then(|f| f.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after the name.
            let cpu = (num(11) + num(12)) / TICKS;
            let mut seen = self.cpu_seen.lock().unwrap_or_else(|e| e.into_inner());
            if cpu > *seen {
                self.cpu.inc_by(cpu - *seen);
                *seen = cpu;
            }
            self.threads.set(num(17) as i64);
        }
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            if let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            {
                self.rss.set(kb * 1024);
            }
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            self.fds.set(dir.count() as i64);
        }
    }
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        let mut out = self.cpu.collect();
        out.extend(self.rss.collect());
        out.extend(self.fds.collect());
        out.extend(self.threads.collect());
        out
    }
}

/// `tokio_workers`, `tokio_alive_tasks`, `tokio_global_queue_depth` of one runtime.
#[derive(Debug)]
pub(crate) struct RuntimeCollector {
    handle: tokio::runtime::Handle,
    workers: IntGauge,
    alive: IntGauge,
    queue: IntGauge,
    descs: Vec<Desc>,
}

impl RuntimeCollector {
    pub(crate) fn new(handle: tokio::runtime::Handle) -> prometheus::Result<Self> {
        let workers = IntGauge::new("tokio_workers", "Worker threads of the tokio runtime.")?;
        let alive = IntGauge::new("tokio_alive_tasks", "Tasks alive in the tokio runtime.")?;
        let queue = IntGauge::new(
            "tokio_global_queue_depth",
            "Tasks waiting in the runtime's global queue.",
        )?;
        let descs = [workers.desc(), alive.desc(), queue.desc()]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        Ok(RuntimeCollector {
            handle,
            workers,
            alive,
            queue,
            descs,
        })
    }
}

impl Collector for RuntimeCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let m = self.handle.metrics();
        self.workers.set(m.num_workers() as i64);
        self.alive.set(m.num_alive_tasks() as i64);
        self.queue.set(m.global_queue_depth() as i64);
        let mut out = self.workers.collect();
        out.extend(self.alive.collect());
        out.extend(self.queue.collect());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let registry = prometheus::Registry::new();
        registry
            .register(Box::new(ProcessCollector::new().unwrap()))
            .unwrap();
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap();
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .and_then(|v| v.parse().ok())
                .unwrap_or(-1.0)
        };
        if cfg!(target_os = "linux") {
            assert!(value("process_resident_memory_bytes") > 1e6, "{text}");
            assert!(value("process_threads") >= 1.0, "{text}");
            assert!(value("process_open_fds") >= 3.0, "{text}");
            assert!(value("process_cpu_seconds_total") >= 0.0, "{text}");
        }
    }

    #[test]
    fn reads_a_runtime() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let registry = prometheus::Registry::new();
        registry
            .register(Box::new(
                RuntimeCollector::new(rt.handle().clone()).unwrap(),
            ))
            .unwrap();
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap();
        assert!(text.contains("tokio_workers 2"), "{text}");
    }
}
