//! Per-project locks, so two cht-dev commands never work on one project at once, and the
//! home-wide hold on port choice.

use super::*;

/// An exclusive hold on one project, released when dropped (or when the process ends).
#[derive(Debug)]
pub struct ProjectLock {
    /// The locked file, outside the home (see [`lock`]).
    _file: std::fs::File,
}

/// The per-user folder holding lock files: the user's runtime folder, else a folder of
/// the user's own in the temp folder. Lock files live outside the home, so a command that
/// fails leaves nothing there.
pub(super) fn lock_folder() -> PathBuf {
    match directories::BaseDirs::new().and_then(|d| d.runtime_dir().map(Path::to_path_buf)) {
        Some(runtime) => runtime.join("cht-dev-locks"),
        // SAFETY: geteuid has no preconditions and cannot fail.
        None => std::env::temp_dir().join(format!("cht-dev-locks-{}", unsafe { libc::geteuid() })),
    }
}

/// Takes the project's lock, so two cht-dev commands never work on one project at once;
/// a second command fails at once with [`Error::Busy`].
pub fn lock(home: &Home, name: &str) -> Result<ProjectLock> {
    lock_in(&lock_folder(), home, name)
}

/// The lock key of the home-wide hold on port choice: not a valid project name, so it
/// never meets a project's lock.
const PORTS_KEY: &str = ".ports";

/// Waits for the home-wide hold on port choice: creating a project reads the ports every
/// project holds and writes its own while holding it, so concurrent `init`s never pick
/// the same ports.
pub(super) fn lock_ports(base: &Path, home: &Home) -> Result<ProjectLock> {
    let file = lock_file(base, home, PORTS_KEY)?;
    file.lock().map_err(Error::io("lock", base))?;
    Ok(ProjectLock { _file: file })
}

/// [`lock`] with its lock folder given.
pub(super) fn lock_in(base: &Path, home: &Home, name: &str) -> Result<ProjectLock> {
    let file = lock_file(base, home, name)?;
    match file.try_lock() {
        Ok(()) => Ok(ProjectLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Busy {
            name: name.to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", base)(e)),
    }
}

/// Opens the lock file of `key` in `home`, unlocked. Rules: the folder is a real folder
/// (not a link), the user's own and closed to others (it is made so when missing); the
/// lock file is never opened through a link; the file is keyed by the home's canonical
/// path, so two spellings of one home (`a/../home`) share one lock.
pub(super) fn lock_file(base: &Path, home: &Home, key: &str) -> Result<std::fs::File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    fsutil::create_dir_mode(base, fsutil::PRIVATE_DIR)?;
    let meta = std::fs::symlink_metadata(base).map_err(Error::io("inspect", base))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.file_type().is_dir() || meta.uid() != me || meta.mode() & 0o077 != 0 {
        return Err(Error::io("use the lock folder", base)(
            std::io::Error::other(
                "it is a link, not yours, or open to other users; remove it and try again",
            ),
        ));
    }
    fsutil::create_dir_mode(home.root(), fsutil::PRIVATE_DIR)?;
    let canonical =
        std::fs::canonicalize(home.root()).map_err(Error::io("resolve", home.root()))?;
    let hash = &crate::fsutil::hex_sha256(&canonical.to_string_lossy())[..16];
    let path = base.join(format!("{hash}-{key}.lock"));
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(fsutil::PRIVATE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(Error::io("open", &path))
}
