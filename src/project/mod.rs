//! A cht-dev project: its folder, settings and generated files.

pub mod backups;
pub mod certs;
mod create;
pub mod dotenv;
pub mod engine_fit;
pub mod helper;
pub mod journal;
pub mod kube;
pub mod layout;
mod lock;
pub mod name;
pub mod ports;
pub mod profile;
pub mod render;
pub mod snapshots;
pub mod upgrade;
pub mod versions;

use std::path::{Path, PathBuf};

pub use self::create::{
    Adopted, adopt, check_data_folder, check_form, check_in_place, create, discard_unstarted,
    engine_roots, names, taken_ports, validate,
};
use self::dotenv::EnvFile;
use self::layout::{DataFolder, Layout};
pub use self::lock::{ProjectLock, lock};
use self::render::RenderInput;
use self::versions::ChtVersion;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::home::Home;
use crate::tls::{self, CaFiles, SanName};

/// The CouchDB admin user the bash helper and CHT's docs use.
pub const DEFAULT_USER: &str = "medic";
/// Length of generated CouchDB passwords (alphanumeric, so safe inside URLs).
const PASSWORD_LEN: usize = 24;
/// About the most a new project's files take (compose files, certificates, `.env`; the
/// home's CA the first time), for a disk-full error to say.
pub const SPACE_NEEDED: u64 = 128 << 10;
/// The largest `.env` cht-dev reads: settings take a few kilobytes.
pub const MAX_ENV_BYTES: u64 = 1 << 20;
/// cht-dev's own `.env` variable listing the extra `--host` names of the certificate.
pub const HOSTS_VAR: &str = "CHT_DEV_HOSTS";

/// What `init` (and `up` on a new project) is asked to make.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitOptions {
    /// The project name.
    pub name: String,
    /// The CHT release, default the newest known.
    pub cht_version: Option<String>,
    /// nginx's host HTTP port, default the next free one.
    pub http_port: Option<u32>,
    /// nginx's host HTTPS port, default the next free one.
    pub https_port: Option<u32>,
    /// Image registry override.
    pub image_registry: Option<String>,
    /// Extra names for the certificate.
    pub hosts: Vec<String>,
    /// The public domain name (production): in the certificate and the printed URLs.
    pub domain: Option<String>,
    /// The user's own certificate (PEM, full chain), instead of one from the local CA.
    pub cert_file: Option<PathBuf>,
    /// The key of `cert_file` (PEM, PKCS#8).
    pub key_file: Option<PathBuf>,
    /// CouchDB nodes, 1 or 3 (upstream's cluster) [default: 1].
    pub couchdb_nodes: Option<u32>,
    /// Where the certificate comes from, when chosen (`--tls`); `--cert-file` means [`TlsMode::Own`].
    pub tls: Option<TlsMode>,
}

/// Where a project's certificate comes from (`.env`'s [`CERT_VAR`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Issued by the home's CA, which desktop browsers trust once it is installed.
    #[default]
    LocalCa,
    /// The publicly trusted `*.local-ip.medicmobile.org` pair shared in the home, which
    /// phones (the CHT Android app) trust.
    LocalIp,
    /// The user's own certificate (`--cert-file`), never replaced by cht-dev.
    Own,
}

impl TlsMode {
    /// The mode as written in `.env` and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::LocalCa => "local-ca",
            TlsMode::LocalIp => "local-ip",
            TlsMode::Own => "own",
        }
    }

    /// The mode a word names (as [`TlsMode::as_str`] writes it).
    pub fn parse(word: &str) -> Option<TlsMode> {
        [TlsMode::LocalCa, TlsMode::LocalIp, TlsMode::Own]
            .into_iter()
            .find(|m| m.as_str() == word)
    }
}

impl std::fmt::Display for TlsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `.env` variable: the project's public domain name.
pub const DOMAIN_VAR: &str = "CHT_DEV_DOMAIN";
/// `.env` variable: where the certificate comes from (see [`TlsMode`]).
pub const CERT_VAR: &str = "CHT_DEV_CERT";

/// The options' form, checked: what creation and certificate replacement use.
#[derive(Debug, Clone)]
pub struct Form {
    /// The release.
    pub version: ChtVersion,
    /// Extra certificate names (the domain included).
    pub hosts: Vec<SanName>,
    /// The user's own certificate and key, PEM, already checked.
    pub own_cert: Option<(String, String)>,
    /// Where the certificate comes from.
    pub tls: TlsMode,
    /// How CouchDB runs.
    pub layout: Layout,
}

/// A project's CouchDB credentials, as `.env` holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The admin user.
    pub user: String,
    /// Its password.
    pub password: String,
    /// `COUCHDB_SECRET`, the cookie signing secret.
    pub secret: String,
    /// `COUCHDB_UUID`, the server's id.
    pub uuid: String,
}

/// An existing project, read from its folder. Its `.env` is parsed and checked once, on
/// load (and again by [`Project::update_env`]): nothing outside this module reads a
/// variable by name.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project name.
    pub name: String,
    /// Its folder.
    pub dir: PathBuf,
    /// Its `.env` variables, as read.
    env: EnvFile,
    /// What they say, checked.
    config: Config,
    /// The API service's image in CHT Core's compose file, read when first asked for
    /// (the files are the truth: the upgrade service rewrites them on in-app upgrades):
    /// the image, or why it cannot be read.
    api_image: std::sync::OnceLock<std::result::Result<String, String>>,
}

/// `.env`'s settings, checked: a bad value is refused on load, naming its line.
#[derive(Debug, Clone)]
struct Config {
    /// nginx's host HTTP port (compose's default, 80, when unset).
    http_port: u16,
    /// nginx's host HTTPS port (443 when unset).
    https_port: u16,
    /// How CouchDB runs.
    layout: Layout,
    /// Where the certificate comes from.
    tls: TlsMode,
    /// The public domain, when set and not empty.
    domain: Option<String>,
    /// CouchDB's credentials.
    credentials: Credentials,
}

/// `.env` variable: nginx's host HTTP port.
pub const HTTP_PORT_VAR: &str = "NGINX_HTTP_PORT";
/// `.env` variable: nginx's host HTTPS port.
pub const HTTPS_PORT_VAR: &str = "NGINX_HTTPS_PORT";

impl Config {
    /// Reads and checks `env`; the error says which line holds what, and what it must be.
    fn read(env: &EnvFile) -> std::result::Result<Config, String> {
        let bad = |key: &str, value: &str, must: &str| {
            let line = env
                .line_of(key)
                .map_or(String::new(), |l| format!("line {l}: "));
            format!("{line}{key} is {value:?}; {must}")
        };
        let port = |key: &str, default: u16| match env.get(key).map(str::trim) {
            None | Some("") => Ok(default),
            Some(value) => ports::parse_setting(value)
                .map_err(|_| bad(key, value, "it must be a port number from 1 to 65535")),
        };
        let layout = match env.get(layout::NODES_VAR).map(str::trim) {
            None | Some("" | "1") => Layout::Single,
            Some("3") => Layout::Cluster,
            Some(other) => return Err(bad(layout::NODES_VAR, other, "it must be 1 or 3")),
        };
        let tls = match env.get(CERT_VAR).map(str::trim) {
            None | Some("") => TlsMode::LocalCa,
            Some(word) => TlsMode::parse(word).ok_or_else(|| {
                bad(
                    CERT_VAR,
                    word,
                    "it must be local-ca, local-ip or own (switch with `cht-dev tls NAME MODE`)",
                )
            })?,
        };
        // The same rules as --domain and --host: these reach certificates, URLs that are
        // opened and printed, and files other tools read.
        let domain = match env.get(DOMAIN_VAR).map(str::trim) {
            None | Some("") => None,
            Some(d) => match SanName::parse(d) {
                Ok(SanName::Dns(name)) if !name.starts_with("*.") => Some(d.to_string()),
                _ => {
                    return Err(bad(
                        DOMAIN_VAR,
                        d,
                        "it must be a DNS name such as cht.example.org, as --domain takes",
                    ));
                }
            },
        };
        if let Some(hosts) = env.get(HOSTS_VAR)
            && let Some(host) = hosts
                .split(',')
                .map(str::trim)
                .find(|h| !h.is_empty() && SanName::parse(h).is_err())
        {
            return Err(bad(
                HOSTS_VAR,
                hosts,
                &format!(
                    "{host:?} is neither a DNS name nor an IP address, as --host takes (names separated by commas)"
                ),
            ));
        }
        let get = |k: &str| env.get(k).unwrap_or_default().to_string();
        Ok(Config {
            http_port: port(HTTP_PORT_VAR, 80)?,
            https_port: port(HTTPS_PORT_VAR, 443)?,
            layout,
            tls,
            domain,
            credentials: Credentials {
                user: env.get("COUCHDB_USER").unwrap_or(DEFAULT_USER).to_string(),
                password: get("COUCHDB_PASSWORD"),
                secret: get("COUCHDB_SECRET"),
                uuid: get("COUCHDB_UUID"),
            },
        })
    }
}

/// The outcome of creating a project.
#[derive(Debug)]
pub struct Created {
    /// The new project.
    pub project: Project,
    /// The release it runs.
    pub version: ChtVersion,
    /// How it runs CouchDB.
    pub layout: Layout,
    /// The home CA's files.
    pub ca: CaFiles,
    /// Whether the CA was made by this call.
    pub ca_created: bool,
    /// The names the certificate covers.
    pub names: Vec<SanName>,
}

impl Project {
    /// Reads project `name` from `home`.
    pub fn load(home: &Home, name: &str) -> Result<Project> {
        let dir = home.project_dir(name);
        let env_path = dir.join(".env");
        if name::validate(name).is_err() || !env_path.is_file() {
            let known = names(home)?;
            let hint = if known.is_empty() {
                "create one with `cht-dev init NAME`".to_string()
            } else {
                format!("known projects: {}", known.join(", "))
            };
            return Err(Error::ProjectNotFound {
                name: name.to_string(),
                home: home.root().to_path_buf(),
                hint,
            });
        }
        let size = std::fs::metadata(&env_path).map_or(0, |m| m.len());
        if size > MAX_ENV_BYTES {
            return Err(Error::BrokenProject {
                name: name.to_string(),
                reason: format!(
                    "{} is {size} bytes, more than settings ever need ({MAX_ENV_BYTES}); restore it from a backup",
                    env_path.display()
                ),
            });
        }
        let text = fsutil::read_input_text(&env_path, "the project's settings", MAX_ENV_BYTES)
            .map_err(|e| match e {
                Error::UnsafeInput { reason, .. } => Error::BrokenProject {
                    name: name.to_string(),
                    reason: format!("{}: {reason}", env_path.display()),
                },
                other => other,
            })?;
        let env = EnvFile::parse(&text).map_err(|e| Error::BrokenProject {
            name: name.to_string(),
            reason: format!("{} line {}: {}", env_path.display(), e.line, e.reason),
        })?;
        Project::from_env(name, dir, env)
    }

    /// The project `name` in `dir` with the variables `env`, checked.
    pub(crate) fn from_env(name: &str, dir: PathBuf, env: EnvFile) -> Result<Project> {
        let config = Config::read(&env).map_err(|reason| Error::BrokenProject {
            name: name.to_string(),
            reason: format!("{} {reason}", dir.join(".env").display()),
        })?;
        Ok(Project {
            name: name.to_string(),
            dir,
            env,
            config,
            api_image: std::sync::OnceLock::new(),
        })
    }

    /// The CouchDB credentials (the default user when `.env` names none).
    pub fn credentials(&self) -> &Credentials {
        &self.config.credentials
    }

    /// nginx's host HTTP port.
    pub fn http_port(&self) -> u16 {
        self.config.http_port
    }

    /// nginx's host HTTPS port.
    pub fn https_port(&self) -> u16 {
        self.config.https_port
    }

    /// The public domain, if the project has one.
    pub fn domain(&self) -> Option<&str> {
        self.config.domain.as_deref()
    }

    /// Where the certificate comes from.
    pub fn tls_mode(&self) -> TlsMode {
        self.config.tls
    }

    /// The names the project is reached by, the one to use first, each covered by its
    /// certificate. With the local-ip certificate: each LAN address's local-ip name (what
    /// a phone opens), then loopback's. Otherwise: the domain (when set), the project's
    /// own `NAME.localhost` (when the local CA made the certificate, which covers it),
    /// `localhost`, then each LAN address.
    fn hosts(&self) -> Vec<String> {
        let lan = crate::net::lan_ipv4();
        if self.tls_mode() == TlsMode::LocalIp {
            return lan
                .into_iter()
                .chain([std::net::Ipv4Addr::LOCALHOST])
                .map(crate::local_ip::host)
                .collect();
        }
        let mut hosts: Vec<String> = self.domain().map(str::to_string).into_iter().collect();
        if self.tls_mode() == TlsMode::LocalCa {
            hosts.push(tls::project_host(&self.name));
        }
        hosts.push("localhost".into());
        hosts.extend(lan.iter().map(ToString::to_string));
        hosts
    }

    /// The URLs to show, one per host of [`Project::hosts`], first the one to use.
    pub fn urls(&self) -> Vec<String> {
        let https = self.https_port();
        let port = if https == 443 {
            String::new()
        } else {
            format!(":{https}")
        };
        self.hosts()
            .into_iter()
            .map(|host| format!("https://{host}{port}/"))
            .collect()
    }

    /// The URL a phone on the LAN opens: the first LAN address's local-ip name, in that
    /// mode and when this machine has a LAN address.
    pub fn phone_url(&self) -> Option<String> {
        let ip = *crate::net::lan_ipv4().first()?;
        (self.tls_mode() == TlsMode::LocalIp).then(|| {
            format!(
                "https://{}:{}/",
                crate::local_ip::host(ip),
                self.https_port()
            )
        })
    }

    /// Sets `.env` variables in place, keeping every other line (comments, user edits) as
    /// is; a value over several lines is replaced whole. The result is checked as on load
    /// before it is written (atomically), so a refused value changes nothing.
    pub fn update_env(&mut self, vars: &[(&str, &str)]) -> Result<()> {
        let path = self.path(".env");
        let text = std::fs::read_to_string(&path).map_err(Error::io("read", &path))?;
        let updated = dotenv::update(&text, vars).map_err(|e| Error::Encode {
            what: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let env = EnvFile::parse(&updated).map_err(|e| Error::Encode {
            what: path.display().to_string(),
            reason: format!("line {}: {}", e.line, e.reason),
        })?;
        let checked = Project::from_env(&self.name, self.dir.clone(), env)?;
        fsutil::replace(&path, updated.as_bytes(), fsutil::PRIVATE)?;
        self.env = checked.env;
        self.config = checked.config;
        Ok(())
    }

    /// Replaces the project's certificate and key (already checked) and records where they
    /// came from; each file is replaced atomically, and `.env` last, so a kill leaves the
    /// new pair under the old mode, which the next switch or `up` replaces again.
    pub fn install_certificate(
        &mut self,
        mode: TlsMode,
        cert_pem: &str,
        key_pem: &str,
    ) -> Result<()> {
        for (file, contents, perm) in [
            ("certs/key.pem", key_pem, fsutil::PRIVATE),
            ("certs/cert.pem", cert_pem, fsutil::PUBLIC),
        ] {
            fsutil::replace(&self.path(file), contents.as_bytes(), perm)?;
        }
        if self.tls_mode() != mode {
            self.update_env(&[(CERT_VAR, mode.as_str())])?;
        }
        Ok(())
    }

    /// Whether the project's certificate files hold exactly `cert_pem` and `key_pem`.
    pub fn serves_pair(&self, cert_pem: &str, key_pem: &str) -> bool {
        let read = |f: &str| std::fs::read_to_string(self.path(f)).ok();
        read("certs/cert.pem").as_deref() == Some(cert_pem)
            && read("certs/key.pem").as_deref() == Some(key_pem)
    }

    /// The project's HTTPS URL to use: the first of [`Project::urls`], with the port
    /// always written.
    pub fn url(&self) -> String {
        format!("https://{}:{}/", self.first_host(), self.https_port())
    }

    /// The first of [`Project::hosts`]: there is always one (loopback's, in any mode).
    fn first_host(&self) -> String {
        self.hosts()
            .into_iter()
            .next()
            .unwrap_or_else(|| "localhost".into())
    }

    /// Fauxton, CouchDB's admin interface, through nginx at [`Project::url`].
    pub fn fauxton_url(&self) -> String {
        format!("{}_utils/", self.url())
    }

    /// A cht-conf command that reaches this project, quoted for a POSIX shell: the login in
    /// the URL (percent-encoded), and, when the local CA signed the certificate, that CA for
    /// node through `NODE_EXTRA_CA_CERTS` (`ca`), so TLS is verified rather than switched
    /// off with `--accept-self-signed-certs`. The host is the local-ip name of the first
    /// LAN address in that mode (public DNS resolves it), else the domain's when set, else
    /// `localhost`: node asks the system resolver, which knows no `*.localhost` on Debian
    /// or macOS (browsers and curl resolve those themselves), and cht-conf keeps no cookies.
    pub fn cht_conf_command(&self, ca: &Path) -> Option<String> {
        use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
        let port = self.https_port();
        let host = match self.tls_mode() {
            TlsMode::LocalIp => self.first_host(),
            _ => self.domain().unwrap_or("localhost").to_string(),
        };
        let host_port = format!("{host}:{port}");
        let credentials = self.credentials();
        let user = credentials.user.as_str();
        let password = credentials.password.as_str();
        let login = format!(
            "{}:{}",
            utf8_percent_encode(user, NON_ALPHANUMERIC),
            utf8_percent_encode(password, NON_ALPHANUMERIC)
        );
        let command = format!(
            "cht {}",
            crate::shell::shell_word(&format!("--url=https://{login}@{host_port}"))
        );
        Some(if self.tls_mode() != TlsMode::LocalCa {
            command
        } else {
            format!(
                "NODE_EXTRA_CA_CERTS={} {command}",
                crate::shell::shell_word(&ca.display().to_string())
            )
        })
    }

    /// A path inside the project folder.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    /// The API service's image in CHT Core's compose file, read once per load.
    pub fn api_image(&self) -> Result<String> {
        self.api_image
            .get_or_init(|| {
                let path = self.path(render::CORE_FILE);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                crate::stack::model::raw::Outline::parse(render::CORE_FILE, &text)
                    .map_err(|e| e.to_string())?
                    .services
                    .get("api")
                    .and_then(|s| s.image.clone())
                    .filter(|i| i.contains(':'))
                    .ok_or_else(|| {
                        format!("{} has no api service image with a tag", path.display())
                    })
            })
            .clone()
            .map_err(|reason| Error::BrokenProject {
                name: self.name.clone(),
                reason,
            })
    }

    /// The CHT version: the API image's tag.
    pub fn cht_version(&self) -> Result<String> {
        let image = self.api_image()?;
        let last = image.rsplit('/').next().unwrap_or_default();
        Ok(last
            .rsplit_once(':')
            .map(|(_, tag)| tag.to_string())
            .unwrap_or_default())
    }

    /// The image registry the project uses, `None` for upstream's default.
    ///
    /// The registry is read back from a file anyone with access to the home may have
    /// edited, and `upgrade` and `export` write it into new files: it passes the same check
    /// as `--image-registry`, or is refused naming the file and line.
    pub fn image_registry(&self) -> Result<Option<String>> {
        let image = self.api_image()?;
        let registry = image
            .rsplit_once("/cht-api:")
            .map(|(r, _)| r.to_string())
            .filter(|r| r != render::DEFAULT_REGISTRY);
        if let Some(r) = &registry
            && let Err(e) = render::validate_registry(r)
        {
            let path = self.path(render::CORE_FILE);
            let line = std::fs::read_to_string(&path)
                .ok()
                .and_then(|text| text.lines().position(|l| l.contains("cht-api")))
                .map_or(0, |i| i + 1);
            return Err(Error::BrokenProject {
                name: self.name.clone(),
                reason: format!(
                    "{} line {line}: the api image's registry is refused: {e}; fix the image line",
                    path.display()
                ),
            });
        }
        Ok(registry)
    }

    /// How the project runs CouchDB (a single node when `.env` does not say).
    pub fn layout(&self) -> Layout {
        self.config.layout
    }

    /// The CouchDB data folders on the host, one per node, as `.env` names them (a folder
    /// left out of `.env` is the project's own default, as in the compose files).
    pub fn data_folders(&self) -> Vec<DataFolder> {
        self.layout()
            .data_vars()
            .iter()
            .map(|&(name, var, relative)| DataFolder {
                name,
                var,
                path: self
                    .env
                    .get(var)
                    .filter(|d| !d.is_empty())
                    .map_or_else(|| self.path(relative), PathBuf::from),
            })
            .collect()
    }

    /// The compose files cht-dev reads in `compose/`: CHT Core's and the layout's CouchDB
    /// file.
    pub fn compose_files(&self) -> [&'static str; 2] {
        [
            render::CORE_FILE.trim_start_matches("compose/"),
            self.layout().couchdb_file_name(),
        ]
    }

    /// The project as the stack layer runs it: the compose files cht-dev reads in
    /// `compose/`, the upgrade service's file as their companion, and `.env`'s variables.
    pub fn target(&self) -> crate::stack::Target {
        crate::stack::Target {
            name: self.name.clone(),
            dir: self.dir.clone(),
            main_dir: PathBuf::from("compose"),
            files: self.compose_files().map(PathBuf::from).to_vec(),
            companion_files: vec![PathBuf::from(render::UPGRADE_FILE)],
            env: self
                .env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Files in `compose/` besides the two cht-dev reads: the upgrade service runs every
    /// valid compose file there too, so each is worth a word to the user.
    pub fn extra_compose_files(&self) -> Vec<String> {
        let known = self.compose_files();
        let mut extra: Vec<String> = std::fs::read_dir(self.path("compose"))
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.path().is_file())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !known.contains(&n.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        extra.sort();
        extra
    }
}

#[cfg(test)]
mod tests;
