//! Bringing a project's stacks up and down on the engine: the logic behind `up`,
//! `stop`, `down`, `destroy` and `status`. It reports through a [`Reporter`] and never prints.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::future::try_join_all;
use indexmap::IndexMap;
use time::OffsetDateTime;

use super::compose_hash::{self, ComposeHashes, Learned, UpgradeService};
use super::model::{ServiceSpec, Stack};
use super::probe::{Seen, Tls, WaitFor};
use crate::docker::{ContainerInfo, Engine, ImageInfo, labels};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::home::Home;
use crate::project::{HOSTS_VAR, Project, render};
use crate::report::Reporter;
use crate::tls::{self, CaFiles, SanName};

/// How often readiness probes run while waiting.
const POLL: Duration = Duration::from_millis(25);
/// How often container states are refreshed while waiting.
const STATE_POLL: Duration = Duration::from_millis(250);
/// A certificate expiring sooner than this is reissued on `up`.
const RENEW_BEFORE_DAYS: i64 = 30;
/// Seconds a container gets to stop before it is killed.
const STOP_GRACE: i32 = 10;
/// Log lines shown per failing service on timeout.
const LOG_LINES: u64 = 12;

/// When to pull images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PullPolicy {
    /// Pull only images not present locally.
    Missing,
    /// Pull every image, even when present.
    Always,
    /// Never pull; a missing image is an error.
    Never,
}

/// How `up` runs.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Pull policy.
    pub pull: PullPolicy,
    /// How long to wait for readiness.
    pub timeout: Duration,
    /// Skip the readiness wait.
    pub wait: bool,
    /// The certificate files were just replaced: copy them to nginx and reload it.
    pub cert_replaced: bool,
}

/// The two compose projects of a cht-dev project: CHT itself and the upgrade service.
#[derive(Debug, Clone)]
pub struct Stacks {
    /// CHT: `compose/cht-core.yml` + `compose/cht-couchdb.yml`, compose project `<NAME>`.
    pub cht: Stack,
    /// The upgrade service: `upgrade-service.yml`, compose project `<NAME>-upgrade`.
    pub upgrade: Stack,
}

/// The state of one service, for `status` and `up`'s summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceState {
    /// Service name.
    pub service: String,
    /// Compose project it belongs to.
    pub project: String,
    /// Container name ("" when missing).
    pub container: String,
    /// Engine state, or `missing`.
    pub state: String,
    /// Engine status text.
    pub status: String,
    /// Health, when reported.
    pub health: Option<String>,
    /// Image reference.
    pub image: String,
    /// Published ports.
    pub ports: Vec<String>,
}

/// The compose project name of a cht-dev project's upgrade service.
pub fn upgrade_project(name: &str) -> String {
    format!("{name}-upgrade")
}

/// What `up` did besides its states: one-line notes the user should read.
#[derive(Debug, Clone, Default)]
pub struct UpOutcome {
    /// Each service's state after `up`.
    pub services: Vec<ServiceState>,
    /// Things worth one line each (e.g. why compose's hashes could not be learned).
    pub notes: Vec<String>,
}

/// Reads a project's compose files and `.env` into its two stacks.
///
/// `upgrade-service.yml` is filled in as compose on the host does (the process
/// environment over `.env`). The CHT files are filled in from the environment the upgrade
/// service's container gets, because its compose is the one that recreates CHT's
/// containers at every boot: cht-dev makes exactly the containers it would make. (The
/// image's own environment is left out here; CHT's files use none of its variables.)
pub fn load(project: &Project) -> Result<Stacks> {
    let env: IndexMap<String, String> = project
        .env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let host = |name: &str| std::env::var(name).ok().or_else(|| env.get(name).cloned());
    let upgrade = Stack::load(
        &upgrade_project(&project.name),
        &project.dir,
        &[render::UPGRADE_FILE.into()],
        &host,
    )?;
    let compose_dir = project.path("compose");
    let files = ["cht-core.yml".into(), "cht-couchdb.yml".into()];
    let cht = match compose_hash::find_upgrade_service(upgrade.services.values()) {
        Some(service) => {
            let seen = &service.env;
            Stack::load(&project.name, &compose_dir, &files, &|name: &str| {
                seen.get(name).cloned()
            })?
        }
        None => Stack::load(&project.name, &compose_dir, &files, &host)?,
    };
    Ok(Stacks { cht, upgrade })
}

/// What a stack's containers must match to be kept: per service, the config hash and
/// the image id, and the compose version to name in the labels.
#[derive(Debug, Clone)]
struct Desired {
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
    fn of(
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

    /// Whether `c` can stay as the container of `spec`: compose's name, the config hash and
    /// the image id compose would compare, whoever made it.
    fn keeps(&self, spec: &ServiceSpec, c: &ContainerInfo) -> bool {
        c.name == spec.container_name
            && c.config_hash.as_ref() == self.hashes.get(&spec.name)
            && c.image_id.as_ref() == self.images.get(&spec.name)
    }
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

/// Every container of a cht-dev project, found by label: cht-dev's own, and compose's
/// project labels (containers compose made after an in-app upgrade carry only those).
pub async fn containers(engine: &Engine, name: &str) -> Result<Vec<ContainerInfo>> {
    let mut all: BTreeMap<String, ContainerInfo> = BTreeMap::new();
    let upgrade = upgrade_project(name);
    for (key, value) in [
        (labels::CHT_DEV_PROJECT, name),
        (labels::PROJECT, name),
        (labels::PROJECT, upgrade.as_str()),
    ] {
        for c in engine.containers(&[(key, value)]).await? {
            all.insert(c.id.clone(), c);
        }
    }
    let mut list: Vec<ContainerInfo> = all.into_values().collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(list)
}

/// Checks images against the pull policy, pulls what is needed, and returns every
/// image as present afterwards (by reference).
async fn ensure_images(
    engine: &Engine,
    stacks: &Stacks,
    policy: PullPolicy,
    reporter: &dyn Reporter,
) -> Result<BTreeMap<String, ImageInfo>> {
    let mut images: Vec<String> = stacks
        .cht
        .services
        .values()
        .chain(stacks.upgrade.services.values())
        .map(|s| s.image.clone())
        .collect();
    images.sort();
    images.dedup();
    let present = try_join_all(images.iter().map(|i| engine.image(i))).await?;
    let missing: Vec<String> = images
        .iter()
        .zip(&present)
        .filter(|(_, p)| p.is_none())
        .map(|(i, _)| i.clone())
        .collect();
    let mut found: BTreeMap<String, ImageInfo> = images
        .iter()
        .zip(present)
        .filter_map(|(i, p)| Some((i.clone(), p?)))
        .collect();
    let to_pull = match policy {
        PullPolicy::Never if !missing.is_empty() => {
            return Err(Error::MissingImages { images: missing });
        }
        PullPolicy::Never => Vec::new(),
        PullPolicy::Missing => missing,
        PullPolicy::Always => images,
    };
    let pulled = try_join_all(to_pull.iter().map(|image| async move {
        engine
            .pull(image, &|event| reporter.pull(image, &event))
            .await?;
        reporter.pulled(image);
        let info = engine.image(image).await?.ok_or_else(|| Error::Engine {
            action: format!("pull {image}"),
            reason: "the image is still absent after the pull".into(),
        })?;
        Ok::<_, Error>((image.clone(), info))
    }))
    .await?;
    found.extend(pulled);
    Ok(found)
}

/// Creates the networks and volumes a stack declares (external ones must exist).
async fn ensure_resources(
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

/// Where nginx keeps its certificate: the mount of its `cht-ssl` volume.
fn tls_dir(stack: &Stack, spec: &ServiceSpec) -> Option<String> {
    let ssl_volume = stack.volumes.get("cht-ssl")?;
    spec.mounts
        .iter()
        .find(|m| !m.bind && m.source == ssl_volume.name)
        .map(|m| m.target.clone())
}

/// A tar archive holding the project's `cert.pem` and `key.pem`.
fn cert_tar(project: &Project) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (file, mode) in [("cert.pem", 0o644), ("key.pem", 0o600)] {
        let path = project.path(&format!("certs/{file}"));
        let data = std::fs::read(&path).map_err(Error::io("read", &path))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(OffsetDateTime::now_utc().unix_timestamp().max(0) as u64);
        header.set_cksum();
        builder
            .append_data(&mut header, file, data.as_slice())
            .map_err(Error::io("pack", &path))?;
    }
    builder
        .into_inner()
        .map_err(Error::io("pack", project.path("certs")))
}

/// A container ready to be started (or already running), from [`prepare`].
struct Prepared {
    /// Engine id.
    id: String,
    /// Container name.
    name: String,
    /// Whether it is already running (then it is left alone).
    running: bool,
}

/// Brings one stack's containers to match its files, without starting anything: keeps
/// matching ones, removes orphans and changed ones, creates what is missing, and puts the
/// certificate into nginx's volume before nginx first starts (or reloads it when renewed).
async fn prepare(
    engine: &Engine,
    project: &Project,
    role: &str,
    stack: &Stack,
    desired: &Desired,
    cert_changed: bool,
    reporter: &dyn Reporter,
) -> Result<BTreeMap<String, Prepared>> {
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
    let prepared = try_join_all(stack.services.values().map(|spec| {
        let current = by_service.get(&spec.name).cloned().unwrap_or_default();
        async move {
            let labels = container_labels(&project.name, role, stack, spec, desired);
            // The one container compose would keep; any other (an outdated one, or one
            // compose left renamed `<id>_<name>` by a recreate cut short) goes.
            let keep = current.iter().find(|c| desired.keeps(spec, c)).cloned();
            for c in current
                .iter()
                .filter(|c| Some(&c.id) != keep.as_ref().map(|k| &k.id))
            {
                // Gracefully, as compose recreates: CouchDB flushes its files on SIGTERM.
                if is_running(c) {
                    engine.stop(&c.id, &c.name, STOP_GRACE).await?;
                }
                engine.remove(&c.id, &c.name).await?;
                reporter.step(&format!("removed outdated container {}", c.name));
            }
            let (id, running) = match keep {
                Some(c) => (c.id.clone(), is_running(&c)),
                None => {
                    for m in spec.mounts.iter().filter(|m| m.bind) {
                        // Made as the user, so `destroy` can remove it later; the engine
                        // would make it (as root) otherwise.
                        let _ = std::fs::create_dir_all(&m.source);
                    }
                    match engine.create_container(spec, &labels).await {
                        Ok(id) => {
                            reporter.step(&format!("created container {}", spec.container_name));
                            (id, false)
                        }
                        // The upgrade service's compose (booting now) made it meanwhile.
                        Err(Error::NameTaken { .. }) => {
                            let c = made_meanwhile(engine, stack, spec, desired, &labels, reporter)
                                .await?;
                            (c.id.clone(), is_running(&c))
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            if let Some(dir) = tls_dir(stack, spec)
                && (!running || cert_changed)
            {
                engine
                    .upload(&id, &spec.container_name, &dir, cert_tar(project)?)
                    .await?;
                if running {
                    let (code, out) = engine
                        .exec(&id, &spec.container_name, &["nginx", "-s", "reload"])
                        .await?;
                    if code != 0 {
                        return Err(Error::Engine {
                            action: format!("reload nginx in {}", spec.container_name),
                            reason: out.trim().to_string(),
                        });
                    }
                    reporter.step("reloaded nginx with the new certificate");
                }
            }
            let name = spec.container_name.clone();
            Ok::<_, Error>((spec.name.clone(), Prepared { id, name, running }))
        }
    }))
    .await?;
    Ok(prepared.into_iter().collect())
}

/// Whether a container is up (or coming back up by its restart policy).
fn is_running(c: &ContainerInfo) -> bool {
    c.state == "running" || c.state == "restarting"
}

/// Settles a name conflict on create: when the taken name belongs to this project's
/// service (compose in the booting upgrade service made it at the same moment), keeps it
/// if compose would, else replaces it once; a container outside the project is an error.
async fn made_meanwhile(
    engine: &Engine,
    stack: &Stack,
    spec: &ServiceSpec,
    desired: &Desired,
    labels: &BTreeMap<String, String>,
    reporter: &dyn Reporter,
) -> Result<ContainerInfo> {
    let taken = || Error::NameTaken {
        name: spec.container_name.clone(),
    };
    let theirs = engine
        .containers(&[
            (labels::PROJECT, &stack.project),
            (labels::SERVICE, &spec.name),
        ])
        .await?;
    let other = theirs
        .into_iter()
        .find(|c| c.name == spec.container_name)
        .ok_or_else(taken)?;
    if desired.keeps(spec, &other) {
        return Ok(other);
    }
    if is_running(&other) {
        engine.stop(&other.id, &other.name, STOP_GRACE).await?;
    }
    engine.remove(&other.id, &other.name).await?;
    reporter.step(&format!("removed outdated container {}", other.name));
    let id = engine.create_container(spec, labels).await?;
    reporter.step(&format!("created container {}", spec.container_name));
    let mut made = other;
    made.id = id;
    made.state = "created".into();
    Ok(made)
}

/// Starts a stack's prepared containers in `depends_on` order: each service starts as
/// soon as the services it depends on have started, independent ones together.
async fn start_in_order(
    engine: &Engine,
    stack: &Stack,
    prepared: &BTreeMap<String, Prepared>,
    reporter: &dyn Reporter,
) -> Result<()> {
    use futures_util::FutureExt;
    use futures_util::future::{BoxFuture, Shared};
    /// A service's start, awaited by every service that depends on it.
    type Started<'a> = Shared<BoxFuture<'a, Result<(), String>>>;
    let waves = stack.start_order().map_err(|reason| Error::Compose {
        file: stack.project.clone(),
        reason,
    })?;
    let mut started: BTreeMap<String, Started<'_>> = BTreeMap::new();
    for service in waves.into_iter().flatten() {
        let deps: Vec<Started<'_>> = stack.services[&service]
            .depends_on
            .iter()
            .filter_map(|d| started.get(d).cloned())
            .collect();
        let container = prepared.get(&service);
        let future = async move {
            futures_util::future::try_join_all(deps).await?;
            if let Some(c) = container.filter(|c| !c.running) {
                engine
                    .start(&c.id, &c.name)
                    .await
                    .map_err(|e| e.to_string())?;
                reporter.step(&format!("started {}", c.name));
            }
            Ok(())
        }
        .boxed()
        .shared();
        started.insert(service, future);
    }
    futures_util::future::try_join_all(started.into_values())
        .await
        .map(|_| ())
        .map_err(|reason| Error::Engine {
            action: format!("start {}", stack.project),
            reason,
        })
}

/// Fails clearly, before anything is made, when a port the project publishes is taken
/// by something other than the project's own running container.
async fn check_published_ports(engine: &Engine, project: &Project, stacks: &Stacks) -> Result<()> {
    // Ports held by the project's own running containers (cht-dev's or compose's) are
    // freed when those are replaced, so they count as free.
    let running: Vec<(String, String)> = containers(engine, &project.name)
        .await?
        .into_iter()
        .filter(|c| c.state == "running" || c.state == "restarting")
        .map(|c| (c.project, c.service))
        .collect();
    for stack in [&stacks.cht, &stacks.upgrade] {
        for spec in stack.services.values() {
            if running.contains(&(stack.project.clone(), spec.name.clone())) {
                continue;
            }
            for port in &spec.ports {
                let Some(reason) =
                    crate::project::ports::busy_reason(port.host_port, &Default::default())
                else {
                    continue;
                };
                let env_path = project.path(".env");
                let var = if Some(port.host_port) == project.http_port() {
                    Some("NGINX_HTTP_PORT")
                } else if Some(port.host_port) == project.https_port() {
                    Some("NGINX_HTTPS_PORT")
                } else {
                    None
                };
                let (what, fix) = match var {
                    Some(var) => (
                        var.to_string(),
                        format!("{var} in {} to a free port", env_path.display()),
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

/// Reissues the project certificate when it expires within 30 days or lacks a
/// current LAN address; returns whether it did.
pub fn renew_certificate(home: &Home, project: &Project) -> Result<bool> {
    if project.own_cert() {
        // The user's own certificate: theirs to renew (`up --cert-file ... --key-file ...`).
        return Ok(false);
    }
    let cert_path = project.path("certs/cert.pem");
    let pem = std::fs::read_to_string(&cert_path).map_err(Error::io("read", &cert_path))?;
    let info = tls::inspect(&pem)?;
    let expiring =
        info.not_after - OffsetDateTime::now_utc() < time::Duration::days(RENEW_BEFORE_DAYS);
    let lan_missing = crate::net::lan_ipv4()
        .iter()
        .any(|ip| !info.names.contains(&ip.to_string()));
    if !expiring && !lan_missing {
        return Ok(false);
    }
    let hosts = project
        .env
        .get(HOSTS_VAR)
        .unwrap_or_default()
        .split(',')
        .filter(|h| !h.trim().is_empty())
        .map(SanName::parse)
        .collect::<Result<Vec<_>>>()?;
    let (files, _) = tls::ensure_ca(home)?;
    let leaf = tls::Ca::load(&files)?.issue_leaf(&project.name, &tls::project_names(&hosts))?;
    for (file, contents, mode) in [
        ("certs/key.pem", &leaf.key_pem, fsutil::PRIVATE),
        ("certs/cert.pem", &leaf.cert_pem, fsutil::PUBLIC),
    ] {
        let target = project.path(file);
        let tmp = project.path(&format!("{file}.new"));
        let _ = std::fs::remove_file(&tmp);
        fsutil::write_new(&tmp, contents.as_bytes(), mode)?;
        std::fs::rename(&tmp, &target).map_err(Error::io("replace", &target))?;
    }
    Ok(true)
}

/// What the upgrade service's compose computes for the CHT services, given the images
/// as present: the hashes, or why they are unknown.
async fn learn_compose_hashes(
    engine: &Engine,
    project: &Project,
    stacks: &Stacks,
    images: &BTreeMap<String, ImageInfo>,
) -> Learned {
    let Some(spec) = compose_hash::find_upgrade_service(stacks.upgrade.services.values()) else {
        return Learned::Unknown(format!(
            "{} defines no service that mounts the compose folder at {}",
            render::UPGRADE_FILE,
            compose_hash::COMPOSE_MOUNT
        ));
    };
    let Some(image) = images.get(&spec.image) else {
        return Learned::Unknown(format!("the image {} is not present", spec.image));
    };
    compose_hash::learn(engine, project, &UpgradeService { spec, image }).await
}

/// The one line said when compose's hashes are unknown.
pub fn unknown_hashes_note(why: &str) -> String {
    format!(
        "cannot learn the upgrade service's compose hashes ({why}); using cht-dev's own, so its next start may recreate CHT's containers"
    )
}

/// Brings the project up: images, network, volumes, containers in order, certificates,
/// then waits for readiness (unless `opts.wait` is false).
///
/// CHT's containers carry the config hash the upgrade service's own compose computes, and
/// the upgrade service starts only once they all run, so its boot-time `up` keeps them.
pub async fn up(
    engine: &Engine,
    home: &Home,
    project: &Project,
    opts: &UpOptions,
    reporter: &dyn Reporter,
) -> Result<UpOutcome> {
    let stacks = load(project)?;
    let renewed = renew_certificate(home, project)?;
    let cert_changed = renewed || opts.cert_replaced;
    if renewed {
        reporter.step("reissued the project certificate (expiring, or the LAN address changed)");
    }
    check_published_ports(engine, project, &stacks).await?;
    let images = ensure_images(engine, &stacks, opts.pull, reporter).await?;
    // Learning compose's hashes (a one-off container unless cached) overlaps with the
    // network and volumes, which it does not need.
    let (learned, ()) = futures_util::future::try_join(
        async { Ok(learn_compose_hashes(engine, project, &stacks, &images).await) },
        async {
            // One after the other: both stacks declare the same network, and older engines
            // would create two networks of one name if asked at once.
            ensure_resources(engine, &project.name, &stacks.cht, reporter).await?;
            ensure_resources(engine, &project.name, &stacks.upgrade, reporter).await
        },
    )
    .await?;
    let mut notes = Vec::new();
    let compose = match &learned {
        Learned::Known(c) => Some(c),
        Learned::Unknown(why) => {
            notes.push(unknown_hashes_note(why));
            None
        }
    };
    let cht_target = Desired::of(&stacks.cht, &images, compose);
    let upgrade_target = Desired::of(&stacks.upgrade, &images, None);
    let (cht, upgrade) = futures_util::future::try_join(
        prepare(
            engine,
            project,
            "cht",
            &stacks.cht,
            &cht_target,
            cert_changed,
            reporter,
        ),
        prepare(
            engine,
            project,
            "upgrade",
            &stacks.upgrade,
            &upgrade_target,
            false,
            reporter,
        ),
    )
    .await?;
    start_in_order(engine, &stacks.cht, &cht, reporter).await?;
    // The upgrade service runs compose on CHT's files as it boots: only now, with every
    // CHT container in place, labelled and started, does that change nothing.
    let start_upgrade = start_in_order(engine, &stacks.upgrade, &upgrade, reporter);
    if opts.wait {
        let ca = CaFiles::of(home).cert;
        futures_util::future::try_join(
            start_upgrade,
            wait_ready(engine, project, &ca, &stacks, opts.timeout, reporter),
        )
        .await?;
    } else {
        start_upgrade.await?;
    }
    Ok(UpOutcome {
        services: status_with(engine, project, Some(&stacks)).await?,
        notes,
    })
}

/// Whether the upgrade service's next start would recreate CHT's containers: the
/// services whose running container does not carry compose's hash and image id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextBoot {
    /// Every CHT container is kept (or there is none to recreate).
    Keeps(usize),
    /// These services' containers would be recreated, each with the reason.
    Recreates(Vec<(String, String)>),
    /// It cannot be told: why.
    Unknown(String),
}

/// Tells what the upgrade service's next start would do to CHT's containers, without
/// pulling anything (an absent image means it cannot be told).
pub async fn next_boot(engine: &Engine, project: &Project) -> Result<NextBoot> {
    let stacks = match load(project) {
        Ok(s) => s,
        Err(e) => return Ok(NextBoot::Unknown(e.to_string())),
    };
    let mut images = BTreeMap::new();
    for spec in stacks
        .cht
        .services
        .values()
        .chain(stacks.upgrade.services.values())
    {
        if let Some(info) = engine.image(&spec.image).await? {
            images.insert(spec.image.clone(), info);
        }
    }
    let compose = match learn_compose_hashes(engine, project, &stacks, &images).await {
        Learned::Known(c) => c,
        Learned::Unknown(why) => return Ok(NextBoot::Unknown(why)),
    };
    let list = engine
        .containers(&[(labels::PROJECT, &stacks.cht.project)])
        .await?;
    let mut recreated = Vec::new();
    let mut kept = 0;
    for spec in stacks.cht.services.values() {
        let Some(c) = list.iter().find(|c| c.service == spec.name) else {
            continue;
        };
        let want_hash = compose.hashes.get(&spec.name);
        let want_image = images.get(&spec.image).map(|i| &i.id);
        let why = if c.config_hash.as_ref() != want_hash {
            Some("its config hash is not compose's")
        } else if want_image.is_some() && c.image_id.as_ref() != want_image {
            Some("its image changed")
        } else {
            None
        };
        match why {
            Some(why) => recreated.push((spec.name.clone(), why.to_string())),
            None => kept += 1,
        }
    }
    Ok(if recreated.is_empty() {
        NextBoot::Keeps(kept)
    } else {
        NextBoot::Recreates(recreated)
    })
}

/// The readiness conditions of a project.
pub fn readiness(project: &Project) -> Result<Vec<WaitFor>> {
    let missing = |key: &str| Error::BrokenProject {
        name: project.name.clone(),
        reason: format!("{key} is missing or not a port number in .env"),
    };
    Ok(vec![
        WaitFor::HttpRedirect {
            port: project
                .http_port()
                .ok_or_else(|| missing("NGINX_HTTP_PORT"))?,
        },
        WaitFor::HttpsApi {
            port: project
                .https_port()
                .ok_or_else(|| missing("NGINX_HTTPS_PORT"))?,
            path: "/api/info",
        },
    ])
}

/// Polls every condition until all hold or `timeout` passes; on timeout, explains
/// which services are not running with their last log lines.
async fn wait_ready(
    engine: &Engine,
    project: &Project,
    ca_path: &std::path::Path,
    stacks: &Stacks,
    timeout: Duration,
    reporter: &dyn Reporter,
) -> Result<()> {
    let tls = if project.own_cert() {
        let path = project.path("certs/cert.pem");
        Tls::pinned(&std::fs::read_to_string(&path).map_err(Error::io("read", &path))?)?
    } else {
        Tls::trusting(&std::fs::read_to_string(ca_path).map_err(Error::io("read", ca_path))?)?
    };
    let conditions = readiness(project)?;
    let started = Instant::now();
    let mut pending: Vec<(WaitFor, String)> =
        conditions.into_iter().map(|c| (c, String::new())).collect();
    let mut states = String::new();
    let mut last_states = Instant::now() - STATE_POLL;
    loop {
        let mut still = Vec::new();
        for (condition, _) in pending {
            match condition.check(&tls).await {
                Seen::Ready => {}
                Seen::NotYet(why) => still.push((condition, why)),
            }
        }
        pending = still;
        if pending.is_empty() {
            reporter.finish();
            return Ok(());
        }
        if last_states.elapsed() >= STATE_POLL {
            last_states = Instant::now();
            let list = containers(engine, &project.name).await?;
            states = stacks
                .cht
                .services
                .keys()
                .map(|s| {
                    let state = list
                        .iter()
                        .find(|c| &c.service == s && c.project == project.name)
                        .map_or("missing", |c| c.state.as_str());
                    format!("{s} {state}")
                })
                .collect::<Vec<_>>()
                .join(", ");
        }
        reporter.status(&format!("waiting: {states} | {}", pending[0].1));
        if started.elapsed() >= timeout {
            reporter.finish();
            return Err(not_ready(engine, project, stacks, timeout, &pending).await);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Builds the timeout error: what is not ready, each troubled service's last log lines,
/// and the command to see more.
async fn not_ready(
    engine: &Engine,
    project: &Project,
    stacks: &Stacks,
    timeout: Duration,
    pending: &[(WaitFor, String)],
) -> Error {
    let list = containers(engine, &project.name).await.unwrap_or_default();
    let mut details = Vec::new();
    let mut troubled = Vec::new();
    for service in stacks.cht.services.keys() {
        let found = list
            .iter()
            .find(|c| &c.service == service && c.project == project.name);
        let state = found.map_or("missing".to_string(), |c| c.state.clone());
        if state != "running" {
            troubled.push(format!("{service} ({state})"));
            details.push(format!(
                "  {service}: {state} {}",
                found.map(|c| c.status.as_str()).unwrap_or("")
            ));
            if let Some(c) = found {
                let logs = engine.last_logs(&c.id, LOG_LINES).await.unwrap_or_default();
                for line in logs.lines().filter(|l| !l.trim().is_empty()) {
                    details.push(format!("    | {line}"));
                }
                details.push(format!("    more: cht-dev logs {} {service}", project.name));
            }
        }
    }
    for (_, why) in pending {
        details.push(format!("  {why}"));
    }
    let summary = if troubled.is_empty() {
        format!(
            "{} did not become ready within {} s",
            project.name,
            timeout.as_secs()
        )
    } else {
        format!(
            "{} did not become ready within {} s: not running: {}",
            project.name,
            timeout.as_secs(),
            troubled.join(", ")
        )
    };
    Error::NotReady {
        summary,
        details: details.join("\n"),
    }
}

/// Each service's container state, CHT first, then the upgrade service; extra
/// containers (made by compose, or orphans) follow.
pub async fn status(engine: &Engine, project: &Project) -> Result<Vec<ServiceState>> {
    // Unreadable compose files still leave the containers to report.
    status_with(engine, project, load(project).ok().as_ref()).await
}

/// [`status`] for stacks already loaded (or none).
async fn status_with(
    engine: &Engine,
    project: &Project,
    stacks: Option<&Stacks>,
) -> Result<Vec<ServiceState>> {
    let list = containers(engine, &project.name).await?;
    let mut rows = Vec::new();
    let mut seen = Vec::new();
    if let Some(stacks) = stacks {
        for stack in [&stacks.cht, &stacks.upgrade] {
            for spec in stack.services.values() {
                let found = list
                    .iter()
                    .find(|c| c.service == spec.name && c.project == stack.project);
                if let Some(c) = found {
                    seen.push(c.id.clone());
                }
                rows.push(row(&spec.name, &stack.project, found, &spec.image));
            }
        }
    }
    // Containers of no compose project are cht-dev's own one-offs, not services.
    for c in list
        .iter()
        .filter(|c| !seen.contains(&c.id) && !c.project.is_empty())
    {
        rows.push(row(&c.service, &c.project, Some(c), &c.image));
    }
    Ok(rows)
}

/// One status row from a service and its container, if any.
fn row(service: &str, project: &str, c: Option<&ContainerInfo>, image: &str) -> ServiceState {
    ServiceState {
        service: service.to_string(),
        project: project.to_string(),
        container: c.map(|c| c.name.clone()).unwrap_or_default(),
        state: c.map_or_else(|| "missing".to_string(), |c| c.state.clone()),
        status: c.map(|c| c.status.clone()).unwrap_or_default(),
        health: c.and_then(|c| c.health.clone()),
        image: c.map_or_else(|| image.to_string(), |c| c.image.clone()),
        ports: c.map(|c| c.ports.clone()).unwrap_or_default(),
    }
}

/// A project's containers split for teardown: the upgrade service's first, so it cannot
/// recreate CHT's containers while they are being taken away, then the rest.
fn upgrade_first(name: &str, list: Vec<ContainerInfo>) -> [Vec<ContainerInfo>; 2] {
    let upgrade = upgrade_project(name);
    let (first, rest) = list.into_iter().partition(|c| c.project == upgrade);
    [first, rest]
}

/// Stops every container of the project (they stay, with their data), the upgrade
/// service first; returns how many.
pub async fn stop(engine: &Engine, name: &str, reporter: &dyn Reporter) -> Result<usize> {
    let mut count = 0;
    for group in upgrade_first(name, containers(engine, name).await?) {
        let running: Vec<_> = group
            .iter()
            .filter(|c| c.state == "running" || c.state == "restarting")
            .collect();
        try_join_all(running.iter().map(|c| async move {
            engine.stop(&c.id, &c.name, STOP_GRACE).await?;
            reporter.step(&format!("stopped {}", c.name));
            Ok::<(), Error>(())
        }))
        .await?;
        count += running.len();
    }
    Ok(count)
}

/// Removes every container and network of the project; volumes, data and files stay.
/// Containers are stopped gracefully first (SIGTERM, then SIGKILL after 10 s), as compose
/// does, the upgrade service before the rest. Containers are found by label, so one that
/// compose left renamed halfway through a recreate (`<id>_<project>-<service>-1`) goes too.
pub async fn down(engine: &Engine, project: &Project, reporter: &dyn Reporter) -> Result<()> {
    for group in upgrade_first(&project.name, containers(engine, &project.name).await?) {
        try_join_all(group.iter().map(|c| async move {
            if c.state == "running" || c.state == "restarting" {
                engine.stop(&c.id, &c.name, STOP_GRACE).await?;
            }
            engine.remove(&c.id, &c.name).await?;
            reporter.step(&format!("removed {}", c.name));
            Ok::<(), Error>(())
        }))
        .await?;
    }
    let mut networks = engine
        .networks(labels::CHT_DEV_PROJECT, &project.name)
        .await?;
    if let Ok(stacks) = load(project) {
        for stack in [&stacks.cht, &stacks.upgrade] {
            networks.extend(
                stack
                    .networks
                    .values()
                    .filter(|n| !n.external)
                    .map(|n| n.name.clone()),
            );
        }
    }
    networks.sort();
    networks.dedup();
    for net in networks {
        engine.remove_network(&net).await?;
    }
    Ok(())
}

/// Removes the project's volumes (found by label); used by `destroy` after `down`.
pub async fn remove_volumes(engine: &Engine, name: &str, reporter: &dyn Reporter) -> Result<()> {
    let mut volumes = engine.volumes(labels::CHT_DEV_PROJECT, name).await?;
    volumes.extend(engine.volumes(labels::PROJECT, name).await?);
    volumes.extend(
        engine
            .volumes(labels::PROJECT, &upgrade_project(name))
            .await?,
    );
    volumes.sort();
    volumes.dedup();
    for v in volumes {
        engine.remove_volume(&v).await?;
        reporter.step(&format!("removed volume {v}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::{InitOptions, create};

    #[test]
    fn a_certificate_close_to_expiry_is_reissued_and_a_fresh_one_is_kept() {
        let dir = tempfile::tempdir().expect("tmp");
        let home = Home::at(dir.path()).expect("home");
        let opts = InitOptions {
            name: "renew".into(),
            ..InitOptions::default()
        };
        let project = create(&home, &opts).expect("create").project;
        assert!(
            !renew_certificate(&home, &project).expect("check"),
            "a new certificate is kept"
        );
        let ca = tls::Ca::load(&CaFiles::of(&home)).expect("ca");
        let short = ca
            .issue_leaf_for_days("renew", &tls::project_names(&[]), 10)
            .expect("leaf");
        std::fs::write(project.path("certs/cert.pem"), &short.cert_pem).expect("write");
        assert!(renew_certificate(&home, &project).expect("renew"));
        let pem = std::fs::read_to_string(project.path("certs/cert.pem")).expect("read");
        let info = tls::inspect(&pem).expect("inspect");
        assert!((info.not_after - OffsetDateTime::now_utc()).whole_days() > 390);
        let key_mode = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(project.path("certs/key.pem"))
                .expect("meta")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(key_mode, 0o600);
    }
}
