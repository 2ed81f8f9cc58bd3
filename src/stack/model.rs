//! The compose files of a project, read into a typed model with variables filled in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Serialize;

use self::raw::{KeyValues, RawFile, RawResource, Scalar, Words};
use super::interpolate::interpolate;
use crate::docker::Restart;
use crate::error::{Error, Result};

/// A port published on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortSpec {
    /// Host address to bind ("" for all).
    pub host_ip: String,
    /// Host port.
    pub host_port: u16,
    /// Container port.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// A mount of a named volume or a host path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountSpec {
    /// The engine volume name, or the absolute host path for a bind mount.
    pub source: String,
    /// The path inside the container.
    pub target: String,
    /// Whether `source` is a host path.
    pub bind: bool,
    /// Mounted read-only.
    pub read_only: bool,
}

/// A service with every variable resolved: what one container is made from.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceSpec {
    /// The service name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Container name (compose's `<project>-<service>-1` unless set).
    pub container_name: String,
    /// Hostname.
    pub hostname: Option<String>,
    /// Restart policy (written as compose's word in the model's hash).
    #[serde(serialize_with = "restart_word")]
    pub restart: Option<Restart>,
    /// Environment, sorted by name.
    pub env: BTreeMap<String, String>,
    /// User labels, sorted by name.
    pub labels: BTreeMap<String, String>,
    /// Exposed ports as `port/proto`.
    pub expose: Vec<String>,
    /// Published ports.
    pub ports: Vec<PortSpec>,
    /// Volumes and bind mounts.
    pub mounts: Vec<MountSpec>,
    /// Log driver.
    pub log_driver: Option<String>,
    /// Log driver options, sorted.
    pub log_options: BTreeMap<String, String>,
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// Services this one waits for.
    pub depends_on: Vec<String>,
    /// Engine network names joined, with aliases on each.
    pub networks: Vec<(String, Vec<String>)>,
    /// Command override.
    pub command: Option<Vec<String>>,
    /// Entrypoint override.
    pub entrypoint: Option<Vec<String>>,
    /// User.
    pub user: Option<String>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// The network namespace it joins instead of networks: `service:NAME` (that service's
    /// container's, which it depends on), `host` or `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
}

impl ServiceSpec {
    /// The service whose container's network namespace this one shares, if any, named as
    /// `service:NAME`.
    pub fn network_service(&self) -> Option<&str> {
        self.network_mode.as_deref()?.strip_prefix("service:")
    }
}

/// A named engine resource (network or volume) a stack needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceSpec {
    /// The key in the compose file.
    pub key: String,
    /// The engine name.
    pub name: String,
    /// Managed outside the project: must exist, never created or removed.
    pub external: bool,
    /// Driver, if set.
    pub driver: Option<String>,
}

/// One compose project read from its files: what `up` turns into engine calls.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The compose project name.
    pub project: String,
    /// The folder relative paths are resolved against (compose's working dir).
    pub working_dir: PathBuf,
    /// The files read, in order.
    pub config_files: Vec<PathBuf>,
    /// Services in file order.
    pub services: IndexMap<String, ServiceSpec>,
    /// Networks by key.
    pub networks: IndexMap<String, ResourceSpec>,
    /// Volumes by key.
    pub volumes: IndexMap<String, ResourceSpec>,
}

/// Parses a memory size such as `1G`, `512m` or `1073741824` into bytes.
pub fn parse_bytes(text: &str) -> Option<i64> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (digits, unit) = match t
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit() && *c != '.')
    {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let value: f64 = digits.parse().ok()?;
    let factor: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = value * factor;
    (bytes.is_finite() && (0.0..9.0e18).contains(&bytes)).then_some(bytes as i64)
}

/// Fills variables into every string of a parsed YAML tree (keys stay as written).
fn interpolate_tree(
    value: &mut serde_json::Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    file: &str,
    path: &str,
) -> Result<()> {
    match value {
        serde_json::Value::String(s) => {
            *s = interpolate(s, lookup).map_err(|e| Error::Compose {
                file: file.to_string(),
                reason: format!("{path}: {e}"),
            })?;
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_tree(item, lookup, file, &format!("{path}[{i}]"))?;
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                // Extension fields (x-...) are templates for anchors, not config.
                if path.is_empty() && k.starts_with("x-") {
                    continue;
                }
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                interpolate_tree(v, lookup, file, &child)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Top-level networks or volumes with their engine names (`name:`, else `<project>_<key>`).
fn resources(
    project: &str,
    raw: &IndexMap<String, Option<RawResource>>,
) -> IndexMap<String, ResourceSpec> {
    raw.iter()
        .map(|(key, r)| {
            let r = r.clone().unwrap_or_default();
            let spec = ResourceSpec {
                key: key.clone(),
                name: r.name.unwrap_or_else(|| format!("{project}_{key}")),
                external: r.external,
                driver: r.driver,
            };
            (key.clone(), spec)
        })
        .collect()
}

/// Splits a short-syntax port (`[ip:]host:container[/proto]` or `container`).
fn parse_port(text: &str) -> Option<PortSpec> {
    let (body, protocol) = match text.rsplit_once('/') {
        Some((b, p)) => (b, p.to_string()),
        None => (text, "tcp".to_string()),
    };
    let parts: Vec<&str> = body.rsplitn(3, ':').collect();
    let number = |s: &str| s.trim().parse::<u16>().ok().filter(|p| *p != 0);
    match parts.as_slice() {
        [container, host] => Some(PortSpec {
            host_ip: String::new(),
            host_port: number(host)?,
            container_port: number(container)?,
            protocol,
        }),
        [container, host, ip] => Some(PortSpec {
            host_ip: ip.trim_matches(|c| c == '[' || c == ']').to_string(),
            host_port: number(host)?,
            container_port: number(container)?,
            protocol,
        }),
        _ => None,
    }
}

/// Whether a service of `profiles` is enabled by `active` (COMPOSE_PROFILES: names
/// separated by commas, `*` for all): one without profiles always is.
fn enabled(profiles: &[String], active: &str) -> bool {
    profiles.is_empty()
        || active
            .split(',')
            .map(str::trim)
            .any(|a| a == "*" || profiles.iter().any(|p| p == a))
}

/// A service's environment: `KEY=VALUE` entries as written, and a bare `KEY` (or a
/// `KEY:` without value) taken from `lookup` when it knows it, as compose does.
fn environment(
    environment: &KeyValues,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> BTreeMap<String, String> {
    let mut env_map = BTreeMap::new();
    match environment {
        KeyValues::List(items) => {
            for item in items {
                match item.split_once('=') {
                    Some((k, v)) => {
                        env_map.insert(k.to_string(), v.to_string());
                    }
                    None => {
                        if let Some(v) = lookup(item) {
                            env_map.insert(item.clone(), v);
                        }
                    }
                }
            }
        }
        KeyValues::Map(map) => {
            for (k, v) in map {
                match v {
                    Some(v) => {
                        env_map.insert(k.clone(), v.text());
                    }
                    None => {
                        if let Some(v) = lookup(k) {
                            env_map.insert(k.clone(), v);
                        }
                    }
                }
            }
        }
    }
    env_map
}

/// A service's labels, as a list of `KEY=VALUE` or a map.
fn labels(labels: &KeyValues) -> BTreeMap<String, String> {
    match labels {
        KeyValues::List(items) => items
            .iter()
            .map(|i| match i.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (i.clone(), String::new()),
            })
            .collect(),
        KeyValues::Map(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), v.as_ref().map(Scalar::text).unwrap_or_default()))
            .collect(),
    }
}

/// Service `name`'s `volumes` entries as mounts: a path (absolute, relative to
/// `working_dir`, or under `~`) is a bind mount, anything else a declared volume; `ro`
/// among the options makes it read-only. Returns why not, for the compose error.
fn mounts(
    name: &str,
    entries: &[String],
    working_dir: &Path,
    volumes: &IndexMap<String, ResourceSpec>,
) -> std::result::Result<Vec<MountSpec>, String> {
    let mut mounts = Vec::new();
    for v in entries {
        let mut parts = v.splitn(3, ':');
        let (Some(src), Some(target)) = (parts.next(), parts.next()) else {
            return Err(format!(
                "service {name}: volume {v:?} must be SOURCE:TARGET (anonymous volumes are not supported)"
            ));
        };
        let read_only = parts
            .next()
            .is_some_and(|m| m.split(',').any(|o| o == "ro"));
        let bind = src.starts_with('/') || src.starts_with('.') || src.starts_with('~');
        let source = if bind {
            let p = if let Some(rest) = src.strip_prefix("~/") {
                directories::BaseDirs::new()
                    .map(|b| b.home_dir().join(rest))
                    .unwrap_or_else(|| PathBuf::from(src))
            } else {
                working_dir.join(src)
            };
            std::path::absolute(&p)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned()
        } else {
            volumes
                .get(src)
                .map(|r| r.name.clone())
                .ok_or_else(|| format!("service {name} uses volume {src:?}, which is not declared under the top-level volumes"))?
        };
        mounts.push(MountSpec {
            source,
            target: target.to_string(),
            bind,
            read_only,
        });
    }
    Ok(mounts)
}

/// Reads `files` (relative to `working_dir`) with variables filled in from `lookup`, later
/// files overriding earlier ones key by key, as compose merges them; returns the merged
/// file and the paths read.
fn read_files(
    working_dir: &Path,
    files: &[PathBuf],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(RawFile, Vec<PathBuf>)> {
    let mut raw = RawFile::default();
    let mut config_files = Vec::new();
    for file in files {
        let path = working_dir.join(file);
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(Error::io("read", &path))?;
        let mut tree: serde_json::Value =
            serde_saphyr::from_str(&text).map_err(|e| Error::Compose {
                file: shown.clone(),
                reason: e.to_string().lines().next().unwrap_or_default().to_string(),
            })?;
        interpolate_tree(&mut tree, lookup, &shown, "")?;
        let parsed: RawFile = serde_json::from_value(tree).map_err(|e| Error::Compose {
            file: shown.clone(),
            reason: format!("{e} (cht-dev up reads the compose keys CHT uses; edit the file or run it with docker compose)"),
        })?;
        // Later files override earlier ones key by key, as compose merges them.
        raw.services.extend(parsed.services);
        raw.networks.extend(parsed.networks);
        raw.volumes.extend(parsed.volumes);
        config_files.push(path);
    }
    Ok((raw, config_files))
}

/// What one service's model is read against: the project, the other services (enabled
/// ones only), the declared networks and volumes, and the variables.
struct Context<'a> {
    /// The compose project name.
    project: &'a str,
    /// The project directory relative paths start from.
    working_dir: &'a Path,
    /// Every enabled service, as written.
    services: &'a IndexMap<String, raw::RawService>,
    /// The declared networks.
    networks: &'a IndexMap<String, ResourceSpec>,
    /// The declared volumes.
    volumes: &'a IndexMap<String, ResourceSpec>,
    /// The variables compose would see.
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Context<'_> {
    /// Service `name` as written (`s`), checked and typed; the error names the service.
    fn service(&self, name: &str, s: &raw::RawService) -> std::result::Result<ServiceSpec, String> {
        let image = s
            .image
            .clone()
            .filter(|i| !i.trim().is_empty())
            .ok_or_else(|| {
                format!("service {name} has no image (cht-dev up does not build images)")
            })?;
        let expose = s
            .expose
            .iter()
            .map(|e| {
                let text = e.text();
                if text.contains('/') {
                    text
                } else {
                    format!("{text}/tcp")
                }
            })
            .collect();
        let ports = s
            .ports
            .iter()
            .map(|p| {
                parse_port(&p.text()).ok_or_else(|| {
                    format!(
                        "service {name}: port {:?} must be HOST:CONTAINER with numbers from 1 to 65535",
                        p.text()
                    )
                })
            })
            .collect::<std::result::Result<Vec<_>, String>>()?;
        let restart = match &s.restart {
            Some(text) => Some(parse_restart(text).ok_or_else(|| {
                format!("service {name}: restart {text:?} must be no, always, unless-stopped or on-failure[:N]")
            })?),
            None => None,
        };
        Ok(ServiceSpec {
            name: name.to_string(),
            image,
            container_name: s
                .container_name
                .clone()
                .unwrap_or_else(|| format!("{}-{name}-1", self.project)),
            hostname: s.hostname.clone(),
            restart,
            env: environment(&s.environment, self.lookup),
            labels: labels(&s.labels),
            expose,
            ports,
            mounts: mounts(name, &s.volumes, self.working_dir, self.volumes)?,
            log_driver: s.logging.as_ref().and_then(|l| l.driver.clone()),
            log_options: s
                .logging
                .as_ref()
                .map(|l| {
                    l.options
                        .iter()
                        .map(|(k, v)| (k.clone(), v.text()))
                        .collect()
                })
                .unwrap_or_default(),
            memory: memory_limit(name, s)?,
            depends_on: self.depends_on(name, s)?,
            networks: self.networks_of(name, s)?,
            command: s.command.as_ref().map(Words::args),
            entrypoint: s.entrypoint.as_ref().map(Words::args),
            user: s.user.clone(),
            working_dir: s.working_dir.clone(),
            network_mode: s.network_mode.clone(),
        })
    }

    /// The services `name` needs started first: its `depends_on`, and the service whose
    /// network namespace it shares; each must be an enabled service.
    fn depends_on(
        &self,
        name: &str,
        s: &raw::RawService,
    ) -> std::result::Result<Vec<String>, String> {
        let mut depends_on: Vec<String> =
            s.depends_on.entries().into_iter().map(|(n, _)| n).collect();
        let shared = s
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("service:"));
        if let Some(other) = shared
            && !depends_on.iter().any(|d| d == other)
        {
            depends_on.push(other.to_string());
        }
        if let Some(dep) = depends_on.iter().find(|d| !self.services.contains_key(*d)) {
            return Err(format!(
                "service {name} depends on {dep}, which is not defined or not in an enabled profile (COMPOSE_PROFILES)"
            ));
        }
        Ok(depends_on)
    }

    /// The networks `name` joins (engine name, aliases), `default` when it names none;
    /// none when it shares another namespace (`network_mode`).
    fn networks_of(
        &self,
        name: &str,
        s: &raw::RawService,
    ) -> std::result::Result<Vec<(String, Vec<String>)>, String> {
        let entries = s.networks.entries();
        if s.network_mode.is_some() {
            if !entries.is_empty() {
                return Err(format!(
                    "service {name} sets both network_mode and networks; keep one"
                ));
            }
            return Ok(Vec::new());
        }
        let entries = if entries.is_empty() && self.networks.contains_key("default") {
            vec![("default".to_string(), None)]
        } else {
            entries
        };
        let mut joined = Vec::new();
        for (key, settings) in entries {
            let net = self.networks.get(&key).ok_or_else(|| {
                format!("service {name} joins network {key:?}, which is not declared under the top-level networks")
            })?;
            let mut aliases = vec![name.to_string()];
            aliases.extend(settings.map(|s| s.aliases).unwrap_or_default());
            joined.push((net.name.clone(), aliases));
        }
        if joined.is_empty() {
            return Err(format!(
                "service {name} joins no network; declare one (CHT services share cht-net)"
            ));
        }
        Ok(joined)
    }
}

/// A service's memory limit in bytes: `deploy.resources.limits.memory`, else `mem_limit`.
fn memory_limit(name: &str, s: &raw::RawService) -> std::result::Result<Option<i64>, String> {
    let text = s
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.memory.as_ref())
        .or(s.mem_limit.as_ref())
        .map(Scalar::text);
    text.map(|t| {
        parse_bytes(&t).ok_or_else(|| {
            format!("service {name}: memory limit {t:?} is not a size like 512m or 1G")
        })
    })
    .transpose()
}

/// Reads a compose restart policy: `no`, `always`, `unless-stopped`, `on-failure[:N]`.
fn parse_restart(text: &str) -> Option<Restart> {
    match text.trim() {
        "no" => Some(Restart::No),
        "always" => Some(Restart::Always),
        "unless-stopped" => Some(Restart::UnlessStopped),
        "on-failure" => Some(Restart::OnFailure(None)),
        other => {
            let n = other.strip_prefix("on-failure:")?.parse().ok()?;
            Some(Restart::OnFailure(Some(n)))
        }
    }
}

/// Writes a restart policy as compose does, so that a model's hash is the one earlier
/// versions computed from the word as written.
fn restart_word<S: serde::Serializer>(
    restart: &Option<Restart>,
    out: S,
) -> std::result::Result<S::Ok, S::Error> {
    match restart {
        None => out.serialize_none(),
        Some(Restart::No) => out.serialize_some("no"),
        Some(Restart::Always) => out.serialize_some("always"),
        Some(Restart::UnlessStopped) => out.serialize_some("unless-stopped"),
        Some(Restart::OnFailure(None)) => out.serialize_some("on-failure"),
        Some(Restart::OnFailure(Some(n))) => out.serialize_some(&format!("on-failure:{n}")),
    }
}

impl Stack {
    /// Reads `files` (relative to `working_dir` or absolute) as compose project `project`,
    /// filling variables from `lookup` (what compose would see: for a file run on the host,
    /// the process environment over `.env`; for the CHT files, the upgrade service's).
    pub fn load(
        project: &str,
        working_dir: &Path,
        files: &[PathBuf],
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Stack> {
        let (mut raw, config_files) = read_files(working_dir, files, lookup)?;
        let file_label = config_files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let bad = |reason: String| Error::Compose {
            file: file_label.clone(),
            reason,
        };
        let networks = resources(project, &raw.networks);
        let volumes = resources(project, &raw.volumes);
        // Services of profiles COMPOSE_PROFILES does not name are left out, as compose does.
        let profiles = lookup("COMPOSE_PROFILES").unwrap_or_default();
        raw.services.retain(|_, s| enabled(&s.profiles, &profiles));
        let context = Context {
            project,
            working_dir,
            services: &raw.services,
            networks: &networks,
            volumes: &volumes,
            lookup,
        };
        let mut services = IndexMap::new();
        for (name, s) in &raw.services {
            services.insert(name.clone(), context.service(name, s).map_err(bad)?);
        }
        let stack = Stack {
            project: project.to_string(),
            working_dir: working_dir.to_path_buf(),
            config_files,
            services,
            networks,
            volumes,
        };
        stack.start_order().map_err(bad)?;
        Ok(stack)
    }

    /// The service of this stack whose container's network namespace `spec` joins:
    /// `service:NAME`, or `container:NAME` naming one of the stack's containers.
    pub fn network_owner(&self, spec: &ServiceSpec) -> Option<&ServiceSpec> {
        if let Some(service) = spec.network_service() {
            return self.services.get(service);
        }
        let container = spec.network_mode.as_deref()?.strip_prefix("container:")?;
        self.services
            .values()
            .find(|s| s.container_name == container)
    }

    /// Services grouped into waves: each wave depends only on earlier ones.
    pub fn start_order(&self) -> Result<Vec<Vec<String>>, String> {
        let mut done: Vec<String> = Vec::new();
        let mut waves = Vec::new();
        while done.len() < self.services.len() {
            let wave: Vec<String> = self
                .services
                .values()
                .filter(|s| !done.contains(&s.name))
                .filter(|s| s.depends_on.iter().all(|d| done.contains(d)))
                .map(|s| s.name.clone())
                .collect();
            if wave.is_empty() {
                let stuck: Vec<_> = self
                    .services
                    .keys()
                    .filter(|k| !done.contains(k))
                    .cloned()
                    .collect();
                return Err(format!(
                    "services {} depend on each other in a cycle",
                    stuck.join(", ")
                ));
            }
            done.extend(wave.iter().cloned());
            waves.push(wave);
        }
        Ok(waves)
    }

    /// The services that head the stack's longest chain of `depends_on` starts (a chain
    /// counts the starts that must run one after another, its head included): the ones
    /// whose containers are worth making before any other, since every step of that chain
    /// waits for the one before. Empty when no service depends on another (no start waits).
    /// `waves` is what [`Stack::start_order`] answered for this stack.
    pub fn longest_chain_heads(&self, waves: &[Vec<String>]) -> Vec<String> {
        // A service's chain length: 1 + the longest among the services that depend on it.
        // Waves in reverse order see every dependant before its dependencies.
        let mut length: BTreeMap<&str, usize> = BTreeMap::new();
        for name in waves.iter().rev().flatten() {
            let longest_dependant = self
                .services
                .values()
                .filter(|s| s.depends_on.contains(name))
                .filter_map(|s| length.get(s.name.as_str()))
                .max()
                .copied()
                .unwrap_or(0);
            length.insert(name, longest_dependant + 1);
        }
        let longest = length.values().max().copied().unwrap_or(0);
        if longest < 2 {
            return Vec::new();
        }
        waves
            .first()
            .into_iter()
            .flatten()
            .filter(|name| length.get(name.as_str()) == Some(&longest))
            .cloned()
            .collect()
    }

    /// cht-dev's hash of a service's resolved model (changes when the container must be recreated).
    pub fn config_hash(spec: &ServiceSpec) -> String {
        let json = serde_json::to_string(spec).unwrap_or_default();
        crate::fsutil::hex_sha256(&json)
    }
}

pub mod raw;
#[cfg(test)]
mod tests;
