//! `cht-dev adopt`: take over a project made by the bash Docker Helper, keeping its ports,
//! credentials and CouchDB data in place.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::printer::{Printer, Report, shell_word};
use crate::project::{self, TlsMode, helper};
use crate::settings::Settings;

/// What `adopt` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptRequest {
    /// The helper's `NAME.env`.
    pub env_file: PathBuf,
    /// Project name in cht-dev (default: the env file's name).
    pub name: Option<String>,
    /// Copy the CouchDB data into the project folder instead of using it in place.
    pub copy_data: bool,
    /// The certificate's source: the helper's local-ip one by default.
    pub tls: TlsMode,
}

/// How long `adopt` waits for the engine to say where it keeps its data.
const ENGINE_ROOT_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// The data root of the engine cht-dev would run the project on, when that engine runs
/// on this machine and answers soon; `None` otherwise (adopt needs no engine).
async fn engine_root(settings: &Settings) -> Option<PathBuf> {
    let asked = async {
        let facts = settings.engine().await.ok()?.facts().await.ok()?;
        (facts.runs_here() && !facts.root_dir.is_empty()).then(|| PathBuf::from(facts.root_dir))
    };
    tokio::time::timeout(ENGINE_ROOT_WITHIN, asked)
        .await
        .ok()
        .flatten()
}

/// Runs `adopt`: the helper's file read and checked first (see [`helper::read`]; data
/// used in place must not overlap the engine's own data root), then the project made.
pub async fn run(settings: &Settings, req: &AdoptRequest) -> Result<AdoptReport> {
    let home = settings.home()?;
    let root = if req.copy_data {
        None
    } else {
        engine_root(settings).await
    };
    let helper = helper::read(
        &home,
        &req.env_file,
        req.name.as_deref(),
        req.copy_data,
        req.tls,
        root.as_deref(),
    )?;
    let (name, opts, data, version) = (helper.name, helper.opts, helper.data, helper.version);
    project::validate(&home, &opts)?;
    let _lock = project::lock(&home, &name)?;
    let mut notes = Vec::new();
    if req.tls == TlsMode::LocalIp {
        // The helper's users test on phones: keep them on the certificate it served.
        let obtained = crate::local_ip::obtain(&home, &settings.local_ip_source()?, false)
            .map_err(|e| match e {
                Error::LocalIp { url, reason } => Error::LocalIp {
                    url,
                    reason: format!("{reason}; or adopt with --tls local-ca to use the local CA"),
                },
                other => other,
            })?;
        notes.extend(super::tls::obtained_note(&obtained));
        notes.push(super::tls::PUBLIC_KEY_NOTE.to_string());
    }
    let created = project::adopt(&home, &opts, &helper.adopted)?;
    let data_now = if req.copy_data {
        created.project.path("couchdb")
    } else {
        data
    };
    Ok(AdoptReport {
        project: name,
        version: version.version,
        http_port: helper.adopted.http,
        https_port: helper.adopted.https,
        couchdb_data: data_now.display().to_string(),
        copied: req.copy_data,
        dir: created.project.dir.display().to_string(),
        tls: req.tls,
        urls: created.project.urls(),
        notes,
        from: req.env_file.display().to_string(),
        helper_upgrade: helper.helper_upgrade,
    })
}

/// A bash-helper project taken over.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdoptReport {
    /// The cht-dev project.
    pub project: String,
    /// Its CHT release.
    pub version: &'static str,
    /// nginx's HTTP port, kept.
    pub http_port: u16,
    /// nginx's HTTPS port, kept.
    pub https_port: u16,
    /// Where the CouchDB data is now.
    pub couchdb_data: String,
    /// Whether the data was copied.
    pub copied: bool,
    /// The project folder.
    pub dir: String,
    /// Where its certificate comes from.
    pub tls: TlsMode,
    /// Its URLs, first the one to use.
    pub urls: Vec<String>,
    /// One-line notes (the local-ip download, its public key).
    pub notes: Vec<String>,
    /// The helper's project file.
    #[serde(skip)]
    pub from: String,
    /// The compose project of the helper's upgrade service ("" when unknown).
    #[serde(skip)]
    pub helper_upgrade: String,
}

impl Report for AdoptReport {
    fn human(&self, p: &Printer) -> Result<()> {
        let name = &self.project;
        for note in &self.notes {
            p.warn(&format!("note: {note}"));
        }
        p.info(format!(
            "adopted {name} (CHT {}) from {}: ports {}/{}, credentials and CouchDB data kept ({})",
            self.version, self.from, self.http_port, self.https_port, self.couchdb_data
        ))?;
        p.info(format!("  project folder: {}", self.dir))?;
        if let Some(url) = self.urls.first() {
            p.info(format!(
                "  https:          {url} ({} certificate)",
                self.tls
            ))?;
        }
        p.info(format!("  start it:       cht-dev up {name}"))?;
        let helper = &self.helper_upgrade;
        if !helper.is_empty() {
            p.info(format!(
                "  the helper's upgrade service ran as compose project {helper}; remove it once: docker compose -p {} down",
                shell_word(helper)
            ))?;
        }
        Ok(())
    }
}
