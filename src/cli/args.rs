//! The command line as clap parses it: every command, its arguments and their help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::project::{InitOptions, TlsMode};
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
  cht-dev snapshot create my-app --label before-upgrade
  cht-dev snapshot create my-app --level 9               smaller, slower")]
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

    /// zstd compression level, 1 (fastest) to 19 (smallest) [default: 3]
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub level: Option<i32>,
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
