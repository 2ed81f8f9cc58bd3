//! `cht-dev doctor`: one line per thing `up` depends on, and a failing exit when something blocks it.

use std::path::{Path, PathBuf};

use crate::docker::{ContainerInfo, ContainerState, Engine};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::printer::{Printer, Report, Tone};
use crate::project::profile::{HTTP_PORT_VAR, HTTPS_PORT_VAR};
use crate::project::{Project, ports};
use crate::settings::Settings;
use crate::stack::status::containers;
use crate::stack::up::{NextBoot, missing_mount_sources, next_boot};
use crate::tls::{self, CaFiles};

/// Free space below which `up` is considered blocked.
const DISK_FAIL: u64 = 1 << 30;
/// Free space below which doctor warns.
const DISK_WARN: u64 = 5 << 30;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Fine.
    Ok,
    /// Worth knowing, does not block `up`.
    Warn,
    /// Blocks `up`.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// The outcome.
    pub verdict: Verdict,
    /// What was found, and the fix when not ok.
    pub detail: String,
}

/// Builds a check.
fn check(name: impl Into<String>, verdict: Verdict, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        verdict,
        detail: detail.into(),
    }
}

/// The kept local-ip pair, when there is one: valid, due for a download, or expired.
fn local_ip_check(home: &Home) -> Option<Check> {
    let pair = crate::local_ip::kept(home)?;
    let name = "local-ip certificate";
    let now = time::OffsetDateTime::now_utc();
    Some(match tls::inspect(&pair.fullchain) {
        Err(e) => check(
            name,
            Verdict::Warn,
            format!("cannot be read ({e}); `up` downloads it again"),
        ),
        Ok(info) => {
            let detail = format!("from {}, expires {}", pair.source, info.not_after.date());
            if info.not_after < now {
                check(
                    name,
                    Verdict::Warn,
                    format!("{detail}: expired; `up` downloads a new one, and fails offline"),
                )
            } else if crate::local_ip::due(info.not_after, now) {
                check(
                    name,
                    Verdict::Warn,
                    format!(
                        "{detail}: within {} days; `up` downloads a new one",
                        crate::local_ip::REFRESH_DAYS
                    ),
                )
            } else {
                check(name, Verdict::Ok, detail)
            }
        }
    })
}

/// Where Linux distributions' packages put Docker CLI plugins.
#[cfg(not(target_os = "macos"))]
const PLUGIN_DIRS: &[&str] = &[
    "/usr/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/local/lib/docker/cli-plugins",
];
/// Where Docker Desktop's bundle and Homebrew put Docker CLI plugins on macOS.
#[cfg(target_os = "macos")]
const PLUGIN_DIRS: &[&str] = &[
    "/Applications/Docker.app/Contents/Resources/cli-plugins",
    "/opt/homebrew/lib/docker/cli-plugins",
    "/usr/local/lib/docker/cli-plugins",
];

/// Where a compose CLI is, if any (cht-dev itself never needs one).
fn compose_cli() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("docker-compose"))
                .collect()
        })
        .unwrap_or_default();
    if let Some(home) = directories::BaseDirs::new() {
        candidates.push(home.home_dir().join(".docker/cli-plugins/docker-compose"));
    }
    for dir in PLUGIN_DIRS {
        candidates.push(Path::new(dir).join("docker-compose"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// The nearest existing folder at or above `path`, for disk space.
fn existing_ancestor(path: &Path) -> &Path {
    path.ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"))
}

/// Whether the system trust store (Debian/Ubuntu/Fedora bundles) holds the CA; `None`
/// where there is no such bundle to read (the macOS keychain).
#[cfg(not(target_os = "macos"))]
pub fn system_trusts(ca_pem: &str) -> Option<bool> {
    let body: String = ca_pem.split_whitespace().collect();
    let bundles = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ];
    let bundle = bundles
        .iter()
        .find_map(|b| std::fs::read_to_string(b).ok())?;
    let flat: String = bundle.split_whitespace().collect();
    Some(flat.contains(&body))
}

/// The macOS system store is the keychain, which has no bundle file to read.
#[cfg(target_os = "macos")]
pub fn system_trusts(_ca_pem: &str) -> Option<bool> {
    None
}

/// Whether every bind mount's source is there on the engine's machine (the upgrade
/// service's engine socket above all), and whether that socket is this engine's; only for
/// an engine that runs `here`, whose paths are this machine's.
fn mounts_check(engine: &Engine, here: bool, project: &Project) -> Option<Check> {
    if !here {
        return None;
    }
    let label = format!("mounts {}", project.name);
    let target = project.target();
    let stacks = crate::stack::load::load(&target).ok()?;
    if let Some((service, path, target)) =
        missing_mount_sources(&target, &stacks).into_iter().next()
    {
        let e = Error::MissingMountSource {
            service,
            path: path.into(),
            target,
        };
        return Some(check(label, Verdict::Fail, e.to_string()));
    }
    let socket = engine.endpoint().socket()?;
    let mounted = stacks.companion.services.values().find_map(|s| {
        s.mounts
            .iter()
            .find(|m| m.bind && m.target == crate::docker::endpoint::STANDARD_SOCKET)
            .map(|m| m.source.clone())
    })?;
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    Some(if same(Path::new(&mounted), socket) {
        check(
            label,
            Verdict::Ok,
            format!("the upgrade service mounts this engine's socket {mounted}"),
        )
    } else {
        check(
            label,
            Verdict::Warn,
            format!(
                "the upgrade service mounts {mounted}, not this engine's socket {}: `cht-dev up {}` mounts the right one",
                socket.display(),
                project.name
            ),
        )
    })
}

/// Whether the project's `.env` fits Podman (a log driver it has, the profile of the
/// nginx-dns and haproxy-dns containers), or still carries that profile on another engine; nothing to say
/// for a project on Docker that never ran on Podman.
fn fit_check(podman: bool, project: &Project) -> Option<Check> {
    let label = format!("engine fit {}", project.name);
    let driver = project.log_driver();
    let changes = project.engine_changes(podman);
    let said = crate::project::engine_fit::said(&changes);
    match (podman, changes.is_empty()) {
        (true, true) => Some(check(
            label,
            Verdict::Ok,
            format!(
                "fits Podman: log driver {}, nginx-dns and haproxy-dns answer nginx and HAProxy at 127.0.0.11",
                driver.unwrap_or_default()
            ),
        )),
        (true, false) => Some(check(
            label,
            Verdict::Warn,
            format!(
                "does not fit Podman yet (it needs {said} in .env): `cht-dev up {}` sets them",
                project.name
            ),
        )),
        (false, true) => None,
        (false, false) => Some(check(
            label,
            Verdict::Warn,
            format!(
                ".env keeps Podman's profile on an engine that is not Podman (it needs {said}): `cht-dev up {}` sets it",
                project.name
            ),
        )),
    }
}

/// What the upgrade service's next start (a reboot, an in-app upgrade) would do to the
/// project's CHT containers, and which files in `compose/` it would run besides CHT's.
async fn upgrade_check(engine: &Engine, project: &Project) -> Result<Check> {
    let name = &project.name;
    let label = format!("upgrade service {name}");
    let extra = project.extra_compose_files();
    let extra_note = if extra.is_empty() {
        String::new()
    } else {
        format!(
            "; it would also run {} in {}: move what is not CHT's elsewhere",
            extra.join(", "),
            project.path("compose").display()
        )
    };
    let (verdict, detail) = match next_boot(engine, &project.target()).await? {
        NextBoot::Keeps(0) => (Verdict::Ok, "no CHT container yet".to_string()),
        NextBoot::Keeps(n) => (
            Verdict::Ok,
            format!("its next start keeps all {n} CHT containers"),
        ),
        NextBoot::Recreates(list) => (
            Verdict::Warn,
            format!(
                "its next start would recreate {}: `cht-dev up {name}` brings them in line",
                list.iter()
                    .map(|(s, why)| format!("{s} ({why})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        NextBoot::Unknown(why) => (
            Verdict::Warn,
            format!("cannot tell whether its next start recreates CHT's containers: {why}"),
        ),
    };
    let verdict = if extra.is_empty() {
        verdict
    } else {
        Verdict::Warn
    };
    Ok(check(label, verdict, format!("{detail}{extra_note}")))
}

/// The project's published ports: problems (not a number, held by something else) and
/// those its own running containers hold.
fn port_problems(project: &Project, own: &[ContainerInfo]) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut held = Vec::new();
    for (var, port) in [
        (HTTP_PORT_VAR, project.http_port()),
        (HTTPS_PORT_VAR, project.https_port()),
    ] {
        match ports::busy_reason(port, &Default::default()) {
            None => {}
            Some(_)
                if own.iter().any(|c| {
                    c.state == ContainerState::Running
                        && c.ports.iter().any(|p| p.starts_with(&format!("{port}->")))
                }) =>
            {
                held.push(port.to_string());
            }
            Some(reason) => problems.push(format!(
                "port {port} is busy ({reason}): free it or set {var} in {}",
                project.path(".env").display()
            )),
        }
    }
    (problems, held)
}

/// Runs every check.
pub async fn checks(settings: &Settings, home: &Home) -> Result<Vec<Check>> {
    let mut out = Vec::new();
    // Whether the engine runs on this machine, so its paths are this machine's.
    let mut here = true;
    // Whether it is Podman, whose projects need settings of their own.
    let mut podman = false;
    let engine = match settings.engine().await {
        Ok(engine) => {
            let (verdict, detail) = match engine.facts().await {
                Ok(facts) => {
                    here = facts.runs_here();
                    podman = facts.is_podman();
                    (Verdict::Ok, facts.to_string())
                }
                Err(e) => (Verdict::Warn, format!("its facts could not be read: {e}")),
            };
            out.push(check(
                "engine",
                verdict,
                format!("{} ({}) answers: {detail}", engine.host(), engine.source()),
            ));
            Some(engine)
        }
        Err(e) => {
            out.push(check("engine", Verdict::Fail, e.to_string()));
            None
        }
    };
    out.push(match compose_cli() {
        Some(path) => check(
            "compose CLI",
            Verdict::Ok,
            format!(
                "{} (optional: for plain compose and the upgrade service's files)",
                path.display()
            ),
        ),
        None => check(
            "compose CLI",
            Verdict::Ok,
            "not installed (optional: cht-dev does not need it)",
        ),
    });
    for name in crate::project::names(home)? {
        let project = match Project::load(home, &name) {
            Ok(project) => project,
            Err(e) => {
                out.push(check(
                    format!("project {name}"),
                    Verdict::Fail,
                    e.to_string(),
                ));
                continue;
            }
        };
        let own = match &engine {
            Some(engine) => containers(engine, &name).await?,
            None => Vec::new(),
        };
        let (problems, held) = port_problems(&project, &own);
        if let Some(engine) = &engine {
            out.extend(mounts_check(engine, here, &project));
            out.extend(fit_check(podman, &project));
            out.push(upgrade_check(engine, &project).await?);
        }
        let label = format!("project {name}");
        out.push(if !problems.is_empty() {
            check(label, Verdict::Fail, problems.join("; "))
        } else if held.is_empty() {
            check(
                label,
                Verdict::Ok,
                format!(
                    "ports {}/{} free",
                    project.http_port(),
                    project.https_port()
                ),
            )
        } else {
            check(
                label,
                Verdict::Ok,
                format!("ports {} held by its own nginx", held.join("/")),
            )
        });
    }
    out.push(disk_check(home));
    out.push(ca_check(home)?);
    out.extend(local_ip_check(home));
    out.push(lan_check());
    Ok(out)
}

/// Free space under the home: CouchDB grows.
fn disk_check(home: &Home) -> Check {
    let disk_path = existing_ancestor(home.root());
    match fs4::available_space(disk_path) {
        Ok(free) => {
            let gb = free as f64 / f64::from(1u32 << 30);
            let detail = format!("{gb:.1} GB free under {}", disk_path.display());
            match free {
                f if f < DISK_FAIL => check(
                    "disk",
                    Verdict::Fail,
                    format!("{detail}: CouchDB needs room; free some space"),
                ),
                f if f < DISK_WARN => check(
                    "disk",
                    Verdict::Warn,
                    format!("{detail}: CouchDB grows; consider freeing space"),
                ),
                _ => check("disk", Verdict::Ok, detail),
            }
        }
        Err(e) => check(
            "disk",
            Verdict::Warn,
            format!("cannot read free space of {}: {e}", disk_path.display()),
        ),
    }
}

/// The local CA: present, whole, fit to sign, not expiring, trusted by the system.
fn ca_check(home: &Home) -> Result<Check> {
    let ca = CaFiles::of(home);
    let key = std::fs::read_to_string(&ca.key);
    Ok(match std::fs::read_to_string(&ca.cert) {
        Err(_) => check(
            "local CA",
            Verdict::Ok,
            "not made yet (init or up makes it)",
        ),
        Ok(_) if key.is_err() => check(
            "local CA",
            Verdict::Fail,
            format!(
                "its key {} is missing: no certificate can be issued; remove {} to make a new CA",
                ca.key.display(),
                home.ca_dir().display()
            ),
        ),
        Ok(pem) if let Err(e) = tls::check_ca_pair(&pem, key.as_deref().unwrap_or_default()) => {
            check("local CA", Verdict::Fail, e.to_string())
        }
        Ok(pem) => {
            let info = tls::inspect(&pem)?;
            let days = (info.not_after - time::OffsetDateTime::now_utc()).whole_days();
            let trusted = match system_trusts(&pem) {
                Some(true) => "the system trust store holds it".to_string(),
                Some(false) => {
                    "the system trust store does not hold it (cht-dev ca install --system)"
                        .to_string()
                }
                None => "system trust store not checked on this platform".to_string(),
            };
            let detail = format!(
                "{} expires {} ({days} days); {trusted}",
                ca.cert.display(),
                info.not_after.date()
            );
            if days < 0 {
                check(
                    "local CA",
                    Verdict::Fail,
                    format!(
                        "{detail}: expired; remove {} and re-create projects' certificates",
                        home.ca_dir().display()
                    ),
                )
            } else if days < 30 {
                check("local CA", Verdict::Warn, detail)
            } else {
                check("local CA", Verdict::Ok, detail)
            }
        }
    })
}

/// This machine's LAN addresses, which phones and other machines reach it by.
fn lan_check() -> Check {
    let lan = crate::net::lan_ipv4();
    if lan.is_empty() {
        check(
            "LAN address",
            Verdict::Warn,
            "none found: only this machine can reach the projects",
        )
    } else {
        check(
            "LAN address",
            Verdict::Ok,
            lan.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        )
    }
}

/// Every check, and whether `up` can go ahead.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Doctor {
    /// No check blocks `up`.
    pub ok: bool,
    /// Each check.
    pub checks: Vec<Check>,
}

impl Doctor {
    /// Ok, or the error that makes `doctor` exit non-zero (after the report is written).
    pub fn verdict(&self) -> Result<()> {
        match self
            .checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .count()
        {
            0 => Ok(()),
            count => Err(Error::Unhealthy { count }),
        }
    }
}

impl Report for Doctor {
    fn human(&self, p: &Printer) -> Result<()> {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &self.checks {
            let mark = match c.verdict {
                Verdict::Ok => p.paint(Tone::Good, "ok  "),
                Verdict::Warn => p.paint(Tone::Warn, "warn"),
                Verdict::Fail => p.paint(Tone::Warn, "FAIL"),
            };
            p.data(format!("{mark}  {:<width$}  {}", c.name, c.detail))?;
        }
        Ok(())
    }
}

/// Runs every check.
pub async fn run(settings: &Settings) -> Result<Doctor> {
    let home = settings.home()?;
    let checks = super::runtime::interruptible(checks(settings, &home)).await?;
    Ok(Doctor {
        ok: !checks.iter().any(|c| c.verdict == Verdict::Fail),
        checks,
    })
}
