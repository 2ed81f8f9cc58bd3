//! Named moments a test can have the process killed at, as a crash or `kill -9` would
//! kill it (SIGKILL: no handler, no cleanup): with `CHT_DEV_KILL_AT=STEP`, the process
//! kills itself the first time it reaches `STEP`. Compiled in only with the `fault-hooks`
//! feature, which the test script builds with; otherwise [`point`] does nothing.
//!
//! Steps: `held` (the services paused or stopped for a snapshot), `swapped` (a restore's
//! first folder swapped), `files-written` (an upgrade's new files), `certificate-written`
//! (a switch's files, before nginx has them), `engine-part-done` (a destroy's containers
//! and volumes gone, its files not yet), `copied` (adopt's data copied, the project not
//! yet in place).

/// Kills the process here when `CHT_DEV_KILL_AT` names `step`.
#[cfg(feature = "fault-hooks")]
pub fn point(step: &str) {
    if std::env::var("CHT_DEV_KILL_AT").is_ok_and(|at| at == step) {
        // SAFETY: raising a signal in the calling process has no preconditions.
        unsafe {
            libc::raise(libc::SIGKILL);
        }
    }
}

/// Does nothing: built without the `fault-hooks` feature.
#[cfg(not(feature = "fault-hooks"))]
#[inline(always)]
pub fn point(_step: &str) {}
