//! `cht-dev up`: create the project if needed, start it, wait until HTTPS reaches the API.

use std::time::{Duration, Instant};

use crate::docker::Engine;
use crate::error::Result;
use crate::printer::Tone;
use crate::project::{self, InitOptions, Project};
use crate::report;
use crate::settings::Settings;
use crate::stack::images::PullPolicy;
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

/// Runs `up`.
pub fn run(settings: &Settings, req: &UpRequest) -> Result<()> {
    let home = settings.home()?;
    let p = &settings.printer;
    let started = Instant::now();
    super::engine::block_on(async {
        let engine = Engine::connect().await?;
        let name = super::engine::pick(&home, req.name.as_deref(), "up")?
            .unwrap_or_else(|| DEFAULT_NAME.to_string());
        let exists = home.project_dir(&name).join(".env").is_file();
        let mut init = req.init.clone();
        init.name = name.clone();
        let mut own_cert = None;
        if exists {
            if init.cert_file.is_some() && init.domain.is_none() {
                // A replacement certificate must still cover the project's domain.
                init.domain = Project::load(&home, &name)?.domain().map(str::to_string);
            }
            own_cert = project::check_form(&init)?.own_cert;
        } else {
            project::validate(&home, &init)?;
        }
        let _lock = project::lock(&home, &name)?;
        let mut cert_replaced = false;
        let project = if home.project_dir(&name).join(".env").is_file() {
            let mut project = Project::load(&home, &name)?;
            if let Some((cert, key)) = &own_cert {
                project.install_own_certificate(cert, key)?;
                cert_replaced = true;
            }
            let ignored = req.init_given && own_cert.is_none();
            if ignored && !p.is_quiet() && !settings.json {
                p.warn(&format!("note: project {name} exists; creation options were ignored (edit its .env or compose files to change it)"));
            }
            project
        } else {
            let created = project::create(&home, &init)?;
            if !settings.json {
                super::init::report(settings, &created)?;
            }
            created.project
        };
        let mut notes = super::upgrade::tidy_compose_folder(&project)?;
        let reporter = report::for_terminal(p.is_quiet() || settings.json);
        let opts = UpOptions {
            pull: req.pull,
            timeout: req.timeout,
            wait: !req.no_wait,
            cert_replaced,
        };
        let outcome = stack_up::up(&engine, &home, &project, &opts, reporter.as_ref()).await;
        reporter.finish();
        let outcome = outcome?;
        notes.extend(outcome.notes);
        let states = outcome.services;
        let ca = CaFiles::of(&home).cert;
        let urls = project.urls();
        let user = project
            .env
            .get("COUCHDB_USER")
            .unwrap_or(project::DEFAULT_USER);
        let password = project.env.get("COUCHDB_PASSWORD").unwrap_or_default();
        if settings.json {
            return p.json(&serde_json::json!({
                "project": project.name,
                "version": project.cht_version().ok(),
                "ready": !req.no_wait,
                "urls": urls,
                "http_port": project.http_port(),
                "https_port": project.https_port(),
                "login": { "user": user, "password": password },
                "ca": ca.display().to_string(),
                "services": states,
                "notes": notes,
                "seconds": started.elapsed().as_secs_f64(),
            }));
        }
        for note in &notes {
            p.warn(&format!("note: {note}"));
        }
        let verb = if req.no_wait { "started" } else { "is up" };
        p.info(format!(
            "{} {} {verb} (CHT {}) in {:.1} s",
            p.paint(Tone::Good, "✔"),
            p.paint(Tone::Strong, &project.name),
            project.cht_version().unwrap_or_else(|_| "?".into()),
            started.elapsed().as_secs_f64()
        ))?;
        for url in &urls {
            p.info(format!("  {url}"))?;
        }
        p.info(format!("  login:    {user} / {password}"))?;
        p.info(format!(
            "  local CA: {} (trust it once: cht-dev ca)",
            ca.display()
        ))
    })
}
