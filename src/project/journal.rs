//! A record of how to put a project right, kept in its folder while a command takes a
//! step that a kill part-way would leave half done: written before the step, updated as
//! it goes, removed once the project is whole again. Only a command that died (SIGKILL, a
//! crash, a power cut) leaves one behind. The next command of any kind, holding the
//! project's lock (so no live command owns it), repairs from it and says what it did
//! (`commands::repair`).
//!
//! Rules: one journal per project (commands hold the project's lock while they write
//! one); it is replaced whole (a kill leaves the old or the new one, never half of one);
//! a step is recorded before the change it covers and cleared only once that change is
//! complete or undone.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::Project;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::stack::quiesce::Quiesced;

/// The journal's file in the project folder.
pub const FILE: &str = ".cht-dev-journal.json";

/// What a command had under way.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    /// The command, for people (`snapshot create`).
    pub command: String,
    /// Services paused or stopped, to run again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Quiesced>,
    /// Data folders being swapped with unpacked snapshots.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub swaps: Vec<Swap>,
    /// Project files being replaced (an upgrade).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Files>,
    /// A certificate being put in place, which nginx may not serve yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificates: Option<Certificates>,
    /// A confirmed destroy under way.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub destroy: bool,
}

impl PartialEq for Quiesced {
    fn eq(&self, other: &Quiesced) -> bool {
        let ids = |q: &Quiesced| {
            (
                q.upgrade_paused,
                q.stopped.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
                q.frozen.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
            )
        };
        ids(self) == ids(other)
    }
}

/// A data folder and the unpacked folder it is swapped with; the data folder's identity
/// before the swap tells whether the swap happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swap {
    /// The data folder.
    pub data: PathBuf,
    /// The unpacked folder.
    pub staged: PathBuf,
    /// The data folder's device and inode before the swap.
    pub before: (u64, u64),
}

impl Swap {
    /// The swap of `data` with `staged`, as `data` is now.
    pub fn of(data: &Path, staged: &Path) -> Result<Swap> {
        Ok(Swap {
            data: data.to_path_buf(),
            staged: staged.to_path_buf(),
            before: identity(data)?,
        })
    }

    /// Whether the swap happened: the data folder is no longer the one noted.
    pub fn done(&self) -> Result<bool> {
        Ok(identity(&self.data)? != self.before)
    }
}

/// A folder's device and inode.
fn identity(path: &Path) -> Result<(u64, u64)> {
    let meta = std::fs::symlink_metadata(path).map_err(Error::io("inspect", path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok((0, 0))
    }
}

/// Project files being replaced, with what they held before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Files {
    /// What the change was, for people (`an upgrade to 5.2.0`).
    pub change: String,
    /// Each file and its contents before.
    pub previous: Vec<(PathBuf, String)>,
    /// A backup folder the change made, which goes when it is undone.
    pub backup: Option<PathBuf>,
}

/// A certificate and key being put in place, and the mode they put the project in; kept
/// mode 0600 like the key file itself.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificates {
    /// `local-ca`, `local-ip` or `own`.
    pub mode: String,
    /// The certificate with its chain, PEM.
    pub cert: String,
    /// Its key, PEM.
    pub key: String,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// The journal's path in `dir`.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Whether the journal in project `name`'s folder `dir` still needs what staging folders
/// hold there (a restore's swaps, to be undone); an unreadable journal counts as needing
/// them, and no journal as not.
pub fn needs_staging(name: &str, dir: &Path) -> bool {
    read(name, dir).map_or(true, |left| left.is_some_and(|j| !j.swaps.is_empty()))
}

/// The journal left in project `name`'s folder `dir`, if any.
pub fn read(name: &str, dir: &Path) -> Result<Option<Journal>> {
    let path = path_in(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", &path)(e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::BrokenProject {
            name: name.to_string(),
            reason: format!("{} does not read ({e}); remove it to go on", path.display()),
        })
}

/// Writes `journal` into `dir` in one step (mode 0600), or removes it when it records
/// nothing left to repair.
pub fn write(dir: &Path, journal: &Journal) -> Result<()> {
    let path = path_in(dir);
    if journal.is_clear() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io("remove", &path)(e))
            }
            _ => Ok(()),
        };
    }
    let text = serde_json::to_vec_pretty(journal).map_err(|e| Error::Encode {
        what: "the project's journal".into(),
        reason: e.to_string(),
    })?;
    fsutil::replace(&path, &text, fsutil::PRIVATE)
}

impl Journal {
    /// Whether nothing is left to repair.
    pub fn is_clear(&self) -> bool {
        self.held
            .as_ref()
            .is_none_or(|h| !h.held_any() && !h.upgrade_paused)
            && self.swaps.is_empty()
            && self.files.is_none()
            && self.certificates.is_none()
            && !self.destroy
    }
}

/// A journal being kept by a live command: each change is written before the command
/// goes on. Dropped, it stays on disk as last written (a command that returns with an
/// error has put its steps right and cleared them; one cut short has not).
#[derive(Debug)]
pub struct Open {
    /// The project folder.
    dir: PathBuf,
    /// The journal as written.
    state: Mutex<Journal>,
}

impl Open {
    /// Starts the journal of `command` in `project`, carrying on what an earlier command's
    /// journal still holds (a repair that could not be done: the steps stay until this
    /// command's own make them whole).
    pub fn begin(project: &Project, command: &str) -> Result<Open> {
        let mut journal = read(&project.name, &project.dir)?.unwrap_or_default();
        journal.command = command.to_string();
        Ok(Open {
            dir: project.dir.clone(),
            state: Mutex::new(journal),
        })
    }

    /// Changes the journal and writes it before returning.
    pub fn update(&self, change: impl FnOnce(&mut Journal)) -> Result<()> {
        let mut state = self.state.lock().map_err(|_| {
            Error::io("write", &path_in(&self.dir))(std::io::Error::other("poisoned"))
        })?;
        change(&mut state);
        write(&self.dir, &state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::snapshots::undo_swaps;

    #[test]
    fn a_journal_is_written_whole_read_back_and_gone_once_clear() {
        let dir = tempfile::tempdir().expect("tmp");
        assert_eq!(read("p", dir.path()).expect("none"), None);
        let journal = Journal {
            command: "upgrade".into(),
            files: Some(Files {
                change: "the upgrade to 5.2.0".into(),
                previous: vec![(dir.path().join("a.yml"), "old\n".into())],
                backup: None,
            }),
            ..Journal::default()
        };
        write(dir.path(), &journal).expect("write");
        assert_eq!(read("p", dir.path()).expect("read"), Some(journal));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path_in(dir.path()))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        write(
            dir.path(),
            &Journal {
                command: "upgrade".into(),
                ..Journal::default()
            },
        )
        .expect("clear");
        assert!(
            !path_in(dir.path()).exists(),
            "nothing left to repair: no file"
        );
        std::fs::write(path_in(dir.path()), "{torn").expect("torn");
        let err = read("p", dir.path()).expect_err("unreadable");
        assert!(err.to_string().contains("remove it to go on"), "{err}");
    }

    #[test]
    fn only_a_restores_swaps_or_an_unreadable_journal_keep_the_staging_folders() {
        let dir = tempfile::tempdir().expect("tmp");
        assert!(!needs_staging("p", dir.path()), "no journal");
        let held = Journal {
            command: "snapshot create".into(),
            files: Some(Files {
                change: "x".into(),
                previous: Vec::new(),
                backup: None,
            }),
            ..Journal::default()
        };
        write(dir.path(), &held).expect("write");
        assert!(!needs_staging("p", dir.path()), "nothing staged is needed");
        let data = dir.path().join("data");
        let staged = dir.path().join(".staging-data-1");
        std::fs::create_dir(&data).expect("mkdir");
        std::fs::create_dir(&staged).expect("mkdir");
        let restoring = Journal {
            command: "snapshot restore".into(),
            swaps: vec![Swap::of(&data, &staged).expect("swap")],
            ..Journal::default()
        };
        write(dir.path(), &restoring).expect("write");
        assert!(needs_staging("p", dir.path()), "a swap to undo");
        std::fs::write(path_in(dir.path()), "{torn").expect("torn");
        assert!(needs_staging("p", dir.path()), "unreadable: kept");
    }

    #[test]
    fn swaps_cut_short_are_undone_so_every_folder_holds_what_it_held_before() {
        let dir = tempfile::tempdir().expect("tmp");
        let folder = |name: &str, marker: &str| {
            let path = dir.path().join(name);
            std::fs::create_dir(&path).expect("mkdir");
            std::fs::write(path.join("marker"), marker).expect("marker");
            path
        };
        let pairs = [
            (folder("node1", "old1"), folder(".staging-node1-1", "new1")),
            (folder("node2", "old2"), folder(".staging-node2-1", "new2")),
        ];
        let swaps: Vec<Swap> = pairs
            .iter()
            .map(|(d, s)| Swap::of(d, s).expect("swap"))
            .collect();
        // Killed after the first swap, before the second.
        crate::fsutil::exchange(&pairs[0].0, &pairs[0].1).expect("exchange");
        assert!(swaps[0].done().expect("done") && !swaps[1].done().expect("not done"));
        assert_eq!(undo_swaps(&swaps).expect("undo"), 1);
        for (n, (data, staged)) in pairs.iter().enumerate() {
            let read = |p: &Path| std::fs::read_to_string(p.join("marker")).expect("read");
            assert_eq!(read(data), format!("old{}", n + 1));
            assert_eq!(read(staged), format!("new{}", n + 1));
        }
        assert_eq!(
            undo_swaps(&swaps).expect("again"),
            0,
            "undoing twice is a no-op"
        );
    }
}
