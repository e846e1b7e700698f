//! Scoped threads that start on another CPU than the thread spawning them.
//!
//! Linux starts a new thread on its parent's CPU or queues it behind the
//! parent, and moves one of them to an idle CPU only at a later balancing
//! tick (4 ms apart at HZ=250). In a VM it may not move them at all: an
//! idle vCPU that the host has descheduled counts as busy to the guest
//! (`available_idle_cpu` checks `vcpu_is_preempted`). Work of a few
//! milliseconds then runs on one CPU. Measured on a 2-vCPU VM, two 8 ms
//! loops took a median of 12.3 ms with a plain spawn and 8.3 ms with
//! [`spawn`].
//!
//! [`spawn`] pins the caller to its CPU, spawns (the thread inherits that
//! mask, so it starts there), then moves the caller to one of its other
//! allowed CPUs. Both get the caller's original mask back at once, so the
//! kernel balances them as usual from then on. Where the caller may run on
//! one CPU only, or the masks cannot be read or set, it is a plain spawn.

use std::thread::{Scope, ScopedJoinHandle};

/// [`Scope::spawn`], with the new thread and the caller on different CPUs
/// from the start where the caller's affinity allows it.
pub fn spawn<'scope, T, F>(scope: &'scope Scope<'scope, '_>, f: F) -> ScopedJoinHandle<'scope, T>
where
    F: FnOnce() -> T + Send + 'scope,
    T: Send + 'scope,
{
    #[cfg(target_os = "linux")]
    {
        linux::spawn_apart(scope, f)
    }
    #[cfg(not(target_os = "linux"))]
    {
        scope.spawn(f)
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use rustix::thread::{CpuSet, sched_getaffinity, sched_getcpu, sched_setaffinity};
    use std::thread::{Scope, ScopedJoinHandle};

    pub fn spawn_apart<'scope, T, F>(
        scope: &'scope Scope<'scope, '_>,
        f: F,
    ) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let here = sched_getcpu();
        let Ok(original) = sched_getaffinity(None) else {
            return scope.spawn(f);
        };
        if original.count() < 2 || !original.is_set(here) {
            return scope.spawn(f);
        }
        let mut pinned = CpuSet::new();
        pinned.set(here);
        if sched_setaffinity(None, &pinned).is_err() {
            return scope.spawn(f);
        }
        // The caller's mask comes back on every path (`Scope::spawn`
        // panics if the system refuses a thread).
        let _restore = Restore(original);
        let handle = scope.spawn(move || {
            // Still pinned here until this; the caller is moving away.
            let _ = sched_setaffinity(None, &original);
            f()
        });
        let mut elsewhere = original;
        elsewhere.unset(here);
        // A move of the calling thread happens before the call returns.
        let _ = sched_setaffinity(None, &elsewhere);
        handle
    }

    struct Restore(CpuSet);

    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = sched_setaffinity(None, &self.0);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use rustix::thread::{CpuSet, sched_getaffinity, sched_getcpu, sched_setaffinity};

    fn mask_bits(m: &CpuSet) -> Vec<usize> {
        (0..CpuSet::MAX_CPU).filter(|&c| m.is_set(c)).collect()
    }

    #[test]
    fn both_threads_keep_the_callers_mask() {
        let original = mask_bits(&sched_getaffinity(None).unwrap());
        let (theirs, value) = std::thread::scope(|s| {
            super::spawn(s, || (mask_bits(&sched_getaffinity(None).unwrap()), 42))
                .join()
                .unwrap()
        });
        assert_eq!(value, 42);
        assert_eq!(theirs, original, "the new thread's mask");
        assert_eq!(
            mask_bits(&sched_getaffinity(None).unwrap()),
            original,
            "the caller's mask"
        );
    }

    #[test]
    fn the_thread_starts_here_and_the_caller_moves() {
        let allowed = sched_getaffinity(None).unwrap();
        if allowed.count() < 2 {
            // Nothing to spread over: a plain spawn, mask unchanged.
            return both_threads_keep_the_callers_mask();
        }
        // The kernel's balancer may still move either thread in the
        // microseconds between the move and the reads: most, not all.
        let apart = (0..5)
            .filter(|_| {
                std::thread::scope(|s| {
                    let before = sched_getcpu();
                    let child = super::spawn(s, sched_getcpu);
                    let after = sched_getcpu();
                    let theirs = child.join().unwrap();
                    theirs == before && after != before
                })
            })
            .count();
        assert!(apart >= 4, "apart as planned in {apart} of 5 spawns");
    }

    #[test]
    fn one_allowed_cpu_is_a_plain_spawn() {
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut one = CpuSet::new();
                one.set(sched_getcpu());
                sched_setaffinity(None, &one).unwrap();
                let theirs = std::thread::scope(|s| {
                    super::spawn(s, || mask_bits(&sched_getaffinity(None).unwrap()))
                        .join()
                        .unwrap()
                });
                assert_eq!(theirs, mask_bits(&one));
                assert_eq!(
                    mask_bits(&sched_getaffinity(None).unwrap()),
                    mask_bits(&one)
                );
            });
        });
    }
}
