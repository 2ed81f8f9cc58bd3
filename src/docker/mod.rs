//! The Docker Engine, through bollard: one private client whose errors are mapped per
//! operation into cht-dev's, and plain data types so nothing else imports bollard.

pub mod endpoint;
pub mod labels;
pub mod timeline;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, HostConfigLogConfig, Mount, MountType,
    NetworkCreateRequest, NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListContainersOptions, ListNetworksOptions,
    ListVolumesOptions, LogsOptions, RemoveContainerOptions, StopContainerOptions,
    UploadToContainerOptions, WaitContainerOptions,
};
use futures_util::{Stream, StreamExt};

use self::endpoint::Endpoint;
use self::timeline::{Span, Timeline};
use crate::error::EngineFailure::{self, Conflict, NotFound, NotModified};
use crate::error::{Error, Result};

/// How long one engine request may take before it counts as failed.
const REQUEST_TIMEOUT: u64 = 120;

/// Which engine answers, as `doctor` names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EngineFacts {
    /// `Docker` or `Podman`.
    pub product: &'static str,
    /// Its version.
    pub version: String,
    /// The API version in use.
    pub api: String,
    /// Whether it runs without root (its containers' root is the user).
    pub rootless: bool,
    /// The name of the machine it runs on (a VM's, for Docker Desktop or Colima).
    pub machine: String,
}

impl EngineFacts {
    /// Whether the engine is Podman.
    pub fn is_podman(&self) -> bool {
        self.product == PODMAN
    }

    /// Whether it runs on this machine, so paths it mounts are this machine's paths.
    pub fn runs_here(&self) -> bool {
        let here = gethostname::gethostname();
        here.to_string_lossy()
            .trim()
            .eq_ignore_ascii_case(self.machine.trim())
    }
}

impl std::fmt::Display for EngineFacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = if self.rootless { "rootless" } else { "rootful" };
        write!(
            f,
            "{} {}, API {}, {mode}",
            self.product, self.version, self.api
        )
    }
}

/// A connected, version-negotiated engine client.
#[derive(Debug, Clone)]
pub struct Engine {
    /// The bollard client.
    docker: Docker,
    /// The address it talks to and what chose it, for messages.
    endpoint: Endpoint,
    /// Where calls are recorded with their start and end (`--timings`), if anywhere.
    timeline: Option<Timeline>,
    /// Whether it is Podman, from the version asked beside the negotiation (`None` when
    /// that answer did not come).
    podman: Option<bool>,
}

/// A container as listed by the engine.
#[derive(Debug, Clone, serde::Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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
    fn parse(word: &str) -> ContainerState {
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

/// The product name of Podman in [`EngineFacts`].
const PODMAN: &str = "Podman";

/// Podman's entry among the components its version answer lists (Docker has none).
fn podman_component(
    version: &bollard::models::SystemVersion,
) -> Option<&bollard::models::SystemVersionComponents> {
    version
        .components
        .iter()
        .flatten()
        .find(|c| c.name == "Podman Engine")
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

/// Whether a bollard error means the engine could not be reached at all.
fn is_unreachable(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::IOError { .. }
            | BollardError::HyperLegacyError { .. }
            | BollardError::SocketNotFoundError(_)
            | BollardError::HttpClientError { .. }
            | BollardError::RequestTimeoutError
    )
}

/// What kind of failure a bollard error is.
fn kind_of(e: &BollardError) -> EngineFailure {
    match e {
        _ if is_unreachable(e) => EngineFailure::Unreachable,
        BollardError::DockerResponseServerError { status_code, .. } => match status_code {
            404 => EngineFailure::NotFound,
            409 => EngineFailure::Conflict,
            304 => EngineFailure::NotModified,
            _ => EngineFailure::Other,
        },
        _ => EngineFailure::Other,
    }
}

/// cht-dev's error for a bollard error met doing `action` on the engine at `host`.
fn failure(host: &str, action: String, e: BollardError) -> Error {
    match kind_of(&e) {
        EngineFailure::Unreachable => Error::EngineUnreachable {
            host: host.to_string(),
            reason: e.to_string(),
            source: Some(Box::new(e)),
        },
        kind => Error::Engine {
            action,
            kind,
            reason: message_of(&e),
            source: Some(Box::new(e)),
        },
    }
}

/// Engine results where some kinds of failure are outcomes, not errors: a container to
/// remove that is already gone, a network created meanwhile by someone else.
trait Tolerate<T> {
    /// `Ok(None)` for a failure of one of `kinds`; other failures stay errors.
    fn tolerate(self, kinds: &[EngineFailure]) -> Result<Option<T>>;
}

impl<T> Tolerate<T> for Result<T> {
    fn tolerate(self, kinds: &[EngineFailure]) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::Engine { kind, .. }) if kinds.contains(&kind) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The engine's own message for an error, without bollard's wrapping.
fn message_of(e: &BollardError) -> String {
    match e {
        BollardError::DockerResponseServerError { message, .. } => message.trim().to_string(),
        other => other.to_string(),
    }
}

impl Engine {
    /// Connects to the engine and negotiates the API version it speaks.
    pub async fn connect() -> Result<Engine> {
        let surroundings = endpoint::Surroundings::of_process(None);
        Engine::connect_to(&endpoint::resolve(&surroundings, &|p| p.exists())?).await
    }

    /// Connects to the engine at `endpoint` and negotiates the API version.
    pub async fn connect_to(endpoint: &Endpoint) -> Result<Engine> {
        let host = endpoint.host.clone();
        let unreachable = |reason: String| Error::EngineUnreachable {
            host: host.clone(),
            reason,
            source: None,
        };
        let docker = if let Some(path) = host.strip_prefix("unix://") {
            Docker::connect_with_unix(path, REQUEST_TIMEOUT, bollard::API_DEFAULT_VERSION)
        } else if host.starts_with("tcp://") || host.starts_with("http://") {
            Docker::connect_with_http(&host, REQUEST_TIMEOUT, bollard::API_DEFAULT_VERSION)
        } else {
            return Err(unreachable(format!(
                "only unix:// and tcp:// addresses are supported (it came from {}); forward an ssh:// engine's socket with ssh -L and use unix://",
                endpoint.source
            )));
        }
        .map_err(|e| unreachable(e.to_string()))?;
        // Which engine answers is asked at the same time: Podman answers `/version` in
        // ~50 ms, so a second round trip later would cost every `up` that much.
        let product = docker.clone();
        let (negotiated, version) = tokio::time::timeout(
            Duration::from_secs(10),
            futures_util::future::join(docker.negotiate_version(), product.version()),
        )
        .await
        .map_err(|_| unreachable("no answer within 10 s".into()))?;
        let docker = negotiated.map_err(|e| unreachable(e.to_string()))?;
        Ok(Engine {
            docker,
            endpoint: endpoint.clone(),
            timeline: None,
            podman: version.ok().map(|v| podman_component(&v).is_some()),
        })
    }

    /// This client, recording every call it makes into `timeline` from now on.
    pub fn with_timeline(mut self, timeline: Timeline) -> Engine {
        self.timeline = Some(timeline);
        self
    }

    /// The timeline calls are recorded into, if any.
    pub fn timeline(&self) -> Option<&Timeline> {
        self.timeline.as_ref()
    }

    /// Opens a span for one call, recorded when it ends; `what` is built only when
    /// recording.
    fn span(&self, what: impl FnOnce() -> String) -> Span<'_> {
        Span::open(self.timeline.as_ref(), what)
    }

    /// Whether the engine is Podman (known from connecting, else asked).
    pub async fn is_podman(&self) -> Result<bool> {
        if let Some(podman) = self.podman {
            return Ok(podman);
        }
        let _span = self.span(|| "version".into());
        let version = self
            .docker
            .version()
            .await
            .map_err(self.fail("read its version"))?;
        Ok(podman_component(&version).is_some())
    }

    /// Which engine answers: product, version, rootless or not, and the name of the
    /// machine it runs on.
    pub async fn facts(&self) -> Result<EngineFacts> {
        let _span = self.span(|| "version and info".into());
        let (version, info) = futures_util::future::try_join(
            async {
                self.docker
                    .version()
                    .await
                    .map_err(self.fail("read its version"))
            },
            async {
                self.docker
                    .info()
                    .await
                    .map_err(self.fail("read its facts"))
            },
        )
        .await?;
        let (product, number) = match podman_component(&version) {
            Some(c) => (PODMAN, c.version.clone()),
            None => ("Docker", version.version.clone().unwrap_or_default()),
        };
        let rootless = info
            .security_options
            .iter()
            .flatten()
            .any(|o| o.split(',').any(|part| part == "name=rootless"));
        Ok(EngineFacts {
            product,
            version: if number.is_empty() {
                "unknown".into()
            } else {
                number
            },
            api: self.api_version(),
            rootless,
            machine: info.name.unwrap_or_default(),
        })
    }

    /// The address this client talks to.
    pub fn host(&self) -> &str {
        &self.endpoint.host
    }

    /// What chose the address: a context, `DOCKER_HOST`, a socket found.
    pub fn source(&self) -> &endpoint::Source {
        &self.endpoint.source
    }

    /// The address and what chose it.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The API version in use after negotiation.
    pub fn api_version(&self) -> String {
        let v = self.docker.client_version();
        format!("{}.{}", v.major_version, v.minor_version)
    }

    /// Maps a bollard error for `action` into cht-dev's error, keeping its kind and the
    /// bollard error itself as the source.
    fn fail(&self, action: impl Into<String>) -> impl FnOnce(BollardError) -> Error + '_ {
        let action = action.into();
        move |e| failure(&self.endpoint.host, action, e)
    }

    /// All containers (running or not) carrying every `label=value` given.
    pub async fn containers(&self, labels: &[(&str, &str)]) -> Result<Vec<ContainerInfo>> {
        let _span = self.span(|| format!("list containers {labels:?}"));
        let filters: HashMap<String, Vec<String>> = HashMap::from([(
            "label".to_string(),
            labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        )]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let list = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(self.fail("list containers"))?;
        let mut out: Vec<ContainerInfo> = list
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                let status = c.status.unwrap_or_default();
                let health = ["healthy", "unhealthy", "health: starting"]
                    .into_iter()
                    .find(|h| status.contains(&format!("({h})")))
                    .map(|h| h.trim_start_matches("health: ").to_string());
                // In container port order (80 before 443), whatever the host ports are.
                let mut published: Vec<(u16, u16, String)> = c
                    .ports
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|p| {
                        let public = p.public_port?;
                        let proto = p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into());
                        Some((p.private_port, public, proto))
                    })
                    .collect();
                published.sort();
                published.dedup();
                let ports = published
                    .into_iter()
                    .map(|(private, public, proto)| format!("{public}->{private}/{proto}"))
                    .collect();
                ContainerInfo {
                    id: c.id.unwrap_or_default(),
                    name: c
                        .names
                        .and_then(|n| n.into_iter().next())
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_string(),
                    service: labels.get(labels::SERVICE).cloned().unwrap_or_default(),
                    project: labels.get(labels::PROJECT).cloned().unwrap_or_default(),
                    state: ContainerState::parse(
                        &c.state.map(|s| s.to_string()).unwrap_or_default(),
                    ),
                    status,
                    health,
                    image: c.image.unwrap_or_default(),
                    ports,
                    config_hash: labels.get(labels::CONFIG_HASH).cloned(),
                    image_id: labels.get(labels::IMAGE).cloned(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The local image `image`, or `None` when it is not present.
    pub async fn image(&self, image: &str) -> Result<Option<ImageInfo>> {
        let _span = self.span(|| format!("inspect image {image}"));
        let inspect = self
            .docker
            .inspect_image(image)
            .await
            .map_err(self.fail(format!("inspect image {image}")))
            .tolerate(&[NotFound])?;
        Ok(inspect.map(|i| ImageInfo {
            id: i.id.unwrap_or_default(),
            env: i.config.and_then(|c| c.env).unwrap_or_default(),
        }))
    }

    /// Runs `job` to its end (at most `limit`), returns its exit code and output, and
    /// removes its container whatever happened.
    pub async fn run_to_end(&self, job: &OneOff, limit: Duration) -> Result<Finished> {
        let _span = self.span(|| format!("run one-off {}", job.name));
        let body = ContainerCreateBody {
            image: Some(job.image.clone()),
            entrypoint: Some(job.entrypoint.clone()),
            cmd: Some(Vec::new()),
            user: job.user.clone(),
            env: Some(job.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(job.labels.clone().into_iter().collect()),
            host_config: Some(HostConfig {
                binds: Some(job.binds.clone()),
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = self.create_named(&job.name, body).await?;
        let outcome = tokio::time::timeout(limit, self.start_wait_collect(&id, &job.name))
            .await
            .unwrap_or_else(|_| {
                Err(Error::engine(
                    format!("run {}", job.name),
                    format!("it did not finish within {} s", limit.as_secs()),
                ))
            });
        self.remove(&id, &job.name).await?;
        outcome
    }

    /// Creates a container called `name` from `body`; returns its id. A name already in use
    /// is [`Error::NameTaken`].
    async fn create_named(&self, name: &str, body: ContainerCreateBody) -> Result<String> {
        let _span = self.span(|| format!("create container {name}"));
        let options = CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(self.fail(format!("create container {name}")))
            .tolerate(&[Conflict])?
            .ok_or_else(|| Error::NameTaken {
                name: name.to_string(),
            })?;
        Ok(created.id)
    }

    /// Starts a created container, waits for it to stop, and reads its output.
    async fn start_wait_collect(&self, id: &str, name: &str) -> Result<Finished> {
        let _span = self.span(|| format!("wait for and read {name}"));
        self.start(id, name).await?;
        let mut waiting = self.docker.wait_container(
            id,
            Some(WaitContainerOptions {
                condition: "not-running".into(),
            }),
        );
        let mut code = 0;
        while let Some(item) = waiting.next().await {
            match item {
                Ok(response) => code = response.status_code,
                // bollard reports a non-zero exit as an error; it is an outcome here.
                Err(BollardError::DockerContainerWaitError { code: c, .. }) => code = c,
                Err(e) => return Err(self.fail(format!("wait for {name}"))(e)),
            }
        }
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: "all".into(),
            ..Default::default()
        };
        let mut logs = self.docker.logs(id, Some(options));
        let (mut stdout, mut stderr) = (String::new(), String::new());
        while let Some(chunk) = logs.next().await {
            match chunk.map_err(self.fail(format!("read the output of {name}")))? {
                LogOutput::StdErr { message } => {
                    stderr.push_str(&String::from_utf8_lossy(&message))
                }
                other => stdout.push_str(&other.to_string()),
            }
        }
        Ok(Finished {
            code,
            stdout,
            stderr,
        })
    }

    /// Pulls exactly `image` (one tag, never all), reporting progress events.
    pub async fn pull(&self, image: &str, on_event: &(dyn Fn(PullEvent) + Sync)) -> Result<()> {
        let _span = self.span(|| format!("pull {image}"));
        let (from_image, tag) = split_reference(image);
        let options = CreateImageOptions {
            from_image: Some(from_image),
            tag: Some(tag),
            ..Default::default()
        };
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(self.fail(format!("pull {image}")))?;
            if let Some(detail) = info.error_detail {
                return Err(Error::engine(
                    format!("pull {image}"),
                    detail.message.unwrap_or_default(),
                ));
            }
            let progress = info.progress_detail.unwrap_or_default();
            on_event(PullEvent {
                layer: info.id,
                current: progress.current.unwrap_or(0).max(0) as u64,
                total: progress.total.unwrap_or(0).max(0) as u64,
            });
        }
        Ok(())
    }

    /// The networks the engine lists for `filters`.
    async fn list_networks(
        &self,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<bollard::models::Network>> {
        let _span = self.span(|| format!("list networks {filters:?}"));
        self.docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(self.fail("list networks"))
    }

    /// Ids of the networks called exactly `name`, oldest first (ties by id), so every
    /// caller picks the same one when an engine holds two of one name.
    async fn networks_named(&self, name: &str) -> Result<Vec<String>> {
        let filters = HashMap::from([("name".to_string(), vec![name.to_string()])]);
        let list = self.list_networks(filters).await?;
        let mut same: Vec<(String, String)> = list
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .map(|n| {
                (
                    n.created.map(|c| c.to_string()).unwrap_or_default(),
                    n.id.unwrap_or_default(),
                )
            })
            .collect();
        same.sort();
        Ok(same.into_iter().map(|(_, id)| id).collect())
    }

    /// Removes every network called `name` but the oldest; one in use stays.
    async fn remove_duplicates(&self, name: &str, ids: &[String]) -> Result<()> {
        for id in ids.iter().skip(1) {
            self.docker
                .remove_network(id)
                .await
                .map_err(self.fail(format!("remove duplicate network {name}")))
                // Best effort: one still in use (403) stays, and is harmless.
                .tolerate(&[NotFound, Conflict, EngineFailure::Other])?;
        }
        Ok(())
    }

    /// Creates network `name` unless it exists; returns whether it was created.
    ///
    /// Older engines allow two networks of one name: a create the engine finished after
    /// its command was interrupted can race the next one. So the network is found by exact
    /// name, and duplicates are removed, keeping the oldest.
    pub async fn ensure_network(
        &self,
        name: &str,
        driver: Option<&str>,
        labels: &BTreeMap<String, String>,
    ) -> Result<bool> {
        let _span = self.span(|| format!("ensure network {name}"));
        let same = self.networks_named(name).await?;
        if !same.is_empty() {
            self.remove_duplicates(name, &same).await?;
            return Ok(false);
        }
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some(driver.unwrap_or("bridge").to_string()),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        // Created meanwhile by compose or a parallel cht-dev: fine.
        let creating = self.span(|| format!("create network {name}"));
        let created = self
            .docker
            .create_network(request)
            .await
            .map_err(self.fail(format!("create network {name}")))
            .tolerate(&[Conflict])?;
        drop(creating);
        let same = self.networks_named(name).await?;
        self.remove_duplicates(name, &same).await?;
        Ok(created.is_some())
    }

    /// Creates volume `name` unless it exists; returns whether it was created.
    pub async fn ensure_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<bool> {
        let _span = self.span(|| format!("ensure volume {name}"));
        let found = self
            .docker
            .inspect_volume(name)
            .await
            .map_err(self.fail(format!("inspect volume {name}")))
            .tolerate(&[NotFound])?;
        if found.is_some() {
            return Ok(false);
        }
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map_err(self.fail(format!("create volume {name}")))?;
        Ok(true)
    }

    /// The engine's filter for one `label=value`.
    fn label_filter(label: &str, value: &str) -> HashMap<String, Vec<String>> {
        HashMap::from([("label".to_string(), vec![format!("{label}={value}")])])
    }

    /// Names of the networks carrying `label=value`.
    pub async fn networks(&self, label: &str, value: &str) -> Result<Vec<String>> {
        let list = self.list_networks(Self::label_filter(label, value)).await?;
        let mut names: Vec<String> = list.into_iter().filter_map(|n| n.name).collect();
        names.sort();
        Ok(names)
    }

    /// Names of the volumes carrying `label=value`.
    pub async fn volumes(&self, label: &str, value: &str) -> Result<Vec<String>> {
        let _span = self.span(|| format!("list volumes {label}={value}"));
        let filters = Self::label_filter(label, value);
        let list = self
            .docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(self.fail("list volumes"))?;
        let mut names: Vec<String> = list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect();
        names.sort();
        Ok(names)
    }

    /// Removes the network(s) called `name`; a missing one is not an error.
    pub async fn remove_network(&self, name: &str) -> Result<()> {
        let _span = self.span(|| format!("remove network {name}"));
        for id in self.networks_named(name).await? {
            self.docker
                .remove_network(&id)
                .await
                .map_err(self.fail(format!("remove network {name}")))
                .tolerate(&[NotFound])?;
        }
        Ok(())
    }

    /// Removes a volume; a missing one is not an error.
    pub async fn remove_volume(&self, name: &str) -> Result<()> {
        let _span = self.span(|| format!("remove volume {name}"));
        self.docker
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
            .map_err(self.fail(format!("remove volume {name}")))
            .tolerate(&[NotFound])?;
        Ok(())
    }

    /// Creates (does not start) the container `config` describes; returns its id.
    pub async fn create_container(&self, config: &ContainerConfig) -> Result<String> {
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for p in &config.published {
            bindings
                .entry(p.container.clone())
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(p.host_ip.clone()),
                    host_port: Some(p.host_port.to_string()),
                });
        }
        let mounts = config
            .volumes
            .iter()
            .map(|m| Mount {
                target: Some(m.target.clone()),
                source: Some(m.volume.clone()),
                typ: Some(MountType::VOLUME),
                read_only: Some(m.read_only),
                ..Default::default()
            })
            .collect();
        let restart = config.restart.map(|r| RestartPolicy {
            name: Some(match r {
                Restart::Always => RestartPolicyNameEnum::ALWAYS,
                Restart::UnlessStopped => RestartPolicyNameEnum::UNLESS_STOPPED,
                Restart::OnFailure(_) => RestartPolicyNameEnum::ON_FAILURE,
                Restart::No => RestartPolicyNameEnum::NO,
            }),
            maximum_retry_count: match r {
                Restart::OnFailure(n) => n,
                _ => None,
            },
        });
        let host_config = HostConfig {
            port_bindings: Some(bindings),
            binds: Some(config.binds.clone()),
            mounts: Some(mounts),
            restart_policy: restart,
            log_config: config
                .log
                .as_ref()
                .map(|(driver, options)| HostConfigLogConfig {
                    typ: Some(driver.clone()),
                    config: Some(options.clone().into_iter().collect()),
                }),
            memory: config.memory,
            network_mode: config
                .network_mode
                .clone()
                .or_else(|| config.networks.first().map(|(n, _)| n.clone())),
            ..Default::default()
        };
        let joins = config.network_mode.is_some();
        let endpoints: HashMap<String, EndpointSettings> = config
            .networks
            .iter()
            .map(|(net, aliases)| {
                (
                    net.clone(),
                    EndpointSettings {
                        aliases: Some(aliases.clone()),
                        ..Default::default()
                    },
                )
            })
            .collect();
        let body = ContainerCreateBody {
            image: Some(config.image.clone()),
            // The engine refuses a hostname for a container in another's namespace.
            hostname: config.hostname.clone().filter(|_| !joins),
            env: Some(config.env.clone()),
            labels: Some(config.labels.clone().into_iter().collect()),
            exposed_ports: Some(config.exposed.clone()),
            cmd: config.command.clone(),
            entrypoint: config.entrypoint.clone(),
            user: config.user.clone(),
            working_dir: config.working_dir.clone(),
            host_config: Some(host_config),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(endpoints),
            }),
            ..Default::default()
        };
        self.create_named(&config.name, body).await
    }

    /// The network mode a container was made with (`container:ID` for one that joins
    /// another's namespace); `None` when the container is gone.
    pub async fn network_mode(&self, id: &str, name: &str) -> Result<Option<String>> {
        let _span = self.span(|| format!("inspect container {name}"));
        let inspect = self
            .docker
            .inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map_err(self.fail(format!("inspect container {name}")))
            .tolerate(&[NotFound])?;
        Ok(inspect.map(|i| {
            i.host_config
                .and_then(|h| h.network_mode)
                .unwrap_or_default()
        }))
    }

    /// Starts a container (already running is fine).
    pub async fn start(&self, id: &str, name: &str) -> Result<()> {
        let _span = self.span(|| format!("start container {name}"));
        self.docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(self.fail(format!("start container {name}")))
            .tolerate(&[NotModified])?;
        Ok(())
    }

    /// Stops a container, waiting up to `grace` seconds before killing it.
    pub async fn stop(&self, id: &str, name: &str, grace: i32) -> Result<()> {
        let _span = self.span(|| format!("stop container {name}"));
        let options = StopContainerOptions {
            t: Some(grace),
            ..Default::default()
        };
        self.docker
            .stop_container(id, Some(options))
            .await
            .map_err(self.fail(format!("stop container {name}")))
            .tolerate(&[NotModified, NotFound])?;
        Ok(())
    }

    /// Sends SIGKILL to a container's processes and returns once it is sent (the kernel
    /// ends them at once; the engine's own cleanup goes on). One not running is fine.
    pub async fn kill(&self, id: &str, name: &str) -> Result<()> {
        let _span = self.span(|| format!("kill container {name}"));
        let options = bollard::query_parameters::KillContainerOptions {
            signal: "SIGKILL".into(),
        };
        self.docker
            .kill_container(id, Some(options))
            .await
            .map_err(self.fail(format!("kill container {name}")))
            .tolerate(&[NotFound, Conflict])?;
        Ok(())
    }

    /// Removes a container, running or not (its named volumes stay).
    pub async fn remove(&self, id: &str, name: &str) -> Result<()> {
        let _span = self.span(|| format!("remove container {name}"));
        let options = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        // Gone already, or its removal under way (a parallel down): fine.
        self.docker
            .remove_container(id, Some(options))
            .await
            .map_err(self.fail(format!("remove container {name}")))
            .tolerate(&[NotFound, Conflict])?;
        Ok(())
    }

    /// Extracts a tar archive into `dir` of a container (works on created, stopped containers and their volumes).
    pub async fn upload(&self, id: &str, name: &str, dir: &str, tar: Vec<u8>) -> Result<()> {
        let _span = self.span(|| format!("copy files into {name}:{dir}"));
        let options = UploadToContainerOptions {
            path: dir.to_string(),
            ..Default::default()
        };
        self.docker
            .upload_to_container(id, Some(options), bollard::body_full(tar.into()))
            .await
            .map_err(self.fail(format!("copy files into {name}:{dir}")))
    }

    /// Runs `cmd` in a running container and returns its exit code and output.
    pub async fn exec(&self, id: &str, name: &str, cmd: &[&str]) -> Result<(i64, String)> {
        let _span = self.span(|| format!("exec in {name}"));
        let fail = || self.fail(format!("run {:?} in {name}", cmd.join(" ")));
        let exec = self
            .docker
            .create_exec(
                id,
                bollard::exec::CreateExecOptions {
                    cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(fail())?;
        let mut output = String::new();
        if let bollard::exec::StartExecResults::Attached {
            output: mut stream, ..
        } = self
            .docker
            .start_exec(&exec.id, None::<bollard::exec::StartExecOptions>)
            .await
            .map_err(fail())?
        {
            while let Some(chunk) = stream.next().await {
                output.push_str(&chunk.map_err(fail())?.to_string());
            }
        }
        let inspect = self.docker.inspect_exec(&exec.id).await.map_err(fail())?;
        Ok((inspect.exit_code.unwrap_or(-1), output))
    }

    /// A container's log lines, following new ones when `follow` is set.
    pub fn logs(
        &self,
        id: &str,
        follow: bool,
        tail: Option<u64>,
    ) -> impl Stream<Item = Result<String>> + Send + 'static + use<> {
        let options = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            tail: tail.map_or_else(|| "all".to_string(), |n| n.to_string()),
            ..Default::default()
        };
        let host = self.endpoint.host.clone();
        self.docker.logs(id, Some(options)).map(move |item| {
            item.map(|chunk| chunk.to_string())
                .map_err(|e| failure(&host, "read logs".into(), e))
        })
    }

    /// The last `n` log lines of a container, as one string.
    pub async fn last_logs(&self, id: &str, n: u64) -> Result<String> {
        let mut stream = Box::pin(self.logs(id, false, Some(n)));
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            text.push_str(&chunk?);
        }
        Ok(text)
    }
}

/// Splits `repo[:tag]` (the tag defaulting to `latest`), minding registry ports.
pub fn split_reference(image: &str) -> (String, String) {
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(i) => (
            image[..last_slash + i].to_string(),
            image[last_slash + i + 1..].to_string(),
        ),
        None => (image.to_string(), "latest".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_at_the_tag_not_the_registry_port() {
        assert_eq!(
            split_reference("localhost:5000/medic/cht-api:5.2.0"),
            ("localhost:5000/medic/cht-api".into(), "5.2.0".into())
        );
        assert_eq!(
            split_reference("localhost:5000/x"),
            ("localhost:5000/x".into(), "latest".into())
        );
        assert_eq!(
            split_reference("busybox"),
            ("busybox".into(), "latest".into())
        );
    }
}
