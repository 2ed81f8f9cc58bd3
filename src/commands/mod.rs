//! One module per command; each takes resolved settings and never parses arguments.

use std::path::PathBuf;

use crate::error::Result;
use crate::project::{InitOptions, Project, journal};
use crate::settings::Settings;

pub mod adopt;
pub mod ca;
pub mod completions;
pub mod doctor;
pub mod export;
pub mod init;
pub mod lifecycle;
pub mod ls;
pub mod open;
mod repair;
pub mod runtime;
pub mod snapshot;
pub mod status;
pub mod tls;
pub mod trust;
pub mod up;
pub mod upgrade;
pub mod versions;

/// What the command line asked for, resolved: one typed request per command.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `up`.
    Up(up::UpRequest),
    /// `stop [NAME]`.
    Stop {
        /// The project, if named.
        name: Option<String>,
    },
    /// `down [NAME]`.
    Down {
        /// The project, if named.
        name: Option<String>,
    },
    /// `destroy NAME`.
    Destroy {
        /// The project.
        name: String,
        /// Confirmed on the command line.
        yes: bool,
    },
    /// `status [NAME]`.
    Status {
        /// The project, if named.
        name: Option<String>,
    },
    /// `logs`.
    Logs(status::LogsRequest),
    /// `upgrade`.
    Upgrade(upgrade::UpgradeRequest),
    /// `adopt`.
    Adopt(adopt::AdoptRequest),
    /// `export kubernetes`.
    ExportKubernetes(export::ExportRequest),
    /// `snapshot create`.
    SnapshotCreate {
        /// The project.
        name: String,
        /// The label, if given.
        label: Option<String>,
        /// The zstd level, if given.
        level: Option<i32>,
    },
    /// `snapshot ls`.
    SnapshotLs {
        /// The project.
        name: String,
    },
    /// `snapshot restore`.
    SnapshotRestore(snapshot::RestoreRequest),
    /// `snapshot rm`.
    SnapshotRm {
        /// The project.
        name: String,
        /// The snapshot.
        label: String,
    },
    /// `doctor`.
    Doctor,
    /// `init`.
    Init(InitOptions),
    /// `ls`.
    Ls,
    /// `open`.
    Open {
        /// The project, if given.
        name: Option<String>,
        /// Fauxton rather than the app.
        fauxton: bool,
    },
    /// `tls NAME MODE`.
    Tls(tls::TlsRequest),
    /// `versions`.
    Versions,
    /// `ca` (show the CA, optionally writing its DER form).
    Ca {
        /// Where to write the DER form.
        der: Option<PathBuf>,
    },
    /// `ca install` / `ca uninstall`.
    Trust {
        /// Install (else uninstall).
        install: bool,
        /// The system store too.
        system: bool,
    },
}

impl Action {
    /// Whether the command always talks to the engine, so its connection can begin while
    /// the command reads its files.
    fn needs_engine(&self) -> bool {
        matches!(
            self,
            Action::Up(_)
                | Action::Stop { .. }
                | Action::Down { .. }
                | Action::Status { .. }
                | Action::Logs(_)
                | Action::Upgrade(_)
                | Action::SnapshotCreate { .. }
                | Action::SnapshotRestore(_)
                | Action::Doctor
                | Action::Ls
        )
    }
}

/// Runs one resolved command; with `--timings`, then prints its engine calls on stderr
/// (whether it succeeded or not).
pub fn run(settings: &Settings, action: &Action) -> Result<()> {
    // Start-up: what a killed command left half done, from its journal, said on stderr. The
    // repair goes first: a restore's staging folder may hold the data to swap back. Then
    // what killed processes left in the home (staging folders, half-written files), but in
    // a project whose repair could not undo a restore's swaps yet. A home that cannot be
    // resolved is the command's own error to report, if it needs one.
    crate::faults::point("started");
    let result = runtime::drive(async {
        if action.needs_engine() {
            settings.connect_ahead();
        }
        for line in repair::run(settings).await {
            settings.printer.always_warn(&line);
        }
        if let Ok(home) = settings.home() {
            home.sweep_leftovers(&|name| journal::needs_staging(name, &home.project_dir(name)));
        }
        dispatch(settings, action).await
    });
    if let Some(timeline) = &settings.timeline {
        for line in runtime::timeline_lines(&timeline.calls()) {
            settings.printer.always_warn(&line);
        }
    }
    result
}

/// Runs one resolved command.
async fn dispatch(settings: &Settings, action: &Action) -> Result<()> {
    let p = &settings.printer;
    match action {
        Action::Up(req) => p.report(&up::run(settings, req).await?),
        Action::Stop { name } => p.report(&lifecycle::stop(settings, name.as_deref()).await?),
        Action::Down { name } => p.report(&lifecycle::down(settings, name.as_deref()).await?),
        Action::Destroy { name, yes } => p.report(&lifecycle::destroy(settings, name, *yes).await?),
        Action::Status { name } => p.report(&status::status(settings, name.as_deref()).await?),
        Action::Logs(req) => status::logs(settings, req).await,
        Action::Upgrade(req) => p.report(&upgrade::run(settings, req).await?),
        Action::Adopt(req) => p.report(&adopt::run(settings, req).await?),
        Action::ExportKubernetes(req) => p.report(&export::run(settings, req)?),
        Action::SnapshotCreate { name, label, level } => {
            p.report(&snapshot::create(settings, name, label.as_deref(), *level).await?)
        }
        Action::SnapshotLs { name } => p.report(&snapshot::ls(settings, name)?),
        Action::SnapshotRestore(req) => p.report(&snapshot::restore(settings, req).await?),
        Action::SnapshotRm { name, label } => p.report(&snapshot::rm(settings, name, label)?),
        Action::Doctor => {
            let doctor = doctor::run(settings).await?;
            p.report(&doctor)?;
            doctor.verdict()
        }
        Action::Init(opts) => p.report(&init::run(settings, opts)?),
        Action::Ls => p.report(&ls::run(settings).await?),
        Action::Open { name, fauxton } => {
            p.report(&open::run(settings, name.as_deref(), *fauxton)?)
        }
        Action::Tls(req) => p.report(&tls::run(settings, req).await?),
        Action::Versions => p.report(&versions::run()),
        Action::Ca { der } => p.report(&ca::run(settings, der.as_deref())?),
        Action::Trust {
            install: true,
            system,
        } => p.report(&trust::install(settings, *system)?),
        Action::Trust {
            install: false,
            system,
        } => p.report(&trust::uninstall(settings, *system)?),
    }
}

/// The profile `up` hands the stack: the project certificate reissued first when it
/// nears expiry or misses a name (said on `reporter`), and marked changed then or when
/// `replaced`.
pub(crate) fn profile_for_up(
    home: &crate::home::Home,
    project: &Project,
    replaced: bool,
    reporter: &dyn crate::progress::Reporter,
) -> Result<crate::stack::profile::Profile> {
    let renewed = crate::project::certs::renew_certificate(home, project)?;
    if renewed {
        reporter.step("reissued the project certificate (expiring, or the LAN address changed)");
    }
    crate::project::profile::profile(
        project,
        &crate::tls::CaFiles::of(home).cert,
        renewed || replaced,
    )
}

/// The profile of a command that changes no certificate.
pub(crate) fn profile_of(
    home: &crate::home::Home,
    project: &Project,
) -> Result<crate::stack::profile::Profile> {
    crate::project::profile::profile(project, &crate::tls::CaFiles::of(home).cert, false)
}

/// Asks `question` on the terminal and whether the user typed `name` to confirm; without
/// a terminal on stdin, refuses with `refusal` (commands never prompt in CI).
pub fn confirm_by_name(question: &str, name: &str, refusal: String) -> Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err(crate::error::Error::NotConfirmed(refusal));
    }
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{question} Type the project name to confirm: ");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(crate::error::Error::Output)?;
    Ok(answer.trim() == name)
}

/// Formats rows as left-aligned columns separated by two spaces (no trailing blanks).
pub fn table(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 < row.len() {
                    line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
                } else {
                    line.push_str(cell);
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_aligns_columns() {
        let rows = vec![
            vec!["NAME".to_string(), "PORT".to_string()],
            vec!["longer".to_string(), "1".to_string()],
        ];
        assert_eq!(super::table(&rows), ["NAME    PORT", "longer  1"]);
    }
}
