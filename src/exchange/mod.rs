//! One request or call, whatever the protocol: what the HTTP and gRPC layers share, below
//! both so neither reaches into the other.

mod authority;
mod end;
mod intern;
mod measure;
pub(crate) mod value_cache;

pub(crate) use authority::{server_address, split_host_port};
pub(crate) use end::{End, Failure, Kept, SpanEnd};
pub(crate) use intern::intern;
pub use measure::DEFAULT_SLOW_THRESHOLD;
pub(crate) use measure::DURATION_BUCKETS;
