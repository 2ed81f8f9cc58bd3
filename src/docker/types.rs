//! What cht-dev and the engine tell each other about containers and images, in
//! cht-dev's own words (no bollard type leaves `docker`).

use std::collections::BTreeMap;

/// A container as listed by the engine.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ContainerInfo {
    /// Engine id.
    pub id: String,
    /// Name without the leading slash.
    pub name: String,
    /// Compose service label.
    pub service: String,
    /// Compose project label.
    pub project: String,
    /// What the engine says the container is doing.
    pub state: ContainerState,
    /// The engine's human status, e.g. "Up 3 seconds (healthy)".
    pub status: String,
    /// Health from the status text, when the image has a health check.
    pub health: Option<String>,
    /// Image reference.
    pub image: String,
    /// Published ports, `host->container/proto`.
    pub ports: Vec<String>,
    /// The config hash label (`com.docker.compose.config-hash`), whoever wrote it.
    pub config_hash: Option<String>,
    /// Compose's image label (`com.docker.compose.image`): the image id it was made from.
    pub image_id: Option<String>,
}

/// A container's state as the engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    /// Made, never started.
    Created,
    /// Its process runs.
    Running,
    /// Frozen by `docker pause`.
    Paused,
    /// Coming back up by its restart policy.
    Restarting,
    /// Being removed.
    Removing,
    /// Its process ended.
    Exited,
    /// Could not be removed; needs attention.
    Dead,
}

impl ContainerState {
    /// Whether the container is up, or coming back up by its restart policy.
    pub fn is_running(self) -> bool {
        matches!(self, ContainerState::Running | ContainerState::Restarting)
    }

    /// The engine's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Paused => "paused",
            ContainerState::Restarting => "restarting",
            ContainerState::Removing => "removing",
            ContainerState::Exited => "exited",
            ContainerState::Dead => "dead",
        }
    }

    /// Reads the engine's word (an unknown one counts as dead: it needs attention).
    pub(super) fn parse(word: &str) -> ContainerState {
        match word {
            "created" => ContainerState::Created,
            "running" => ContainerState::Running,
            "paused" => ContainerState::Paused,
            "restarting" => ContainerState::Restarting,
            "removing" => ContainerState::Removing,
            "exited" => ContainerState::Exited,
            _ => ContainerState::Dead,
        }
    }
}

impl std::fmt::Display for ContainerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the engine knows of a local image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The image id (`sha256:...`): what compose writes into `com.docker.compose.image`
    /// and compares on every `up`.
    pub id: String,
    /// The image's own environment (`KEY=VALUE`), which every container of it starts with.
    pub env: Vec<String>,
}

/// A long-running container as the engine is asked to make it: cht-dev's own vocabulary
/// for the Engine API's create body (`stack` translates compose services into it).
#[derive(Debug, Clone, Default)]
pub struct ContainerConfig {
    /// Container name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Hostname inside the container.
    pub hostname: Option<String>,
    /// Environment, `KEY=VALUE`.
    pub env: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Exposed ports, `port/proto` (published ones included).
    pub exposed: Vec<String>,
    /// Ports published on the host.
    pub published: Vec<Published>,
    /// Host folders mounted, `SOURCE:TARGET[:ro]` (the engine makes a missing source).
    pub binds: Vec<String>,
    /// Named volumes mounted.
    pub volumes: Vec<VolumeMount>,
    /// Restart policy.
    pub restart: Option<Restart>,
    /// Log driver and its options.
    pub log: Option<(String, BTreeMap<String, String>)>,
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// Networks joined (the first is the network mode), each with its aliases.
    pub networks: Vec<(String, Vec<String>)>,
    /// Another network namespace to join instead of networks, as the engine names it:
    /// `container:ID`, `host` or `none` (no hostname or networks then).
    pub network_mode: Option<String>,
    /// Command override.
    pub command: Option<Vec<String>>,
    /// Entrypoint override.
    pub entrypoint: Option<Vec<String>>,
    /// User to run as.
    pub user: Option<String>,
    /// Working directory.
    pub working_dir: Option<String>,
}

/// A container port published on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The container side, `port/proto`.
    pub container: String,
    /// Host address to bind ("" for all).
    pub host_ip: String,
    /// Host port.
    pub host_port: u16,
}

/// A named volume mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// The volume's engine name.
    pub volume: String,
    /// Where it is mounted.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// When the engine restarts a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Never.
    No,
    /// Always, including after the engine restarts.
    Always,
    /// Always, unless it was stopped by hand.
    UnlessStopped,
    /// When it exits non-zero, at most this many times.
    OnFailure(Option<i64>),
}

/// A short-lived container that runs one command to its end, on no network, and is removed.
#[derive(Debug, Clone)]
pub struct OneOff {
    /// Container name (unique per run).
    pub name: String,
    /// Image reference.
    pub image: String,
    /// The command, run as the entrypoint (the image's own entrypoint is replaced).
    pub entrypoint: Vec<String>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Bind mounts, `SOURCE:TARGET[:ro]`.
    pub binds: Vec<String>,
    /// Labels, so an interrupted run can still be found and removed.
    pub labels: BTreeMap<String, String>,
    /// The user to run as (`uid:gid`), instead of the image's.
    pub user: Option<String>,
}

/// How a [`OneOff`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Its exit code.
    pub code: i64,
    /// What it wrote on standard output.
    pub stdout: String,
    /// What it wrote on standard error.
    pub stderr: String,
}

/// One progress event of an image pull.
#[derive(Debug, Clone)]
pub struct PullEvent {
    /// Layer id, if the event is about a layer.
    pub layer: Option<String>,
    /// Bytes done for the layer.
    pub current: u64,
    /// Bytes in the layer.
    pub total: u64,
}
