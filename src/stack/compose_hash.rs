//! The config hash the CHT upgrade service's own compose computes for each CHT service.
//!
//! The upgrade service runs `docker compose -p $CHT_COMPOSE_PROJECT_NAME -f ... up -d
//! --remove-orphans` on the files in its `/docker-compose` folder at every boot and after
//! every in-app upgrade. Compose recreates any container whose
//! `com.docker.compose.config-hash` label differs from the hash *it* computes, and compose
//! versions disagree on that hash (2.26 and 2.40 differ for services with `depends_on`). So
//! the hash to write is the one the compose inside the upgrade-service image computes: a
//! one-off container of that image, with the same folder mounted at `/docker-compose` and
//! the same environment, picks the files as the service's `startUp` does (every file that
//! `docker compose -p P -f FILE config` accepts, in name order) and prints
//! `docker compose config --hash '*'`.
//!
//! Results, failures included, are cached in `<project>/cache/compose-hashes.json`, keyed by
//! the image id and a digest of the folder's files, the environment and the script, so an
//! unchanged `up` never runs the one-off again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::model::ServiceSpec;
use crate::docker::{Engine, ImageInfo, OneOff, labels};
use crate::error::Result;
use crate::fsutil;
use crate::fsutil::hex_sha256;
use crate::stack::Target;

/// Where the upgrade service sees the CHT compose files.
pub const COMPOSE_MOUNT: &str = "/docker-compose";
/// The cache file, relative to the project folder.
pub const CACHE_FILE: &str = "cache/compose-hashes.json";
/// The `org.cht-dev.role` of the one-off containers.
const ROLE: &str = "compose-hash";
/// How long the one-off may take (it only parses files).
const LIMIT: Duration = Duration::from_secs(60);

/// The one-off's script: the upgrade service's file discovery, then the hashes. It needs
/// only `sh`, `ls`, `mkdir`, `cat` and `docker compose`, as the upgrade-service image has
/// them. Exit codes 91 to 93 name what the image lacks or the folder holds.
///
/// Each compose run costs a process start and a parse, so they run at once: the check of
/// each file (`config -q`, as the service's discovery does), the version, and the hashes of
/// all files together. When every file passes, those hashes are the answer; otherwise the
/// hashes are asked again for the files that passed.
const SCRIPT: &str = r#"p="$CHT_COMPOSE_PROJECT_NAME"
command -v docker >/dev/null 2>&1 || { echo "the image has no docker CLI" >&2; exit 91; }
d=/tmp/cht-dev-compose-hash
mkdir -p "$d"
files() { LC_ALL=C ls -A /docker-compose; }
set --
n=0
for f in $(files); do
  [ -f "/docker-compose/$f" ] || continue
  n=$((n+1))
  set -- "$@" -f "/docker-compose/$f"
  ( docker compose -p "$p" -f "/docker-compose/$f" config -q >/dev/null 2>&1 && : > "$d/ok$n" ) &
done
( docker compose version --short > "$d/version" 2>/dev/null ) &
if [ "$n" -gt 0 ]; then
  docker compose -p "$p" "$@" config --hash '*' > "$d/all" 2> "$d/all.err"
  echo $? > "$d/rc"
fi
wait
[ -s "$d/version" ] || { echo "the image has no docker compose" >&2; exit 92; }
set --
i=0
every=yes
for f in $(files); do
  [ -f "/docker-compose/$f" ] || continue
  i=$((i+1))
  if [ -e "$d/ok$i" ]; then set -- "$@" -f "/docker-compose/$f"; else every=no; fi
done
[ "$#" -gt 0 ] || { echo "no file in /docker-compose is a valid compose file" >&2; exit 93; }
echo "compose-version $(cat "$d/version")"
if [ "$every" = yes ] && [ "$i" = "$n" ] && [ "$(cat "$d/rc")" = 0 ]; then
  cat "$d/all"
else
  docker compose -p "$p" "$@" config --hash '*'
fi
"#;

/// What the upgrade service's compose computes for the CHT services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComposeHashes {
    /// The compose version inside the image, e.g. `2.26.1`.
    pub compose_version: String,
    /// Each service's config hash.
    pub hashes: BTreeMap<String, String>,
}

/// The outcome of asking: the hashes, or why they cannot be known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Learned {
    /// The upgrade service's compose answered.
    Known(ComposeHashes),
    /// It could not be asked or did not answer; the reason, for one line to the user.
    Unknown(String),
}

/// One cache entry: the key it answers, and the answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    /// Digest of everything the answer depends on.
    key: String,
    /// The hashes, when the one-off gave them.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    known: Option<ComposeHashes>,
    /// Why it did not, when it ran to its end without them.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    unknown: Option<String>,
}

/// The upgrade service as far as its compose is concerned.
#[derive(Debug, Clone)]
pub struct UpgradeService<'a> {
    /// Its service definition, resolved.
    pub spec: &'a ServiceSpec,
    /// Its image as present locally.
    pub image: &'a ImageInfo,
}

impl UpgradeService<'_> {
    /// The host folder mounted at `/docker-compose`, if the service mounts one.
    pub fn compose_folder(&self) -> Option<PathBuf> {
        self.spec
            .mounts
            .iter()
            .find(|m| m.bind && m.target.trim_end_matches('/') == COMPOSE_MOUNT)
            .map(|m| PathBuf::from(&m.source))
    }
}

/// The upgrade service among a stack's services: the one that mounts `/docker-compose`.
pub fn find_upgrade_service<'a>(
    services: impl IntoIterator<Item = &'a ServiceSpec>,
) -> Option<&'a ServiceSpec> {
    services.into_iter().find(|s| {
        s.mounts
            .iter()
            .any(|m| m.bind && m.target.trim_end_matches('/') == COMPOSE_MOUNT)
    })
}

/// A digest of what the hashes depend on: the image, the folder's regular files (as the
/// one-off would list them: every name, dotfiles included, in byte order, symlinks
/// followed), the environment and the script.
fn cache_key(service: &UpgradeService<'_>, folder: &Path) -> Result<String> {
    let mut text = format!(
        "script {}\nimage {}\n",
        hex_sha256(SCRIPT),
        service.image.id
    );
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .map_err(crate::error::Error::io("read", folder))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let path = folder.join(&name);
        if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            let contents = std::fs::read(&path).map_err(crate::error::Error::io("read", &path))?;
            text.push_str(&format!(
                "file {name:?} {}\n",
                hex_sha256(&String::from_utf8_lossy(&contents))
            ));
        }
    }
    for (k, v) in service_env(service) {
        text.push_str(&format!("env {k:?}={v:?}\n"));
    }
    Ok(hex_sha256(&text))
}

/// The environment the upgrade service's compose runs in: the image's own, then the
/// service's (which wins, as in any container).
pub fn service_env(service: &UpgradeService<'_>) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = service
        .image
        .env
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.extend(service.spec.env.clone());
    env
}

/// Reads the cached answer for `key`, if the cache holds it.
fn cached(project: &Target, key: &str) -> Option<Learned> {
    let text = std::fs::read_to_string(project.path(CACHE_FILE)).ok()?;
    let entry: Entry = serde_json::from_str(&text).ok()?;
    if entry.key != key {
        return None;
    }
    match (entry.known, entry.unknown) {
        (Some(known), _) => Some(Learned::Known(known)),
        (None, Some(why)) => Some(Learned::Unknown(why)),
        (None, None) => None,
    }
}

/// Stores an answer. A cache that cannot be written only costs a one-off next time, so
/// failures here are not errors.
fn store(project: &Target, key: &str, learned: &Learned) {
    let entry = Entry {
        key: key.to_string(),
        known: match learned {
            Learned::Known(k) => Some(k.clone()),
            Learned::Unknown(_) => None,
        },
        unknown: match learned {
            Learned::Known(_) => None,
            Learned::Unknown(why) => Some(why.clone()),
        },
    };
    let Ok(json) = serde_json::to_string_pretty(&entry) else {
        return;
    };
    let path = project.path(CACHE_FILE);
    if let Some(dir) = path.parent()
        && fsutil::create_dir_all(dir).is_ok()
    {
        let _ = fsutil::replace(&path, json.as_bytes(), fsutil::PUBLIC);
    }
}

/// Reads the one-off's output: `compose-version V`, then `SERVICE HASH` lines.
pub fn parse_output(stdout: &str) -> std::result::Result<ComposeHashes, String> {
    let mut version = None;
    let mut hashes = BTreeMap::new();
    for line in stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(v) = line.strip_prefix("compose-version ") {
            version = Some(v.trim().to_string());
            continue;
        }
        match line.split_once(' ') {
            Some((service, hash))
                if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                hashes.insert(service.to_string(), hash.to_string());
            }
            _ => return Err(format!("unexpected output line {line:?}")),
        }
    }
    match version {
        Some(compose_version) if !hashes.is_empty() => Ok(ComposeHashes {
            compose_version,
            hashes,
        }),
        _ => Err("it printed no hashes".into()),
    }
}

/// Asks the upgrade service's compose for the CHT services' config hashes (or reads
/// the cached answer). Engine failures are answers too (`Unknown`), never errors: cht-dev
/// can always fall back to its own hash.
pub async fn learn(engine: &Engine, project: &Target, service: &UpgradeService<'_>) -> Learned {
    let Some(folder) = service.compose_folder() else {
        return Learned::Unknown(format!(
            "the upgrade service mounts no folder at {COMPOSE_MOUNT}"
        ));
    };
    let key = match cache_key(service, &folder) {
        Ok(key) => key,
        Err(e) => return Learned::Unknown(e.to_string()),
    };
    if let Some(answer) = cached(project, &key) {
        return answer;
    }
    // A one-off an interrupted command left behind would hold the name.
    if let Ok(left) = engine
        .containers(&[
            (labels::CHT_DEV_PROJECT, project.name.as_str()),
            (labels::CHT_DEV_ROLE, ROLE),
        ])
        .await
    {
        for c in left {
            let _ = engine.remove(&c.id, &c.name).await;
        }
    }
    let job = OneOff {
        name: format!("{}-compose-hash-{}", project.name, &key[..12]),
        image: service.spec.image.clone(),
        entrypoint: vec!["/bin/sh".into(), "-c".into(), SCRIPT.into()],
        env: service_env(service),
        binds: vec![format!("{}:{COMPOSE_MOUNT}:ro", folder.display())],
        labels: BTreeMap::from([
            (labels::CHT_DEV_PROJECT.to_string(), project.name.clone()),
            (labels::CHT_DEV_ROLE.to_string(), ROLE.to_string()),
        ]),
        user: None,
    };
    let finished = match engine.run_to_end(&job, LIMIT).await {
        Ok(f) => f,
        // Not cached: the engine may answer next time.
        Err(e) => return Learned::Unknown(e.to_string()),
    };
    let learned = if finished.code == 0 {
        match parse_output(&finished.stdout) {
            Ok(known) => Learned::Known(known),
            Err(why) => Learned::Unknown(format!("its compose answered oddly: {why}")),
        }
    } else {
        let said = finished
            .stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message")
            .trim()
            .to_string();
        Learned::Unknown(format!(
            "{} exited {}: {said}",
            service.spec.image, finished.code
        ))
    };
    store(project, &key, &learned);
    learned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_read_line_by_line_and_odd_output_is_refused() {
        let hash = "a".repeat(64);
        let out = format!("compose-version 2.26.1-4\nweb {hash}\nproxy {hash}\n");
        let parsed = parse_output(&out).expect("parses");
        assert_eq!(parsed.compose_version, "2.26.1-4");
        assert_eq!(parsed.hashes.keys().collect::<Vec<_>>(), ["proxy", "web"]);
        assert!(parse_output("compose-version 2\n").is_err(), "no hashes");
        assert!(
            parse_output(&format!("api {hash}\n")).is_err(),
            "no version"
        );
        assert!(parse_output("compose-version 2\napi xyz\n").is_err());
        assert!(parse_output(&format!("compose-version 2\nWARN something\napi {hash}")).is_err());
    }
}
