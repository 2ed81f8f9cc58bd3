//! Making a project: every option checked first, then the files assembled in a staging
//! folder and moved into place, so a failure leaves nothing behind.

use super::lock::{lock_folder, lock_ports};
use super::*;

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

/// A random string of `len` letters and digits from the thread's CSPRNG.
pub(super) fn random_alnum(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
        .collect()
}

/// 32 random hex digits, as `openssl rand -hex 16` gives.
pub(super) fn random_hex16() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
pub(super) fn tls_mode(opts: &InitOptions, own: bool) -> Result<TlsMode> {
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
    let domain = opts
        .domain
        .as_deref()
        .map(|d| d.trim_end_matches('.').to_ascii_lowercase());
    tls::read_own_pair(cert, key, domain.as_deref()).map(Some)
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
        for port in [project.http_port(), project.https_port()] {
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

/// Removes a project made in this run whose stack never started (its images could not be
/// had), so a failed first `up` leaves no project behind: nothing but cht-dev wrote into
/// its folder yet.
pub fn discard_unstarted(project: &Project) -> Result<()> {
    std::fs::remove_dir_all(&project.dir).map_err(Error::io("remove", &project.dir))
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

/// `path` with its links resolved, or as it is when it cannot be (it does not exist).
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Whether one of two folders holds the other (or they are the same).
fn nested(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
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
        for folder in project.data_folders() {
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

/// System folders no CouchDB data is used in place in (nor anything inside them), as this
/// machine may name them (macOS's `/etc` and `/var` are links into `/private`).
const SYSTEM_FOLDERS: &[&str] = &[
    "/etc",
    "/usr",
    "/var",
    "/boot",
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/root",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/private/etc",
    "/private/var",
];

/// Checks the canonical folder `data` (see [`check_data_folder`]) may be CouchDB's data
/// in place, mounted into a container whose entrypoint takes over its files and swapped out
/// by a restore or removed by `destroy`. Rules: not a system folder or inside one (see
/// [`SYSTEM_FOLDERS`]), and neither inside a container engine's data root nor holding it
/// (`engine_roots`: the engine's own, where it runs here, and the rootless defaults under
/// the user's home). Returns which rule it breaks.
pub fn check_in_place(data: &Path, engine_roots: &[PathBuf]) -> std::result::Result<(), String> {
    if let Some(system) = SYSTEM_FOLDERS
        .iter()
        .map(Path::new)
        .find(|s| data.starts_with(s))
    {
        return Err(format!(
            "it is in the system folder {}, whose files the CouchDB container would take over (its entrypoint changes their owner) and a restore or destroy would replace",
            system.display()
        ));
    }
    if let Some(root) = engine_roots
        .iter()
        .map(|r| canonical(r))
        .find(|r| nested(data, r))
    {
        return Err(format!(
            "it overlaps the container engine's data root {}",
            root.display()
        ));
    }
    Ok(())
}

/// Where container engines keep their data under the user's home when rootless (Docker's
/// and Podman's defaults), and `engine`, the root the engine answering says it uses.
pub fn engine_roots(engine: Option<&Path>) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = engine.map(Path::to_path_buf).into_iter().collect();
    if let Some(data) = directories::BaseDirs::new().map(|d| d.data_dir().to_path_buf()) {
        roots.push(data.join("docker"));
        roots.push(data.join("containers"));
    }
    roots
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
/// nginx's host ports: the ones asked for or the next free pair, or the adopted ones,
/// unless another project holds them (`taken`).
fn project_ports(
    opts: &InitOptions,
    adopted: Option<&Adopted>,
    taken: &ports::Taken,
) -> Result<(u16, u16)> {
    Ok(match adopted {
        None => ports::allocate(opts.http_port, opts.https_port, taken)?,
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
    })
}

/// The certificate a new project serves, with the names it covers: the user's own, the
/// home's local-ip pair, or one the local CA issues now.
fn first_certificate(
    home: &Home,
    checked: &Checked,
    ca: &tls::Ca,
) -> Result<(tls::Leaf, Vec<SanName>)> {
    let given = match (&checked.own_cert, checked.tls) {
        (Some((cert_pem, key_pem)), _) => Some((cert_pem.clone(), key_pem.clone())),
        (None, TlsMode::LocalIp) => {
            let pair = usable_local_ip(home)?;
            Some((pair.fullchain, pair.key))
        }
        (None, _) => None,
    };
    Ok(match given {
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
    })
}

/// A new project's `.env`: its ports, random credentials, data folders, the variables
/// the upgrade service and the helper's tools read, the adopted values, the domain and
/// the certificate's source.
fn first_settings(checked: &Checked, http: u16, https: u16, adopted: Option<&Adopted>) -> EnvFile {
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
    env
}

/// Writes the new project into `root` (a staging folder): its folders, `.env`, compose
/// files and certificate, and the adopted data when it is copied.
fn write_project(
    root: &Path,
    checked: &Checked,
    env_text: &str,
    files: &[render::RenderedFile],
    leaf: &tls::Leaf,
    adopted: Option<&Adopted>,
) -> Result<()> {
    for sub in ["compose", "certs", "couchdb"] {
        fsutil::create_dir_mode(&root.join(sub), fsutil::SHARED_DIR)?;
    }
    for (_, _, relative) in checked.layout.data_vars() {
        fsutil::create_dir_mode(&root.join(relative), fsutil::SHARED_DIR)?;
    }
    if let Some(from) = adopted.and_then(|a| a.copy_data.as_deref()) {
        fsutil::copy_tree(from, &root.join("couchdb"))?;
        crate::faults::point("copied");
    }
    fsutil::write_new(&root.join(".env"), env_text.as_bytes(), fsutil::PRIVATE)?;
    super::render::write_into(root, files)?;
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
    Ok(())
}

fn create_with(home: &Home, opts: &InitOptions, adopted: Option<&Adopted>) -> Result<Created> {
    let checked = check(home, opts)?;
    // Held until the project is in place, so the next creation sees its ports.
    let _ports = lock_ports(&lock_folder(), home)?;
    let taken = taken_ports(home)?;
    let (http, https) = project_ports(opts, adopted, &taken)?;
    let (ca_files, ca_created) = tls::ensure_ca(home)?;
    let ca = tls::Ca::load(&ca_files)?;
    let (leaf, names) = first_certificate(home, &checked, &ca)?;

    let env = first_settings(&checked, http, https, adopted);
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
    let env_text = env.render(&header).map_err(|e| Error::Encode {
        what: format!("{}'s .env", checked.name),
        reason: e.to_string(),
    })?;
    let staging = fsutil::Staging::new(home.root(), &checked.name)?;
    write_project(staging.path(), &checked, &env_text, &files, &leaf, adopted)?;
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
        project: Project::from_env(&checked.name, checked.dir, env)?,
        version: checked.version,
        layout: checked.layout,
        ca: ca_files,
        ca_created,
        names,
    })
}
