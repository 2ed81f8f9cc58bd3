//! Restoring a snapshot's archive: decompressing and unpacking in one pass into the
//! folders a restore swaps in. The archive is untrusted (it may come from another
//! machine): only files, folders and links are unpacked, never outside their folder; what
//! is written is held to what the record declares and to a floor of free space; the
//! manifest is read within fixed bounds.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use super::archive::{Compression, MANIFEST, SnapshotInfo, archive_of};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::project::Project;

/// The largest manifest a restore reads, and the most paths it may list (about ten times
/// a large CHT server's files): memory stays bounded whatever an archive says.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// See [`MAX_MANIFEST_BYTES`].
pub const MAX_MANIFEST_PATHS: usize = 400_000;
/// Free space a restore leaves on the data's file system, for CouchDB, which runs while
/// the snapshot is unpacked, to go on writing.
pub const FREE_FLOOR: u64 = 64 << 20;
/// What a restore may write beyond the file bytes its record allows (tar's file sizes are
/// exact; this covers nothing real, only rounding in records cht-dev did not write).
const SLACK: u64 = 1 << 20;
/// How many bytes may be written between two looks at the free space.
const CHECK_EVERY: u64 = 8 << 20;

/// How many times its size on disk an archive whose record predates `unpacked_bytes` may
/// unpack to: CouchDB's files (snappy inside) and Nouveau's index compress a few times at
/// most, while a bomb of zeros compresses ten thousand times.
const LEGACY_RATIO: u64 = 20;

/// The most file bytes a restore of the snapshot `info` describes, whose archive takes
/// `archive_len` bytes on disk, writes before it stops: what its record declares; for a
/// record from before that, twice its data (a live snapshot holds a file at most twice) or
/// [`LEGACY_RATIO`] times the archive, whichever is more (a snapshot taken while CouchDB
/// compacted holds the larger file from before as well); a little more for folders and
/// links.
pub fn limit(info: &SnapshotInfo, archive_len: u64) -> u64 {
    info.unpacked_bytes
        .unwrap_or_else(|| {
            info.data_bytes
                .saturating_mul(2)
                .max(archive_len.saturating_mul(LEGACY_RATIO))
        })
        .saturating_add(SLACK)
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
    let archive_len = file.metadata().map_err(Error::io("inspect", &path))?.len();
    let mut budget = Budget::new(limit(info, archive_len), FREE_FLOOR);
    let stopped = |stop: Stop, dir: &Path| match stop {
        Stop::Declared { limit, written } => Error::BadSnapshot {
            project: project.name.clone(),
            label: info.label.clone(),
            reason: format!(
                "it unpacks to more than its record declares ({}): stopped after {} was written; it is damaged or was not made by cht-dev, so restore another one",
                fsutil::human_bytes(limit),
                fsutil::human_bytes(written)
            ),
        },
        Stop::Floor {
            written,
            needed,
            available,
        } => fsutil::no_space(
            dir,
            &format!(
                "unpack the snapshot and keep {} free for CouchDB (stopped after {} was written)",
                fsutil::human_bytes(FREE_FLOOR),
                fsutil::human_bytes(written)
            ),
            needed,
            available,
        ),
    };
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
            &mut budget,
            &stopped,
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

/// Why a restore stopped writing before the archive's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The archive holds more than its record declares (`limit`, see
    /// [`limit`]).
    Declared {
        /// What the record allows.
        limit: u64,
        /// What was written until then.
        written: u64,
    },
    /// The next file would leave less than the floor free on the data's file system.
    Floor {
        /// What was written until then.
        written: u64,
        /// What the next file and the floor need.
        needed: u64,
        /// What is free.
        available: u64,
    },
}

/// What a restore may still write: at most `limit` file bytes in all, and never so much
/// that less than `floor` stays free (looked at every [`CHECK_EVERY`] bytes, and before
/// any file as large).
#[derive(Debug, Clone)]
pub struct Budget {
    /// The most file bytes in all.
    limit: u64,
    /// The free space to leave.
    floor: u64,
    /// File bytes written so far.
    written: u64,
    /// Bytes written since the free space was last looked at.
    unchecked: u64,
}

impl Budget {
    /// A budget of `limit` bytes that leaves `floor` free.
    pub fn new(limit: u64, floor: u64) -> Budget {
        Budget {
            limit,
            floor,
            written: 0,
            unchecked: CHECK_EVERY,
        }
    }

    /// Admits a file of `size` bytes, or says why not; `available` tells the free space
    /// (`None`: it cannot be told, so only the limit counts).
    pub fn admit(
        &mut self,
        size: u64,
        available: impl FnOnce() -> Option<u64>,
    ) -> std::result::Result<(), Stop> {
        let after = self.written.saturating_add(size);
        if after > self.limit {
            return Err(Stop::Declared {
                limit: self.limit,
                written: self.written,
            });
        }
        self.unchecked = self.unchecked.saturating_add(size);
        if self.unchecked >= CHECK_EVERY {
            if let Some(free) = available() {
                let needed = size.saturating_add(self.floor);
                if free < needed {
                    return Err(Stop::Floor {
                        written: self.written,
                        needed,
                        available: free,
                    });
                }
            }
            self.unchecked = 0;
        }
        self.written = after;
        Ok(())
    }
}

/// The manifest's paths, sorted, read from `entry` (`size` bytes as its header says)
/// within [`MAX_MANIFEST_BYTES`] and [`MAX_MANIFEST_PATHS`] whatever it holds.
fn read_manifest(entry: impl Read, size: u64) -> std::result::Result<Vec<Box<str>>, String> {
    if size > MAX_MANIFEST_BYTES {
        return Err(format!(
            "its manifest is {}, more than a snapshot's can be ({})",
            fsutil::human_bytes(size),
            fsutil::human_bytes(MAX_MANIFEST_BYTES)
        ));
    }
    /// Collects at most [`MAX_MANIFEST_PATHS`] strings of a JSON array.
    struct Paths;
    impl<'de> serde::de::Visitor<'de> for Paths {
        type Value = Vec<Box<str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of paths")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            let mut paths = Vec::new();
            while let Some(path) = seq.next_element::<String>()? {
                if paths.len() == MAX_MANIFEST_PATHS {
                    return Err(serde::de::Error::custom(format!(
                        "it lists more than {MAX_MANIFEST_PATHS} paths"
                    )));
                }
                paths.push(path.into_boxed_str());
            }
            Ok(paths)
        }
    }
    let mut reader = serde_json::Deserializer::from_reader(entry.take(MAX_MANIFEST_BYTES));
    let mut paths = serde::Deserializer::deserialize_seq(&mut reader, Paths)
        .and_then(|p| reader.end().map(|()| p))
        .map_err(|e| format!("its manifest: {e}"))?;
    paths.sort_unstable();
    paths.dedup();
    Ok(paths)
}

/// Unpacks the tar stream `decoded` of the archive at `path` into `targets` (see
/// [`extract`]) within `budget`; `stopped` words a stop of the budget in a target
/// folder. Rules: only files, folders and links (hard or symbolic) are unpacked (a device,
/// FIFO or sparse entry is refused); each target's own entry is a folder; a file's name is
/// only plain parts.
fn unpack(
    decoded: impl Read,
    path: &Path,
    targets: &[(&str, &Path)],
    budget: &mut Budget,
    stopped: &dyn Fn(Stop, &Path) -> Error,
) -> Result<()> {
    use tar::EntryType;
    let path = path.to_path_buf();
    let bad = |reason: String| Error::io("read", &path)(std::io::Error::other(reason));
    let mut archive = tar::Archive::new(decoded);
    archive.set_preserve_permissions(true);
    // SAFETY: geteuid has no preconditions and cannot fail.
    archive.set_preserve_ownerships(unsafe { libc::geteuid() } == 0);
    // A file taken again after it changed comes later and replaces the first.
    archive.set_overwrite(true);
    let mut seen = vec![false; targets.len()];
    let mut manifest: Option<Vec<Box<str>>> = None;
    for entry in archive.entries().map_err(Error::io("read", &path))? {
        let mut entry = entry.map_err(Error::io("read", &path))?;
        let name = entry.path().map_err(Error::io("read", &path))?.into_owned();
        if name == Path::new(MANIFEST) {
            let size = entry.size();
            manifest = Some(read_manifest(&mut entry, size).map_err(&bad)?);
            continue;
        }
        let Some((index, rest, into)) = targets
            .iter()
            .enumerate()
            .find_map(|(i, (top, into))| Some((i, name.strip_prefix(top).ok()?, *into)))
        else {
            let tops: Vec<&str> = targets.iter().map(|(t, _)| *t).collect();
            return Err(bad(format!(
                "it holds {} outside {}/: not a snapshot of this project's CouchDB layout",
                name.display(),
                tops.join("/, ")
            )));
        };
        let kind = entry.header().entry_type();
        if rest.as_os_str().is_empty() {
            if kind != EntryType::Directory {
                return Err(bad(format!(
                    "its {} entry is not a folder: not a snapshot of CouchDB data",
                    name.display()
                )));
            }
            seen[index] = true;
            continue;
        }
        let unpacked = match kind {
            EntryType::Regular | EntryType::Continuous => {
                if !is_plain(&name) {
                    return Err(bad(format!(
                        "{} would land outside the data folder",
                        name.display()
                    )));
                }
                budget
                    .admit(entry.size(), || fsutil::available_space(into))
                    .map_err(|stop| stopped(stop, into))?;
                write_file(&mut entry, into, &name)
            }
            // unpack_in refuses entries that would leave `into` (`..`, absolute paths,
            // a hard link's target outside it).
            EntryType::Directory | EntryType::Symlink | EntryType::Link => entry.unpack_in(into),
            other => {
                return Err(bad(format!(
                    "it holds {}, a {other:?} entry, which CouchDB data never has",
                    name.display()
                )));
            }
        }
        .map_err(Error::io("unpack", &into.join(rest)))?;
        if !unpacked {
            return Err(bad(format!(
                "{} would land outside the data folder",
                name.display()
            )));
        }
    }
    if let Some((top, _)) = targets
        .iter()
        .zip(&seen)
        .find(|(_, seen)| !**seen)
        .map(|(t, _)| t)
    {
        return Err(bad(format!(
            "it holds no {top}/ folder: not a snapshot of this project's CouchDB layout"
        )));
    }
    if let Some(manifest) = manifest {
        for (top, into) in targets {
            prune(&into.join(top), Path::new(top), &manifest)?;
        }
    }
    for (top, into) in targets {
        lift(&into.join(top), into)?;
    }
    Ok(())
}

/// Moves everything in `inner` (the entries unpacked under `into/<name>`) up into `into`,
/// and removes `inner`. It is first renamed to a name none of its entries has, so an
/// entry named like it (data holding `data`) moves as any other.
fn lift(inner: &Path, into: &Path) -> Result<()> {
    if !inner.is_dir() {
        return Ok(());
    }
    let free = |name: &String| {
        [inner, into]
            .iter()
            .all(|dir| std::fs::symlink_metadata(dir.join(name)).is_err())
    };
    let aside = into.join(
        (0u32..)
            .map(|i| format!(".cht-dev-lift-{i}"))
            .find(free)
            .unwrap_or_else(|| ".cht-dev-lift".into()),
    );
    std::fs::rename(inner, &aside).map_err(Error::io("move", inner))?;
    for entry in std::fs::read_dir(&aside).map_err(Error::io("read", &aside))? {
        let entry = entry.map_err(Error::io("read", &aside))?;
        let to = into.join(entry.file_name());
        std::fs::rename(entry.path(), &to).map_err(Error::io("move", &to))?;
    }
    std::fs::remove_dir(&aside).map_err(Error::io("remove", &aside))
}

/// Removes from the unpacked folder `dir` (archive name `name`) what `keep` (sorted) does
/// not name: files deleted while the archive was written.
fn prune(dir: &Path, name: &Path, keep: &[Box<str>]) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.map_err(Error::io("read", dir))?;
        let (path, inner) = (entry.path(), name.join(entry.file_name()));
        let kind = entry.file_type().map_err(Error::io("inspect", &path))?;
        let shown = inner.to_string_lossy();
        let listed = keep
            .binary_search_by(|k| k.as_ref().cmp(shown.as_ref()))
            .is_ok();
        if !listed {
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

#[cfg(test)]
mod tests;
