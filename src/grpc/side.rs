//! Which end of a call a layer instruments: the public markers of [`GrpcLayer`](super::GrpcLayer)
//! and the crate's own enum.

/// Which end of a call a layer instruments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Server,
    Client,
}

mod sealed {
    pub trait Sealed {}
}

/// Which end of a call a [`GrpcLayer`](super::GrpcLayer) instruments: [`ServerSide`] or [`ClientSide`].
pub trait Kind: sealed::Sealed + Send + Sync + 'static {
    #[doc(hidden)]
    const SERVER: bool;
}

pub(crate) fn side<K: Kind>() -> Side {
    if K::SERVER {
        Side::Server
    } else {
        Side::Client
    }
}

/// The server end: `SpanKind::Server`, context extracted from the request metadata.
#[derive(Debug, Clone, Copy)]
pub enum ServerSide {}
/// The client end: `SpanKind::Client`, context injected into the request metadata.
#[derive(Debug, Clone, Copy)]
pub enum ClientSide {}

impl sealed::Sealed for ServerSide {}
impl sealed::Sealed for ClientSide {}
impl Kind for ServerSide {
    const SERVER: bool = true;
}
impl Kind for ClientSide {
    const SERVER: bool = false;
}
