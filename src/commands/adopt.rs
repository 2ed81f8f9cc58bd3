//! `cht-dev adopt`: take over a project made by the bash Docker Helper, keeping its ports,
//! credentials and CouchDB data in place.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::printer::{Printer, Report, shell_word};
use crate::project::dotenv::EnvFile;
use crate::project::{self, Adopted, InitOptions, TlsMode, compose::ComposeFile, ports, versions};
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

/// The helper's settings cht-dev needs, every one non-empty.
const REQUIRED: [&str; 8] = [
    "NGINX_HTTP_PORT",
    "NGINX_HTTPS_PORT",
    "COUCHDB_USER",
    "COUCHDB_PASSWORD",
    "COUCHDB_SECRET",
    "COUCHDB_UUID",
    "COUCHDB_DATA",
    "CHT_COMPOSE_PATH",
];

/// The credentials kept as they are.
const CREDENTIALS: [&str; 4] = [
    "COUCHDB_USER",
    "COUCHDB_PASSWORD",
    "COUCHDB_SECRET",
    "COUCHDB_UUID",
];

/// Runs `adopt`. The helper's `.env` is another tool's file: every value cht-dev uses is
/// checked as its flag would be (name, ports, registry, data folder, no control
/// characters, a `.env` spelling both composes read alike) before anything is written.
pub fn run(settings: &Settings, req: &AdoptRequest) -> Result<AdoptReport> {
    let home = settings.home()?;
    let bad = |reason: String| {
        Error::BadOption(format!("cannot adopt {}: {reason}", req.env_file.display()))
    };
    let size = std::fs::metadata(&req.env_file)
        .map_err(Error::io("read", &req.env_file))?
        .len();
    if size > project::MAX_ENV_BYTES {
        return Err(bad(format!(
            "it is {size} bytes, more than settings ever need ({})",
            project::MAX_ENV_BYTES
        )));
    }
    let text = std::fs::read_to_string(&req.env_file).map_err(Error::io("read", &req.env_file))?;
    let env = EnvFile::parse(&text).map_err(|e| bad(format!("line {}: {}", e.line, e.reason)))?;
    let name = match &req.name {
        Some(n) => n.clone(),
        None => req
            .env_file
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
            .ok_or_else(|| {
                bad("cannot tell the project name from the file name; pass --name".into())
            })?,
    };
    // The name first: adopting one file twice says the project exists.
    project::validate(
        &home,
        &InitOptions {
            name: name.clone(),
            ..InitOptions::default()
        },
    )?;
    // A clustered .env keeps one data folder per node (DB1_DATA...). The helper makes
    // single-node projects only, so such a file is not one adopt can map to settings.
    if ["DB1_DATA", "DB2_DATA", "DB3_DATA"]
        .iter()
        .any(|k| env.get(k).is_some_and(|v| !v.is_empty()))
        && env.get("COUCHDB_DATA").is_none_or(str::is_empty)
    {
        return Err(bad(
            "it is a clustered (three-node CouchDB) project, with one data folder per node (DB1_DATA...), and adopt maps only the Docker Helper's single-node projects: make a cluster with `cht-dev init NAME --couchdb-nodes 3`".into(),
        ));
    }
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|k| env.get(k).is_none_or(str::is_empty))
        .collect();
    if !missing.is_empty() {
        return Err(bad(format!(
            "it lacks {} (is it a Docker Helper .env file?)",
            missing.join(", ")
        )));
    }
    let get = |k: &str| env.get(k).unwrap_or_default().to_string();
    for key in REQUIRED.iter().chain(&["DOCKER_CONFIG_PATH"]) {
        if get(key).chars().any(char::is_control) {
            return Err(bad(format!(
                "{key} holds a control character; fix it in the file"
            )));
        }
    }
    let taken = project::taken_ports(&home)?;
    let port = |key: &'static str| -> Result<u16> {
        let raw = get(key);
        let port = ports::parse_setting(&raw).map_err(|why| bad(format!("{key}={raw}: {why}")))?;
        match ports::busy_reason(port, &taken) {
            None => Ok(port),
            Some(why) => Err(bad(format!(
                "{key} {port} is busy: {why}; stop what holds it (the helper's own containers: docker ps) and adopt again"
            ))),
        }
    };
    let (http, https) = (port("NGINX_HTTP_PORT")?, port("NGINX_HTTPS_PORT")?);
    if http == https {
        return Err(bad(format!(
            "NGINX_HTTP_PORT and NGINX_HTTPS_PORT are both {http}; give each its own"
        )));
    }
    let raw_data = get("COUCHDB_DATA");
    let data = project::check_data_folder(&home, &raw_data).map_err(|why| {
        bad(format!(
            "its CouchDB data folder {raw_data:?} is refused: {why}"
        ))
    })?;
    let core = PathBuf::from(get("CHT_COMPOSE_PATH")).join("cht-core.yml");
    let core_text = std::fs::read_to_string(&core).map_err(Error::io("read", &core))?;
    let api = ComposeFile::parse(&core.display().to_string(), &core_text)?
        .services
        .get("api")
        .and_then(|s| s.image.clone())
        .ok_or_else(|| bad(format!("{} has no api service image", core.display())))?;
    let (registry, tag) = api
        .rsplit_once("/cht-api:")
        .ok_or_else(|| bad(format!("cannot read the CHT version from image {api}")))?;
    let version = versions::find(tag)?;
    let opts = InitOptions {
        name: name.clone(),
        cht_version: Some(version.version.to_string()),
        image_registry: (registry != project::render::DEFAULT_REGISTRY)
            .then(|| registry.to_string()),
        tls: Some(req.tls),
        ..InitOptions::default()
    };
    let mut vars: Vec<(String, String)> = CREDENTIALS
        .iter()
        .map(|k| (k.to_string(), get(k)))
        .collect();
    let mut kept = EnvFile::new();
    for (key, value) in &vars {
        kept.set(key, value.clone());
    }
    kept.render(&[]).map_err(|e| bad(e.to_string()))?;
    if !req.copy_data {
        vars.push(("COUCHDB_DATA".into(), data.display().to_string()));
    }
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
    let adopted = Adopted {
        http,
        https,
        vars,
        copy_data: req.copy_data.then(|| data.clone()),
    };
    let created = project::adopt(&home, &opts, &adopted)?;
    let helper_project = get("DOCKER_CONFIG_PATH");
    let helper_upgrade = Path::new(&helper_project)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let data_now = if req.copy_data {
        created.project.path("couchdb")
    } else {
        data
    };
    Ok(AdoptReport {
        project: name,
        version: version.version,
        http_port: http,
        https_port: https,
        couchdb_data: data_now.display().to_string(),
        copied: req.copy_data,
        dir: created.project.dir.display().to_string(),
        tls: req.tls,
        urls: created.project.urls(),
        notes,
        from: req.env_file.display().to_string(),
        helper_upgrade,
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
