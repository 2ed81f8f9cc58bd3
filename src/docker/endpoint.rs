//! Which engine to talk to, found as the docker CLI and compose find it: `--context`, then
//! `DOCKER_HOST`, then `DOCKER_CONTEXT`, then the current context of the CLI's
//! `config.json`, then the standard socket, then the well-known sockets of Docker Desktop,
//! rootless Docker and Podman. A context's endpoint is read from
//! `$DOCKER_CONFIG/contexts/meta/<sha256 of its name>/meta.json`. Pure: what it reads of
//! the process (environment, files) comes in through [`Surroundings`].

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The socket a system engine listens on.
pub const STANDARD_SOCKET: &str = "/var/run/docker.sock";

/// Docker Desktop's socket on macOS, under the user's home.
#[cfg(target_os = "macos")]
const DESKTOP_SOCKET: &str = ".docker/run/docker.sock";
/// Docker Desktop's socket on Linux, under the user's home.
#[cfg(not(target_os = "macos"))]
const DESKTOP_SOCKET: &str = ".docker/desktop/docker.sock";

/// What decided the engine's address, as `doctor` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--context NAME`.
    ContextFlag(String),
    /// The `DOCKER_HOST` variable.
    DockerHost,
    /// The `DOCKER_CONTEXT` variable, naming a context.
    ContextVariable(String),
    /// `currentContext` in the CLI's `config.json`.
    CurrentContext(String),
    /// The standard socket, present.
    StandardSocket,
    /// A well-known socket found because the standard one is absent.
    WellKnown(&'static str),
    /// Nothing found: the standard socket is tried anyway.
    Fallback,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::ContextFlag(n) => write!(f, "--context {n}"),
            Source::DockerHost => f.write_str("DOCKER_HOST"),
            Source::ContextVariable(n) => write!(f, "DOCKER_CONTEXT={n}"),
            Source::CurrentContext(n) => write!(f, "the docker CLI's current context {n}"),
            Source::StandardSocket => f.write_str("the standard socket"),
            Source::WellKnown(what) => write!(f, "{what}'s socket"),
            Source::Fallback => f.write_str("no engine found; the standard socket"),
        }
    }
}

/// The engine's address and what decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix:///path` or `tcp://host:port`, as `DOCKER_HOST` spells it.
    pub host: String,
    /// What decided it.
    pub source: Source,
}

impl Endpoint {
    /// The socket's path, for a `unix://` address.
    pub fn socket(&self) -> Option<&Path> {
        self.host.strip_prefix("unix://").map(Path::new)
    }
}

/// What the resolution reads of the process and its files.
#[derive(Debug, Clone, Default)]
pub struct Surroundings {
    /// `--context`, if given.
    pub context_flag: Option<String>,
    /// `DOCKER_HOST`.
    pub docker_host: Option<String>,
    /// `DOCKER_CONTEXT`.
    pub docker_context: Option<String>,
    /// The CLI's configuration folder: `DOCKER_CONFIG`, else `~/.docker`.
    pub config_dir: Option<PathBuf>,
    /// The user's home folder.
    pub home: Option<PathBuf>,
    /// `XDG_RUNTIME_DIR` (rootless engines put their sockets there).
    pub runtime_dir: Option<PathBuf>,
}

impl Surroundings {
    /// This process's: its environment and the user's folders.
    pub fn of_process(context_flag: Option<&str>) -> Surroundings {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let home = directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf());
        Surroundings {
            context_flag: context_flag.map(str::to_string),
            docker_host: var("DOCKER_HOST"),
            docker_context: var("DOCKER_CONTEXT"),
            config_dir: var("DOCKER_CONFIG")
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".docker"))),
            home,
            runtime_dir: var("XDG_RUNTIME_DIR").map(PathBuf::from),
        }
    }
}

/// The parts of the CLI's `config.json` read here.
#[derive(Deserialize)]
struct CliConfig {
    /// The context `docker context use` chose.
    #[serde(rename = "currentContext", default)]
    current_context: Option<String>,
}

/// The parts of a context's `meta.json` read here.
#[derive(Deserialize)]
struct ContextMeta {
    /// Endpoints by kind; `docker` is the engine's.
    #[serde(rename = "Endpoints", default)]
    endpoints: std::collections::BTreeMap<String, ContextEndpoint>,
}

/// One endpoint of a context.
#[derive(Deserialize)]
struct ContextEndpoint {
    /// Its address.
    #[serde(rename = "Host", default)]
    host: Option<String>,
}

/// Finds the engine's address; `exists` says whether a socket path is there.
pub fn resolve(s: &Surroundings, exists: &dyn Fn(&Path) -> bool) -> Result<Endpoint> {
    let context = |name: &str, source: Source| -> Result<Endpoint> {
        match context_host(s, name)? {
            Some(host) => Ok(Endpoint { host, source }),
            // The `default` context: the address the CLI would use without one.
            None => Ok(default_endpoint(s, exists, source)),
        }
    };
    if let Some(name) = &s.context_flag {
        return context(name, Source::ContextFlag(name.clone()));
    }
    if let Some(host) = &s.docker_host {
        return Ok(Endpoint {
            host: host.clone(),
            source: Source::DockerHost,
        });
    }
    if let Some(name) = &s.docker_context {
        return context(name, Source::ContextVariable(name.clone()));
    }
    if let Some(name) = current_context(s)? {
        return context(&name, Source::CurrentContext(name.clone()));
    }
    Ok(default_endpoint(s, exists, Source::StandardSocket))
}

/// The standard socket if present, else the first well-known one present.
fn default_endpoint(s: &Surroundings, exists: &dyn Fn(&Path) -> bool, source: Source) -> Endpoint {
    let unix = |p: &Path| format!("unix://{}", p.display());
    if exists(Path::new(STANDARD_SOCKET)) {
        return Endpoint {
            host: unix(Path::new(STANDARD_SOCKET)),
            source,
        };
    }
    let mut known: Vec<(&'static str, PathBuf)> = Vec::new();
    if let Some(home) = &s.home {
        known.push(("Docker Desktop", home.join(DESKTOP_SOCKET)));
    }
    if let Some(run) = &s.runtime_dir {
        known.push(("rootless Docker", run.join("docker.sock")));
        known.push(("rootless Podman", run.join("podman/podman.sock")));
    }
    known.push(("Podman", PathBuf::from("/run/podman/podman.sock")));
    match known.into_iter().find(|(_, p)| exists(p)) {
        Some((what, path)) => Endpoint {
            host: unix(&path),
            source: Source::WellKnown(what),
        },
        None => Endpoint {
            host: unix(Path::new(STANDARD_SOCKET)),
            source: Source::Fallback,
        },
    }
}

/// The context `docker context use` chose, from `config.json` (none: no file, or no key).
fn current_context(s: &Surroundings) -> Result<Option<String>> {
    let Some(dir) = &s.config_dir else {
        return Ok(None);
    };
    let path = dir.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", &path)(e)),
    };
    let config: CliConfig = serde_json::from_str(&text).map_err(|e| Error::EngineContext {
        context: "the current context".into(),
        reason: format!("{} is not valid JSON: {e}", path.display()),
    })?;
    Ok(config.current_context.filter(|c| !c.is_empty()))
}

/// A context's engine address; `None` for `default`.
fn context_host(s: &Surroundings, name: &str) -> Result<Option<String>> {
    if name == "default" {
        return Ok(None);
    }
    let failed = |reason: String| Error::EngineContext {
        context: name.to_string(),
        reason,
    };
    let dir = s
        .config_dir
        .as_ref()
        .ok_or_else(|| failed("no docker configuration folder (set DOCKER_CONFIG)".into()))?;
    let hash = hex(&Sha256::digest(name.as_bytes()));
    let path = dir.join("contexts/meta").join(hash).join("meta.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        failed(format!(
            "{} cannot be read ({e}); `docker context ls` lists the contexts",
            path.display()
        ))
    })?;
    let meta: ContextMeta = serde_json::from_str(&text)
        .map_err(|e| failed(format!("{} is not valid JSON: {e}", path.display())))?;
    meta.endpoints
        .get("docker")
        .and_then(|e| e.host.clone())
        .filter(|h| !h.is_empty())
        .map(Some)
        .ok_or_else(|| failed(format!("{} names no docker endpoint", path.display())))
}

/// Lower-case hex of bytes.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A docker configuration folder holding `config.json` (if given) and contexts.
    fn config(current: Option<&str>, contexts: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tmp");
        if let Some(c) = current {
            std::fs::write(
                dir.path().join("config.json"),
                format!(r#"{{"auths":{{}},"currentContext":"{c}"}}"#),
            )
            .expect("write");
        }
        for (name, host) in contexts {
            let meta = dir
                .path()
                .join("contexts/meta")
                .join(hex(&Sha256::digest(name.as_bytes())));
            std::fs::create_dir_all(&meta).expect("mkdir");
            std::fs::write(
                meta.join("meta.json"),
                format!(
                    r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#
                ),
            )
            .expect("write");
        }
        dir
    }

    fn around(dir: &Path) -> Surroundings {
        Surroundings {
            config_dir: Some(dir.to_path_buf()),
            home: Some(PathBuf::from("/home/jo")),
            runtime_dir: Some(PathBuf::from("/run/user/1000")),
            ..Default::default()
        }
    }

    #[test]
    fn contexts_are_found_as_the_docker_cli_finds_them() {
        let dir = config(
            Some("colima"),
            &[
                ("colima", "unix:///home/jo/.colima/default/docker.sock"),
                ("other", "tcp://10.0.0.2:2375"),
            ],
        );
        let all = |_: &Path| true;
        let mut s = around(dir.path());
        // The current context of config.json.
        let e = resolve(&s, &all).expect("resolves");
        assert_eq!(e.host, "unix:///home/jo/.colima/default/docker.sock");
        assert_eq!(e.source, Source::CurrentContext("colima".into()));
        assert_eq!(
            e.socket(),
            Some(Path::new("/home/jo/.colima/default/docker.sock"))
        );
        // DOCKER_CONTEXT over it; DOCKER_HOST over both; --context over everything.
        s.docker_context = Some("other".into());
        assert_eq!(resolve(&s, &all).expect("ok").host, "tcp://10.0.0.2:2375");
        s.docker_host = Some("unix:///tmp/x.sock".into());
        let e = resolve(&s, &all).expect("ok");
        assert_eq!(
            (e.host.as_str(), e.source),
            ("unix:///tmp/x.sock", Source::DockerHost)
        );
        s.context_flag = Some("colima".into());
        let e = resolve(&s, &all).expect("ok");
        assert_eq!(e.source, Source::ContextFlag("colima".into()));
        assert_eq!(e.source.to_string(), "--context colima");
        // `default` is the address without a context.
        s.context_flag = Some("default".into());
        let e = resolve(&s, &all).expect("ok");
        assert_eq!(e.host, "unix:///var/run/docker.sock");
    }

    #[test]
    fn without_a_context_the_standard_socket_then_well_known_ones() {
        let dir = config(None, &[]);
        let s = around(dir.path());
        let only = |want: String| move |p: &Path| p == Path::new(&want);
        let desktop = format!("/home/jo/{DESKTOP_SOCKET}");
        let cases = [
            ("/var/run/docker.sock", Source::StandardSocket),
            (desktop.as_str(), Source::WellKnown("Docker Desktop")),
            (
                "/run/user/1000/docker.sock",
                Source::WellKnown("rootless Docker"),
            ),
            (
                "/run/user/1000/podman/podman.sock",
                Source::WellKnown("rootless Podman"),
            ),
            ("/run/podman/podman.sock", Source::WellKnown("Podman")),
        ];
        for (socket, source) in cases {
            let e = resolve(&s, &only(socket.to_string())).expect("resolves");
            assert_eq!(e.host, format!("unix://{socket}"));
            assert_eq!(e.source, source);
        }
        let e = resolve(&s, &|_| false).expect("resolves");
        assert_eq!(
            (e.host.as_str(), e.source),
            ("unix:///var/run/docker.sock", Source::Fallback)
        );
    }

    #[test]
    fn a_broken_context_is_one_clear_error() {
        let dir = config(Some("gone"), &[]);
        let err = resolve(&around(dir.path()), &|_| true)
            .expect_err("refused")
            .to_string();
        assert!(
            err.starts_with("docker context gone cannot be used:")
                && err.contains("docker context ls"),
            "{err}"
        );
        std::fs::write(dir.path().join("config.json"), "{").expect("write");
        let err = resolve(&around(dir.path()), &|_| true)
            .expect_err("refused")
            .to_string();
        assert!(err.contains("config.json is not valid JSON"), "{err}");
    }
}
