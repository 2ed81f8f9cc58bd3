//! Fault, data-safety and security tests against the real engine: each ends with the
//! stack healthy again or a clear error, and nothing lost.
//!
//! On the stand-in images: the faults need their images (`cht-crash`, an upgrade service
//! without compose, services that stop at once), and what is tested is cht-dev's handling
//! of the engine and the files, not CouchDB.

use std::net::TcpListener;
use std::time::Duration;

use crate::common::engine::{REGISTRY, Stack, docker_names};
use crate::common::mode;

/// Runs `up` for an existing project with the stand-in images.
fn up(s: &Stack) -> crate::common::Run {
    s.cht
        .run(&["up", &s.name, "--pull", "never", "--timeout", "60"])
}

/// Removes `COUCHDB_PASSWORD` from the project's `.env`; returns the file as it was.
fn drop_password(s: &Stack) -> String {
    let path = s.dir().join(".env");
    let text = std::fs::read_to_string(&path).expect("read .env");
    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("COUCHDB_PASSWORD="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, without).expect("write .env");
    text
}

/// Container ids of the project by name, to tell recreated containers from kept ones.
fn ids(s: &Stack) -> Vec<String> {
    let mut out = docker_names(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=org.cht-dev.project={}", s.name),
        "--format",
        "{{.Names}} {{.ID}}",
    ]);
    out.sort();
    out
}

#[test]
fn a_port_taken_between_init_and_up_is_named_with_a_fix_and_up_works_once_freed() {
    let s = Stack::standin("port");
    s.init();
    let held = TcpListener::bind(("0.0.0.0", s.https)).expect("take the https port");
    let line = up(&s).one_line_error();
    assert!(
        line.contains(&format!("port {} (NGINX_HTTPS_PORT) is busy", s.https)),
        "{line}"
    );
    assert!(
        line.contains("set NGINX_HTTPS_PORT in") && line.contains(".env"),
        "{line}"
    );
    assert!(s.all_containers().is_empty(), "nothing was created");
    drop(held);
    up(&s).ok();
    assert_eq!(s.curl_https("/").0, "200");
}

#[test]
fn one_missing_image_is_named_and_nothing_runs() {
    let s = Stack::standin("img");
    s.init();
    let missing = format!("{REGISTRY}/cht-sentinel:does-not-exist");
    s.edit(
        "compose/cht-core.yml",
        &format!("{REGISTRY}/cht-sentinel:5.2.0"),
        &missing,
    );
    let line = up(&s).one_line_error();
    assert!(line.contains(&missing), "{line}");
    assert!(
        !line.contains("cht-api"),
        "only missing images are named: {line}"
    );
    assert!(s.all_containers().is_empty());
}

#[test]
fn a_missing_engine_socket_is_named_and_never_made_a_folder() {
    // A mount of something outside the project that is not there (on a Podman host, say,
    // a hand-written path to /var/run/docker.sock).
    let s = Stack::standin("sock");
    s.init();
    let socket = s.cht.scratch().join("no-engine/docker.sock");
    let text = s.edit(
        "upgrade-service.yml",
        "${CHT_DOCKER_SOCKET:-/var/run/docker.sock}:",
        &format!("{}:", socket.display()),
    );
    let line = up(&s).one_line_error();
    assert_eq!(
        line,
        format!(
            "error: service cht-upgrade-service mounts {} at /var/run/docker.sock, which does not exist: start what makes it (for a socket, its engine) or change the mount in the compose file",
            socket.display()
        )
    );
    assert!(!socket.exists() && !socket.parent().expect("parent").exists());
    assert!(s.all_containers().is_empty(), "nothing was created");
    let doctor = s.cht.run(&["doctor"]);
    assert_ne!(doctor.code, 0, "{doctor:#?}");
    assert!(
        doctor.stdout.lines().any(|l| l.starts_with("FAIL  mounts ")
            && l.contains(&format!(
                "mounts {} at /var/run/docker.sock, which does not exist",
                socket.display()
            ))),
        "{doctor:#?}"
    );
    std::fs::write(s.dir().join("upgrade-service.yml"), text).expect("put it back");
    up(&s).ok();
}

#[test]
fn a_container_removed_by_hand_is_the_only_one_recreated() {
    let s = Stack::standin("rm");
    s.up(&[]).ok();
    // Let the upgrade service's boot-time compose run end first: it too would recreate
    // a container removed by hand.
    s.wait_boots(1);
    let before = ids(&s);
    let api = format!("{}-api-1", s.name);
    let rm = std::process::Command::new("docker")
        .args(["rm", "-f", &api])
        .output()
        .expect("docker rm");
    assert!(rm.status.success());
    let run = up(&s).ok();
    let created: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("created container"))
        .collect();
    assert_eq!(
        created,
        [format!("created container {api}").as_str()],
        "{run:#?}"
    );
    let after = ids(&s);
    assert_eq!(before.len(), after.len());
    let changed: Vec<_> = after.iter().filter(|a| !before.contains(a)).collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].starts_with(&api));
    assert_eq!(s.curl_https("/").0, "200");
}

#[test]
fn two_ups_at_once_never_make_two_stacks() {
    let s = Stack::standin("twice");
    let spawn = || s.cht.command().args(s.up_args(&[])).output();
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(spawn);
        let b = scope.spawn(spawn);
        (
            a.join().expect("a").expect("run a"),
            b.join().expect("b").expect("run b"),
        )
    });
    let runs = [crate::common::to_run(a), crate::common::to_run(b)];
    let ok = runs.iter().filter(|r| r.code == 0).count();
    assert!(ok >= 1, "{runs:#?}");
    for r in runs.iter().filter(|r| r.code != 0) {
        let line = r.one_line_error();
        assert!(line.contains("is busy"), "the loser says busy: {line}");
    }
    assert_eq!(s.all_containers().len(), 7, "one container per service");
    assert_eq!(s.curl_https("/").0, "200");
}

#[test]
fn a_dropped_password_is_named_and_nothing_starts() {
    let s = Stack::standin("nopw");
    s.init();
    drop_password(&s);
    let mut cmd = s.cht.command();
    cmd.env_remove("COUCHDB_PASSWORD")
        .args(["up", &s.name, "--pull", "never"]);
    let run = crate::common::to_run(cmd.output().expect("run"));
    let line = run.one_line_error();
    assert!(line.contains("COUCHDB_PASSWORD must be set"), "{line}");
    assert!(
        line.contains("required variable COUCHDB_PASSWORD"),
        "{line}"
    );
    assert!(s.all_containers().is_empty());
}

#[test]
fn couchdb_data_and_edited_files_survive_every_command_but_destroy() {
    let s = Stack::standin("safe");
    s.up(&[]).ok();
    let dir = s.dir();
    let marker = dir.join("couchdb/user-marker");
    std::fs::write(&marker, "precious").expect("marker");
    // A user's edit to a generated file.
    let core = dir.join("compose/cht-core.yml");
    let edited = std::fs::read_to_string(&core).expect("read").replace(
        "max-file: \"${LOG_MAX_FILES:-20}\"",
        "max-file: \"${LOG_MAX_FILES:-5}\"",
    );
    std::fs::write(&core, &edited).expect("write");
    let failing: Vec<Vec<String>> = vec![
        vec!["init".into(), s.name.clone()],
        vec![
            "init".into(),
            s.name.clone(),
            "--cht-version".into(),
            "4.22.0".into(),
        ],
        vec!["destroy".into(), s.name.clone()],
        vec![
            "up".into(),
            s.name.clone(),
            "--pull".into(),
            "never".into(),
            "--cht-version".into(),
            "9.9.9".into(),
        ],
        vec!["logs".into(), s.name.clone(), "no-such-service".into()],
    ];
    for args in &failing {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = s.cht.run(&args);
        assert_ne!(run.code, 0, "{args:?} should fail: {run:#?}");
        assert_eq!(
            std::fs::read_to_string(&marker).expect("marker"),
            "precious",
            "{args:?}"
        );
        assert_eq!(
            std::fs::read_to_string(&core).expect("core"),
            edited,
            "{args:?} touched an edited file"
        );
    }
    for cmd in ["stop", "down", "up", "down"] {
        let run = if cmd == "up" { up(&s) } else { s.cmd(cmd, &[]) };
        assert_eq!(run.code, 0, "{cmd}: {run:#?}");
        assert_eq!(
            std::fs::read_to_string(&marker).expect("marker"),
            "precious",
            "{cmd}"
        );
        assert_eq!(
            std::fs::read_to_string(&core).expect("core"),
            edited,
            "{cmd} touched an edited file"
        );
    }
    s.cmd("destroy", &["--yes"]).ok();
    assert!(!marker.exists());
}

#[test]
fn secrets_stay_private_and_only_nginx_is_published() {
    let s = Stack::standin("sec");
    let run = s.up(&[]).ok();
    let dir = s.dir();
    let home = s.cht.home();
    assert_eq!(mode(&dir.join(".env")), 0o600);
    assert_eq!(mode(&dir.join("certs/key.pem")), 0o600);
    assert_eq!(mode(&home.join("ca/ca-key.pem")), 0o600);
    let env = std::fs::read_to_string(dir.join(".env")).expect("env");
    let password = env
        .lines()
        .find_map(|l| l.strip_prefix("COUCHDB_PASSWORD="))
        .expect("password")
        .to_string();
    assert!(password.len() >= 20);
    // The password is shown only in the final summary (the login, and the cht-conf
    // command that carries it), and nowhere in progress output.
    let showing: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains(&password))
        .map(|l| l.trim_start().split(':').next().unwrap_or_default())
        .collect();
    assert_eq!(showing, ["login", "cht-conf"], "{run:#?}");
    assert!(!run.stderr.contains(&password), "{run:#?}");
    let json: serde_json::Value =
        serde_json::from_str(&s.up(&["--json"]).ok().stdout).expect("json");
    assert_eq!(json["login"]["password"], password);

    for name in s.all_containers() {
        let inspect = std::process::Command::new("docker")
            .args([
                "inspect",
                "--format",
                "{{json .Mounts}}|{{json .HostConfig.PortBindings}}|{{json .Config.Env}}",
                &name,
            ])
            .output()
            .expect("inspect");
        let text = String::from_utf8_lossy(&inspect.stdout).into_owned();
        let mut parts = text.trim().splitn(3, '|');
        let (mounts, ports, env) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        assert!(
            !mounts.contains(&home.join("ca").display().to_string()),
            "{name} mounts the CA: {mounts}"
        );
        assert!(!mounts.contains("ca-key.pem"), "{name}: {mounts}");
        let publishes = ports.contains("HostPort");
        assert_eq!(
            publishes,
            name.ends_with("-nginx-1"),
            "{name} ports: {ports}"
        );
        if name.ends_with("-nginx-1") || name.ends_with("-nouveau-1") {
            assert!(
                !env.contains(&password),
                "{name} has the CouchDB password in its env"
            );
        }
    }
    // CA constrained to path length 0 (checked in depth by the unit tests); random credentials.
    let other = Stack::standin("sec2");
    other.cht.run(&["init", &other.name]).ok();
    let other_env = std::fs::read_to_string(other.dir().join(".env")).expect("env");
    assert!(!other_env.contains(&password));
    std::thread::sleep(Duration::from_millis(10));
}

#[test]
fn up_interrupted_at_any_moment_is_always_carried_on_by_the_next_up() {
    let s = Stack::standin("again");
    s.init();
    // Interrupt at a different moment each time: before, during and after the starts.
    for (i, delay) in [150u64, 400, 700, 1000, 1300, 1600].into_iter().enumerate() {
        let child = s.spawn_up();
        std::thread::sleep(Duration::from_millis(delay));
        let (out, _) = crate::common::interrupt(child);
        // 130 with the one-line message whenever it lands, 0 if `up` had finished. Only an
        // interrupt before the process reaches its entry point (a loaded machine, the first
        // round) can still end it by SIGINT, and then it has printed nothing.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let before_main = std::os::unix::process::ExitStatusExt::signal(&out.status) == Some(2)
            && out.stdout.is_empty()
            && stderr.is_empty();
        assert!(
            out.status.code() == Some(0)
                || (out.status.code() == Some(130) && stderr.contains("interrupted"))
                || before_main,
            "round {i}: {:?} {stderr}",
            out.status,
        );
        let next = up(&s);
        assert_eq!(
            next.code, 0,
            "round {i} (interrupted after {delay} ms): {next:#?}"
        );
        s.cmd("down", &[]).ok();
    }
    up(&s).ok();
    assert_eq!(s.curl_https("/").0, "200");
}

#[test]
fn ctrl_c_before_a_command_listens_ends_it_with_130_and_the_one_line_message() {
    let s = Stack::standin("early");
    s.init();
    // Held after settings resolve, before the repair and before `up` listens for Ctrl-C.
    let (child, _go) = s.cht.spawn_held_at("started", &s.up_args(&[]));
    let (out, took) = crate::common::interrupt(child);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{:?} {stderr}", out.status);
    assert_eq!(
        stderr.trim_end(),
        "error: interrupted; run the same command again to carry on"
    );
    assert!(took < Duration::from_secs(5), "ended {took:?} after Ctrl-C");
    let next = up(&s);
    assert_eq!(next.code, 0, "{next:#?}");
    assert_eq!(s.curl_https("/").0, "200");
}

#[test]
fn an_early_ctrl_c_under_json_prints_the_error_document_too() {
    // No engine needed: `versions` held before the repair, where no command listens yet.
    let cht = crate::common::ChtDev::new();
    let args = ["--json", "versions"].map(String::from);
    let (child, _go) = cht.spawn_held_at("started", &args);
    let (out, _) = crate::common::interrupt(child);
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    let document: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(
        document,
        serde_json::json!({
            "error": "interrupted; run the same command again to carry on",
            "exit_code": 130,
        })
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "error: interrupted; run the same command again to carry on"
    );
}

/// Whether a container is running.
fn running(container: &str) -> bool {
    docker_names(&["inspect", "-f", "{{.State.Running}}", container]) == ["true"]
}

#[test]
fn a_failed_or_interrupted_upgrade_leaves_the_files_and_containers_as_they_were() {
    let s = Stack::standin("upgfail");
    s.up(&["--cht-version", "4.22.0"]).ok();
    // A user's edit (so the file gets a backup) and a legacy copy in compose/.
    let core = s.dir().join("compose/cht-core.yml");
    let edited = std::fs::read_to_string(&core).expect("read") + "# my note\n";
    std::fs::write(&core, &edited).expect("write");
    let legacy = s.dir().join("compose/cht-core.yml.bak-1700000000");
    std::fs::write(&legacy, "services: {}\n").expect("write");
    let upgrade_args = [
        "upgrade",
        s.name.as_str(),
        "--cht-version",
        "5.2.0",
        "--pull",
        "never",
        "--timeout",
        "60",
    ];

    // The engine unreachable: an error, and not one file moved, kept or written.
    let before = s.cht.tree();
    let mut cmd = s.cht.command();
    cmd.env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(upgrade_args);
    let line = crate::common::to_run(cmd.output().expect("run")).one_line_error();
    assert!(line.contains("Docker"), "{line}");
    assert_eq!(s.cht.tree(), before);
    std::fs::remove_file(&legacy).expect("rm");

    // Files that would not load (a setting gone): refused before anything is touched,
    // the upgrade service included.
    let ids_before = ids(&s);
    let env_text = drop_password(&s);
    let before = s.cht.tree();
    let mut cmd = s.cht.command();
    cmd.env_remove("COUCHDB_PASSWORD").args(upgrade_args);
    let line = crate::common::to_run(cmd.output().expect("run")).one_line_error();
    assert!(line.contains("COUCHDB_PASSWORD"), "{line}");
    assert_eq!(s.cht.tree(), before);
    assert_eq!(ids(&s), ids_before);
    assert!(running(&s.upgrade_container()));
    std::fs::write(s.dir().join(".env"), &env_text).expect("write");

    // Ctrl-C once the new files are written: the previous files come back, and the
    // backup of the edited file goes with them.
    let child = s
        .cht
        .command()
        .args(upgrade_args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn upgrade");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&core)
        .expect("read")
        .contains("cht-api:5.2.0")
    {
        assert!(std::time::Instant::now() < deadline, "upgrade never wrote");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (out, _) = crate::common::interrupt(child);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&core).expect("read"), edited);
    assert!(!s.dir().join("backups").exists() || names_in(&s.dir().join("backups")).is_empty());
    up(&s).ok();
    assert_eq!(s.curl_https("/").0, "200");
    let ls: serde_json::Value =
        serde_json::from_str(&s.cht.run(&["--json", "ls"]).ok().stdout).expect("json");
    assert_eq!(ls[0]["version"], "4.22.0");
}

/// The entries of a folder, sorted.
fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_container_name_held_outside_the_project_is_named_after_a_short_wait() {
    let s = Stack::standin("foreign");
    s.init();
    // A container of no compose project holding nginx's name: never the project's.
    let holder = format!("{}-nginx-1", s.name);
    let made = std::process::Command::new("docker")
        .args([
            "create",
            "--name",
            &holder,
            &format!("{REGISTRY}/cht-nginx:5.2.0"),
        ])
        .output()
        .expect("docker create");
    assert!(made.status.success(), "{made:?}");
    let run = up(&s);
    let _ = std::process::Command::new("docker")
        .args(["rm", "-f", &holder])
        .output();
    let line = run.error_after_progress();
    assert!(
        line.contains("taken by a container outside this project") && line.contains(&holder),
        "{line}"
    );
}

#[test]
fn down_names_a_container_outside_the_project_that_holds_its_network() {
    let s = Stack::standin("netheld");
    s.up(&[]).ok();
    let foreign = crate::common::engine::unique("netheld-foreign");
    let run = std::process::Command::new("docker")
        .args(["run", "-d", "--name", &foreign, "--network"])
        .arg(format!("{}-cht-net", s.name))
        .args(["--entrypoint", "sleep", "cht-dev-standin-base:2", "600"])
        .output()
        .expect("docker run");
    assert!(run.status.success(), "{run:?}");
    let line = s.cmd("down", &[]).error_after_progress();
    assert!(
        line.contains("still attached") && line.contains(&foreign) && line.contains("docker rm -f"),
        "{line}"
    );
    let removed = std::process::Command::new("docker")
        .args(["rm", "-f", &foreign])
        .output()
        .expect("docker rm");
    assert!(removed.status.success());
    s.cmd("down", &[]).ok();
    assert!(!s.network_exists());
}
