//! A cht-dev project: its folder, settings and generated files.

pub mod archives;
pub mod backups;
pub mod certs;
pub mod compose;
pub mod dotenv;
pub mod engine_fit;
pub mod helper;
pub mod kube;
pub mod layout;
pub mod name;
pub mod ports;
pub mod profile;
pub mod render;
pub mod versions;

use std::path::{Path, PathBuf};

use self::dotenv::EnvFile;
use self::layout::{DataFolder, Layout};
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

    /// The mode `.env` names; anything but `own` and `local-ip` is the local CA, as every
    /// project made before the setting existed.
    pub fn from_env(value: Option<&str>) -> TlsMode {
        match value.map(str::trim) {
            Some("own") => TlsMode::Own,
            Some("local-ip") => TlsMode::LocalIp,
            _ => TlsMode::LocalCa,
        }
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

/// The options of `init`, checked and resolved, before anything is written.
#[derive(Debug, Clone)]
struct Checked {
    /// The project name.
    name: String,
    /// The release.
    version: ChtVersion,
    /// The registry override, without trailing slash.
    registry: Option<String>,
    /// Extra certificate names.
    hosts: Vec<SanName>,
    /// The project's folder (not existing yet).
    dir: PathBuf,
    /// The user's own certificate and key.
    own_cert: Option<(String, String)>,
    /// Where the certificate comes from.
    tls: TlsMode,
    /// The public domain.
    domain: Option<String>,
    /// How CouchDB runs.
    layout: Layout,
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

/// An existing project, read from its folder.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project name.
    pub name: String,
    /// Its folder.
    pub dir: PathBuf,
    /// Its `.env` settings.
    pub env: EnvFile,
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

/// A random string of `len` letters and digits from the thread's CSPRNG.
fn random_alnum(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
        .collect()
}

/// 32 random hex digits, as `openssl rand -hex 16` gives.
fn random_hex16() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An exclusive hold on one project, released when dropped (or when the process ends).
#[derive(Debug)]
pub struct ProjectLock {
    /// The locked file, outside the home (see [`lock`]).
    _file: std::fs::File,
}

/// The per-user folder holding lock files: the user's runtime folder, else a folder of
/// the user's own in the temp folder. Lock files live outside the home, so a command that
/// fails leaves nothing there.
fn lock_folder() -> PathBuf {
    match directories::BaseDirs::new().and_then(|d| d.runtime_dir().map(Path::to_path_buf)) {
        Some(runtime) => runtime.join("cht-dev-locks"),
        // SAFETY: geteuid has no preconditions and cannot fail.
        None => std::env::temp_dir().join(format!("cht-dev-locks-{}", unsafe { libc::geteuid() })),
    }
}

/// Takes the project's lock, so two cht-dev commands never work on one project at once;
/// a second command fails at once with [`Error::Busy`].
pub fn lock(home: &Home, name: &str) -> Result<ProjectLock> {
    lock_in(&lock_folder(), home, name)
}

/// The lock key of the home-wide hold on port choice: not a valid project name, so it
/// never meets a project's lock.
const PORTS_KEY: &str = ".ports";

/// Waits for the home-wide hold on port choice: creating a project reads the ports every
/// project holds and writes its own while holding it, so concurrent `init`s never pick
/// the same ports.
fn lock_ports(base: &Path, home: &Home) -> Result<ProjectLock> {
    let file = lock_file(base, home, PORTS_KEY)?;
    file.lock().map_err(Error::io("lock", base))?;
    Ok(ProjectLock { _file: file })
}

/// [`lock`] with its lock folder given.
fn lock_in(base: &Path, home: &Home, name: &str) -> Result<ProjectLock> {
    let file = lock_file(base, home, name)?;
    match file.try_lock() {
        Ok(()) => Ok(ProjectLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Busy {
            name: name.to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", base)(e)),
    }
}

/// Opens the lock file of `key` in `home`, unlocked. Rules: the folder is a real folder
/// (not a link), the user's own and closed to others (it is made so when missing); the
/// lock file is never opened through a link; the file is keyed by the home's canonical
/// path, so two spellings of one home (`a/../home`) share one lock.
fn lock_file(base: &Path, home: &Home, key: &str) -> Result<std::fs::File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    fsutil::create_dir_mode(base, fsutil::PRIVATE_DIR)?;
    let meta = std::fs::symlink_metadata(base).map_err(Error::io("inspect", base))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.file_type().is_dir() || meta.uid() != me || meta.mode() & 0o077 != 0 {
        return Err(Error::io("use the lock folder", base)(
            std::io::Error::other(
                "it is a link, not yours, or open to other users; remove it and try again",
            ),
        ));
    }
    fsutil::create_dir_mode(home.root(), fsutil::PRIVATE_DIR)?;
    let canonical =
        std::fs::canonicalize(home.root()).map_err(Error::io("resolve", home.root()))?;
    let hash = &render::hex_sha256(&canonical.to_string_lossy())[..16];
    let path = base.join(format!("{hash}-{key}.lock"));
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(fsutil::PRIVATE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(Error::io("open", &path))
}

/// Checks the form of every option (name, version, registry, hosts, port numbers),
/// whether or not the project exists; returns the version and hosts.
pub fn check_form(opts: &InitOptions) -> Result<Form> {
    name::validate(&opts.name)?;
    let version = match &opts.cht_version {
        Some(v) => versions::find(v)?,
        None => versions::latest(),
    };
    if let Some(r) = &opts.image_registry {
        render::validate_registry(r)?;
    }
    let mut hosts = opts
        .hosts
        .iter()
        .map(|h| SanName::parse(h))
        .collect::<Result<Vec<_>>>()?;
    ports::check_range(opts.http_port, opts.https_port)?;
    if let Some(domain) = &opts.domain {
        match SanName::parse(domain)? {
            SanName::Dns(d) if !d.starts_with("*.") => {
                if !hosts.contains(&SanName::Dns(d.clone())) {
                    hosts.push(SanName::Dns(d));
                }
            }
            _ => {
                return Err(Error::BadOption(format!(
                    "--domain {domain:?} must be a DNS name such as cht.example.org (use --host for IP addresses)"
                )));
            }
        }
    }
    let layout = opts
        .couchdb_nodes
        .map_or(Ok(Layout::Single), Layout::from_nodes)?;
    let own_cert = own_certificate(opts)?;
    let tls = tls_mode(opts, own_cert.is_some())?;
    Ok(Form {
        version,
        hosts,
        own_cert,
        tls,
        layout,
    })
}

/// The certificate's source the options ask for: `--cert-file` is the user's own, else
/// `--tls`, else the local CA. The local-ip certificate covers its own names only, so it
/// takes no `--domain` or `--host`.
fn tls_mode(opts: &InitOptions, own: bool) -> Result<TlsMode> {
    match (opts.tls, own) {
        (Some(TlsMode::Own), false) => Err(Error::BadOption(
            "--tls own needs --cert-file and --key-file; give them, or use --tls local-ca or --tls local-ip".into(),
        )),
        (Some(mode), true) if mode != TlsMode::Own => Err(Error::BadOption(format!(
            "--tls {mode} and --cert-file both choose the certificate; give one of them"
        ))),
        (_, true) => Ok(TlsMode::Own),
        (Some(TlsMode::LocalIp), false) => {
            if let Some(domain) = &opts.domain {
                return Err(Error::BadOption(format!(
                    "--tls local-ip serves only *.{}, which does not cover --domain {domain}; leave out one of them",
                    crate::local_ip::DOMAIN
                )));
            }
            if let Some(host) = opts.hosts.first() {
                return Err(Error::BadOption(format!(
                    "--host {host} names go into a local-CA certificate, and --tls local-ip serves only *.{}; leave out one of them",
                    crate::local_ip::DOMAIN
                )));
            }
            Ok(TlsMode::LocalIp)
        }
        (mode, false) => Ok(mode.unwrap_or_default()),
    }
}

/// Reads and checks `--cert-file`/`--key-file` (both or neither).
fn own_certificate(opts: &InitOptions) -> Result<Option<(String, String)>> {
    let (cert, key) = match (&opts.cert_file, &opts.key_file) {
        (None, None) => return Ok(None),
        (Some(c), Some(k)) => (c, k),
        _ => {
            return Err(Error::BadOption(
                "--cert-file and --key-file go together: give both, or neither for a local-CA certificate".into(),
            ));
        }
    };
    let read = |p: &Path| std::fs::read_to_string(p).map_err(Error::io("read", p));
    let (cert_pem, key_pem) = (read(cert)?, read(key)?);
    let domain = opts
        .domain
        .as_deref()
        .map(|d| d.trim_end_matches('.').to_ascii_lowercase());
    tls::check_own_pair(&cert_pem, &key_pem, domain.as_deref())?;
    Ok(Some((cert_pem, key_pem)))
}

/// Checks every option without touching the disk.
fn check(home: &Home, opts: &InitOptions) -> Result<Checked> {
    let form = check_form(opts)?;
    if let Some((_, key)) = &form.own_cert {
        tls::refuse_ca_key(key, &CaFiles::of(home))?;
    }
    let (version, hosts, own_cert, tls, layout) = (
        form.version,
        form.hosts,
        form.own_cert,
        form.tls,
        form.layout,
    );
    let dir = home.project_dir(&opts.name);
    if dir.exists() {
        return Err(Error::ProjectExists {
            name: opts.name.clone(),
            dir,
        });
    }
    Ok(Checked {
        name: opts.name.clone(),
        version,
        registry: opts
            .image_registry
            .as_deref()
            .map(|r| r.trim_end_matches('/').to_string()),
        hosts,
        dir,
        own_cert,
        tls,
        domain: opts
            .domain
            .as_deref()
            .map(|d| d.trim_end_matches('.').to_ascii_lowercase()),
        layout,
    })
}

/// Checks init options without writing anything (create checks them again).
pub fn validate(home: &Home, opts: &InitOptions) -> Result<()> {
    check(home, opts).map(|_| ())
}

/// Names of the projects in `home`, sorted: folders with a valid project name that hold
/// a `.env` (so `ca/`, staging folders and stray folders are never projects).
pub fn names(home: &Home) -> Result<Vec<String>> {
    Ok(home
        .folders_holding(".env")?
        .into_iter()
        .filter(|n| name::validate(n).is_ok())
        .collect())
}

/// The host ports every project in `home` holds.
pub fn taken_ports(home: &Home) -> Result<ports::Taken> {
    let mut taken = ports::Taken::new();
    for name in names(home)? {
        // A damaged project holds no port cht-dev can read; it must not block the others.
        let Ok(project) = Project::load(home, &name) else {
            continue;
        };
        for port in [project.http_port(), project.https_port()]
            .into_iter()
            .flatten()
        {
            taken.insert(port, name.clone());
        }
    }
    Ok(taken)
}

/// Creates a project: checks everything first, then writes into a staging folder
/// and moves it into place, so a failure leaves nothing behind.
pub fn create(home: &Home, opts: &InitOptions) -> Result<Created> {
    create_with(home, opts, None)
}

/// Settings carried over from a project made by the bash Docker Helper.
#[derive(Debug, Clone)]
pub struct Adopted {
    /// nginx's HTTP port, kept.
    pub http: u16,
    /// nginx's HTTPS port, kept.
    pub https: u16,
    /// `.env` values kept as they are (credentials, CouchDB data path).
    pub vars: Vec<(String, String)>,
    /// A CouchDB data folder (checked by [`check_data_folder`]) to copy into the project's
    /// own, inside the staging folder, so a failed copy leaves no project.
    pub copy_data: Option<PathBuf>,
}

/// Checks a CouchDB data folder read from another tool's settings (`adopt`), which
/// becomes CouchDB's bind mount, and returns its canonical path. Rules: an absolute path
/// compose can mount ([`check_mount_path`](crate::home::check_mount_path)) to an existing
/// folder; not `/`, nor a folder holding the user's home folder; neither inside the
/// cht-dev home (its `ca/` holds the CA key) nor holding it; and neither inside another
/// project's data folder nor holding one. Returns why not.
pub fn check_data_folder(home: &Home, raw: &str) -> std::result::Result<PathBuf, String> {
    crate::home::check_mount_path(raw)?;
    let path = Path::new(raw);
    if !path.is_absolute() {
        return Err("it is not an absolute path".into());
    }
    let data = std::fs::canonicalize(path)
        .ok()
        .filter(|p| p.is_dir())
        .ok_or("it is not an existing folder")?;
    let nested = |a: &Path, b: &Path| a.starts_with(b) || b.starts_with(a);
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if data.parent().is_none() {
        return Err("it is the root folder".into());
    }
    if let Some(user) = directories::BaseDirs::new().map(|d| canonical(d.home_dir()))
        && user.starts_with(&data)
    {
        return Err(format!("it holds your home folder {}", user.display()));
    }
    let home_root = canonical(home.root());
    if nested(&data, &home_root) {
        return Err(format!(
            "it overlaps the cht-dev home {} (which holds the CA key)",
            home_root.display()
        ));
    }
    for name in names(home).unwrap_or_default() {
        let Ok(project) = Project::load(home, &name) else {
            continue;
        };
        for folder in project.data_folders().unwrap_or_default() {
            let theirs = canonical(&folder.path);
            if nested(&data, &theirs) {
                return Err(format!(
                    "it overlaps the data folder of project {name:?} ({})",
                    theirs.display()
                ));
            }
        }
    }
    Ok(data)
}

/// Creates a project for settings adopted from the bash helper: its ports are kept (the
/// helper's own containers may hold them now) and its credentials and data path reused.
pub fn adopt(home: &Home, opts: &InitOptions, adopted: &Adopted) -> Result<Created> {
    create_with(home, opts, Some(adopted))
}

/// The local-ip pair kept in `home`, while it is valid: commands get it first with
/// [`local_ip::obtain`](crate::local_ip::obtain), which may download it.
fn usable_local_ip(home: &Home) -> Result<crate::local_ip::Pair> {
    use crate::local_ip;
    let pair = local_ip::kept(home).ok_or_else(|| Error::LocalIp {
        url: local_ip::DEFAULT_SOURCE.to_string(),
        reason: "no pair is kept in the home; run the command again to download it".into(),
    })?;
    let info = tls::inspect(&pair.fullchain)?;
    if info.not_after < time::OffsetDateTime::now_utc() {
        return Err(Error::LocalIp {
            url: pair.source.clone(),
            reason: format!("the kept certificate expired on {}", info.not_after.date()),
        });
    }
    Ok(pair)
}

/// Creates a project, with adopted settings when given.
fn create_with(home: &Home, opts: &InitOptions, adopted: Option<&Adopted>) -> Result<Created> {
    let checked = check(home, opts)?;
    // Held until the project is in place, so the next creation sees its ports.
    let _ports = lock_ports(&lock_folder(), home)?;
    let taken = taken_ports(home)?;
    let (http, https) = match adopted {
        None => ports::allocate(opts.http_port, opts.https_port, &taken)?,
        Some(a) => {
            for (which, port) in [("http", a.http), ("https", a.https)] {
                if let Some(other) = taken.get(&port) {
                    return Err(Error::PortBusy {
                        which,
                        port,
                        reason: format!("project {other:?} uses it"),
                    });
                }
            }
            (a.http, a.https)
        }
    };
    let (ca_files, ca_created) = tls::ensure_ca(home)?;
    let ca = tls::Ca::load(&ca_files)?;
    let given = match (&checked.own_cert, checked.tls) {
        (Some((cert_pem, key_pem)), _) => Some((cert_pem.clone(), key_pem.clone())),
        (None, TlsMode::LocalIp) => {
            let pair = usable_local_ip(home)?;
            Some((pair.fullchain, pair.key))
        }
        (None, _) => None,
    };
    let (leaf, names) = match given {
        Some((cert_pem, key_pem)) => {
            let info = tls::inspect(&cert_pem)?;
            let names = info
                .names
                .iter()
                .filter_map(|n| SanName::parse(n).ok())
                .collect();
            (tls::Leaf { cert_pem, key_pem }, names)
        }
        None => {
            let names = tls::project_names(&checked.name, &checked.hosts);
            (ca.issue_leaf(&checked.name, &names)?, names)
        }
    };

    let dir_str = checked.dir.to_string_lossy().into_owned();
    let mut env = EnvFile::new();
    env.set("NGINX_HTTP_PORT", http.to_string());
    env.set("NGINX_HTTPS_PORT", https.to_string());
    env.set("COUCHDB_USER", DEFAULT_USER);
    env.set("COUCHDB_PASSWORD", random_alnum(PASSWORD_LEN));
    env.set("COUCHDB_SECRET", random_hex16());
    env.set("COUCHDB_UUID", random_hex16());
    for (_, var, relative) in checked.layout.data_vars() {
        env.set(var, format!("{dir_str}/{relative}"));
    }
    if checked.layout == Layout::Cluster {
        env.set("COUCHDB_SERVERS", checked.layout.couchdb_servers());
        env.set(layout::NODES_VAR, checked.layout.nodes().to_string());
    }
    env.set("CHT_COMPOSE_PROJECT_NAME", checked.name.clone());
    env.set("CHT_COMPOSE_PATH", format!("{dir_str}/compose"));
    env.set("DOCKER_CONFIG_PATH", format!("{dir_str}/compose"));
    env.set("CHT_NETWORK", format!("{}-cht-net", checked.name));
    env.set("CERTIFICATE_MODE", "OWN_CERT");
    env.set("UPGRADE_SERVICE_URL", "http://cht-upgrade-service:5008");
    for (key, value) in adopted.map(|a| a.vars.as_slice()).unwrap_or_default() {
        env.set(key, value.clone());
    }
    if let Some(domain) = &checked.domain {
        env.set(DOMAIN_VAR, domain.clone());
        env.set("COMMON_NAME", domain.clone());
    }
    env.set(CERT_VAR, checked.tls.as_str());
    env.set(
        HOSTS_VAR,
        checked
            .hosts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    );

    let files = render::render(&RenderInput {
        project: &checked.name,
        version: checked.version,
        registry: checked.registry.as_deref(),
        project_dir: &checked.dir,
        layout: checked.layout,
    })?;

    let header = [
        "cht-dev project settings, read by cht-dev, compose and the CHT upgrade service.",
        "Secrets: keep this file private (mode 0600).",
    ];
    let env_text = env
        .render(&header)
        .map_err(|e| Error::BadOption(e.to_string()))?;
    let staging = fsutil::Staging::new(home.root(), &checked.name)?;
    let root = staging.path();
    for sub in ["compose", "certs", "couchdb"] {
        fsutil::create_dir_mode(&root.join(sub), fsutil::SHARED_DIR)?;
    }
    for (_, _, relative) in checked.layout.data_vars() {
        fsutil::create_dir_mode(&root.join(relative), fsutil::SHARED_DIR)?;
    }
    if let Some(from) = adopted.and_then(|a| a.copy_data.as_deref()) {
        fsutil::copy_tree(from, &root.join("couchdb"))?;
    }
    fsutil::write_new(&root.join(".env"), env_text.as_bytes(), fsutil::PRIVATE)?;
    for file in &files {
        fsutil::write_new(
            &root.join(file.path),
            file.contents.as_bytes(),
            fsutil::PUBLIC,
        )?;
    }
    fsutil::write_new(
        &root.join("certs/cert.pem"),
        leaf.cert_pem.as_bytes(),
        fsutil::PUBLIC,
    )?;
    fsutil::write_new(
        &root.join("certs/key.pem"),
        leaf.key_pem.as_bytes(),
        fsutil::PRIVATE,
    )?;
    staging.commit(&checked.dir).map_err(|e| match e {
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists => {
            Error::ProjectExists {
                name: checked.name.clone(),
                dir: checked.dir.clone(),
            }
        }
        other => other,
    })?;
    Ok(Created {
        project: Project {
            name: checked.name,
            dir: checked.dir,
            env,
        },
        version: checked.version,
        layout: checked.layout,
        ca: ca_files,
        ca_created,
        names,
    })
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
        let text = std::fs::read_to_string(&env_path).map_err(Error::io("read", &env_path))?;
        let env = EnvFile::parse(&text).map_err(|e| Error::BrokenProject {
            name: name.to_string(),
            reason: format!("{} line {}: {}", env_path.display(), e.line, e.reason),
        })?;
        Ok(Project {
            name: name.to_string(),
            dir,
            env,
        })
    }

    /// The CouchDB credentials (the default user when `.env` names none).
    pub fn credentials(&self) -> Credentials {
        let get = |k: &str| self.env.get(k).unwrap_or_default().to_string();
        Credentials {
            user: self
                .env
                .get("COUCHDB_USER")
                .unwrap_or(DEFAULT_USER)
                .to_string(),
            password: get("COUCHDB_PASSWORD"),
            secret: get("COUCHDB_SECRET"),
            uuid: get("COUCHDB_UUID"),
        }
    }

    /// A port setting from `.env`.
    fn port(&self, key: &str) -> Option<u16> {
        self.env.get(key)?.trim().parse().ok()
    }

    /// nginx's host HTTP port.
    pub fn http_port(&self) -> Option<u16> {
        self.port("NGINX_HTTP_PORT")
    }

    /// nginx's host HTTPS port.
    pub fn https_port(&self) -> Option<u16> {
        self.port("NGINX_HTTPS_PORT")
    }

    /// The public domain, if the project has one.
    pub fn domain(&self) -> Option<&str> {
        self.env.get(DOMAIN_VAR).filter(|d| !d.is_empty())
    }

    /// Where the certificate comes from.
    pub fn tls_mode(&self) -> TlsMode {
        TlsMode::from_env(self.env.get(CERT_VAR))
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
        let https = self.https_port().unwrap_or(443);
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
                self.https_port().unwrap_or(443)
            )
        })
    }

    /// Sets `.env` variables in place, keeping every other line (comments, user edits) as is.
    pub fn update_env(&mut self, vars: &[(&str, &str)]) -> Result<()> {
        let path = self.path(".env");
        let text = std::fs::read_to_string(&path).map_err(Error::io("read", &path))?;
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        for (key, value) in vars {
            let mut one = EnvFile::new();
            one.set(key, *value);
            let rendered = one
                .render(&[])
                .map_err(|e| Error::BadOption(e.to_string()))?
                .trim_end()
                .to_string();
            let found = lines.iter_mut().find(|l| {
                l.trim_start()
                    .strip_prefix("export ")
                    .unwrap_or(l.trim_start())
                    .split_once('=')
                    .is_some_and(|(k, _)| k.trim() == *key)
            });
            match found {
                Some(line) => *line = rendered,
                None => lines.push(rendered),
            }
            self.env.set(key, *value);
        }
        fsutil::replace(&path, (lines.join("\n") + "\n").as_bytes(), fsutil::PRIVATE)
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
    pub fn url(&self) -> Option<String> {
        let port = self.https_port()?;
        let host = self.hosts().into_iter().next()?;
        Some(format!("https://{host}:{port}/"))
    }

    /// Fauxton, CouchDB's admin interface, through nginx at [`Project::url`].
    pub fn fauxton_url(&self) -> Option<String> {
        self.url().map(|url| format!("{url}_utils/"))
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
        let port = self.https_port()?;
        let host = match self.tls_mode() {
            TlsMode::LocalIp => self.hosts().into_iter().next()?,
            _ => self.domain().unwrap_or("localhost").to_string(),
        };
        let host_port = format!("{host}:{port}");
        let user = self.env.get("COUCHDB_USER").unwrap_or(DEFAULT_USER);
        let password = self.env.get("COUCHDB_PASSWORD")?;
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

    /// The API service's image in the project's compose file (the files are the truth:
    /// the upgrade service rewrites them on in-app upgrades).
    pub fn api_image(&self) -> Result<String> {
        let path = self.path(render::CORE_FILE);
        let text = std::fs::read_to_string(&path).map_err(Error::io("read", &path))?;
        compose::ComposeFile::parse(render::CORE_FILE, &text)?
            .services
            .get("api")
            .and_then(|s| s.image.clone())
            .filter(|i| i.contains(':'))
            .ok_or_else(|| Error::BrokenProject {
                name: self.name.clone(),
                reason: format!("{} has no api service image with a tag", path.display()),
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

    /// How the project runs CouchDB, from `.env` (absent: a single node). The value is
    /// cht-dev's own, so anything but `1` or `3` is a damaged project.
    pub fn layout(&self) -> Result<Layout> {
        match self.env.get(layout::NODES_VAR).map(str::trim) {
            None | Some("" | "1") => Ok(Layout::Single),
            Some("3") => Ok(Layout::Cluster),
            Some(other) => Err(Error::BrokenProject {
                name: self.name.clone(),
                reason: format!(
                    "{} in {} is {other:?}; it must be 1 or 3",
                    layout::NODES_VAR,
                    self.path(".env").display()
                ),
            }),
        }
    }

    /// The CouchDB data folders on the host, one per node, as `.env` names them (a folder
    /// left out of `.env` is the project's own default, as in the compose files).
    pub fn data_folders(&self) -> Result<Vec<DataFolder>> {
        Ok(self
            .layout()?
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
            .collect())
    }

    /// The compose files cht-dev reads in `compose/`: CHT Core's and the layout's CouchDB
    /// file.
    pub fn compose_files(&self) -> Result<[&'static str; 2]> {
        Ok([
            render::CORE_FILE.trim_start_matches("compose/"),
            self.layout()?.couchdb_file_name(),
        ])
    }

    /// Files in `compose/` besides the two cht-dev reads: the upgrade service runs every
    /// valid compose file there too, so each is worth a word to the user.
    pub fn extra_compose_files(&self) -> Vec<String> {
        let known = self.compose_files().unwrap_or([
            render::CORE_FILE.trim_start_matches("compose/"),
            render::COUCHDB_FILE.trim_start_matches("compose/"),
        ]);
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
mod tests {
    use super::*;

    /// Options for a project called `name` with every default.
    fn opts(name: &str) -> InitOptions {
        InitOptions {
            name: name.to_string(),
            ..InitOptions::default()
        }
    }

    #[test]
    fn a_failure_after_checks_leaves_no_project_behind() {
        let dir = tempfile::tempdir().expect("tmp");
        let home = Home::at(dir.path()).expect("home");
        // A CA folder without its files makes creation fail after all input checks.
        std::fs::create_dir_all(home.ca_dir()).expect("mkdir");
        let err = create(&home, &opts("half")).expect_err("fails");
        assert!(err.to_string().contains("lacks ca.pem"), "{err}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, [std::ffi::OsString::from("ca")]);
    }

    #[test]
    fn staging_folders_vanish_unless_committed() {
        let dir = tempfile::tempdir().expect("tmp");
        let staged = {
            let staging = fsutil::Staging::new(dir.path(), "x").expect("staging");
            std::fs::write(staging.path().join("f"), "x").expect("write");
            staging.path().to_path_buf()
        };
        assert!(!staged.exists());
        let staging = fsutil::Staging::new(dir.path(), "y").expect("staging");
        staging.commit(&dir.path().join("y")).expect("commit");
        assert!(dir.path().join("y").is_dir());
    }

    #[test]
    fn urls_fauxton_and_cht_conf_name_the_projects_own_host() {
        let dir = tempfile::tempdir().expect("tmp");
        let home = Home::at(dir.path()).expect("home");
        let mut project = create(&home, &opts("my_app")).expect("create").project;
        let port = project.https_port().expect("port");
        let password = project.env.get("COUCHDB_PASSWORD").expect("pw").to_string();
        assert_eq!(
            project.url(),
            Some(format!("https://my-app.localhost:{port}/"))
        );
        assert_eq!(
            project.urls()[..2],
            [
                format!("https://my-app.localhost:{port}/"),
                format!("https://localhost:{port}/")
            ]
        );
        assert_eq!(
            project.fauxton_url(),
            Some(format!("https://my-app.localhost:{port}/_utils/"))
        );
        assert_eq!(
            project.cht_conf_command(Path::new("/home/Jo Doe/ca.pem")),
            Some(format!(
                "NODE_EXTRA_CA_CERTS='/home/Jo Doe/ca.pem' cht --url=https://medic:{password}@localhost:{port}"
            ))
        );
        // A login with characters a URL reserves is percent-encoded, then quoted.
        project
            .update_env(&[("COUCHDB_USER", "jo doe"), ("COUCHDB_PASSWORD", "p@ss'w")])
            .expect("edit");
        assert_eq!(
            project.cht_conf_command(Path::new("/ca.pem")),
            Some(format!(
                "NODE_EXTRA_CA_CERTS=/ca.pem cht --url=https://jo%20doe:p%40ss%27w@localhost:{port}"
            ))
        );
        // A domain comes first; an own certificate needs no extra CA.
        project
            .update_env(&[(DOMAIN_VAR, "cht.example.org"), (CERT_VAR, "own")])
            .expect("edit");
        assert_eq!(
            project.url(),
            Some(format!("https://cht.example.org:{port}/"))
        );
        assert!(
            project
                .cht_conf_command(Path::new("/ca.pem"))
                .is_some_and(|c| c.starts_with("cht --url=https://")
                    && c.ends_with(&format!("@cht.example.org:{port}")))
        );
    }

    #[test]
    fn local_ip_projects_are_reached_by_local_ip_names_only() {
        let dir = tempfile::tempdir().expect("tmp");
        let home = Home::at(dir.path()).expect("home");
        let mut project = create(&home, &opts("phone")).expect("create").project;
        project.update_env(&[(CERT_VAR, "local-ip")]).expect("edit");
        let port = project.https_port().expect("port");
        let urls = project.urls();
        assert!(
            urls.iter()
                .all(|u| u.contains(".local-ip.medicmobile.org:")),
            "{urls:?}"
        );
        assert_eq!(
            urls.last(),
            Some(&format!(
                "https://127-0-0-1.local-ip.medicmobile.org:{port}/"
            ))
        );
        assert_eq!(urls.len(), crate::net::lan_ipv4().len() + 1);
        assert_eq!(project.url().as_ref(), urls.first());
        // The phone's URL is the first LAN address's, when there is one.
        assert_eq!(
            project.phone_url().is_some(),
            !crate::net::lan_ipv4().is_empty()
        );
        let command = project
            .cht_conf_command(Path::new("/ca.pem"))
            .expect("command");
        assert!(
            command.starts_with("cht --url=https://medic:")
                && command.ends_with(&urls[0]["https://".len()..urls[0].len() - 1]),
            "{command}"
        );
        // Other modes have no phone URL.
        project.update_env(&[(CERT_VAR, "local-ca")]).expect("edit");
        assert_eq!(project.phone_url(), None);
    }

    #[test]
    fn the_certificate_options_choose_one_mode() {
        let mode = |tls: Option<TlsMode>, own: bool, domain: Option<&str>, host: bool| {
            let o = InitOptions {
                name: "p".into(),
                tls,
                domain: domain.map(str::to_string),
                hosts: if host {
                    vec!["cht.local".into()]
                } else {
                    vec![]
                },
                ..InitOptions::default()
            };
            tls_mode(&o, own).map_err(|e| e.to_string())
        };
        assert_eq!(mode(None, false, None, false), Ok(TlsMode::LocalCa));
        assert_eq!(mode(None, true, None, false), Ok(TlsMode::Own));
        assert_eq!(
            mode(Some(TlsMode::Own), true, None, false),
            Ok(TlsMode::Own)
        );
        assert_eq!(
            mode(Some(TlsMode::LocalIp), false, None, false),
            Ok(TlsMode::LocalIp)
        );
        assert!(
            mode(Some(TlsMode::Own), false, None, false).is_err_and(|e| e.contains("--cert-file"))
        );
        assert!(
            mode(Some(TlsMode::LocalIp), true, None, false).is_err_and(|e| e.contains("give one"))
        );
        assert!(
            mode(
                Some(TlsMode::LocalIp),
                false,
                Some("cht.example.org"),
                false
            )
            .is_err_and(|e| e.contains("does not cover --domain cht.example.org"))
        );
        assert!(
            mode(Some(TlsMode::LocalIp), false, None, true).is_err_and(|e| e.contains("--host"))
        );
        for (value, want) in [
            (None, TlsMode::LocalCa),
            (Some("local-ca"), TlsMode::LocalCa),
            (Some(" local-ip "), TlsMode::LocalIp),
            (Some("own"), TlsMode::Own),
            (Some("other"), TlsMode::LocalCa),
        ] {
            assert_eq!(TlsMode::from_env(value), want, "{value:?}");
        }
    }

    #[test]
    fn loads_what_it_created_and_reads_version_from_the_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let home = Home::at(dir.path()).expect("home");
        let mut o = opts("p");
        o.cht_version = Some("4.22.0".into());
        let created = create(&home, &o).expect("create");
        let loaded = Project::load(&home, "p").expect("load");
        assert_eq!(loaded.env, created.project.env);
        assert_eq!(loaded.cht_version().expect("version"), "4.22.0");
        assert!(
            taken_ports(&home)
                .expect("ports")
                .values()
                .all(|p| p == "p")
        );
        let missing = Project::load(&home, "q").expect_err("missing").to_string();
        assert!(missing.contains("known projects: p"), "{missing}");
    }

    #[test]
    fn locks_hold_one_home_by_its_canonical_path_and_never_follow_links() {
        let dir = tempfile::tempdir().expect("tmp");
        let base = dir.path().join("locks");
        let home = Home::at(&dir.path().join("home")).expect("home");
        let held = lock_in(&base, &home, "p").expect("first");
        // The same home spelt another way is the same lock.
        std::fs::create_dir_all(dir.path().join("a")).expect("mkdir");
        let detour = Home::at(&dir.path().join("a/../home")).expect("home");
        let busy = lock_in(&base, &detour, "p").expect_err("busy");
        assert!(matches!(busy, Error::Busy { .. }), "{busy}");
        drop(held);
        assert!(lock_in(&base, &detour, "p").is_ok());
        // A planted link is never followed: no file appears where it points.
        let victim = dir.path().join("victim");
        let name = std::fs::read_dir(&base)
            .expect("read")
            .flatten()
            .map(|e| {
                e.file_name()
                    .to_string_lossy()
                    .replace("-p.lock", "-q.lock")
            })
            .next()
            .expect("a lock file");
        std::os::unix::fs::symlink(&victim, base.join(&name)).expect("link");
        assert!(lock_in(&base, &home, "q").is_err());
        assert!(!victim.exists());
        // A lock folder open to others is refused.
        let open = dir.path().join("open");
        std::fs::create_dir(&open).expect("mkdir");
        fsutil::set_mode(&open, 0o777).expect("chmod");
        let err = lock_in(&open, &home, "p").expect_err("refused").to_string();
        assert!(err.contains("open to other users"), "{err}");
    }

    #[test]
    fn a_registry_read_back_from_the_files_is_checked_like_the_flag() {
        let dir = tempfile::tempdir().expect("tmp");
        let home = Home::at(dir.path()).expect("home");
        let mut o = opts("reg");
        o.image_registry = Some("localhost:5000/cht".into());
        let project = create(&home, &o).expect("create").project;
        assert_eq!(
            project.image_registry().expect("registry").as_deref(),
            Some("localhost:5000/cht")
        );
        let core = project.path(render::CORE_FILE);
        let text = std::fs::read_to_string(&core).expect("read");
        let hostile = text.replace(
            "\"localhost:5000/cht/cht-api:5.2.0\"",
            "\"r.io\\\"\\n    privileged: true\\n    pid: host\\n    x: \\\"y/cht-api:5.2.0\"",
        );
        assert_ne!(hostile, text);
        std::fs::write(&core, hostile).expect("write");
        let err = project.image_registry().expect_err("refused").to_string();
        assert!(
            err.contains("cht-core.yml line") && err.contains("registry is refused"),
            "{err}"
        );
    }

    #[test]
    fn a_cluster_keeps_a_data_folder_per_node_and_its_layout_in_env() {
        let dir = tempfile::tempdir().expect("tmp");
        let home = Home::at(dir.path()).expect("home");
        let mut o = opts("trio");
        o.couchdb_nodes = Some(3);
        let mut project = create(&home, &o).expect("create").project;
        assert_eq!(project.layout().expect("layout"), Layout::Cluster);
        let folders = project.data_folders().expect("folders");
        let names: Vec<(&str, &str)> = folders.iter().map(|f| (f.name, f.var)).collect();
        assert_eq!(
            names,
            [
                ("node-1", "DB1_DATA"),
                ("node-2", "DB2_DATA"),
                ("node-3", "DB3_DATA")
            ]
        );
        for (n, folder) in folders.iter().enumerate() {
            assert_eq!(
                folder.path,
                project.path(&format!("couchdb/node-{}", n + 1))
            );
            assert!(folder.path.is_dir());
        }
        assert_eq!(
            project.compose_files().expect("files"),
            ["cht-core.yml", "cht-couchdb-clustered.yml"]
        );
        assert!(project.path(render::CLUSTER_FILE).is_file());
        assert!(!project.path(render::COUCHDB_FILE).exists());
        // A folder inside any node's data folder is refused as another project's data.
        let outside = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(outside.path().join("inner")).expect("mkdir");
        project
            .update_env(&[("DB2_DATA", &outside.path().display().to_string())])
            .expect("edit");
        let inner = outside.path().join("inner").display().to_string();
        let err = check_data_folder(&home, &inner).expect_err("overlaps");
        assert!(err.contains("project \"trio\""), "{err}");
        // The layout is cht-dev's own setting: anything but 1 or 3 is a damaged project.
        project
            .update_env(&[(layout::NODES_VAR, "2")])
            .expect("edit");
        let err = project.layout().expect_err("refused").to_string();
        assert!(
            err.contains("CHT_DEV_COUCHDB_NODES") && err.contains("1 or 3"),
            "{err}"
        );
        let single = create(&home, &opts("solo")).expect("create").project;
        assert_eq!(single.layout().expect("layout"), Layout::Single);
        assert_eq!(
            single.data_folders().expect("folders")[0].path,
            single.path("couchdb")
        );
    }

    #[test]
    fn random_credentials_differ_and_are_url_safe() {
        let a = random_alnum(PASSWORD_LEN);
        assert_eq!(a.len(), PASSWORD_LEN);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, random_alnum(PASSWORD_LEN));
        assert_eq!(random_hex16().len(), 32);
    }
}
