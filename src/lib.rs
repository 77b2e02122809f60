//! paytrace: observability for Rust payment services.
