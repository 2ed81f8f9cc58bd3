//! A project's CouchDB snapshots: the archives (`archive`), and the steps of taking and
//! restoring one that need no engine: which folders, how the copy is made and described,
//! where a restore unpacks, how its folders are handed back and swapped in. The command
//! puts the engine's part (stopping and starting the services, changing what a
//! container's user owns) between these steps.

pub mod archive;
pub mod unpack;
pub mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use time::OffsetDateTime;

pub use archive::{
    Compression, DEFAULT_LEVEL, Damaged, SnapshotInfo, archive_of, check_free, default_label, find,
    folder, list, remove, scan,
};
pub use unpack::extract;
pub use writer::{CaughtUp, Finished, Source, Writer};

use super::Project;
use super::journal::Swap;
use super::layout::{DataFolder, Layout};
use crate::error::{Error, Result};
use crate::fsutil;

/// The project's CouchDB data folders, one per node (an adopted project's may lie outside
/// the project folder), each an existing folder.
pub fn data_folders(project: &Project) -> Result<Vec<DataFolder>> {
    let folders = project.data_folders();
    if let Some(missing) = folders.iter().find(|f| !f.path.is_dir()) {
        return Err(Error::BrokenProject {
            name: project.name.clone(),
            reason: format!(
                "its CouchDB data folder {} ({}) does not exist",
                missing.path.display(),
                missing.var
            ),
        });
    }
    Ok(folders)
}

/// The sub-folder of the first node's data folder that holds Nouveau's index: read only
/// while Nouveau is stopped (an index copied while written may not open).
pub const NOUVEAU_DIR: &str = "nouveau";

/// What a snapshot of the project archives: each data folder under its node's name, the
/// first one's Nouveau index read only while the services are stopped.
pub fn sources(project: &Project) -> Result<Vec<Source>> {
    Ok(data_folders(project)?
        .into_iter()
        .enumerate()
        .map(|(i, folder)| Source {
            name: folder.name.to_string(),
            dir: folder.path,
            later: if i == 0 {
                vec![PathBuf::from(NOUVEAU_DIR)]
            } else {
                Vec::new()
            },
        })
        .collect())
}

/// The bytes the files under `dir` hold (what a snapshot reads, or a restore unpacks).
pub fn data_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(kind) if kind.is_dir() => data_size(&e.path()),
            Ok(kind) if kind.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Refuses, before anything is written, when the file system holding `dir` has less
/// than `needed` bytes free for `what`.
pub fn check_space(dir: &Path, needed: u64, what: &str) -> Result<()> {
    match fsutil::available_space(dir) {
        Some(available) if available < needed => {
            Err(fsutil::no_space(dir, what, needed, available))
        }
        _ => Ok(()),
    }
}

/// The services stopped for a consistent copy, for people.
pub fn stopped_services(layout: Layout) -> String {
    let couchdb = match layout {
        Layout::Single => "CouchDB".to_string(),
        Layout::Cluster => format!("CouchDB's {} nodes", layout.nodes()),
    };
    format!("API, Sentinel, {couchdb} and Nouveau (where it runs)")
}

/// How the services were held still while what changed was copied, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Frozen where they stood, then let run on.
    Paused(Duration),
    /// Stopped, then started again (engines that cannot freeze).
    Stopped(Duration),
}

impl Held {
    /// How long they were held.
    pub fn took(self) -> Duration {
        match self {
            Held::Paused(d) | Held::Stopped(d) => d,
        }
    }
}

/// How a snapshot was made consistent, as its sidecar records it: how the services were
/// held and for how long (`None`: nothing ran), and what was copied meanwhile.
pub fn method(layout: Layout, held: Option<Held>, caught: &CaughtUp) -> String {
    let files = |n: u64| {
        if n == 1 {
            "1 file".to_string()
        } else {
            format!("{n} files")
        }
    };
    let what = match (caught.grown, caught.whole) {
        (0, 0) => "nothing had changed".to_string(),
        (grown, 0) => format!("the tails of {} that grew were copied", files(grown)),
        (0, whole) => format!("{} were copied", files(whole)),
        (grown, whole) => format!(
            "the tails of {} that grew and {} whole were copied",
            files(grown),
            files(whole)
        ),
    };
    let Some(held) = held else {
        return "consistent: nothing was running while the data was read".to_string();
    };
    let (how, after) = match held {
        Held::Paused(_) => ("paused", "then resumed"),
        Held::Stopped(_) => ("stopped", "then started again"),
    };
    format!(
        "consistent: {} {how} for {:.2} s while {what} ({}), {after}",
        stopped_services(layout),
        held.took().as_secs_f64(),
        fsutil::human_bytes(caught.bytes)
    )
}

/// The sidecar of a snapshot `label` of CHT `version` data taken `now`, before its
/// archive is written (which fills in the archive's size).
pub fn info(
    label: String,
    version: String,
    layout: Layout,
    data_bytes: u64,
    method: String,
    now: OffsetDateTime,
) -> SnapshotInfo {
    SnapshotInfo {
        label,
        cht_version: version,
        created: now
            .replace_nanosecond(0)
            .unwrap_or(now)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        bytes: 0,
        data_bytes,
        method,
        couchdb_nodes: layout.nodes(),
        compression: Compression::Zstd,
        level: None,
        unpacked_bytes: None,
    }
}

/// A restore's unpacking folders, one beside each data folder so that each swap is one
/// rename on one file system. Until the swaps each holds the snapshot's data; after them,
/// the previous data. Each goes when dropped.
pub struct RestoreStaging {
    /// The data folders, in node order.
    pub folders: Vec<DataFolder>,
    /// Their unpacking folders, in the same order.
    pub stagings: Vec<fsutil::Staging>,
}

/// Snapshot `label` of the project, when it may replace the project's data (same layout,
/// not a newer release, every data folder there); the data folders it would replace.
pub fn restorable(project: &Project, label: &str) -> Result<(SnapshotInfo, Vec<DataFolder>)> {
    let info = find(project, label)?;
    info.restorable_into(&project.name, &project.cht_version()?, project.layout())?;
    Ok((info, data_folders(project)?))
}

impl RestoreStaging {
    /// Checks as [`restorable`] and makes the unpacking folders; nothing else changes.
    pub fn prepare(project: &Project, label: &str) -> Result<(SnapshotInfo, RestoreStaging)> {
        let (info, folders) = restorable(project, label)?;
        let mut stagings = Vec::new();
        for folder in &folders {
            let parent = folder.path.parent().ok_or_else(|| Error::BrokenProject {
                name: project.name.clone(),
                reason: format!(
                    "its CouchDB data folder {} has no parent",
                    folder.path.display()
                ),
            })?;
            // Named per folder: a cluster's node folders share one parent.
            stagings.push(fsutil::Staging::new(
                parent,
                &format!("restore-{}", folder.name),
            )?);
        }
        Ok((info, RestoreStaging { folders, stagings }))
    }

    /// Where each node's data is unpacked, by node name.
    pub fn targets(&self) -> Vec<(&'static str, PathBuf)> {
        self.folders
            .iter()
            .zip(&self.stagings)
            .map(|(f, s)| (f.name, s.path().to_path_buf()))
            .collect()
    }

    /// Each data folder with its unpacking folder, as swapped.
    pub fn pairs(&self) -> Vec<(PathBuf, PathBuf)> {
        self.folders
            .iter()
            .zip(&self.stagings)
            .map(|(f, s)| (f.path.clone(), s.path().to_path_buf()))
            .collect()
    }

    /// Gives each unpacked folder its data folder's mode and owner; returns, as
    /// (folder, uid, gid), the hand-overs this user cannot make (the data folder is
    /// another user's, a container's, and this user is not root).
    pub fn hand_back(&self, me: u32) -> Vec<(PathBuf, u32, u32)> {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mut left = Vec::new();
        for (folder, staging) in self.folders.iter().zip(&self.stagings) {
            let Ok(meta) = std::fs::metadata(&folder.path) else {
                continue;
            };
            let _ = std::fs::set_permissions(
                staging.path(),
                std::fs::Permissions::from_mode(meta.mode() & 0o7777),
            );
            if meta.uid() != me && me != 0 {
                left.push((staging.path().to_path_buf(), meta.uid(), meta.gid()));
            } else {
                let _ =
                    std::os::unix::fs::chown(staging.path(), Some(meta.uid()), Some(meta.gid()));
            }
        }
        left
    }

    /// Refuses, before anything is unpacked, when a data folder's file system has less
    /// free space than the snapshot's data (`info.data_bytes`, all nodes': a cluster's
    /// folders usually share one file system) and the floor CouchDB keeps meanwhile
    /// ([`unpack::FREE_FLOOR`]; the unpacking stops there too).
    pub fn check_space(&self, info: &SnapshotInfo) -> Result<()> {
        let what = format!(
            "unpack the snapshot and keep {} free for CouchDB",
            fsutil::human_bytes(unpack::FREE_FLOOR)
        );
        for staging in &self.stagings {
            check_space(
                staging.path(),
                info.data_bytes.saturating_add(unpack::FREE_FLOOR),
                &what,
            )?;
        }
        Ok(())
    }

    /// Removes the unpacking folders (after the swaps: the previous data); returns those
    /// this user may not remove (a container's user owns what is inside).
    pub fn dispose(&self) -> Vec<PathBuf> {
        self.stagings
            .iter()
            .filter_map(|s| match std::fs::remove_dir_all(s.path()) {
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    Some(s.path().to_path_buf())
                }
                _ => None,
            })
            .collect()
    }
}

/// A reader telling `progress` the running total of bytes read through it (counted from
/// `count`), each time it passes a 4 MiB boundary.
pub(crate) struct CountingRead<'a, R> {
    /// Where the bytes come from.
    pub(crate) inner: R,
    /// The running total.
    pub(crate) count: u64,
    /// Told the total now and then.
    pub(crate) progress: &'a dyn Fn(u64),
}

impl<R: std::io::Read> std::io::Read for CountingRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let before = self.count;
        self.count += n as u64;
        if before >> 22 != self.count >> 22 {
            (self.progress)(self.count);
        }
        Ok(n)
    }
}

/// Swaps each pair of folders in order, stopping at the first that fails. The swaps done
/// until then stay: [`undo_swaps`] is the one way back, for the caller now or for the
/// repair after a kill, from the same journalled swaps.
pub fn exchange_all(swaps: &[Swap]) -> Result<()> {
    for (done, swap) in swaps.iter().enumerate() {
        fsutil::exchange(&swap.data, &swap.staged)?;
        if done == 0 {
            crate::faults::point("swapped");
        }
    }
    Ok(())
}

/// Swaps back each pair of `swaps` whose swap happened (a restore killed part-way), so
/// every data folder is as it was before the restore; returns how many were swapped back.
pub fn undo_swaps(swaps: &[Swap]) -> Result<usize> {
    let mut undone = 0;
    for swap in swaps.iter().rev() {
        if swap.done()? {
            fsutil::exchange(&swap.data, &swap.staged)?;
            undone += 1;
        }
    }
    Ok(undone)
}

/// What the snapshot modules' unit tests share.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;

    use crate::project::Project;

    /// A project `p` in `dir` with nothing but a name.
    pub(crate) fn project_in(dir: &Path) -> Project {
        Project::from_env(
            "p",
            dir.to_path_buf(),
            crate::project::dotenv::EnvFile::new(),
        )
        .expect("project")
    }
}

#[cfg(test)]
mod tests;
