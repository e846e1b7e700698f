//! Step 3 of the data flow: merge, with `go tool covdata`'s semantics.
//!
//! - [`counters`]: within a group (one binary), add up the counter files
//!   function by function (`set` mode: 1 if any run hit the block; otherwise
//!   a sum that saturates at 2^32-1).
//! - [`groups`]: across groups, attach counts to the meta-data's blocks and
//!   collapse identical blocks (same package, file, function, literal flag,
//!   position and statement count) into one, using the first group's mode.

pub mod counters;
pub mod groups;

/// A fast hash for the merge tables (keys are small integers and short
/// names; no untrusted-key DoS concern for a CLI).
pub(crate) use rustc_hash::FxHashMap;
