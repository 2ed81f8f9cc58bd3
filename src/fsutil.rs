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

/// The largest PEM file cht-dev reads (a certificate with its chain, or a key): real ones
/// take a few kilobytes.
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// What a path that is not a regular file is, for people.
fn kind_of(kind: fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        "a folder"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Reads the file a user named as `what` ("the certificate"), up to `max` bytes. Rules:
/// a link is followed, but what it leads to must be a regular file (a folder, FIFO,
/// device or socket is refused without being read, so `/dev/zero` and a FIFO nobody
/// writes never hang or grow); a file over `max` is refused, even one that grows while
/// read. Memory stays within `max`.
pub fn read_input(path: &Path, what: &'static str, max: u64) -> Result<Vec<u8>> {
    let refuse = |reason: String| Error::UnsafeInput {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let too_large = |size: String| {
        refuse(format!(
            "it is {size}, more than {what} can be ({}); give the right file",
            human_bytes(max)
        ))
    };
    let meta = fs::metadata(path).map_err(Error::io("read", path))?;
    if !meta.is_file() {
        return Err(refuse(format!(
            "it is {}, not a regular file; give the file itself",
            kind_of(meta.file_type())
        )));
    }
    if meta.len() > max {
        return Err(too_large(human_bytes(meta.len())));
    }
    let mut options = OpenOptions::new();
    options.read(true);
    // A FIFO put in its place since the look above must not block the open.
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(Error::io("open", path))?;
    let opened = file.metadata().map_err(Error::io("inspect", path))?;
    if !opened.is_file() {
        return Err(refuse(format!(
            "it became {} while opened; give a regular file",
            kind_of(opened.file_type())
        )));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(opened.len().min(max)).unwrap_or(0));
    std::io::Read::read_to_end(&mut std::io::Read::take(&file, max + 1), &mut bytes)
        .map_err(Error::io("read", path))?;
    if bytes.len() as u64 > max {
        return Err(too_large(format!("more than {}", human_bytes(max))));
    }
    Ok(bytes)
}

/// [`read_input`] for a text file: refused, naming it, when it is not UTF-8.
pub fn read_input_text(path: &Path, what: &'static str, max: u64) -> Result<String> {
    String::from_utf8(read_input(path, what, max)?).map_err(|_| Error::UnsafeInput {
        what,
        path: path.to_path_buf(),
        reason: "it is not text (UTF-8); give the file in text (PEM) form".into(),
    })
}

/// Checks that a user-named output file may be written at `path`, before anything is
/// written. Rules: nothing there (its folder must exist), or a regular file, which is
/// replaced; a folder, a symbolic link, a FIFO, a device or a socket is refused, naming
/// it: replacing one (as root, `/dev/null`) would break what it is, and a link is not
/// written through, so a link planted where output goes cannot redirect it.
pub fn check_output(path: &Path) -> Result<()> {
    let refuse = |reason: String| Error::UnsafeOutput {
        path: path.to_path_buf(),
        reason,
    };
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(meta) if meta.file_type().is_symlink() => {
            let to = fs::read_link(path)
                .map(|t| format!(" to {}", t.display()))
                .unwrap_or_default();
            Err(refuse(format!(
                "it is a symbolic link{to}, which cht-dev does not write through; give the path it leads to, or another name"
            )))
        }
        Ok(meta) if meta.is_dir() => Err(refuse(
            "it is a folder; give a file name (inside it, or elsewhere)".into(),
        )),
        Ok(meta) => Err(refuse(format!(
            "it is {}, which only regular files may replace; give another path",
            kind_of(meta.file_type())
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if parent.is_dir() {
                Ok(())
            } else {
                Err(refuse(
                    "its folder does not exist; create it or pick another path".into(),
                ))
            }
        }
        Err(e) => Err(Error::io("inspect", path)(e)),
    }
}

/// Writes a user-named output file: checked by [`check_output`], then replaced
/// atomically (see [`replace`]) with `mode` from its first byte.
pub fn write_output(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    check_output(path)?;
    replace(path, contents, mode)
}

/// `path` made absolute, with its longest existing ancestor resolved (links followed) and
/// the rest joined lexically (`.` dropped, `..` taken off): two paths that would name one
/// file once the missing folders are made come out equal.
pub fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let parts: Vec<std::path::Component<'_>> = absolute.components().collect();
    // The longest leading run of parts that exists, resolved; then the rest, lexically.
    let (mut out, rest) = (0..=parts.len())
        .rev()
        .find_map(|n| {
            let prefix: PathBuf = parts[..n].iter().collect();
            fs::canonicalize(&prefix)
                .ok()
                .map(|real| (real, &parts[n..]))
        })
        .unwrap_or_else(|| (PathBuf::new(), &parts[..]));
    for part in rest {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
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

/// Copies the folder tree `from` into the existing empty folder `to`, keeping file and
/// folder modes. Rules: a link that stays inside `from` is copied as a link to the same
/// place in the copy; a link that leads out of `from` (or nowhere) is refused, as are
/// FIFOs, sockets and devices, naming the path. The caller copies into a staging folder, so
/// a refusal or failure part-way leaves nothing it keeps. Returns the bytes copied.
pub fn copy_tree(from: &Path, to: &Path) -> Result<u64> {
    copy_tree_with(from, to, &|_| {})
}

/// [`copy_tree`], telling `progress` the bytes copied so far after each file.
pub fn copy_tree_with(from: &Path, to: &Path, progress: &dyn Fn(u64)) -> Result<u64> {
    let root = fs::canonicalize(from).map_err(Error::io("resolve", from))?;
    let mut done = 0;
    copy_into(&root, &root, to, &mut done, progress)?;
    Ok(done)
}

/// One folder of [`copy_tree_with`]: `dir` (under the canonical `root`) into `to`, adding
/// the bytes copied to `done`.
fn copy_into(
    root: &Path,
    dir: &Path,
    to: &Path,
    done: &mut u64,
    progress: &dyn Fn(u64),
) -> Result<()> {
    let refuse = |path: &Path, why: &str| Error::Io {
        action: "copy",
        path: path.to_path_buf(),
        source: std::io::Error::other(why.to_string()),
    };
    for entry in fs::read_dir(dir).map_err(Error::io("read", dir))? {
        let entry = entry.map_err(Error::io("read", dir))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = fs::symlink_metadata(&src).map_err(Error::io("inspect", &src))?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = fs::canonicalize(&src)
                .ok()
                .and_then(|t| t.strip_prefix(root).ok().map(Path::to_path_buf))
                .ok_or_else(|| {
                    refuse(&src, "it is a link leading out of the folder being copied; replace it with what it points to")
                })?;
            // From the link's folder in the copy up to the copy's root, then down.
            let depth = dir.strip_prefix(root).map_or(0, |d| d.components().count());
            let mut relative: PathBuf = std::iter::repeat_n("..", depth).collect();
            relative.push(&target);
            if relative.as_os_str().is_empty() {
                relative.push(".");
            }
            std::os::unix::fs::symlink(&relative, &dst).map_err(Error::io("create", &dst))?;
        } else if kind.is_dir() {
            fs::create_dir(&dst).map_err(Error::io("create folder", &dst))?;
            copy_into(root, &src, &dst, done, progress)?;
            fs::set_permissions(&dst, meta.permissions())
                .map_err(Error::io("set permissions of", &dst))?;
        } else if kind.is_file() {
            *done += fs::copy(&src, &dst).map_err(Error::io("copy", &src))?;
            progress(*done);
        } else {
            return Err(refuse(
                &src,
                "it is not a file, folder or link (a FIFO, socket or device)",
            ));
        }
    }
    Ok(())
}

/// Swaps two folders atomically where the platform and file system can (Linux
/// `renameat2(RENAME_EXCHANGE)`, macOS `renamex_np(RENAME_SWAP)`): readers see one or the
/// other, never neither. Where they cannot, two renames, with the first undone if the
/// second fails.
pub fn exchange(a: &Path, b: &Path) -> Result<()> {
    exchange_with(a, b, atomic_swap)
}

/// [`exchange`] with the atomic swap given, so the fallback can be tested anywhere.
fn exchange_with(a: &Path, b: &Path, swap: fn(&Path, &Path) -> std::io::Result<()>) -> Result<()> {
    match swap(a, b) {
        Ok(()) => return Ok(()),
        Err(e) if !swap_unsupported(&e) => return Err(Error::io("swap", a)(e)),
        Err(_) => {}
    }
    let aside = a.with_file_name(format!(
        ".{}.aside-{}",
        a.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    fs::rename(a, &aside).map_err(Error::io("move", a))?;
    if let Err(e) = fs::rename(b, a) {
        let _ = fs::rename(&aside, a);
        return Err(Error::io("move", b)(e));
    }
    fs::rename(&aside, b).map_err(Error::io("move", &aside))
}

/// A path as the NUL-terminated string the system calls take.
#[cfg(any(target_os = "linux", target_os = "macos"))]
fn c_path(p: &Path) -> std::io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other)
}

/// The kernel's atomic exchange of two paths.
#[cfg(target_os = "linux")]
fn atomic_swap(a: &Path, b: &Path) -> std::io::Result<()> {
    let (ca, cb) = (c_path(a)?, c_path(b)?);
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The kernel's atomic exchange of two paths (APFS and HFS+ support it).
#[cfg(target_os = "macos")]
fn atomic_swap(a: &Path, b: &Path) -> std::io::Result<()> {
    let (ca, cb) = (c_path(a)?, c_path(b)?);
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
    let rc = unsafe { libc::renamex_np(ca.as_ptr(), cb.as_ptr(), libc::RENAME_SWAP) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// No atomic exchange on this platform: always the two-rename fallback.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn atomic_swap(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Whether a failed atomic swap means "not on this system or file system" (fall back to
/// two renames) rather than a real failure. Linux says `EINVAL` or `ENOSYS`; macOS says
/// `ENOTSUP` (and `EINVAL` for a flag it does not know).
fn swap_unsupported(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    if matches!(
        e.raw_os_error(),
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::ENOTSUP)
    ) {
        return true;
    }
    e.kind() == std::io::ErrorKind::Unsupported
}

/// Whether process `pid` may still be running (it exists, maybe as another user's).
fn process_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for the process; it sends nothing.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// The process id a leftover's name ends with, for the names [`Staging`] and [`replace`]
/// give: `.staging-NAME-PID` and `.NAME.new-PID`.
fn leftover_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix('.')?;
    let pid = if rest.starts_with("staging-") {
        rest.rsplit_once('-')?.1
    } else {
        rest.rsplit_once(".new-")?.1
    };
    pid.parse().ok().filter(|p: &i32| *p > 0)
}

/// Removes from `dir` the staging folders and half-written files of cht-dev processes that
/// are gone (killed part-way), which may hold passwords. Best effort: what cannot be
/// removed stays for the next command; a live process's work is never touched. Returns
/// what this user may not remove (files a container's user wrote, such as CouchDB data set
/// aside by a killed restore), for a caller with an engine to remove.
pub fn sweep_leftovers(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut denied = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(leftover_pid) else {
            continue;
        };
        if process_alive(pid) {
            continue;
        }
        let path = entry.path();
        let removed = match entry.file_type() {
            Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
            Ok(_) => fs::remove_file(&path),
            Err(_) => continue,
        };
        if matches!(&removed, Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied) {
            denied.push(path);
        }
    }
    denied.sort();
    denied
}

/// `error` as the disk-full error it is when a write found the file system at `dir` full
/// (what was being done: `what`; about `needed` bytes), else unchanged.
pub fn when_full(error: Error, dir: &Path, needed: u64, what: &str) -> Error {
    match &error {
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => {
            no_space(dir, what, needed, available_space(dir).unwrap_or(0))
        }
        _ => error,
    }
}

/// The disk-full error: `what` in `dir` needs about `needed` bytes, and `available` are
/// free.
pub fn no_space(dir: &Path, what: &str, needed: u64, available: u64) -> Error {
    Error::NoSpace {
        path: dir.to_path_buf(),
        what: what.to_string(),
        needed: human_bytes(needed),
        available: human_bytes(available),
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

/// Copies the file `from` to the new file `to` and returns its length: a reflink (the
/// same blocks shared until either changes) where the file system can make one (btrfs,
/// XFS), else a copy.
pub fn clone_or_copy(from: &Path, to: &Path) -> Result<u64> {
    let source = fs::File::open(from).map_err(Error::io("open", from))?;
    let len = source.metadata().map_err(Error::io("inspect", from))?.len();
    let target = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(Error::io("create", to))?;
    if reflink(&source, &target) {
        return Ok(len);
    }
    let mut reader = std::io::Read::take(&source, len);
    std::io::copy(&mut reader, &mut &target).map_err(Error::io("copy", from))
}

/// Shares `source`'s blocks with the empty `target` (Linux's FICLONE); false where the
/// file system or platform cannot.
#[cfg(target_os = "linux")]
fn reflink(source: &fs::File, target: &fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: both descriptors are open for the duration of the call, and FICLONE takes
    // the source descriptor as its argument.
    unsafe { libc::ioctl(target.as_raw_fd(), libc::FICLONE, source.as_raw_fd()) == 0 }
}

/// No reflinks off Linux: always copied.
#[cfg(not(target_os = "linux"))]
fn reflink(_source: &fs::File, _target: &fs::File) -> bool {
    false
}

/// Bytes this user may still write on the file system holding `path`, when it can tell.
pub fn available_space(path: &Path) -> Option<u64> {
    fs4::available_space(path).ok()
}

/// Bytes for people: `1.5 GB`, `20.0 MB`, `3.0 kB`, `12 B` (powers of 1024).
pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.1} kB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// Lowercase hex SHA-256 of `text`.
pub fn hex_sha256(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_of_dead_processes_go_and_live_ones_stay() {
        let dir = tempfile::tempdir().expect("tmp");
        // A child that has exited and been reaped: its pid is free.
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let dead = child.id();
        child.wait().expect("wait");
        let live = std::process::id();
        for name in [
            format!(".staging-p-{dead}"),
            format!(".staging-p-{live}"),
            format!(".staging-ca-{dead}"),
        ] {
            fs::create_dir(dir.path().join(name)).expect("mkdir");
        }
        for name in [
            format!(".env.new-{dead}"),
            format!(".env.new-{live}"),
            ".env".into(),
        ] {
            fs::write(dir.path().join(name), "x").expect("write");
        }
        sweep_leftovers(dir.path());
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .expect("read")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".env".to_string(),
                format!(".env.new-{live}"),
                format!(".staging-p-{live}")
            ]
        );
    }

    #[test]
    fn copies_keep_inner_links_and_refuse_links_that_leave() {
        let dir = tempfile::tempdir().expect("tmp");
        let (from, outside) = (dir.path().join("from"), dir.path().join("secret"));
        fs::create_dir_all(from.join("shards/a")).expect("mkdir");
        fs::write(from.join("shards/a/db.couch"), "data").expect("write");
        fs::write(&outside, "key").expect("write");
        std::os::unix::fs::symlink(from.join("shards/a/db.couch"), from.join("shards/abs"))
            .expect("link");
        std::os::unix::fs::symlink("a", from.join("shards/rel")).expect("link");
        let to = dir.path().join("to");
        fs::create_dir(&to).expect("mkdir");
        assert_eq!(copy_tree(&from, &to).expect("copies"), 4);
        assert_eq!(
            fs::read_link(to.join("shards/abs")).expect("link"),
            Path::new("../shards/a/db.couch")
        );
        assert_eq!(
            fs::read_to_string(to.join("shards/rel/db.couch")).expect("read"),
            "data"
        );
        // One link out of the folder refuses the whole copy.
        std::os::unix::fs::symlink(&outside, from.join("shards/a/leak")).expect("link");
        let again = dir.path().join("again");
        fs::create_dir(&again).expect("mkdir");
        let err = copy_tree(&from, &again).expect_err("refused").to_string();
        assert!(err.contains("leak") && err.contains("leading out"), "{err}");
    }

    /// Makes a FIFO at `path`.
    fn fifo(path: &Path) {
        let c = c_path(path).expect("path");
        // SAFETY: a valid NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    }

    #[test]
    fn inputs_are_regular_files_within_their_cap_links_followed() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("cert.pem");
        fs::write(&file, "pem").expect("write");
        std::os::unix::fs::symlink(&file, dir.path().join("link")).expect("link");
        assert_eq!(
            read_input(&file, "the certificate", 3).expect("read"),
            b"pem"
        );
        assert_eq!(
            read_input_text(&dir.path().join("link"), "the certificate", 3).expect("read"),
            "pem"
        );
        let err = read_input(&file, "the certificate", 2).expect_err("too large");
        assert!(
            matches!(err, Error::UnsafeInput { .. }) && err.to_string().contains("3 B, more than"),
            "{err}"
        );
        let pipe = dir.path().join("pipe");
        fifo(&pipe);
        // Refused at once: nobody writes the FIFO, so a read would block for ever.
        let err = read_input(&pipe, "the key", 10)
            .expect_err("fifo")
            .to_string();
        assert!(
            err.contains("a FIFO (named pipe), not a regular file"),
            "{err}"
        );
        assert!(fs::metadata(&pipe).expect("meta").file_type().is_fifo());
        let err = read_input(dir.path(), "the key", 10)
            .expect_err("folder")
            .to_string();
        assert!(err.contains("a folder"), "{err}");
        if Path::new("/dev/zero").exists() {
            let err = read_input(Path::new("/dev/zero"), "the key", 10)
                .expect_err("device")
                .to_string();
            assert!(err.contains("a character device"), "{err}");
        }
        fs::write(&file, [0xff, 0xfe]).expect("write");
        let err = read_input_text(&file, "the key", 10)
            .expect_err("binary")
            .to_string();
        assert!(err.contains("not text"), "{err}");
    }

    #[test]
    fn outputs_replace_only_regular_files_and_never_write_through_links() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().expect("tmp");
        let new = dir.path().join("ca.crt");
        write_output(&new, b"one", PUBLIC).expect("new file");
        write_output(&new, b"two", PUBLIC).expect("replaced");
        assert_eq!(fs::read(&new).expect("read"), b"two");
        let pipe = dir.path().join("pipe");
        fifo(&pipe);
        let err = write_output(&pipe, b"x", PUBLIC).expect_err("fifo");
        assert!(
            matches!(err, Error::UnsafeOutput { .. }) && err.to_string().contains("a FIFO"),
            "{err}"
        );
        assert!(
            fs::symlink_metadata(&pipe)
                .expect("meta")
                .file_type()
                .is_fifo()
        );
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&new, &link).expect("link");
        let err = write_output(&link, b"x", PUBLIC)
            .expect_err("link")
            .to_string();
        assert!(
            err.contains("symbolic link to") && err.contains("ca.crt"),
            "{err}"
        );
        assert_eq!(fs::read(&new).expect("read"), b"two", "not written through");
        assert!(
            fs::symlink_metadata(&link)
                .expect("meta")
                .file_type()
                .is_symlink()
        );
        let err = check_output(dir.path()).expect_err("folder").to_string();
        assert!(err.contains("it is a folder"), "{err}");
        let err = check_output(&dir.path().join("missing/x")).expect_err("no folder");
        assert!(
            err.to_string().contains("its folder does not exist"),
            "{err}"
        );
        assert_eq!(
            names(dir.path()),
            ["ca.crt", "link", "pipe"],
            "nothing left beside"
        );
    }

    #[test]
    fn paths_that_name_one_file_resolve_alike() {
        let dir = tempfile::tempdir().expect("tmp");
        let real = fs::canonicalize(dir.path()).expect("canonical");
        fs::create_dir(real.join("a")).expect("mkdir");
        std::os::unix::fs::symlink(real.join("a"), real.join("l")).expect("link");
        assert_eq!(resolve(&real.join("l/x.yaml")), real.join("a/x.yaml"));
        assert_eq!(
            resolve(&real.join("new/./b/../c.yaml")),
            real.join("new/c.yaml")
        );
        assert_eq!(resolve(&real.join("a")), real.join("a"));
    }

    /// Two folders, `a` holding `a.txt` and `b` holding `b.txt`.
    fn two_folders(dir: &Path) -> (PathBuf, PathBuf) {
        let (a, b) = (dir.join("a"), dir.join("b"));
        for (folder, file) in [(&a, "a.txt"), (&b, "b.txt")] {
            fs::create_dir(folder).expect("mkdir");
            fs::write(folder.join(file), file).expect("write");
        }
        (a, b)
    }

    /// The names in a folder, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("read")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn exchange_swaps_folders_through_the_kernel() {
        let dir = tempfile::tempdir().expect("tmp");
        let (a, b) = two_folders(dir.path());
        exchange(&a, &b).expect("swaps");
        assert_eq!(names(&a), ["b.txt"]);
        assert_eq!(names(&b), ["a.txt"]);
        assert_eq!(names(dir.path()), ["a", "b"]);
    }

    #[test]
    fn exchange_falls_back_to_renames_only_where_swaps_are_unsupported() {
        let unsupported: [fn(&Path, &Path) -> std::io::Result<()>; 4] = [
            |_, _| Err(std::io::Error::from_raw_os_error(libc::EINVAL)),
            |_, _| Err(std::io::Error::from_raw_os_error(libc::ENOSYS)),
            |_, _| Err(std::io::Error::from_raw_os_error(libc::ENOTSUP)),
            |_, _| Err(std::io::ErrorKind::Unsupported.into()),
        ];
        for swap in unsupported {
            let dir = tempfile::tempdir().expect("tmp");
            let (a, b) = two_folders(dir.path());
            exchange_with(&a, &b, swap).expect("two renames");
            assert_eq!(names(&a), ["b.txt"]);
            assert_eq!(names(&b), ["a.txt"]);
            assert_eq!(names(dir.path()), ["a", "b"], "nothing set aside is left");
        }
        // A real failure (here: permission) is reported and nothing moves.
        let dir = tempfile::tempdir().expect("tmp");
        let (a, b) = two_folders(dir.path());
        let err = exchange_with(&a, &b, |_, _| {
            Err(std::io::Error::from_raw_os_error(libc::EACCES))
        })
        .expect_err("refused")
        .to_string();
        assert!(err.contains("swap") && err.contains("denied"), "{err}");
        assert_eq!(names(&a), ["a.txt"]);
        assert_eq!(names(&b), ["b.txt"]);
    }
}
