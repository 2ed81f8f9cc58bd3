//! `cht-dev init`: create a project.

use serde::Serialize;

use crate::error::Result;
use crate::printer::{Printer, Report, Tone};
use crate::project::{self, InitOptions, render};
use crate::settings::Settings;

/// A newly created project: where everything is.
#[derive(Debug, Clone, Serialize)]
pub struct Initialized {
    /// The project.
    pub project: String,
    /// Its CHT release.
    pub version: &'static str,
    /// Its folder.
    pub dir: String,
    /// nginx's HTTP port.
    pub http_port: u16,
    /// nginx's HTTPS port.
    pub https_port: u16,
    /// Its HTTPS URL to use (the domain's, else its own `NAME.localhost`).
    pub url: Option<String>,
    /// The CouchDB admin user.
    pub user: Option<String>,
    /// The `.env` file (which holds the password).
    pub env_file: String,
    /// The names its certificate covers.
    pub certificate_names: Vec<String>,
    /// The home CA's certificate.
    pub ca: String,
    /// Whether this call made the CA.
    pub ca_created: bool,
    /// How many CouchDB nodes it runs (1, or 3 for upstream's cluster).
    pub couchdb_nodes: u32,
    /// The three compose files.
    #[serde(skip)]
    pub files: [String; 3],
}

impl From<&project::Created> for Initialized {
    fn from(created: &project::Created) -> Initialized {
        let project = &created.project;
        Initialized {
            project: project.name.clone(),
            version: created.version.version,
            dir: project.dir.display().to_string(),
            http_port: project.http_port().unwrap_or_default(),
            https_port: project.https_port().unwrap_or_default(),
            url: project.url(),
            user: project.env.get("COUCHDB_USER").map(str::to_string),
            env_file: project.path(".env").display().to_string(),
            certificate_names: created.names.iter().map(ToString::to_string).collect(),
            ca: created.ca.cert.display().to_string(),
            ca_created: created.ca_created,
            couchdb_nodes: created.layout.nodes(),
            files: [
                render::CORE_FILE,
                created.layout.couchdb_file(),
                render::UPGRADE_FILE,
            ]
            .map(|f| project.path(f).display().to_string()),
        }
    }
}

/// Creates the project.
pub fn run(settings: &Settings, opts: &InitOptions) -> Result<Initialized> {
    let home = settings.home()?;
    project::validate(&home, opts)?;
    let _lock = project::lock(&home, &opts.name)?;
    let created = project::create(&home, opts)?;
    Ok(Initialized::from(&created))
}

impl Report for Initialized {
    fn human(&self, p: &Printer) -> Result<()> {
        let nodes = if self.couchdb_nodes == 1 {
            String::new()
        } else {
            format!(", {} CouchDB nodes", self.couchdb_nodes)
        };
        p.info(format!(
            "{} project {} (CHT {}{nodes}) in {}",
            p.paint(Tone::Good, "created"),
            p.paint(Tone::Strong, &self.project),
            self.version,
            self.dir
        ))?;
        let url = self
            .url
            .clone()
            .unwrap_or_else(|| format!("https://localhost:{}/", self.https_port));
        p.info(format!("  https:       {url}"))?;
        p.info(format!(
            "  http:        http://localhost:{}/ (redirects to https)",
            self.http_port
        ))?;
        p.info(format!(
            "  login:       {} (password in {})",
            self.user.as_deref().unwrap_or(project::DEFAULT_USER),
            self.env_file
        ))?;
        p.info(format!(
            "  certificate: {}",
            self.certificate_names.join(", ")
        ))?;
        p.info(format!("  compose:     {}", self.files.join(", ")))?;
        let ca_note = if self.ca_created {
            "new: trust it once, see `cht-dev ca`"
        } else {
            "see `cht-dev ca` to trust it"
        };
        p.info(format!("  local CA:    {} ({ca_note})", self.ca))
    }
}
