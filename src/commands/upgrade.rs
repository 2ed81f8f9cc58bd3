//! `cht-dev upgrade`: move a project to another CHT release, keeping its data, and roll
//! back to the previous files and containers if the new release does not come up.

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Duration;

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::printer::{Printer, Report};
use crate::project::render::{self, Marker, RenderInput};
use crate::project::{self, Project, backups, versions};
use crate::report;
use crate::settings::Settings;
use crate::stack::images::PullPolicy;
use crate::stack::load;
use crate::stack::status::ServiceState;
use crate::stack::teardown;
use crate::stack::up::{self as stack_up, UpOptions};

/// What `upgrade` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// The project.
    pub name: String,
    /// The target release.
    pub version: String,
    /// Allow going to an older release.
    pub force: bool,
    /// Pull policy for the new images.
    pub pull: PullPolicy,
    /// Readiness timeout.
    pub timeout: Duration,
}

/// Replaces a file's contents atomically.
fn replace(path: &std::path::Path, contents: &str) -> Result<()> {
    fsutil::replace(path, contents.as_bytes(), fsutil::PUBLIC)
}

/// A project moved to another release.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Upgraded {
    /// The project.
    pub project: String,
    /// The release it ran.
    pub from: String,
    /// The release it runs now.
    pub to: &'static str,
    /// Each service's state.
    pub services: Vec<ServiceState>,
    /// One-line notes (backups kept, files moved, hashes unknown).
    pub notes: Vec<String>,
}

impl Report for Upgraded {
    fn human(&self, p: &Printer) -> Result<()> {
        for note in &self.notes {
            p.warn(&format!("note: {note}"));
        }
        p.info(format!(
            "{}: upgraded from CHT {} to {} (data kept)",
            self.project, self.from, self.to
        ))
    }
}

/// The project files `upgrade` rewrites, kept so every failure puts them back.
#[derive(Debug, Default)]
struct Rewrite {
    /// Each file rewritten and its contents before.
    previous: Vec<(PathBuf, String)>,
    /// The backup folder this run made (for files that were not cht-dev's own).
    backup: Option<PathBuf>,
    /// Whether any project file may have changed.
    written: bool,
}

impl Rewrite {
    /// Puts every file back as it was and removes this run's backup folder (its copies
    /// are the files just restored); a no-op when nothing was written.
    fn undo(&mut self) -> Result<()> {
        if !std::mem::take(&mut self.written) {
            return Ok(());
        }
        for (path, old) in &self.previous {
            replace(path, old)?;
        }
        if let Some(dir) = self.backup.take() {
            std::fs::remove_dir_all(&dir).map_err(Error::io("remove", &dir))?;
        }
        Ok(())
    }
}

/// Checks rendered files the way `up` will read them (parsed, every variable filled in
/// from the project's settings), in a staging folder inside the project, before any
/// project file is touched.
fn check_rendered(project: &Project, files: &[render::RenderedFile]) -> Result<()> {
    let staging = fsutil::Staging::new(&project.dir, "upgrade")?;
    let root = staging.path();
    fsutil::create_dir_mode(&root.join("compose"), fsutil::SHARED_DIR)?;
    for file in files.iter().filter(|f| f.path != render::UPGRADE_FILE) {
        fsutil::write_new(
            &root.join(file.path),
            file.contents.as_bytes(),
            fsutil::PUBLIC,
        )?;
    }
    let upgrade = project.path(render::UPGRADE_FILE);
    std::fs::copy(&upgrade, root.join(render::UPGRADE_FILE))
        .map_err(Error::io("copy", &upgrade))?;
    load::load_in(&project.target(), root).map(|_| ())
}

/// The files of release `target` for `project`, rendered and checked as `up` would load
/// them before anything is written, and the record of the files they replace.
fn planned_files(
    project: &Project,
    target: versions::ChtVersion,
) -> Result<(Vec<render::RenderedFile>, Rewrite)> {
    // Keep the registry the project already uses (checked like --image-registry).
    let registry = project.image_registry()?;
    let files = render::render(&RenderInput {
        project: &project.name,
        version: target,
        registry: registry.as_deref(),
        project_dir: &project.dir,
        layout: project.layout(),
    })?;
    check_rendered(project, &files)?;
    let mut rewrite = Rewrite::default();
    for file in files.iter().filter(|f| f.path != render::UPGRADE_FILE) {
        let path = project.path(file.path);
        let old = std::fs::read_to_string(&path).map_err(Error::io("read", &path))?;
        rewrite.previous.push((path, old));
    }
    Ok((files, rewrite))
}

/// Runs `upgrade`. Everything is rendered and checked before any file is written; once
/// files are written, every failure (the new release not coming up, the engine going
/// away, Ctrl-C) puts the previous files back.
pub async fn run(settings: &Settings, req: &UpgradeRequest) -> Result<Upgraded> {
    let home = settings.home()?;
    let project = Project::load(&home, &req.name)?;
    let target = versions::find(&req.version)?;
    let _lock = project::lock(&home, &req.name)?;
    let current = project.cht_version()?;
    if versions::order(target.version) < versions::order(&current) && !req.force {
        return Err(Error::Downgrade {
            project: req.name.clone(),
            current,
            target: target.version.to_string(),
        });
    }
    let (files, rewrite) = planned_files(&project, target)?;
    let rewritten: Vec<&render::RenderedFile> = files
        .iter()
        .filter(|f| f.path != render::UPGRADE_FILE)
        .collect();
    let rewrite = RefCell::new(rewrite);
    let p = &settings.printer;
    let reporter = report::for_terminal(p.is_quiet());
    let opts = UpOptions {
        pull: req.pull,
        timeout: req.timeout,
        wait: true,
    };
    let result = super::runtime::interruptible(async {
        let engine = super::runtime::connect(settings).await?;
        // The upgrade service's compose must not read the files half-way through: it
        // stops first, and `up` starts it again last.
        teardown::pause_upgrade_service(&engine, &project.name, reporter.as_ref()).await?;
        let mut notes = write_release(&project, &current, &rewritten, &mut rewrite.borrow_mut())?;
        let profile = super::profile_for_up(&home, &project, false, reporter.as_ref())?;
        match stack_up::up(
            &engine,
            &project.target(),
            &profile,
            &opts,
            reporter.as_ref(),
        )
        .await
        {
            Ok(outcome) => {
                notes.extend(outcome.notes);
                Ok(Ok((outcome.services, notes)))
            }
            Err(e) => {
                // Roll back: the previous files, then the previous containers.
                if let Err(undo) = rewrite.borrow_mut().undo() {
                    return Err(Error::RollbackFailed {
                        error: Box::new(e),
                        rollback: Box::new(undo),
                    });
                }
                let back = stack_up::up(
                    &engine,
                    &project.target(),
                    &profile,
                    &UpOptions {
                        pull: PullPolicy::Never,
                        ..opts.clone()
                    },
                    reporter.as_ref(),
                )
                .await;
                Ok(Err((e, back.is_ok())))
            }
        }
    })
    .await;
    reporter.finish();
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e) => {
            // Interrupted, or the engine failed outside `up`: the previous files again.
            return Err(match rewrite.borrow_mut().undo() {
                Ok(()) => e,
                Err(undo) => Error::RollbackFailed {
                    error: Box::new(e),
                    rollback: Box::new(undo),
                },
            });
        }
    };
    match outcome {
        Ok((services, notes)) => Ok(Upgraded {
            project: project.name,
            from: current,
            to: target.version,
            services,
            notes,
        }),
        Err((e, restored)) => Err(Error::UpgradeFailed {
            project: project.name.clone(),
            version: target.version.to_string(),
            previous: current,
            restored,
            cause: Box::new(e),
        }),
    }
}

/// Writes the new release's files into the project: legacy copies out of `compose/`, a
/// backup of each file that was not cht-dev's own, then the files themselves. Records
/// all it does in `rewrite`; on a failure part-way, undoes it. Returns one note per
/// backup or move.
fn write_release(
    project: &Project,
    current: &str,
    files: &[&render::RenderedFile],
    rewrite: &mut Rewrite,
) -> Result<Vec<String>> {
    rewrite.written = true;
    let result = (|| {
        let mut notes = super::tidy_compose_folder(project)?;
        for (file, (path, old)) in files.iter().zip(&rewrite.previous) {
            if render::marker(old) != Marker::Unmodified {
                // Edited by the user, or rewritten by the upgrade service: keep a copy,
                // outside compose/ where the upgrade service would run it.
                let dir = match &rewrite.backup {
                    Some(dir) => dir.clone(),
                    None => {
                        let dir = backups::new_folder(project, current, OffsetDateTime::now_utc())?;
                        rewrite.backup = Some(dir.clone());
                        dir
                    }
                };
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let backup = backups::keep(&dir, &name, old)?;
                notes.push(format!(
                    "{} was not cht-dev's own; kept it as {}",
                    path.display(),
                    backup.display()
                ));
            }
            replace(path, &file.contents)?;
        }
        Ok(notes)
    })();
    match result {
        Err(e) => Err(match rewrite.undo() {
            Ok(()) => e,
            Err(undo) => Error::RollbackFailed {
                error: Box::new(e),
                rollback: Box::new(undo),
            },
        }),
        ok => ok,
    }
}
