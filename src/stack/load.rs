//! A target's two compose projects, read from its files: the main one and the companion
//! that runs compose on it, each filled in from the environment its compose would see.

use super::Target;
use super::compose_hash;
use super::model::Stack;
use crate::error::Result;

/// A target's two compose projects.
#[derive(Debug, Clone)]
pub struct Stacks {
    /// The main compose project, `<NAME>`.
    pub main: Stack,
    /// The companion that runs compose on the main one, `<NAME>-upgrade`.
    pub companion: Stack,
}

/// The compose project name of the companion of compose project `name`: the files the
/// layer above writes name it so, and teardown finds it by that name alone.
pub fn companion_project(name: &str) -> String {
    format!("{name}-upgrade")
}

/// Reads a target's compose files into its two stacks.
///
/// The companion's files are filled in as compose on the host does (the process
/// environment over the target's). The main files are filled in from the environment the
/// companion's container gets when it runs compose on them at every boot, so that the
/// stack makes exactly the containers it would make. (The image's own environment is left
/// out here; files read by a companion use none of its variables.)
pub fn load(target: &Target) -> Result<Stacks> {
    load_in(target, &target.dir)
}

/// [`load`] with the files read from `root`, laid out as in the target's folder: how files
/// rendered elsewhere are checked before any of them is written into the folder.
pub fn load_in(target: &Target, root: &std::path::Path) -> Result<Stacks> {
    let env = &target.env;
    let host = |name: &str| std::env::var(name).ok().or_else(|| env.get(name).cloned());
    let upgrade = Stack::load(
        &companion_project(&target.name),
        root,
        &target.companion_files,
        &host,
    )?;
    let main_dir = root.join(&target.main_dir);
    let files = &target.files;
    let cht = match compose_hash::find_upgrade_service(upgrade.services.values()) {
        Some(service) => {
            let seen = &service.env;
            Stack::load(&target.name, &main_dir, files, &|name: &str| {
                seen.get(name).cloned()
            })?
        }
        None => Stack::load(&target.name, &main_dir, files, &host)?,
    };
    Ok(Stacks {
        main: cht,
        companion: upgrade,
    })
}
