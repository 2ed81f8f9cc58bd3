//! End-to-end tests of `init`, `ls`, `versions`, `ca` and `completions`, run as the
//! real binary in a temporary home, with every generated file checked by outside
//! tools: the compose CLI, check-jsonschema's compose-spec schema and openssl.

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;

use crate::common::{ChtDev, mode, run_tool, tool};

/// Reads a project's `.env` into (key, value) pairs.
fn env_of(dir: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(dir.join(".env"))
        .expect(".env")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// The value of `key` in a project's `.env`.
fn env_get(dir: &Path, key: &str) -> String {
    env_of(dir)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("{key} missing from .env"))
}

/// Asserts that every compose CLI (v1, and v2 from trixie and sid) accepts the project's
/// files; returns v1's resolved config.
fn compose_config(dir: &Path, files: &[&str]) -> String {
    let mut args = vec!["--env-file", ".env"];
    for f in files {
        args.extend(["-f", f]);
    }
    args.push("config");
    let mut first = None;
    for cli in crate::common::composes() {
        let run = cli.run(&args, dir);
        assert_eq!(
            run.code, 0,
            "compose {} config refused {files:?}: {run:#?}",
            cli.label
        );
        first.get_or_insert(run.stdout);
    }
    first.unwrap_or_default()
}

#[test]
fn two_projects_share_one_ca_and_never_collide() {
    let cht = ChtDev::new();
    let a = cht.run(&["init", "a"]).ok();
    assert!(a.stdout.contains("CHT 5.2.0"), "{a:#?}");
    let b = cht
        .run(&[
            "init",
            "b",
            "--cht-version",
            "4.22.0",
            "--host",
            "cht.example.org",
        ])
        .ok();
    assert!(b.stdout.contains("CHT 4.22.0"), "{b:#?}");

    let (pa, pb) = (cht.project("a"), cht.project("b"));
    // The documented layout, with secrets private.
    for dir in [&pa, &pb] {
        for file in [
            ".env",
            "compose/cht-core.yml",
            "compose/cht-couchdb.yml",
            "upgrade-service.yml",
            "certs/cert.pem",
            "certs/key.pem",
        ] {
            assert!(
                dir.join(file).is_file(),
                "{} missing",
                dir.join(file).display()
            );
        }
        assert!(dir.join("couchdb").is_dir());
        assert_eq!(mode(&dir.join(".env")), 0o600);
        assert_eq!(mode(&dir.join("certs/key.pem")), 0o600);
    }
    let ca = cht.home().join("ca/ca.pem");
    assert_eq!(mode(&cht.home().join("ca/ca-key.pem")), 0o600);

    // Ports: the helper's pair first, then the next free pair; all four distinct.
    let ports: Vec<u16> = [&pa, &pb]
        .iter()
        .flat_map(|d| {
            [
                env_get(d, "NGINX_HTTP_PORT"),
                env_get(d, "NGINX_HTTPS_PORT"),
            ]
        })
        .map(|p| p.parse().expect("port"))
        .collect();
    let mut unique = ports.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4, "{ports:?}");
    assert!(ports[0] >= 10080 && ports[1] >= 10443);
    assert!(ports[2] > ports[0] && ports[3] > ports[1], "{ports:?}");

    // Credentials are random and strong; the helper's variable names are all there.
    let (pwa, pwb) = (
        env_get(&pa, "COUCHDB_PASSWORD"),
        env_get(&pb, "COUCHDB_PASSWORD"),
    );
    assert!(pwa.len() >= 20 && pwa != "password" && pwa != pwb);
    assert_ne!(
        env_get(&pa, "COUCHDB_SECRET"),
        env_get(&pb, "COUCHDB_SECRET")
    );
    assert_ne!(env_get(&pa, "COUCHDB_UUID"), env_get(&pb, "COUCHDB_UUID"));
    for key in [
        "NGINX_HTTP_PORT",
        "NGINX_HTTPS_PORT",
        "COUCHDB_USER",
        "COUCHDB_PASSWORD",
        "COUCHDB_SECRET",
        "COUCHDB_UUID",
        "COUCHDB_DATA",
        "CHT_COMPOSE_PROJECT_NAME",
        "CHT_COMPOSE_PATH",
        "DOCKER_CONFIG_PATH",
        "CHT_NETWORK",
        "CERTIFICATE_MODE",
    ] {
        env_get(&pa, key);
    }
    assert_eq!(env_get(&pa, "CHT_NETWORK"), "a-cht-net");
    assert_eq!(env_get(&pa, "CERTIFICATE_MODE"), "OWN_CERT");
    assert_eq!(
        env_get(&pa, "COUCHDB_DATA"),
        format!("{}/couchdb", pa.display())
    );
    assert!(Path::new(&env_get(&pa, "CHT_COMPOSE_PATH")).is_absolute());

    // Outside tools accept every file.
    let schema = tool("check-jsonschema", "pip install check-jsonschema");
    for (dir, version, extra) in [(&pa, "5.2.0", "nouveau"), (&pb, "4.22.0", "healthcheck")] {
        let config = compose_config(dir, &["compose/cht-core.yml", "compose/cht-couchdb.yml"]);
        for service in ["couchdb", "haproxy", "api", "sentinel", "nginx", extra] {
            assert!(
                config.contains(&format!("  {service}:")),
                "{service} in {config}"
            );
        }
        assert!(config.contains(&format!("cht-api:{version}")));
        assert!(config.contains(&format!("{}/couchdb:/opt/couchdb/data", dir.display())));
        let upgrade = compose_config(dir, &["upgrade-service.yml"]);
        assert!(upgrade.contains("public.ecr.aws/s5s3h4s7/cht-upgrade-service:latest"));
        assert!(upgrade.contains(&format!(
            "COUCHDB_PASSWORD: {}",
            env_get(dir, "COUCHDB_PASSWORD")
        )));
        let run = run_tool(
            &schema,
            &[
                "--builtin-schema",
                "vendor.compose-spec",
                "compose/cht-core.yml",
                "compose/cht-couchdb.yml",
                "upgrade-service.yml",
            ],
            dir,
        );
        assert_eq!(run.code, 0, "compose-spec schema: {run:#?}");
        let openssl = tool("openssl", "apt-get install openssl");
        let run = run_tool(
            &openssl,
            &[
                "verify",
                "-x509_strict",
                "-purpose",
                "sslserver",
                "-CAfile",
                ca.to_str().expect("utf8"),
                "certs/cert.pem",
            ],
            dir,
        );
        assert_eq!(run.code, 0, "openssl verify: {run:#?}");
    }
    let text = run_tool(
        &tool("openssl", "apt-get install openssl"),
        &["x509", "-in", "certs/cert.pem", "-noout", "-text"],
        &pb,
    )
    .stdout;
    assert!(
        text.contains("DNS:cht.example.org") && text.contains("DNS:localhost"),
        "{text}"
    );
    assert!(
        text.contains("IP Address:127.0.0.1") && text.contains("TLS Web Server Authentication")
    );
    assert!(
        text.contains("prime256v1") || text.contains("P-256"),
        "{text}"
    );

    // ls shows both, in order, with versions and URLs.
    let ls = cht.run(&["ls", "--json"]).ok();
    let rows: serde_json::Value = serde_json::from_str(&ls.stdout).expect("json");
    assert_eq!(rows[0]["name"], "a");
    assert_eq!(rows[0]["version"], "5.2.0");
    assert_eq!(rows[1]["name"], "b");
    assert_eq!(rows[1]["version"], "4.22.0");
    // Each under its own host name, so their logins (cookies) stay apart.
    assert_eq!(rows[1]["url"], format!("https://b.localhost:{}/", ports[3]));
    let table = cht.run(&["ls"]).ok().stdout;
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains(&format!("https://a.localhost:{}/", ports[1])));
}

#[test]
fn bad_input_fails_with_one_line_and_writes_nothing() {
    let cht = ChtDev::new();
    // In an empty home, nothing at all may be created.
    for args in [
        vec!["init", "Bad"],
        vec!["init", "a.b"],
        vec!["init", "-x"],
        vec!["init", "ca"],
        vec!["init", "a", "--cht-version", "9.9.9"],
        vec!["init", "a", "--http-port", "0"],
        vec!["init", "a", "--https-port", "70000"],
        vec!["init", "a", "--http-port", "abc"],
        vec!["init", "a", "--http-port", "18080", "--https-port", "18080"],
        vec!["init", "a", "--image-registry", "bad registry"],
        vec!["init", "a", "--host", "bad host"],
        vec!["init"],
        vec!["frobnicate"],
    ] {
        let run = cht.run(&args);
        let line = run.one_line_error();
        assert!(!cht.home().exists(), "{args:?} created the home: {line}");
        assert!(run.stdout.is_empty(), "{args:?}: {run:#?}");
    }
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_cht-dev"))
        .args(["--home", "/tmp/x:y", "init", "a"])
        .output()
        .expect("run");
    let run = crate::common::to_run(run);
    assert!(run.one_line_error().contains("cannot carry"), "{run:#?}");

    // With a project present: busy ports, taken ports, and re-init change nothing.
    cht.run(&["init", "a"]).ok();
    let before = cht.tree();
    let held = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
    let busy = held.local_addr().expect("addr").port().to_string();
    let a_http = env_get(&cht.project("a"), "NGINX_HTTP_PORT");
    for (args, expect) in [
        (vec!["init", "b", "--http-port", busy.as_str()], "listening"),
        (
            vec!["init", "b", "--https-port", busy.as_str()],
            "--https-port",
        ),
        (
            vec!["init", "b", "--http-port", a_http.as_str()],
            "project \"a\" uses it",
        ),
        (
            vec!["init", "b", "--couchdb-nodes", "2"],
            "--couchdb-nodes 2: CHT runs CouchDB as a single node or as upstream's three-node cluster; use 1 or 3",
        ),
        (vec!["init", "a"], "already exists"),
        (
            vec!["init", "a", "--cht-version", "4.22.0"],
            "already exists",
        ),
    ] {
        let run = cht.run(&args);
        let line = run.one_line_error();
        assert!(line.contains(expect), "{args:?}: {line}");
        assert_eq!(cht.tree(), before, "{args:?} changed the home");
    }
    let unknown = cht
        .run(&["init", "b", "--cht-version", "4.0.0"])
        .one_line_error();
    assert!(
        unknown.contains("4.22.0") && unknown.contains("5.2.0"),
        "{unknown}"
    );
    assert_eq!(cht.run(&["init", "Bad"]).code, 2);
}

#[test]
fn explicit_ports_and_registry_are_honoured() {
    let cht = ChtDev::new();
    cht.run(&[
        "init",
        "ci",
        "--http-port",
        "18081",
        "--https-port",
        "18444",
        "--image-registry",
        "localhost:5000/medic/",
        "--cht-version",
        "4.20.1",
    ])
    .ok();
    let dir = cht.project("ci");
    assert_eq!(env_get(&dir, "NGINX_HTTP_PORT"), "18081");
    assert_eq!(env_get(&dir, "NGINX_HTTPS_PORT"), "18444");
    let config = compose_config(&dir, &["compose/cht-core.yml", "compose/cht-couchdb.yml"]);
    assert!(
        config.contains("localhost:5000/medic/cht-haproxy-healthcheck:4.20.1"),
        "{config}"
    );
    assert!(
        config.contains("published: 18444") || config.contains("18444:443"),
        "{config}"
    );
    let upgrade = compose_config(&dir, &["upgrade-service.yml"]);
    assert!(
        upgrade.contains("localhost:5000/medic/cht-upgrade-service:latest"),
        "{upgrade}"
    );
}

#[test]
fn versions_ca_and_completions() {
    let cht = ChtDev::new();
    let versions = cht.run(&["versions"]).ok().stdout;
    let first = versions.lines().next().expect("a line");
    assert!(
        first.starts_with("5.2.0") && first.contains("(default)"),
        "{versions}"
    );
    assert!(versions.contains("4.22.0") && versions.contains("healthcheck"));
    let json: serde_json::Value =
        serde_json::from_str(&cht.run(&["versions", "--json"]).ok().stdout).expect("json");
    assert_eq!(json["default"], "5.2.0");

    let der = cht.scratch().join("ca.crt");
    let out = cht
        .run(&["ca", "--der", der.to_str().expect("utf8")])
        .ok()
        .stdout;
    for word in [
        "sha256:",
        "expires:",
        "macOS",
        "Windows",
        "Android",
        "the CHT Android app never trusts a CA a user installed",
        "update-ca-certificates",
    ] {
        assert!(out.contains(word), "{word} in {out}");
    }
    let openssl = tool("openssl", "apt-get install openssl");
    let ca_pem = cht.home().join("ca/ca.pem");
    let fp = run_tool(
        &openssl,
        &[
            "x509",
            "-in",
            ca_pem.to_str().expect("utf8"),
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
        cht.scratch(),
    )
    .stdout;
    let fp = fp
        .trim()
        .rsplit('=')
        .next()
        .expect("fingerprint")
        .to_string();
    assert!(out.contains(&fp), "{fp} in {out}");
    let from_der = run_tool(
        &openssl,
        &[
            "x509",
            "-inform",
            "der",
            "-in",
            der.to_str().expect("utf8"),
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
        cht.scratch(),
    );
    assert_eq!(from_der.code, 0, "{from_der:#?}");
    assert!(from_der.stdout.contains(&fp));
    let text = run_tool(
        &openssl,
        &[
            "x509",
            "-in",
            ca_pem.to_str().expect("utf8"),
            "-noout",
            "-text",
        ],
        cht.scratch(),
    )
    .stdout;
    assert!(
        text.contains("CA:TRUE, pathlen:0") && text.contains("Certificate Sign"),
        "{text}"
    );
    assert!(text.contains("cht-dev local CA"));

    // The CA is made once per home: a second call shows the same fingerprint.
    let again = cht.run(&["ca"]).ok().stdout;
    assert!(again.contains(&fp) && !again.contains("made a new local CA"));

    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = cht.run(&["completions", shell]).ok().stdout;
        assert!(
            script.contains("cht-dev") && script.contains("init"),
            "{shell}"
        );
    }
    assert_ne!(cht.run(&["completions", "tcsh"]).code, 0);
}

#[test]
fn help_has_examples_and_output_is_plain_and_quiet_when_asked() {
    let cht = ChtDev::new();
    for cmd in [
        vec!["--help"],
        vec!["init", "--help"],
        vec!["ls", "--help"],
        vec!["versions", "--help"],
        vec!["ca", "--help"],
        vec!["completions", "--help"],
    ] {
        let help = cht.run(&cmd).ok().stdout;
        assert!(help.contains("Examples:"), "{cmd:?}: {help}");
    }
    let quiet = cht.run(&["--quiet", "init", "q"]).ok();
    assert!(quiet.stdout.is_empty(), "{quiet:#?}");
    assert!(cht.project("q").join(".env").is_file());
    // Not a terminal: no escape codes, even without NO_COLOR.
    let mut cmd = cht.command();
    cmd.env_remove("NO_COLOR").args(["init", "plain"]);
    let run = crate::common::to_run(cmd.output().expect("run"));
    assert_eq!(run.code, 0);
    assert!(!run.stdout.contains('\u{1b}'), "{run:#?}");
    let ls = cht.run(&["ls"]).ok().stdout;
    assert!(!ls.contains('\u{1b}'));
}

#[test]
fn home_comes_from_the_environment_when_not_given() {
    let dir = tempfile::tempdir().expect("tmp");
    let home = dir.path().join("from-env");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cht-dev"))
        .env("CHT_DEV_HOME", &home)
        .args(["init", "e"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    assert!(home.join("e/.env").is_file());
    assert!(home.join("ca/ca.pem").is_file());
}

#[test]
fn bad_cli_input_table_one_line_non_zero_nothing_written() {
    let cht = ChtDev::new();
    let file_home = cht.scratch().join("a-file");
    std::fs::write(&file_home, "x").expect("write");
    let der_dir = cht.scratch().to_str().expect("utf8").to_string();
    let long_name = "x".repeat(64);
    let table: Vec<(Vec<&str>, &str)> = vec![
        (vec!["init", "UP"], "invalid project name"),
        (vec!["init", "a/b"], "invalid project name"),
        (vec!["init", long_name.as_str()], "longer than 63"),
        (vec!["init", "x-upgrade"], "reserved"),
        (
            vec!["init", "a", "--http-port", "-1"],
            "unexpected argument",
        ),
        (vec!["init", "a", "--https-port", "65536"], "1 to 65535"),
        (
            vec!["init", "a", "--cht-version", "latest"],
            "unknown CHT version",
        ),
        (
            vec!["init", "a", "--cht-version", "5"],
            "unknown CHT version",
        ),
        (
            vec!["init", "a", "--image-registry", "https://reg.example"],
            "invalid image registry",
        ),
        (
            vec!["init", "a", "--image-registry", "reg:0/x"],
            "registry port",
        ),
        (
            vec!["init", "a", "--image-registry", "reg/UPPER"],
            "lowercase",
        ),
        (
            vec!["init", "a", "--host", "under_score.example"],
            "invalid host",
        ),
        (vec!["init", "a", "--host=-lead.example"], "invalid host"),
        (vec!["up", "Bad"], "invalid project name"),
        (
            vec!["up", "a", "--pull", "sometimes"],
            "invalid value 'sometimes'",
        ),
        (vec!["up", "a", "--timeout", "soon"], "invalid value 'soon'"),
        (
            vec!["up", "a", "--cht-version", "3.17.0"],
            "unknown CHT version",
        ),
        (vec!["status", "nope"], "no project named"),
        (vec!["stop", "nope"], "no project named"),
        (vec!["down", "nope"], "no project named"),
        (vec!["destroy", "nope", "--yes"], "no project named"),
        (vec!["logs"], "required arguments"),
        (vec!["logs", "nope"], "no project named"),
        (vec!["ca", "--der", der_dir.as_str()], "it is a folder"),
        (
            vec!["ca", "--der", "/nonexistent-folder/ca.crt"],
            "folder does not exist",
        ),
        (vec!["status"], "no projects in"),
        (
            vec!["adopt", "/nonexistent-helper.env"],
            "/nonexistent-helper.env",
        ),
        (
            vec!["upgrade", "nope", "--cht-version", "5.2.0"],
            "no project named",
        ),
    ];
    for (args, expect) in &table {
        let run = cht.run(args);
        let line = run.one_line_error();
        assert!(line.contains(expect), "{args:?}: {line}");
        assert!(!cht.home().exists(), "{args:?} wrote into the home");
    }
    let run = crate::common::to_run(
        std::process::Command::new(env!("CARGO_BIN_EXE_cht-dev"))
            .arg("--home")
            .arg(&file_home)
            .args(["init", "a"])
            .output()
            .expect("run"),
    );
    assert!(run.one_line_error().contains("not a folder"), "{run:#?}");
}

#[test]
fn folders_are_private_whatever_the_umask() {
    let cht = ChtDev::new();
    let bin = env!("CARGO_BIN_EXE_cht-dev");
    let home = cht.home();
    // A careless umask would make every folder world-writable.
    let run = crate::common::to_run(
        std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg("umask 000; exec \"$0\" --home \"$1\" init open")
            .arg(bin)
            .arg(&home)
            .env("NO_COLOR", "1")
            .output()
            .expect("run"),
    )
    .ok();
    assert!(run.stdout.contains("created project open"), "{run:#?}");
    let dir = home.join("open");
    for (path, want) in [
        (home.clone(), 0o700),
        (home.join("ca"), 0o700),
        (dir.clone(), 0o700),
        (dir.join("compose"), 0o755),
        (dir.join("certs"), 0o755),
        (dir.join("couchdb"), 0o755),
        (dir.join(".env"), 0o600),
        (dir.join("certs/key.pem"), 0o600),
        (home.join("ca/ca-key.pem"), 0o600),
        (dir.join("compose/cht-core.yml"), 0o644),
    ] {
        assert_eq!(mode(&path), want, "{}", path.display());
    }
}

#[test]
fn a_damaged_project_is_listed_as_damaged_and_the_others_still_work() {
    let cht = ChtDev::new();
    cht.run(&["init", "good"]).ok();
    cht.run(&["init", "bad"]).ok();
    let env = cht.project("bad").join(".env");
    let text = std::fs::read_to_string(&env).expect("env");
    std::fs::write(&env, format!("{text}BROKEN=\"no closing quote\n")).expect("write");
    let ls = cht.run(&["ls"]).ok();
    let bad = ls
        .stdout
        .lines()
        .find(|l| l.starts_with("bad "))
        .unwrap_or_default()
        .to_string();
    assert!(
        bad.contains("damaged") && bad.contains("missing closing"),
        "{ls:#?}"
    );
    assert!(ls.stdout.lines().any(|l| l.starts_with("good ")), "{ls:#?}");
    let json: serde_json::Value =
        serde_json::from_str(&cht.run(&["ls", "--json"]).ok().stdout).expect("json");
    assert_eq!(json.as_array().map(Vec::len), Some(2), "{json}");
    // Another project can still be made, and doctor names the damaged one.
    cht.run(&["init", "third"]).ok();
    let doctor = cht.run(&["doctor"]);
    let line = doctor
        .stdout
        .lines()
        .find(|l| l.contains("project bad"))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.starts_with("FAIL") && line.contains("missing closing"),
        "{doctor:#?}"
    );
    // A settings file far larger than settings ever are is refused, not parsed.
    std::fs::write(&env, "X=\"".to_string() + &"a\n".repeat(600_000)).expect("write");
    let ls = cht.run(&["ls"]).ok();
    assert!(
        ls.stdout.contains("more than settings ever need"),
        "{ls:#?}"
    );
}

#[test]
fn a_closed_pipe_ends_output_quietly_with_exit_0() {
    let cht = ChtDev::new();
    let bin = env!("CARGO_BIN_EXE_cht-dev");
    // The reader is gone before cht-dev writes (as `head -1` is after its line); cht-dev
    // must neither complain nor fail.
    let run = crate::common::to_run(
        std::process::Command::new("/bin/bash")
            .arg("-c")
            .arg("set -o pipefail; \"$0\" --home \"$1\" versions | true")
            .arg(bin)
            .arg(cht.home())
            .env("NO_COLOR", "1")
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stderr, "", "{run:#?}");
}

#[test]
fn env_values_read_the_same_in_compose_v1_and_v2_or_are_refused() {
    use cht_dev::project::dotenv::EnvFile;
    let values = [
        "plain",
        "pa$$word",
        "a$b",
        "$HOME",
        "a\\$b",
        "it's",
        "say \"hi\"",
        "back\\slash",
        "sp ace #not a comment",
        "ünïcödé",
        "tab\there",
        "two\nlines",
        "it's\n\"quoted\"\\",
    ];
    let mut env = EnvFile::new();
    let mut services = String::from("services:\n  s:\n    image: busybox\n    environment:\n");
    for (i, value) in values.iter().enumerate() {
        env.set(&format!("V{i}"), *value);
        services.push_str(&format!("      V{i}: ${{V{i}}}\n"));
    }
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join(".env"), env.render(&[]).expect("portable")).expect("env");
    std::fs::write(dir.path().join("docker-compose.yml"), services).expect("compose");
    for cli in crate::common::composes() {
        let run = cli.run(&["config"], dir.path());
        assert_eq!(run.code, 0, "compose {}: {run:#?}", cli.label);
        let doc: serde_json::Value = serde_saphyr::from_str(&run.stdout).expect("yaml");
        for (i, value) in values.iter().enumerate() {
            // `config` prints `$` doubled, as compose files spell a literal dollar.
            let read = doc["services"]["s"]["environment"][format!("V{i}")]
                .as_str()
                .unwrap_or_default()
                .replace("$$", "$");
            assert_eq!(read, *value, "compose {} read V{i}", cli.label);
        }
    }
    // No spelling carries `${` (v1 expands it in every spelling), nor both ' and $:
    // refused with the variable's name.
    for value in ["${HOME}", "it's $5"] {
        env.set("BOTH", value);
        let err = env.render(&[]).expect_err("refused");
        assert!(err.to_string().contains("BOTH holds"), "{err}");
    }
}

#[test]
fn adopt_checks_the_helpers_values_like_flags_and_writes_nothing_when_refused() {
    use crate::common::helper_project;
    let user = tempfile::tempdir().expect("user home");
    let server = crate::common::local_ip::LocalIpServer::start();
    let cht = ChtDev::new()
        .env("HOME", &user.path().display().to_string())
        .with_local_ip(&server);
    let held = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
    let busy = held.local_addr().expect("addr").port().to_string();
    // A first adoption whose data stays in place, outside the home.
    let first = helper_project(user.path(), "first", 21080, 21443);
    cht.run(&["adopt", first.to_str().expect("utf8")]).ok();
    let first_data = user.path().join(".medic/cht-docker/first-dir/couch");
    let before = cht.tree();
    let ca = cht.home().join("ca").display().to_string();
    let nested = first_data.join("inner");
    std::fs::create_dir_all(&nested).expect("mkdir");
    let parent = user.path().parent().expect("parent").display().to_string();
    let (nested, first_data) = (
        nested.display().to_string(),
        first_data.display().to_string(),
    );
    let rows: Vec<(&str, &str, &str)> = vec![
        ("COUCHDB_DATA", "/", "the root folder"),
        ("COUCHDB_DATA", &parent, "holds your home folder"),
        ("COUCHDB_DATA", &ca, "overlaps the cht-dev home"),
        (
            "COUCHDB_DATA",
            &first_data,
            "overlaps the data folder of project \"first\"",
        ),
        (
            "COUCHDB_DATA",
            &nested,
            "overlaps the data folder of project \"first\"",
        ),
        ("COUCHDB_DATA", "/tmp/a:/etc", "contains ':'"),
        ("COUCHDB_DATA", "relative/couch", "not an absolute path"),
        (
            "COUCHDB_DATA",
            "/nonexistent-cht-data",
            "not an existing folder",
        ),
        ("NGINX_HTTP_PORT", "0", "1 to 65535"),
        ("NGINX_HTTPS_PORT", "70000", "1 to 65535"),
        ("NGINX_HTTP_PORT", "80x", "not a port number"),
        ("NGINX_HTTPS_PORT", &busy, "is busy"),
        ("NGINX_HTTP_PORT", "21080", "project \"first\" uses it"),
        ("NGINX_HTTP_PORT", "22443", "give each its own"),
        (
            "DOCKER_CONFIG_PATH",
            "/x\u{1b}[2J;rm -rf ~",
            "control character",
        ),
        ("COUCHDB_USER", "me\u{7}", "control character"),
        ("COUCHDB_PASSWORD", "pa${HOME}ss", "holds ${"),
        ("COUCHDB_PASSWORD", "it's $5", "holds both ' and $"),
    ];
    for (key, value, expect) in &rows {
        let file = helper_project(user.path(), "second", 22080, 22443);
        let text = std::fs::read_to_string(&file).expect("env");
        let line = |l: &str| {
            if l.starts_with(&format!("{key}=")) {
                // Single quotes keep `$` and control characters as written.
                format!("{key}='{}'", value.replace('\'', ""))
            } else {
                l.to_string()
            }
        };
        let mut edited: Vec<String> = text.lines().map(line).collect();
        if key.contains("PASSWORD") && value.contains('\'') {
            edited.retain(|l| !l.starts_with("COUCHDB_PASSWORD="));
            edited.push("COUCHDB_PASSWORD=\"it's $5\"".into());
        }
        std::fs::write(&file, edited.join("\n") + "\n").expect("write");
        let run = cht.run(&["adopt", file.to_str().expect("utf8")]);
        let error = run.one_line_error();
        assert!(
            error.contains("cannot adopt") && error.contains(expect),
            "{key}={value:?}: {error}"
        );
        assert!(!error.contains('\u{1b}'), "{error}");
        assert_eq!(cht.tree(), before, "{key}={value:?} changed the home");
    }
    // A clustered helper project (one data folder per node) cannot be mapped: said so.
    let file = helper_project(user.path(), "cluster", 25080, 25443);
    let text = std::fs::read_to_string(&file).expect("env");
    let clustered: String = text
        .lines()
        .filter(|l| !l.starts_with("COUCHDB_DATA="))
        .map(|l| format!("{l}\n"))
        .chain([
            "DB1_DATA=/srv/db1\n".to_string(),
            "DB2_DATA=/srv/db2\n".to_string(),
        ])
        .collect();
    std::fs::write(&file, clustered).expect("write");
    let error = cht
        .run(&["adopt", file.to_str().expect("utf8")])
        .one_line_error();
    assert!(error.contains("clustered (three-node CouchDB)"), "{error}");
    assert_eq!(cht.tree(), before);
    // A registry read back from the helper's files is checked like --image-registry.
    let file = helper_project(user.path(), "third", 23080, 23443);
    let core = user
        .path()
        .join(".medic/cht-docker/third-dir/compose/cht-core.yml");
    std::fs::write(
        &core,
        "services:\n  api:\n    image: \"r.io\\\"\\n    privileged: true\\n    x: \\\"y/cht-api:4.22.0\"\n",
    )
    .expect("write");
    let error = cht
        .run(&["adopt", file.to_str().expect("utf8")])
        .one_line_error();
    assert!(error.contains("registry"), "{error}");
    assert_eq!(cht.tree(), before);
    // --copy-data refuses a link leading out of the data folder, and leaves nothing.
    let file = helper_project(user.path(), "fourth", 24080, 24443);
    let data = user.path().join(".medic/cht-docker/fourth-dir/couch");
    std::os::unix::fs::symlink(cht.home().join("ca/ca-key.pem"), data.join("leak")).expect("link");
    let error = cht
        .run(&["adopt", file.to_str().expect("utf8"), "--copy-data"])
        .one_line_error();
    assert!(error.contains("leading out of the folder"), "{error}");
    assert_eq!(cht.tree(), before);
    // The printed advice quotes what it took from the file for the shell.
    std::fs::remove_file(data.join("leak")).expect("rm");
    let text = std::fs::read_to_string(&file).expect("env");
    let text = text.replace("DOCKER_CONFIG_PATH=", "DOCKER_CONFIG_PATH='/x/a b;id' #");
    std::fs::write(&file, text).expect("write");
    let run = cht
        .run(&["adopt", file.to_str().expect("utf8"), "--copy-data"])
        .ok();
    assert!(
        run.stdout.contains("docker compose -p 'a b;id' down"),
        "{run:#?}"
    );
    assert!(
        cht.project("fourth")
            .join("couchdb/helper-marker")
            .is_file()
    );
}

#[test]
fn concurrent_inits_never_share_ports() {
    let cht = ChtDev::new();
    let children: Vec<_> = (0..8)
        .map(|i| {
            cht.command()
                .args(["init", &format!("p{i}")])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn init")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut ports: Vec<String> = (0..8)
        .flat_map(|i| {
            let dir = cht.project(&format!("p{i}"));
            [
                env_get(&dir, "NGINX_HTTP_PORT"),
                env_get(&dir, "NGINX_HTTPS_PORT"),
            ]
        })
        .collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 16, "{ports:?}");
}

#[test]
fn what_a_killed_command_left_is_removed_by_the_next_one() {
    let cht = ChtDev::new();
    cht.run(&["init", "kept"]).ok();
    // What a killed `init` leaves: a staging folder holding a password, named by its pid.
    let mut gone = std::process::Command::new("true").spawn().expect("spawn");
    let dead = gone.id();
    gone.wait().expect("wait");
    let stale = cht.home().join(format!(".staging-p-{dead}"));
    std::fs::create_dir(&stale).expect("mkdir");
    std::fs::write(stale.join(".env"), "COUCHDB_PASSWORD=secret\n").expect("write");
    let half = cht.project("kept").join(format!(".env.new-{dead}"));
    std::fs::write(&half, "COUCHDB_PASSWORD=secret\n").expect("write");
    // A live process's staging folder is its work in progress: left alone.
    let live = cht
        .home()
        .join(format!(".staging-q-{}", std::process::id()));
    std::fs::create_dir(&live).expect("mkdir");
    let ls = cht.run(&["ls"]).ok();
    assert!(ls.stdout.contains("kept"), "{ls:#?}");
    assert!(!stale.exists() && !half.exists());
    assert!(live.is_dir());
}

#[test]
fn ca_advice_quotes_the_home_for_the_shell() {
    let cht = ChtDev::new();
    let home = cht.scratch().join("my home");
    let run = crate::common::to_run(
        std::process::Command::new(env!("CARGO_BIN_EXE_cht-dev"))
            .arg("--home")
            .arg(&home)
            .arg("ca")
            .env("NO_COLOR", "1")
            .output()
            .expect("run"),
    );
    let quoted = format!("'{}'", home.join("ca/ca.pem").display());
    let step = run
        .stdout
        .lines()
        .find(|l| l.contains("sudo cp"))
        .unwrap_or_else(|| panic!("no sudo cp advice: {run:#?}"))
        .to_string();
    assert!(
        step.contains(&format!("sudo cp {quoted} /usr/local/share")),
        "{step}"
    );
    // What the shell makes of the advice is the file itself.
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("cat {quoted}"))
        .output()
        .expect("sh");
    assert!(String::from_utf8_lossy(&out.stdout).contains("BEGIN CERTIFICATE"));
}

#[test]
fn open_hands_the_url_to_the_platforms_opener_or_says_it() {
    // A stand-in xdg-open records what it was asked to open.
    let scratch = tempfile::tempdir().expect("tmp");
    let bin = scratch.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    let record = scratch.path().join("opened");
    std::fs::write(
        bin.join("xdg-open"),
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n",
            record.display()
        ),
    )
    .expect("write");
    std::fs::set_permissions(
        bin.join("xdg-open"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let with_opener = ChtDev::new().env("PATH", &bin.display().to_string());
    with_opener.run(&["init", "web_app"]).ok();
    let ls: serde_json::Value =
        serde_json::from_str(&with_opener.run(&["--json", "ls"]).ok().stdout).expect("json");
    let port = ls[0]["https_port"].as_u64().expect("port");
    let opened = with_opener.run(&["open", "--fauxton"]).ok();
    let url = format!("https://web-app.localhost:{port}/_utils/");
    assert!(
        opened.stdout.contains(&format!("opened {url} (xdg-open)")),
        "{opened:#?}"
    );
    // The opener runs on its own; wait for its line.
    for _ in 0..50 {
        if std::fs::read_to_string(&record).is_ok_and(|t| t.contains(&url)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        std::fs::read_to_string(&record).expect("opened"),
        format!("{url}\n")
    );

    // Without an opener: the URL on stdout, and why on stderr; still a success.
    let without = ChtDev::new().env("PATH", "/nonexistent");
    without.run(&["init", "solo"]).ok();
    let said = without.run(&["open", "solo"]).ok();
    assert!(
        said.stdout.trim().starts_with("https://solo.localhost:"),
        "{said:#?}"
    );
    assert!(
        said.stderr
            .contains("no xdg-open here to open a browser with"),
        "{said:#?}"
    );
}
