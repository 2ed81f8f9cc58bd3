//! `cht-dev snapshot`: consistent copies of a project's CouchDB data (Nouveau's index
//! included, as it lives in the data folder), listed, restored and removed.

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::home::Home;
use crate::printer::{Printer, Report};
use crate::project::archives::{self, SnapshotInfo};
use crate::project::layout::{DataFolder, Layout};
use crate::project::{self, Project};
use crate::report;
use crate::settings::Settings;
use crate::stack::load::load;
use crate::stack::owned;
use crate::stack::quiesce::{Quiesced, quiesce, resume};
use crate::stack::readiness::wait_ready;

/// What `snapshot restore` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreRequest {
    /// The project.
    pub name: String,
    /// The snapshot.
    pub label: String,
    /// Confirmed on the command line.
    pub yes: bool,
    /// How long to wait for readiness afterwards.
    pub timeout: Duration,
}

/// The project's CouchDB data folders, one per node (an adopted project's may lie outside
/// the project folder), each an existing folder.
fn data_folders(project: &Project) -> Result<Vec<DataFolder>> {
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

/// How long `snapshot create` waits for the stack to be ready again after the copy.
const READY_AFTER_COPY: Duration = Duration::from_secs(300);

/// Waits until the project serves again after its services were started again.
async fn wait_ready_again(
    settings: &Settings,
    home: &Home,
    project: &Project,
    timeout: Duration,
    reporter: &dyn report::Reporter,
) -> Result<()> {
    let target = project.target();
    let stacks = load(&target)?;
    let profile = super::profile_of(home, project)?;
    super::runtime::interruptible(async {
        let engine = super::runtime::connect(settings).await?;
        wait_ready(
            &engine,
            &target,
            &profile.readiness,
            &stacks,
            timeout,
            reporter,
        )
        .await
    })
    .await
}

/// Takes the data folder out of use (when the project runs), runs `work` on a thread of
/// its own, and always starts again what was stopped, Ctrl-C included (it ends `work`'s
/// wait at once, and a second Ctrl-C is ignored while the services start); returns
/// `work`'s result and how long the services were stopped (`None` when nothing ran).
async fn with_data_quiet<T: Send + 'static>(
    settings: &Settings,
    home: &Home,
    project: &Project,
    ready_within: Duration,
    reporter: &dyn report::Reporter,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<(T, Option<Duration>)> {
    let profile = super::profile_of(home, project)?;
    let record = Mutex::new(Quiesced::default());
    let stopped_at = Cell::new(None);
    let outcome = super::runtime::interruptible(async {
        let engine = super::runtime::connect(settings).await?;
        quiesce(&engine, &project.target(), &profile, &record, reporter).await?;
        stopped_at.set(Some(Instant::now()));
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Error::engine("copy the data folder", e.to_string()))?
    })
    .await;
    let quiesced = record.into_inner().unwrap_or_default();
    let stopped_for = (!quiesced.stopped.is_empty())
        .then(|| stopped_at.get().map(|t| t.elapsed()))
        .flatten();
    if !quiesced.stopped.is_empty() || quiesced.upgrade_paused {
        let resumed = async {
            let engine = super::runtime::connect(settings).await?;
            resume(&engine, &project.target(), &profile, &quiesced).await?;
            // Serving again before saying anything else, failure included (not after
            // Ctrl-C: the user asked to stop).
            if !matches!(outcome, Err(Error::Interrupted)) && !quiesced.stopped.is_empty() {
                wait_ready_again(settings, home, project, ready_within, reporter).await?;
            }
            Ok(())
        }
        .await;
        // A failure to start again never hides the first failure: it is attached.
        match (outcome, resumed) {
            (Err(error), Err(rollback)) => {
                return Err(Error::RollbackFailed {
                    error: Box::new(error),
                    rollback: Box::new(rollback),
                });
            }
            (_, Err(rollback)) => return Err(rollback),
            (outcome, Ok(())) => return Ok((outcome?, stopped_for)),
        }
    }
    Ok((outcome?, stopped_for))
}

/// A progress line shared with work on another thread.
fn progress_to(
    reporter: &Arc<dyn report::Reporter>,
    what: String,
) -> impl Fn(u64) + Send + Sync + 'static {
    let reporter = reporter.clone();
    move |done| reporter.status(&format!("{what}: {}", size(done)))
}

/// A snapshot taken.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotCreated {
    /// The project.
    pub project: String,
    /// What the sidecar records.
    #[serde(flatten)]
    pub info: SnapshotInfo,
    /// How long CouchDB and its writers were stopped, in milliseconds (`None`: nothing ran).
    pub stopped_ms: Option<u128>,
    /// The archive.
    pub path: String,
}

impl Report for SnapshotCreated {
    fn human(&self, p: &Printer) -> Result<()> {
        p.info(format!(
            "{}: snapshot {} (CHT {}, {} compressed from {} of data) in {}",
            self.project,
            self.info.label,
            self.info.cht_version,
            size(self.info.bytes),
            size(self.info.data_bytes),
            self.path
        ))?;
        p.info(format!("  {}", self.info.method))
    }
}

/// Bytes for people.
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.1} kB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// `snapshot create`: copies the data folders (every node's) with CouchDB and its writers
/// stopped only for the copy, starts them again, then compresses the copy into the archive.
pub async fn create(
    settings: &Settings,
    name: &str,
    label: Option<&str>,
) -> Result<SnapshotCreated> {
    let home = settings.home()?;
    let project = Project::load(&home, name)?;
    let _lock = project::lock(&home, name)?;
    let label = label.map_or_else(
        || archives::default_label(OffsetDateTime::now_utc()),
        str::to_string,
    );
    archives::check_free(&project, &label)?;
    let version = project.cht_version()?;
    let layout = project.layout();
    let folders = data_folders(&project)?;
    let folder = archives::folder(&project);
    fsutil::create_dir_mode(&folder, fsutil::PRIVATE_DIR)?;
    let staging = fsutil::Staging::new(&folder, &label)?;
    let copy = staging.path().to_path_buf();
    let reporter: Arc<dyn report::Reporter> =
        report::for_terminal(settings.printer.is_quiet()).into();
    let copying = progress_to(&reporter, format!("copying {}", shown(&folders)));
    let (from, to) = (folders.clone(), copy.clone());
    let (data_bytes, stopped_for) = with_data_quiet(
        settings,
        &home,
        &project,
        READY_AFTER_COPY,
        reporter.as_ref(),
        move || {
            // One running total across the folders, for one progress line.
            let mut total = 0;
            for folder in &from {
                let into = to.join(folder.name);
                std::fs::create_dir(&into).map_err(Error::io("create folder", &into))?;
                let earlier = total;
                total +=
                    fsutil::copy_tree_with(&folder.path, &into, &|done| copying(earlier + done))?;
            }
            Ok(total)
        },
    )
    .await?;
    let what = if folders.len() == 1 {
        "the data folder was"
    } else {
        "the data folders were"
    };
    let method = match stopped_for {
        Some(d) => format!(
            "consistent: {} stopped for {:.2} s while {what} copied, then started again",
            stopped_services(layout),
            d.as_secs_f64()
        ),
        None => format!("consistent: nothing was running while {what} copied"),
    };
    let info = SnapshotInfo {
        label,
        cht_version: version,
        created: OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc())
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        bytes: 0,
        data_bytes,
        method,
        couchdb_nodes: layout.nodes(),
    };
    let compressing = progress_to(
        &reporter,
        format!("compressing {} of data", size(data_bytes)),
    );
    let archived = project.clone();
    let names: Vec<&'static str> = folders.iter().map(|f| f.name).collect();
    let written = super::runtime::blocking(move || {
        archives::write(&archived, &copy, &names, info, &compressing)
    })
    .await?;
    reporter.finish();
    drop(staging);
    Ok(SnapshotCreated {
        project: name.to_string(),
        path: archives::folder(&project)
            .join(format!("{}.tar.gz", written.label))
            .display()
            .to_string(),
        stopped_ms: stopped_for.map(|d| d.as_millis()),
        info: written,
    })
}

/// The services [`with_data_quiet`] stops, for people.
fn stopped_services(layout: Layout) -> String {
    let couchdb = match layout {
        Layout::Single => "CouchDB".to_string(),
        Layout::Cluster => format!("CouchDB's {} nodes", layout.nodes()),
    };
    format!("API, Sentinel, {couchdb} and Nouveau (where it runs)")
}

/// The data folders' paths, for people.
fn shown(folders: &[DataFolder]) -> String {
    folders
        .iter()
        .map(|f| f.path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A project's snapshots.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotList {
    /// The project.
    pub project: String,
    /// Its snapshots, oldest first.
    pub snapshots: Vec<SnapshotInfo>,
}

impl Report for SnapshotList {
    fn human(&self, p: &Printer) -> Result<()> {
        if self.snapshots.is_empty() {
            return p.info(format!(
                "{} has no snapshots; take one with `cht-dev snapshot create {}`",
                self.project, self.project
            ));
        }
        let mut rows = vec![
            ["LABEL", "CHT", "CREATED", "SIZE"]
                .map(String::from)
                .to_vec(),
        ];
        rows.extend(self.snapshots.iter().map(|s| {
            vec![
                s.label.clone(),
                s.cht_version.clone(),
                s.created.clone(),
                size(s.bytes),
            ]
        }));
        for line in super::table(&rows) {
            p.data(line)?;
        }
        Ok(())
    }
}

/// `snapshot ls`.
pub fn ls(settings: &Settings, name: &str) -> Result<SnapshotList> {
    let home = settings.home()?;
    let project = Project::load(&home, name)?;
    Ok(SnapshotList {
        project: name.to_string(),
        snapshots: archives::list(&project)?,
    })
}

/// A snapshot restored or removed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotDone {
    /// The project.
    pub project: String,
    /// The snapshot.
    pub label: String,
    /// `restored` or `removed`.
    pub action: &'static str,
    /// For a restore: whether the stack was running, and is again (ready).
    pub running: bool,
}

impl Report for SnapshotDone {
    fn human(&self, p: &Printer) -> Result<()> {
        let tail = if self.running {
            "; the stack is running and ready again"
        } else {
            ""
        };
        p.info(format!(
            "{}: snapshot {} {}{tail}",
            self.project, self.label, self.action
        ))
    }
}

/// `snapshot rm`.
pub fn rm(settings: &Settings, name: &str, label: &str) -> Result<SnapshotDone> {
    let home = settings.home()?;
    let project = Project::load(&home, name)?;
    let _lock = project::lock(&home, name)?;
    archives::remove(&project, label)?;
    Ok(SnapshotDone {
        project: name.to_string(),
        label: label.to_string(),
        action: "removed",
        running: false,
    })
}

/// `snapshot restore`: unpacks the snapshot beside each data folder, then, with CouchDB
/// and its writers stopped, swaps each folder with its unpacked copy in one step; the old
/// data goes once the swaps are done. A failure before the swaps leaves the data as it
/// was; a swap that fails swaps back the ones done.
pub async fn restore(settings: &Settings, req: &RestoreRequest) -> Result<SnapshotDone> {
    let home = settings.home()?;
    let project = Project::load(&home, &req.name)?;
    let info = archives::find(&project, &req.label)?;
    let current = project.cht_version()?;
    info.restorable_into(&req.name, &current, project.layout())?;
    let folders = data_folders(&project)?;
    let question = format!(
        "restore {} into {}: replace everything in {} with the snapshot?",
        req.label,
        req.name,
        shown(&folders)
    );
    let refusal = format!(
        "snapshot restore replaces {}'s CouchDB data and needs confirmation: run it in a terminal or pass --yes",
        req.name
    );
    if !req.yes && !super::confirm_by_name(&question, &req.name, refusal)? {
        return Err(Error::NotConfirmed(format!(
            "{}'s data was not replaced (the name did not match)",
            req.name
        )));
    }
    let _lock = project::lock(&home, &req.name)?;
    // Beside each data folder, so each swap is one rename on one file system; once
    // swapped, a staging folder holds the old data and goes when dropped.
    let mut stagings = Vec::new();
    for folder in &folders {
        let parent = folder.path.parent().ok_or_else(|| Error::BrokenProject {
            name: req.name.clone(),
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
    let reporter: Arc<dyn report::Reporter> =
        report::for_terminal(settings.printer.is_quiet()).into();
    let unpacking = progress_to(&reporter, "unpacking, read".to_string());
    let targets: Vec<(&'static str, PathBuf)> = folders
        .iter()
        .zip(&stagings)
        .map(|(f, s)| (f.name, s.path().to_path_buf()))
        .collect();
    let (unpacked, label) = (project.clone(), info.label.clone());
    super::runtime::blocking(move || {
        let targets: Vec<(&str, &std::path::Path)> =
            targets.iter().map(|(n, p)| (*n, p.as_path())).collect();
        archives::extract(&unpacked, &label, &targets, &unpacking)
    })
    .await?;
    // The unpacked data goes back to the data folder's owner and mode. Where a container's
    // user owns it (CouchDB's 5984) and this user is not root, through the engine.
    let image = super::runtime::data_image(&project);
    let handovers = hand_back(&folders, &stagings);
    through_engine(settings, &req.name, image.as_deref(), &handovers).await?;
    let pairs: Vec<(PathBuf, PathBuf)> = folders
        .iter()
        .zip(&stagings)
        .map(|(f, s)| (f.path.clone(), s.path().to_path_buf()))
        .collect();
    let (_, stopped_for) = with_data_quiet(
        settings,
        &home,
        &project,
        req.timeout,
        reporter.as_ref(),
        move || exchange_all(&pairs),
    )
    .await?;
    let running = stopped_for.is_some();
    // The staging folders now hold the previous data, which may be a container user's.
    let mut disposals = Vec::new();
    for staging in &stagings {
        match std::fs::remove_dir_all(staging.path()) {
            Err(e) if owned::denied(&e) => {
                disposals.push((staging.path().to_path_buf(), owned::Change::Remove))
            }
            _ => {}
        }
    }
    if let Err(e) = through_engine(settings, &req.name, image.as_deref(), &disposals).await {
        reporter.step(&format!("the previous data was not removed: {e}"));
    }
    reporter.finish();
    drop(stagings);
    Ok(SnapshotDone {
        project: req.name.clone(),
        label: req.label.clone(),
        action: "restored",
        running,
    })
}

/// Gives each unpacked folder its data folder's mode and owner; returns the hand-overs
/// only the engine can do (a container user's folder, this user not root).
fn hand_back(
    folders: &[DataFolder],
    stagings: &[fsutil::Staging],
) -> Vec<(PathBuf, owned::Change)> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let mut handovers = Vec::new();
    for (folder, staging) in folders.iter().zip(stagings) {
        if let Ok(meta) = std::fs::metadata(&folder.path) {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let _ = std::fs::set_permissions(
                staging.path(),
                std::fs::Permissions::from_mode(meta.mode() & 0o7777),
            );
            if meta.uid() != me && me != 0 {
                handovers.push((
                    staging.path().to_path_buf(),
                    owned::Change::Own {
                        uid: meta.uid(),
                        gid: meta.gid(),
                    },
                ));
            } else {
                let _ =
                    std::os::unix::fs::chown(staging.path(), Some(meta.uid()), Some(meta.gid()));
            }
        }
    }
    handovers
}

/// Applies each change to its path through the engine, with the project's CouchDB image:
/// for what a container's user owns and this user cannot change.
async fn through_engine(
    settings: &Settings,
    name: &str,
    image: Option<&str>,
    changes: &[(PathBuf, owned::Change)],
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let image = image.ok_or_else(|| Error::BrokenProject {
        name: name.to_string(),
        reason: "its compose files name no CouchDB image to change the data folders with".into(),
    })?;
    async {
        let engine = super::runtime::connect(settings).await?;
        for (path, change) in changes {
            owned::apply_to_path(&engine, name, Some(image), path, *change).await?;
        }
        Ok(())
    }
    .await
}

/// Swaps each pair of folders; when one swap fails, swaps back those already done, so the
/// data folders are either all restored or all as they were.
fn exchange_all(pairs: &[(PathBuf, PathBuf)]) -> Result<()> {
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
mod tests {
    use super::*;

    #[test]
    fn a_failed_swap_puts_back_the_swaps_done() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = |n: &str| tmp.path().join(n);
        for (folder, file) in [("data-1", "old"), ("new-1", "new"), ("data-2", "old")] {
            std::fs::create_dir(dir(folder)).expect("mkdir");
            std::fs::write(dir(folder).join("f"), file).expect("write");
        }
        // The second staged folder is missing: its swap fails after the first one's.
        let pairs = [(dir("data-1"), dir("new-1")), (dir("data-2"), dir("new-2"))];
        assert!(exchange_all(&pairs).is_err());
        let read = |folder: &str| std::fs::read_to_string(dir(folder).join("f")).expect("read");
        assert_eq!(read("data-1"), "old");
        assert_eq!(read("new-1"), "new");
        assert_eq!(read("data-2"), "old");
        std::fs::create_dir(dir("new-2")).expect("mkdir");
        std::fs::write(dir("new-2").join("f"), "new").expect("write");
        exchange_all(&pairs).expect("swaps");
        assert_eq!(read("data-1"), "new");
        assert_eq!(read("data-2"), "new");
    }
}
