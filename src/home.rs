//! The cht-dev home: where the CA and every project live, and how it is found.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Environment variable naming the home when `--home` is not given.
pub const HOME_ENV: &str = "CHT_DEV_HOME";

/// Characters that would break a path inside a compose file or `.env`.
const UNSAFE_PATH_CHARS: &[char] = &[':', '$', '"', '\\', '{', '}', '\'', '`'];

/// Checks a path compose will bind-mount (the home's folders, an adopted data folder):
/// none of [`UNSAFE_PATH_CHARS`] (`:` would change the mount target) and no control
/// character. Returns why not.
pub fn check_mount_path(text: &str) -> std::result::Result<(), String> {
    match text
        .chars()
        .find(|c| UNSAFE_PATH_CHARS.contains(c) || c.is_control())
    {
        Some(bad) => Err(format!(
            "it contains {bad:?}, which compose files cannot carry in a mount path"
        )),
        None => Ok(()),
    }
}

/// A resolved, absolute cht-dev home folder (it may not exist yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    /// The absolute path.
    root: PathBuf,
}

impl Home {
    /// Resolves the home: `--home`, else `CHT_DEV_HOME`, else the platform data dir.
    pub fn resolve(flag: Option<&Path>) -> Result<Home> {
        let chosen = match flag {
            Some(path) => path.to_path_buf(),
            None => match std::env::var_os(HOME_ENV).filter(|v| !v.is_empty()) {
                Some(path) => PathBuf::from(path),
                None => directories::ProjectDirs::from("", "", "cht-dev")
                    .map(|dirs| dirs.data_dir().to_path_buf())
                    .ok_or_else(|| Error::InvalidHome {
                        path: PathBuf::new(),
                        reason: format!(
                            "no home folder could be found for this user; pass --home DIR or set {HOME_ENV}"
                        ),
                    })?,
            },
        };
        Home::at(&chosen)
    }

    /// A home at `path`, made absolute and checked for characters compose cannot carry.
    pub fn at(path: &Path) -> Result<Home> {
        let invalid = |reason: String| Error::InvalidHome {
            path: path.to_path_buf(),
            reason,
        };
        let root = std::path::absolute(path)
            .map_err(|e| invalid(format!("cannot make it absolute: {e}")))?;
        let Some(text) = root.to_str() else {
            return Err(invalid(
                "it is not valid UTF-8; pass --home with a plain path".into(),
            ));
        };
        check_mount_path(text)
            .map_err(|e| invalid(format!("{e}; pass --home with a plainer path")))?;
        if root.exists() && !root.is_dir() {
            return Err(invalid(
                "it exists and is not a folder; pass --home with a folder".into(),
            ));
        }
        Ok(Home { root })
    }

    /// The home folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder holding the local CA.
    pub fn ca_dir(&self) -> PathBuf {
        self.root.join("ca")
    }

    /// The folder of project `name`.
    pub fn project_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Removes what killed cht-dev processes left behind: staging folders in the home, and
    /// half-written files in each project's folders (see [`Home::sweep_project`]) but those
    /// `keep` names (a journal still needs what is there: a restore's swapped-out data).
    pub fn sweep_leftovers(&self, keep: &dyn Fn(&str) -> bool) {
        crate::fsutil::sweep_leftovers(&self.root);
        for name in self.folders_holding(".env").unwrap_or_default() {
            if !keep(&name) {
                self.sweep_project(&name);
            }
        }
    }

    /// Removes what killed cht-dev processes left in project `name`'s folders; returns
    /// what this user may not remove (a container's user owns it).
    pub fn sweep_project(&self, name: &str) -> Vec<PathBuf> {
        let dir = self.project_dir(name);
        ["", "compose", "certs", "couchdb", "snapshots"]
            .iter()
            .flat_map(|sub| crate::fsutil::sweep_leftovers(&dir.join(sub)))
            .collect()
    }

    /// Names of the folders in this home that hold `file` (e.g. a project's `.env`), sorted.
    pub fn folders_holding(&self, file: &str) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read", &self.root)(e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(Error::io("read", &self.root))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if entry.path().join(file).is_file() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_become_absolute() {
        let home = Home::at(Path::new("some/rel")).expect("valid");
        assert!(home.root().is_absolute());
        assert!(home.root().ends_with("some/rel"));
    }

    #[test]
    fn refuses_paths_compose_cannot_mount() {
        for bad in ["/tmp/a:b", "/tmp/$x", "/tmp/a\"b", "/tmp/{x}"] {
            let err = Home::at(Path::new(bad)).expect_err(bad).to_string();
            assert!(err.contains("pass --home"), "{err}");
        }
    }
}
