//! Benchmarks against the tools this project replaces. Each prints its
//! figures; none of them is a pass/fail test.

#[cfg(target_os = "linux")]
pub mod collect;
pub mod formats;
pub mod report;
