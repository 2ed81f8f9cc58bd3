//! Copies of the compose files cht-dev replaces, kept where nobody runs them.
//!
//! The CHT upgrade service runs compose on every valid file in `compose/`, in name order, so
//! a copy kept there (`cht-core.yml.bak-4.22.0`) would start the old release over the new
//! one at its next boot. Copies go to `<project>/backups/<version>-<UTC time>/<file>`
//! instead. Rules: every backup folder is new (a name already taken gets `-2`, `-3`, ...);
//! nothing is written through a symlink (a symlinked `backups/` is refused, files are
//! created exclusively); nothing is ever overwritten.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::Project;
use crate::error::{Error, Result};
use crate::fsutil;

/// `now` in UTC as `YYYY<sep>MM<sep>DDTHH<sep>MM<sep>SSZ`: a name part that sorts by time
/// and holds no `:` (which Windows file systems refuse).
pub fn utc_stamp(now: OffsetDateTime, sep: &str) -> String {
    let now = now.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{sep}{:02}{sep}{:02}T{:02}{sep}{:02}{sep}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// The backups folder, relative to the project folder.
pub const DIR: &str = "backups";
/// The suffix of the backups earlier cht-dev versions left inside `compose/`.
const LEGACY_MARK: &str = ".bak-";

/// A file moved out of `compose/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// Where it was.
    pub from: PathBuf,
    /// Where it is now.
    pub to: PathBuf,
}

/// A version string made safe as part of a folder name.
fn folder_part(version: &str) -> String {
    let cleaned: String = version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match cleaned.trim_matches('.') {
        "" => "unknown".to_string(),
        c => c.to_string(),
    }
}

/// The project's `backups/` folder, made if needed; refused when it is not a real folder.
fn root(project: &Project) -> Result<PathBuf> {
    let dir = project.path(DIR);
    match std::fs::symlink_metadata(&dir) {
        Ok(meta) if meta.file_type().is_dir() => Ok(dir),
        Ok(_) => Err(Error::BrokenProject {
            name: project.name.clone(),
            reason: format!(
                "{} is not a folder (a symlink or a file); cht-dev keeps backups only in a real folder: move it away",
                dir.display()
            ),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir(&dir).map_err(Error::io("create folder", &dir))?;
            fsutil::set_mode(&dir, fsutil::PRIVATE_DIR)?;
            Ok(dir)
        }
        Err(e) => Err(Error::io("inspect", &dir)(e)),
    }
}

/// Makes a new, empty backup folder for files of `version`, named for `version` and `now`.
pub fn new_folder(project: &Project, version: &str, now: OffsetDateTime) -> Result<PathBuf> {
    let root = root(project)?;
    let stamp = utc_stamp(now, "");
    let base = format!("{}-{stamp}", folder_part(version));
    for n in 1..1000 {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let dir = root.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("create folder", &dir)(e)),
        }
    }
    Err(Error::io("create folder", root.join(base))(
        std::io::Error::from(std::io::ErrorKind::AlreadyExists),
    ))
}

/// Writes `contents` as `folder/name`, a new file (never over one, never through a link).
pub fn keep(folder: &Path, name: &str, contents: &str) -> Result<PathBuf> {
    let path = folder.join(name);
    fsutil::write_new(&path, contents.as_bytes(), fsutil::PUBLIC)?;
    Ok(path)
}

/// Moves the `compose/FILE.bak-VERSION` copies earlier cht-dev versions made into
/// `backups/VERSION-<time>/FILE`, one folder per version; returns what moved.
pub fn move_legacy(project: &Project, now: OffsetDateTime) -> Result<Vec<Moved>> {
    let compose = project.path("compose");
    let Ok(entries) = std::fs::read_dir(&compose) else {
        return Ok(Vec::new());
    };
    let mut legacy: Vec<(String, String, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (file, version) = name.split_once(LEGACY_MARK)?;
            Some((version.to_string(), file.to_string(), e.path()))
        })
        .collect();
    legacy.sort();
    let mut moved = Vec::new();
    let mut folder: Option<(String, PathBuf)> = None;
    for (version, file, from) in legacy {
        let dir = match &folder {
            Some((v, dir)) if *v == version => dir.clone(),
            _ => {
                let dir = new_folder(project, &version, now)?;
                folder = Some((version.clone(), dir.clone()));
                dir
            }
        };
        let to = dir.join(&file);
        // The folder is new, so nothing is there to overwrite; rename moves a link itself.
        std::fs::rename(&from, &to).map_err(Error::io("move", &from))?;
        moved.push(Moved { from, to });
    }
    Ok(moved)
}

/// Moves the `compose/*.bak-*` copies earlier cht-dev versions kept (the upgrade service
/// would run them) into `backups/`, and returns one note per move and per other file
/// in `compose/` that the upgrade service would run besides CHT's two.
pub fn tidy_compose_folder(project: &Project) -> Result<Vec<String>> {
    let moved = move_legacy(project, OffsetDateTime::now_utc())?;
    let mut notes: Vec<String> = moved
        .iter()
        .map(|m| {
            format!(
                "moved {} to {} (the upgrade service runs every compose file in compose/)",
                m.from.display(),
                m.to.display()
            )
        })
        .collect();
    let [core, couchdb] = project.compose_files();
    notes.extend(project.extra_compose_files().into_iter().map(|f| {
        format!(
            "{} is not CHT's: the upgrade service runs every valid compose file in that folder, cht-dev only {core} and {couchdb}; move it elsewhere unless you mean it",
            project.path("compose").join(f).display()
        )
    }));
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::dotenv::EnvFile;

    /// A bare project in a temporary folder.
    fn project(dir: &Path) -> Project {
        std::fs::create_dir_all(dir.join("compose")).expect("mkdir");
        Project::from_env("p", dir.to_path_buf(), EnvFile::new()).expect("project")
    }

    #[test]
    fn legacy_copies_leave_compose_and_nothing_is_overwritten() {
        let tmp = tempfile::tempdir().expect("tmp");
        let p = project(tmp.path());
        let compose = tmp.path().join("compose");
        for (name, text) in [
            ("cht-core.yml", "live"),
            ("cht-core.yml.bak-4.22.0", "old core"),
            ("cht-couchdb.yml.bak-4.22.0", "old couch"),
            ("cht-core.yml.bak-4.21.0", "older core"),
        ] {
            std::fs::write(compose.join(name), text).expect("write");
        }
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        let moved = move_legacy(&p, now).expect("moves");
        assert_eq!(moved.len(), 3);
        let left: Vec<_> = std::fs::read_dir(&compose)
            .expect("read")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["cht-core.yml"]);
        let folder = tmp.path().join("backups/4.22.0-20270115T080000Z");
        assert_eq!(
            std::fs::read_to_string(folder.join("cht-couchdb.yml")).expect("read"),
            "old couch"
        );
        // The same second again: a new folder, the first one untouched.
        let again = new_folder(&p, "4.22.0", now).expect("folder");
        assert_eq!(again, tmp.path().join("backups/4.22.0-20270115T080000Z-2"));
        assert!(
            keep(&folder, "cht-couchdb.yml", "x").is_err(),
            "never overwrites"
        );
    }

    #[test]
    fn a_symlinked_backups_folder_is_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let p = project(&tmp.path().join("p"));
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir_all(&elsewhere).expect("mkdir");
        std::os::unix::fs::symlink(&elsewhere, p.path(DIR)).expect("link");
        let err = new_folder(&p, "5.2.0", OffsetDateTime::now_utc()).expect_err("refused");
        assert!(err.to_string().contains("not a folder"), "{err}");
        assert_eq!(std::fs::read_dir(&elsewhere).expect("read").count(), 0);
        assert_eq!(folder_part("../x y"), "_x_y");
    }
}
