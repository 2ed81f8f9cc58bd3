//! Bringing a stack's containers in line with its files: resources, the containers
//! compose would keep or replace, the profile's files in their volume, and the start order.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

use super::STOP_GRACE;
use super::compose_hash::ComposeHashes;
use super::load::Stacks;
use super::model::{ServiceSpec, Stack};
use super::profile::{Profile, VolumeFiles};
use crate::docker::{
    ContainerConfig, ContainerInfo, ContainerState, Engine, ImageInfo, Published, VolumeMount,
    labels,
};
use crate::error::{Error, Result};
use crate::progress::Reporter;
use crate::stack::Target;

/// What a stack's containers must match to be kept: per service, the config hash and
/// the image id, and the compose version to name in the labels.
#[derive(Debug, Clone)]
pub(crate) struct Desired {
    /// Service name to config hash.
    hashes: BTreeMap<String, String>,
    /// Service name to the id of its image.
    images: BTreeMap<String, String>,
    /// The compose version whose hashes these are.
    compose_version: String,
}

impl Desired {
    /// The target of `stack`'s containers: the upgrade service compose's hashes where it
    /// gave them, cht-dev's own hash of the resolved service otherwise.
    pub(crate) fn of(
        stack: &Stack,
        images: &BTreeMap<String, ImageInfo>,
        compose: Option<&ComposeHashes>,
    ) -> Desired {
        let mut hashes = BTreeMap::new();
        let mut ids = BTreeMap::new();
        for spec in stack.services.values() {
            let hash = compose
                .and_then(|c| c.hashes.get(&spec.name).cloned())
                .unwrap_or_else(|| Stack::config_hash(spec));
            hashes.insert(spec.name.clone(), hash);
            if let Some(image) = images.get(&spec.image) {
                ids.insert(spec.name.clone(), image.id.clone());
            }
        }
        Desired {
            hashes,
            images: ids,
            compose_version: compose.map_or_else(
                || labels::COMPOSE_VERSION.to_string(),
                |c| c.compose_version.clone(),
            ),
        }
    }

    /// Why compose would recreate `c` as the container of `spec`, if it would: it compares
    /// the config hash and the image id, whoever made the container.
    pub(crate) fn mismatch(&self, spec: &ServiceSpec, c: &ContainerInfo) -> Option<&'static str> {
        let image = self.images.get(&spec.name);
        if c.config_hash.as_ref() != self.hashes.get(&spec.name) {
            Some("its config hash is not compose's")
        } else if image.is_some() && c.image_id.as_ref() != image {
            Some("its image changed")
        } else {
            None
        }
    }

    /// Whether `c` can stay as the container of `spec`: compose's name, and nothing compose
    /// would recreate it for.
    pub(crate) fn keeps(&self, spec: &ServiceSpec, c: &ContainerInfo) -> bool {
        c.name == spec.container_name && self.mismatch(spec, c).is_none()
    }
}

/// The engine's description of the container for `spec`, with `labels`: exposed and
/// published ports, bind mounts as binds (the engine makes a missing host folder, as
/// compose does), named volumes as mounts, compose's restart policy words, and
/// `network_mode` (see [`Joining::create`]) in place of networks when it joins another
/// namespace.
pub(crate) fn container_config(
    spec: &ServiceSpec,
    labels: &BTreeMap<String, String>,
    network_mode: Option<String>,
) -> ContainerConfig {
    let mut exposed = spec.expose.clone();
    let published: Vec<Published> = spec
        .ports
        .iter()
        .map(|p| Published {
            container: format!("{}/{}", p.container_port, p.protocol),
            host_ip: p.host_ip.clone(),
            host_port: p.host_port,
        })
        .collect();
    exposed.extend(published.iter().map(|p| p.container.clone()));
    exposed.sort();
    exposed.dedup();
    let restart = spec.restart;
    ContainerConfig {
        name: spec.container_name.clone(),
        image: spec.image.clone(),
        hostname: spec.hostname.clone(),
        env: spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        labels: labels.clone(),
        exposed,
        published,
        binds: spec
            .mounts
            .iter()
            .filter(|m| m.bind)
            .map(|m| {
                format!(
                    "{}:{}{}",
                    m.source,
                    m.target,
                    if m.read_only { ":ro" } else { "" }
                )
            })
            .collect(),
        volumes: spec
            .mounts
            .iter()
            .filter(|m| !m.bind)
            .map(|m| VolumeMount {
                volume: m.source.clone(),
                target: m.target.clone(),
                read_only: m.read_only,
            })
            .collect(),
        restart,
        log: spec
            .log_driver
            .clone()
            .map(|driver| (driver, spec.log_options.clone())),
        memory: spec.memory,
        networks: spec.networks.clone(),
        network_mode,
        command: spec.command.clone(),
        entrypoint: spec.entrypoint.clone(),
        user: spec.user.clone(),
        working_dir: spec.working_dir.clone(),
    }
}

/// Whether `stack`'s containers (among `list`, every container of the project) are
/// exactly what `desired` keeps: one keepable container per service and nothing else (no
/// orphan, no leftover of a recreate cut short).
pub(crate) fn is_settled(list: &[ContainerInfo], stack: &Stack, desired: &Desired) -> bool {
    let mine: Vec<&ContainerInfo> = list.iter().filter(|c| c.project == stack.project).collect();
    let keepers = stack
        .services
        .values()
        .filter(|spec| {
            mine.iter()
                .any(|c| c.service == spec.name && desired.keeps(spec, c))
        })
        .count();
    keepers == stack.services.len() && mine.len() == keepers
}

/// Labels for a container of `stack`'s `spec`.
fn container_labels(
    project: &str,
    role: &str,
    stack: &Stack,
    spec: &ServiceSpec,
    desired: &Desired,
) -> BTreeMap<String, String> {
    let mut l = spec.labels.clone();
    let files = stack
        .config_files
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    for (k, v) in [
        (labels::PROJECT, stack.project.clone()),
        (labels::SERVICE, spec.name.clone()),
        (labels::CONTAINER_NUMBER, "1".into()),
        (labels::ONEOFF, "False".into()),
        (
            labels::CONFIG_HASH,
            desired.hashes.get(&spec.name).cloned().unwrap_or_default(),
        ),
        (
            labels::IMAGE,
            desired.images.get(&spec.name).cloned().unwrap_or_default(),
        ),
        (labels::CONFIG_FILES, files),
        (labels::WORKING_DIR, stack.working_dir.display().to_string()),
        (labels::VERSION, desired.compose_version.clone()),
        (labels::CHT_DEV_PROJECT, project.into()),
        (labels::CHT_DEV_ROLE, role.into()),
    ] {
        l.insert(k.to_string(), v);
    }
    l
}

/// Labels for a network or volume of `stack`.
fn resource_labels(
    project: &str,
    stack: &Stack,
    kind: &str,
    key: &str,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (kind.to_string(), key.to_string()),
        (labels::PROJECT.to_string(), stack.project.clone()),
        (
            labels::VERSION.to_string(),
            labels::COMPOSE_VERSION.to_string(),
        ),
        (labels::CHT_DEV_PROJECT.to_string(), project.to_string()),
    ])
}

/// Creates the networks and volumes a stack declares (external ones must exist).
pub(crate) async fn ensure_resources(
    engine: &Engine,
    name: &str,
    stack: &Stack,
    reporter: &dyn Reporter,
) -> Result<()> {
    for net in stack.networks.values() {
        if net.external {
            continue;
        }
        let l = resource_labels(name, stack, labels::NETWORK, &net.key);
        if engine
            .ensure_network(&net.name, net.driver.as_deref(), &l)
            .await?
        {
            reporter.step(&format!("created network {}", net.name));
        }
    }
    for vol in stack.volumes.values() {
        if vol.external {
            continue;
        }
        let l = resource_labels(name, stack, labels::VOLUME, &vol.key);
        if engine.ensure_volume(&vol.name, &l).await? {
            reporter.step(&format!("created volume {}", vol.name));
        }
    }
    Ok(())
}

/// Where `spec`'s container mounts the volume of compose key `volume`, if it does.
fn volume_dir(stack: &Stack, spec: &ServiceSpec, volume: &str) -> Option<String> {
    let volume = stack.volumes.get(volume)?;
    spec.mounts
        .iter()
        .find(|m| !m.bind && m.source == volume.name)
        .map(|m| m.target.clone())
}

/// Copies `files` into container `id`'s folder `dir`, and runs their reload command there
/// when it runs (`running`).
async fn put_files(
    engine: &Engine,
    files: &VolumeFiles,
    id: &str,
    name: &str,
    dir: &str,
    running: bool,
) -> Result<()> {
    engine.upload(id, name, dir, files.tar.clone()).await?;
    if running {
        let command: Vec<&str> = files.reload.iter().map(String::as_str).collect();
        let (code, out) = engine.exec(id, name, &command).await?;
        if code != 0 {
            return Err(Error::engine(
                format!("run {:?} in {name}", files.reload.join(" ")),
                out.trim(),
            ));
        }
    }
    Ok(())
}

/// Gives the running container that mounts `files`' volume the files and runs their
/// reload command; returns its name, or `None` when none runs.
pub(crate) async fn reload_files(
    engine: &Engine,
    stack: &Stack,
    files: &VolumeFiles,
) -> Result<Option<String>> {
    let running = engine
        .containers(&[(labels::PROJECT, &stack.project)])
        .await?;
    for spec in stack.services.values() {
        let Some(dir) = volume_dir(stack, spec, &files.volume) else {
            continue;
        };
        if let Some(c) = running
            .iter()
            .find(|c| c.service == spec.name && c.state.is_running())
        {
            put_files(engine, files, &c.id, &c.name, &dir, true).await?;
            return Ok(Some(c.name.clone()));
        }
    }
    Ok(None)
}

/// A container ready to be started (or already running), from [`prepare`].
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// Engine id.
    pub(crate) id: String,
    /// Container name.
    pub(crate) name: String,
    /// Whether it is already running (then it is left alone).
    pub(crate) running: bool,
}

/// One service's container being prepared: awaited by its start, so each service starts
/// as soon as its own container is ready and its dependencies have started, not when
/// every container is. (Shared futures need a cloneable output: errors are shared behind
/// an `Arc`.)
pub(crate) type Preparing<'a> = Shared<BoxFuture<'a, std::result::Result<Prepared, Arc<Error>>>>;

/// Brings one stack's containers to match its files, without starting anything: removes
/// orphans now, and returns per service the work that keeps a matching container or
/// removes a changed one and creates what is missing, putting `files` into their volume
/// before the container that mounts it first starts (or, when they changed, into the
/// running one, with their reload command). That work runs when [`start_in_order`]
/// awaits it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn prepare<'a>(
    engine: &'a Engine,
    project: &'a Target,
    role: &'a str,
    stack: &'a Stack,
    desired: &'a Desired,
    files: Option<&'a VolumeFiles>,
    reporter: &'a dyn Reporter,
) -> Result<BTreeMap<String, Preparing<'a>>> {
    let existing = engine
        .containers(&[(labels::PROJECT, &stack.project)])
        .await?;
    let mut by_service: BTreeMap<String, Vec<ContainerInfo>> = BTreeMap::new();
    for c in existing {
        by_service.entry(c.service.clone()).or_default().push(c);
    }
    // Orphans: containers of services no longer in the files.
    for (service, list) in &by_service {
        if !stack.services.contains_key(service) {
            for c in list {
                engine.remove(&c.id, &c.name).await?;
                reporter.step(&format!("removed orphan container {}", c.name));
            }
        }
    }
    Ok(stack
        .services
        .values()
        .map(|spec| {
            let current = by_service.get(&spec.name).cloned().unwrap_or_default();
            let work = prepare_one(
                engine, project, role, stack, spec, desired, current, files, reporter,
            );
            let work: BoxFuture<'a, _> = Box::pin(async move { work.await.map_err(Arc::new) });
            (spec.name.clone(), work.shared())
        })
        .collect())
}

/// One service of [`prepare`]: `current` are its containers now.
#[allow(clippy::too_many_arguments)]
async fn prepare_one(
    engine: &Engine,
    project: &Target,
    role: &str,
    stack: &Stack,
    spec: &ServiceSpec,
    desired: &Desired,
    current: Vec<ContainerInfo>,
    files: Option<&VolumeFiles>,
    reporter: &dyn Reporter,
) -> Result<Prepared> {
    let labels = container_labels(&project.name, role, stack, spec, desired);
    let joining = engine_network_mode(engine, stack, spec).await?;
    // The one container compose would keep; any other (an outdated one, or one compose
    // left renamed `<id>_<name>` by a recreate cut short) goes. One that joins another
    // container's namespace stays only while that is the container it joined.
    let mut keep = current.iter().find(|c| desired.keeps(spec, c)).cloned();
    if let (
        Some(c),
        Some(Joining {
            expect: Some(mode), ..
        }),
    ) = (&keep, &joining)
        && engine.network_mode(&c.id, &c.name).await?.as_ref() != Some(mode)
    {
        keep = None;
    }
    let network_mode = joining.as_ref().map(|j| j.create.clone());
    let outdated: Vec<&ContainerInfo> = current
        .iter()
        .filter(|c| Some(&c.id) != keep.as_ref().map(|k| &k.id))
        .collect();
    if !outdated.is_empty() {
        remove_joiners(engine, stack, spec, reporter).await?;
    }
    for c in outdated {
        // Gracefully, as compose recreates: a database flushes its files on SIGTERM.
        if c.state.is_running() {
            engine.stop(&c.id, &c.name, STOP_GRACE).await?;
        }
        engine.remove(&c.id, &c.name).await?;
        reporter.step(&format!("removed outdated container {}", c.name));
    }
    let (id, running) = match keep {
        Some(c) => (c.id.clone(), c.state.is_running()),
        None => {
            for m in spec.mounts.iter().filter(|m| m.bind) {
                // A missing folder of the project's is made as the user, so `destroy` can
                // remove it without the engine. Inside a folder a container's user owns
                // (a data folder's subfolder), the engine makes it, as compose would.
                // `up` refused missing sources elsewhere before changing anything.
                let source = Path::new(&m.source);
                if !source.exists() && source.starts_with(&project.dir) {
                    match std::fs::create_dir_all(source) {
                        Err(e) if e.kind() != std::io::ErrorKind::PermissionDenied => {
                            return Err(Error::io("create", source)(e));
                        }
                        _ => {}
                    }
                }
            }
            match engine
                .create_container(&container_config(spec, &labels, network_mode.clone()))
                .await
            {
                Ok(id) => {
                    reporter.step(&format!("created container {}", spec.container_name));
                    (id, false)
                }
                // The upgrade service's compose (booting now) made it meanwhile.
                Err(Error::NameTaken { .. }) => {
                    let c =
                        made_meanwhile(engine, stack, spec, desired, &labels, joining, reporter)
                            .await?;
                    (c.id.clone(), c.state.is_running())
                }
                Err(e) => return Err(e),
            }
        }
    };
    if let Some(files) = files
        && let Some(dir) = volume_dir(stack, spec, &files.volume)
        && (!running || files.changed)
    {
        put_files(engine, files, &id, &spec.container_name, &dir, running).await?;
        if running {
            reporter.step(&files.reloaded);
        }
    }
    Ok(Prepared {
        id,
        name: spec.container_name.clone(),
        running,
    })
}

/// How `spec`'s container joins another network namespace: the engine network mode to
/// make it with, and the mode the engine then reports while it is in the right one.
#[derive(Debug, Clone, PartialEq)]
struct Joining {
    /// Given at create: `service:NAME` becomes `container:ID` of that service's current
    /// container (as compose does); `container:NAME`, `host` and `none` stay as written
    /// (the engine resolves a name).
    create: String,
    /// `container:ID` of the stack's container it must be in; the mode as written for
    /// `host` and `none`; `None` for a container outside the stack.
    expect: Option<String>,
}

/// [`Joining`] for `spec`, `None` for a container on networks. The container it joins is
/// made before this one (the start order puts its service first).
async fn engine_network_mode(
    engine: &Engine,
    stack: &Stack,
    spec: &ServiceSpec,
) -> Result<Option<Joining>> {
    let Some(mode) = &spec.network_mode else {
        return Ok(None);
    };
    if !mode.starts_with("service:") && !mode.starts_with("container:") {
        return Ok(Some(Joining {
            create: mode.clone(),
            expect: Some(mode.clone()),
        }));
    }
    let Some(owner) = stack.network_owner(spec) else {
        return Ok(Some(Joining {
            create: mode.clone(),
            expect: None,
        }));
    };
    let list = engine
        .containers(&[
            (labels::PROJECT, &stack.project),
            (labels::SERVICE, &owner.name),
        ])
        .await?;
    let Some(c) = list.into_iter().find(|c| c.name == owner.container_name) else {
        return Err(Error::Compose {
            file: stack.project.clone(),
            reason: format!(
                "service {} shares the network of service {}, which has no container",
                spec.name, owner.name
            ),
        });
    };
    let id = format!("container:{}", c.id);
    Ok(Some(Joining {
        create: if spec.network_service().is_some() {
            id.clone()
        } else {
            mode.clone()
        },
        expect: Some(id),
    }))
}

/// Removes the containers that joined the network namespace of `spec`'s containers, before
/// one of those goes: an engine may refuse to remove a container others depend on
/// (Podman does), and a joiner left behind would keep a namespace nothing else uses.
/// Their own preparation then makes them again in the new container's namespace.
async fn remove_joiners(
    engine: &Engine,
    stack: &Stack,
    spec: &ServiceSpec,
    reporter: &dyn Reporter,
) -> Result<()> {
    for joiner in stack
        .services
        .values()
        .filter(|s| stack.network_owner(s).is_some_and(|o| o.name == spec.name))
    {
        let list = engine
            .containers(&[
                (labels::PROJECT, &stack.project),
                (labels::SERVICE, &joiner.name),
            ])
            .await?;
        for c in list {
            if c.state.is_running() {
                engine.stop(&c.id, &c.name, STOP_GRACE).await?;
            }
            engine.remove(&c.id, &c.name).await?;
            reporter.step(&format!(
                "removed {}, which shares {}'s network, to make it again",
                c.name, spec.name
            ));
        }
    }
    Ok(())
}

/// How long a container name held by no container of the project is watched for an
/// in-flight create of the project to finish.
const NAME_HOLDER_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Settles a name conflict on create: when the taken name belongs to this project's
/// service (compose in the booting upgrade service made it at the same moment), keeps it
/// if compose would, else replaces it once; a container outside the project is an error.
async fn made_meanwhile(
    engine: &Engine,
    stack: &Stack,
    spec: &ServiceSpec,
    desired: &Desired,
    labels: &BTreeMap<String, String>,
    joining: Option<Joining>,
    reporter: &dyn Reporter,
) -> Result<ContainerInfo> {
    // The name may be held by a create still under way in the engine (one an interrupted
    // command sent just before it ended): it is listed once that create is done, so the
    // listing is asked again for a while before the holder counts as outside the project.
    let deadline = std::time::Instant::now() + NAME_HOLDER_WAIT;
    let other = loop {
        let theirs = engine
            .containers(&[
                (labels::PROJECT, &stack.project),
                (labels::SERVICE, &spec.name),
            ])
            .await?;
        if let Some(c) = theirs.into_iter().find(|c| c.name == spec.container_name) {
            break c;
        }
        if std::time::Instant::now() >= deadline {
            return Err(Error::NameTaken {
                name: spec.container_name.clone(),
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let joined = match joining.as_ref().and_then(|j| j.expect.as_ref()) {
        Some(mode) => engine.network_mode(&other.id, &other.name).await?.as_ref() == Some(mode),
        None => true,
    };
    if joined && desired.keeps(spec, &other) {
        return Ok(other);
    }
    if other.state.is_running() {
        engine.stop(&other.id, &other.name, STOP_GRACE).await?;
    }
    engine.remove(&other.id, &other.name).await?;
    reporter.step(&format!("removed outdated container {}", other.name));
    let id = engine
        .create_container(&container_config(spec, labels, joining.map(|j| j.create)))
        .await?;
    reporter.step(&format!("created container {}", spec.container_name));
    let mut made = other;
    made.id = id;
    made.state = ContainerState::Created;
    Ok(made)
}

/// Fails clearly, before anything is made, when a port the project publishes is taken
/// by something other than the project's own running container.
pub(crate) fn check_published_ports(
    list: &[ContainerInfo],
    stacks: &Stacks,
    profile: &Profile,
) -> Result<()> {
    // Ports held by the project's own containers (cht-dev's or compose's) are freed when
    // those are replaced, so they count as free: running ones, and ones a command cut short
    // left created, paused or being removed (the engine may bind their ports meanwhile).
    // Only an exited or dead container holds nothing.
    let running: Vec<(String, String)> = list
        .iter()
        .filter(|c| !matches!(c.state, ContainerState::Exited | ContainerState::Dead))
        .map(|c| (c.project.clone(), c.service.clone()))
        .collect();
    for stack in [&stacks.main, &stacks.companion] {
        for spec in stack.services.values() {
            if running.contains(&(stack.project.clone(), spec.name.clone())) {
                continue;
            }
            for port in &spec.ports {
                let Some(reason) = crate::net::host_port_busy(port.host_port) else {
                    continue;
                };
                let (what, fix) = match profile.port_owner(port.host_port) {
                    Some(owner) => (
                        owner.setting.clone(),
                        format!(
                            "{} in {} to a free port",
                            owner.setting,
                            owner.file.display()
                        ),
                    ),
                    None => (
                        format!("published by {}", spec.name),
                        format!("another host port for {} in its compose file", spec.name),
                    ),
                };
                return Err(Error::PublishedPortBusy {
                    port: port.host_port,
                    what,
                    reason,
                    fix,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
