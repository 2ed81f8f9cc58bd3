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
use crate::project::{self, Project, versions};
use crate::report;
use crate::settings::Settings;
use crate::stack::load::load;
use crate::stack::readiness::wait_ready;
use crate::stack::snapshot::{Quiesced, quiesce, resume};
use crate::tls::CaFiles;

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

/// The project's CouchDB data folder (an adopted project's may lie outside it).
fn data_folder(project: &Project) -> PathBuf {
    project
        .env
        .get("COUCHDB_DATA")
        .filter(|d| !d.is_empty())
        .map_or_else(|| project.path("couchdb"), PathBuf::from)
}

/// How long `snapshot create` waits for the stack to be ready again after the copy.
const READY_AFTER_COPY: Duration = Duration::from_secs(300);

/// Waits until the project serves again after its services were started again.
fn wait_ready_again(
    settings: &Settings,
    home: &Home,
    project: &Project,
    timeout: Duration,
    reporter: &dyn report::Reporter,
) -> Result<()> {
    let stacks = load(project)?;
    let ca = CaFiles::of(home).cert;
    super::engine::block_on(async {
        let engine = super::engine::connect(settings).await?;
        wait_ready(&engine, project, &ca, &stacks, timeout, reporter).await
    })
}

/// Takes the data folder out of use (when the project runs), runs `work` on a thread of
/// its own, and always starts again what was stopped, Ctrl-C included (it ends `work`'s
/// wait at once, and a second Ctrl-C is ignored while the services start); returns
/// `work`'s result and how long the services were stopped (`None` when nothing ran).
fn with_data_quiet<T: Send + 'static>(
    settings: &Settings,
    home: &Home,
    project: &Project,
    ready_within: Duration,
    reporter: &dyn report::Reporter,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<(T, Option<Duration>)> {
    let record = Mutex::new(Quiesced::default());
    let stopped_at = Cell::new(None);
    let outcome = super::engine::block_on(async {
        let engine = super::engine::connect(settings).await?;
        quiesce(&engine, project, &record, reporter).await?;
        stopped_at.set(Some(Instant::now()));
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Error::engine("copy the data folder", e.to_string()))?
    });
    let quiesced = record.into_inner().unwrap_or_default();
    let stopped_for = (!quiesced.stopped.is_empty())
        .then(|| stopped_at.get().map(|t| t.elapsed()))
        .flatten();
    if !quiesced.stopped.is_empty() || quiesced.upgrade_paused {
        super::engine::block_on_to_end(async {
            let engine = super::engine::connect(settings).await?;
            resume(&engine, project, &quiesced).await
        })?;
        // Serving again before saying anything else, failure included (not after Ctrl-C:
        // the user asked to stop).
        if !matches!(outcome, Err(Error::Interrupted)) && !quiesced.stopped.is_empty() {
            wait_ready_again(settings, home, project, ready_within, reporter)?;
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

/// `snapshot create`: copies the data folder with CouchDB and its writers stopped only for
/// the copy, starts them again, then compresses the copy into the archive.
pub fn create(settings: &Settings, name: &str, label: Option<&str>) -> Result<SnapshotCreated> {
    let home = settings.home()?;
    let project = Project::load(&home, name)?;
    let _lock = project::lock(&home, name)?;
    let label = label.map_or_else(
        || archives::default_label(OffsetDateTime::now_utc()),
        str::to_string,
    );
    archives::check_free(&project, &label)?;
    let version = project.cht_version()?;
    let data = data_folder(&project);
    if !data.is_dir() {
        return Err(Error::BrokenProject {
            name: name.to_string(),
            reason: format!("its CouchDB data folder {} does not exist", data.display()),
        });
    }
    let folder = archives::folder(&project);
    fsutil::create_dir_mode(&folder, fsutil::PRIVATE_DIR)?;
    let staging = fsutil::Staging::new(&folder, &label)?;
    let copy = staging.path().join("data");
    std::fs::create_dir(&copy).map_err(Error::io("create folder", &copy))?;
    let reporter: Arc<dyn report::Reporter> =
        report::for_terminal(settings.printer.is_quiet()).into();
    let copying = progress_to(&reporter, format!("copying {}", data.display()));
    let (from, to) = (data.clone(), copy.clone());
    let (data_bytes, stopped_for) = with_data_quiet(
        settings,
        &home,
        &project,
        READY_AFTER_COPY,
        reporter.as_ref(),
        move || fsutil::copy_tree_with(&from, &to, &copying),
    )?;
    let method = match stopped_for {
        Some(d) => format!(
            "consistent: {} stopped for {:.2} s while the data folder was copied, then started again",
            stopped_services(),
            d.as_secs_f64()
        ),
        None => "consistent: nothing was running while the data folder was copied".to_string(),
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
    };
    let compressing = progress_to(
        &reporter,
        format!("compressing {} of data", size(data_bytes)),
    );
    let archived = project.clone();
    let written =
        super::engine::blocking(move || archives::write(&archived, &copy, info, &compressing))?;
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
fn stopped_services() -> String {
    crate::stack::snapshot::QUIET
        .iter()
        .flat_map(|g| g.iter())
        .copied()
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

/// `snapshot restore`: unpacks the snapshot beside the data folder, then, with CouchDB and
/// its writers stopped, swaps the two folders in one step; the old data goes once the swap
/// is done. A failure before the swap leaves the data as it was.
pub fn restore(settings: &Settings, req: &RestoreRequest) -> Result<SnapshotDone> {
    let home = settings.home()?;
    let project = Project::load(&home, &req.name)?;
    let info = archives::find(&project, &req.label)?;
    let current = project.cht_version()?;
    if versions::order(&info.cht_version) > versions::order(&current) {
        return Err(Error::BadOption(format!(
            "snapshot {} holds CHT {} data, newer than {}'s {current}: upgrade the project first (`cht-dev upgrade {} --cht-version {}`)",
            info.label, info.cht_version, req.name, req.name, info.cht_version
        )));
    }
    let data = data_folder(&project);
    let question = format!(
        "restore {} into {}: replace everything in {} with the snapshot?",
        req.label,
        req.name,
        data.display()
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
    let parent = data.parent().ok_or_else(|| Error::BrokenProject {
        name: req.name.clone(),
        reason: format!("its CouchDB data folder {} has no parent", data.display()),
    })?;
    // Beside the data folder, so the swap is one rename on one file system; once swapped,
    // the staging folder holds the old data and goes when dropped.
    let staging = fsutil::Staging::new(parent, "restore")?;
    let reporter: Arc<dyn report::Reporter> =
        report::for_terminal(settings.printer.is_quiet()).into();
    let unpacking = progress_to(&reporter, "unpacking, read".to_string());
    let (unpacked, label, into) = (
        project.clone(),
        info.label.clone(),
        staging.path().to_path_buf(),
    );
    super::engine::blocking(move || archives::extract(&unpacked, &label, &into, &unpacking))?;
    if let Ok(meta) = std::fs::metadata(&data) {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let _ = std::fs::set_permissions(
            staging.path(),
            std::fs::Permissions::from_mode(meta.mode() & 0o7777),
        );
        let _ = std::os::unix::fs::chown(staging.path(), Some(meta.uid()), Some(meta.gid()));
    }
    let (from, to) = (data.clone(), staging.path().to_path_buf());
    let (_, stopped_for) = with_data_quiet(
        settings,
        &home,
        &project,
        req.timeout,
        reporter.as_ref(),
        move || fsutil::exchange(&from, &to),
    )?;
    let running = stopped_for.is_some();
    reporter.finish();
    drop(staging);
    Ok(SnapshotDone {
        project: req.name.clone(),
        label: req.label.clone(),
        action: "restored",
        running,
    })
}
