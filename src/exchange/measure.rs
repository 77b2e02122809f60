//! How both protocols measure a request: one set of duration buckets and one slow threshold,
//! so HTTP and gRPC durations compare on one dashboard.

use std::time::Duration;

/// The default slow-request threshold: 5 seconds.
pub const DEFAULT_SLOW_THRESHOLD: Duration = Duration::from_secs(5);

/// The OpenTelemetry HTTP and RPC advisory duration buckets, in seconds.
pub(crate) const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
