//! `cht-dev up`: create the project if needed, start it, wait until HTTPS reaches the API.

use std::time::{Duration, Instant};

use crate::docker::Engine;
use crate::docker::endpoint;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::printer::{Printer, Report, Tone};
use crate::progress;
use crate::project::certs::{self, Chosen};
use crate::project::engine_fit::{SOCKET_VAR, said};
use crate::project::{self, InitOptions, Project, TlsMode, journal};
use crate::settings::Settings;
use crate::stack::images::PullPolicy;
use crate::stack::owned;
use crate::stack::status::ServiceState;
use crate::stack::up::{self as stack_up, UpOptions};
use crate::tls::CaFiles;

/// The project name `up` creates when the home has none.
pub const DEFAULT_NAME: &str = "cht";

/// What `up` was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct UpRequest {
    /// Project name, if given.
    pub name: Option<String>,
    /// How to create it if it does not exist (name filled in later).
    pub init: InitOptions,
    /// Whether any creation option was given explicitly.
    pub init_given: bool,
    /// Pull policy.
    pub pull: PullPolicy,
    /// Readiness timeout.
    pub timeout: Duration,
    /// Skip the readiness wait.
    pub no_wait: bool,
}

/// The CouchDB login `up` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Login {
    /// The admin user.
    pub user: String,
    /// Its password.
    pub password: String,
}

/// A project that is up: how to reach it, and what each service does.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Up {
    /// The project.
    pub project: String,
    /// Its CHT release, from its files.
    pub version: Option<String>,
    /// Whether `up` waited until HTTPS reached the API.
    pub ready: bool,
    /// Its URLs: the domain's, localhost's, each LAN address's.
    pub urls: Vec<String>,
    /// nginx's HTTP port.
    pub http_port: Option<u16>,
    /// nginx's HTTPS port.
    pub https_port: Option<u16>,
    /// The CouchDB admin login.
    pub login: Login,
    /// Where the certificate comes from.
    pub tls: TlsMode,
    /// The home CA's certificate.
    pub ca: String,
    /// The URL a phone on this network opens (local-ip only).
    pub phone: Option<String>,
    /// Fauxton, CouchDB's admin interface.
    pub fauxton: Option<String>,
    /// A cht-conf command for this project, quoted for the shell.
    pub cht_conf: Option<String>,
    /// Each service's state.
    pub services: Vec<ServiceState>,
    /// One-line notes (files moved, hashes unknown, ...).
    pub notes: Vec<String>,
    /// How long it took.
    pub seconds: f64,
}

impl Report for Up {
    fn human(&self, p: &Printer) -> Result<()> {
        for note in &self.notes {
            p.warn(&format!("note: {note}"));
        }
        let verb = if self.ready { "is up" } else { "started" };
        p.info(format!(
            "{} {} {verb} (CHT {}) in {:.1} s",
            p.paint(Tone::Good, "✔"),
            p.paint(Tone::Strong, &self.project),
            self.version.as_deref().unwrap_or("?"),
            self.seconds
        ))?;
        for url in &self.urls {
            p.info(format!("  {url}"))?;
        }
        p.info(format!(
            "  login:    {} / {}",
            self.login.user, self.login.password
        ))?;
        if let Some(fauxton) = &self.fauxton {
            p.info(format!("  fauxton:  {fauxton}"))?;
        }
        if let Some(command) = &self.cht_conf {
            p.info(format!("  cht-conf: {command}"))?;
        }
        if let Some(phone) = &self.phone {
            super::tls::print_phone(p, phone)?;
        }
        if self.tls != TlsMode::LocalCa {
            return Ok(());
        }
        p.info(format!(
            "  local CA: {} (trust it once: cht-dev ca)",
            self.ca
        ))
    }
}

/// Fits the project to the engine it runs on: the upgrade service mounts that engine's
/// socket as the engine's machine sees it (a local engine's own socket; inside a VM, such
/// as Docker Desktop's or Colima's, the standard one), a rootless engine gets no port below
/// 1024, and an engine the upgrade service cannot reach is said.
async fn fit_engine(engine: &Engine, project: &mut Project, notes: &mut Vec<String>) -> Result<()> {
    let ports = [
        (project::HTTP_PORT_VAR, project.http_port()),
        (project::HTTPS_PORT_VAR, project.https_port()),
    ];
    let socket = engine.endpoint().socket().map(|s| s.display().to_string());
    let standard = endpoint::STANDARD_SOCKET;
    let low = ports.iter().any(|(_, p)| *p < 1024);
    let mounted = project.mounted_socket().unwrap_or(standard);
    // Asking the engine (two calls) only when the answer can change something: an
    // unchanged running stack's `up` stays at its floor.
    let facts = if low
        || socket
            .as_deref()
            .is_some_and(|s| s != standard && s != mounted)
    {
        Some(engine.facts().await?)
    } else {
        None
    };
    if let Some((var, port)) = refused_port(&ports, facts.as_ref().is_some_and(|f| f.rootless)) {
        return Err(Error::RootlessPort {
            var,
            port,
            env: project.path(".env"),
        });
    }
    // Mounted already: it was found to run here when it was set.
    let here = facts.as_ref().is_none_or(|f| f.runs_here());
    match socket_to_mount(socket.as_deref(), here) {
        None => notes.push(format!(
            "the upgrade service cannot mount an engine reached at {}, only a unix socket: in-app upgrades from the CHT admin app will not work",
            engine.host()
        )),
        Some(wanted) if mounted != wanted => {
            project.update_env(&[(SOCKET_VAR, wanted)])?;
            notes.push(format!(
                "the upgrade service now mounts {wanted}, this engine's socket ({SOCKET_VAR} in .env)"
            ));
        }
        Some(_) => {}
    }
    let podman = match &facts {
        Some(f) => f.is_podman(),
        None => engine.is_podman().await?,
    };
    let changes = project.engine_changes(podman);
    if !changes.is_empty() {
        let pairs: Vec<(&str, &str)> = changes.iter().map(|(k, v)| (*k, v.as_str())).collect();
        project.update_env(&pairs)?;
        let said = said(&changes);
        notes.push(if podman {
            format!(
                "this engine is Podman, so .env now sets {said}: Podman has no `local` log driver, and its DNS server is not at 127.0.0.11, where nginx and HAProxy ask (the nginx-dns and haproxy-dns containers answer there); compose and the upgrade service read the same settings"
            )
        } else {
            format!("this engine is not Podman, so .env now sets {said}")
        });
    }
    Ok(())
}

/// The first port a rootless engine cannot publish (below 1024), with its variable.
fn refused_port(ports: &[(&'static str, u16)], rootless: bool) -> Option<(&'static str, u16)> {
    ports
        .iter()
        .filter(|_| rootless)
        .find(|(_, port)| *port < 1024)
        .copied()
}

/// The socket the upgrade service mounts: a local engine's own (`socket`); the standard one
/// for an engine on another machine, a VM's, whose own socket is there; none for an engine
/// reached over the network.
fn socket_to_mount(socket: Option<&str>, runs_here: bool) -> Option<&str> {
    match socket {
        None => None,
        Some(s) if runs_here => Some(s),
        Some(_) => Some(endpoint::STANDARD_SOCKET),
    }
}

/// Removes, through the engine, what a killed command left in the project that a
/// container's user owns (the previous data a killed `snapshot restore` had set aside),
/// which the sweep of every command cannot remove; says so when it did.
async fn sweep_owned_leftovers(
    engine: &Engine,
    home: &Home,
    project: &Project,
) -> Result<Option<String>> {
    // A journal the repair could not finish still needs what is there.
    if journal::path_in(&project.dir).exists() {
        return Ok(None);
    }
    let stuck = home.sweep_project(&project.name);
    if stuck.is_empty() {
        return Ok(None);
    }
    let image = super::runtime::data_image(project);
    for path in &stuck {
        owned::apply_to_path(
            engine,
            &project.name,
            image.as_deref(),
            path,
            owned::Change::Remove,
        )
        .await?;
    }
    Ok(Some(format!(
        "removed what an interrupted command left behind, owned by a container's user: {}",
        stuck
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// What `up` asks of the project's certificate: the creation options (the existing
/// project's domain filled in for a replacement certificate), the source to switch an
/// existing project to (`--tls`, `--cert-file`), and the user's own pair, checked.
struct CertificatePlan {
    /// The creation options, named.
    init: InitOptions,
    /// The mode an existing project switches to, if asked.
    switch_to: Option<TlsMode>,
    /// The user's own certificate and key, checked.
    own_cert: Option<(String, String)>,
}

/// Checks the certificate options of `up` for project `name` before anything changes.
fn plan_certificate(home: &Home, name: &str, req: &UpRequest) -> Result<CertificatePlan> {
    let mut init = req.init.clone();
    init.name = name.to_string();
    if !home.project_dir(name).join(".env").is_file() {
        project::validate(home, &init)?;
        return Ok(CertificatePlan {
            init,
            switch_to: None,
            own_cert: None,
        });
    }
    if init.cert_file.is_some() && init.domain.is_none() {
        // A replacement certificate must still cover the project's domain.
        init.domain = Project::load(home, name)?.domain().map(str::to_string);
    }
    let form = project::check_form(&init)?;
    if let Some((_, key)) = &form.own_cert {
        crate::tls::refuse_ca_key(key, &CaFiles::of(home))?;
    }
    let mut switch_to = None;
    if init.tls.is_some() || form.own_cert.is_some() {
        certs::refuse(&Project::load(home, name)?, form.tls)?;
        switch_to = Some(form.tls);
    }
    Ok(CertificatePlan {
        init,
        switch_to,
        own_cert: form.own_cert,
    })
}

/// The project `up` runs: made now (its summary said at once), or loaded and switched to
/// the certificate asked for, the local-ip pair downloaded first when it is the one;
/// returns it and, when its certificate files changed, the journal that holds the new
/// pair until nginx serves it.
async fn prepared_project(
    settings: &Settings,
    home: &Home,
    name: &str,
    plan: &CertificatePlan,
    req: &UpRequest,
    notes: &mut Vec<String>,
) -> Result<(Project, Option<journal::Open>)> {
    let p = &settings.printer;
    let exists = home.project_dir(name).join(".env").is_file();
    let mode = match (exists, plan.switch_to) {
        (_, Some(mode)) => mode,
        (true, None) => Project::load(home, name)?.tls_mode(),
        (false, None) => plan.init.tls.unwrap_or_default(),
    };
    // The local-ip pair before anything changes: a failed download changes nothing.
    let pair = if mode == TlsMode::LocalIp {
        let (pair, note) = super::tls::local_ip_pair(settings, home, false).await?;
        notes.extend(note);
        Some(pair)
    } else {
        None
    };
    if !exists {
        let created = project::create(home, &plan.init)?;
        // Said now, before the wait, for people; JSON has it all in the end.
        if !p.is_json() {
            p.report(&super::init::Initialized::from(&created))?;
        }
        return Ok((created.project, None));
    }
    let mut project = Project::load(home, name)?;
    let chosen = match (&pair, &plan.own_cert) {
        (Some(pair), _) => Some(Chosen::LocalIp(pair)),
        (None, Some((cert, key))) => Some(Chosen::Own { cert, key }),
        (None, None) => plan.switch_to.map(|_| Chosen::LocalCa),
    };
    let mut replaced = None;
    if let Some(chosen) = chosen {
        let journal = journal::Open::begin(&project, "up")?;
        if certs::switch(home, &mut project, chosen, &journal)? {
            replaced = Some(journal);
        }
    }
    if req.init_given && plan.switch_to.is_none() {
        p.warn(&format!("note: project {name} exists; creation options were ignored (edit its .env or compose files to change it, or switch its certificate with `cht-dev tls {name} MODE`)"));
    }
    Ok((project, replaced))
}

/// What `up` says of a project that is up.
fn summary(
    home: &Home,
    project: Project,
    services: Vec<ServiceState>,
    notes: Vec<String>,
    req: &UpRequest,
    started: Instant,
) -> Up {
    let ca = CaFiles::of(home).cert;
    let credentials = project.credentials();
    Up {
        version: project.cht_version().ok(),
        ready: !req.no_wait,
        urls: project.urls(),
        http_port: Some(project.http_port()),
        https_port: Some(project.https_port()),
        login: Login {
            user: credentials.user.clone(),
            password: credentials.password.clone(),
        },
        tls: project.tls_mode(),
        ca: ca.display().to_string(),
        phone: project.phone_url(),
        fauxton: Some(project.fauxton_url()),
        cht_conf: project.cht_conf_command(&ca),
        services,
        notes,
        seconds: started.elapsed().as_secs_f64(),
        project: project.name,
    }
}

/// Runs `up`.
pub async fn run(settings: &Settings, req: &UpRequest) -> Result<Up> {
    let home = settings.home()?;
    let started = Instant::now();
    super::runtime::interruptible(async {
        let engine = settings.engine().await?;
        let name = super::runtime::pick(&home, req.name.as_deref(), "up")?
            .unwrap_or_else(|| DEFAULT_NAME.to_string());
        let plan = plan_certificate(&home, &name, req)?;
        let _lock = project::lock(&home, &name)?;
        let mut notes = Vec::new();
        let existed = home.project_dir(&name).join(".env").is_file();
        let (mut project, replaced) =
            prepared_project(settings, &home, &name, &plan, req, &mut notes).await?;
        let cert_replaced = replaced.is_some();
        notes.extend(crate::project::backups::tidy_compose_folder(&project)?);
        fit_engine(&engine, &mut project, &mut notes).await?;
        notes.extend(sweep_owned_leftovers(&engine, &home, &project).await?);
        let reporter = progress::for_terminal(settings.printer.is_quiet());
        let opts = UpOptions {
            pull: req.pull,
            timeout: req.timeout,
            wait: !req.no_wait,
        };
        let outcome = async {
            let profile = super::profile_for_up(&home, &project, cert_replaced, reporter.as_ref())?;
            stack_up::up(
                &engine,
                &project.target(),
                &profile,
                &opts,
                reporter.as_ref(),
            )
            .await
        }
        .await;
        reporter.finish();
        let outcome = match outcome {
            // A project made by this `up` whose images cannot be had is not left behind.
            Err(e @ (Error::PullFailed { .. } | Error::MissingImages { .. })) if !existed => {
                return Err(e.with_rollback(project::discard_unstarted(&project)));
            }
            other => other?,
        };
        notes.extend(outcome.notes);
        if cert_replaced && !req.no_wait {
            let port = project.https_port();
            // nginx's old workers answer a few more handshakes after the reload.
            let path = project.path("certs/cert.pem");
            let cert = std::fs::read_to_string(&path).map_err(Error::io("read", &path))?;
            crate::stack::readiness::probe::wait_serving(port, &cert, req.timeout).await?;
        }
        // nginx has the new pair (with --no-wait, it is handed over, if not yet served).
        if let Some(journal) = replaced {
            journal.update(|j| j.certificates = None)?;
        }
        if project.tls_mode() == TlsMode::LocalIp {
            notes.push(super::tls::PUBLIC_KEY_NOTE.to_string());
        }
        Ok(summary(
            &home,
            project,
            outcome.services,
            notes,
            req,
            started,
        ))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upgrade_service_mounts_the_socket_its_engine_sees() {
        let rootless = "/run/user/1000/docker.sock";
        assert_eq!(socket_to_mount(Some(rootless), true), Some(rootless));
        assert_eq!(
            socket_to_mount(Some("/Users/jo/.colima/default/docker.sock"), false),
            Some("/var/run/docker.sock"),
            "a VM's engine has its own standard socket"
        );
        assert_eq!(
            socket_to_mount(None, true),
            None,
            "tcp:// cannot be mounted"
        );
    }

    #[test]
    fn only_rootless_engines_refuse_ports_below_1024() {
        let ports = [("NGINX_HTTP_PORT", 80), ("NGINX_HTTPS_PORT", 443)];
        assert_eq!(refused_port(&ports, true), Some(("NGINX_HTTP_PORT", 80)));
        assert_eq!(refused_port(&ports, false), None);
        let high = [("NGINX_HTTP_PORT", 8080), ("NGINX_HTTPS_PORT", 8443)];
        assert_eq!(refused_port(&high, true), None);
    }
}
