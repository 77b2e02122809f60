//! paytrace: observability for Rust payment services.
//! With the `testing` feature, `paytrace::testing::TestCollector` receives OTLP in-process for tests.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
