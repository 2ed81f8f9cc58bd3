//! A project made by the bash Docker Helper, read from its `NAME.env` and checked as
//! flags would be, before `adopt` writes anything.
//!
//! The helper's `.env` is another tool's file: every value cht-dev uses is checked as its
//! flag would be (name, ports, registry, data folder, no control characters, a `.env`
//! spelling both composes read alike).

use std::path::{Path, PathBuf};

use super::dotenv::EnvFile;
use super::versions::ChtVersion;
use super::{Adopted, InitOptions, TlsMode, ports, versions};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::stack::model::raw::Outline;

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

/// A helper project, checked: what `adopt` makes of it.
#[derive(Debug, Clone)]
pub struct HelperProject {
    /// The cht-dev project's name.
    pub name: String,
    /// How to create it.
    pub opts: InitOptions,
    /// What is carried over.
    pub adopted: Adopted,
    /// Its CHT release.
    pub version: ChtVersion,
    /// Its CouchDB data folder, checked.
    pub data: PathBuf,
    /// The compose project of the helper's upgrade service ("" when unknown).
    pub helper_upgrade: String,
}

/// The registry and CHT release of the helper's project, from the API image its
/// `cht-core.yml` (in `compose_dir`) names; `bad` words a refusal.
fn release(compose_dir: &Path, bad: &dyn Fn(String) -> Error) -> Result<(String, ChtVersion)> {
    let core = compose_dir.join("cht-core.yml");
    let core_text = crate::fsutil::read_input_text(
        &core,
        "the Docker Helper's compose file",
        super::MAX_ENV_BYTES,
    )?;
    let api = Outline::parse(&core.display().to_string(), &core_text)?
        .services
        .get("api")
        .and_then(|s| s.image.clone())
        .ok_or_else(|| bad(format!("{} has no api service image", core.display())))?;
    let (registry, tag) = api
        .rsplit_once("/cht-api:")
        .ok_or_else(|| bad(format!("cannot read the CHT version from image {api}")))?;
    let version = versions::find(tag)?;
    Ok((registry.to_string(), version))
}

/// The helper's `.env`, read (a regular file of at most what settings ever take, see
/// [`crate::fsutil::read_input`]) and parsed.
fn read_env(env_file: &Path, bad: &dyn Fn(String) -> Error) -> Result<EnvFile> {
    let text = crate::fsutil::read_input_text(
        env_file,
        "the Docker Helper's project file",
        super::MAX_ENV_BYTES,
    )?;
    EnvFile::parse(&text).map_err(|e| bad(format!("line {}: {}", e.line, e.reason)))
}

/// Refuses a file adopt cannot map: a clustered project's, one lacking a key the helper
/// always writes, or one with a control character in a value cht-dev writes out again.
fn check_keys(env: &EnvFile, bad: &dyn Fn(String) -> Error) -> Result<()> {
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
    Ok(())
}

/// The helper's nginx ports, each a port number that no project and no program holds,
/// and not the same one twice.
fn helper_ports(
    home: &Home,
    env_file: &Path,
    env: &EnvFile,
    bad: &dyn Fn(String) -> Error,
) -> Result<(u16, u16)> {
    let get = |k: &str| env.get(k).unwrap_or_default().to_string();
    let taken = super::taken_ports(home)?;
    let port = |key: &'static str| -> Result<u16> {
        let raw = get(key);
        let port = ports::parse_setting(&raw).map_err(|why| bad(format!("{key}={raw}: {why}")))?;
        match ports::busy_reason(port, &taken) {
            None => Ok(port),
            Some(reason) => Err(Error::HelperPortBusy {
                file: env_file.to_path_buf(),
                key,
                port,
                reason,
            }),
        }
    };
    let (http, https) = (port("NGINX_HTTP_PORT")?, port("NGINX_HTTPS_PORT")?);
    if http == https {
        return Err(bad(format!(
            "NGINX_HTTP_PORT and NGINX_HTTPS_PORT are both {http}; give each its own"
        )));
    }
    Ok((http, https))
}

/// Reads and checks the helper's `env_file` for project `name_given` (default: the
/// file's name), the data to be copied (`copy_data`) or used in place (then also by
/// [`super::check_in_place`], with `engine_root`, the data root of the engine that runs
/// here, when known), and the certificate's source `tls`.
pub fn read(
    home: &Home,
    env_file: &Path,
    name_given: Option<&str>,
    copy_data: bool,
    tls: TlsMode,
    engine_root: Option<&Path>,
) -> Result<HelperProject> {
    let bad = |reason: String| Error::CannotAdopt {
        file: env_file.to_path_buf(),
        reason,
    };
    let env = read_env(env_file, &bad)?;
    let name = match name_given {
        Some(n) => n.to_string(),
        None => env_file
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
            .ok_or_else(|| {
                bad("cannot tell the project name from the file name; pass --name".into())
            })?,
    };
    // The name first: adopting one file twice says the project exists.
    super::validate(
        home,
        &InitOptions {
            name: name.clone(),
            ..InitOptions::default()
        },
    )?;
    check_keys(&env, &bad)?;
    let get = |k: &str| env.get(k).unwrap_or_default().to_string();
    let (http, https) = helper_ports(home, env_file, &env, &bad)?;
    let raw_data = get("COUCHDB_DATA");
    let data = super::check_data_folder(home, &raw_data).map_err(|why| {
        bad(format!(
            "its CouchDB data folder {raw_data:?} is refused: {why}"
        ))
    })?;
    if !copy_data {
        super::check_in_place(&data, &super::engine_roots(engine_root)).map_err(|why| {
            bad(format!(
                "its CouchDB data folder {raw_data:?} cannot be used in place: {why}; adopt with --copy-data to copy it into the project instead"
            ))
        })?;
    }
    let (registry, version) = release(&PathBuf::from(get("CHT_COMPOSE_PATH")), &bad)?;
    let opts = InitOptions {
        name: name.clone(),
        cht_version: Some(version.version.to_string()),
        image_registry: (registry != super::render::DEFAULT_REGISTRY).then_some(registry),
        tls: Some(tls),
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
    if !copy_data {
        vars.push(("COUCHDB_DATA".into(), data.display().to_string()));
    }
    let helper_project = get("DOCKER_CONFIG_PATH");
    let helper_upgrade = Path::new(&helper_project)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    Ok(HelperProject {
        adopted: Adopted {
            http,
            https,
            vars,
            copy_data: copy_data.then(|| data.clone()),
        },
        name,
        opts,
        version,
        data,
        helper_upgrade,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A helper project in `dir` (its `NAME.env`, compose folder and data folder), with
    /// `extra` lines appended to the `.env`; returns the `.env`'s path.
    fn helper_files(dir: &Path, name: &str, extra: &str) -> PathBuf {
        let root = dir.join(format!("{name}-dir"));
        std::fs::create_dir_all(root.join("couch")).expect("couch");
        std::fs::create_dir_all(root.join("compose")).expect("compose");
        std::fs::write(
            root.join("compose/cht-core.yml"),
            "services:\n  api:\n    image: public.ecr.aws/medic/cht-api:4.22.0\n",
        )
        .expect("compose");
        let env = format!(
            "NGINX_HTTP_PORT=31080\nNGINX_HTTPS_PORT=31443\nCOUCHDB_USER=medic\nCOUCHDB_PASSWORD=pw\n\
             COUCHDB_SECRET=s\nCOUCHDB_UUID=u\nCOUCHDB_DATA={r}/couch\nCHT_COMPOSE_PATH={r}/compose\n\
             DOCKER_CONFIG_PATH={r}\n{extra}",
            r = root.display()
        );
        let file = dir.join(format!("{name}.env"));
        std::fs::write(&file, env).expect("env");
        file
    }

    /// A home and a folder for helper files beside it.
    fn places() -> (tempfile::TempDir, Home, PathBuf) {
        let dir = tempfile::tempdir().expect("tmp");
        let home = Home::at(&dir.path().join("home")).expect("home");
        let user = dir.path().join("user");
        std::fs::create_dir_all(&user).expect("user");
        (dir, home, user)
    }

    #[test]
    fn a_helper_project_becomes_init_options_and_kept_settings() {
        let (_dir, home, user) = places();
        let file = helper_files(&user, "clinic", "");
        let h = read(&home, &file, None, false, TlsMode::LocalIp, None).expect("read");
        assert_eq!(h.name, "clinic");
        assert_eq!(h.version.version, "4.22.0");
        assert_eq!(h.opts.image_registry, None, "upstream's registry");
        assert_eq!(h.opts.tls, Some(TlsMode::LocalIp));
        assert_eq!((h.adopted.http, h.adopted.https), (31080, 31443));
        assert!(
            h.adopted
                .vars
                .iter()
                .any(|(k, v)| k == "COUCHDB_PASSWORD" && v == "pw")
        );
        assert!(
            h.adopted.vars.iter().any(|(k, _)| k == "COUCHDB_DATA"),
            "used in place"
        );
        assert_eq!(h.helper_upgrade, "clinic-dir");
        let copied = read(&home, &file, Some("other"), true, TlsMode::LocalCa, None).expect("read");
        assert_eq!(copied.name, "other");
        assert!(copied.adopted.copy_data.is_some());
        assert!(!copied.adopted.vars.iter().any(|(k, _)| k == "COUCHDB_DATA"));
    }

    #[test]
    fn unfit_helper_files_are_refused_with_the_reason() {
        let (_dir, home, user) = places();
        let refused = |name: &str, extra: &str, edit: &dyn Fn(String) -> String| {
            let file = helper_files(&user, name, extra);
            let text = std::fs::read_to_string(&file).expect("read");
            std::fs::write(&file, edit(text)).expect("write");
            read(&home, &file, None, false, TlsMode::LocalCa, None)
                .expect_err("refused")
                .to_string()
        };
        let same = |t: String| t;
        assert!(
            refused("a", "", &|t| t.replace("NGINX_HTTP_PORT=31080\n", ""))
                .contains("lacks NGINX_HTTP_PORT")
        );
        assert!(refused("b", "", &|t| t.replace("31080", "31443")).contains("are both 31443"));
        assert!(
            refused("c", "", &|t| t
                .replace("COUCHDB_PASSWORD=pw", "COUCHDB_PASSWORD='p\tw'"))
            .contains("control character")
        );
        let cluster = refused("d", "DB1_DATA=/x\n", &|t| {
            t.replace("COUCHDB_DATA=", "OLD_DATA=")
        });
        assert!(cluster.contains("clustered"), "{cluster}");
        assert!(
            refused("e", "", &|t| t.replace("31080", "99999")).contains("NGINX_HTTP_PORT=99999")
        );
        assert!(refused("Bad", "", &same).contains("invalid project name"));
    }
}
