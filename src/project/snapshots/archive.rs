//! A project's CouchDB snapshots: tar archives in `<project>/snapshots/`, compressed with
//! zstd (`LABEL.tar.zst`; earlier ones with gzip, `LABEL.tar.gz`, still list and restore),
//! each with a JSON sidecar naming its CHT version, time, sizes and compression. An archive
//! appears only once it is whole (written under a hidden name, then renamed), and its
//! sidecar only after it, so a snapshot that fails part-way leaves nothing listed.
//!
//! An archive taken from folders in use may hold a file more than once (a later entry
//! replaces an earlier one) and ends with a manifest of every path the data holds: what is
//! unpacked and not in it (deleted while the archive was written) is removed.

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
/// The largest sidecar read: a real one takes a few hundred bytes.
const MAX_SIDECAR_BYTES: u64 = 64 << 10;
/// The largest size a record may state (1 PiB); past it the record is damaged.
const MAX_SIZE: u64 = 1 << 50;
/// The longest `method` text a record may hold.
const MAX_METHOD: usize = 1024;

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
    /// The bytes of every file entry the archive holds (a file taken twice counts twice):
    /// the most a restore writes. Sidecars from before it was recorded lack it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpacked_bytes: Option<u64>,
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
    /// Checks a record read from disk, where anyone (or another machine) may have written
    /// it: the CHT release is a release number, the time an RFC 3339 time, sizes within
    /// reason and consistent, the node count and level ones cht-dev writes, and no text
    /// holds a control character (which would reach the terminal). Returns why not.
    pub fn check(&self) -> std::result::Result<(), String> {
        if crate::project::versions::parse(&self.cht_version).is_none() {
            return Err(format!(
                "its CHT release {:?} is not a release number such as 5.2.0",
                self.cht_version
            ));
        }
        if OffsetDateTime::parse(
            &self.created,
            &time::format_description::well_known::Rfc3339,
        )
        .is_err()
        {
            return Err(format!(
                "its time {:?} is not an RFC 3339 time such as 2026-11-23T01:30:05Z",
                self.created
            ));
        }
        if self.method.len() > MAX_METHOD || self.method.chars().any(char::is_control) {
            return Err(format!(
                "its method holds control characters or is over {MAX_METHOD} bytes: {:?}",
                self.method.chars().take(80).collect::<String>()
            ));
        }
        let sizes = [
            self.bytes,
            self.data_bytes,
            self.unpacked_bytes.unwrap_or(0),
        ];
        if sizes.iter().any(|&b| b > MAX_SIZE) {
            return Err("it states a size over 1 PiB".into());
        }
        if self.unpacked_bytes.is_some_and(|u| u < self.data_bytes) {
            return Err(format!(
                "it states fewer bytes in its archive ({}) than in its data ({})",
                self.unpacked_bytes.unwrap_or(0),
                self.data_bytes
            ));
        }
        if crate::project::layout::Layout::from_nodes(self.couchdb_nodes).is_err() {
            return Err(format!(
                "it states {} CouchDB nodes (cht-dev runs 1 or 3)",
                self.couchdb_nodes
            ));
        }
        if let Some(level) = self.level
            && !(-7..=22).contains(&level)
        {
            return Err(format!("it states zstd level {level}, which zstd has not"));
        }
        Ok(())
    }

    /// Whether this snapshot may replace the data of project `name`, which runs CHT
    /// `current` on `layout`: never data of a newer release (its migrations already ran),
    /// and only data of the same number of CouchDB nodes.
    pub fn restorable_into(
        &self,
        name: &str,
        current: &str,
        layout: crate::project::layout::Layout,
    ) -> Result<()> {
        let theirs = crate::project::versions::parse(&self.cht_version).ok_or_else(|| {
            Error::BadSnapshot {
                project: name.to_string(),
                label: self.label.clone(),
                reason: format!(
                    "its CHT release {:?} is not a release number",
                    self.cht_version
                ),
            }
        })?;
        if theirs > crate::project::versions::order(current) {
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

/// A snapshot whose record cannot be used: it is not listed, restored or counted, and
/// `snapshot ls` says why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Damaged {
    /// Its label (its sidecar's name).
    pub label: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The snapshot record at `path` for `label`, read (at most [`MAX_SIDECAR_BYTES`]) and
/// checked (see [`SnapshotInfo::check`]), with its archive there; why not.
fn load(project: &Project, path: &Path, label: &str) -> std::result::Result<SnapshotInfo, String> {
    let text = fsutil::read_input_text(path, "the snapshot's record", MAX_SIDECAR_BYTES)
        .map_err(|e| e.to_string())?;
    let info: SnapshotInfo =
        serde_json::from_str(&text).map_err(|e| format!("its record cannot be read: {e}"))?;
    if info.label != label {
        return Err(format!("its record names another label, {:?}", info.label));
    }
    info.check()?;
    let archive = archive_of(project, &info);
    if !std::fs::symlink_metadata(&archive).is_ok_and(|m| m.is_file()) {
        return Err(format!(
            "its archive {} is missing or not a regular file",
            archive.display()
        ));
    }
    Ok(info)
}

/// The project's snapshots, oldest first, and those whose record cannot be used (see
/// [`load`]), by label. An archive without a record is not a snapshot (a kill between
/// the two leaves one): it is not listed.
pub fn scan(project: &Project) -> Result<(Vec<SnapshotInfo>, Vec<Damaged>)> {
    let dir = folder(project);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(Error::io("read", &dir)(e)),
    };
    let (mut found, mut damaged) = (Vec::new(), Vec::new());
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(label) = name.strip_suffix(".json") else {
            continue;
        };
        if check_label(label).is_err() {
            continue;
        }
        match load(project, &entry.path(), label) {
            Ok(info) => found.push(info),
            Err(reason) => damaged.push(Damaged {
                label: label.to_string(),
                reason,
            }),
        }
    }
    found.sort_by(|a, b| (&a.created, &a.label).cmp(&(&b.created, &b.label)));
    damaged.sort_by(|a, b| a.label.cmp(&b.label));
    Ok((found, damaged))
}

/// The project's usable snapshots, oldest first (see [`scan`]).
pub fn list(project: &Project) -> Result<Vec<SnapshotInfo>> {
    scan(project).map(|(found, _)| found)
}

/// The snapshot called `label`, usable or with a damaged record, from one scan; an error
/// naming the ones there are when there is none.
fn locate(project: &Project, label: &str) -> Result<std::result::Result<SnapshotInfo, Damaged>> {
    check_label(label)?;
    let (all, damaged) = scan(project)?;
    if let Some(info) = all.iter().find(|i| i.label == label) {
        return Ok(Ok(info.clone()));
    }
    if let Some(bad) = damaged.into_iter().find(|d| d.label == label) {
        return Ok(Err(bad));
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

/// The snapshot called `label`; an error saying why it cannot be used when its record is
/// damaged, or naming the ones there are.
pub fn find(project: &Project, label: &str) -> Result<SnapshotInfo> {
    locate(project, label)?.map_err(|bad| Error::BadSnapshot {
        project: project.name.clone(),
        label: label.to_string(),
        reason: format!(
            "{}; remove it with `cht-dev snapshot rm {} {label}`",
            bad.reason, project.name
        ),
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

/// Removes the snapshot `label` (sidecar first, so it is never listed half-removed), a
/// damaged one too.
pub fn remove(project: &Project, label: &str) -> Result<()> {
    // Usable or damaged, it goes; only a label with no record at all is an error.
    let _usable_or_damaged = locate(project, label)?;
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
