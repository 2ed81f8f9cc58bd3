//! Small filesystem helpers: private files, staging folders that vanish on failure.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// File mode for secrets: owner read/write only.
pub const PRIVATE: u32 = 0o600;
/// File mode for everything else.
pub const PUBLIC: u32 = 0o644;

/// Creates `path` (which must not exist) with `contents` and the given Unix mode.
pub fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(Error::io("create", path))?;
    file.write_all(contents).map_err(Error::io("write", path))?;
    file.sync_all().map_err(Error::io("sync", path))?;
    set_mode(path, mode)
}

/// Replaces `path` with `contents` atomically: a sibling temporary file, written with
/// `mode` from its first byte, renamed over it. Readers see the old file or the new one.
pub fn replace(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.new-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    if let Err(e) = write_new(&tmp, contents, mode) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io("replace", path)(e)
    })
}

/// Sets the Unix permission bits of `path` (a no-op elsewhere), whatever the umask did.
pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(Error::io("set permissions of", path))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Mode of folders only their owner may enter (the home, `ca/`, each project).
pub const PRIVATE_DIR: u32 = 0o700;
/// Mode of folders a container may need to read (compose files, certificates, data).
pub const SHARED_DIR: u32 = 0o755;

/// Creates a folder and its parents.
pub fn create_dir_all(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(Error::io("create folder", path))
}

/// Creates a folder and its parents; the folder itself gets `mode` whatever the umask
/// (parents made on the way get the owner-only mode).
pub fn create_dir_mode(path: &Path, mode: u32) -> Result<()> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        create_dir_mode(parent, PRIVATE_DIR)?;
    }
    match fs::create_dir(path) {
        Ok(()) => set_mode(path, mode),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(Error::io("create folder", path)(e)),
    }
}

/// A folder being filled before it is moved into place; removed on drop unless committed.
#[derive(Debug)]
pub struct Staging {
    /// The temporary folder, a sibling of the final one.
    path: PathBuf,
    /// Set once the folder has been renamed into place.
    committed: bool,
}

impl Staging {
    /// Makes an empty hidden staging folder in `parent` for a folder to be called `name`.
    pub fn new(parent: &Path, name: &str) -> Result<Staging> {
        create_dir_mode(parent, PRIVATE_DIR)?;
        let path = parent.join(format!(".staging-{name}-{}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path).map_err(Error::io("remove stale folder", &path))?;
        }
        fs::create_dir(&path).map_err(Error::io("create folder", &path))?;
        // What it becomes (`ca/`, a project) is the owner's alone, whatever the umask.
        set_mode(&path, PRIVATE_DIR)?;
        Ok(Staging {
            path,
            committed: false,
        })
    }

    /// The staging folder, to write into.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the staging folder to `target`, which must not exist yet.
    pub fn commit(mut self, target: &Path) -> Result<()> {
        if target.exists() {
            return Err(Error::Io {
                action: "create",
                path: target.to_path_buf(),
                source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
            });
        }
        fs::rename(&self.path, target).map_err(Error::io("move into place", target))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}
