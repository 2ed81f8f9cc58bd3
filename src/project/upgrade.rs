//! Moving a project's files to another CHT release as one transaction: decided and
//! rendered before anything is written (`plan`), then written with a record of what they
//! replace (`Plan::write`), so that every failure after it, the new release not coming
//! up included, puts the previous files back (`Plan::undo`). The command puts the engine
//! between writing and keeping.

use std::path::PathBuf;

use time::OffsetDateTime;

use super::journal::Files;
use super::render::{self, Marker, RenderInput, RenderedFile};
use super::versions::{self, ChtVersion};
use super::{Project, backups};
use crate::error::{Error, Result};
use crate::fsutil;

/// An upgrade decided, its files rendered and checked; nothing written yet.
#[derive(Debug)]
pub struct Plan {
    /// The release the project runs.
    pub current: String,
    /// The release it moves to.
    pub target: ChtVersion,
    /// The files of the new release the project's compose folder gets (the upgrade
    /// service's own file is kept as it is).
    files: Vec<RenderedFile>,
    /// Each file replaced and its contents before.
    previous: Vec<(PathBuf, String)>,
    /// The backup folder this run made (for files that were not cht-dev's own).
    backup: Option<PathBuf>,
    /// Whether any project file may have changed.
    written: bool,
}

/// Whether moving from release `current` to `target` is allowed: never to an older one
/// (its CouchDB data may not read back) unless `force`d.
pub fn check_direction(project: &str, current: &str, target: &str, force: bool) -> Result<()> {
    if versions::order(target) < versions::order(current) && !force {
        return Err(Error::Downgrade {
            project: project.to_string(),
            current: current.to_string(),
            target: target.to_string(),
        });
    }
    Ok(())
}

/// About the space an upgrade of `project` writes: its compose files twice (checked in a
/// staging folder, then written), and once more for backups.
pub fn space_needed(project: &Project) -> u64 {
    let compose = project.path("compose");
    let files: u64 = std::fs::read_dir(&compose)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    files * 3
}

/// Decides the move of `project` to release `version` and renders its files with the
/// registry the project already uses, checked the way `up` will load them; reads every
/// file they replace. Writes nothing into the project.
pub fn plan(project: &Project, version: &str, force: bool) -> Result<Plan> {
    let target = versions::find(version)?;
    let current = project.cht_version()?;
    check_direction(&project.name, &current, target.version, force)?;
    let registry = project.image_registry()?;
    let files: Vec<RenderedFile> = render::render(&RenderInput {
        project: &project.name,
        version: target,
        registry: registry.as_deref(),
        project_dir: &project.dir,
        layout: project.layout(),
    })?
    .into_iter()
    .filter(|f| f.path != render::UPGRADE_FILE)
    .collect();
    check_rendered(project, &files)?;
    let mut previous = Vec::new();
    for file in &files {
        let path = project.path(file.path);
        let old = std::fs::read_to_string(&path).map_err(Error::io("read", &path))?;
        previous.push((path, old));
    }
    Ok(Plan {
        current,
        target,
        files,
        previous,
        backup: None,
        written: false,
    })
}

/// Checks rendered files the way `up` will read them (parsed, every variable filled in
/// from the project's settings), in a staging folder inside the project, before any
/// project file is touched.
fn check_rendered(project: &Project, files: &[RenderedFile]) -> Result<()> {
    let staging = fsutil::Staging::new(&project.dir, "upgrade")?;
    let root = staging.path();
    fsutil::create_dir_mode(&root.join("compose"), fsutil::SHARED_DIR)?;
    render::write_into(root, files)?;
    let upgrade = project.path(render::UPGRADE_FILE);
    std::fs::copy(&upgrade, root.join(render::UPGRADE_FILE))
        .map_err(Error::io("copy", &upgrade))?;
    crate::stack::load::load_in(&project.target(), root).map(|_| ())
}

impl Plan {
    /// Writes the new release's files into the project: legacy copies out of `compose/`,
    /// a backup of each file that was not cht-dev's own, then the files themselves, each
    /// atomically. On a failure part-way, puts back what it did (a failure of that is
    /// attached to the first). Returns one note per backup or move.
    pub fn write(&mut self, project: &Project) -> Result<Vec<String>> {
        self.written = true;
        let result = self.write_files(project);
        match result {
            Err(e) => Err(e.with_rollback(self.undo())),
            ok => ok,
        }
    }

    /// [`Plan::write`]'s steps, stopping at the first failure.
    fn write_files(&mut self, project: &Project) -> Result<Vec<String>> {
        let mut notes = backups::tidy_compose_folder(project)?;
        for (file, (path, old)) in self.files.iter().zip(&self.previous) {
            if render::marker(old) != Marker::Unmodified {
                // Edited by the user, or rewritten by the upgrade service: keep a copy,
                // outside compose/ where the upgrade service would run it.
                let dir = match &self.backup {
                    Some(dir) => dir.clone(),
                    None => {
                        let dir =
                            backups::new_folder(project, &self.current, OffsetDateTime::now_utc())?;
                        self.backup = Some(dir.clone());
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
            fsutil::replace(path, file.contents.as_bytes(), fsutil::PUBLIC)?;
        }
        Ok(notes)
    }

    /// Puts every file back as it was and removes this run's backup folder (its copies
    /// are the files just put back); a no-op when nothing was written, or once undone.
    pub fn undo(&mut self) -> Result<()> {
        if !self.written {
            return Ok(());
        }
        put_back(&self.journal_files())?;
        self.written = false;
        self.backup = None;
        Ok(())
    }

    /// What the journal keeps while the files change: each file before, and the backup
    /// folder once made.
    pub fn journal_files(&self) -> Files {
        Files {
            change: format!("the upgrade to {}", self.target.version),
            previous: self.previous.clone(),
            backup: self.backup.clone(),
        }
    }
}

/// Puts back the files a change replaced, as the journal recorded them, and removes the
/// backup folder it made (its copies are the files put back).
pub fn put_back(files: &Files) -> Result<()> {
    for (path, old) in &files.previous {
        fsutil::replace(path, old.as_bytes(), fsutil::PUBLIC)?;
    }
    if let Some(dir) = &files.backup {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("remove", dir)(e));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::Home;

    /// A 4.x project made as `init` makes it, in a temporary home.
    fn created() -> (tempfile::TempDir, Project) {
        let tmp = tempfile::tempdir().expect("tmp");
        let home = Home::at(tmp.path()).expect("home");
        let opts = super::super::InitOptions {
            name: "up".into(),
            cht_version: Some("4.21.0".into()),
            ..Default::default()
        };
        let project = super::super::create(&home, &opts).expect("create").project;
        (tmp, project)
    }

    #[test]
    fn only_a_forced_upgrade_goes_to_an_older_release() {
        assert!(check_direction("p", "4.21.0", "4.22.0", false).is_ok());
        assert!(check_direction("p", "4.22.0", "4.22.0", false).is_ok());
        let refused = check_direction("p", "5.2.0", "4.22.0", false).expect_err("refused");
        assert!(matches!(refused, Error::Downgrade { .. }), "{refused}");
        assert!(check_direction("p", "5.2.0", "4.22.0", true).is_ok());
    }

    #[test]
    fn a_plan_writes_nothing_and_an_unknown_release_is_refused() {
        let (_tmp, project) = created();
        let core = project.path(render::CORE_FILE);
        let before = std::fs::read_to_string(&core).expect("read");
        let plan = plan(&project, "4.22.0", false).expect("plan");
        assert_eq!(
            (plan.current.as_str(), plan.target.version),
            ("4.21.0", "4.22.0")
        );
        assert_eq!(std::fs::read_to_string(&core).expect("read"), before);
        assert!(
            plan.previous
                .iter()
                .any(|(p, old)| *p == core && *old == before)
        );
        assert!(
            plan.files.iter().all(|f| f.path != render::UPGRADE_FILE),
            "the upgrade service's file is kept"
        );
        assert!(super::plan(&project, "9.9.9", false).is_err());
    }

    #[test]
    fn written_files_come_back_on_undo_with_the_users_edit_kept_until_then() {
        let (_tmp, project) = created();
        let core = project.path(render::CORE_FILE);
        let edited = std::fs::read_to_string(&core).expect("read") + "# mine\n";
        std::fs::write(&core, &edited).expect("edit");
        let mut plan = plan(&project, "4.22.0", false).expect("plan");
        let notes = plan.write(&project).expect("write");
        let now = std::fs::read_to_string(&core).expect("read");
        assert!(now.contains("4.22.0") && !now.contains("# mine"));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("was not cht-dev's own; kept it as"),
            "{notes:?}"
        );
        let backup = plan.backup.clone().expect("backup folder");
        assert!(backup.join("cht-core.yml").is_file());
        plan.undo().expect("undo");
        assert_eq!(std::fs::read_to_string(&core).expect("read"), edited);
        assert!(!backup.exists(), "the run's backups go with its files");
        plan.undo().expect("a second undo does nothing");
    }
}
