//! Readings: how they are checked (`validate`) and stored (`writer`, the
//! coalescing writer every source goes through).

pub mod validate;
pub mod writer;

pub use validate::{MAX_BATCH, Valid, validate};
