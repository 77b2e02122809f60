//! The received requests and the current fault, shared by the collector handle and the services.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::watch;

use super::{
    ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest, Fault,
    Received,
};

/// What the collector has received, and how it answers.
#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) fault: Fault,
    pub(super) traces: Vec<Received<ExportTraceServiceRequest>>,
    pub(super) metrics: Vec<Received<ExportMetricsServiceRequest>>,
    pub(super) logs: Vec<Received<ExportLogsServiceRequest>>,
    /// One entry per request of any signal, in order of arrival; its length is the request count.
    pub(super) encodings: Vec<Option<String>>,
}

impl State {
    pub(super) fn span_count(&self) -> usize {
        self.traces
            .iter()
            .flat_map(|received| &received.message.resource_spans)
            .flat_map(|resource_spans| &resource_spans.scope_spans)
            .map(|scope_spans| scope_spans.spans.len())
            .sum()
    }

    pub(super) fn log_count(&self) -> usize {
        self.logs
            .iter()
            .flat_map(|received| &received.message.resource_logs)
            .flat_map(|resource_logs| &resource_logs.scope_logs)
            .map(|scope_logs| scope_logs.log_records.len())
            .sum()
    }
}

/// The state shared by the collector handle and the gRPC services.
#[derive(Debug)]
pub(super) struct Recording {
    state: Mutex<State>,
    /// Bumped after every recorded request, to wake the `wait_for_*` helpers.
    pub(super) changes: watch::Sender<u64>,
}

impl Recording {
    pub(super) fn new() -> Self {
        Self {
            state: Mutex::default(),
            changes: watch::Sender::new(0),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a test panicked while reading; every update of `State` leaves it
        // consistent, so keep serving the data rather than cascade the panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `request` and returns the fault to answer it with.
    pub(super) fn record<T: ExportRequest>(&self, request: tonic::Request<T>) -> Fault {
        let encoding = request
            .metadata()
            .get("grpc-encoding")
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let headers = request
            .metadata()
            .iter()
            .filter_map(|entry| match entry {
                tonic::metadata::KeyAndValueRef::Ascii(k, v) => Some((
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )),
                tonic::metadata::KeyAndValueRef::Binary(..) => None,
            })
            .collect();
        let at = Instant::now();
        let message = request.into_inner();
        let fault = {
            let mut state = self.lock();
            let fault = state.fault.clone();
            state.encodings.push(encoding.clone());
            T::received(&mut state).push(Received {
                message,
                encoding,
                at,
                fault: fault.clone(),
                headers,
            });
            fault
        };
        // `send_modify` notifies even when no one is subscribed, unlike `send`.
        self.changes
            .send_modify(|count| *count = count.wrapping_add(1));
        fault
    }
}

/// An export request type and where [`State`] keeps it.
pub(super) trait ExportRequest: Sized {
    fn received(state: &mut State) -> &mut Vec<Received<Self>>;
}

impl ExportRequest for ExportTraceServiceRequest {
    fn received(state: &mut State) -> &mut Vec<Received<Self>> {
        &mut state.traces
    }
}

impl ExportRequest for ExportMetricsServiceRequest {
    fn received(state: &mut State) -> &mut Vec<Received<Self>> {
        &mut state.metrics
    }
}

impl ExportRequest for ExportLogsServiceRequest {
    fn received(state: &mut State) -> &mut Vec<Received<Self>> {
        &mut state.logs
    }
}
