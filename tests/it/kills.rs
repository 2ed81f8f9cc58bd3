//! Every mutating command killed (SIGKILL: no handler runs) at ten moments spread over
//! its duration, and what the next command finds: the CouchDB data and the snapshot
//! archives intact, no staging folder or half-written file once it has run, what was
//! half done repaired and said, `status` coherent, and `up` reaching HTTPS.
//!
//! On the stand-in images: each test runs `up` and the command again at a dozen moments,
//! and a real CouchDB start would add seconds to each of them; what the kills test is
//! cht-dev's own journal and repair, not CouchDB (`upstream.rs` runs snapshots and
//! restores on the upstream-built images).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use crate::common::engine::{Stack, docker_names};
use crate::common::{ChtDev, assert_left_nothing, helper_project, noise, tool};

/// How many moments each command is killed at.
const MOMENTS: u32 = 10;

/// Runs `args` once (after `setup(0)`) to learn how long it takes, then `MOMENTS` more
/// times, each after `setup(round)`, killed with SIGKILL at `(round - 0.5) / MOMENTS` of
/// that time, then once more at each of the named `steps` (the binary kills itself
/// there: `CHT_DEV_KILL_AT`, built in by the `fault-hooks` feature), and calls
/// `check(round)` after each kill.
fn kill_at_moments(
    cht: &ChtDev,
    args: &[String],
    steps: &[&str],
    setup: &mut dyn FnMut(u32),
    check: &mut dyn FnMut(u32),
) {
    setup(0);
    let started = Instant::now();
    let whole = cht.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(whole.code, 0, "the uninterrupted run: {whole:#?}");
    let took = started.elapsed();
    let spawn = || {
        cht.command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn")
    };
    for round in 1..=MOMENTS {
        setup(round);
        let at = took.mul_f64((f64::from(round) - 0.5) / f64::from(MOMENTS));
        let mut child = spawn();
        std::thread::sleep(at);
        // Child::kill sends SIGKILL.
        let _ = child.kill();
        let _ = child.wait();
        check(round);
    }
    for (n, step) in steps.iter().enumerate() {
        let round = MOMENTS + 1 + n as u32;
        setup(round);
        let mut command = cht.command();
        let out = command
            .env("CHT_DEV_KILL_AT", step)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&out.status),
            Some(9),
            "killed at {step}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        check(round);
    }
}

/// The arguments `cht-dev` gets, as owned strings.
fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| a.to_string()).collect()
}

/// Runs the first command after a kill (`status`, which repairs what the journal says)
/// and checks what any next command must find; returns its stderr.
fn next_command_finds_a_whole_project(s: &Stack, round: u32) -> String {
    let status = s.cmd("status", &["--json"]);
    assert_eq!(
        status.code, 0,
        "round {round}: status after the kill: {status:#?}"
    );
    let json: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
    assert!(json["state"].is_string(), "round {round}: {json}");
    assert_left_nothing(
        &s.cht.home(),
        &format!("round {round} (status said: {:?})", status.stderr),
    );
    assert!(
        !s.dir().join(".cht-dev-journal.json").exists(),
        "round {round}: the journal is gone once repaired: {status:#?}"
    );
    let paused = s.paused();
    assert!(paused.is_empty(), "round {round}: still paused: {paused:?}");
    status.stderr
}

/// `up` works and HTTPS answers.
fn serves(s: &Stack, round: u32) {
    let up = s.up(&[]);
    assert_eq!(up.code, 0, "round {round}: up after the kill: {up:#?}");
    assert_eq!(s.curl_https("/").0, "200", "round {round}");
}

/// Writes the CouchDB marker and a little data into the project's data folder.
fn mark(s: &Stack, text: &str) -> PathBuf {
    let marker = s.dir().join("couchdb/kill-marker");
    std::fs::create_dir_all(marker.parent().expect("parent")).expect("mkdir");
    std::fs::write(&marker, text).expect("marker");
    marker
}

/// About `mib` MiB of incompressible data in the data folder, so that the commands that
/// read it take long enough to be killed in the middle.
fn fill(s: &Stack, mib: usize) {
    for n in 0..mib / 8 {
        noise(&s.dir().join(format!("couchdb/shards/db{n}.couch")), 8);
    }
}

#[test]
fn up_killed_at_any_moment_is_carried_on_by_the_next_command() {
    let s = Stack::standin("killup");
    s.init();
    let marker = mark(&s, "kept");
    let up = s.up_args(&[]);
    kill_at_moments(
        &s.cht,
        &up,
        &[],
        &mut |round| {
            if round > 0 {
                s.cmd("down", &[]).ok();
            }
        },
        &mut |round| {
            next_command_finds_a_whole_project(&s, round);
            serves(&s, round);
            assert_eq!(std::fs::read_to_string(&marker).expect("marker"), "kept");
        },
    );
}

#[test]
fn an_upgrade_killed_at_any_moment_leaves_one_release_and_the_data() {
    let s = Stack::standin("killupg");
    s.up(&["--cht-version", "4.22.0"]).ok();
    let marker = mark(&s, "kept");
    let release = |s: &Stack| {
        let ls: serde_json::Value =
            serde_json::from_str(&s.cht.run(&["--json", "ls"]).ok().stdout).expect("json");
        ls[0]["version"].as_str().unwrap_or_default().to_string()
    };
    let upgrade = args(&[
        "upgrade",
        &s.name,
        "--cht-version",
        "5.2.0",
        "--pull",
        "never",
        "--timeout",
        "60",
    ]);
    let mut repaired = 0;
    kill_at_moments(
        &s.cht,
        &upgrade,
        &["files-written"],
        &mut |_| {
            if release(&s) != "4.22.0" {
                s.cmd(
                    "upgrade",
                    &["--cht-version", "4.22.0", "--force", "--pull", "never"],
                )
                .ok();
            }
        },
        &mut |round| {
            let said = next_command_finds_a_whole_project(&s, round);
            repaired += usize::from(said.contains("repaired"));
            // Every compose file names the release `ls` says, whichever it is.
            let version = release(&s);
            let core = std::fs::read_to_string(s.dir().join("compose/cht-core.yml")).expect("core");
            assert!(
                core.contains(&format!("cht-api:{version}")),
                "round {round}: the files are {version}'s: {said}"
            );
            serves(&s, round);
            assert_eq!(std::fs::read_to_string(&marker).expect("marker"), "kept");
        },
    );
    assert!(repaired > 0, "some kill landed while the files changed");
}

#[test]
fn a_snapshot_killed_at_any_moment_leaves_whole_archives_and_running_services() {
    let s = Stack::standin("killsnap");
    s.up(&[]).ok();
    fill(&s, 96);
    let marker = mark(&s, "kept");
    s.cht
        .run(&["snapshot", "create", &s.name, "--label", "base"])
        .ok();
    let archives = s.dir().join("snapshots");
    let base = std::fs::read(archives.join("base.tar.zst")).expect("base");
    let zstd = tool("zstd", "apt-get install zstd");
    let create = args(&["snapshot", "create", &s.name, "--label", "killed"]);
    kill_at_moments(
        &s.cht,
        &create,
        &["held"],
        &mut |_| {
            let _ = s.cht.run(&["snapshot", "rm", &s.name, "killed"]);
        },
        &mut |round| {
            next_command_finds_a_whole_project(&s, round);
            assert!(
                std::fs::read(archives.join("base.tar.zst")).expect("base") == base,
                "round {round}: the earlier snapshot is untouched"
            );
            // An archive there is a whole one, with its sidecar.
            let killed = archives.join("killed.tar.zst");
            if killed.exists() {
                let test = std::process::Command::new(&zstd)
                    .args(["-q", "-t"])
                    .arg(&killed)
                    .status()
                    .expect("zstd");
                assert!(test.success(), "round {round}: a torn archive");
                assert!(archives.join("killed.json").is_file(), "round {round}");
            }
            assert_eq!(s.curl_https("/").0, "200", "round {round}: serving again");
            assert_eq!(std::fs::read_to_string(&marker).expect("marker"), "kept");
        },
    );
    serves(&s, MOMENTS + 1);
}

#[test]
fn a_restore_killed_at_any_moment_leaves_the_data_before_or_after_never_between() {
    let s = Stack::standin("killrest");
    s.up(&[]).ok();
    fill(&s, 96);
    let marker = mark(&s, "snapshot");
    s.cht
        .run(&["snapshot", "create", &s.name, "--label", "base"])
        .ok();
    let archive = s.dir().join("snapshots/base.tar.zst");
    let base = std::fs::read(&archive).expect("base");
    let restore = args(&["snapshot", "restore", &s.name, "base", "--yes"]);
    let mut repaired = 0;
    kill_at_moments(
        &s.cht,
        &restore,
        &["held", "swapped"],
        &mut |_| {
            mark(&s, "later");
            std::fs::write(s.dir().join("couchdb/later-only"), "x").expect("later");
        },
        &mut |round| {
            let said = next_command_finds_a_whole_project(&s, round);
            repaired += usize::from(said.contains("repaired"));
            let now = std::fs::read_to_string(&marker).expect("the data folder is there");
            let later_only = s.dir().join("couchdb/later-only").exists();
            assert!(
                (now == "snapshot" && !later_only) || (now == "later" && later_only),
                "round {round}: all of one or of the other: {now}, {later_only}; {said}"
            );
            assert!(
                std::fs::read(&archive).expect("base") == base,
                "round {round}"
            );
            serves(&s, round);
        },
    );
    assert!(
        repaired > 0,
        "some kill landed while the services were stopped"
    );
}

#[test]
fn a_destroy_killed_at_any_moment_is_finished_or_leaves_the_project_whole() {
    let s = Stack::standin("killdes");
    let destroy = args(&["destroy", &s.name, "--yes"]);
    let mut finished = 0;
    kill_at_moments(
        &s.cht,
        &destroy,
        &["engine-part-done"],
        &mut |round| {
            if round == 0 || !s.dir().join(".env").exists() {
                s.up(&[]).ok();
            }
            mark(&s, "kept");
        },
        &mut |round| {
            let ls = s.cht.run(&["--json", "ls"]);
            assert_eq!(ls.code, 0, "round {round}: {ls:#?}");
            assert_left_nothing(&s.cht.home(), &format!("round {round}"));
            if s.dir().exists() {
                assert!(
                    s.dir().join(".env").is_file(),
                    "round {round}: half a project"
                );
                assert_eq!(
                    std::fs::read_to_string(s.dir().join("couchdb/kill-marker")).expect("marker"),
                    "kept",
                    "round {round}: a project still there keeps its data"
                );
                serves(&s, round);
            } else {
                finished += usize::from(ls.stderr.contains("finished destroying"));
                let left = docker_names(&[
                    "ps",
                    "-aq",
                    "--filter",
                    &format!("label=com.docker.compose.project={}", s.name),
                ]);
                assert!(left.is_empty(), "round {round}: containers left: {left:?}");
                if let Err(left) = s.network_gone_or_stuck() {
                    panic!("round {round}: {left}");
                }
            }
        },
    );
    assert!(finished > 0, "some kill landed part-way and was finished");
}

#[test]
fn an_adoption_killed_while_it_copies_leaves_no_half_project() {
    let s = Stack::standin("killadopt");
    let user = tempfile::tempdir().expect("user home");
    let env = helper_project(user.path(), &s.name, s.http, s.https);
    let couch = user
        .path()
        .join(format!(".medic/cht-docker/{}-dir/couch", s.name));
    for n in 0..12 {
        std::fs::write(couch.join(format!("db{n}.couch")), vec![n as u8; 8 << 20]).expect("fill");
    }
    let adopt = args(&[
        "adopt",
        env.to_str().expect("utf8"),
        "--copy-data",
        "--tls",
        "local-ca",
    ]);
    kill_at_moments(
        &s.cht,
        &adopt,
        &["copied"],
        &mut |_| {
            if s.dir().exists() {
                s.cmd("destroy", &["--yes"]).ok();
            }
        },
        &mut |round| {
            let ls = s.cht.run(&["--json", "ls"]);
            assert_eq!(ls.code, 0, "round {round}: {ls:#?}");
            assert_left_nothing(&s.cht.home(), &format!("round {round}"));
            if s.dir().exists() {
                assert_eq!(
                    std::fs::read_to_string(s.dir().join("couchdb/helper-marker"))
                        .expect("a project there has all its data"),
                    "from the helper"
                );
                serves(&s, round);
            }
            assert_eq!(
                std::fs::read_to_string(couch.join("helper-marker")).expect("helper"),
                "from the helper",
                "round {round}: the helper's data is untouched"
            );
        },
    );
}

#[test]
fn a_certificate_switch_killed_at_any_moment_leaves_nginx_serving_the_files() {
    let s = Stack::standin("killtls");
    s.up(&[]).ok();
    let (cert, key) =
        crate::production::openssl_cert(s.cht.scratch(), "own", &["localhost", "own.test"]);
    let switch = args(&[
        "tls",
        &s.name,
        "own",
        "--cert-file",
        cert.to_str().expect("utf8"),
        "--key-file",
        key.to_str().expect("utf8"),
    ]);
    let openssl = tool("openssl", "apt-get install openssl");
    let first_block = |text: &str| {
        text.split("-----BEGIN CERTIFICATE-----")
            .nth(1)
            .and_then(|b| b.split("-----END CERTIFICATE-----").next())
            .map(|b| b.split_whitespace().collect::<String>())
            .unwrap_or_default()
    };
    kill_at_moments(
        &s.cht,
        &switch,
        &["certificate-written"],
        &mut |round| {
            if round > 0 {
                s.cmd("tls", &["local-ca"]).ok();
            }
        },
        &mut |round| {
            let said = next_command_finds_a_whole_project(&s, round);
            let files = std::fs::read_to_string(s.dir().join("certs/cert.pem")).expect("cert");
            let served = s.cht.in_network(
                &openssl,
                &[
                    "s_client",
                    "-connect",
                    &format!("127.0.0.1:{}", s.https),
                    "-servername",
                    "localhost",
                ],
            );
            assert_eq!(
                first_block(&served.stdout),
                first_block(&files),
                "round {round}: nginx serves the certificate the files hold: {said}"
            );
            // (The own certificate is self-signed: `up` works; curl with the CA would not.)
            let up = s.up(&[]);
            assert_eq!(up.code, 0, "round {round}: up after the kill: {up:#?}");
        },
    );
}
