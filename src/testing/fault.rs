//! [`Fault`]: how the collector answers, to test retries, timeouts and the exporter watchdog.

use std::time::Duration;

use tonic::Code;

#[cfg(doc)]
use super::TestCollector;

/// How the collector answers requests; set with [`TestCollector::set_fault`].
///
/// Every request is recorded before its fault is applied, whatever the fault.
///
/// # Example
///
/// ```
/// use std::time::Duration;
///
/// use paytrace::testing::{Code, Fault};
///
/// let faults = [
///     Fault::None,
///     Fault::Refuse,
///     Fault::Delay(Duration::from_millis(500)),
///     Fault::Hang,
///     Fault::Reject(Code::InvalidArgument),
///     Fault::PartialSuccess(2),
/// ];
/// assert_eq!(Fault::default(), Fault::None);
/// # let _ = faults;
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Fault {
    /// Answer every request `OK` at once (the default).
    #[default]
    None,
    /// Answer every request with `UNAVAILABLE`, as a collector shedding load does. OTLP exporters
    /// retry this code.
    Refuse,
    /// Wait this long, then answer `OK`.
    Delay(Duration),
    /// Accept the request and never answer, until the client gives up or the collector stops.
    Hang,
    /// Answer every request with this status code.
    Reject(Code),
    /// Accept every request but report this many of its items rejected (OTLP partial
    /// success), with the message `TestCollector: Fault::PartialSuccess`.
    PartialSuccess(u64),
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;

    use super::*;
    use crate::testing::test_helpers::{log_request, trace_client, trace_request};
    use crate::testing::TestCollector;

    #[tokio::test]
    async fn refuse_answers_unavailable_and_still_records() {
        let collector = TestCollector::start().await.unwrap();
        let mut client = trace_client(&collector, true).await;

        collector.set_fault(Fault::Refuse);
        let status = client.export(trace_request(&["a"])).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(collector.request_count(), 1);
        assert_eq!(collector.trace_requests()[0].fault, Fault::Refuse);
        assert_eq!(collector.spans().len(), 1);

        collector.set_fault(Fault::None);
        client.export(trace_request(&["b"])).await.unwrap();
        assert_eq!(collector.request_count(), 2);
        assert_eq!(collector.trace_requests()[1].fault, Fault::None);
    }

    #[tokio::test]
    async fn reject_answers_with_the_given_code() {
        let collector = TestCollector::start().await.unwrap();
        collector.set_fault(Fault::Reject(Code::InvalidArgument));
        let mut client = LogsServiceClient::connect(collector.endpoint())
            .await
            .unwrap();
        let status = client.export(log_request(&["x"])).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(collector.request_count(), 1);
    }

    #[tokio::test]
    async fn hang_never_answers() {
        let collector = TestCollector::start().await.unwrap();
        collector.set_fault(Fault::Hang);
        let mut client = trace_client(&collector, true).await;

        let mut request = tonic::Request::new(trace_request(&["stuck"]));
        request.set_timeout(Duration::from_millis(200));
        let started = std::time::Instant::now();
        let status = client.export(request).await.unwrap_err();

        assert!(
            matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
            "unexpected status {status:?}"
        );
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(collector.request_count(), 1);
        assert_eq!(collector.trace_requests()[0].fault, Fault::Hang);
    }

    #[tokio::test]
    async fn delay_answers_ok_late() {
        let collector = TestCollector::start().await.unwrap();
        let delay = Duration::from_millis(300);
        collector.set_fault(Fault::Delay(delay));
        let mut client = trace_client(&collector, false).await;

        let started = std::time::Instant::now();
        client.export(trace_request(&["slow"])).await.unwrap();
        assert!(
            started.elapsed() >= delay,
            "answered after {:?}",
            started.elapsed()
        );
        assert_eq!(collector.trace_requests()[0].fault, Fault::Delay(delay));
    }
}
