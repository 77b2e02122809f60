//! Exemplars: for each histogram series that has them, the last kept request per bucket — its
//! trace and span id, value and time — so a latency bucket links to a trace that was exported.
//!
//! Only kept requests write here (sampled by the ratio, or failed or slow, which tail keep
//! keeps); the path of the others is unchanged. The store is read when `/metrics` answers in
//! OpenMetrics and when the metrics bridge builds its OTLP request.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use rustc_hash::FxHashMap;

/// One exemplar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Exemplar {
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
    pub(crate) value: f64,
    /// Unix time in nanoseconds.
    pub(crate) time_nanos: u64,
}

/// The exemplars of one histogram series: a slot per bucket, `+Inf` last.
#[derive(Debug)]
pub(crate) struct SeriesExemplars {
    /// `OTEL_METRICS_EXEMPLAR_FILTER=always_off`: nothing is recorded.
    off: bool,
    bounds: Arc<[f64]>,
    slots: Mutex<Vec<Option<Exemplar>>>,
}

impl SeriesExemplars {
    /// Record `value` of the request with these ids in its bucket, replacing the one there.
    pub(crate) fn record(&self, value: f64, trace_id: [u8; 16], span_id: [u8; 8]) {
        if self.off {
            return;
        }
        // The bucket `le` that counts the value: the first bound not below it.
        let bucket = self.bounds.partition_point(|&b| b < value);
        let time_nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get_mut(bucket) {
            *slot = Some(Exemplar {
                trace_id,
                span_id,
                value,
                time_nanos,
            });
        }
    }

    /// The exemplar of each bucket, `+Inf` last.
    pub(crate) fn snapshot(&self) -> Vec<Option<Exemplar>> {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A series: its family and its label pairs, sorted by name (as the registry gathers them).
type SeriesKey = (String, Vec<(String, String)>);

/// Every series with exemplars, found by family and labels when encoding.
#[derive(Debug, Default)]
pub(crate) struct ExemplarStore {
    series: Mutex<FxHashMap<SeriesKey, Arc<SeriesExemplars>>>,
    off: bool,
}

impl ExemplarStore {
    /// A store that records nothing (`OTEL_METRICS_EXEMPLAR_FILTER=always_off`).
    pub(crate) fn off() -> Self {
        ExemplarStore {
            series: Mutex::default(),
            off: true,
        }
    }

    /// The exemplars of one series, created on first use (once per bound series, not per
    /// request).
    pub(crate) fn series(
        &self,
        family: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
    ) -> Arc<SeriesExemplars> {
        let mut pairs: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        pairs.sort();
        self.series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((family.to_owned(), pairs))
            .or_insert_with(|| {
                Arc::new(SeriesExemplars {
                    off: self.off,
                    bounds: Arc::from(bounds),
                    slots: Mutex::new(vec![None; bounds.len() + 1]),
                })
            })
            .clone()
    }

    /// The exemplars of a gathered series, when it has any.
    pub(crate) fn lookup(
        &self,
        family: &str,
        metric: &prometheus::proto::Metric,
    ) -> Option<Vec<Option<Exemplar>>> {
        let mut pairs: Vec<(String, String)> = metric
            .get_label()
            .iter()
            .map(|l| (l.name().to_owned(), l.value().to_owned()))
            .collect();
        pairs.sort();
        let series = self
            .series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(family.to_owned(), pairs))
            .cloned()?;
        let snapshot = series.snapshot();
        snapshot.iter().any(Option::is_some).then_some(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bucket_keeps_its_last_exemplar() {
        let store = ExemplarStore::default();
        let series = store.series("d", &[("route", "/a"), ("method", "GET")], &[0.1, 1.0]);
        series.record(0.05, [1; 16], [1; 8]);
        series.record(0.07, [2; 16], [2; 8]);
        series.record(5.0, [3; 16], [3; 8]);
        let snapshot = series.snapshot();
        assert_eq!(snapshot.len(), 3);
        assert_eq!(snapshot[0].unwrap().trace_id, [2; 16]);
        assert!(snapshot[1].is_none());
        assert_eq!(snapshot[2].unwrap().value, 5.0);
        // The same series, found again in any label order.
        let again = store.series("d", &[("method", "GET"), ("route", "/a")], &[0.1, 1.0]);
        assert!(Arc::ptr_eq(&series, &again));
    }

    #[test]
    fn an_off_store_records_nothing() {
        let store = ExemplarStore::off();
        let series = store.series("d", &[], &[0.1]);
        series.record(0.05, [1; 16], [1; 8]);
        assert!(series.snapshot().iter().all(Option::is_none));
    }

    #[test]
    fn a_value_on_a_bound_goes_in_that_bucket() {
        let store = ExemplarStore::default();
        let series = store.series("d", &[], &[0.1, 1.0]);
        series.record(0.1, [1; 16], [1; 8]);
        assert!(series.snapshot()[0].is_some(), "le=0.1 counts 0.1");
    }
}
