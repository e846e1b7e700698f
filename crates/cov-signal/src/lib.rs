//! `cov-signal`'s work: exec `kill -<SIGNAL> <PID>` into every selected
//! container and confirm the Go coverage runtime wrote new counters.
//!
//! - [`signal`]: one container: list `GOCOVERDIR`, signal, wait for a new or
//!   grown `covcounters.*` file whose size is stable;
//! - [`flush`]: all of that in one exec of a POSIX `sh` script, where the
//!   image has a shell (the steps above are the path for images without);
//! - [`pid`]: which process to signal (PID 1, or the service itself when the pod
//!   shares its process namespace and PID 1 is the pause process);
//! - [`diagnose`]: why nothing was written (counter mode read from the meta file).
//!
//! The binary (`main.rs`) parses flags and prints; see `cov-signal --help`.

pub mod diagnose;
pub mod flush;
pub mod pid;
pub mod signal;
