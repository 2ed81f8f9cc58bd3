//! A project's two compose projects, read from its files: the main one and the upgrade
//! service that runs compose on it, each filled in from the environment its compose would
//! see.

use indexmap::IndexMap;

use super::compose_hash;
use super::model::Stack;
use crate::error::Result;
use crate::project::{Project, render};

/// The two compose projects of a cht-dev project: the main one and its upgrade service.
#[derive(Debug, Clone)]
pub struct Stacks {
    /// The main one: the project's compose files, compose project `<NAME>`.
    pub cht: Stack,
    /// The upgrade service: `upgrade-service.yml`, compose project `<NAME>-upgrade`.
    pub upgrade: Stack,
}

/// The compose project name of a cht-dev project's upgrade service.
pub fn upgrade_project(name: &str) -> String {
    format!("{name}-upgrade")
}

/// Reads a project's compose files and `.env` into its two stacks.
///
/// `upgrade-service.yml` is filled in as compose on the host does (the process
/// environment over `.env`). The CHT files are filled in from the environment the upgrade
/// service's container gets, because its compose is the one that recreates CHT's
/// containers at every boot: cht-dev makes exactly the containers it would make. (The
/// image's own environment is left out here; CHT's files use none of its variables.)
pub fn load(project: &Project) -> Result<Stacks> {
    load_in(project, &project.dir)
}

/// [`load`] with the files read from `root`, laid out as in a project folder: what
/// `upgrade` uses to check files it rendered before it writes any into the project.
pub fn load_in(project: &Project, root: &std::path::Path) -> Result<Stacks> {
    let env: IndexMap<String, String> = project
        .env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let host = |name: &str| std::env::var(name).ok().or_else(|| env.get(name).cloned());
    let upgrade = Stack::load(
        &upgrade_project(&project.name),
        root,
        &[render::UPGRADE_FILE.into()],
        &host,
    )?;
    let compose_dir = root.join("compose");
    let files = project.compose_files()?.map(std::path::PathBuf::from);
    let cht = match compose_hash::find_upgrade_service(upgrade.services.values()) {
        Some(service) => {
            let seen = &service.env;
            Stack::load(&project.name, &compose_dir, &files, &|name: &str| {
                seen.get(name).cloned()
            })?
        }
        None => Stack::load(&project.name, &compose_dir, &files, &host)?,
    };
    Ok(Stacks { cht, upgrade })
}
