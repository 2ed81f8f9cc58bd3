//! `cht-dev snapshot`: consistent copies of a project's CouchDB data (Nouveau's index
//! included, as it lives in the data folder), listed, restored and removed.

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::home::Home;
use crate::printer::{Printer, Report};
use crate::progress;
use crate::project::journal::{self, Swap};
use crate::project::layout::DataFolder;
use crate::project::snapshots::{self, Finished, Held, RestoreStaging, SnapshotInfo, Writer};
use crate::project::{self, Project};
use crate::settings::Settings;
use crate::stack::load::load;
use crate::stack::owned;
use crate::stack::quiesce::{Hold, Quiesced, Record, quiesce, resume};
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

/// How long `snapshot create` waits for the stack to be ready again after the copy.
const READY_AFTER_COPY: Duration = Duration::from_secs(300);

/// Waits until the project serves again after its services were started again.
async fn wait_ready_again(
    settings: &Settings,
    home: &Home,
    project: &Project,
    timeout: Duration,
    reporter: &dyn progress::Reporter,
) -> Result<()> {
    let target = project.target();
    let stacks = load(&target)?;
    let profile = super::profile_of(home, project)?;
    super::runtime::interruptible(async {
        let engine = settings.engine().await?;
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

/// Takes the data folder out of use (when the project runs) as `hold` says, runs `work`
/// on a thread of its own, and always lets run again what was held, Ctrl-C included (it
/// ends `work`'s wait at once, and a second Ctrl-C is ignored while the services start);
/// returns `work`'s result and how the services were held (`None` when nothing ran). What
/// is held is in `journal` before the engine is asked, and out of it once running again.
#[allow(clippy::too_many_arguments)]
async fn with_data_quiet<T: Send + 'static>(
    settings: &Settings,
    home: &Home,
    project: &Project,
    journal: &journal::Open,
    hold: Hold,
    ready_within: Duration,
    reporter: &dyn progress::Reporter,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<(T, Option<Held>)> {
    let profile = super::profile_of(home, project)?;
    let record = Record::new(|held: &Quiesced| journal.update(|j| j.held = Some(held.clone())));
    let stopped_at = Cell::new(None);
    let outcome = super::runtime::interruptible(async {
        let engine = settings.engine().await?;
        quiesce(
            &engine,
            &project.target(),
            &profile,
            hold,
            &record,
            reporter,
        )
        .await?;
        stopped_at.set(Some(Instant::now()));
        crate::faults::point("held");
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Error::engine("copy the data folder", e.to_string()))?
    })
    .await;
    let quiesced = record.into_inner();
    let held = stopped_at.get().map(|t| t.elapsed()).and_then(|took| {
        if !quiesced.frozen.is_empty() {
            Some(Held::Paused(took))
        } else {
            (!quiesced.stopped.is_empty()).then_some(Held::Stopped(took))
        }
    });
    if quiesced.held_any() || quiesced.upgrade_paused {
        let resumed = async {
            let engine = settings.engine().await?;
            resume(&engine, &project.target(), &profile, &quiesced).await?;
            journal.update(|j| j.held = None)?;
            // Serving again before saying anything else, failure included (not after
            // Ctrl-C: the user asked to stop).
            if !matches!(outcome, Err(Error::Interrupted)) && !quiesced.stopped.is_empty() {
                wait_ready_again(settings, home, project, ready_within, reporter).await?;
            }
            Ok(())
        }
        .await;
        // A failure to start again never hides the first failure: it is attached.
        return match outcome {
            Err(e) => Err(e.with_rollback(resumed)),
            Ok(done) => resumed.map(|()| (done, held)),
        };
    }
    Ok((outcome?, held))
}

/// A progress line shared with work on another thread: the bytes so far and the rate.
fn progress_to(
    reporter: &Arc<dyn progress::Reporter>,
    what: String,
) -> impl Fn(u64) + Send + Sync + 'static {
    let reporter = reporter.clone();
    let started = Instant::now();
    move |done| {
        let seconds = started.elapsed().as_secs_f64().max(0.001);
        // Bytes per second fit f64 exactly enough for a progress line.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rate = (done as f64 / seconds) as u64;
        reporter.status(&format!("{what}: {} ({}/s)", size(done), size(rate)));
    }
}

/// The end of an archive, running on a thread of its own; dropped, it waits for the
/// thread, so the hidden archive is removed before the command ends.
struct Finishing(Option<std::thread::JoinHandle<Result<Finished>>>);

impl Finishing {
    /// Runs `end` on a new thread.
    fn start(end: impl FnOnce() -> Result<Finished> + Send + 'static) -> Finishing {
        Finishing(Some(std::thread::spawn(end)))
    }

    /// Waits for the end.
    fn join(mut self) -> Result<Finished> {
        let thread = self.0.take();
        thread
            .ok_or_else(|| Error::engine("end the archive", "it has already ended"))?
            .join()
            .map_err(|_| Error::engine("end the archive", "its thread failed"))?
    }
}

impl Drop for Finishing {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            let _ = thread.join();
        }
    }
}

/// A snapshot taken.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotCreated {
    /// The project.
    pub project: String,
    /// What the sidecar records.
    #[serde(flatten)]
    pub info: SnapshotInfo,
    /// How long CouchDB and its writers were paused (or stopped), in milliseconds
    /// (`None`: nothing ran).
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
    fsutil::human_bytes(bytes)
}

/// `snapshot create`: archives the data folders (every node's) while the services run,
/// stops CouchDB and its writers only to catch up with what changed meanwhile, starts them
/// again, then ends the archive (see `project::snapshots::writer`).
pub async fn create(
    settings: &Settings,
    name: &str,
    label: Option<&str>,
    level: Option<i32>,
) -> Result<SnapshotCreated> {
    let home = settings.home()?;
    let project = Project::load(&home, name)?;
    let _lock = project::lock(&home, name)?;
    let label = label.map_or_else(
        || snapshots::default_label(OffsetDateTime::now_utc()),
        str::to_string,
    );
    snapshots::check_free(&project, &label)?;
    let version = project.cht_version()?;
    let layout = project.layout();
    let sources = snapshots::sources(&project)?;
    let data: u64 = sources.iter().map(|s| snapshots::data_size(&s.dir)).sum();
    let folder = snapshots::folder(&project);
    fsutil::create_dir_mode(&folder, fsutil::PRIVATE_DIR)?;
    // The archive is rarely more than half the data (CouchDB's JSON compresses 2 to 4
    // times); a disk that fills anyway fails the write, which leaves nothing behind and
    // says how much the data could need at most.
    snapshots::check_space(&folder, data / 2, "write the snapshot")?;
    let full = |e| fsutil::when_full(e, &folder, data, "write the snapshot");
    let mut writer = Writer::create(&project, &label, level.unwrap_or(snapshots::DEFAULT_LEVEL))?;
    let reporter: Arc<dyn progress::Reporter> =
        progress::for_terminal(settings.printer.is_quiet()).into();
    let reading = progress_to(&reporter, format!("archiving {}", size(data)));
    let live = sources.clone();
    let mut writer = super::runtime::blocking(move || {
        writer.take_live(&live, &reading)?;
        crate::faults::point("first-pass-done");
        Ok(writer)
    })
    .await
    .map_err(full)?;
    let ending = progress_to(&reporter, "archiving what changed".to_string());
    let journal = journal::Open::begin(&project, "snapshot create")?;
    let ((finishing, caught), held) = with_data_quiet(
        settings,
        &home,
        &project,
        &journal,
        Hold::Freeze,
        READY_AFTER_COPY,
        reporter.as_ref(),
        move || {
            let caught = writer.catch_up(&sources)?;
            // The archive ends while the services start again.
            let finishing = Finishing::start(move || writer.finish(&ending));
            Ok((finishing, caught))
        },
    )
    .await
    .map_err(full)?;
    let finished = super::runtime::blocking(move || finishing.join())
        .await
        .map_err(full)?;
    let info = snapshots::info(
        label,
        version,
        layout,
        caught.data,
        snapshots::method(layout, held, &caught),
        OffsetDateTime::now_utc(),
    );
    let written = finished.publish(&project, info)?;
    reporter.finish();
    Ok(SnapshotCreated {
        project: name.to_string(),
        path: snapshots::archive_of(&project, &written)
            .display()
            .to_string(),
        stopped_ms: held.map(|h| h.took().as_millis()),
        info: written,
    })
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
    /// Snapshots whose record cannot be used (damaged, or not cht-dev's), with why.
    pub damaged: Vec<snapshots::Damaged>,
}

impl Report for SnapshotList {
    fn human(&self, p: &Printer) -> Result<()> {
        for bad in &self.damaged {
            p.warn(&format!(
                "warning: snapshot {} cannot be restored: {}; remove it with `cht-dev snapshot rm {} {}`",
                bad.label,
                crate::printer::printable(&bad.reason),
                crate::printer::shell_word(&self.project),
                bad.label
            ));
        }
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
    let (snapshots, damaged) = snapshots::scan(&project)?;
    Ok(SnapshotList {
        project: name.to_string(),
        snapshots,
        damaged,
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
    snapshots::remove(&project, label)?;
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
    let (_, folders) = snapshots::restorable(&project, &req.label)?;
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
    // Checked again under the lock, which is not held while the user answers: another
    // command may have removed the snapshot meanwhile.
    let (info, staging) = RestoreStaging::prepare(&project, &req.label)?;
    staging.check_space(&info)?;
    let reporter: Arc<dyn progress::Reporter> =
        progress::for_terminal(settings.printer.is_quiet()).into();
    let unpacking = progress_to(&reporter, "unpacking, read".to_string());
    let (unpacked, targets) = (project.clone(), staging.targets());
    // A disk that fills all the same (another writer) fails here, before any swap.
    let (needed, beside) = (
        info.data_bytes,
        targets
            .first()
            .map_or_else(|| project.dir.clone(), |(_, p)| p.clone()),
    );
    super::runtime::blocking(move || {
        let targets: Vec<(&str, &std::path::Path)> =
            targets.iter().map(|(n, p)| (*n, p.as_path())).collect();
        snapshots::extract(&unpacked, &info, &targets, &unpacking)
    })
    .await
    .map_err(|e| fsutil::when_full(e, &beside, needed, "unpack the snapshot"))?;
    // The unpacked data goes back to the data folder's owner and mode. Where a container's
    // user owns it (CouchDB's 5984) and this user is not root, through the engine.
    let image = super::runtime::data_image(&project);
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let handovers: Vec<(PathBuf, owned::Change)> = staging
        .hand_back(me)
        .into_iter()
        .map(|(path, uid, gid)| (path, owned::Change::Own { uid, gid }))
        .collect();
    through_engine(settings, &req.name, image.as_deref(), &handovers).await?;
    let pairs = staging.pairs();
    let journal = Arc::new(journal::Open::begin(&project, "snapshot restore")?);
    let swapping = journal.clone();
    let (_, held) = with_data_quiet(
        settings,
        &home,
        &project,
        &journal,
        Hold::Stop,
        req.timeout,
        reporter.as_ref(),
        move || {
            let swaps = pairs
                .iter()
                .map(|(data, staged)| Swap::of(data, staged))
                .collect::<Result<Vec<_>>>()?;
            swapping.update(|j| j.swaps = swaps.clone())?;
            let swapped = snapshots::exchange_all(&swaps);
            // All swapped, or all swapped back: nothing is half done (a swap back that
            // failed stays in the journal, for the next command).
            if swapped.is_ok() || snapshots::undo_swaps(&swaps).is_ok() {
                swapping.update(|j| j.swaps.clear())?;
            }
            swapped
        },
    )
    .await?;
    // The unpacking folders now hold the previous data, which may be a container user's.
    let disposals: Vec<(PathBuf, owned::Change)> = staging
        .dispose()
        .into_iter()
        .map(|path| (path, owned::Change::Remove))
        .collect();
    let disposed = through_engine(settings, &req.name, image.as_deref(), &disposals).await;
    reporter.finish();
    // The restore itself is done; what is left is the sweep's to remove, through the
    // engine, at the next `up` (a container's user owns it).
    if let Err(e) = disposed {
        settings.printer.warn(&format!(
            "the previous data was not removed ({e}); the next `cht-dev up {}` removes it",
            req.name
        ));
    }
    drop(staging);
    Ok(SnapshotDone {
        project: req.name.clone(),
        label: req.label.clone(),
        action: "restored",
        running: held.is_some(),
    })
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
    let engine = settings.engine().await?;
    for (path, change) in changes {
        owned::apply_to_path(&engine, name, Some(image), path, *change).await?;
    }
    Ok(())
}
