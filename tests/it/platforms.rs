//! Where users run cht-dev beyond a root shell on Linux: here, a home whose path has
//! spaces, as macOS's data folder (`~/Library/Application Support/cht-dev`) has.

use crate::common::ChtDev;
use crate::common::engine::Stack;

/// macOS's default home, under a temporary folder.
const MACOS_LIKE_HOME: &str = "Library/Application Support/cht-dev";

#[test]
fn a_home_whose_path_has_spaces_works_end_to_end() {
    let s = Stack::in_home("spaces", ChtDev::with_home(MACOS_LIKE_HOME));
    let name = s.name.as_str();
    assert!(
        s.dir()
            .display()
            .to_string()
            .contains("Application Support/cht-dev/")
    );

    // up: HTTPS through nginx, verified against the CA (whose path has the space too).
    let up = s.up(&[]).ok();
    assert!(up.stdout.contains("is up"), "{up:#?}");
    assert_eq!(s.curl_https("/").0, "200");
    let data = s.dir().join("couchdb");
    // CouchDB writes into the data folder bind-mounted from a path with a space.
    s.couch_wrote(&data);
    std::fs::write(data.join("keep-me"), "data").expect("marker");

    // Compose, v1 and v2, reads the files and .env from that folder and finds the stack;
    // the upgrade service's boot compose runs there too and recreates nothing.
    let ids = s.ids();
    for cli in crate::common::composes() {
        let ps = s.compose(&cli, &["ps", "--services"]);
        assert_eq!(ps.code, 0, "{}: {ps:#?}", cli.label);
        assert!(ps.stdout.contains("couchdb"), "{}: {ps:#?}", cli.label);
    }
    let boot = s.wait_boots(1);
    assert!(
        boot.contains("startup: done (exit 0)"),
        "the upgrade service's compose ran the project's files: {boot}"
    );
    assert_eq!(s.ids(), ids, "the upgrade service's boot kept them: {boot}");

    // A snapshot round trip: the archive, the folder swap and the restart all under spaces.
    s.cht
        .run(&["snapshot", "create", name, "--label", "spaced"])
        .ok();
    std::fs::remove_file(data.join("keep-me")).expect("rm");
    s.cht
        .run(&["snapshot", "restore", name, "spaced", "--yes"])
        .ok();
    assert_eq!(
        std::fs::read_to_string(data.join("keep-me")).expect("restored"),
        "data"
    );
    assert_eq!(s.curl_https("/").0, "200");

    // down and up again keep the data; destroy leaves nothing of the project.
    s.cmd("down", &[]).ok();
    s.up(&[]).ok();
    assert!(data.join("keep-me").is_file());
    s.cmd("destroy", &["--yes"]).ok();
    assert!(!s.dir().exists());
    assert!(s.all_containers().is_empty());
    assert!(s.volumes().is_empty());
}

/// CouchDB's user in the real image, and in the stand-in.
pub const COUCHDB_UID: u32 = 5984;

/// The owner of a path.
fn owner(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .uid()
}

/// Every path under `dir` that `uid` does not own.
fn not_owned_by(dir: &std::path::Path, uid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read").flatten() {
        let path = entry.path();
        if owner(&path) != uid {
            out.push(path.display().to_string());
        }
        if entry.file_type().expect("type").is_dir() {
            out.extend(not_owned_by(&path, uid));
        }
    }
    out
}

/// A file written into the data folder as CouchDB would write it: as `uid` (5984, or what
/// a rootless engine maps it to), 0644.
fn couchdb_writes(path: &std::path::Path, text: &str, uid: u32) {
    std::fs::write(path, text).expect("write");
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).expect("chown");
}

#[test]
fn a_normal_user_runs_every_command_with_container_owned_data() {
    normal_user_journey(ChtDev::as_test_user(), COUCHDB_UID);
}

/// A normal user's whole round, on the engine `cht` runs on: CouchDB owns its data there
/// (as host uid `couchdb_uid`: 5984, or where a rootless engine maps it), and nothing the
/// user cannot remove is ever left behind.
pub fn normal_user_journey(cht: ChtDev, couchdb_uid: u32) {
    let user = crate::common::test_user();
    let s = Stack::in_home("nonroot", cht);
    let name = s.name.as_str();

    // up: the CouchDB image hands its data folder to 5984.
    s.up(&["--cht-version", "4.22.0"]).ok();
    assert_eq!(s.curl_https("/").0, "200");
    let data = s.dir().join("couchdb");
    assert_eq!(owner(&data), couchdb_uid, "CouchDB owns its data folder");
    assert_eq!(owner(&s.couch_wrote(&data)), couchdb_uid);
    couchdb_writes(&data.join("shard.couch"), "before", couchdb_uid);

    // A snapshot reads what CouchDB wrote; a restore puts it back as CouchDB's and leaves
    // nothing behind (the previous data is removed through the engine).
    s.cht
        .run(&["snapshot", "create", name, "--label", "before"])
        .ok();
    couchdb_writes(&data.join("shard.couch"), "after", couchdb_uid);
    couchdb_writes(&data.join("later.couch"), "later", couchdb_uid);
    let restored = s
        .cht
        .run(&["snapshot", "restore", name, "before", "--yes"])
        .ok();
    assert!(
        !restored.stderr.contains("not removed"),
        "the previous data went: {restored:#?}"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("shard.couch")).expect("read"),
        "before"
    );
    assert!(!data.join("later.couch").exists());
    assert_eq!(
        not_owned_by(&data, couchdb_uid),
        Vec::<String>::new(),
        "restored data is CouchDB's again"
    );
    let leftovers: Vec<String> = std::fs::read_dir(s.dir())
        .expect("read")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n != ".env")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(s.curl_https("/").0, "200");

    // A restore killed after its swap leaves the previous data aside, CouchDB's, which no
    // sweep by the user can remove: the next `up` removes it through the engine, and says so.
    let mut child = std::process::Command::new("true").spawn().expect("spawn");
    let dead = child.id();
    child.wait().expect("wait");
    let aside = s.dir().join(format!(".staging-restore-data-{dead}"));
    std::fs::create_dir(&aside).expect("mkdir");
    couchdb_writes(&aside.join("old.couch"), "old", couchdb_uid);
    std::os::unix::fs::chown(&aside, Some(couchdb_uid), Some(couchdb_uid)).expect("chown");
    s.cht.run(&["ls"]).ok();
    assert!(aside.exists(), "the user's own sweep cannot remove it");
    let again = s.up(&[]).ok();
    assert!(
        again.stderr.contains(&format!(
            "note: removed what an interrupted command left behind, owned by a container's user: {}",
            aside.display()
        )),
        "{again:#?}"
    );
    assert!(!aside.exists());

    // upgrade keeps the data; down keeps it too.
    s.cht
        .run(&["upgrade", name, "--cht-version", "5.2.0", "--timeout", "60"])
        .ok();
    assert_eq!(s.curl_https("/").0, "200");
    assert!(data.join("shard.couch").is_file());
    s.cmd("down", &[]).ok();
    assert!(data.join("shard.couch").is_file());

    // A destroy the engine cannot finish (its CouchDB image is gone) leaves a project that
    // `ls` lists and a second destroy finishes, once the image is back.
    let file = "compose/cht-couchdb.yml";
    let text = s.edit(file, "cht-couchdb:5.2.0", "cht-couchdb:gone");
    let failed = s.cmd("destroy", &["--yes"]);
    let line = failed.error_after_progress();
    assert!(
        line.contains(&format!(
            "a container wrote it as another user (uid {couchdb_uid})"
        )) && line.contains("sudo rm -rf"),
        "{line}"
    );
    let ls = s.cht.run(&["ls"]).ok();
    assert!(ls.stdout.contains(name), "{ls:#?}");
    std::fs::write(s.dir().join(file), text).expect("put back");
    s.cmd("destroy", &["--yes"]).ok();

    // adopt --copy-data reads a Docker Helper project's data, which CouchDB owns there too;
    // the copy is served, and destroyed like any other.
    let user_home = s.cht.scratch().join("user-home");
    let adoptee = crate::common::engine::unique("adoptee");
    let (http, https) = crate::common::engine::free_ports();
    let env_file = crate::common::helper_project(&user_home, &adoptee, http, https);
    let owner_of = |path: &std::path::Path, who: &str| {
        let done = std::process::Command::new("chown")
            .args(["-R", who])
            .arg(path)
            .status()
            .expect("chown");
        assert!(done.success());
    };
    owner_of(&user_home, &format!("{}:{}", user.uid, user.gid));
    let couch = user_home.join(format!(".medic/cht-docker/{adoptee}-dir/couch"));
    owner_of(&couch, &format!("{couchdb_uid}:{couchdb_uid}"));
    s.cht
        .run(&[
            "adopt",
            env_file.to_str().expect("utf8"),
            "--copy-data",
            "--tls",
            "local-ca",
        ])
        .ok();
    let copy = s.cht.project(&adoptee).join("couchdb");
    assert_eq!(
        std::fs::read_to_string(copy.join("helper-marker")).expect("copied"),
        "from the helper"
    );
    s.cht
        .run(&["up", &adoptee, "--pull", "never", "--timeout", "60"])
        .ok();
    assert_eq!(owner(&copy.join("helper-marker")), couchdb_uid);
    s.cht.run(&["destroy", &adoptee, "--yes"]).ok();
    assert!(
        couch.join("helper-marker").is_file(),
        "the helper's own data stays"
    );

    // Nothing of the projects is left, and everything left is the user's.
    assert!(!s.dir().exists());
    let home: Vec<String> = std::fs::read_dir(s.cht.home())
        .expect("read")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(home, ["ca"], "only the home's CA is left");
    assert_eq!(not_owned_by(&s.cht.home(), user.uid), Vec::<String>::new());
    assert!(s.all_containers().is_empty());
}

/// Runs the docker CLI with its configuration in `config`.
fn docker_cli(config: &std::path::Path, args: &[&str]) -> crate::common::Run {
    let out = std::process::Command::new("docker")
        .args(args)
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .output()
        .expect("docker CLI");
    crate::common::to_run(out)
}

#[test]
fn docker_contexts_choose_the_engine_as_the_docker_cli_does() {
    crate::common::engine::require_docker();
    let cht = ChtDev::new();
    // The engine's socket under another path, so only the context can lead there.
    let socket = cht.scratch().join("engine.sock");
    std::os::unix::fs::symlink(cht_dev::docker::endpoint::STANDARD_SOCKET, &socket).expect("link");
    contexts_journey(cht, socket, true);
}

/// Contexts made and chosen by the real docker CLI lead cht-dev to the engine at `socket`
/// (the one `cht` runs on), or to a missing one; `standard` says whether that engine is
/// also the one on the standard socket (the `default` context).
pub fn contexts_journey(cht: ChtDev, socket: std::path::PathBuf, standard: bool) {
    let config = cht.scratch().join("docker-config");
    std::fs::create_dir(&config).expect("mkdir");
    let host = format!("unix://{}", socket.display());
    let missing = format!("unix://{}", cht.scratch().join("missing.sock").display());
    // Contexts made and chosen by the real docker CLI.
    for (name, address) in [("here", &host), ("nowhere", &missing)] {
        let made = docker_cli(
            &config,
            &[
                "context",
                "create",
                name,
                "--docker",
                &format!("host={address}"),
            ],
        );
        assert_eq!(made.code, 0, "{made:#?}");
    }
    docker_cli(&config, &["context", "use", "here"]).ok();
    let cht = cht
        .env("DOCKER_CONFIG", &config.display().to_string())
        .env("DOCKER_HOST", "")
        .env("DOCKER_CONTEXT", "");

    // The CLI's current context.
    let doctor = cht.run(&["--json", "doctor"]);
    let json: serde_json::Value = serde_json::from_str(&doctor.stdout).expect("json");
    let engine = json["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "engine")
        .expect("engine check")
        .clone();
    assert_eq!(engine["verdict"], "ok", "{json}");
    let detail = engine["detail"].as_str().expect("detail");
    assert!(
        detail.starts_with(&format!(
            "{host} (the docker CLI's current context here) answers"
        )),
        "{detail}"
    );

    // A whole project through the context; the upgrade service mounts that engine's
    // socket, and its boot compose reaches the engine through it.
    let s = Stack::in_home("context", cht);
    let up = s.up(&[]).ok();
    assert_eq!(s.curl_https("/").0, "200");
    let name = s.name.as_str();
    let env = std::fs::read_to_string(s.dir().join(".env")).expect(".env");
    assert!(
        env.contains(&format!("CHT_DOCKER_SOCKET={}", socket.display())),
        "{env}"
    );
    assert!(
        up.stderr.contains(&format!(
            "note: the upgrade service now mounts {}, this engine's socket (CHT_DOCKER_SOCKET in .env)",
            socket.display()
        )),
        "{up:#?}"
    );
    let boot = s.wait_boots(1);
    assert!(boot.contains("startup: done (exit 0)"), "{boot}");
    let doctor = s.cht.run(&["doctor"]);
    assert!(
        doctor.stdout.contains(&format!(
            "the upgrade service mounts this engine's socket {}",
            socket.display()
        )),
        "{doctor:#?}"
    );

    // DOCKER_CONTEXT and --context over it, each leading to its own engine (here: none).
    let run = crate::common::to_run(
        s.cht
            .command()
            .args(["status", name])
            .env("DOCKER_CONTEXT", "nowhere")
            .output()
            .expect("run"),
    );
    let line = run.one_line_error();
    assert!(
        line.contains(&format!("cannot reach the Docker engine at {missing}")),
        "{line}"
    );
    let line = s
        .cht
        .run(&["--context", "nowhere", "status", name])
        .one_line_error();
    assert!(line.contains(&missing), "{line}");
    let line = s
        .cht
        .run(&["--context", "gone", "status", name])
        .one_line_error();
    assert!(
        line.starts_with("error: docker context gone cannot be used:")
            && line.contains("docker context ls"),
        "{line}"
    );
    if !standard {
        s.cmd("destroy", &["--yes"]).ok();
        return;
    }
    // `--context default` is the engine without a context: the standard socket, which the
    // upgrade service mounts again.
    s.cht.run(&["--context", "default", "status", name]).ok();
    let again = s
        .cht
        .run(&["--context", "default", "up", name, "--pull", "never"])
        .ok();
    assert!(
        again
            .stderr
            .contains("note: the upgrade service now mounts /var/run/docker.sock"),
        "{again:#?}"
    );
    s.cmd("destroy", &["--yes"]).ok();
}
