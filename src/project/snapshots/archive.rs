//! A project's CouchDB snapshots: tar archives in `<project>/snapshots/`, compressed with
//! zstd (`LABEL.tar.zst`; earlier ones with gzip, `LABEL.tar.gz`, still list and restore),
//! each with a JSON sidecar naming its CHT version, time, sizes and compression. An archive
//! appears only once it is whole (written under a hidden name, then renamed), and its
//! sidecar only after it, so a snapshot that fails part-way leaves nothing listed.
//!
//! An archive taken from folders in use may hold a file more than once (a later entry
//! replaces an earlier one) and ends with a manifest of every path the data holds: what is
//! unpacked and not in it (deleted while the archive was written) is removed.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::project::Project;

/// The folder of a project's snapshots, relative to the project folder.
pub const DIR: &str = "snapshots";
/// The longest label.
const MAX_LABEL: usize = 64;

/// What a snapshot holds, as its sidecar records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Its name within the project.
    pub label: String,
    /// The CHT release whose data it holds.
    pub cht_version: String,
    /// When it was taken (UTC, RFC 3339).
    pub created: String,
    /// The archive's size in bytes.
    pub bytes: u64,
    /// The data's size in bytes before compression.
    pub data_bytes: u64,
    /// How the copy was made consistent, for people.
    pub method: String,
    /// How many CouchDB nodes' data it holds (sidecars from before clusters hold one).
    #[serde(default = "one_node")]
    pub couchdb_nodes: u32,
    /// How the archive is compressed (sidecars from before zstd: gzip).
    #[serde(default)]
    pub compression: Compression,
    /// The zstd level it was written at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<i32>,
}

/// How an archive is compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// gzip (`.tar.gz`), as cht-dev wrote snapshots before zstd.
    #[default]
    Gzip,
    /// zstd (`.tar.zst`).
    Zstd,
}

impl Compression {
    /// The archive's file name ending.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => "tar.gz",
            Compression::Zstd => "tar.zst",
        }
    }
}

/// The zstd level snapshots are written at unless `--level` says otherwise.
pub const DEFAULT_LEVEL: i32 = 3;
/// The name of the manifest entry that ends an archive taken from folders in use.
pub const MANIFEST: &str = ".cht-dev-manifest.json";

impl SnapshotInfo {
    /// Whether this snapshot may replace the data of project `name`, which runs CHT
    /// `current` on `layout`: never data of a newer release (its migrations already ran),
    /// and only data of the same number of CouchDB nodes.
    pub fn restorable_into(
        &self,
        name: &str,
        current: &str,
        layout: crate::project::layout::Layout,
    ) -> Result<()> {
        if crate::project::versions::order(&self.cht_version)
            > crate::project::versions::order(current)
        {
            return Err(Error::SnapshotNewer {
                label: self.label.clone(),
                version: self.cht_version.clone(),
                project: name.to_string(),
                current: current.to_string(),
            });
        }
        if self.couchdb_nodes != layout.nodes() {
            let theirs = crate::project::layout::Layout::from_nodes(self.couchdb_nodes)
                .map_or("another CouchDB layout", |l| l.describe());
            return Err(Error::SnapshotLayout {
                label: self.label.clone(),
                theirs,
                project: name.to_string(),
                ours: layout.describe(),
            });
        }
        Ok(())
    }
}

/// The node count of a sidecar written before cht-dev ran clusters.
fn one_node() -> u32 {
    1
}

/// Checks a snapshot label: 1 to 64 of letters, digits, `.`, `_` and `-`, not starting with
/// `.` or `-` (so it is a plain file name and never an option).
pub fn check_label(label: &str) -> Result<()> {
    let ok = !label.is_empty()
        && label.len() <= MAX_LABEL
        && !label.starts_with(['.', '-'])
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::BadOption(format!(
            "invalid snapshot label {label:?}: use 1 to {MAX_LABEL} letters, digits, '.', '_' or '-', not starting with '.' or '-'"
        )))
    }
}

/// The default label: the time, e.g. `2026-11-23T01-30-05Z` (no `:`, so it is a file name
/// everywhere).
pub fn default_label(now: OffsetDateTime) -> String {
    crate::project::backups::utc_stamp(now, "-")
}

/// The snapshots folder of `project`.
pub fn folder(project: &Project) -> PathBuf {
    project.path(DIR)
}

/// The archive of `label` compressed with `compression`.
fn archive_path(project: &Project, label: &str, compression: Compression) -> PathBuf {
    folder(project).join(format!("{label}.{}", compression.extension()))
}

/// The archive of the snapshot `info` describes.
pub fn archive_of(project: &Project, info: &SnapshotInfo) -> PathBuf {
    archive_path(project, &info.label, info.compression)
}

/// The sidecar of `label`.
fn sidecar_path(project: &Project, label: &str) -> PathBuf {
    folder(project).join(format!("{label}.json"))
}

/// The project's snapshots, oldest first; archives without a readable sidecar (or the
/// reverse) are not snapshots and are skipped.
pub fn list(project: &Project) -> Result<Vec<SnapshotInfo>> {
    let dir = folder(project);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read", &dir)(e)),
    };
    let mut found: Vec<SnapshotInfo> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let label = name.strip_suffix(".json")?;
            check_label(label).ok()?;
            let text = std::fs::read_to_string(e.path()).ok()?;
            let info: SnapshotInfo = serde_json::from_str(&text).ok()?;
            (info.label == label && archive_of(project, &info).is_file()).then_some(info)
        })
        .collect();
    found.sort_by(|a, b| (&a.created, &a.label).cmp(&(&b.created, &b.label)));
    Ok(found)
}

/// The snapshot called `label`, or an error naming the ones there are.
pub fn find(project: &Project, label: &str) -> Result<SnapshotInfo> {
    check_label(label)?;
    let all = list(project)?;
    if let Some(info) = all.iter().find(|i| i.label == label) {
        return Ok(info.clone());
    }
    let known = if all.is_empty() {
        format!(
            "it has none; take one with `cht-dev snapshot create {}`",
            project.name
        )
    } else {
        format!(
            "its snapshots: {}",
            all.iter()
                .map(|i| i.label.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(Error::SnapshotNotFound {
        project: project.name.clone(),
        label: label.to_string(),
        known,
    })
}

/// Refuses a label already taken.
pub fn check_free(project: &Project, label: &str) -> Result<()> {
    check_label(label)?;
    let archives = [Compression::Gzip, Compression::Zstd].map(|c| archive_path(project, label, c));
    if archives.iter().any(|a| a.exists()) || sidecar_path(project, label).exists() {
        return Err(Error::SnapshotExists {
            project: project.name.clone(),
            label: label.to_string(),
        });
    }
    Ok(())
}

/// Unpacks the archive of the snapshot `info` describes, decompressing and unpacking in
/// one pass: each data folder it holds (`name`, see [`super::writer`]) into the new, empty
/// folder `targets` pairs with that name, as it was, with modes (and owners, when run as
/// root). Entries never land outside their target; an entry under a name without a target
/// is refused, and so is an archive that lacks a target's folder (its data would be
/// restored as nothing). `progress` hears the archive's bytes read so far.
pub fn extract(
    project: &Project,
    info: &SnapshotInfo,
    targets: &[(&str, &Path)],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<()> {
    let path = archive_of(project, info);
    let file = File::open(&path).map_err(Error::io("open", &path))?;
    let compression = info.compression;
    // Decompressing on a thread of its own, into a pipe, while this one unpacks: as
    // `zstd -d | tar -x` does, with two processes.
    let (pipe_out, pipe_in) = std::io::pipe().map_err(Error::io("read", &path))?;
    grow_pipe(&pipe_in);
    let shown = path.clone();
    std::thread::scope(|scope| -> Result<()> {
        let decoder = scope.spawn(|| -> Result<()> {
            let mut pipe_in = pipe_in;
            let reading = super::CountingRead {
                inner: std::io::BufReader::with_capacity(1 << 20, file),
                count: 0,
                progress,
            };
            let mut decoded: Box<dyn Read> = match compression {
                Compression::Gzip => Box::new(flate2::read::GzDecoder::new(reading)),
                Compression::Zstd => Box::new(
                    zstd::stream::read::Decoder::new(reading).map_err(Error::io("read", &shown))?,
                ),
            };
            let mut out = std::io::BufWriter::with_capacity(1 << 20, &mut pipe_in);
            match std::io::copy(&mut decoded, &mut out).and_then(|_| out.flush()) {
                Ok(_) => Ok(()),
                // The unpacking side stopped reading (it failed, and says why).
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                Err(e) => Err(Error::io("read", &shown)(e)),
            }
        });
        let unpacked = unpack(
            std::io::BufReader::with_capacity(1 << 20, pipe_out),
            &path,
            targets,
        );
        let decoded = decoder.join().unwrap_or_else(|_| {
            Err(Error::io("read", &path)(std::io::Error::other(
                "the decompressing thread failed",
            )))
        });
        // A broken archive fails the decompression first: its error says why.
        decoded.and(unpacked)
    })
}

/// Whether `name` is only plain parts (no root, `.`, `..` or prefix), so it stays inside
/// the folder it is joined to.
fn is_plain(name: &Path) -> bool {
    name.components()
        .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// Writes the file `entry` at `into/name` (replacing one there; its folder made when
/// missing) through a 1 MiB buffer, with the entry's mode, time and, as root, owner;
/// false, writing nothing, when its folder leads outside `into` (through a link an
/// earlier entry made).
fn write_file<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    into: &Path,
    name: &Path,
) -> std::io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    let to = into.join(name);
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
        if !std::fs::canonicalize(parent)?.starts_with(std::fs::canonicalize(into)?) {
            return Ok(false);
        }
    }
    if std::fs::symlink_metadata(&to).is_ok() {
        std::fs::remove_file(&to)?;
    }
    let header = entry.header();
    let mode = header.mode()? & 0o7777;
    let mtime = header.mtime()?;
    let owner = (header.uid()?, header.gid()?);
    let file = File::options().write(true).create_new(true).open(&to)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    std::io::copy(entry, &mut out)?;
    let file = out
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        let (uid, gid) = (u32::try_from(owner.0), u32::try_from(owner.1));
        if let (Ok(uid), Ok(gid)) = (uid, gid) {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
        }
    }
    Ok(true)
}

/// Makes the pipe hold 1 MiB (Linux's default is 64 KiB), so that the two sides meet
/// less often; where it cannot, it stays as it is.
#[cfg(target_os = "linux")]
fn grow_pipe(pipe: &std::io::PipeWriter) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for the call; F_SETPIPE_SZ only resizes its buffer.
    unsafe {
        libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
    }
}

/// Pipes keep their size off Linux.
#[cfg(not(target_os = "linux"))]
fn grow_pipe(_pipe: &std::io::PipeWriter) {}

/// Unpacks the tar stream `decoded` of the archive at `path` into `targets` (see
/// [`extract`]).
fn unpack(decoded: impl Read, path: &Path, targets: &[(&str, &Path)]) -> Result<()> {
    let path = path.to_path_buf();
    let mut archive = tar::Archive::new(decoded);
    archive.set_preserve_permissions(true);
    // SAFETY: geteuid has no preconditions and cannot fail.
    archive.set_preserve_ownerships(unsafe { libc::geteuid() } == 0);
    // A file taken again after it changed comes later and replaces the first.
    archive.set_overwrite(true);
    let mut seen = vec![false; targets.len()];
    let mut manifest: Option<Vec<String>> = None;
    for entry in archive.entries().map_err(Error::io("read", &path))? {
        let mut entry = entry.map_err(Error::io("read", &path))?;
        let name = entry.path().map_err(Error::io("read", &path))?.into_owned();
        if name == Path::new(MANIFEST) {
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .map_err(Error::io("read", &path))?;
            manifest = Some(serde_json::from_str(&text).map_err(|e| {
                Error::io("read", &path)(std::io::Error::other(format!("its manifest: {e}")))
            })?);
            continue;
        }
        let Some((index, rest, into)) = targets
            .iter()
            .enumerate()
            .find_map(|(i, (top, into))| Some((i, name.strip_prefix(top).ok()?, *into)))
        else {
            let tops: Vec<&str> = targets.iter().map(|(t, _)| *t).collect();
            return Err(Error::io("read", &path)(std::io::Error::other(format!(
                "it holds {} outside {}/: not a snapshot of this project's CouchDB layout",
                name.display(),
                tops.join("/, ")
            ))));
        };
        if rest.as_os_str().is_empty() {
            seen[index] = true;
            continue;
        }
        // unpack_in refuses entries that would leave `into` (`..`, absolute paths); a
        // plain file whose name is only plain parts is written here in large pieces.
        let unpacked = if entry.header().entry_type().is_file() && is_plain(&name) {
            write_file(&mut entry, into, &name)
        } else {
            entry.unpack_in(into)
        }
        .map_err(Error::io("unpack", &into.join(rest)))?;
        if !unpacked {
            return Err(Error::io("unpack", &path)(std::io::Error::other(format!(
                "{} would land outside the data folder",
                name.display()
            ))));
        }
    }
    if let Some((top, _)) = targets
        .iter()
        .zip(&seen)
        .find(|(_, seen)| !**seen)
        .map(|(t, _)| t)
    {
        return Err(Error::io("read", &path)(std::io::Error::other(format!(
            "it holds no {top}/ folder: not a snapshot of this project's CouchDB layout"
        ))));
    }
    if let Some(manifest) = manifest {
        let keep: std::collections::BTreeSet<PathBuf> =
            manifest.iter().map(PathBuf::from).collect();
        for (top, into) in targets {
            prune(&into.join(top), Path::new(top), &keep)?;
        }
    }
    // Each target's entries were unpacked under `into/<name>`: lift them one level.
    for (top, into) in targets {
        let inner = into.join(top);
        if !inner.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&inner).map_err(Error::io("read", &inner))? {
            let entry = entry.map_err(Error::io("read", &inner))?;
            let to = into.join(entry.file_name());
            std::fs::rename(entry.path(), &to).map_err(Error::io("move", &to))?;
        }
        std::fs::remove_dir(&inner).map_err(Error::io("remove", &inner))?;
    }
    Ok(())
}

/// Moves the finished hidden archive `tmp` into place as the archive of `info`, then
/// writes its sidecar; when the sidecar cannot be written, the archive goes too.
pub(super) fn publish(project: &Project, tmp: &Path, info: &SnapshotInfo) -> Result<()> {
    let target = archive_of(project, info);
    std::fs::rename(tmp, &target).map_err(Error::io("move into place", &target))?;
    let written = serde_json::to_string_pretty(info)
        .map_err(|e| Error::Encode {
            what: "the snapshot's record".into(),
            reason: e.to_string(),
        })
        .and_then(|text| {
            fsutil::replace(
                &sidecar_path(project, &info.label),
                (text + "\n").as_bytes(),
                fsutil::PRIVATE,
            )
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&target);
    }
    written
}

/// Removes from the unpacked folder `dir` (archive name `name`) what `keep` does not name:
/// files deleted while the archive was written.
fn prune(dir: &Path, name: &Path, keep: &std::collections::BTreeSet<PathBuf>) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.map_err(Error::io("read", dir))?;
        let (path, inner) = (entry.path(), name.join(entry.file_name()));
        let kind = entry.file_type().map_err(Error::io("inspect", &path))?;
        if !keep.contains(&inner) {
            let removed = if kind.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(Error::io("remove", &path))?;
        } else if kind.is_dir() {
            prune(&path, &inner, keep)?;
        }
    }
    Ok(())
}

/// Removes the snapshot `label` (sidecar first, so it is never listed half-removed).
pub fn remove(project: &Project, label: &str) -> Result<()> {
    find(project, label)?;
    for path in [
        sidecar_path(project, label),
        archive_path(project, label, Compression::Gzip),
        archive_path(project, label, Compression::Zstd),
    ] {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &path)(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
