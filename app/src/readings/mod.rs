//! Readings: how they are checked (`validate`) and stored (`store`, the
//! one write path every source goes through, over `writer`, the
//! coalescing writer).

pub mod store;
pub mod validate;
pub mod writer;

pub use store::{Origin, Source, ingest_device_batch, store};
pub use validate::{MAX_BATCH, Valid, validate};
