//! Files that containers wrote as their own users (a database image's uid, say), which a
//! user running cht-dev without root can read but not remove or own. They are removed or
//! handed over through the engine instead: a one-off container, run as root from an image
//! already present, with only the folder that holds them bind-mounted. `rm -rf` and
//! `chown -R` (without `-L`) never follow links, so nothing outside that folder changes.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::docker::{Engine, OneOff, labels};
use crate::error::{Error, Result};
use crate::shell::shell_word;

/// Where the folder holding the entries is mounted in the one-off.
const MOUNT: &str = "/cht-dev-owned";
/// The label role of these one-offs, so one an interrupted command left is found.
const ROLE: &str = "owned-files";
/// How long one may take (a large data folder takes a while to remove).
const LIMIT: Duration = Duration::from_secs(600);

/// Hands the paths after `$1` (host uid) and `$2` (host gid) to that owner, as the
/// container's user namespace names it.
const OWN_SCRIPT: &str = r#"inside() { awk -v id="$1" '$2 <= id && id < $2 + $3 { print $1 + id - $2; found = 1; exit } END { if (!found) exit 1 }' "$2"; }
u=$(inside "$1" /proc/self/uid_map) || { echo "uid $1 is not mapped into this engine's containers" >&2; exit 1; }
g=$(inside "$2" /proc/self/gid_map) || { echo "gid $2 is not mapped into this engine's containers" >&2; exit 1; }
shift 2
exec chown -R "$u:$g" -- "$@"
"#;

/// What to do to the entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Remove them and everything in them.
    Remove,
    /// Give them, and everything in them, to this owner.
    Own {
        /// The new owner's uid.
        uid: u32,
        /// The new owner's gid.
        gid: u32,
    },
}

impl Change {
    /// The command the one-off runs on the mounted paths.
    fn command(self) -> Vec<String> {
        match self {
            Change::Remove => vec!["rm".into(), "-rf".into(), "--".into()],
            Change::Own { uid, gid } => {
                vec![
                    "chown".into(),
                    "-R".into(),
                    format!("{uid}:{gid}"),
                    "--".into(),
                ]
            }
        }
    }

    /// The one-off's entrypoint, the mounted paths to follow. An owner is given as host
    /// ids, which a rootless engine's containers see through their user namespace's map
    /// (`/proc/self/uid_map`: inside, outside, count): the script turns them into the ids
    /// inside (the same on a rootful engine), and fails on one the map lacks.
    fn entrypoint(self) -> Vec<String> {
        match self {
            Change::Remove => self.command(),
            Change::Own { uid, gid } => vec![
                "/bin/sh".into(),
                "-c".into(),
                OWN_SCRIPT.into(),
                "own".into(),
                uid.to_string(),
                gid.to_string(),
            ],
        }
    }

    /// The verb in errors.
    fn action(self) -> &'static str {
        match self {
            Change::Remove => "remove",
            Change::Own { .. } => "hand back",
        }
    }

    /// The same change by hand, for an error's last resort.
    fn by_hand(self, paths: &[PathBuf]) -> String {
        let words: Vec<String> = paths
            .iter()
            .map(|p| shell_word(&p.display().to_string()))
            .collect();
        let mut command = vec!["sudo".to_string()];
        command.extend(self.command().into_iter().filter(|w| w != "--"));
        command.extend(words);
        command.join(" ")
    }
}

/// Whether an I/O error means "this user may not", the case the engine can help with.
pub fn denied(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::PermissionDenied
}

/// Applies `change` to the entries `names` of folder `parent` through the engine, with
/// `image` (which must be present). Each name must be one plain path component.
pub async fn apply(
    engine: &Engine,
    project: &str,
    image: &str,
    parent: &Path,
    names: &[OsString],
    change: Change,
) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let paths: Vec<PathBuf> = names.iter().map(|n| parent.join(n)).collect();
    let owner = paths
        .iter()
        .find_map(|p| std::fs::symlink_metadata(p).ok())
        .map_or(0, |m| m.uid());
    let failed = |reason: String| Error::ContainerOwned {
        action: change.action(),
        path: paths[0].clone(),
        owner,
        reason,
        fallback: change.by_hand(&paths),
    };
    let mut inside = Vec::new();
    for name in names {
        let mut parts = Path::new(name).components();
        match (parts.next(), parts.next()) {
            (Some(Component::Normal(part)), None) => {
                inside.push(format!("{MOUNT}/{}", part.to_string_lossy()))
            }
            _ => return Err(failed(format!("{name:?} is not one entry of the folder"))),
        }
    }
    let folder = parent
        .canonicalize()
        .map_err(Error::io("resolve", parent))?;
    // One an interrupted command left behind would hold the name.
    if let Ok(left) = engine
        .containers(&[
            (labels::CHT_DEV_PROJECT, project),
            (labels::CHT_DEV_ROLE, ROLE),
        ])
        .await
    {
        for c in left {
            let _ = engine.remove(&c.id, &c.name).await;
        }
    }
    let mut entrypoint = change.entrypoint();
    entrypoint.extend(inside);
    let job = OneOff {
        name: format!("{project}-{ROLE}-{}", std::process::id()),
        image: image.to_string(),
        entrypoint,
        env: BTreeMap::new(),
        binds: vec![format!("{}:{MOUNT}", folder.display())],
        labels: BTreeMap::from([
            (labels::CHT_DEV_PROJECT.to_string(), project.to_string()),
            (labels::CHT_DEV_ROLE.to_string(), ROLE.to_string()),
        ]),
        user: Some("0:0".into()),
    };
    let finished = engine
        .run_to_end(&job, LIMIT)
        .await
        .map_err(|e| failed(format!("a one-off container of {image} failed: {e}")))?;
    if finished.code != 0 {
        let said = finished
            .stderr
            .lines()
            .last()
            .unwrap_or("no message")
            .trim();
        return Err(failed(format!(
            "a one-off container of {image} exited {}: {said}",
            finished.code
        )));
    }
    Ok(())
}

/// [`apply`] with the image as far as it is known: with none, an error naming the entries
/// and the command that changes them by hand.
pub async fn apply_with(
    engine: &Engine,
    project: &str,
    image: Option<&str>,
    parent: &Path,
    names: &[OsString],
    change: Change,
) -> Result<()> {
    let Some(first) = names.first() else {
        return Ok(());
    };
    match image {
        Some(image) => apply(engine, project, image, parent, names, change).await,
        None => {
            let paths: Vec<PathBuf> = names.iter().map(|n| parent.join(n)).collect();
            Err(Error::ContainerOwned {
                action: change.action(),
                path: parent.join(first),
                owner: std::fs::symlink_metadata(parent.join(first)).map_or(0, |m| m.uid()),
                reason: format!(
                    "no image of the project is known to {} it with",
                    change.action()
                ),
                fallback: change.by_hand(&paths),
            })
        }
    }
}

/// [`apply_with`] to one path, named whole (its folder is what the one-off mounts).
pub async fn apply_to_path(
    engine: &Engine,
    project: &str,
    image: Option<&str>,
    path: &Path,
    change: Change,
) -> Result<()> {
    let (Some(parent), Some(entry)) = (path.parent(), path.file_name()) else {
        return Ok(());
    };
    apply_with(engine, project, image, parent, &[entry.to_owned()], change).await
}

/// Removes folder `dir`: its entries other than `keep_until_engine` first (each whole,
/// through the engine when containers own them), then, once nothing in it is a
/// container's, the folder itself in one step: renamed to a hidden staging name beside it
/// (which the start-up sweep of any command removes, should this process die), then
/// removed. Until that rename, `keep_until_engine` are there (a project's `.env`, which
/// is what makes it a project, and the files the engine's image is read from), so a
/// removal that fails part-way can be run again.
pub async fn remove_folder(
    engine: &Engine,
    project: &str,
    image: Option<&str>,
    dir: &Path,
    keep_until_engine: &[&str],
) -> Result<()> {
    let mut entries: Vec<OsString> = std::fs::read_dir(dir)
        .map_err(Error::io("read", dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .map_err(Error::io("read", dir))?;
    entries.sort();
    let now: Vec<OsString> = entries
        .into_iter()
        .filter(|n| !keep_until_engine.iter().any(|k| n.as_os_str() == *k))
        .collect();
    let stuck = remove_entries(dir, &now)?;
    apply_with(engine, project, image, dir, &stuck, Change::Remove).await?;
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(Error::io("remove", dir)(std::io::Error::other(
            "no parent folder",
        )));
    };
    let going = parent.join(format!(
        ".staging-gone-{}-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::rename(dir, &going).map_err(Error::io("remove", dir))?;
    std::fs::remove_dir_all(&going).map_err(Error::io("remove", &going))
}

/// Removes each entry of `dir` named; returns those this user may not remove.
fn remove_entries(dir: &Path, names: &[OsString]) -> Result<Vec<OsString>> {
    let mut stuck = Vec::new();
    for name in names {
        let path = dir.join(name);
        let removed = match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&path),
            Ok(_) => std::fs::remove_file(&path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        };
        match removed {
            Ok(()) => {}
            Err(e) if denied(&e) => stuck.push(name.clone()),
            Err(e) => return Err(Error::io("remove", &path)(e)),
        }
    }
    Ok(stuck)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_run_without_following_links_and_read_back_by_hand() {
        assert_eq!(Change::Remove.command(), ["rm", "-rf", "--"]);
        assert_eq!(
            Change::Own {
                uid: 5984,
                gid: 5984
            }
            .command(),
            ["chown", "-R", "5984:5984", "--"]
        );
        assert_eq!(
            Change::Remove.by_hand(&[PathBuf::from("/h/a b/data")]),
            "sudo rm -rf '/h/a b/data'"
        );
    }

    #[test]
    fn removing_entries_reports_only_what_this_user_may_not_remove() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("data/inner")).expect("mkdir");
        std::fs::write(dir.path().join("data/inner/file"), "x").expect("write");
        std::fs::write(dir.path().join("file"), "x").expect("write");
        std::os::unix::fs::symlink("/etc", dir.path().join("link")).expect("link");
        let names: Vec<OsString> = ["data", "file", "link", "missing"]
            .into_iter()
            .map(OsString::from)
            .collect();
        assert!(
            remove_entries(dir.path(), &names)
                .expect("removes")
                .is_empty()
        );
        assert_eq!(std::fs::read_dir(dir.path()).expect("read").count(), 0);
        assert!(
            Path::new("/etc/passwd").exists(),
            "links are removed, not followed"
        );
    }
}
