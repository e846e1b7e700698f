//! Faults a test can switch on per pod, to see how clients cope.

use std::path::PathBuf;

/// A misbehaviour of one pod, set with [`crate::LocalKube::set_fault`] and
/// removed with [`crate::LocalKube::clear_faults`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Exec requests are refused with this HTTP status (403 Forbidden, 500 Internal
    /// Error, ...) and a Kubernetes `Status` body, before any upgrade.
    ExecRefused(u16),
    /// Exec output (stdout and stderr frames together) stops after this many payload
    /// bytes and the connection is dropped without a status or close frame.
    CutStreamAfter(usize),
    /// Exec output is paced to this rate.
    SlowStream { bytes_per_sec: u64 },
    /// The pod reports this phase (`Pending`, `Failed`, `Succeeded`, `Unknown`);
    /// exec into it is refused as the API server/kubelet would. The processes keep running.
    Phase(String),
    /// The pod is being deleted: `metadata.deletionTimestamp` is set; it keeps running.
    Terminating,
    /// The container's process is stopped and reported as terminated with this exit
    /// code; its `emptyDir` data stays. Exec into it fails. `clear_faults` restarts it.
    ContainerExited { container: String, exit_code: i32 },
    /// The container's process is killed and started again (restartCount + 1),
    /// with its `emptyDir` data kept, as the kubelet does after a crash.
    ContainerRestarted { container: String },
    /// Inside every container of the pod, the program `name` (looked up in the
    /// container's `PATH`, e.g. `tar`) is replaced by the host executable `with`
    /// (bind-mounted over it in the pod's mount namespaces). A container started
    /// again afterwards (restart) gets the real program back.
    ReplaceProgram { name: String, with: PathBuf },
}
