//! Compose files as serde reads them, before variables are filled in and fields typed;
//! and the outline of a file that is read but not run.

use indexmap::IndexMap;
use serde::Deserialize;

/// A YAML scalar that compose accepts where a string is meant.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum Scalar {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl Scalar {
    /// The scalar as compose would pass it on.
    pub(super) fn text(&self) -> String {
        match self {
            Scalar::Str(s) => s.clone(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

/// A list of `KEY=VALUE` strings or a map, as compose allows for environment and labels.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum KeyValues {
    /// `- KEY=VALUE` (or `- KEY` to take the value from the environment).
    List(Vec<String>),
    /// `KEY: VALUE` (a null value takes it from the environment).
    Map(IndexMap<String, Option<Scalar>>),
}

impl Default for KeyValues {
    fn default() -> Self {
        KeyValues::List(Vec::new())
    }
}

/// A list of names or a map keyed by name, as compose allows for `depends_on` and `networks`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum Names<T> {
    /// `- name`.
    List(Vec<String>),
    /// `name: {...}`.
    Map(IndexMap<String, Option<T>>),
}

impl<T> Default for Names<T> {
    fn default() -> Self {
        Names::List(Vec::new())
    }
}

impl<T: Clone> Names<T> {
    /// The entries, in file order, with their settings when given.
    pub(super) fn entries(&self) -> Vec<(String, Option<T>)> {
        match self {
            Names::List(names) => names.iter().map(|n| (n.clone(), None)).collect(),
            Names::Map(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}

/// A string or a list of strings (`command`, `entrypoint`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum Words {
    /// A shell-style string, split on white space.
    Line(String),
    /// An explicit argument list.
    List(Vec<String>),
}

impl Words {
    /// The argument list.
    pub(super) fn args(&self) -> Vec<String> {
        match self {
            Words::Line(line) => line.split_whitespace().map(str::to_string).collect(),
            Words::List(list) => list.clone(),
        }
    }
}

/// The `logging` section of a service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLogging {
    /// The log driver.
    pub(super) driver: Option<String>,
    /// Driver options.
    #[serde(default)]
    pub(super) options: IndexMap<String, Scalar>,
}

/// `deploy.resources.limits`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct RawLimits {
    /// Memory limit, e.g. `1G`.
    pub(super) memory: Option<Scalar>,
}

/// `deploy.resources`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct RawResources {
    /// Upper limits.
    pub(super) limits: Option<RawLimits>,
}

/// `deploy` (only resources apply to a single engine).
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct RawDeploy {
    /// Resource limits.
    pub(super) resources: Option<RawResources>,
}

/// Per-network settings of a service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServiceNetwork {
    /// Extra DNS names on that network.
    #[serde(default)]
    pub(super) aliases: Vec<String>,
}

/// One service as written in a compose file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    /// Image reference.
    pub(super) image: Option<String>,
    /// Fixed container name.
    pub(super) container_name: Option<String>,
    /// Hostname inside the container.
    pub(super) hostname: Option<String>,
    /// Restart policy.
    pub(super) restart: Option<String>,
    /// Environment variables.
    #[serde(default)]
    pub(super) environment: KeyValues,
    /// Labels.
    #[serde(default)]
    pub(super) labels: KeyValues,
    /// Ports exposed to other containers.
    #[serde(default)]
    pub(super) expose: Vec<Scalar>,
    /// Ports published on the host, short syntax.
    #[serde(default)]
    pub(super) ports: Vec<Scalar>,
    /// Volumes and bind mounts, short syntax.
    #[serde(default)]
    pub(super) volumes: Vec<String>,
    /// Logging driver and options.
    pub(super) logging: Option<RawLogging>,
    /// Deploy settings (resource limits).
    pub(super) deploy: Option<RawDeploy>,
    /// Memory limit (older syntax).
    pub(super) mem_limit: Option<Scalar>,
    /// Services to start first.
    #[serde(default)]
    pub(super) depends_on: Names<serde_json::Value>,
    /// Networks to join.
    #[serde(default)]
    pub(super) networks: Names<RawServiceNetwork>,
    /// Command override.
    pub(super) command: Option<Words>,
    /// Entrypoint override.
    pub(super) entrypoint: Option<Words>,
    /// User to run as.
    pub(super) user: Option<String>,
    /// Working directory inside the container.
    pub(super) working_dir: Option<String>,
    /// Another network namespace to join: `service:NAME`, `host` or `none`.
    pub(super) network_mode: Option<String>,
    /// The profiles that enable the service; none means always enabled.
    #[serde(default)]
    pub(super) profiles: Vec<String>,
}

/// A top-level network or volume.
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct RawResource {
    /// Explicit engine name.
    pub(super) name: Option<String>,
    /// Managed outside compose.
    #[serde(default)]
    pub(super) external: bool,
    /// Driver (networks: bridge by default).
    pub(super) driver: Option<String>,
}

/// A compose file as written.
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct RawFile {
    /// Services by name.
    #[serde(default)]
    pub(super) services: IndexMap<String, RawService>,
    /// Networks by key.
    #[serde(default)]
    pub(super) networks: IndexMap<String, Option<RawResource>>,
    /// Volumes by key.
    #[serde(default)]
    pub(super) volumes: IndexMap<String, Option<RawResource>>,
}

/// A compose file read only for its services' images and published ports, every other key
/// ignored and no variable filled in: how files that are checked but not run (a Docker
/// Helper project's, freshly rendered ones) are read.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Outline {
    /// Services by name, in file order.
    #[serde(default)]
    pub services: IndexMap<String, OutlineService>,
}

/// One service of an [`Outline`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OutlineService {
    /// The image reference, as written.
    pub image: Option<String>,
    /// Published ports, short syntax, as written.
    #[serde(default)]
    pub ports: Vec<String>,
}

impl Outline {
    /// Parses compose YAML; `file` names it in the error.
    pub fn parse(file: &str, text: &str) -> crate::error::Result<Outline> {
        serde_saphyr::from_str(text).map_err(|e| crate::error::Error::Compose {
            file: file.to_string(),
            reason: format!(
                "not valid compose YAML: {}",
                e.to_string().lines().next().unwrap_or_default()
            ),
        })
    }
}
