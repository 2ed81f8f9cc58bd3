//! The core set of engine tests, run against each second engine of `scripts/engines.sh`
//! (started by `scripts/test.sh`, each in its own namespaces): what CHT developers run
//! beside Debian's Docker 20.10.

use std::path::Path;

use crate::common::ChtDev;
use crate::common::engine::{SecondEngine, Stack, UPSTREAM};
use crate::platforms::{COUCHDB_UID, contexts_journey, normal_user_journey};

/// up, HTTPS through nginx, up again keeping every container, status, logs, the upgrade
/// service's boot keeping every container, a snapshot round trip, stop, down, destroy.
/// On Podman, `up` fits the files to it once (saying so) and runs two more containers,
/// nginx-dns and haproxy-dns. On the upstream-built images, a document written through HTTPS (real nginx
/// behind nginx-dns on Podman, HAProxy, CouchDB) is kept through all of it.
fn core_set(engine: &SecondEngine, product: &str, s: Stack) {
    let podman = product.starts_with("Podman");
    let real = s.registry == UPSTREAM;
    let name = s.name.as_str();
    let first = s.up(&["--timings"]).ok();
    assert_eq!(
        first.stderr.matches("this engine is Podman").count(),
        usize::from(podman),
        "{first:#?}"
    );
    // On Podman, readiness waits for nginx-dns and haproxy-dns to listen before it asks
    // nginx anything.
    assert_eq!(
        first
            .stderr
            .contains("wait for nginx-dns: answering 127.0.0.11:53")
            && first
                .stderr
                .contains("wait for haproxy-dns: answering 127.0.0.11:53"),
        podman,
        "{first:#?}"
    );
    if podman {
        let env = std::fs::read_to_string(s.dir().join(".env")).expect(".env");
        assert!(
            env.contains("CHT_LOG_DRIVER=json-file") && env.contains("COMPOSE_PROFILES=podman"),
            "{env}"
        );
    }
    assert_eq!(s.curl_https("/").0, "200");
    assert_eq!(s.curl_http_status(), "301");
    if real {
        s.put_doc("medic", "core", 1);
    }
    let doctor = s.cht.run(&["doctor"]);
    assert!(
        doctor
            .stdout
            .contains(&format!("{} (DOCKER_HOST) answers: {product}", engine.host)),
        "{doctor:#?}"
    );
    assert_eq!(
        doctor.stdout.contains("fits Podman: log driver json-file"),
        podman,
        "{doctor:#?}"
    );

    let ids = s.ids();
    assert_eq!(ids.len(), 6 + 2 * usize::from(podman), "{ids:?}");
    let again = s.up(&[]).ok();
    assert!(
        !again.stderr.contains("this engine is"),
        "said once: {again:#?}"
    );
    assert_eq!(s.ids(), ids, "up again keeps every container");
    let status = s.cmd("status", &["--json"]).ok();
    let json: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
    assert_eq!(json["state"], "running", "{json}");
    let logs = s.cmd("logs", &["couchdb", "--tail", "5"]).ok();
    assert!(logs.code == 0, "{logs:#?}");
    let boot = s.wait_boots(1);
    assert!(boot.contains("startup: done (exit 0)"), "{boot}");
    assert_eq!(s.ids(), ids, "the upgrade service's boot kept them: {boot}");

    let data = s.dir().join("couchdb");
    std::fs::write(data.join("keep-me"), "data").expect("marker");
    let made = s
        .cht
        .run(&["snapshot", "create", name, "--label", "core"])
        .ok();
    // Rootless engines cannot freeze containers on cgroup v1: they stop them instead.
    let cgroup_v1 = !Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let held = if doctor.stdout.contains("rootless") && cgroup_v1 {
        "stopped for"
    } else {
        "paused for"
    };
    assert!(made.stdout.contains(held), "{made:#?}");
    std::fs::remove_file(data.join("keep-me")).expect("rm");
    s.cht
        .run(&["snapshot", "restore", name, "core", "--yes"])
        .ok();
    assert!(data.join("keep-me").is_file());
    assert_eq!(s.curl_https("/").0, "200");
    if real {
        assert_eq!(s.get_doc("medic", "core"), Some(1), "after the restore");
    }

    s.cmd("stop", &[]).ok();
    let status = s.cmd("status", &["--json"]).ok();
    let json: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
    assert_eq!(json["state"], "stopped", "{json}");
    s.up(&[]).ok();
    assert_eq!(s.curl_https("/").0, "200");
    if real {
        assert_eq!(s.get_doc("medic", "core"), Some(1), "after stop and up");
    }
    s.cmd("down", &[]).ok();
    assert!(s.all_containers().is_empty());
    assert!(!s.volumes().is_empty(), "down keeps volumes");
    assert!(data.join("keep-me").is_file(), "down keeps data");
    s.cmd("destroy", &["--yes"]).ok();
    assert!(!s.dir().exists());
    assert!(s.volumes().is_empty());
    assert!(!s.network_exists());
}

/// The core set on `name`, a rootful engine, with the upstream-built images.
fn upstream_core_set(name: &'static str, product: &str) {
    let engine = SecondEngine::require(name);
    let s = Stack::in_home("core", ChtDev::new().on_engine(&engine));
    core_set(&engine, product, s);
}

/// The core set on a rootless engine, for its user, with the stand-in images (see
/// [`SecondEngine::require_standins`]).
fn rootless_core_set(name: &'static str, product: &str) {
    let engine = SecondEngine::require_standins(name);
    let s = Stack::in_home("core", ChtDev::as_test_user().on_engine(&engine));
    core_set(&engine, product, s);
}

#[test]
fn docker28_runs_the_core_set() {
    upstream_core_set("docker28", "Docker 28.");
}

#[test]
fn docker28_serves_a_normal_user_with_container_owned_data() {
    let engine = SecondEngine::require("docker28");
    normal_user_journey(ChtDev::as_test_user().on_engine(&engine), COUCHDB_UID);
}

#[test]
fn docker28_serves_a_phone_project_for_a_normal_user() {
    let engine = SecondEngine::require("docker28");
    crate::phones::phone_round(ChtDev::as_test_user().on_engine(&engine), Some(&engine));
}

#[test]
fn rootless_podman_serves_a_phone_project_for_its_user() {
    let engine = SecondEngine::require_standins("podman-rootless");
    crate::phones::phone_round(ChtDev::as_test_user().on_engine(&engine), Some(&engine));
}

#[test]
fn docker28_is_reached_through_a_docker_context() {
    let engine = SecondEngine::require("docker28");
    let socket = engine
        .host
        .strip_prefix("unix://")
        .expect("a unix socket")
        .into();
    contexts_journey(ChtDev::new().on_engine(&engine), socket, false);
}

#[test]
fn podman_runs_the_core_set() {
    upstream_core_set("podman", "Podman 5.");
}

#[test]
fn podman_is_named_by_doctor() {
    let engine = SecondEngine::require("podman");
    let doctor = ChtDev::new().on_engine(&engine).run(&["doctor"]);
    let line = doctor
        .stdout
        .lines()
        .find(|l| l.contains(" engine "))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.starts_with("ok ")
            && line.contains(&format!("{} (DOCKER_HOST) answers: Podman 5.", engine.host))
            && line.ends_with(", API 1.41, rootful"),
        "{doctor:#?}"
    );
}

#[test]
fn podman_serves_a_normal_user_with_container_owned_data() {
    let engine = SecondEngine::require("podman");
    normal_user_journey(ChtDev::as_test_user().on_engine(&engine), COUCHDB_UID);
}

/// Where rootless Podman's user namespace puts CouchDB's 5984: the user's subordinate ids
/// start at 200000 (`scripts/engines.sh`) and hold container uids from 1 up.
const ROOTLESS_COUCHDB_UID: u32 = 200_000 + COUCHDB_UID - 1;

#[test]
fn rootless_podman_runs_the_core_set_for_its_user() {
    rootless_core_set("podman-rootless", "Podman 5.");
}

/// A rootless engine's round for its user: `doctor` names it (`product`) and says it is
/// rootless, then the normal-user round with CouchDB's data where the user namespace puts
/// it. Returns the engine, for checks of its own.
fn rootless_round(name: &'static str, product: &str) -> SecondEngine {
    let engine = SecondEngine::require_standins(name);
    let doctor = ChtDev::as_test_user().on_engine(&engine).run(&["doctor"]);
    assert!(
        doctor
            .stdout
            .contains(&format!("{} (DOCKER_HOST) answers: {product}", engine.host))
            && doctor.stdout.contains(", rootless"),
        "{doctor:#?}"
    );
    normal_user_journey(
        ChtDev::as_test_user().on_engine(&engine),
        ROOTLESS_COUCHDB_UID,
    );
    engine
}

#[test]
fn rootless_podman_serves_its_user_with_container_owned_data() {
    rootless_round("podman-rootless", "Podman 5.");
}

#[test]
fn rootless_docker_runs_the_core_set_for_its_user() {
    rootless_core_set("docker28-rootless", "Docker 28.");
}

#[test]
fn rootless_docker_serves_its_user_with_container_owned_data() {
    let engine = rootless_round("docker28-rootless", "Docker 28.");

    // A port below 1024 is refused before anything is made, with the reason and the fix.
    let cht = ChtDev::as_test_user().on_engine(&engine);
    cht.run(&[
        "init",
        "low",
        "--image-registry",
        crate::common::engine::REGISTRY,
        "--https-port",
        "443",
        "--http-port",
        "18099",
    ])
    .ok();
    let up = cht.run(&["up", "low", "--pull", "never"]);
    let line = up.error_after_progress();
    assert!(
        up.code == 1
            && line.contains(
                "NGINX_HTTPS_PORT is 443, below 1024, which a rootless engine cannot publish"
            )
            && line.contains("sudo sysctl net.ipv4.ip_unprivileged_port_start=443"),
        "{up:#?}"
    );
    let made = crate::common::engine::lines_of(cht.docker().args([
        "ps",
        "-aq",
        "--filter",
        "label=com.docker.compose.project=low",
    ]));
    assert!(made.is_empty(), "{made:?}");
    cht.run(&["destroy", "low", "--yes"]).ok();
}

#[test]
fn docker28_restarting_in_the_middle_of_a_snapshot_is_named_and_the_next_up_brings_all_back() {
    let engine = SecondEngine::require("docker28");
    let s = Stack::in_home("restart", ChtDev::new().on_engine(&engine));
    s.up(&[]).ok();
    let data = s.dir().join("couchdb");
    std::fs::write(data.join("restart-marker"), "kept").expect("marker");
    // Held once its first pass is done (the fault-hooks feature), while the engine goes
    // down; it goes on to pause the services, and the engine comes back meanwhile.
    let args = ["snapshot", "create", &s.name, "--label", "cut"].map(String::from);
    let (child, go) = s.cht.spawn_held_at("first-pass-done", &args);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let engines = |action: &str| {
        let run = crate::common::run_tool(
            Path::new("/bin/bash"),
            &["scripts/engines.sh", action, "docker28"],
            root,
        );
        assert_eq!(run.code, 0, "engines.sh {action}: {run:#?}");
    };
    engines("down");
    std::fs::write(&go, "").expect("go");
    std::thread::sleep(std::time::Duration::from_millis(300));
    engines("up");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let last = stderr.lines().last().unwrap_or_default().to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        last.starts_with("error: ") && last.contains(&engine.host),
        "the error names the engine: {stderr}"
    );
    // The next command repairs what the snapshot held, and `up` brings the stack back.
    let status = s.cmd("status", &["--json"]);
    assert_eq!(status.code, 0, "{status:#?}");
    s.up(&[]).ok();
    assert_eq!(s.curl_https("/").0, "200");
    assert_eq!(
        std::fs::read_to_string(data.join("restart-marker")).expect("marker"),
        "kept"
    );
    crate::common::assert_left_nothing(&s.cht.home(), "after the restart");
    assert!(
        !s.dir().join("snapshots/cut.tar.zst").exists(),
        "no torn archive"
    );
}

/// Each engine's own answers to two states a killed command leaves and the next one meets:
/// unpausing a container that is not paused (Docker 20.10, Docker 28 and Podman answer 500
/// with words) is done, and removing a network a container is on is "in use"
/// (Docker 403 "active endpoints", Podman its own words), which `down` reads to tell a
/// network held by endpoints from any other failure; and the network and its container
/// stay whole and removable (Podman removes a network asked by its full id even with a
/// container on it, leaving a container it cannot remove).
fn engine_answers_are_read(host: &str, docker: impl Fn() -> std::process::Command) {
    use cht_dev::docker::Engine;
    use cht_dev::docker::endpoint::{Endpoint, Source};
    use cht_dev::error::EngineFailure;

    let name = format!("answers{}", std::process::id());
    let network = format!("{name}-net");
    let cli = |args: &[&str]| {
        let out = docker().args(args).output().expect("docker");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    };
    let image = format!("{}/cht-api:5.2.0", crate::common::engine::REGISTRY);
    let made = cli(&["network", "create", &network]);
    assert!(made.0, "network create on {host}: {made:?}");
    let run = cli(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        &network,
        "--entrypoint",
        "/bin/sleep",
        &image,
        "600",
    ]);
    assert!(run.0, "run on {host}: {run:?}");
    let id = run.1.clone();
    let state = || cli(&["inspect", "--format", "{{.State.Status}}", &name]).1;

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let outcome = runtime.block_on(async {
        let endpoint = Endpoint {
            host: host.to_string(),
            source: Source::DockerHost,
        };
        let engine = Engine::connect_to(&endpoint, false).await.expect("connect");
        let not_paused = engine.unpause(&id, &name).await;
        engine.pause(&id, &name).await.expect("pause");
        let paused = state();
        let thawed = engine.unpause(&id, &name).await;
        let removal = engine.remove_network(&network).await;
        (not_paused, paused, thawed, removal)
    });
    let after = state();
    let still = cli(&["network", "inspect", "--format", "{{.Name}}", &network]);
    let removed = cli(&["rm", "-f", &name]);
    let network_removed = cli(&["network", "rm", &network]);
    let (not_paused, paused, thawed, removal) = outcome;
    assert!(
        not_paused.is_ok(),
        "{host}: unpausing a running container: {not_paused:?}"
    );
    assert_eq!(paused, "paused", "{host}: pause");
    assert!(thawed.is_ok(), "{host}: unpause: {thawed:?}");
    assert_eq!(after, "running", "{host}: after unpause");
    match removal {
        Err(e) => assert_eq!(
            e.engine_kind(),
            Some(EngineFailure::InUse),
            "{host}: removing a network in use: {e}"
        ),
        Ok(()) => panic!("{host}: a network with a container on it was removed"),
    }
    assert!(still.0, "{host}: the network in use stays: {still:?}");
    assert!(
        removed.0,
        "{host}: its container can still be removed: {removed:?}"
    );
    assert!(
        network_removed.0,
        "{host}: then the network: {network_removed:?}"
    );
}

#[test]
fn engine_answers_are_read_on_docker_20_10_docker28_and_podman() {
    crate::common::engine::require_docker();
    crate::common::engine::standin_images();
    engine_answers_are_read("unix:///var/run/docker.sock", || {
        let mut docker = std::process::Command::new("docker");
        docker.env("DOCKER_HOST", "unix:///var/run/docker.sock");
        docker
    });
    for name in ["docker28", "podman"] {
        let engine = SecondEngine::require(name);
        engine_answers_are_read(&engine.host, || engine.docker());
    }
}
