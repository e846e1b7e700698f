//! Benchmarks against the tools this project replaces. Each prints its
//! figures; none of them is a pass/fail test.

pub mod report;
