//! The Docker Engine, through bollard: one private client whose errors are mapped per
//! operation into cht-dev's, and plain data types so nothing else imports bollard.

mod containers;
pub mod endpoint;
pub mod labels;
mod oneoff;
mod resources;
pub mod timeline;
mod types;

pub use self::types::*;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
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
use crate::error::EngineFailure::{self, Conflict, InUse, NotFound, NotModified};
use crate::error::{Error, Result};

/// How long one engine request may take before it counts as failed.
const REQUEST_TIMEOUT: u64 = 120;

/// How long the engine may take to answer the API version negotiation: a busy engine (its
/// `/version` runs `runc --version` and friends, slow on a loaded machine) is not an
/// unreachable one.
const NEGOTIATE_WITHIN: Duration = Duration::from_secs(30);

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
    /// Where it keeps its images, containers and volumes, on that machine.
    #[serde(skip)]
    pub root_dir: String,
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
    /// Whether it is Podman, settled by the first call that needs it.
    podman: Arc<tokio::sync::OnceCell<bool>>,
    /// The question asked beside the negotiation, if it was, until settled.
    asking: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<Option<bool>>>>>,
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
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => kind_of_answer(*status_code, message),
        _ => EngineFailure::Other,
    }
}

/// What kind of failure an engine's error answer is, by its status and, where engines
/// answer a known case with a plain 500, by its words: Docker (20.10 and 28 alike) and
/// Podman say a container "is not paused", and Podman says a network "is being used"
/// (Docker: 403, "has active endpoints").
fn kind_of_answer(status: u16, message: &str) -> EngineFailure {
    match status {
        404 => EngineFailure::NotFound,
        409 => EngineFailure::Conflict,
        304 => EngineFailure::NotModified,
        403 => EngineFailure::InUse,
        _ if message.contains("is not paused") => EngineFailure::NotModified,
        _ if message.contains("active endpoints") || message.contains("is being used") => {
            EngineFailure::InUse
        }
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
        Engine::connect_to(&endpoint::resolve(&surroundings, &|p| p.exists())?, false).await
    }

    /// Connects to the engine at `endpoint` and negotiates the API version. Which engine
    /// answers (Podman or not) is asked in the background beside the negotiation when
    /// `product_early` (a command that needs it at once: a second round trip later would
    /// cost it that much), else only when asked ([`Engine::is_podman`]): the engine
    /// answers `/version` slowly (dockerd runs `runc --version` for it), and a second one
    /// at once slows the negotiation and the calls after it.
    pub async fn connect_to(endpoint: &Endpoint, product_early: bool) -> Result<Engine> {
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
        let ask = |docker: Docker| {
            tokio::spawn(async move {
                docker
                    .version()
                    .await
                    .ok()
                    .map(|v| podman_component(&v).is_some())
            })
        };
        let early = product_early.then(|| ask(docker.clone()));
        let docker = tokio::time::timeout(NEGOTIATE_WITHIN, docker.negotiate_version())
            .await
            .map_err(|_| unreachable(format!("no answer within {} s", NEGOTIATE_WITHIN.as_secs())))?
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Engine {
            docker,
            endpoint: endpoint.clone(),
            timeline: None,
            podman: Arc::new(tokio::sync::OnceCell::new()),
            asking: Arc::new(std::sync::Mutex::new(early)),
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

    /// Whether the engine is Podman (asked once: beside the negotiation, or now).
    pub async fn is_podman(&self) -> Result<bool> {
        self.podman
            .get_or_try_init(|| async {
                let asking = self.asking.lock().ok().and_then(|mut a| a.take());
                if let Some(Ok(Some(podman))) = match asking {
                    Some(task) => Some(task.await),
                    None => None,
                } {
                    return Ok(podman);
                }
                let _span = self.span(|| "version".into());
                let version = self
                    .docker
                    .version()
                    .await
                    .map_err(self.fail("read its version"))?;
                Ok(podman_component(&version).is_some())
            })
            .await
            .copied()
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
            root_dir: info.docker_root_dir.unwrap_or_default(),
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
    fn answers_are_classified_by_status_then_by_the_words_engines_use_for_a_500() {
        let cases = [
            (404, "No such container: x", EngineFailure::NotFound),
            (409, "Container x is not paused", EngineFailure::Conflict),
            (304, "", EngineFailure::NotModified),
            (
                403,
                "error while removing network: network n id 1f has active endpoints",
                EngineFailure::InUse,
            ),
            (
                500,
                "Container 8f19 is not paused",
                EngineFailure::NotModified,
            ),
            (
                500,
                "\"8f19\" is not paused, can't unpause: container state improper",
                EngineFailure::NotModified,
            ),
            (
                500,
                "\"n\" has associated containers with it. network is being used",
                EngineFailure::InUse,
            ),
            (
                500,
                "Cannot unpause container x: no such process",
                EngineFailure::Other,
            ),
            (400, "bad parameter", EngineFailure::Other),
        ];
        for (status, message, kind) in cases {
            assert_eq!(kind_of_answer(status, message), kind, "{status} {message}");
        }
    }

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
