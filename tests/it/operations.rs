//! Issue-5 operations end to end: `--json` on every command, `doctor`, and `ca install`
//! checked by real clients (headless Chromium, curl against the system store).

use std::net::TcpListener;
use std::path::Path;

use crate::common::engine::Stack;
use crate::common::{ChtDev, run_tool, tool};

/// Parses stdout as exactly one JSON document.
#[track_caller]
fn json(run: &crate::common::Run) -> serde_json::Value {
    serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {run:#?}"))
}

#[test]
fn every_command_speaks_json_and_errors_too() {
    let s = Stack::new("json");
    let name = s.name.as_str();
    let (http, https) = (s.http.to_string(), s.https.to_string());
    let init = s
        .cht
        .run(&[
            "--json",
            "init",
            name,
            "--image-registry",
            crate::common::engine::REGISTRY,
            "--http-port",
            &http,
            "--https-port",
            &https,
        ])
        .ok();
    assert_eq!(json(&init)["project"], name);
    let up = s.cht.run(&["up", name, "--pull", "never", "--json"]).ok();
    let up = json(&up);
    assert_eq!(up["https_port"], s.https);
    assert_eq!(
        up["urls"][0].as_str().unwrap_or_default(),
        format!("https://{name}.localhost:{}/", s.https)
    );
    assert_eq!(up["services"].as_array().map(Vec::len), Some(7));
    assert!(
        up["login"]["password"]
            .as_str()
            .is_some_and(|p| p.len() >= 20)
    );
    for args in [
        vec!["ls"],
        vec!["versions"],
        vec!["ca"],
        vec!["status", name],
        vec!["logs", name, "api", "--tail", "2"],
        vec!["doctor"],
        vec!["completions", "bash"],
        vec!["stop", name],
        vec!["down", name],
        vec!["destroy", name, "--yes"],
    ] {
        let mut full = vec!["--json"];
        full.extend(&args);
        let run = s.cht.run(&full);
        assert_eq!(run.code, 0, "{args:?}: {run:#?}");
        json(&run);
    }
    // Errors are JSON on stdout too (and one line on stderr), with the exit code.
    let run = s.cht.run(&["--json", "init", "Bad"]);
    assert_eq!(run.code, 2);
    let err = json(&run);
    assert_eq!(err["exit_code"], 2);
    assert!(
        err["error"]
            .as_str()
            .unwrap_or_default()
            .contains("invalid project name")
    );
    run.one_line_error();
}

#[test]
fn doctor_reports_each_check_and_fails_on_what_blocks_up() {
    let s = Stack::new("doc");
    s.cht
        .run(&[
            "init",
            &s.name,
            "--http-port",
            &s.http.to_string(),
            "--https-port",
            &s.https.to_string(),
        ])
        .ok();
    let ok = s.cht.run(&["doctor"]).ok();
    for name in [
        "engine",
        "compose CLI",
        &format!("project {}", s.name),
        "disk",
        "local CA",
        "LAN address",
    ] {
        assert!(
            ok.stdout.lines().any(|l| l.contains(name)),
            "{name} in {}",
            ok.stdout
        );
    }
    assert!(ok.stdout.contains("API 1."), "{}", ok.stdout);
    let held = TcpListener::bind(("0.0.0.0", s.https)).expect("bind");
    let bad = s.cht.run(&["doctor"]);
    assert_eq!(bad.code, 1, "{bad:#?}");
    assert!(
        bad.stdout.contains(&format!("port {} is busy", s.https)),
        "{bad:#?}"
    );
    assert!(bad.stderr.contains("block `cht-dev up`"));
    drop(held);
    let mut cmd = s.cht.command();
    cmd.env("DOCKER_HOST", "unix:///nonexistent.sock")
        .arg("doctor");
    let off = crate::common::to_run(cmd.output().expect("run"));
    assert_eq!(off.code, 1);
    assert!(
        off.stdout.contains("cannot reach the Docker engine"),
        "{off:#?}"
    );
}

#[test]
fn ca_install_makes_a_fresh_browser_trust_the_project_and_uninstall_undoes_it() {
    let s = Stack::new("trust");
    s.up(&[]).ok();
    let user = tempfile::tempdir().expect("home");
    let url = format!("https://localhost:{}/", s.https);
    let mut install = s.cht.command();
    install.env("HOME", user.path()).args(["ca", "install"]);
    let run = crate::common::to_run(install.output().expect("run"));
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains(".pki/nssdb"), "{run:#?}");
    assert!(
        run.stdout.contains("update-ca-certificates"),
        "prints the system command: {run:#?}"
    );
    assert!(
        run.stdout
            .contains("the CHT Android app never trusts a CA a user installed"),
        "says the truth about phones: {run:#?}"
    );
    let page = crate::common::chromium(user.path(), &url);
    assert!(
        page.contains("CHT API stand-in"),
        "after ca install: {page}"
    );
    let mut uninstall = s.cht.command();
    uninstall.env("HOME", user.path()).args(["ca", "uninstall"]);
    assert_eq!(uninstall.output().expect("run").status.code(), Some(0));
    let page = crate::common::chromium(user.path(), &url);
    assert!(
        page.contains("ERR_CERT_AUTHORITY_INVALID"),
        "after ca uninstall: {page}"
    );
}

#[test]
fn ca_install_system_lets_plain_curl_trust_the_project() {
    let s = Stack::new("system");
    s.up(&[]).ok();
    let curl = tool("curl", "apt-get install curl");
    let url = format!("https://localhost:{}/", s.https);
    let plain = || {
        run_tool(
            &curl,
            &["-sS", "-o", "/dev/null", "-w", "%{http_code}", &url],
            Path::new("/"),
        )
    };
    assert_ne!(plain().code, 0, "not trusted before install");
    let user = tempfile::tempdir().expect("home");
    let mut install = s.cht.command();
    install
        .env("HOME", user.path())
        .args(["ca", "install", "--system"]);
    let run = crate::common::to_run(install.output().expect("run"));
    // Restore the system store whatever happens next.
    struct Undo<'a>(&'a Stack, &'a Path);
    impl Drop for Undo<'_> {
        fn drop(&mut self) {
            let mut cmd = self.0.cht.command();
            cmd.env("HOME", self.1)
                .args(["ca", "uninstall", "--system"]);
            let _ = cmd.output();
        }
    }
    let undo = Undo(&s, user.path());
    assert_eq!(run.code, 0, "{run:#?} (the system store needs root)");
    let ok = plain();
    assert_eq!((ok.code, ok.stdout.as_str()), (0, "200"), "{ok:#?}");
    assert!(
        s.cht
            .run(&["doctor"])
            .ok()
            .stdout
            .contains("the system trust store holds it")
    );
    drop(undo);
    assert_ne!(plain().code, 0, "uninstall --system removes it again");
}

#[test]
fn no_prompt_without_a_terminal() {
    let cht = ChtDev::new();
    cht.run(&["init", "quiet-ci"]).ok();
    let run = cht.run(&["destroy", "quiet-ci"]);
    assert!(run.one_line_error().contains("--yes"));
    assert!(cht.project("quiet-ci").exists());
}

#[test]
fn upgrade_4x_to_5x_keeps_data_refuses_downgrades_and_rolls_back_on_failure() {
    let s = Stack::new("upg");
    s.up(&["--cht-version", "4.22.0"]).ok();
    let marker = s.dir().join("couchdb/user-marker");
    std::fs::write(&marker, "keep").expect("marker");
    let before = s.containers("com.docker.compose.project", &s.name);
    assert!(
        before.iter().any(|c| c.ends_with("-healthcheck-1")),
        "{before:?}"
    );
    let run = s
        .cht
        .run(&[
            "upgrade",
            &s.name,
            "--cht-version",
            "5.2.0",
            "--pull",
            "never",
        ])
        .ok();
    assert!(
        run.stdout.contains("upgraded from CHT 4.22.0 to 5.2.0"),
        "{run:#?}"
    );
    let after = s.containers("com.docker.compose.project", &s.name);
    assert!(after.iter().any(|c| c.ends_with("-nouveau-1")), "{after:?}");
    assert!(
        !after.iter().any(|c| c.ends_with("-healthcheck-1")),
        "{after:?}"
    );
    assert_eq!(std::fs::read_to_string(&marker).expect("marker"), "keep");
    assert_eq!(s.curl_https("/").0, "200");
    let ls: serde_json::Value =
        serde_json::from_str(&s.cht.run(&["--json", "ls"]).ok().stdout).expect("json");
    assert_eq!(ls[0]["version"], "5.2.0");

    // Downgrades need --force.
    let line = s
        .cht
        .run(&["upgrade", &s.name, "--cht-version", "4.22.0"])
        .one_line_error();
    assert!(line.contains("--force"), "{line}");
    // A failing upgrade (images of 4.21.0 are not there) rolls back to 5.2.0.
    let core = s.dir().join("compose/cht-core.yml");
    let core_before = std::fs::read_to_string(&core).expect("core");
    let failed = s.cht.run(&[
        "upgrade",
        &s.name,
        "--cht-version",
        "4.21.0",
        "--force",
        "--pull",
        "never",
    ]);
    // The upgrade service was paused and started again by the rollback: progress lines.
    let line = failed.error_after_progress();
    assert!(
        line.contains("missing images") && line.contains("rolled back to 5.2.0"),
        "{line}"
    );
    assert_eq!(std::fs::read_to_string(&core).expect("core"), core_before);
    assert_eq!(s.curl_https("/").0, "200");
    assert_eq!(std::fs::read_to_string(&marker).expect("marker"), "keep");
}

#[test]
fn adopt_keeps_the_helpers_ports_credentials_data_and_local_ip_certificate() {
    let mut server = crate::common::local_ip::LocalIpServer::start();
    // On the stand-ins, which the helper's files name: `upstream.rs` adopts data that real
    // CouchDB wrote.
    let s = Stack::standin_in_home("adopt", crate::common::ChtDev::new().with_local_ip(&server));
    let user = tempfile::tempdir().expect("home");
    let env_file = crate::common::helper_project(user.path(), &s.name, s.http, s.https);
    // The helper served the local-ip certificate: without its source, adopt says so and
    // how to adopt with the local CA instead, writing nothing.
    server.stop();
    let before = s.cht.tree();
    let line = s
        .cht
        .run(&["adopt", env_file.to_str().expect("utf8")])
        .one_line_error();
    assert!(
        line.contains("/fullchain") && line.contains("--tls local-ca"),
        "{line}"
    );
    assert_eq!(s.cht.tree(), before);
    server.resume();
    let run = s.cht.run(&["adopt", env_file.to_str().expect("utf8")]).ok();
    assert!(run.stdout.contains("adopted"), "{run:#?}");
    assert!(run.stdout.contains("(local-ip certificate)"), "{run:#?}");
    let env = std::fs::read_to_string(s.dir().join(".env")).expect("env");
    let couch = user
        .path()
        .join(format!(".medic/cht-docker/{}-dir/couch", s.name));
    for want in [
        format!("NGINX_HTTP_PORT={}", s.http),
        format!("NGINX_HTTPS_PORT={}", s.https),
        "COUCHDB_PASSWORD=password".to_string(),
        "COUCHDB_SECRET=0123456789abcdef0123456789abcdef".to_string(),
        format!("COUCHDB_DATA={}", couch.display()),
    ] {
        assert!(env.lines().any(|l| l == want), "{want} in {env}");
    }
    s.cht.run(&["up", &s.name, "--pull", "never"]).ok();
    let served = server.curl(&s.cht, s.https);
    assert!(
        served.stdout.ends_with("\n200"),
        "the phone's certificate: {served:#?}"
    );
    assert!(
        couch.join("standin-marker").is_file(),
        "the same CouchDB data folder is served"
    );
    assert_eq!(
        std::fs::read_to_string(couch.join("helper-marker")).expect("marker"),
        "from the helper"
    );
    // --copy-data copies instead, under another name.
    let copied = s.cht.run(&[
        "adopt",
        env_file.to_str().expect("utf8"),
        "--name",
        "copied",
        "--copy-data",
    ]);
    assert!(
        copied.one_line_error().contains("is busy"),
        "the ports belong to the first adoption: {copied:#?}"
    );
    // Ports of its own, claimed like every test's (the next numbers may be another's).
    let (http2, https2) = crate::common::engine::free_ports();
    let other = crate::common::helper_project(user.path(), "second", http2, https2);
    s.cht
        .run(&[
            "adopt",
            other.to_str().expect("utf8"),
            "--copy-data",
            "--tls",
            "local-ca",
        ])
        .ok();
    assert!(
        s.cht
            .project("second")
            .join("couchdb/helper-marker")
            .is_file()
    );
    let second_env = std::fs::read_to_string(s.cht.project("second").join(".env")).expect("env");
    assert!(second_env.contains("CHT_DEV_CERT=local-ca"), "{second_env}");
    assert!(second_env.contains(&format!(
        "COUCHDB_DATA={}",
        s.cht.project("second").join("couchdb").display()
    )));
    let again = s.cht.run(&["adopt", env_file.to_str().expect("utf8")]);
    assert!(again.one_line_error().contains("already exists"));
    let not_helper = user.path().join("other.env");
    std::fs::write(&not_helper, "FOO=1\n").expect("write");
    let line = s
        .cht
        .run(&["adopt", not_helper.to_str().expect("utf8")])
        .one_line_error();
    assert!(line.contains("lacks NGINX_HTTP_PORT"), "{line}");
}

#[test]
fn snapshots_copy_the_data_consistently_and_restore_it_while_running() {
    let s = Stack::new("snap");
    s.up(&[]).ok();
    let data = s.dir().join("couchdb");
    std::fs::write(data.join("user-marker"), "keep").expect("marker");
    let name = s.name.as_str();
    let made = s
        .cht
        .run(&["snapshot", "create", name, "--label", "before"])
        .ok();
    assert!(
        made.stdout.contains("snapshot before (CHT 5.2.0"),
        "{made:#?}"
    );
    assert!(made.stdout.contains("paused for"), "{made:#?}");
    assert_eq!(
        s.curl_https("/").0,
        "200",
        "the stack is back after the copy"
    );
    let ls: serde_json::Value =
        serde_json::from_str(&s.cht.run(&["--json", "snapshot", "ls", name]).ok().stdout)
            .expect("json");
    let snaps = ls["snapshots"].as_array().expect("list");
    assert_eq!(snaps.len(), 1, "{ls}");
    assert_eq!(snaps[0]["cht_version"], "5.2.0");
    assert!(snaps[0]["bytes"].as_u64().unwrap_or(0) > 0, "{ls}");
    assert_eq!(
        crate::common::mode(&s.dir().join("snapshots/before.tar.zst")),
        0o600
    );

    // The data is lost; a restore while running brings it back, and the stack ready.
    crate::common::empty_folder(&data);
    let refused = s.cht.run(&["snapshot", "restore", name, "before"]);
    assert!(
        refused.one_line_error().contains("--yes"),
        "no terminal, no --yes: {refused:#?}"
    );
    assert!(!data.join("user-marker").exists());
    s.cht
        .run(&["snapshot", "restore", name, "before", "--yes"])
        .ok();
    assert_eq!(
        std::fs::read_to_string(data.join("user-marker")).expect("marker is back"),
        "keep"
    );
    s.couch_wrote(&data);
    assert_eq!(s.curl_https("/").0, "200", "ready again after the restore");

    // A snapshot of a newer CHT release is refused.
    s.cht
        .run(&["snapshot", "create", name, "--label", "newer"])
        .ok();
    let sidecar = s.dir().join("snapshots/newer.json");
    let text = std::fs::read_to_string(&sidecar).expect("sidecar");
    std::fs::write(&sidecar, text.replace("\"5.2.0\"", "\"9.9.9\"")).expect("write");
    let line = s
        .cht
        .run(&["snapshot", "restore", name, "newer", "--yes"])
        .one_line_error();
    assert!(line.contains("newer than"), "{line}");

    // A snapshot that fails part-way leaves no archive, and the stack runs again.
    let fifo = data.join("a-fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let line = s
        .cht
        .run(&["snapshot", "create", name, "--label", "broken"])
        .error_after_progress();
    assert!(line.contains("not a file, folder or link"), "{line}");
    std::fs::remove_file(&fifo).expect("rm fifo");
    let left: Vec<String> = std::fs::read_dir(s.dir().join("snapshots"))
        .expect("read")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("broken"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(s.curl_https("/").0, "200");

    // Bad labels and unknown snapshots are one clear line each; rm removes.
    let line = s
        .cht
        .run(&["snapshot", "create", name, "--label", "../x"])
        .one_line_error();
    assert!(line.contains("invalid snapshot label"), "{line}");
    let line = s
        .cht
        .run(&["snapshot", "restore", name, "nope", "--yes"])
        .one_line_error();
    assert!(line.contains("its snapshots: before, newer"), "{line}");
    s.cht.run(&["snapshot", "rm", name, "newer"]).ok();
    let ls = s.cht.run(&["snapshot", "ls", name]).ok();
    assert!(
        ls.stdout.contains("before") && !ls.stdout.contains("newer"),
        "{ls:#?}"
    );
}

/// The stand-in CouchDB's writer, iteration `i`: appends `doc-i-a…` to `shards/a.couch`,
/// then `doc-i` to `b.couch`, then, every 50th, writes `compacted-i` to
/// `c.couch.compact` and renames it over `c.couch`. Checks that the files in `data` are
/// as they were at one instant of that writer: whole lines 1..=A and 1..=B with B = A or
/// A - 1, and the compaction that goes with B. Returns A.
fn check_one_instant(data: &Path) -> u64 {
    let read = |name: &str| std::fs::read_to_string(data.join(name)).unwrap_or_default();
    let (a, b) = (read("shards/a.couch"), read("b.couch"));
    let long = "a".repeat(56);
    let count = |text: &str, line: &dyn Fn(u64) -> String| -> u64 {
        let mut n = 0;
        for got in text.split_inclusive('\n') {
            n += 1;
            assert_eq!(
                got,
                format!("{}\n", line(n)),
                "line {n} is torn or out of order"
            );
        }
        n
    };
    let big_a = count(&a, &|i| format!("doc-{i}-{long}"));
    let big_b = count(&b, &|i| format!("doc-{i}"));
    assert!(
        big_b == big_a || big_b + 1 == big_a,
        "a.couch has {big_a} writes and b.couch {big_b}: not one instant"
    );
    // The rename of iteration B may not have happened yet when B = A.
    let done = big_b / 50 * 50;
    let pending = big_b == big_a && big_b % 50 == 0 && big_b > 0;
    let compacted = |c: u64| {
        if c == 0 {
            String::new()
        } else {
            format!("compacted-{c}\n")
        }
    };
    let c = read("c.couch");
    assert!(
        c == compacted(done) || (pending && c == compacted(done - 50)),
        "c.couch is {c:?} after {big_b} writes: not one instant"
    );
    let compact = read("c.couch.compact");
    assert!(
        compact.is_empty() || (pending && compact == compacted(done)),
        "c.couch.compact is {compact:?} after {big_b} writes"
    );
    big_a
}

#[test]
fn a_snapshot_taken_while_couchdb_writes_holds_the_data_as_it_was_at_one_instant() {
    // On the stand-ins: their CouchDB writes at a known rhythm, so the archive can be
    // compared byte for byte with the data at the instant of the freeze (`upstream.rs`
    // checks the same property on real CouchDB, through its documents).
    let s = Stack::standin("snaplive");
    s.init();
    // The stand-in CouchDB appends to .couch files every millisecond and replaces one by
    // rename every 50 writes (see check_one_instant).
    let data = s.dir().join("couchdb");
    std::fs::write(data.join("standin-writer"), "").expect("writer on");
    let filler: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::create_dir_all(data.join("shards/00-7f")).expect("mkdir");
    for n in 0..4 {
        std::fs::write(data.join(format!("shards/00-7f/db{n}.couch")), &filler).expect("filler");
    }
    s.up(&[]).ok();
    let appended = data.join("shards/a.couch");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::metadata(&appended).map_or(0, |m| m.len()) < 10_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never wrote"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let made = s
        .cht
        .run(&["snapshot", "create", &s.name, "--label", "live"])
        .ok();
    assert!(
        made.stdout.contains("paused for") && made.stdout.contains("that grew"),
        "{made:#?}"
    );
    // The writer went on after the snapshot: what is restored is an earlier instant.
    std::thread::sleep(std::time::Duration::from_millis(300));
    s.cht.run(&["stop", &s.name]).ok();
    let at_stop = check_one_instant(&data);
    s.cht
        .run(&["snapshot", "restore", &s.name, "live", "--yes"])
        .ok();
    let restored = check_one_instant(&data);
    assert!(
        restored >= 150 && restored < at_stop,
        "restored {restored} writes, {at_stop} at the stop"
    );
    for n in 0..4 {
        let path = data.join(format!("shards/00-7f/db{n}.couch"));
        assert!(
            std::fs::read(&path).expect("read") == filler,
            "{}",
            path.display()
        );
    }
}

#[test]
fn ctrl_c_during_a_snapshot_starts_couchdb_again_and_leaves_no_archive() {
    use std::io::BufRead;
    let s = Stack::new("snapint");
    s.up(&[]).ok();
    // Enough data, and data that does not compress, that the archive is still being
    // written when the interrupt lands.
    let big = s.dir().join("couchdb/big.couch");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(0).expect("len");
    drop(file);
    let zeros = std::process::Command::new("dd")
        .args(["if=/dev/urandom", "bs=1M", "count=600"])
        .arg(format!("of={}", big.display()))
        .output()
        .expect("dd");
    assert!(zeros.status.success(), "{zeros:?}");
    let mut child = s
        .cht
        .command()
        .args(["snapshot", "create", &s.name, "--label", "big"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn snapshot");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.expect("line");
        let copying = line.starts_with("archiving");
        seen.push(line);
        if copying {
            break;
        }
    }
    let (out, _) = crate::common::interrupt(child);
    assert_eq!(out.status.code(), Some(130), "{seen:?}");
    for service in ["api", "sentinel", "couchdb", "nouveau"] {
        let name = format!("{}-{service}-1", s.name);
        let state =
            crate::common::engine::docker_names(&["inspect", "-f", "{{.State.Running}}", &name]);
        assert_eq!(state, ["true"], "{name} was left stopped: {seen:?}");
    }
    let listed = s.cht.run(&["--json", "snapshot", "ls", &s.name]).ok();
    assert!(!listed.stdout.contains("\"big\""), "{listed:#?}");
    std::fs::remove_file(&big).expect("rm big");
    // What the interrupted command left is swept, and the label is free.
    s.cht
        .run(&["snapshot", "create", &s.name, "--label", "big"])
        .ok();
    let left: Vec<String> = std::fs::read_dir(s.dir().join("snapshots"))
        .expect("read")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        ["big.json", "big.tar.zst"]
            .map(String::from)
            .to_vec()
            .iter()
            .filter(|n| left.contains(n))
            .cloned()
            .collect::<Vec<_>>()
    );
    assert_eq!(left.len(), 2, "{left:?}");
    assert_eq!(s.curl_https("/").0, "200");
}
