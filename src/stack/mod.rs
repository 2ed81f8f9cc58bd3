//! A project's compose files as a stack of containers, and how cht-dev runs it.
//!
//! `load` reads the files; `up` brings them up through `images`, `compose_hash`,
//! `reconcile` and `readiness`; `status` reports; `teardown` takes them away.

use std::path::PathBuf;

use indexmap::IndexMap;

pub mod compose_hash;
pub mod images;
pub mod interpolate;
pub mod load;
pub mod model;
pub mod owned;
pub mod profile;
pub mod quiesce;
pub mod readiness;
pub mod reconcile;
pub mod start;
pub mod status;
pub mod teardown;
pub mod up;

/// A compose project as the stack runs it, with the companion compose project that runs
/// compose on it at every boot (its container mounts the main files' folder). The layer
/// above builds it; the stack reads the files it names and nothing else of that layer.
#[derive(Debug, Clone)]
pub struct Target {
    /// The main compose project's name; the companion's is [`load::companion_project`] of it.
    pub name: String,
    /// The folder everything else is relative to. Bind-mount sources inside it are made
    /// when missing; the stack's own cache lives in it.
    pub dir: PathBuf,
    /// The main compose files' folder (their project directory), relative to `dir`.
    pub main_dir: PathBuf,
    /// The main compose files, relative to `main_dir`, in merge order.
    pub files: Vec<PathBuf>,
    /// The companion's compose files, relative to `dir`.
    pub companion_files: Vec<PathBuf>,
    /// The variables compose reads from the project's `.env`.
    pub env: IndexMap<String, String>,
}

impl Target {
    /// A path inside the target's folder.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }
}

/// Seconds a container gets to stop before it is killed (as compose).
pub(crate) const STOP_GRACE: i32 = 10;
/// Seconds the upgrade service gets: it keeps no data, and its process (node as PID 1 in
/// the real image) ignores SIGTERM, so a longer grace would only be a longer wait.
pub(crate) const UPGRADE_GRACE: i32 = 2;

/// Stacks for unit tests, loaded from compose text as `up` loads files.
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::BTreeMap;

    use super::model::Stack;
    use crate::docker::{ContainerInfo, ContainerState};
    use crate::error::Result;

    /// A container of compose project `project` for `service` in `state`, as the engine
    /// lists it (no hash or image id).
    pub(crate) fn container(project: &str, service: &str, state: ContainerState) -> ContainerInfo {
        ContainerInfo {
            id: format!("id-{project}-{service}"),
            name: format!("{project}-{service}-1"),
            service: service.into(),
            project: project.into(),
            state,
            status: String::new(),
            health: None,
            image: format!("{service}:1"),
            ports: Vec::new(),
            config_hash: None,
            image_id: None,
        }
    }

    /// A compose file in a temporary folder, loaded as project `p` with `vars` as the
    /// environment.
    pub(crate) fn load_text(text: &str, vars: &[(&str, &str)]) -> Result<Stack> {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("c.yml"), text).expect("write");
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Stack::load("p", dir.path(), &["c.yml".into()], &|k| {
            vars.get(k).cloned()
        })
    }
}
