//! The server layer: [`TraceLayer`] → [`TracedService`] → [`ResponseFuture`] → [`ResponseBody`].
//!
//! Each stage is handed by value what the next needs (the layer's state, the in-flight
//! request). `options.rs` sits below the stages: they import it, and it imports none of them,
//! only the route table and the instruments the state holds.

mod attrs;
mod body;
mod future;
mod inflight;
mod layer;
mod metrics;
mod options;
mod routes;
mod service;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use layer::TraceLayer;
pub use metrics::HttpMetrics;
pub use options::{
    is_default_skip_path, DEFAULT_FALLBACK_ROUTE, DEFAULT_SKIP_PATHS, REQUEST_ID_HEADER,
};
pub use service::TracedService;
