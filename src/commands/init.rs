//! `cht-dev init`: create a project.

use serde::Serialize;

use crate::error::Result;
use crate::fsutil;
use crate::printer::{Printer, Report, Tone};
use crate::project::{self, InitOptions, TlsMode, render};
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
    /// Where its certificate comes from.
    pub tls: TlsMode,
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
            http_port: project.http_port(),
            https_port: project.https_port(),
            url: Some(project.url()),
            user: Some(project.credentials().user.clone()),
            env_file: project.path(".env").display().to_string(),
            tls: project.tls_mode(),
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
    let mut notes = Vec::new();
    if opts.tls == Some(TlsMode::LocalIp) {
        // Blocking is fine here: nothing runs beside it, and nothing is kept before the
        // whole pair is checked.
        let obtained = crate::local_ip::obtain(&home, &settings.local_ip_source()?, false)?;
        notes.extend(super::tls::obtained_note(&obtained));
        notes.push(super::tls::PUBLIC_KEY_NOTE.to_string());
    }
    let created = project::create(&home, opts).map_err(|e| {
        fsutil::when_full(e, home.root(), project::SPACE_NEEDED, "make the project")
    })?;
    for note in &notes {
        settings.printer.warn(&format!("note: {note}"));
    }
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
        let source = match self.tls {
            TlsMode::LocalCa => "",
            TlsMode::LocalIp => " (local-ip: phones trust it)",
            TlsMode::Own => " (your own)",
        };
        p.info(format!(
            "  certificate: {}{source}",
            self.certificate_names.join(", ")
        ))?;
        p.info(format!("  compose:     {}", self.files.join(", ")))?;
        if self.tls != TlsMode::LocalCa {
            return Ok(());
        }
        let ca_note = if self.ca_created {
            "new: trust it once, see `cht-dev ca`"
        } else {
            "see `cht-dev ca` to trust it"
        };
        p.info(format!("  local CA:    {} ({ca_note})", self.ca))
    }
}
