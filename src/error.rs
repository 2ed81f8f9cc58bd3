//! Every failure cht-dev reports, with the context a user needs to fix it.

use std::path::PathBuf;

/// A failure of any cht-dev command; its `Display` is the one line shown to the user.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A project name that compose would not accept.
    #[error("invalid project name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it is refused and what would be accepted.
        reason: String,
    },
    /// A CHT version cht-dev has no templates for.
    #[error("unknown CHT version {version:?}: known versions are {known} (see `cht-dev versions`)")]
    UnknownVersion {
        /// The version as given.
        version: String,
        /// The known versions, comma separated.
        known: String,
    },
    /// A port number that can never work.
    #[error("invalid {which} port {port}: {reason}")]
    InvalidPort {
        /// Which port option (`http` or `https`).
        which: &'static str,
        /// The number as given.
        port: u32,
        /// What is wrong with it.
        reason: String,
    },
    /// A port that is valid but in use right now, by this machine or another project.
    #[error("{which} port {port} is busy: {reason}; pick another with --{which}-port")]
    PortBusy {
        /// Which port option (`http` or `https`).
        which: &'static str,
        /// The busy port.
        port: u16,
        /// Who holds it.
        reason: String,
    },
    /// No free pair of ports was found in the search range.
    #[error(
        "no free pair of ports found from {http}/{https} upwards; free some ports or pass --http-port and --https-port"
    )]
    NoFreePorts {
        /// The first HTTP port tried.
        http: u16,
        /// The first HTTPS port tried.
        https: u16,
    },
    /// An image registry that cannot prefix an image name.
    #[error(
        "invalid image registry {registry:?}: {reason} (example: --image-registry localhost:5000/medic)"
    )]
    InvalidRegistry {
        /// The registry as given.
        registry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A snapshot label the project has no snapshot of.
    #[error("{project} has no snapshot {label:?}; {known}")]
    SnapshotNotFound {
        /// The project.
        project: String,
        /// The label asked for.
        label: String,
        /// The snapshots it has, or how to take one.
        known: String,
    },
    /// A snapshot label already taken.
    #[error(
        "{project} already has a snapshot {label:?}; pick another --label or remove it with `cht-dev snapshot rm {project} {label}`"
    )]
    SnapshotExists {
        /// The project.
        project: String,
        /// The label.
        label: String,
    },
    /// A move to an older release, not forced.
    #[error(
        "{project} runs {current}; {target} is older (a downgrade can break CouchDB data): pass --force to do it anyway"
    )]
    Downgrade {
        /// The project.
        project: String,
        /// Its release now.
        current: String,
        /// The release asked for.
        target: String,
    },
    /// A port a Docker Helper project publishes is in use.
    #[error(
        "cannot adopt {file}: {key} {port} is busy: {reason}; stop what holds it (the helper's own containers: docker ps) and adopt again"
    )]
    HelperPortBusy {
        /// The helper's `.env`.
        file: PathBuf,
        /// The setting.
        key: &'static str,
        /// The port.
        port: u16,
        /// Who holds it.
        reason: String,
    },
    /// Writing settings or a record cht-dev made itself failed (a bug, or a value no file
    /// format can carry).
    #[error("cannot write {what}: {reason}")]
    Encode {
        /// What was being written.
        what: String,
        /// Why not.
        reason: String,
    },
    /// A failure, and a failure putting things back after it: the first is the cause.
    #[error("{error} (putting things back failed too: {rollback})")]
    RollbackFailed {
        /// What went wrong first.
        error: Box<Error>,
        /// What went wrong putting things back.
        rollback: Box<Error>,
    },
    /// Command-line options that do not fit together, or an option's value out of its
    /// range (only options: other refusals have variants of their own).
    #[error("{0}")]
    BadOption(String),
    /// Too little free space for what a command is about to write.
    #[error(
        "not enough free space in {} to {what}: it needs about {needed}, and {available} is free; free some space there and run it again",
        path.display()
    )]
    NoSpace {
        /// The folder written to.
        path: PathBuf,
        /// What would be written, for people.
        what: String,
        /// The space needed, for people.
        needed: String,
        /// The space free, for people.
        available: String,
    },
    /// A snapshot of a newer release than the project runs (its migrations already ran).
    #[error(
        "snapshot {label} holds CHT {version} data, newer than {project}'s {current}: upgrade the project first (`cht-dev upgrade {project} --cht-version {version}`)"
    )]
    SnapshotNewer {
        /// The snapshot.
        label: String,
        /// The release it holds data of.
        version: String,
        /// The project.
        project: String,
        /// The release the project runs.
        current: String,
    },
    /// A snapshot of another number of CouchDB nodes than the project runs.
    #[error(
        "snapshot {label} holds the data of {theirs}, and {project} runs {ours}: restore it into a project with the same number of CouchDB nodes"
    )]
    SnapshotLayout {
        /// The snapshot.
        label: String,
        /// The layout it holds data of, for people.
        theirs: &'static str,
        /// The project.
        project: String,
        /// The project's layout, for people.
        ours: &'static str,
    },
    /// A Docker Helper project file cht-dev refuses to take over.
    #[error("cannot adopt {}: {reason}", file.display())]
    CannotAdopt {
        /// The helper's `NAME.env`.
        file: PathBuf,
        /// What is wrong with it, and what to do.
        reason: String,
    },
    /// An environment variable cht-dev reads holds a value it cannot use.
    #[error("{var}={value:?} {reason}")]
    BadVariable {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is wrong, and what to give instead.
        reason: String,
    },
    /// A `--host` value that is neither a DNS name nor an IP address.
    #[error("invalid host {host:?}: use a DNS name such as cht.example.org or an IP address")]
    InvalidHost {
        /// The host as given.
        host: String,
    },
    /// A home directory path that the generated files cannot hold.
    #[error("invalid cht-dev home {path:?}: {reason}")]
    InvalidHome {
        /// The path as given or derived.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `init` of a project that already exists.
    #[error(
        "project {name:?} already exists in {dir}; choose another name or remove it first",
        dir = .dir.display()
    )]
    ProjectExists {
        /// The project name.
        name: String,
        /// Its folder.
        dir: PathBuf,
    },
    /// A command named a project that does not exist.
    #[error("no project named {name:?} in {home}; {hint}", home = .home.display())]
    ProjectNotFound {
        /// The project name.
        name: String,
        /// The home searched.
        home: PathBuf,
        /// The projects that do exist, or how to make one.
        hint: String,
    },
    /// Another cht-dev command holds the project's lock.
    #[error(
        "project {name:?} is busy: another cht-dev command (up, stop, down or destroy) is working on it; wait for it to finish and try again"
    )]
    Busy {
        /// The project name.
        name: String,
    },
    /// A host port the project publishes is taken by something else.
    #[error("port {port} ({what}) is busy: {reason}; free it, or set {fix}")]
    PublishedPortBusy {
        /// The port.
        port: u16,
        /// Which setting holds it, e.g. "NGINX_HTTPS_PORT".
        what: String,
        /// Who holds it.
        reason: String,
        /// How to move the project instead, e.g. "NGINX_HTTPS_PORT in /home/me/.../.env to a free port".
        fix: String,
    },
    /// A helper program failed or is missing.
    #[error("{program} {problem}")]
    Tool {
        /// The program, e.g. "certutil".
        program: String,
        /// What went wrong and how to fix it.
        problem: String,
    },
    /// `doctor` found problems that block `up`.
    #[error("{count} problem(s) above block `cht-dev up`")]
    Unhealthy {
        /// How many checks failed.
        count: usize,
    },
    /// A command needs a project and the home has none.
    #[error("no projects in {home}; create one with `cht-dev up` or `cht-dev init NAME`", home = .home.display())]
    NoProjects {
        /// The home searched.
        home: PathBuf,
    },
    /// A project folder whose files cannot be read as a cht-dev project.
    #[error("project {name:?} is damaged: {reason}")]
    BrokenProject {
        /// The project name.
        name: String,
        /// What is missing or unreadable.
        reason: String,
    },
    /// A project's network could not be removed: containers are still attached to it.
    #[error(
        "could not remove network {network}: still attached: {}; remove them (`docker rm -f {}`) and run `cht-dev down {project}` again",
        .containers.join(", "),
        .containers.join(" ")
    )]
    NetworkInUse {
        /// The project.
        project: String,
        /// The network.
        network: String,
        /// The containers attached.
        containers: Vec<String>,
    },
    /// A file the user named as input that cht-dev will not read: not a regular file
    /// (a folder, FIFO, device or socket), or larger than such a file ever is.
    #[error("cannot read {what} {}: {reason}", path.display())]
    UnsafeInput {
        /// What the file was to be, for people ("the certificate").
        what: &'static str,
        /// The path as given.
        path: PathBuf,
        /// What is wrong with it, and what to give instead.
        reason: String,
    },
    /// An output path the user named that cht-dev will not write: something other than a
    /// regular file is there (a folder, link, FIFO, device or socket), or its folder is
    /// missing.
    #[error("cannot write {}: {reason}", path.display())]
    UnsafeOutput {
        /// The path as given.
        path: PathBuf,
        /// What is there, and what to give instead.
        reason: String,
    },
    /// A snapshot cht-dev will not restore: its record or archive is damaged, or holds
    /// more than it declares.
    #[error("snapshot {label} of {project} cannot be restored: {reason}")]
    BadSnapshot {
        /// The project.
        project: String,
        /// The snapshot.
        label: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file or folder operation failed.
    #[error("cannot {action} {path}: {source}", path = .path.display())]
    Io {
        /// What was being done, e.g. "write".
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Making or reading a certificate failed.
    #[error("cannot {action}: {reason}")]
    Certificate {
        /// What was being done.
        action: String,
        /// The underlying reason.
        reason: String,
    },
    /// The local-ip certificate could not be had, or was not fit to use; the kept pair,
    /// if any, is unchanged.
    #[error("cannot use the local-ip certificate from {url}: {reason}")]
    LocalIp {
        /// The URL it came, or would have come, from.
        url: String,
        /// What went wrong, and what to do.
        reason: String,
    },
    /// A generated compose template did not come out as valid YAML (a bug in cht-dev).
    #[error("rendered {file} is not valid YAML: {reason}")]
    Render {
        /// The file being rendered.
        file: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A compose file cht-dev cannot turn into containers.
    #[error("cannot use {file}: {reason}")]
    Compose {
        /// The file (or files) concerned.
        file: String,
        /// What is wrong, and how to fix it.
        reason: String,
    },
    /// A docker context that names no usable engine.
    #[error("docker context {context} cannot be used: {reason}")]
    EngineContext {
        /// The context's name.
        context: String,
        /// Why not.
        reason: String,
    },
    /// The Docker engine did not answer.
    #[error("cannot reach the Docker engine at {host}: is Docker running? ({reason})")]
    EngineUnreachable {
        /// The address tried.
        host: String,
        /// The connection error.
        reason: String,
        /// The client's error, when there was one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The Docker engine refused or failed an operation.
    #[error("docker engine could not {action}: {reason}")]
    Engine {
        /// What was being done, e.g. "create container a-api-1".
        action: String,
        /// What kind of failure, for callers that tolerate some.
        kind: EngineFailure,
        /// The engine's message.
        reason: String,
        /// The client's error, when the failure came from one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// `logs` named a service the project has no container for.
    #[error("project {project:?} has no service {service:?}; services: {known}")]
    UnknownService {
        /// The project.
        project: String,
        /// The service as given.
        service: String,
        /// The services it has containers for, comma separated.
        known: String,
    },
    /// A command needs the project's containers and there are none.
    #[error("project {project:?} has no containers; start it with `cht-dev up {project}`")]
    NoContainers {
        /// The project.
        project: String,
    },
    /// `upgrade` failed; the previous release's files (and containers, when `restored`) are back.
    #[error(
        "upgrade of {project} to {version} failed: {cause}; {}",
        if *.restored { format!("rolled back to {previous}, which is running again") } else { format!("the files of {previous} are restored; run `cht-dev up {project}` to start it") }
    )]
    UpgradeFailed {
        /// The project.
        project: String,
        /// The release it was going to.
        version: String,
        /// The release it ran before.
        previous: String,
        /// Whether the previous containers run again.
        restored: bool,
        /// Why the new release did not come up.
        #[source]
        cause: Box<Error>,
    },
    /// The user's home folder cannot be found (trust stores live under it).
    #[error("cannot find your home folder: set HOME")]
    NoUserHome,
    /// This platform's system trust store is not one cht-dev changes itself.
    #[error("cannot change this platform's system store itself; run: {hint}")]
    SystemStoreUnsupported {
        /// The commands to run by hand.
        hint: String,
    },
    /// A port a rootless engine cannot publish.
    #[error(
        "{var} is {port}, below 1024, which a rootless engine cannot publish: set {var} in {env} to 1024 or above, or let users bind it: sudo sysctl net.ipv4.ip_unprivileged_port_start={port}"
    )]
    RootlessPort {
        /// The `.env` variable.
        var: &'static str,
        /// The port.
        port: u16,
        /// The project's `.env`.
        env: PathBuf,
    },
    /// A bind mount whose source is missing outside the project's folder.
    #[error(
        "service {service} mounts {path} at {target}, which does not exist: start what makes it (for a socket, its engine) or change the mount in the compose file"
    )]
    MissingMountSource {
        /// The service.
        service: String,
        /// The missing source.
        path: PathBuf,
        /// Where it would be mounted.
        target: String,
    },
    /// Files a container wrote as another user could not be changed, even through the
    /// engine.
    #[error(
        "cannot {action} {path}: a container wrote it as another user (uid {owner}), and {reason}; as a last resort: {fallback}"
    )]
    ContainerOwned {
        /// `remove` or `hand back`.
        action: &'static str,
        /// What was to be changed.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// Why the engine could not do it.
        reason: String,
        /// The command that does it by hand.
        fallback: String,
    },
    /// A container name is taken: by a container outside the project, or by one another
    /// tool (compose in the upgrade service) made at the same moment.
    #[error(
        "docker engine could not create container {name}: that name is taken by a container outside this project; remove or rename it (docker rm -f {name})"
    )]
    NameTaken {
        /// The container name.
        name: String,
    },
    /// Images are missing and the pull policy forbids pulling.
    #[error(
        "missing images (pull policy is never): {}; load or pull them, or use --pull missing",
        .images.join(", ")
    )]
    MissingImages {
        /// Every missing image.
        images: Vec<String>,
    },
    /// Images could not be pulled: every one, grouped by why.
    #[error("{}", pull_summary(.failures))]
    PullFailed {
        /// Each image that could not be pulled, and why, in image order.
        failures: Vec<(String, PullFailure)>,
    },
    /// The stack did not become ready in time.
    #[error("{summary}\n{details}")]
    NotReady {
        /// One line: what did not get ready.
        summary: String,
        /// Per-service state and last log lines, and the command to see more.
        details: String,
    },
    /// Ctrl-C stopped the command.
    #[error("interrupted; run the same command again to carry on")]
    Interrupted,
    /// Several projects exist and none was named.
    #[error("several projects exist ({}); name one, e.g. `cht-dev {command} {}`", .known.join(", "), .known[0])]
    AmbiguousProject {
        /// The command that needs a project.
        command: &'static str,
        /// The projects.
        known: Vec<String>,
    },
    /// `destroy` without confirmation.
    #[error("{0}")]
    NotConfirmed(String),
    /// The command line could not be parsed: one line, with where help is.
    #[error("{0}")]
    Usage(String),
    /// `--help` or `--version` was asked for: the text to print on stdout (exit 0).
    #[error("{0}")]
    Help(String),
    /// Writing to the terminal failed (for example a closed pipe).
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
}

impl Error {
    /// The process exit code for this error: 2 for bad usage, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Help(_) => 0,
            Error::Usage(_)
            | Error::InvalidName { .. }
            | Error::UnknownVersion { .. }
            | Error::InvalidPort { .. }
            | Error::InvalidRegistry { .. }
            | Error::InvalidHost { .. }
            | Error::BadOption(_)
            | Error::InvalidHome { .. }
            | Error::ProjectNotFound { .. }
            | Error::AmbiguousProject { .. }
            | Error::NoProjects { .. }
            | Error::SnapshotNotFound { .. }
            | Error::Downgrade { .. }
            | Error::SnapshotNewer { .. }
            | Error::SnapshotLayout { .. }
            | Error::CannotAdopt { .. }
            | Error::BadVariable { .. }
            | Error::UnsafeInput { .. }
            | Error::UnsafeOutput { .. }
            | Error::NotConfirmed(_) => 2,
            Error::RollbackFailed { error, .. } => error.exit_code(),
            Error::Interrupted => 130,
            _ => 1,
        }
    }

    /// This failure with the outcome of putting things back after it: itself when that
    /// worked, else both, this one first (its exit code is kept).
    pub fn with_rollback(self, rollback: Result<()>) -> Error {
        match rollback {
            Ok(()) => self,
            Err(rollback) => Error::RollbackFailed {
                error: Box::new(self),
                rollback: Box::new(rollback),
            },
        }
    }

    /// Wraps an I/O error with the action and path it concerns.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}

/// What kind of engine failure an [`Error::Engine`] is: the status codes some callers
/// take as outcomes (a missing container to remove is already gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineFailure {
    /// 404: no such container, image, network or volume.
    NotFound,
    /// 409: a name in use, or an operation already under way.
    Conflict,
    /// 304 (or an engine's words for it): already in the state asked for (started,
    /// stopped, not paused).
    NotModified,
    /// 403 (or an engine's words for it): still in use, such as a network with endpoints
    /// (which an engine can keep counting after their containers are gone).
    InUse,
    /// The engine did not answer.
    Unreachable,
    /// Anything else.
    Other,
}

impl Error {
    /// The kind of an engine failure, `None` for any other error.
    pub fn engine_kind(&self) -> Option<EngineFailure> {
        match self {
            Error::Engine { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// An engine failure that did not come from the client (an error in a pull stream, a
    /// one-off that ran too long).
    pub fn engine(action: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Engine {
            action: action.into(),
            kind: EngineFailure::Other,
            reason: reason.into(),
            source: None,
        }
    }
}

/// Why the registry could not give one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullFailure {
    /// The registry has no such repository or tag.
    NotFound,
    /// The registry could not be reached; the engine's words.
    Unreachable(String),
    /// Any other refusal (authentication, a damaged manifest); the engine's words.
    Other(String),
}

/// [`Error::PullFailed`]'s one line: the images the registry lacks, those it could not be
/// reached for, and any other failure, each group with what to do.
fn pull_summary(failures: &[(String, PullFailure)]) -> String {
    let group = |pick: &dyn Fn(&PullFailure) -> bool| -> Vec<&str> {
        failures
            .iter()
            .filter(|(_, f)| pick(f))
            .map(|(i, _)| i.as_str())
            .collect()
    };
    let mut parts = Vec::new();
    let lacking = group(&|f| matches!(f, PullFailure::NotFound));
    if !lacking.is_empty() {
        parts.push(format!(
            "not in the registry: {} (check --image-registry and --cht-version, or push them there)",
            lacking.join(", ")
        ));
    }
    let unreachable = group(&|f| matches!(f, PullFailure::Unreachable(_)));
    if let Some((_, PullFailure::Unreachable(reason))) = failures
        .iter()
        .find(|(_, f)| matches!(f, PullFailure::Unreachable(_)))
    {
        parts.push(format!(
            "could not reach the registry for {} ({reason}): start it or fix --image-registry, or load the images and use --pull never",
            unreachable.join(", ")
        ));
    }
    for (image, failure) in failures {
        if let PullFailure::Other(reason) = failure {
            parts.push(format!("{image}: {reason}"));
        }
    }
    format!(
        "could not pull {} image{}: {}",
        failures.len(),
        if failures.len() == 1 { "" } else { "s" },
        parts.join("; ")
    )
}

/// The result type used throughout cht-dev.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_exit_code_and_a_rollback_keeps_the_first_one() {
        let missing = Error::SnapshotNotFound {
            project: "p".into(),
            label: "x".into(),
            known: "it has none".into(),
        };
        assert_eq!(missing.exit_code(), 2);
        let taken = Error::SnapshotExists {
            project: "p".into(),
            label: "x".into(),
        };
        assert_eq!(taken.exit_code(), 1);
        let downgrade = Error::Downgrade {
            project: "p".into(),
            current: "5.2.0".into(),
            target: "4.22.0".into(),
        };
        assert_eq!(downgrade.exit_code(), 2);
        assert!(downgrade.to_string().contains("pass --force"));
        let busy = Error::HelperPortBusy {
            file: "/h/p.env".into(),
            key: "NGINX_HTTP_PORT",
            port: 80,
            reason: "in use".into(),
        };
        assert_eq!(busy.exit_code(), 1);
        let both = Error::RollbackFailed {
            error: Box::new(downgrade),
            rollback: Box::new(Error::Interrupted),
        };
        assert_eq!(both.exit_code(), 2, "the first failure's code");
        assert!(
            both.to_string().starts_with("p runs 5.2.0")
                && both.to_string().contains("putting things back failed too"),
            "{both}"
        );
    }
}
