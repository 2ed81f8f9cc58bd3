//! `cht-dev upgrade`: move a project to another CHT release, keeping its data, and roll
//! back to the previous files and containers if the new release does not come up.

use std::time::Duration;

use time::OffsetDateTime;

use crate::docker::Engine;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::printer::{Printer, Report};
use crate::project::render::{self, Marker, RenderInput};
use crate::project::{self, Project, backups, versions};
use crate::report;
use crate::settings::Settings;
use crate::stack::images::PullPolicy;
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

/// `a.b.c` as numbers, for ordering releases.
fn semver(v: &str) -> (u64, u64, u64) {
    let mut parts = v.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
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

/// Runs `upgrade`.
pub fn run(settings: &Settings, req: &UpgradeRequest) -> Result<Upgraded> {
    let home = settings.home()?;
    let project = Project::load(&home, &req.name)?;
    let target = versions::find(&req.version)?;
    let _lock = project::lock(&home, &req.name)?;
    let current = project.cht_version()?;
    if semver(target.version) < semver(&current) && !req.force {
        return Err(Error::BadOption(format!(
            "{} runs {current}; {} is older (a downgrade can break CouchDB data): pass --force to do it anyway",
            req.name, target.version
        )));
    }
    // Keep the registry the project already uses.
    let registry = project.image_registry()?;
    let files = render::render(&RenderInput {
        project: &project.name,
        version: target,
        registry: registry.as_deref(),
        project_dir: &project.dir,
    })?;
    let p = &settings.printer;
    let mut notes = super::tidy_compose_folder(&project)?;
    let mut previous = Vec::new();
    let mut folder = None;
    for file in files.iter().filter(|f| f.path != render::UPGRADE_FILE) {
        let path = project.path(file.path);
        let old = std::fs::read_to_string(&path).map_err(Error::io("read", &path))?;
        if render::marker(&old) != Marker::Unmodified {
            // Edited by the user, or rewritten by the upgrade service: keep a copy, outside
            // compose/ where the upgrade service would run it.
            let dir = match &folder {
                Some(dir) => dir,
                None => folder.insert(backups::new_folder(
                    &project,
                    &current,
                    OffsetDateTime::now_utc(),
                )?),
            };
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let backup = backups::keep(dir, &name, &old)?;
            notes.push(format!(
                "{} was not cht-dev's own; kept it as {}",
                path.display(),
                backup.display()
            ));
        }
        previous.push((path, old));
    }
    let reporter = report::for_terminal(p.is_quiet());
    let opts = UpOptions {
        pull: req.pull,
        timeout: req.timeout,
        wait: true,
        cert_replaced: false,
    };
    let outcome = super::engine::block_on(async {
        let engine = Engine::connect().await?;
        // The upgrade service's compose must not read the files half-way through: it
        // stops first, and `up` starts it again last.
        teardown::pause_upgrade_service(&engine, &project.name, reporter.as_ref()).await?;
        for (file, (path, _)) in files
            .iter()
            .filter(|f| f.path != render::UPGRADE_FILE)
            .zip(&previous)
        {
            if let Err(e) = replace(path, &file.contents) {
                // Never half the new release: the previous files, all of them, again.
                for (path, old) in &previous {
                    let _ = replace(path, old);
                }
                return Err(e);
            }
        }
        match stack_up::up(&engine, &home, &project, &opts, reporter.as_ref()).await {
            Ok(outcome) => Ok(Ok(outcome)),
            Err(e) => {
                // Roll back: the previous files, then the previous containers.
                for (path, old) in &previous {
                    replace(path, old)?;
                }
                let back = stack_up::up(
                    &engine,
                    &home,
                    &project,
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
    })?;
    reporter.finish();
    match outcome {
        Ok(outcome) => {
            notes.extend(outcome.notes);
            Ok(Upgraded {
                project: project.name,
                from: current,
                to: target.version,
                services: outcome.services,
                notes,
            })
        }
        Err((e, restored)) => Err(Error::UpgradeFailed {
            project: project.name.clone(),
            version: target.version.to_string(),
            previous: current,
            restored,
            cause: Box::new(e),
        }),
    }
}
