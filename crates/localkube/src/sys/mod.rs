//! The Linux side: starting processes in fresh PID/mount/UTS namespaces (the
//! containers), entering them (exec), and waiting for them through pidfds.
//!
//! Processes are created with `clone3` from one long-lived spawner thread, so that
//! `PR_SET_PDEATHSIG` ties them to the life of this process: if the test process
//! dies, its containers die with it. Code between `clone3` and `execve` in the
//! child only makes system calls on data prepared beforehand (no allocation, no
//! locks), because the parent is multi-threaded.

pub(crate) mod container;
pub(crate) mod netns;
pub(crate) mod nsexec;
pub(crate) mod process;
pub(crate) mod rootfs;
pub(crate) mod spawner;

pub(crate) use process::{ChildProcess, Mode};
pub(crate) use spawner::Spawner;
