//! Named moments a test can have the process killed at, as a crash or `kill -9` would
//! kill it (SIGKILL: no handler, no cleanup): with `CHT_DEV_KILL_AT=STEP`, the process
//! kills itself the first time it reaches `STEP`; or held at, so the test can change the
//! world meanwhile (restart the engine): with `CHT_DEV_WAIT_AT=STEP` and
//! `CHT_DEV_WAIT_FILE=PATH`, it creates `PATH.reached` there and waits until `PATH`
//! exists. Compiled in only with the `fault-hooks` feature, which the test script builds
//! with; otherwise [`point`] does nothing.
//!
//! Steps: `started` (settings resolved, before the repair and before the command listens
//! for Ctrl-C), `first-pass-done` (a snapshot's data read while the services run), `held` (the services paused or stopped for a snapshot), `swapped` (a restore's
//! first folder swapped), `files-written` (an upgrade's new files), `certificate-written`
//! (a switch's files, before nginx has them), `engine-part-done` (a destroy's containers
//! and volumes gone, its files not yet), `copied` (adopt's data copied, the project not
//! yet in place).

/// Kills the process here when `CHT_DEV_KILL_AT` names `step`, or waits here when
/// `CHT_DEV_WAIT_AT` does.
#[cfg(feature = "fault-hooks")]
pub fn point(step: &str) {
    let named = |var: &str| std::env::var(var).is_ok_and(|at| at == step);
    if named("CHT_DEV_KILL_AT") {
        // SAFETY: raising a signal in the calling process has no preconditions.
        unsafe {
            libc::raise(libc::SIGKILL);
        }
    }
    if let (true, Some(file)) = (
        named("CHT_DEV_WAIT_AT"),
        std::env::var_os("CHT_DEV_WAIT_FILE").map(std::path::PathBuf::from),
    ) {
        let mut reached = file.clone().into_os_string();
        reached.push(".reached");
        let _ = std::fs::write(&reached, step);
        while !file.exists() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Does nothing: built without the `fault-hooks` feature.
#[cfg(not(feature = "fault-hooks"))]
#[inline(always)]
pub fn point(_step: &str) {}
