//! vitalfarm's tools, each a client of the public API of a server it
//! starts (or is pointed at): the benchmarks (`vitalfarm bench ...`), the
//! device simulator (`vitalfarm simulate`) and the guided demo
//! (`vitalfarm demo`).

pub mod bench;
pub mod demo;
pub mod simulate;
