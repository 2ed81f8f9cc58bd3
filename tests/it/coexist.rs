//! One stack, three owners: cht-dev, Docker Compose v2 on the host, and the CHT upgrade
//! service, which runs compose on the project's files at every boot. The stand-in upgrade
//! service carries a real compose (trixie's 2.26.x) and does at boot what the real one's
//! `startUp` does; the host side uses sid's 2.40.x, whose hashes differ.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::engine::{REGISTRY, Stack, docker_names};
use crate::common::{HOST_SUITE, STANDIN_SUITE, compose_v2, run_tool, tool};

/// The names in a folder, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The files in a project's `compose/` folder, sorted.
fn compose_folder(s: &Stack) -> Vec<String> {
    names_in(&s.dir().join("compose"))
}

/// The boot runs in an upgrade service's log: each from "startup: begin" to its end.
fn boots(logs: &str) -> Vec<String> {
    logs.split("startup: begin")
        .skip(1)
        .map(str::to_string)
        .collect()
}

/// Restarts the upgrade service (a reboot, as far as it is concerned) and returns the
/// output of the boot-time compose run that follows.
fn reboot_upgrade_service(s: &Stack) -> String {
    let done = s.upgrade_logs().matches("startup: done").count();
    let restart = Command::new("docker")
        .args(["restart", "-t", "5", &s.upgrade_container()])
        .output()
        .expect("docker restart");
    assert!(restart.status.success(), "{restart:?}");
    let logs = s.wait_boots(done + 1);
    boots(&logs).pop().expect("a boot")
}

/// The status code of one HTTPS request through nginx, trusting only the home CA
/// ("000" when the connection fails).
fn https_status(s: &Stack) -> String {
    let curl = tool("curl", "apt-get install curl");
    let url = format!("https://localhost:{}/", s.https);
    run_tool(
        &curl,
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
            "--cacert",
            &s.ca(),
            &url,
        ],
        Path::new("/"),
    )
    .stdout
}

/// The images the project's CHT containers run, sorted.
fn cht_images(s: &Stack) -> Vec<String> {
    docker_names(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=com.docker.compose.project={}", s.name),
        "--format",
        "{{.Image}}",
    ])
}

/// Writes the upstream-shaped 5.x files (no cht-dev marker) into the project's
/// `compose/`, as the upgrade service does on an in-app upgrade.
fn write_upstream_files(s: &Stack, tag: &str) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upstream-5.x");
    for file in ["cht-core.yml", "cht-couchdb.yml"] {
        let text = std::fs::read_to_string(fixtures.join(file)).expect("fixture");
        let text = text.replace("@REGISTRY@", s.registry).replace("@TAG@", tag);
        let target = s.dir().join("compose").join(file);
        let tmp = s.dir().join("compose").join(format!(".{file}.tmp"));
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, &target).expect("rename");
    }
}

#[test]
fn the_upgrade_services_boot_keeps_every_container_and_https_never_drops() {
    let s = Stack::new("boot");
    s.up(&[]).ok();
    // From the moment `up` returns until the upgrade service's boot-time compose run is
    // over (and a moment more), every HTTPS request must succeed.
    let mut seen = Vec::new();
    let mut done_at = None;
    let started = Instant::now();
    loop {
        seen.push(https_status(&s));
        if done_at.is_none() && s.upgrade_logs().contains("startup: done") {
            done_at = Some(Instant::now());
        }
        if done_at.is_some_and(|t| t.elapsed() > Duration::from_millis(1500)) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the upgrade service never finished its boot: {}",
            s.upgrade_logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(seen.len() > 5, "{seen:?}");
    assert!(seen.iter().all(|c| c == "200"), "HTTPS dropped: {seen:?}");
    let logs = s.upgrade_logs();
    let boot = boots(&logs).pop().expect("a boot");
    assert!(boot.contains("up -d --remove-orphans"), "{logs}");
    assert!(!boot.contains("Recreate"), "the boot recreated: {logs}");
    assert_eq!(
        boot.matches(" Running").count(),
        6,
        "compose found all six CHT containers as they were: {logs}"
    );

    let ids = s.ids();
    assert_eq!(ids.len(), 6, "{ids:?}");
    // A second up keeps every container.
    s.up(&[]).ok();
    assert_eq!(s.ids(), ids, "a second up recreated");
    // So does compose v2, run by hand with the upgrade service's compose version.
    let same = compose_v2(STANDIN_SUITE);
    let run = s.compose(&same, &["up", "-d", "--remove-orphans"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(!run.stderr.contains("Recreate"), "{run:#?}");
    assert_eq!(s.ids(), ids, "compose {} recreated", same.label);
    // And so does a restart of the upgrade service.
    let boot = reboot_upgrade_service(&s);
    assert!(!boot.contains("Recreate"), "{boot}");
    assert_eq!(s.ids(), ids, "a restart of the upgrade service recreated");
    assert_eq!(https_status(&s), "200");
    let doctor = s.cht.run(&["doctor"]).ok();
    assert!(
        doctor.stdout.contains(&format!(
            "upgrade service {}  its next start keeps all 6 CHT containers",
            s.name
        )),
        "{doctor:#?}"
    );

    // A newer compose on the host computes other hashes: it recreates, doctor says the
    // next boot would recreate them back, and `up` brings them in line again.
    let newer = compose_v2(HOST_SUITE);
    let run = s.compose(&newer, &["up", "-d", "--remove-orphans"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_ne!(s.ids(), ids, "compose {} agrees after all?", newer.label);
    let doctor = s.cht.run(&["doctor"]).ok();
    let line = doctor
        .stdout
        .lines()
        .find(|l| l.contains(&format!("upgrade service {}", s.name)))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.starts_with("warn") && line.contains("would recreate") && line.contains("api ("),
        "{doctor:#?}"
    );
    s.up(&[]).ok();
    let ids = s.ids();
    let boot = reboot_upgrade_service(&s);
    assert!(!boot.contains("Recreate"), "{boot}");
    assert_eq!(s.ids(), ids);
    // The labels name the compose version whose hashes they carry.
    let api = format!("{}-api-1", s.name);
    assert!(
        s.label(&api, "com.docker.compose.version")
            .starts_with("2.26"),
        "{}",
        s.label(&api, "com.docker.compose.version")
    );
    assert!(
        s.label(&api, "com.docker.compose.image")
            .starts_with("sha256:")
    );
    assert!(
        s.dir().join("cache/compose-hashes.json").is_file(),
        "the answer is cached"
    );
}

#[test]
fn an_in_app_upgrade_is_kept_by_up_and_upgrade_starts_from_it() {
    let s = Stack::new("inapp");
    s.up(&["--cht-version", "4.22.0"]).ok();
    s.wait_boots(1);
    let data = s.dir().join("couchdb");
    std::fs::write(data.join("test-marker"), "keep me").expect("marker");

    // The in-app upgrade, done the upgrade service's way: new upstream files in compose/,
    // then its compose run inside its own container.
    write_upstream_files(&s, "5.2.0");
    let exec = Command::new("docker")
        .args(["exec", &s.upgrade_container(), "cht-startup"])
        .output()
        .expect("docker exec");
    let said = String::from_utf8_lossy(&exec.stdout).into_owned();
    assert!(said.contains("startup: done (exit 0)"), "{said}");
    assert!(
        cht_images(&s).iter().all(|i| i.ends_with(":5.2.0")),
        "{:?}",
        cht_images(&s)
    );

    // The files are the truth: ls and status report 5.2.0.
    let ls: serde_json::Value =
        serde_json::from_str(&s.cht.run(&["ls", "--json"]).ok().stdout).expect("json");
    let row = ls
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == s.name.as_str()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(row["version"], "5.2.0", "{ls}");
    let status = s.cmd("status", &[]).ok();
    assert!(
        status
            .stdout
            .contains(&format!("{}/cht-couchdb-nouveau:5.2.0", s.registry)),
        "{status:#?}"
    );

    // up keeps every container compose made: no revert, no recreation.
    let ids = s.ids();
    let up = s.up(&[]).ok();
    assert_eq!(s.ids(), ids, "{up:#?}");
    assert!(!up.stderr.contains("removed outdated"), "{up:#?}");
    assert_eq!(
        std::fs::read_to_string(data.join("test-marker")).expect("marker"),
        "keep me"
    );
    assert_eq!(https_status(&s), "200");

    // upgrade starts from 5.2.0: an older release is a downgrade now.
    let older = s.cmd("upgrade", &["--cht-version", "4.22.0"]);
    assert!(older.one_line_error().contains("runs 5.2.0"), "{older:#?}");
    // Re-rendering 5.2.0 keeps upstream's files as a backup outside compose/.
    let again = s
        .cmd("upgrade", &["--cht-version", "5.2.0", "--pull", "never"])
        .ok();
    assert!(again.stderr.contains("backups/5.2.0-"), "{again:#?}");
    assert_eq!(compose_folder(&s), ["cht-core.yml", "cht-couchdb.yml"]);
    let kept = names_in(&s.dir().join("backups"));
    assert_eq!(kept.len(), 1, "{kept:?}");
    let upstream =
        std::fs::read_to_string(s.dir().join("backups").join(&kept[0]).join("cht-core.yml"))
            .expect("backup");
    assert!(upstream.contains("in-app upgrade"), "{upstream}");
    let ids = s.ids();
    let boot = reboot_upgrade_service(&s);
    assert!(!boot.contains("Recreate"), "{boot}");
    assert_eq!(s.ids(), ids);
}

#[test]
fn upgrade_keeps_backups_outside_compose_and_a_reboot_stays_on_the_new_release() {
    let s = Stack::new("bak");
    s.up(&["--cht-version", "4.22.0"]).ok();
    s.wait_boots(1);
    // An edited file, and a backup an earlier cht-dev left inside compose/.
    let core = s.dir().join("compose/cht-core.yml");
    let edited = format!(
        "{}# tuned by hand\n",
        std::fs::read_to_string(&core).expect("read")
    );
    std::fs::write(&core, &edited).expect("edit");
    let legacy = s.dir().join("compose/cht-couchdb.yml.bak-4.21.0");
    std::fs::copy(s.dir().join("compose/cht-couchdb.yml"), &legacy).expect("legacy");

    let run = s
        .cmd("upgrade", &["--cht-version", "5.2.0", "--pull", "never"])
        .ok();
    assert!(
        run.stderr.contains("moved") && run.stderr.contains("cht-couchdb.yml.bak-4.21.0"),
        "the move is said: {run:#?}"
    );
    assert_eq!(compose_folder(&s), ["cht-core.yml", "cht-couchdb.yml"]);
    let folders = names_in(&s.dir().join("backups"));
    assert_eq!(folders.len(), 2, "{folders:?}");
    assert!(folders[0].starts_with("4.21.0-"), "{folders:?}");
    assert!(folders[1].starts_with("4.22.0-"), "{folders:?}");
    let backups = s.dir().join("backups");
    assert_eq!(
        std::fs::read_to_string(backups.join(&folders[1]).join("cht-core.yml")).expect("backup"),
        edited
    );
    assert!(backups.join(&folders[0]).join("cht-couchdb.yml").is_file());

    // A reboot of the upgrade service leaves the whole stack on 5.2.0.
    let ids = s.ids();
    let boot = reboot_upgrade_service(&s);
    assert!(!boot.contains("Recreate"), "{boot}");
    assert_eq!(s.ids(), ids);
    let images = cht_images(&s);
    assert_eq!(images.len(), 6, "{images:?}");
    assert!(images.iter().all(|i| i.ends_with(":5.2.0")), "{images:?}");
    assert_eq!(https_status(&s), "200");
}

#[test]
fn teardown_stops_the_upgrade_service_first_and_removes_half_recreated_leftovers() {
    let s = Stack::new("order");
    s.up(&[]).ok();
    s.wait_boots(1);
    s.cmd("stop", &[]).ok();
    // When each container stopped: the upgrade service before every CHT container.
    let finished = |name: &str| {
        let out = Command::new("docker")
            .args(["inspect", "--format", "{{.State.FinishedAt}}", name])
            .output()
            .expect("inspect");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{name} FinishedAt {text:?}: {e}"))
    };
    let upgrade_at = finished(&s.upgrade_container());
    for line in s.ids() {
        let name = line.split(' ').next().unwrap_or_default();
        assert!(
            upgrade_at < finished(name),
            "{name} stopped at {} before the upgrade service at {upgrade_at}",
            finished(name)
        );
    }
    s.up(&[]).ok();
    // What compose leaves when a recreate is cut short: the old container renamed
    // `<id>_<name>`, labels intact.
    let api = format!("{}-api-1", s.name);
    let leftover = format!("0123456789ab_{api}");
    let labels = [
        format!("com.docker.compose.project={}", s.name),
        "com.docker.compose.service=api".to_string(),
        "com.docker.compose.container-number=1".to_string(),
        "com.docker.compose.oneoff=False".to_string(),
    ];
    let mut args = vec!["create".to_string(), "--name".into(), leftover.clone()];
    for l in &labels {
        args.extend(["--label".to_string(), l.clone()]);
    }
    args.push(format!("{REGISTRY}/cht-api:5.2.0"));
    let made = Command::new("docker").args(&args).output().expect("create");
    assert!(made.status.success(), "{made:?}");
    // up removes it (compose's name and hash are the api container's, not its).
    s.up(&[]).ok();
    assert!(
        !docker_names(&["ps", "-a", "--format", "{{.Names}}"]).contains(&leftover),
        "up removes the leftover"
    );
    let made = Command::new("docker").args(&args).output().expect("create");
    assert!(made.status.success(), "{made:?}");
    s.cmd("down", &[]).ok();
    assert!(
        !docker_names(&["ps", "-a", "--format", "{{.Names}}"]).contains(&leftover),
        "down removes the leftover"
    );
    assert!(s.all_containers().is_empty());
}

#[test]
fn an_upgrade_service_without_compose_is_said_once_and_cht_dev_falls_back() {
    let s = Stack::new("nocompose");
    s.init();
    s.edit(
        "upgrade-service.yml",
        &format!("{}/cht-upgrade-service:latest", s.registry),
        &format!("{}/cht-upgrade-service:no-compose", s.registry),
    );
    let first = s.up(&[]).ok();
    let notes: Vec<&str> = first
        .stderr
        .lines()
        .filter(|l| l.contains("compose hashes"))
        .collect();
    assert_eq!(notes.len(), 1, "said once: {first:#?}");
    assert!(
        notes[0].contains("has no docker CLI") && notes[0].contains("may recreate"),
        "{notes:?}"
    );
    assert_eq!(https_status(&s), "200");
    // The answer is cached: the second up says it again (still true), recreates nothing.
    let ids = s.ids();
    let second = s.up(&[]).ok();
    assert_eq!(
        second
            .stderr
            .lines()
            .filter(|l| l.contains("compose hashes"))
            .count(),
        1,
        "{second:#?}"
    );
    assert_eq!(s.ids(), ids);
    let json = s.up(&["--json"]).ok();
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(
        parsed["notes"].as_array().map(Vec::len),
        Some(1),
        "{parsed}"
    );
}
