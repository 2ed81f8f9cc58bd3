//! Command-line arguments as clap parses them, and their resolution into settings.

use std::ffi::OsString;
use std::time::Duration;

use clap::{CommandFactory, Parser};

use crate::commands::adopt::AdoptRequest;
use crate::commands::export::ExportRequest;
use crate::commands::snapshot::RestoreRequest;
use crate::commands::status::LogsRequest;
use crate::commands::tls::TlsRequest;
use crate::commands::up::UpRequest;
use crate::commands::upgrade::UpgradeRequest;
use crate::commands::{self, Action};
use crate::error::{Error, Result};
use crate::printer::{Mode, Printer};
use crate::project::TlsMode;

use crate::settings::Settings;
use crate::stack::images::PullPolicy;

mod args;
#[cfg(test)]
mod tests;

pub use self::args::*;

/// What a command line resolves to: a command for `commands::run`, or a completion
/// script (which needs clap's own description of the command line).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Resolved {
    /// A command with its typed request.
    Action(Box<Action>),
    /// `completions SHELL`.
    Completions(clap_complete::Shell),
}

impl Cli {
    /// The one place raw arguments become settings and a typed request; everything after
    /// this sees no clap type.
    pub(crate) fn resolve(&self) -> (Settings, Resolved) {
        let mode = match (self.json, self.quiet) {
            (true, _) => Mode::Json,
            (false, true) => Mode::Quiet,
            (false, false) => Mode::Human,
        };
        let settings = Settings::new(self.home.clone(), Printer::from_env(mode))
            .with_timings(self.timings)
            .with_context(self.context.clone())
            .with_product_early(matches!(self.command, Command::Up(_) | Command::Upgrade(_)));
        let action = match &self.command {
            Command::Up(args) => Action::Up(UpRequest {
                name: args.name.clone(),
                init: args
                    .project
                    .to_options(args.name.as_deref().unwrap_or_default()),
                init_given: args.project.any_given(),
                pull: args.pull.into(),
                timeout: Duration::from_secs(args.timeout),
                no_wait: args.no_wait,
            }),
            Command::Doctor => Action::Doctor,
            Command::Export(ExportCommand::Kubernetes(args)) => {
                Action::ExportKubernetes(ExportRequest {
                    name: args.name.clone(),
                    out: args.out.clone(),
                    namespace: args.namespace.clone(),
                    host: args.host.clone(),
                    helm_values: args.helm_values.clone(),
                    image_registry: args.image_registry.clone(),
                    pull: args.pull.map(PullPolicy::from),
                    no_upgrade_service: args.no_upgrade_service,
                })
            }
            Command::Snapshot(command) => snapshot_action(command),
            Command::Adopt(args) => Action::Adopt(AdoptRequest {
                env_file: args.env_file.clone(),
                name: args.name.clone(),
                copy_data: args.copy_data,
                tls: if args.tls == "local-ca" {
                    TlsMode::LocalCa
                } else {
                    TlsMode::LocalIp
                },
            }),
            Command::Upgrade(args) => Action::Upgrade(UpgradeRequest {
                name: args.name.clone(),
                version: args.cht_version.clone(),
                force: args.force,
                pull: args.pull.into(),
                timeout: Duration::from_secs(args.timeout),
            }),
            Command::Stop(args) => Action::Stop {
                name: args.name.clone(),
            },
            Command::Down(args) => Action::Down {
                name: args.name.clone(),
            },
            Command::Destroy(args) => Action::Destroy {
                name: args.name.clone(),
                yes: args.yes,
            },
            Command::Status(args) => Action::Status {
                name: args.name.clone(),
            },
            Command::Logs(args) => Action::Logs(LogsRequest {
                name: args.name.clone(),
                service: args.service.clone(),
                follow: args.follow,
                tail: args.tail,
            }),
            Command::Init(args) => Action::Init(args.project.to_options(&args.name)),
            Command::Ls(_) => Action::Ls,
            Command::Open(args) => Action::Open {
                name: args.name.clone(),
                fauxton: args.fauxton,
            },
            Command::Tls(args) => Action::Tls(TlsRequest {
                name: args.name.clone(),
                mode: args.mode.into(),
                refresh: args.refresh,
                cert_file: args.cert_file.clone(),
                key_file: args.key_file.clone(),
            }),
            Command::Versions(_) => Action::Versions,
            Command::Ca(args) => ca_action(args),
            Command::Completions(args) => return (settings, Resolved::Completions(args.shell)),
        };
        (settings, Resolved::Action(Box::new(action)))
    }
}

/// The typed request of a `snapshot` command line.
fn snapshot_action(command: &SnapshotCommand) -> Action {
    match command {
        SnapshotCommand::Create(args) => Action::SnapshotCreate {
            name: args.name.clone(),
            label: args.label.clone(),
            level: args.level,
        },
        SnapshotCommand::Ls(args) => Action::SnapshotLs {
            name: args.name.clone(),
        },
        SnapshotCommand::Restore(args) => Action::SnapshotRestore(RestoreRequest {
            name: args.name.clone(),
            label: args.label.clone(),
            yes: args.yes,
            timeout: Duration::from_secs(args.timeout),
        }),
        SnapshotCommand::Rm(args) => Action::SnapshotRm {
            name: args.name.clone(),
            label: args.label.clone(),
        },
    }
}

/// The typed request of a `ca` command line.
fn ca_action(args: &CaArgs) -> Action {
    match &args.action {
        None => Action::Ca {
            der: args.der.clone(),
        },
        Some(CaAction::Install(t)) => Action::Trust {
            install: true,
            system: t.system,
        },
        Some(CaAction::Uninstall(t)) => Action::Trust {
            install: false,
            system: t.system,
        },
    }
}

/// Parses `args`, resolves them, and runs the command they name.
pub fn run<I, T>(args: I) -> Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    commands::runtime::exit_on_early_interrupt();
    let cli = Cli::try_parse_from(args).map_err(parse_error)?;
    let (settings, resolved) = cli.resolve();
    if settings.printer.is_json()
        && let Ok(text) = crate::printer::json_text(&error_document(&Error::Interrupted))
    {
        commands::runtime::answer_early_interrupt_with(format!("{text}\n"));
    }
    let result = match &resolved {
        Resolved::Action(action) => commands::run(&settings, action),
        Resolved::Completions(shell) => {
            commands::completions::run(&settings, &mut Cli::command(), *shell)
        }
    };
    if let Err(e) = &result
        && settings.printer.is_json()
        && !matches!(e, Error::Unhealthy { .. })
    {
        let _ = settings.printer.json(&error_document(e));
    }
    result
}

/// The JSON document `--json` prints on stdout for a failed command.
fn error_document(e: &Error) -> serde_json::Value {
    serde_json::json!({
        "error": e.to_string(),
        "exit_code": e.exit_code(),
    })
}

/// clap's verdict on a command line as cht-dev's error: help and version text to print,
/// or one line saying what is wrong.
fn parse_error(e: clap::Error) -> Error {
    if e.use_stderr() {
        Error::Usage(usage_line(&e))
    } else if crate::printer::colour_on(&std::io::stdout()) {
        Error::Help(e.render().ansi().to_string())
    } else {
        Error::Help(e.render().to_string())
    }
}

/// Condenses a clap parse error to one line: the error, any tip, and where help is.
pub fn usage_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("error: invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // "the following required arguments were not provided:" lists them on the next line.
    let first = match first.strip_suffix(':') {
        Some(head) => format!("{head}: {}", lines.next().unwrap_or_default()),
        None => first.to_string(),
    };
    let tip = lines
        .find_map(|l| l.strip_prefix("tip: "))
        .map(|t| format!("; {t}"))
        .unwrap_or_default();
    format!("{first}{tip} (see --help)")
}
