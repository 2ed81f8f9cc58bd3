//! Command-line arguments as clap parses them, and their resolution into settings.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};

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
use crate::project::{InitOptions, TlsMode};
use crate::settings::Settings;
use crate::stack::images::PullPolicy;

/// Examples shown under `cht-dev --help`.
const MAIN_EXAMPLES: &str = "\
Examples:
  cht-dev up                                first run: create project `cht` and start it over HTTPS
  cht-dev up my-app --cht-version 4.22.0    create (if needed) and start a 4.x project
  cht-dev status my-app                     what each service is doing
  cht-dev down my-app                       remove containers, keep data
  cht-dev ls                                list projects
  cht-dev ca                                show the local CA and how to trust it";

/// Run a Community Health Toolkit stack on this machine, with HTTPS that just works.
#[derive(Debug, Parser)]
#[command(name = "cht-dev", version, after_help = MAIN_EXAMPLES)]
pub struct Cli {
    /// Folder holding the local CA and all projects [default: $CHT_DEV_HOME, else the user data dir]
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Print only requested data and errors
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Print one JSON document on stdout (errors too), for scripts and CI
    #[arg(long, global = true)]
    pub json: bool,

    /// Print every engine call with its start and end on stderr afterwards (where the time goes)
    #[arg(long, global = true)]
    pub timings: bool,

    /// The docker context whose engine to use [default: DOCKER_HOST, DOCKER_CONTEXT, the docker CLI's current context, then the standard and well-known sockets]
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the project if needed, start it, and wait until HTTPS reaches the API
    #[command(after_help = "\
Examples:
  cht-dev up                                   the only project, or a new one named cht
  cht-dev up my-app --cht-version 4.22.0       create my-app if needed, then start it
  cht-dev up ci --image-registry localhost:5000/medic --pull never --timeout 120
  cht-dev up my-app --no-wait --json           start and print JSON without waiting")]
    Up(UpArgs),

    /// Stop a project's containers (they stay, with their data)
    #[command(after_help = "\
Examples:
  cht-dev stop my-app")]
    Stop(NameArg),

    /// Remove a project's containers and network; keep volumes, data, certificates and files
    #[command(after_help = "\
Examples:
  cht-dev down my-app
  cht-dev up my-app        brings it back with the same data")]
    Down(NameArg),

    /// Delete a project entirely: containers, network, volumes, CouchDB data and folder
    #[command(after_help = "\
Examples:
  cht-dev destroy my-app          asks you to type the name
  cht-dev destroy my-app --yes    for scripts (required when stdin is not a terminal)")]
    Destroy(DestroyArgs),

    /// Show each service's state, health, image and ports, and the URL
    #[command(after_help = "\
Examples:
  cht-dev status
  cht-dev status my-app --json")]
    Status(StatusArgs),

    /// Show a project's container logs
    #[command(after_help = "\
Examples:
  cht-dev logs my-app
  cht-dev logs my-app api --follow
  cht-dev logs my-app couchdb --tail 50")]
    Logs(LogsArgs),

    /// Move a project to another CHT release: new files, only changed services recreated, data kept; rolls back on failure
    #[command(after_help = "\
Examples:
  cht-dev upgrade my-app --cht-version 5.2.0      4.x to 5.x swaps the healthcheck for Nouveau
  cht-dev upgrade my-app --cht-version 4.21.0 --force   a downgrade, only if you mean it")]
    Upgrade(UpgradeArgs),

    /// Take over a project made by the bash Docker Helper (its NAME.env), keeping ports, credentials and data
    #[command(after_help = "\
Examples:
  cht-dev adopt ~/my-project.env              data stays in ~/.medic/cht-docker/my-project-dir/couch
  cht-dev adopt ~/my-project.env --copy-data  copy it into the cht-dev project folder
  cht-dev adopt ~/my-project.env --tls local-ca   the local CA instead of the helper's local-ip certificate
  cht-dev up my-project")]
    Adopt(AdoptArgs),

    /// Export a project for another platform
    #[command(subcommand)]
    Export(ExportCommand),

    /// Consistent copies of a project's CouchDB data: create, list, restore, remove
    #[command(subcommand)]
    Snapshot(SnapshotCommand),

    /// Check what `up` depends on: engine, ports, disk, CA, LAN address (non-zero exit if something blocks it)
    #[command(after_help = "\
Examples:
  cht-dev doctor
  cht-dev doctor --json")]
    Doctor,

    /// Create a project: compose files, .env with random credentials, TLS certificate
    #[command(after_help = "\
Examples:
  cht-dev init my-app
  cht-dev init legacy --cht-version 4.22.0 --http-port 8080 --https-port 8443
  cht-dev init lan --host cht.local --host 192.168.1.20
  cht-dev init ci --image-registry localhost:5000/medic
  cht-dev init phone --tls local-ip              for the CHT Android app on a phone on this network
  cht-dev init clinic --domain cht.clinic.org --http-port 80 --https-port 443 \\
      --cert-file /etc/letsencrypt/live/cht.clinic.org/fullchain.pem \\
      --key-file /etc/letsencrypt/live/cht.clinic.org/privkey.pem")]
    Init(InitArgs),

    /// Switch a project's certificate (local-ca, local-ip or own) and reload nginx if it runs
    #[command(after_help = "\
Examples:
  cht-dev tls my-app local-ip              for phones: the CHT Android app trusts it
  cht-dev tls my-app local-ip --refresh    download the local-ip certificate again now
  cht-dev tls my-app local-ca              back to the local CA (desktop browsers)
  cht-dev tls my-app own --cert-file fullchain.pem --key-file privkey.pem")]
    Tls(TlsArgs),

    /// Open a project, or its Fauxton, in the default browser (xdg-open, or open on macOS)
    #[command(after_help = "\
Examples:
  cht-dev open
  cht-dev open my-app --fauxton")]
    Open(OpenArgs),

    /// List projects with their version, ports and URL
    #[command(after_help = "\
Examples:
  cht-dev ls
  cht-dev ls --json | jq '.[].url'")]
    Ls(LsArgs),

    /// List the CHT versions cht-dev can run (newest first; the first is the default)
    #[command(after_help = "\
Examples:
  cht-dev versions
  cht-dev versions --json")]
    Versions(VersionsArgs),

    /// Show the local CA (made on first use) and how to trust it
    #[command(after_help = "\
Examples:
  cht-dev ca
  cht-dev ca --der cht-dev-ca.crt     the DER form, for Android phones")]
    Ca(CaArgs),

    /// Print a shell completion script
    #[command(after_help = "\
Examples:
  cht-dev completions bash > ~/.local/share/bash-completion/completions/cht-dev
  cht-dev completions zsh > ~/.zfunc/_cht-dev
  cht-dev completions fish > ~/.config/fish/completions/cht-dev.fish")]
    Completions(CompletionsArgs),
}

/// Options that shape a new project (shared by `init` and, later, `up`).
#[derive(Debug, Clone, Args)]
pub struct ProjectArgs {
    /// CHT release to run [default: the newest known; see `cht-dev versions`]
    #[arg(long, value_name = "V")]
    pub cht_version: Option<String>,

    /// Host port for HTTP (redirects to HTTPS) [default: 10080, or the next free port]
    #[arg(long, value_name = "N")]
    pub http_port: Option<u32>,

    /// Host port for HTTPS [default: 10443, or the next free port]
    #[arg(long, value_name = "N")]
    pub https_port: Option<u32>,

    /// Registry to take CHT images from instead of public.ecr.aws/medic
    #[arg(long, value_name = "R")]
    pub image_registry: Option<String>,

    /// Extra DNS name or IP address for the certificate (repeatable)
    #[arg(long = "host", value_name = "H")]
    pub hosts: Vec<String>,

    /// Public domain (production): added to the certificate and used in printed URLs
    #[arg(long, value_name = "NAME")]
    pub domain: Option<String>,

    /// Where the certificate comes from: local-ca (desktop browsers), local-ip (phones: the CHT Android app trusts it) [default: local-ca; own with --cert-file]
    #[arg(long, value_enum, value_name = "MODE")]
    pub tls: Option<TlsArg>,

    /// Your own certificate (PEM, full chain) instead of one from the local CA; with --key-file
    #[arg(long, value_name = "FILE", requires = "key_file")]
    pub cert_file: Option<PathBuf>,

    /// The key of --cert-file (PEM, PKCS#8, unencrypted)
    #[arg(long, value_name = "FILE", requires = "cert_file")]
    pub key_file: Option<PathBuf>,

    /// CouchDB nodes: 1, or 3 for upstream's three-node cluster [default: 1]
    #[arg(long, value_name = "N")]
    pub couchdb_nodes: Option<u32>,
}

/// Arguments of `init`.
#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// Project name: lowercase letters, digits, '-' and '_', starting with a letter or digit
    pub name: String,

    /// How the project is made.
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Arguments of `up`.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Project name [default: the only project, or a new one named `cht`]
    pub name: Option<String>,

    /// How the project is made, when it does not exist yet.
    #[command(flatten)]
    pub project: ProjectArgs,

    /// When to pull images
    #[arg(long, value_enum, default_value = "missing")]
    pub pull: PullArg,

    /// Seconds to wait for HTTPS to reach the API
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub timeout: u64,

    /// Start the containers and return without waiting for readiness
    #[arg(long)]
    pub no_wait: bool,
}

/// What `export` can produce.
#[derive(Debug, Clone, Subcommand)]
pub enum ExportCommand {
    /// Kubernetes manifests (the kubectl migration), and optionally Helm chart values
    #[command(after_help = "\
Examples:
  cht-dev export kubernetes my-app --out k8s/
  cht-dev export kubernetes my-app --out k8s/ --namespace my-app --host cht.example.org --helm-values values.yaml
  cht-dev export kubernetes my-app --out k8s/ --image-registry registry.local:5000/medic --pull never")]
    Kubernetes(ExportArgs),
}

/// What `snapshot` does.
#[derive(Debug, Clone, Subcommand)]
pub enum SnapshotCommand {
    /// Copy the CouchDB data (Nouveau's index too), stopping CouchDB and its writers only for the copy
    #[command(after_help = "\
Examples:
  cht-dev snapshot create my-app                          labelled with the date and time
  cht-dev snapshot create my-app --label before-upgrade")]
    Create(SnapshotCreateArgs),

    /// List a project's snapshots with their CHT version, date and size
    #[command(after_help = "\
Examples:
  cht-dev snapshot ls my-app
  cht-dev snapshot ls my-app --json")]
    Ls(SnapshotLsArgs),

    /// Replace the project's CouchDB data with a snapshot (asks first; --yes in scripts)
    #[command(after_help = "\
Examples:
  cht-dev snapshot restore my-app before-upgrade
  cht-dev snapshot restore my-app before-upgrade --yes")]
    Restore(SnapshotRestoreArgs),

    /// Remove a snapshot
    #[command(after_help = "\
Examples:
  cht-dev snapshot rm my-app before-upgrade")]
    Rm(SnapshotLabelArgs),
}

/// Arguments of `snapshot create`.
#[derive(Debug, Clone, Args)]
pub struct SnapshotCreateArgs {
    /// Project name
    pub name: String,

    /// The snapshot's name [default: the date and time, e.g. 2026-11-23T01-30-05Z]
    #[arg(long)]
    pub label: Option<String>,
}

/// Arguments of `snapshot ls`.
#[derive(Debug, Clone, Args)]
pub struct SnapshotLsArgs {
    /// Project name
    pub name: String,
}

/// Arguments naming one snapshot.
#[derive(Debug, Clone, Args)]
pub struct SnapshotLabelArgs {
    /// Project name
    pub name: String,

    /// The snapshot's label (see `cht-dev snapshot ls NAME`)
    pub label: String,
}

/// Arguments of `snapshot restore`.
#[derive(Debug, Clone, Args)]
pub struct SnapshotRestoreArgs {
    /// Project name
    pub name: String,

    /// The snapshot's label (see `cht-dev snapshot ls NAME`)
    pub label: String,

    /// Replace the data without asking
    #[arg(long)]
    pub yes: bool,

    /// Seconds to wait for the stack to be ready again, when it runs
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
}

/// Arguments of `export kubernetes`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Project name
    pub name: String,

    /// Folder to write the manifests to
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Kubernetes namespace [default: the project name]
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,

    /// Ingress host [default: the project's --domain, else NAME.local]
    #[arg(long, value_name = "DOMAIN")]
    pub host: Option<String>,

    /// Also write a values file for CHT's Helm chart (data marked pre-existing), and print the helm install command
    #[arg(long, value_name = "FILE")]
    pub helm_values: Option<PathBuf>,

    /// Registry the cluster takes CHT's images (and the upgrade service's) from [default: the project's]
    #[arg(long, value_name = "R")]
    pub image_registry: Option<String>,

    /// How the cluster pulls images: never or missing give every container imagePullPolicy IfNotPresent (offline clusters); always gives Always [default: IfNotPresent with a registry of your own, else Kubernetes' default]
    #[arg(long, value_enum)]
    pub pull: Option<PullArg>,

    /// Leave the upgrade service out (4.x; the 5.x chart has none), as the chart's `environment: local` does
    #[arg(long)]
    pub no_upgrade_service: bool,
}

/// Arguments of `adopt`.
#[derive(Debug, Clone, Args)]
pub struct AdoptArgs {
    /// The helper's project file, NAME.env
    pub env_file: PathBuf,

    /// Project name in cht-dev [default: NAME from the file name]
    #[arg(long)]
    pub name: Option<String>,

    /// Copy the CouchDB data into the project folder instead of using it where it is
    #[arg(long)]
    pub copy_data: bool,

    /// The certificate: local-ip, as the helper served it (phones trust it), or local-ca
    #[arg(long, value_name = "MODE", default_value = "local-ip", value_parser = ["local-ip", "local-ca"])]
    pub tls: String,
}

/// Arguments of `upgrade`.
#[derive(Debug, Clone, Args)]
pub struct UpgradeArgs {
    /// Project name
    pub name: String,

    /// The release to move to (see `cht-dev versions`)
    #[arg(long, value_name = "V")]
    pub cht_version: String,

    /// Allow moving to an older release
    #[arg(long)]
    pub force: bool,

    /// When to pull images
    #[arg(long, value_enum, default_value = "missing")]
    pub pull: PullArg,

    /// Seconds to wait for the new release to answer over HTTPS
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub timeout: u64,
}

/// A command that takes an optional project name.
#[derive(Debug, Clone, Args)]
pub struct NameArg {
    /// Project name [default: the only project]
    pub name: Option<String>,
}

/// Arguments of `destroy`.
#[derive(Debug, Clone, Args)]
pub struct DestroyArgs {
    /// Project name
    pub name: String,

    /// Do not ask for confirmation
    #[arg(long, short)]
    pub yes: bool,
}

/// Arguments of `status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Project name [default: the only project]
    pub name: Option<String>,
}

/// Arguments of `logs`.
#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Project name
    pub name: String,

    /// Only this service (e.g. api, couchdb, nginx)
    pub service: Option<String>,

    /// Keep printing new lines until Ctrl-C
    #[arg(long, short)]
    pub follow: bool,

    /// Only the last N lines of each container
    #[arg(long, value_name = "N")]
    pub tail: Option<u64>,
}

/// Arguments of `ls`.
#[derive(Debug, Clone, Args)]
pub struct LsArgs {}

/// Arguments of `tls`.
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// Project name
    pub name: String,

    /// Where the certificate comes from
    #[arg(value_enum)]
    pub mode: TlsArg,

    /// Download the local-ip certificate now, even if the kept one is fresh (local-ip only)
    #[arg(long)]
    pub refresh: bool,

    /// Your own certificate (PEM, full chain), with `own`
    #[arg(long, value_name = "FILE", requires = "key_file")]
    pub cert_file: Option<PathBuf>,

    /// The key of --cert-file (PEM, unencrypted), with `own`
    #[arg(long, value_name = "FILE", requires = "cert_file")]
    pub key_file: Option<PathBuf>,
}

/// Arguments of `open`.
#[derive(Debug, Clone, Args)]
pub struct OpenArgs {
    /// Project name [default: the only project]
    pub name: Option<String>,

    /// Open Fauxton, CouchDB's admin interface, instead of the app
    #[arg(long)]
    pub fauxton: bool,
}

/// Arguments of `versions`.
#[derive(Debug, Clone, Args)]
pub struct VersionsArgs {}

/// Arguments of `ca`.
#[derive(Debug, Clone, Args)]
pub struct CaArgs {
    /// Install or remove the CA in trust stores (without one: show the CA)
    #[command(subcommand)]
    pub action: Option<CaAction>,

    /// Also write the CA certificate in DER form to FILE (what Android phones import)
    #[arg(long, value_name = "FILE")]
    pub der: Option<PathBuf>,
}

/// What `ca` can do besides showing the CA.
#[derive(Debug, Clone, Subcommand)]
pub enum CaAction {
    /// Trust the CA for this user: Chromium/Chrome and Firefox (NSS databases, via certutil)
    #[command(after_help = "\
Examples:
  cht-dev ca install              this user's browsers; prints the system-store command
  sudo cht-dev ca install --system   also the system store (update-ca-certificates)")]
    Install(TrustArgs),
    /// Remove the CA from the places `ca install` put it
    #[command(after_help = "\
Examples:
  cht-dev ca uninstall
  sudo cht-dev ca uninstall --system")]
    Uninstall(TrustArgs),
}

/// Arguments of `ca install` and `ca uninstall`.
#[derive(Debug, Clone, Args)]
pub struct TrustArgs {
    /// Also change the system trust store (Linux: update-ca-certificates; needs root)
    #[arg(long)]
    pub system: bool,
}

/// Arguments of `completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    pub shell: clap_complete::Shell,
}

impl ProjectArgs {
    /// Whether any creation option was given.
    pub fn any_given(&self) -> bool {
        self.cht_version.is_some()
            || self.http_port.is_some()
            || self.https_port.is_some()
            || self.image_registry.is_some()
            || !self.hosts.is_empty()
            || self.domain.is_some()
            || self.cert_file.is_some()
            || self.couchdb_nodes.is_some()
            || self.tls.is_some()
    }

    /// The init options these arguments ask for, for project `name`.
    pub fn to_options(&self, name: &str) -> InitOptions {
        InitOptions {
            name: name.to_string(),
            cht_version: self.cht_version.clone(),
            http_port: self.http_port,
            https_port: self.https_port,
            image_registry: self.image_registry.clone(),
            hosts: self.hosts.clone(),
            domain: self.domain.clone(),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            couchdb_nodes: self.couchdb_nodes,
            tls: self.tls.map(TlsMode::from),
        }
    }
}

/// Where a certificate comes from, as the command line spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsArg {
    /// Issued by the local CA: desktop browsers trust it once `cht-dev ca install` ran
    LocalCa,
    /// The public *.local-ip.medicmobile.org certificate: phones and the CHT Android app trust it; its key is public, so test on a trusted network only
    LocalIp,
    /// Your own: give --cert-file and --key-file
    Own,
}

impl From<TlsArg> for TlsMode {
    fn from(arg: TlsArg) -> TlsMode {
        match arg {
            TlsArg::LocalCa => TlsMode::LocalCa,
            TlsArg::LocalIp => TlsMode::LocalIp,
            TlsArg::Own => TlsMode::Own,
        }
    }
}

/// When to pull images, as the command line spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PullArg {
    /// Pull only images not present locally.
    Missing,
    /// Pull every image, even when present.
    Always,
    /// Never pull; a missing image is an error.
    Never,
}

impl From<PullArg> for PullPolicy {
    fn from(arg: PullArg) -> PullPolicy {
        match arg {
            PullArg::Missing => PullPolicy::Missing,
            PullArg::Always => PullPolicy::Always,
            PullArg::Never => PullPolicy::Never,
        }
    }
}

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
            .with_context(self.context.clone());
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
            Command::Snapshot(SnapshotCommand::Create(args)) => Action::SnapshotCreate {
                name: args.name.clone(),
                label: args.label.clone(),
            },
            Command::Snapshot(SnapshotCommand::Ls(args)) => Action::SnapshotLs {
                name: args.name.clone(),
            },
            Command::Snapshot(SnapshotCommand::Restore(args)) => {
                Action::SnapshotRestore(RestoreRequest {
                    name: args.name.clone(),
                    label: args.label.clone(),
                    yes: args.yes,
                    timeout: Duration::from_secs(args.timeout),
                })
            }
            Command::Snapshot(SnapshotCommand::Rm(args)) => Action::SnapshotRm {
                name: args.name.clone(),
                label: args.label.clone(),
            },
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
            Command::Ca(args) => match &args.action {
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
            },
            Command::Completions(args) => return (settings, Resolved::Completions(args.shell)),
        };
        (settings, Resolved::Action(Box::new(action)))
    }
}

/// Parses `args`, resolves them, and runs the command they name.
pub fn run<I, T>(args: I) -> Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(args).map_err(parse_error)?;
    let (settings, resolved) = cli.resolve();
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
        let _ = settings.printer.json(&serde_json::json!({
            "error": e.to_string(),
            "exit_code": e.exit_code(),
        }));
    }
    result
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What `args` (after the program name) resolve to.
    fn resolved(args: &[&str]) -> (Settings, Resolved) {
        let cli = Cli::try_parse_from(std::iter::once("cht-dev").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?} should parse: {e}"));
        cli.resolve()
    }

    /// The typed request `args` resolve to.
    fn action(args: &[&str]) -> Action {
        match resolved(args).1 {
            Resolved::Action(a) => *a,
            other => panic!("{args:?} resolved to {other:?}"),
        }
    }

    #[test]
    fn every_command_resolves_to_its_typed_request() {
        let up_defaults = UpRequest {
            name: None,
            init: InitOptions::default(),
            init_given: false,
            pull: PullPolicy::Missing,
            timeout: Duration::from_secs(300),
            no_wait: false,
        };
        let table: Vec<(&[&str], Action)> = vec![
            (&["up"], Action::Up(up_defaults.clone())),
            (
                &[
                    "up",
                    "app",
                    "--cht-version",
                    "4.22.0",
                    "--pull",
                    "never",
                    "--timeout",
                    "60",
                    "--no-wait",
                ],
                Action::Up(UpRequest {
                    name: Some("app".into()),
                    init: InitOptions {
                        name: "app".into(),
                        cht_version: Some("4.22.0".into()),
                        ..InitOptions::default()
                    },
                    init_given: true,
                    pull: PullPolicy::Never,
                    timeout: Duration::from_secs(60),
                    no_wait: true,
                }),
            ),
            (
                &[
                    "up",
                    "app",
                    "--host",
                    "a.local",
                    "--host",
                    "10.0.0.2",
                    "--http-port",
                    "8080",
                ],
                Action::Up(UpRequest {
                    name: Some("app".into()),
                    init: InitOptions {
                        name: "app".into(),
                        hosts: vec!["a.local".into(), "10.0.0.2".into()],
                        http_port: Some(8080),
                        ..InitOptions::default()
                    },
                    init_given: true,
                    ..up_defaults.clone()
                }),
            ),
            (
                &["up", "app", "--couchdb-nodes", "3"],
                Action::Up(UpRequest {
                    name: Some("app".into()),
                    init: InitOptions {
                        name: "app".into(),
                        couchdb_nodes: Some(3),
                        ..InitOptions::default()
                    },
                    init_given: true,
                    ..up_defaults.clone()
                }),
            ),
            (&["stop"], Action::Stop { name: None }),
            (
                &["down", "app"],
                Action::Down {
                    name: Some("app".into()),
                },
            ),
            (
                &["destroy", "app", "-y"],
                Action::Destroy {
                    name: "app".into(),
                    yes: true,
                },
            ),
            (&["status"], Action::Status { name: None }),
            (
                &["logs", "app", "api", "-f", "--tail", "5"],
                Action::Logs(LogsRequest {
                    name: "app".into(),
                    service: Some("api".into()),
                    follow: true,
                    tail: Some(5),
                }),
            ),
            (
                &[
                    "upgrade",
                    "app",
                    "--cht-version",
                    "5.2.0",
                    "--force",
                    "--pull",
                    "always",
                ],
                Action::Upgrade(UpgradeRequest {
                    name: "app".into(),
                    version: "5.2.0".into(),
                    force: true,
                    pull: PullPolicy::Always,
                    timeout: Duration::from_secs(300),
                }),
            ),
            (
                &["snapshot", "create", "app"],
                Action::SnapshotCreate {
                    name: "app".into(),
                    label: None,
                },
            ),
            (
                &["snapshot", "ls", "app"],
                Action::SnapshotLs { name: "app".into() },
            ),
            (
                &[
                    "snapshot",
                    "restore",
                    "app",
                    "before",
                    "--yes",
                    "--timeout",
                    "9",
                ],
                Action::SnapshotRestore(RestoreRequest {
                    name: "app".into(),
                    label: "before".into(),
                    yes: true,
                    timeout: Duration::from_secs(9),
                }),
            ),
            (
                &["snapshot", "rm", "app", "before"],
                Action::SnapshotRm {
                    name: "app".into(),
                    label: "before".into(),
                },
            ),
            (
                &["adopt", "x.env", "--copy-data"],
                Action::Adopt(AdoptRequest {
                    env_file: "x.env".into(),
                    name: None,
                    copy_data: true,
                    tls: TlsMode::LocalIp,
                }),
            ),
            (
                &["adopt", "x.env", "--tls", "local-ca"],
                Action::Adopt(AdoptRequest {
                    env_file: "x.env".into(),
                    name: None,
                    copy_data: false,
                    tls: TlsMode::LocalCa,
                }),
            ),
            (
                &["tls", "app", "local-ip", "--refresh"],
                Action::Tls(TlsRequest {
                    name: "app".into(),
                    mode: TlsMode::LocalIp,
                    refresh: true,
                    cert_file: None,
                    key_file: None,
                }),
            ),
            (
                &["export", "kubernetes", "app", "--out", "k8s"],
                Action::ExportKubernetes(ExportRequest {
                    name: "app".into(),
                    out: "k8s".into(),
                    namespace: None,
                    host: None,
                    helm_values: None,
                    image_registry: None,
                    pull: None,
                    no_upgrade_service: false,
                }),
            ),
            (
                &[
                    "export",
                    "kubernetes",
                    "app",
                    "--out",
                    "k8s",
                    "--pull",
                    "never",
                    "--no-upgrade-service",
                ],
                Action::ExportKubernetes(ExportRequest {
                    name: "app".into(),
                    out: "k8s".into(),
                    namespace: None,
                    host: None,
                    helm_values: None,
                    image_registry: None,
                    pull: Some(PullPolicy::Never),
                    no_upgrade_service: true,
                }),
            ),
            (&["doctor"], Action::Doctor),
            (
                &["init", "app", "--domain", "cht.example.org"],
                Action::Init(InitOptions {
                    name: "app".into(),
                    domain: Some("cht.example.org".into()),
                    ..InitOptions::default()
                }),
            ),
            (&["ls"], Action::Ls),
            (
                &["open", "app", "--fauxton"],
                Action::Open {
                    name: Some("app".into()),
                    fauxton: true,
                },
            ),
            (&["versions"], Action::Versions),
            (
                &["ca", "--der", "ca.crt"],
                Action::Ca {
                    der: Some("ca.crt".into()),
                },
            ),
            (
                &["ca", "install", "--system"],
                Action::Trust {
                    install: true,
                    system: true,
                },
            ),
            (
                &["ca", "uninstall"],
                Action::Trust {
                    install: false,
                    system: false,
                },
            ),
        ];
        for (args, want) in table {
            assert_eq!(action(args), want, "{args:?}");
        }
    }

    #[test]
    fn global_options_resolve_into_settings_anywhere_on_the_line() {
        let (settings, _) = resolved(&["ls", "--json", "--home", "/tmp/h"]);
        assert!(settings.printer.is_json());
        assert_eq!(
            settings.home().expect("home").root(),
            std::path::Path::new("/tmp/h")
        );
        let (settings, _) = resolved(&["-q", "status"]);
        assert!(settings.printer.is_quiet() && !settings.printer.is_json());
        let (_, completions) = resolved(&["completions", "bash"]);
        assert_eq!(
            completions,
            Resolved::Completions(clap_complete::Shell::Bash)
        );
    }

    #[test]
    fn parse_failures_are_one_line_and_help_is_text() {
        let err = Cli::try_parse_from(["cht-dev", "up", "--pull", "sometimes"])
            .map_err(parse_error)
            .expect_err("bad value");
        let line = err.to_string();
        assert!(matches!(err, Error::Usage(_)), "{err:?}");
        assert!(
            !line.contains('\n') && line.ends_with("(see --help)"),
            "{line}"
        );
        assert_eq!(err.exit_code(), 2);
        let help = Cli::try_parse_from(["cht-dev", "--help"])
            .map_err(parse_error)
            .expect_err("help");
        assert!(matches!(&help, Error::Help(text) if text.contains("Examples:")));
        assert_eq!(help.exit_code(), 0);
    }
}
