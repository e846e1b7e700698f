//! `cov-collect`'s work: stream each selected container's `GOCOVERDIR` out as
//! a tar archive over exec and extract it safely into
//! `OUT/[SNAPSHOT/]<namespace>/<pod>/<container>/`.
//!
//! - [`collect`]: one container: `tar -czf - -C DIR .` (falling back to
//!   uncompressed when the image's tar lacks `-z`), extraction with
//!   [`safe_untar`], the decision about tar's exit status;
//! - [`outdir`]: where the output goes (`--out`, `SKAFFOLD_WORK_DIR`);
//! - [`follow`]: `--follow`: watch the run's pods and collect each as it goes;
//! - [`detach`]: `--detach`/`--stop`: a follower in the background, by pid file.
//!
//! The binary (`main.rs`) parses flags and prints; see `cov-collect --help`.

pub mod collect;
pub mod detach;
pub mod follow;
pub mod outdir;
