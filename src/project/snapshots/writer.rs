//! Writing a snapshot's archive from data folders that are in use, so that the services
//! stop only for what changed:
//!
//! 1. `take_live`, while the services run: every file is archived as it is, each exactly
//!    as long as it was when opened, and what was taken is recorded (file identity, length,
//!    modification time, the last bytes). Sub-folders named `later` (Nouveau's index) are
//!    left for the next step.
//! 2. `catch_up`, while the services are stopped: the folders are walked again. A file
//!    that only grew (same file, longer, its previous last bytes unchanged: CouchDB's
//!    `.couch` files are append-only) has only its new tail copied aside; a file replaced,
//!    rewritten, new, or under `later` is copied aside whole (a reflink where the file
//!    system can). Every path there is recorded for the manifest.
//! 3. `finish`, once the services run again: what changed is archived again after the
//!    rest (a later entry replaces an earlier one when unpacked), a grown file as its
//!    prefix, read from the same file kept open since the stop (append-only: those bytes
//!    do not change), then its tail; the manifest ends the archive. Then the archive is
//!    moved into place and its sidecar written.
//!
//! The archive is zstd-compressed on every core. Nothing is left behind on failure: the
//! hidden archive and the copies aside go when the writer is dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::archive::{self, Compression, MANIFEST, SnapshotInfo};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::project::Project;

/// What the tar stream writes into: whole megabytes at a time into zstd.
type Stream = BufWriter<zstd::stream::write::Encoder<'static, File>>;

/// Bytes of a file's end kept from the first pass, to tell a file that only grew.
const END_BYTES: u64 = 1024;
/// Files kept open from the stop until they are archived again; past this many, a grown
/// file is copied aside whole.
const HELD_FILES: usize = 256;

/// One data folder to archive.
#[derive(Debug, Clone)]
pub struct Source {
    /// Its name in the archive (a node's name).
    pub name: String,
    /// The folder.
    pub dir: PathBuf,
    /// Sub-folders (relative to `dir`) read only while the services are stopped.
    pub later: Vec<PathBuf>,
}

/// A file as the first pass archived it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Taken {
    /// Device and inode: the same file, not one renamed over it.
    id: (u64, u64),
    /// Bytes archived.
    len: u64,
    /// Modification time when opened (seconds, nanoseconds).
    mtime: (i64, i64),
    /// The last bytes archived (up to [`END_BYTES`]).
    end: Vec<u8>,
}

/// What is archived again after the stop, in walking order.
enum Again {
    /// A folder that appeared.
    Dir { name: PathBuf, header: tar::Header },
    /// A symbolic link that appeared or changed.
    Link {
        name: PathBuf,
        header: tar::Header,
        target: PathBuf,
    },
    /// A file that only grew: its first `prefix` bytes from `held`, then the copy aside.
    Tail {
        name: PathBuf,
        header: tar::Header,
        held: File,
        prefix: u64,
        tail: PathBuf,
    },
    /// A file copied aside whole.
    Whole {
        name: PathBuf,
        header: tar::Header,
        copy: PathBuf,
    },
}

/// What the stop found, for people: files archived again and bytes copied while stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaughtUp {
    /// Files that only grew.
    pub grown: u64,
    /// Files copied whole (replaced, rewritten, new, or read only while stopped).
    pub whole: u64,
    /// Bytes copied while the services were stopped.
    pub bytes: u64,
    /// Bytes the data's files held at the stop.
    pub data: u64,
}

/// An archive being written; see the module's steps.
pub struct Writer {
    /// The tar stream, through a large buffer (so files are read in large pieces), into
    /// zstd, into the hidden archive file.
    tar: Option<tar::Builder<Stream>>,
    /// The hidden archive, renamed into place by `finish`.
    tmp: PathBuf,
    /// Files as the first pass archived them, by archive name.
    taken: BTreeMap<PathBuf, Taken>,
    /// Folders and links the first pass archived (links with their target).
    others: BTreeMap<PathBuf, Option<PathBuf>>,
    /// What the stop found to archive again.
    again: Vec<Again>,
    /// Every path there at the stop, for the manifest.
    manifest: BTreeSet<PathBuf>,
    /// Where tails and whole copies are kept until `finish`.
    aside: fsutil::Staging,
    /// The bytes of every file entry archived so far (a file taken twice counts twice): for
    /// progress, and the record's `unpacked_bytes`.
    read: u64,
    /// The zstd level.
    level: i32,
}

impl Writer {
    /// Starts the archive of snapshot `label` of `project` at zstd `level`.
    pub fn create(project: &Project, label: &str, level: i32) -> Result<Writer> {
        archive::check_free(project, label)?;
        let dir = archive::folder(project);
        fsutil::create_dir_mode(&dir, fsutil::PRIVATE_DIR)?;
        let tmp = dir.join(format!(".{label}.tar.zst.new-{}", std::process::id()));
        let aside = fsutil::Staging::new(&dir, label)?;
        let file = File::create(&tmp).map_err(Error::io("create", &tmp))?;
        fsutil::set_mode(&tmp, fsutil::PRIVATE)?;
        let zstd_failed = |e| Error::io("compress into", &tmp)(e);
        let mut encoder = zstd::stream::write::Encoder::new(file, level).map_err(zstd_failed)?;
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        encoder
            .multithread(u32::try_from(workers).unwrap_or(1))
            .map_err(zstd_failed)?;
        encoder.include_checksum(true).map_err(zstd_failed)?;
        let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, encoder));
        tar.follow_symlinks(false);
        Ok(Writer {
            tar: Some(tar),
            tmp,
            taken: BTreeMap::new(),
            others: BTreeMap::new(),
            again: Vec::new(),
            manifest: BTreeSet::new(),
            aside,
            read: 0,
            level,
        })
    }

    /// The tar stream (present until `finish` takes it).
    fn tar(&mut self) -> Result<&mut tar::Builder<Stream>> {
        let tmp = self.tmp.clone();
        self.tar
            .as_mut()
            .ok_or_else(|| Error::io("write", &tmp)(std::io::Error::other("already finished")))
    }

    /// The first pass: archives every source as it is now, but its `later` sub-folders.
    pub fn take_live(&mut self, sources: &[Source], progress: &dyn Fn(u64)) -> Result<()> {
        for source in sources {
            let later: Vec<PathBuf> = source.later.iter().map(|l| source.dir.join(l)).collect();
            self.take_dir(&source.dir, Path::new(&source.name), &later, progress)?;
        }
        Ok(())
    }

    /// One folder of the first pass, `dir` archived as `name`.
    fn take_dir(
        &mut self,
        dir: &Path,
        name: &Path,
        later: &[PathBuf],
        progress: &dyn Fn(u64),
    ) -> Result<()> {
        let meta = std::fs::symlink_metadata(dir).map_err(Error::io("inspect", dir))?;
        let mut header = header_of(&meta);
        self.tar()?
            .append_data(&mut header, name, std::io::empty())
            .map_err(Error::io("archive", dir))?;
        self.others.insert(name.to_path_buf(), None);
        for (entry_name, path) in sorted_entries(dir)? {
            if later.contains(&path) {
                continue;
            }
            let inner = name.join(&entry_name);
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                // Deleted since the folder was listed: the manifest will not name it.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("inspect", &path)(e)),
            };
            let kind = meta.file_type();
            if kind.is_dir() {
                self.take_dir(&path, &inner, later, progress)?;
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&path).map_err(Error::io("read", &path))?;
                let mut header = header_of(&meta);
                self.tar()?
                    .append_link(&mut header, &inner, &target)
                    .map_err(Error::io("archive", &path))?;
                self.others.insert(inner, Some(target));
            } else if kind.is_file() {
                self.take_file(&path, &inner, progress)?;
            } else {
                return Err(special(&path));
            }
        }
        Ok(())
    }

    /// Archives the file at `path` as `name`, exactly as long as it is when opened.
    fn take_file(&mut self, path: &Path, name: &Path, progress: &dyn Fn(u64)) -> Result<()> {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("open", path)(e)),
        };
        let meta = file.metadata().map_err(Error::io("inspect", path))?;
        let len = meta.len();
        let mut header = header_of(&meta);
        header.set_size(len);
        let counted = super::CountingRead {
            inner: &mut file,
            count: self.read,
            progress,
        };
        let mut exact = Exactly::new(counted, len);
        self.tar()?
            .append_data(&mut header, name, &mut exact)
            .map_err(Error::io("archive", path))?;
        let short = exact.short;
        let end = if short {
            Vec::new()
        } else {
            read_at(&mut file, len.saturating_sub(END_BYTES), len)
                .map_err(Error::io("read", path))?
        };
        self.read += len;
        progress(self.read);
        self.taken.insert(
            name.to_path_buf(),
            Taken {
                id: (meta.dev(), meta.ino()),
                // A file that shrank while read was archived padded: taken again whole.
                len: if short { u64::MAX } else { len },
                mtime: (meta.mtime(), meta.mtime_nsec()),
                end,
            },
        );
        Ok(())
    }

    /// The second pass, while nothing writes: finds what changed since the first and
    /// copies it aside (see the module's steps).
    pub fn catch_up(&mut self, sources: &[Source]) -> Result<CaughtUp> {
        let mut caught = CaughtUp::default();
        for source in sources {
            let name = PathBuf::from(&source.name);
            self.manifest.insert(name.clone());
            self.catch_up_dir(&source.dir, &name, &mut caught)?;
        }
        Ok(caught)
    }

    /// One folder of the second pass.
    fn catch_up_dir(&mut self, dir: &Path, name: &Path, caught: &mut CaughtUp) -> Result<()> {
        for (entry_name, path) in sorted_entries(dir)? {
            let inner = name.join(&entry_name);
            let meta = std::fs::symlink_metadata(&path).map_err(Error::io("inspect", &path))?;
            let kind = meta.file_type();
            if kind.is_dir() {
                self.manifest.insert(inner.clone());
                if !self.others.contains_key(&inner) {
                    let header = header_of(&meta);
                    self.again.push(Again::Dir {
                        name: inner.clone(),
                        header,
                    });
                }
                self.catch_up_dir(&path, &inner, caught)?;
            } else if kind.is_symlink() {
                self.manifest.insert(inner.clone());
                let target = std::fs::read_link(&path).map_err(Error::io("read", &path))?;
                if self.others.get(&inner) != Some(&Some(target.clone())) {
                    let header = header_of(&meta);
                    self.again.push(Again::Link {
                        name: inner,
                        header,
                        target,
                    });
                }
            } else if kind.is_file() {
                self.manifest.insert(inner.clone());
                caught.data += meta.len();
                self.catch_up_file(&path, inner, &meta, caught)?;
            } else {
                return Err(special(&path));
            }
        }
        Ok(())
    }

    /// One file of the second pass: unchanged, grown (tail aside) or whole (copy aside).
    fn catch_up_file(
        &mut self,
        path: &Path,
        name: PathBuf,
        meta: &std::fs::Metadata,
        caught: &mut CaughtUp,
    ) -> Result<()> {
        let now = (meta.dev(), meta.ino());
        let mtime = (meta.mtime(), meta.mtime_nsec());
        let held = self
            .again
            .iter()
            .filter(|a| matches!(a, Again::Tail { .. }))
            .count();
        let verdict = match self.taken.get(&name) {
            Some(t) if t.id == now && t.len == meta.len() && t.mtime == mtime => return Ok(()),
            Some(t) if t.id == now && t.len < meta.len() && held < HELD_FILES => {
                let mut file = File::open(path).map_err(Error::io("open", path))?;
                let start = t.len.saturating_sub(END_BYTES);
                let end = read_at(&mut file, start, t.len).map_err(Error::io("read", path))?;
                (end == t.end).then_some((file, t.len))
            }
            _ => None,
        };
        let aside = self.aside.path().join(format!("{}", self.again.len()));
        let mut header = header_of(meta);
        match verdict {
            Some((mut held, prefix)) => {
                held.seek(SeekFrom::Start(prefix))
                    .map_err(Error::io("read", path))?;
                let mut out = File::create(&aside).map_err(Error::io("create", &aside))?;
                let copied = std::io::copy(&mut (&held).take(meta.len() - prefix), &mut out)
                    .map_err(Error::io("copy", path))?;
                header.set_size(prefix + copied);
                caught.grown += 1;
                caught.bytes += copied;
                self.again.push(Again::Tail {
                    name,
                    header,
                    held,
                    prefix,
                    tail: aside,
                });
            }
            None => {
                let copied = fsutil::clone_or_copy(path, &aside)?;
                header.set_size(copied);
                caught.whole += 1;
                caught.bytes += copied;
                self.again.push(Again::Whole {
                    name,
                    header,
                    copy: aside,
                });
            }
        }
        Ok(())
    }

    /// Ends the archive: archives again what changed, then the manifest, and syncs the
    /// hidden file. It needs nothing of the services, so it runs while they start again;
    /// [`Finished::publish`] then moves it into place with its sidecar.
    pub fn finish(mut self, progress: &dyn Fn(u64)) -> Result<Finished> {
        let again = std::mem::take(&mut self.again);
        for item in again {
            self.archive_again(item, progress)?;
        }
        let names: Vec<String> = self
            .manifest
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let text = serde_json::to_vec(&names).map_err(|e| Error::Encode {
            what: "the snapshot's manifest".into(),
            reason: e.to_string(),
        })?;
        // A restore refuses a manifest over these limits: never write one it would refuse.
        if names.len() > super::unpack::MAX_MANIFEST_PATHS
            || text.len() as u64 > super::unpack::MAX_MANIFEST_BYTES
        {
            return Err(Error::Encode {
                what: "the snapshot's manifest".into(),
                reason: format!(
                    "the data holds {} paths ({}), more than a snapshot can list ({} paths, {}); compact CouchDB's databases or remove unused ones, then try again",
                    names.len(),
                    fsutil::human_bytes(text.len() as u64),
                    super::unpack::MAX_MANIFEST_PATHS,
                    fsutil::human_bytes(super::unpack::MAX_MANIFEST_BYTES)
                ),
            });
        }
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o600);
        header.set_size(text.len() as u64);
        let tmp = self.tmp.clone();
        let mut tar = self
            .tar
            .take()
            .ok_or_else(|| Error::io("write", &tmp)(std::io::Error::other("already finished")))?;
        tar.append_data(&mut header, MANIFEST, text.as_slice())
            .map_err(Error::io("write", &tmp))?;
        let encoder = tar
            .into_inner()
            .map_err(Error::io("write", &tmp))?
            .into_inner()
            .map_err(|e| Error::io("write", &tmp)(e.into_error()))?;
        let file = encoder.finish().map_err(Error::io("write", &tmp))?;
        file.sync_all().map_err(Error::io("sync", &tmp))?;
        let bytes = file.metadata().map_err(Error::io("inspect", &tmp))?.len();
        // The hidden file now belongs to the finished archive, which removes it unless
        // published.
        self.tmp = PathBuf::new();
        Ok(Finished {
            tmp,
            bytes,
            content: self.read,
            level: self.level,
        })
    }

    /// Appends one changed entry.
    fn archive_again(&mut self, item: Again, progress: &dyn Fn(u64)) -> Result<()> {
        let tmp = self.tmp.clone();
        let failed = |e| Error::io("write", &tmp)(e);
        match item {
            Again::Dir { name, mut header } => self
                .tar()?
                .append_data(&mut header, name, std::io::empty())
                .map_err(failed),
            Again::Link {
                name,
                mut header,
                target,
            } => self
                .tar()?
                .append_link(&mut header, name, target)
                .map_err(failed),
            Again::Tail {
                name,
                mut header,
                mut held,
                prefix,
                tail,
            } => {
                held.seek(SeekFrom::Start(0)).map_err(failed)?;
                let rest = File::open(&tail).map_err(Error::io("open", &tail))?;
                let size = header.size().unwrap_or(0);
                let mut data = Exactly::new(held.take(prefix).chain(rest), size);
                self.tar()?
                    .append_data(&mut header, name, &mut data)
                    .map_err(failed)?;
                self.read += size;
                progress(self.read);
                Ok(())
            }
            Again::Whole {
                name,
                mut header,
                copy,
            } => {
                let file = File::open(&copy).map_err(Error::io("open", &copy))?;
                let size = header.size().unwrap_or(0);
                self.tar()?
                    .append_data(&mut header, name, Exactly::new(file, size))
                    .map_err(failed)?;
                self.read += size;
                progress(self.read);
                Ok(())
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Finished: the hidden file was handed on and this removes nothing.
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A whole archive, synced, still hidden; removed when dropped unpublished.
#[derive(Debug)]
pub struct Finished {
    /// The hidden archive.
    tmp: PathBuf,
    /// Its size.
    bytes: u64,
    /// The bytes of every file entry it holds (a file taken twice counts twice): the most
    /// a restore writes.
    content: u64,
    /// Its zstd level.
    level: i32,
}

impl Finished {
    /// Moves the archive into place with its sidecar (`info`, completed with the archive's
    /// size, level and compression); returns what the sidecar records.
    pub fn publish(mut self, project: &Project, mut info: SnapshotInfo) -> Result<SnapshotInfo> {
        info.bytes = self.bytes;
        info.unpacked_bytes = Some(self.content);
        info.compression = Compression::Zstd;
        info.level = Some(self.level);
        archive::publish(project, &self.tmp, &info)?;
        self.tmp = PathBuf::new();
        Ok(info)
    }
}

impl Drop for Finished {
    fn drop(&mut self) {
        // Published: the hidden file was renamed into place.
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// The refusal of what is neither a file, a folder nor a link: no data of CouchDB's, and
/// nothing a restore could make again.
fn special(path: &Path) -> Error {
    Error::io("archive", path)(std::io::Error::other(
        "it is not a file, folder or link (a FIFO, socket or device)",
    ))
}

/// A tar header for `meta`: its type, mode, owner and modification time (size 0).
fn header_of(meta: &std::fs::Metadata) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    header.set_size(0);
    header
}

/// The entries of `dir` by name, as (name, path), sorted.
fn sorted_entries(dir: &Path) -> Result<Vec<(std::ffi::OsString, PathBuf)>> {
    let mut entries: Vec<(std::ffi::OsString, PathBuf)> = std::fs::read_dir(dir)
        .map_err(Error::io("read", dir))?
        .map(|e| e.map(|e| (e.file_name(), e.path())))
        .collect::<std::io::Result<_>>()
        .map_err(Error::io("read", dir))?;
    entries.sort();
    Ok(entries)
}

/// Bytes `start..end` of `file`.
fn read_at(file: &mut File, start: u64, end: u64) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::with_capacity(usize::try_from(end - start).unwrap_or(0));
    file.take(end - start).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A reader giving exactly `len` bytes: the inner reader's, then zeros if it ends early
/// (a file that shrank while read), so that a tar entry is always as long as its header.
struct Exactly<R> {
    /// Where the bytes come from.
    inner: R,
    /// Bytes still to give.
    left: u64,
    /// Whether the inner reader ended early.
    short: bool,
}

impl<R: Read> Exactly<R> {
    /// `len` bytes of `inner`.
    fn new(inner: R, len: u64) -> Exactly<R> {
        Exactly {
            inner,
            left: len,
            short: false,
        }
    }
}

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let n = if self.short {
            0
        } else {
            self.inner.read(&mut buf[..want])?
        };
        let n = if n == 0 {
            self.short = true;
            buf[..want].fill(0);
            want
        } else {
            n
        };
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
