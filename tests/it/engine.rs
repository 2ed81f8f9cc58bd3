//! Engine tests: `cht-dev up` and friends against the real Docker engine, with stand-in
//! images (busybox for the CHT services, Debian's real nginx for TLS), checked with
//! real clients: curl, openssl s_client, docker-compose and headless Chromium.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::engine::{Stack, docker_names, require_docker};
use crate::common::{ChtDev, STANDIN_SUITE, run_tool, tool};

/// The services of a 5.x project's CHT compose project.
const SERVICES_5X: [&str; 6] = ["api", "couchdb", "haproxy", "nginx", "nouveau", "sentinel"];

#[test]
fn up_serves_https_through_nginx_and_keeps_data_through_stop_down_up_destroy() {
    let s = Stack::new("life");
    let first = Instant::now();
    let up = s.up(&[]).ok();
    let first = first.elapsed();
    assert!(up.stdout.contains("is up"), "{up:#?}");
    assert!(
        up.stdout
            .contains(&format!("https://localhost:{}/", s.https))
    );
    // The project's own host name comes first, and its certificate covers it.
    let own = format!("{}.localhost", s.name);
    let first_url = up
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("https://"));
    assert_eq!(
        first_url.map(str::trim),
        Some(format!("https://{own}:{}/", s.https).as_str()),
        "{up:#?}"
    );
    assert_eq!(s.curl_https_at(&own, "/").0, "200");
    // The cht-conf command it prints works as pasted into a shell: a stand-in `cht` checks
    // NODE_EXTRA_CA_CERTS and reaches --url over HTTPS verified against that CA.
    crate::common::paste_cht_conf(
        &up.stdout,
        s.cht.scratch(),
        r#"#!/bin/sh
[ -n "$NODE_EXTRA_CA_CERTS" ] && [ -f "$NODE_EXTRA_CA_CERTS" ] || { echo "no NODE_EXTRA_CA_CERTS" >&2; exit 3; }
case "$1" in --url=*) url=${1#--url=} ;; *) echo "no --url" >&2; exit 4 ;; esac
if command -v node >/dev/null 2>&1; then
  exec node -e 'require("https").get(process.argv[1] + "/", r => { console.log(r.statusCode); process.exit(0) }).on("error", e => { console.error(e.message); process.exit(5) })' "$url"
fi
exec curl -sS --cacert "$NODE_EXTRA_CA_CERTS" -o /dev/null -w '%{http_code}' "$url/"
"#,
        &[],
    );
    assert!(
        up.stdout
            .contains(&format!("fauxton:  https://{own}:{}/_utils/", s.https)),
        "{up:#?}"
    );
    assert!(
        up.stdout.contains("login:    medic / "),
        "the summary shows the login once: {up:#?}"
    );

    // Real clients: curl verifies the chain against the home CA and reaches the API stand-in.
    let (status, body) = s.curl_https("/");
    assert_eq!(status, "200");
    assert!(body.contains("CHT API stand-in"), "{body}");
    let (status, body) = s.curl_https("/api/info");
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("200", "{\"version\": \"5.2.0\"}"),
        "the API answers through nginx once CouchDB does"
    );
    assert_eq!(s.curl_http_status(), "301");
    let openssl = tool("openssl", "apt-get install openssl");
    let connect = format!("localhost:{}", s.https);
    let ca = s.ca();
    let out = std::process::Command::new(&openssl)
        .args([
            "s_client",
            "-connect",
            &connect,
            "-CAfile",
            &ca,
            "-verify_return_error",
            "-verify_hostname",
            "localhost",
            "-servername",
            "localhost",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Verify return code: 0 (ok)"),
        "{text}"
    );

    // Compose, v1 and v2, sees the same project; names and labels follow compose.
    let dir = s.dir();
    for cli in crate::common::composes() {
        let ps = s.compose(&cli, &["ps"]);
        assert_eq!(ps.code, 0, "{}: {ps:#?}", cli.label);
        for service in SERVICES_5X {
            assert!(
                ps.stdout.contains(&format!("{}-{service}-1", s.name)),
                "{}: {service} in {}",
                cli.label,
                ps.stdout
            );
        }
    }
    let upgrade = format!("{}-upgrade", s.name);
    assert_eq!(
        s.containers("com.docker.compose.project", &upgrade),
        [format!("{upgrade}-cht-upgrade-service-1")]
    );
    assert_eq!(s.all_containers().len(), 7);

    // Data: CouchDB wrote into COUCHDB_DATA; our own marker must survive everything.
    let data = dir.join("couchdb");
    s.couch_wrote(&data);
    std::fs::write(data.join("test-marker"), "keep me").expect("marker");

    // up again: one stack, nothing recreated (the same container ids), nothing said
    // about containers. (Times are the benchmark's business, not a test's.)
    let ids = s.ids();
    let again = s.up(&[]).ok();
    assert_eq!(s.ids(), ids, "{again:#?}");
    assert!(
        !again.stderr.contains("created container") && !again.stderr.contains("removed"),
        "{again:#?}"
    );
    assert_eq!(s.all_containers().len(), 7);
    eprintln!("first up: {first:?}");

    // stop keeps containers; status says so; stop twice is fine.
    s.cmd("stop", &[]).ok();
    let status = s.cmd("status", &["--json"]).ok();
    let json: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
    assert_eq!(json["state"], "stopped", "{json}");
    assert!(
        s.cmd("stop", &[])
            .ok()
            .stdout
            .contains("nothing was running")
    );
    s.up(&[]).ok();
    assert_eq!(s.curl_https("/").0, "200");

    // down removes containers and the network, keeps volumes, data and files; twice is fine.
    s.cmd("down", &[]).ok();
    s.cmd("down", &[]).ok();
    assert!(s.all_containers().is_empty());
    assert!(!s.network_exists());
    let volumes = s.volumes();
    assert_eq!(
        volumes,
        [
            format!("{}_cht-credentials", s.name),
            format!("{}_cht-ssl", s.name)
        ]
    );
    assert_eq!(
        std::fs::read_to_string(data.join("test-marker")).expect("marker"),
        "keep me"
    );
    s.up(&[]).ok();
    assert_eq!(s.curl_https("/").0, "200");
    assert_eq!(
        std::fs::read_to_string(data.join("test-marker")).expect("marker"),
        "keep me"
    );

    // logs of one service.
    let logs = s.cmd("logs", &["api", "--tail", "5"]).ok();
    assert!(
        logs.stdout.contains("api stand-in: ") && logs.stdout.contains("\"GET / HTTP/1.0\" 200"),
        "the API stand-in logs requests: {logs:#?}"
    );

    // destroy refuses without a terminal, then removes everything with --yes.
    let refused = s.cmd("destroy", &[]);
    assert!(refused.one_line_error().contains("--yes"));
    assert!(dir.exists());
    s.cmd("destroy", &["--yes"]).ok();
    assert!(!dir.exists());
    assert!(s.all_containers().is_empty());
    assert!(s.volumes().is_empty());
    assert!(!s.network_exists());
    let missing = s.cmd("stop", &[]);
    assert!(
        missing.one_line_error().contains("no project named"),
        "{missing:#?}"
    );
}

#[test]
fn two_projects_4x_and_5x_side_by_side_and_stopping_one_leaves_the_other() {
    let a = Stack::new("sidea");
    let b = Stack::new("sideb");
    a.up(&[]).ok();
    b.up(&["--cht-version", "4.22.0"]).ok();
    assert_eq!(a.curl_https("/").0, "200");
    assert_eq!(b.curl_https("/").0, "200");
    // Each under its own host name (so browsers keep their logins apart), verified by curl
    // against the home CA; neither certificate covers the other's name.
    let (a_host, b_host) = (
        format!("{}.localhost", a.name),
        format!("{}.localhost", b.name),
    );
    assert_ne!(a_host, b_host);
    assert_eq!(a.curl_https_at(&a_host, "/").0, "200");
    assert_eq!(b.curl_https_at(&b_host, "/").0, "200");
    let curl = crate::common::tool("curl", "apt-get install curl");
    let crossed = run_tool(
        &curl,
        &[
            "-sS",
            "--cacert",
            &a.ca(),
            &format!("https://{b_host}:{}/", a.https),
        ],
        Path::new("/"),
    );
    assert_ne!(
        crossed.code, 0,
        "a's certificate does not cover b's name: {crossed:#?}"
    );
    let b_services = b.containers("com.docker.compose.project", &b.name);
    assert!(
        b_services.iter().any(|c| c.ends_with("-healthcheck-1")),
        "{b_services:?}"
    );
    assert!(
        !b_services.iter().any(|c| c.ends_with("-nouveau-1")),
        "{b_services:?}"
    );
    a.cmd("stop", &[]).ok();
    assert_eq!(b.curl_https("/").0, "200", "b still serves after a stops");
    let b_json: serde_json::Value =
        serde_json::from_str(&b.cmd("status", &["--json"]).ok().stdout).expect("json");
    assert_eq!(b_json["state"], "running");
    a.cmd("down", &[]).ok();
    assert_eq!(b.containers("com.docker.compose.project", &b.name).len(), 6);
}

#[test]
fn a_real_browser_trusts_the_home_ca_and_only_with_it() {
    let s = Stack::new("browser");
    s.up(&[]).ok();
    let certutil = tool("certutil", "apt-get install libnss3-tools");
    let url = format!("https://localhost:{}/", s.https);
    let browse = |home: &Path| crate::common::chromium(home, &url);
    let trusted = tempfile::tempdir().expect("tmp");
    let nssdb = trusted.path().join(".pki/nssdb");
    std::fs::create_dir_all(&nssdb).expect("mkdir");
    let db = format!("sql:{}", nssdb.display());
    assert_eq!(
        run_tool(
            &certutil,
            &["-N", "-d", &db, "--empty-password"],
            Path::new("/")
        )
        .code,
        0
    );
    let ca = s.ca();
    assert_eq!(
        run_tool(
            &certutil,
            &["-A", "-d", &db, "-t", "C,,", "-n", "cht-dev", "-i", &ca],
            Path::new("/")
        )
        .code,
        0
    );
    let page = browse(trusted.path());
    assert!(page.contains("CHT API stand-in"), "with the CA: {page}");
    let untrusted = tempfile::tempdir().expect("tmp");
    let page = browse(untrusted.path());
    assert!(
        !page.contains("CHT API stand-in") && page.contains("ERR_CERT_AUTHORITY_INVALID"),
        "without the CA the page must not load, for the certificate's sake: {page}"
    );
}

#[test]
fn missing_images_are_all_named_and_nothing_starts() {
    require_docker();
    let cht = ChtDev::new();
    let run = cht.run(&[
        "up",
        "nomg",
        "--image-registry",
        "cht-dev-absent.local",
        "--pull",
        "never",
    ]);
    let line = run.one_line_error();
    for service in [
        "cht-api",
        "cht-nginx",
        "cht-couchdb",
        "cht-couchdb-nouveau",
        "cht-upgrade-service",
    ] {
        assert!(
            line.contains(&format!("cht-dev-absent.local/{service}:")),
            "{service} in {line}"
        );
    }
    assert!(
        docker_names(&[
            "ps",
            "-a",
            "--filter",
            "label=com.docker.compose.project=nomg",
            "--format",
            "{{.Names}}"
        ])
        .is_empty()
    );
}

#[test]
fn the_engine_unreachable_is_one_clear_line_for_every_command() {
    let cht = ChtDev::new().env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    cht.run(&["init", "off"]).ok();
    for args in [
        vec!["up", "off"],
        vec!["up"],
        vec!["status", "off"],
        vec!["stop", "off"],
        vec!["down", "off"],
        vec!["logs", "off"],
        vec!["destroy", "off", "--yes"],
    ] {
        let line = cht.run(&args).one_line_error();
        assert!(
            line.contains("cannot reach the Docker engine at unix:///nonexistent/docker.sock: is Docker running?"),
            "{args:?}: {line}"
        );
    }
    assert!(cht.project("off").join(".env").is_file(), "nothing lost");
    let fresh = ChtDev::new().env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    fresh.run(&["up"]).one_line_error();
    assert!(
        !fresh.home().join("cht").exists(),
        "up without an engine creates no project"
    );
}

#[test]
fn timeout_names_the_failing_service_with_its_logs() {
    let s = Stack::new("crash");
    s.init();
    s.edit(
        "compose/cht-core.yml",
        &format!("{}/cht-api:5.2.0", s.registry),
        &format!("{}/cht-crash:latest", s.registry),
    );
    let started = Instant::now();
    let run = s
        .cht
        .run(&["up", &s.name, "--pull", "never", "--timeout", "30"]);
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("not running: api"), "{run:#?}");
    assert!(
        run.stderr.contains("stand-in crashing on purpose"),
        "{run:#?}"
    );
    assert!(
        run.stderr.contains(&format!("cht-dev logs {} api", s.name)),
        "{run:#?}"
    );
}

#[test]
fn ctrl_c_stops_up_promptly_and_the_next_up_succeeds() {
    let s = Stack::new("sigint");
    s.init();
    // An api that never answers keeps `up` waiting for readiness, so the interrupt always
    // lands while `up` is at work (containers made and started, the wait under way).
    let core = s.dir().join("compose/cht-core.yml");
    let text = s.edit(
        "compose/cht-core.yml",
        &format!("{}/cht-api:5.2.0", s.registry),
        &format!("{}/cht-crash:latest", s.registry),
    );
    let child = s.spawn_up();
    // Interrupt once the containers exist.
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.containers("com.docker.compose.project", &s.name).len() < 6 {
        assert!(Instant::now() < deadline, "up made no containers");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (output, took) = crate::common::interrupt(child);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("error: interrupted"), "{stderr}");
    // The next up carries on from where it stopped, with the real api.
    std::fs::write(&core, text).expect("restore");
    s.up(&[]).ok();
    assert_eq!(s.all_containers().len(), 7, "one container per service");
    assert_eq!(s.curl_https("/").0, "200");
}

#[test]
fn compose_v1_and_v2_can_take_the_containers_over_and_cht_dev_still_finds_them() {
    let s = Stack::new("takeover");
    s.up(&[]).ok();
    s.wait_boots(1);
    for cli in crate::common::composes() {
        let before = s.ids();
        // What a user may run by hand, as the upgrade service does at boot.
        let up = s.compose(&cli, &["up", "-d", "--remove-orphans"]);
        assert_eq!(
            up.code, 0,
            "compose {} takes over without conflicts: {up:#?}",
            cli.label
        );
        if cli.label == format!("v2 {STANDIN_SUITE}") {
            // The upgrade service's own compose version agrees with every label.
            assert_eq!(s.ids(), before, "{up:#?}");
            assert!(!up.stderr.contains("Recreate"), "{up:#?}");
        }
        let upgrade = format!("{}-upgrade", s.name);
        assert_eq!(
            s.containers("com.docker.compose.project", &upgrade).len(),
            1,
            "the upgrade service survives --remove-orphans of compose {}",
            cli.label
        );
        let status: serde_json::Value =
            serde_json::from_str(&s.cmd("status", &["--json"]).ok().stdout).expect("json");
        assert_eq!(status["state"], "running", "{}: {status}", cli.label);
        // cht-dev converges back and cleans up compose's containers by label.
        s.up(&[]).ok();
        assert_eq!(s.all_containers().len(), 7, "after compose {}", cli.label);
    }
    s.cmd("down", &[]).ok();
    assert!(s.all_containers().is_empty());
}

#[test]
fn an_expiring_certificate_is_reissued_on_up_and_nginx_serves_the_new_one() {
    let s = Stack::new("renew");
    s.up(&[]).ok();
    let openssl = tool("openssl", "apt-get install openssl");
    let served_end = || {
        let connect = format!("localhost:{}", s.https);
        let out = std::process::Command::new(&openssl)
            .args(["s_client", "-connect", &connect, "-servername", "localhost"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl");
        let pem = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut child = std::process::Command::new(&openssl)
            .args(["x509", "-noout", "-enddate"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("x509");
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(pem.as_bytes())
            .expect("write");
        String::from_utf8_lossy(&child.wait_with_output().expect("wait").stdout).into_owned()
    };
    let before = served_end();
    // Replace the project certificate with one that expires in 10 days (signed by the home CA).
    let home = cht_dev::home::Home::at(&s.cht.home()).expect("home");
    let ca = cht_dev::tls::Ca::load(&cht_dev::tls::CaFiles::of(&home)).expect("ca");
    let short = ca
        .issue_leaf_for_days(&s.name, &cht_dev::tls::project_names(&s.name, &[]), 10)
        .expect("leaf");
    std::fs::write(s.dir().join("certs/cert.pem"), &short.cert_pem).expect("cert");
    std::fs::write(s.dir().join("certs/key.pem"), &short.key_pem).expect("key");
    let up = s.up(&[]).ok();
    assert!(
        up.stderr.contains("reissued the project certificate"),
        "{up:#?}"
    );
    assert!(up.stderr.contains("reloaded nginx"), "{up:#?}");
    let file_end = run_tool(
        &openssl,
        &["x509", "-noout", "-enddate", "-in", "certs/cert.pem"],
        &s.dir(),
    )
    .stdout;
    // `nginx -s reload` is asynchronous: old workers may answer for a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut after = served_end();
    while after.trim() != file_end.trim() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        after = served_end();
    }
    assert!(
        before.contains("notAfter=") && after.contains("notAfter="),
        "{before} {after}"
    );
    assert_eq!(
        after.trim(),
        file_end.trim(),
        "nginx serves the reissued certificate"
    );
    assert_eq!(s.curl_https("/").0, "200");
}

#[test]
fn logs_follow_streams_new_lines() {
    let s = Stack::new("follow");
    s.up(&[]).ok();
    let mut child = s
        .cht
        .command()
        .args(["logs", &s.name, "api", "--follow", "--tail", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // A request, then its line awaited; again until one shows (the stream attaches at a
    // moment the test cannot see, and `--tail 0` shows nothing from before it).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = false;
    let mut asked = 0;
    while Instant::now() < deadline && !seen {
        asked += 1;
        // The API hands the path to CouchDB, which asks for a login.
        assert_eq!(s.curl_https(&format!("/followed-path-{asked}")).0, "401");
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
            if line.contains("/followed-path") {
                seen = true;
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen, "logs --follow showed the new request");
}
