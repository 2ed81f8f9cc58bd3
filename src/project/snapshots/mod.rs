//! A project's CouchDB snapshots: the archives (`archive`), and the steps of taking and
//! restoring one that need no engine: which folders, how the copy is made and described,
//! where a restore unpacks, how its folders are handed back and swapped in. The command
//! puts the engine's part (stopping and starting the services, changing what a
//! container's user owns) between these steps.

pub mod archive;

use std::path::{Path, PathBuf};
use std::time::Duration;

use time::OffsetDateTime;

pub use archive::{SnapshotInfo, check_free, default_label, extract, find, folder, list, remove};

use super::Project;
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

/// Copies each data folder into `into/<node name>` (a new folder each), reporting one
/// running total of bytes across the folders; returns the total.
pub fn copy_data(folders: &[DataFolder], into: &Path, progress: &dyn Fn(u64)) -> Result<u64> {
    let mut total = 0;
    for folder in folders {
        let to = into.join(folder.name);
        std::fs::create_dir(&to).map_err(Error::io("create folder", &to))?;
        let earlier = total;
        total += fsutil::copy_tree_with(&folder.path, &to, &|done| progress(earlier + done))?;
    }
    Ok(total)
}

/// The services stopped for a consistent copy, for people.
pub fn stopped_services(layout: Layout) -> String {
    let couchdb = match layout {
        Layout::Single => "CouchDB".to_string(),
        Layout::Cluster => format!("CouchDB's {} nodes", layout.nodes()),
    };
    format!("API, Sentinel, {couchdb} and Nouveau (where it runs)")
}

/// How a snapshot was made consistent, as its sidecar records it: how long the services
/// were stopped for the copy (`None`: nothing ran), for `folders` data folders.
pub fn method(layout: Layout, folders: usize, stopped_for: Option<Duration>) -> String {
    let what = if folders == 1 {
        "the data folder was"
    } else {
        "the data folders were"
    };
    match stopped_for {
        Some(d) => format!(
            "consistent: {} stopped for {:.2} s while {what} copied, then started again",
            stopped_services(layout),
            d.as_secs_f64()
        ),
        None => format!("consistent: nothing was running while {what} copied"),
    }
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

/// Swaps each pair of folders; when one swap fails, swaps back those already done, so the
/// data folders are either all restored or all as they were.
pub fn exchange_all(pairs: &[(PathBuf, PathBuf)]) -> Result<()> {
    for (done, (data, staged)) in pairs.iter().enumerate() {
        if let Err(e) = fsutil::exchange(data, staged) {
            for (data, staged) in pairs[..done].iter().rev() {
                // A swap back of folders just swapped on the same file system.
                let _ = fsutil::exchange(data, staged);
            }
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
