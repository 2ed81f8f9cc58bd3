//! `cht-dev upgrade`: move a project to another CHT release, keeping its data, and roll
//! back to the previous files and containers if the new release does not come up.

use std::cell::RefCell;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::printer::{Printer, Report};
use crate::progress;
use crate::project::{self, Project, journal, upgrade};
use crate::settings::Settings;
use crate::stack::images::PullPolicy;
use crate::stack::quiesce::Quiesced;
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

/// Runs `upgrade`. Everything is rendered and checked before any file is written; once
/// files are written, every failure (the new release not coming up, the engine going
/// away, Ctrl-C) puts the previous files back.
pub async fn run(settings: &Settings, req: &UpgradeRequest) -> Result<Upgraded> {
    let home = settings.home()?;
    let project = Project::load(&home, &req.name)?;
    let _lock = project::lock(&home, &req.name)?;
    // A full disk fails the plan's check (it writes the new files to a staging folder
    // first) or the write, each of which leaves the files as they were.
    let needed = upgrade::space_needed(&project);
    let full = |e| fsutil::when_full(e, &project.dir, needed, "write the new release's files");
    let plan = RefCell::new(upgrade::plan(&project, &req.version, req.force).map_err(full)?);
    let journal = journal::Open::begin(&project, "upgrade")?;
    let reporter = progress::for_terminal(settings.printer.is_quiet());
    let opts = UpOptions {
        pull: req.pull,
        timeout: req.timeout,
        wait: true,
    };
    let result = super::runtime::interruptible(async {
        let engine = settings.engine().await?;
        // The upgrade service's compose must not read the files half-way through: it
        // stops first, and `up` starts it again last. Each step is in the journal first.
        journal.update(|j| {
            j.held = Some(Quiesced {
                upgrade_paused: true,
                ..Quiesced::default()
            });
        })?;
        teardown::pause_upgrade_service(&engine, &project.name, reporter.as_ref()).await?;
        journal.update(|j| j.files = Some(plan.borrow().journal_files()))?;
        let written = plan.borrow_mut().write(&project);
        crate::faults::point("files-written");
        journal.update(|j| j.files = Some(plan.borrow().journal_files()))?;
        let mut notes = written.map_err(full)?;
        let profile = super::profile_for_up(&home, &project, false, reporter.as_ref())?;
        let target = project.target();
        match stack_up::up(&engine, &target, &profile, &opts, reporter.as_ref()).await {
            Ok(outcome) => {
                notes.extend(outcome.notes);
                Ok(Ok((outcome.services, notes)))
            }
            Err(e) => {
                // Roll back: the previous files, then the previous containers.
                if let Err(undo) = plan.borrow_mut().undo() {
                    return Err(e.with_rollback(Err(undo)));
                }
                let back = UpOptions {
                    pull: PullPolicy::Never,
                    ..opts.clone()
                };
                let back = stack_up::up(&engine, &target, &profile, &back, reporter.as_ref()).await;
                Ok(Err((e, back.is_ok())))
            }
        }
    })
    .await;
    reporter.finish();
    let mut plan = plan.into_inner();
    let outcome = match result {
        Ok(outcome) => outcome,
        // Interrupted, or the engine failed outside `up`: the previous files again (the
        // upgrade service, if stopped, is for the next command to start).
        Err(e) => {
            let undone = plan.undo();
            if undone.is_ok() {
                journal.update(|j| j.files = None)?;
            }
            return Err(e.with_rollback(undone));
        }
    };
    // Kept, or put back by the rollback, whose `up` started the upgrade service again
    // (unless it failed: then that is left for the next command).
    let started = !matches!(outcome, Err((_, false)));
    journal.update(|j| {
        j.files = None;
        if started {
            j.held = None;
        }
    })?;
    match outcome {
        Ok((services, notes)) => Ok(Upgraded {
            project: project.name,
            from: plan.current,
            to: plan.target.version,
            services,
            notes,
        }),
        Err((e, restored)) => Err(Error::UpgradeFailed {
            project: project.name.clone(),
            version: plan.target.version.to_string(),
            previous: plan.current,
            restored,
            cause: Box::new(e),
        }),
    }
}
