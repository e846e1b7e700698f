//! One long-lived thread that performs every `clone3`.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that created a child exits. Tokio
//! and test harness threads come and go, so children are created from this thread,
//! which lives exactly as long as the [`crate::LocalKube`] instance.

use std::sync::Mutex;
use std::sync::mpsc;
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send>;

pub(crate) struct Spawner {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Spawner {
    pub(crate) fn new() -> std::io::Result<Spawner> {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("localkube-spawner".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })?;
        Ok(Spawner {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Run `f` on the spawner thread and wait for its result.
    pub(crate) fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, String> {
        let (rtx, rrx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let _ = rtx.send(f());
        });
        {
            let guard = self.tx.lock().map_err(|_| "spawner lock poisoned")?;
            let tx = guard.as_ref().ok_or("localkube is shut down")?;
            tx.send(job).map_err(|_| "spawner thread is gone")?;
        }
        rrx.recv()
            .map_err(|_| "spawner thread dropped the job".to_string())
    }

    /// Stop the thread (after every child it made is gone).
    pub(crate) fn stop(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Ok(mut t) = self.thread.lock()
            && let Some(t) = t.take()
        {
            let _ = t.join();
        }
    }
}
