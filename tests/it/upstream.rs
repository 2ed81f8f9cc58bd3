//! cht-dev on the upstream-built images (`scripts/upstream-images.sh`): Apache CouchDB built
//! from source with cht-core's entrypoint and cluster set-up, cht-core's nginx with the
//! official entrypoint and `ssl-install.sh`, cht-core's HAProxy config and Lua, and an API
//! stand-in that uses CouchDB for real. Documents go in and come out through HTTPS (nginx,
//! the API, HAProxy, CouchDB), and a real registry (Debian's `docker-registry`) serves pulls.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::common::engine::{Stack, UPSTREAM, free_ports};
use crate::common::{ChtDev, tool};

/// Polls `check` every half second until it gives Some, for at most `secs`; fails with
/// `what` and the last value seen.
#[track_caller]
fn wait_for<T: std::fmt::Debug>(
    secs: u64,
    what: &str,
    mut check: impl FnMut() -> (Option<T>, String),
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (done, seen) = check();
        if let Some(value) = done {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} within {secs} s: {seen}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Runs the docker CLI on the stack's engine, which must succeed; returns stdout then stderr.
#[track_caller]
fn docker_ok(s: &Stack, args: &[&str]) -> String {
    let out = s.cht.docker().args(args).output().expect("docker");
    assert!(out.status.success(), "docker {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// CouchDB's `_membership` through HTTPS, as (all_nodes, cluster_nodes) counts, once both
/// list `nodes`.
fn membership_of(s: &Stack, nodes: usize) {
    wait_for(120, &format!("_membership lists {nodes} nodes"), || {
        let (status, body) = s.couch("GET", "/_membership", None);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let count = |key: &str| json[key].as_array().map_or(0, Vec::len);
        let done =
            status == "200" && count("all_nodes") == nodes && count("cluster_nodes") == nodes;
        (done.then_some(()), format!("{status} {body}"))
    })
}

/// The `n` of every document in `medic` whose id starts with `prefix`, sorted.
fn numbers(s: &Stack, prefix: &str) -> Vec<u64> {
    let (status, body) = s.couch(
        "GET",
        &format!("/medic/_all_docs?include_docs=true&startkey=%22{prefix}%22&endkey=%22{prefix}%EF%BF%B0%22"),
        None,
    );
    assert_eq!(status, "200", "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    let mut all: Vec<u64> = json["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["doc"]["n"].as_u64())
        .collect();
    all.sort_unstable();
    all
}

/// Writes `count` documents `{prefix}NNNNNN` (n from 1) in one `_bulk_docs` through HTTPS.
fn bulk(s: &Stack, prefix: &str, count: u64) {
    let docs: Vec<serde_json::Value> = (1..=count)
        .map(|n| serde_json::json!({"_id": format!("{prefix}{n:06}"), "n": n}))
        .collect();
    let body = serde_json::json!({ "docs": docs }).to_string();
    let (status, answer) = s.couch("POST", "/medic/_bulk_docs", Some(&body));
    assert_eq!(status, "201", "{answer}");
    assert!(!answer.contains("\"error\""), "{answer}");
}

#[test]
fn a_document_written_through_https_lands_in_real_couchdb_and_survives_down_up_and_stop() {
    let s = Stack::new("uponenode");
    s.up(&[]).ok();
    s.put_doc("medic", "kept", 1);
    assert_eq!(s.get_doc("medic", "kept"), Some(1));
    // It is CouchDB's: its own HTTP API on the container, not through nginx, has it.
    let (user, password) = s.admin();
    let direct = docker_ok(
        &s,
        &[
            "exec",
            &format!("{}-couchdb-1", s.name),
            "curl",
            "-sS",
            "-u",
            &format!("{user}:{password}"),
            "http://localhost:5984/medic/kept",
        ],
    );
    assert!(direct.contains("\"n\":1"), "{direct}");
    s.cmd("down", &[]).ok();
    s.up(&[]).ok();
    assert_eq!(s.get_doc("medic", "kept"), Some(1), "after down and up");
    s.cmd("stop", &[]).ok();
    s.up(&[]).ok();
    assert_eq!(s.get_doc("medic", "kept"), Some(1), "after stop and up");
    membership_of(&s, 1);
}

#[test]
fn three_nodes_form_a_cluster_that_keeps_documents_across_down_up_and_a_snapshot() {
    let s = Stack::new("upcluster");
    let (http, https) = (s.http.to_string(), s.https.to_string());
    s.cht
        .run(&[
            "init",
            &s.name,
            "--couchdb-nodes",
            "3",
            "--image-registry",
            UPSTREAM,
            "--http-port",
            &http,
            "--https-port",
            &https,
        ])
        .ok();
    s.up(&["--timeout", "180"]).ok();
    membership_of(&s, 3);

    // Written through node 1's own API, read through node 3's.
    let (user, password) = s.admin();
    let node = |n: u8, args: &[&str]| {
        let out = s
            .cht
            .docker()
            .args([
                "exec",
                &format!("{}-couchdb-{n}.local-1", s.name),
                "curl",
                "-sS",
            ])
            .args(["-u", &format!("{user}:{password}")])
            .args(args)
            .output()
            .expect("docker exec");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let put = node(
        1,
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "-d",
            "{\"n\":7}",
            "http://localhost:5984/medic/across",
        ],
    );
    assert!(put.contains("\"ok\":true"), "{put}");
    let read = node(3, &["http://localhost:5984/medic/across"]);
    assert!(
        read.contains("\"n\":7"),
        "node 3 reads node 1's write: {read}"
    );

    bulk(&s, "c", 300);
    s.cmd("down", &[]).ok();
    s.up(&["--timeout", "180"]).ok();
    membership_of(&s, 3);
    assert_eq!(
        numbers(&s, "c"),
        (1..=300).collect::<Vec<_>>(),
        "after down and up"
    );

    s.cht
        .run(&["snapshot", "create", &s.name, "--label", "cluster"])
        .ok();
    for n in [1u64, 150, 300] {
        let id = format!("c{n:06}");
        let (_, doc) = s.couch("GET", &format!("/medic/{id}"), None);
        let rev: serde_json::Value = serde_json::from_str(&doc).expect("json");
        let rev = rev["_rev"].as_str().expect("rev").to_string();
        let (status, body) = s.couch("DELETE", &format!("/medic/{id}?rev={rev}"), None);
        assert_eq!(status, "200", "{body}");
    }
    bulk(&s, "after", 5);
    s.cht
        .run(&[
            "snapshot",
            "restore",
            &s.name,
            "cluster",
            "--yes",
            "--timeout",
            "180",
        ])
        .ok();
    membership_of(&s, 3);
    assert_eq!(
        numbers(&s, "c"),
        (1..=300).collect::<Vec<_>>(),
        "the restore brought back every document"
    );
    assert!(
        numbers(&s, "after").is_empty(),
        "and nothing written after the snapshot"
    );
    assert_eq!(s.get_doc("medic", "across"), Some(7));
}

/// A writer of numbered documents through HTTPS, one at a time: document n is written only
/// once n-1 is acknowledged, so CouchDB can only ever hold a prefix.
struct Writer {
    acked: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(s: &Stack, prefix: &'static str) -> Writer {
        let acked = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (user, password) = s.admin();
        let url = format!("https://localhost:{}/medic/", s.https);
        let ca = s.ca();
        let curl = tool("curl", "apt-get install curl");
        let (a, st) = (acked.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut n = 1;
            while !st.load(Ordering::SeqCst) {
                let out = Command::new(&curl)
                    .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-m", "60"])
                    .args(["--cacert", &ca, "-u", &format!("{user}:{password}")])
                    .args(["-X", "PUT", "-H", "Content-Type: application/json"])
                    .args(["-d", &format!("{{\"n\":{n}}}")])
                    .arg(format!("{url}{prefix}{n:06}"))
                    .output();
                let status = out
                    .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
                    .unwrap_or_default();
                // 409: an earlier try that timed out on our side landed after all.
                if status == "201" || status == "202" || status == "409" {
                    a.store(n, Ordering::SeqCst);
                    n += 1;
                } else {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        });
        Writer {
            acked,
            stop,
            thread: Some(thread),
        }
    }

    fn acked(&self) -> u64 {
        self.acked.load(Ordering::SeqCst)
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("writer");
        }
        self.acked()
    }
}

/// A snapshot taken while a writer keeps writing (and, with `compact`, while CouchDB
/// compacts `medic`) restores to exactly a gap-free prefix 1..k of the writer's documents,
/// k at least what was acknowledged when the snapshot began, and CouchDB opens it.
fn snapshot_under_load(prefix: &str, compact: bool) {
    let s = Stack::new(prefix);
    s.up(&[]).ok();
    if compact {
        // Enough data (about 60 MB) that compaction still runs when the snapshot begins.
        let pad = "x".repeat(2000);
        for round in 0..20 {
            let docs: Vec<serde_json::Value> = (0..1500)
                .map(|i| serde_json::json!({"_id": format!("pad{round}-{i}"), "pad": pad}))
                .collect();
            let (status, body) = s.couch(
                "POST",
                "/medic/_bulk_docs",
                Some(&serde_json::json!({ "docs": docs }).to_string()),
            );
            assert_eq!(status, "201", "{body}");
        }
    }
    let writer = Writer::start(&s, "w");
    wait_for(60, "the writer's first 20 documents", || {
        let n = writer.acked();
        ((n >= 20).then_some(()), n.to_string())
    });
    if compact {
        let (status, body) = s.couch("POST", "/medic/_compact", Some("{}"));
        assert_eq!(status, "202", "{body}");
        wait_for(10, "CouchDB lists the compaction", || {
            let (_, tasks) = s.couch("GET", "/_active_tasks", None);
            (tasks.contains("database_compaction").then_some(()), tasks)
        });
    }
    let before = writer.acked();
    let made = s
        .cht
        .run(&["snapshot", "create", &s.name, "--label", "load"])
        .ok();
    let after = writer.acked();
    if compact {
        // The snapshot holds compaction's files as they were: CouchDB was mid-way.
        let archive = s.dir().join("snapshots/load.tar.zst");
        let listing = Command::new("tar")
            .arg("--zstd")
            .arg("-tf")
            .arg(&archive)
            .output()
            .expect("tar (apt-get install tar zstd)");
        let listing = String::from_utf8_lossy(&listing.stdout).to_string();
        assert!(
            listing.lines().any(|l| l.contains(".compact")),
            "compaction was under way in the snapshot: {listing}"
        );
    }
    std::thread::sleep(Duration::from_secs(1));
    let total = writer.finish();
    assert!(
        total > after,
        "the writer went on after the snapshot: {made:#?}"
    );
    s.cht
        .run(&["snapshot", "restore", &s.name, "load", "--yes"])
        .ok();
    let got = numbers(&s, "w");
    let k = got.len() as u64;
    assert_eq!(
        got,
        (1..=k).collect::<Vec<_>>(),
        "a gap-free prefix (acked before {before}, during {after}, in all {total})"
    );
    assert!(
        k >= before && k <= total,
        "k={k}: at least the {before} acknowledged before the snapshot, at most the {total} written"
    );
    // CouchDB opened the restored data and takes writes again.
    s.put_doc("medic", "after-restore", 1);
    assert_eq!(s.get_doc("medic", "after-restore"), Some(1));
}

#[test]
fn a_snapshot_under_a_writing_load_restores_to_a_prefix_of_the_acknowledged_documents() {
    snapshot_under_load("upload", false);
}

#[test]
fn a_snapshot_while_couchdb_compacts_restores_to_a_prefix_of_the_acknowledged_documents() {
    snapshot_under_load("upcompact", true);
}

#[test]
fn an_upgrade_from_4_22_to_5_2_keeps_every_document() {
    let s = Stack::new("upupgrade");
    s.up(&["--cht-version", "4.22.0"]).ok();
    bulk(&s, "u", 500);
    let (_, info) = s.curl_https("/api/info");
    assert!(info.contains("4.22.0"), "{info}");
    s.cmd("upgrade", &["--cht-version", "5.2.0", "--pull", "never"])
        .ok();
    let (_, info) = s.curl_https("/api/info");
    assert!(info.contains("5.2.0"), "{info}");
    assert_eq!(numbers(&s, "u"), (1..=500).collect::<Vec<_>>());
    let image = s.cht.docker_names(&[
        "inspect",
        "--format",
        "{{.Config.Image}}",
        &format!("{}-couchdb-1", s.name),
    ]);
    assert_eq!(image, [format!("{UPSTREAM}/cht-couchdb:5.2.0")]);
}

/// The certificate nginx serves on `port`, as PEM's base64 body.
fn served_cert(cht: &ChtDev, port: u16) -> String {
    let openssl = tool("openssl", "apt-get install openssl");
    let run = cht.in_network(
        &openssl,
        &[
            "s_client",
            "-connect",
            &format!("localhost:{port}"),
            "-servername",
            "localhost",
        ],
    );
    first_block(&run.stdout)
}

/// The first PEM certificate's base64 body in `text`.
fn first_block(text: &str) -> String {
    text.split("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .and_then(|b| b.split("-----END CERTIFICATE-----").next())
        .map(|b| b.split_whitespace().collect::<String>())
        .unwrap_or_default()
}

/// The id and start time of a container: equal means not recreated and not restarted.
fn started(s: &Stack, container: &str) -> Vec<String> {
    s.cht.docker_names(&[
        "inspect",
        "--format",
        "{{.Id}} {{.State.StartedAt}}",
        container,
    ])
}

#[test]
fn the_real_nginx_keeps_cht_devs_certificates_reloads_on_tls_switches_and_serves_acme_files() {
    let s = Stack::new("uptls");
    s.up(&[]).ok();
    let nginx = format!("{}-nginx-1", s.name);
    let ours =
        || first_block(&std::fs::read_to_string(s.dir().join("certs/cert.pem")).expect("cert"));
    assert_eq!(
        served_cert(&s.cht, s.https),
        ours(),
        "local-ca, first start"
    );
    // ssl-install.sh runs again at every start: it must keep cht-dev's pair.
    docker_ok(&s, &["restart", &nginx]);
    s.up(&[]).ok();
    assert_eq!(
        served_cert(&s.cht, s.https),
        ours(),
        "local-ca, after a restart"
    );
    let logs = docker_ok(&s, &["logs", &nginx]);
    assert!(
        logs.contains("CERTIFICATE MODE = ") && logs.contains("20-envsubst-on-templates.sh"),
        "the real entrypoints ran: {logs}"
    );

    // Switches reload the same container and it serves the new pair.
    let before = started(&s, &nginx);
    let (cert, key) =
        crate::production::openssl_cert(s.cht.scratch(), "own", &["localhost", "own.test"]);
    s.cmd(
        "tls",
        &[
            "own",
            "--cert-file",
            cert.to_str().expect("utf8"),
            "--key-file",
            key.to_str().expect("utf8"),
        ],
    )
    .ok();
    let own = first_block(&std::fs::read_to_string(&cert).expect("own cert"));
    assert_eq!(served_cert(&s.cht, s.https), own, "own certificate");
    assert_eq!(started(&s, &nginx), before, "reloaded, not restarted");
    docker_ok(&s, &["restart", &nginx]);
    s.up(&[]).ok();
    assert_eq!(served_cert(&s.cht, s.https), own, "own, after a restart");
    let before = started(&s, &nginx);
    s.cmd("tls", &["local-ca"]).ok();
    assert_eq!(served_cert(&s.cht, s.https), ours(), "back to the local CA");
    assert_eq!(started(&s, &nginx), before, "reloaded, not restarted");

    // Port 80: a redirect, except for ACME's challenge files in the volume.
    assert_eq!(s.curl_http_status(), "301");
    let token = "cht-dev-token-42";
    docker_ok(
        &s,
        &[
            "exec",
            &nginx,
            "sh",
            "-c",
            &format!(
                "mkdir -p /etc/nginx/private/certbot/.well-known/acme-challenge && echo {token}-body > /etc/nginx/private/certbot/.well-known/acme-challenge/{token}"
            ),
        ],
    );
    let curl = tool("curl", "apt-get install curl");
    let got = s.cht.in_network(
        &curl,
        &[
            "-sS",
            "-w",
            "\n%{http_code}",
            &format!(
                "http://localhost:{}/.well-known/acme-challenge/{token}",
                s.http
            ),
        ],
    );
    assert_eq!(got.stdout, format!("{token}-body\n\n200"), "{got:#?}");
}

/// Debian's `docker-registry` (the CNCF distribution registry) on a free localhost port,
/// storing in a temporary folder; stopped on drop.
struct Registry {
    child: Option<Child>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        let binary = tool("docker-registry", "apt-get install docker-registry");
        let dir = tempfile::tempdir().expect("dir");
        let (port, _) = free_ports();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("config");
        let child = Command::new(binary)
            .args(["serve"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry");
        let registry = Registry {
            child: Some(child),
            port,
            _dir: dir,
        };
        wait_for(30, "the registry answers", || {
            let ok = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            (ok.then_some(()), String::new())
        });
        registry
    }

    /// The `--image-registry` value: this registry's `medic` namespace.
    fn medic(&self) -> String {
        format!("localhost:{}/medic", self.port)
    }

    /// Pushes the upstream-built images of `version` (and the upgrade service) into it,
    /// then removes their tags here, so `up` has to pull them.
    fn load(&self, version: &str) {
        let images = [
            "cht-couchdb",
            "cht-couchdb-nouveau",
            "cht-haproxy",
            "cht-haproxy-healthcheck",
            "cht-api",
            "cht-sentinel",
            "cht-nginx",
        ]
        .map(|i| format!("{i}:{version}"));
        for image in images
            .iter()
            .map(String::as_str)
            .chain(["cht-upgrade-service:latest"])
        {
            let target = format!("{}/{image}", self.medic());
            let docker = |args: &[&str]| {
                let out = Command::new("docker").args(args).output().expect("docker");
                assert!(out.status.success(), "docker {args:?}: {out:?}");
            };
            docker(&["tag", &format!("{UPSTREAM}/{image}"), &target]);
            docker(&["push", &target]);
            docker(&["rmi", &target]);
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `up`'s arguments for a project on a registry, pulling as `pull` says.
fn registry_up<'a>(
    s: &'a Stack,
    registry: &'a str,
    pull: &'a str,
    http: &'a str,
    https: &'a str,
) -> Vec<&'a str> {
    vec![
        "up",
        s.name.as_str(),
        "--image-registry",
        registry,
        "--pull",
        pull,
        "--http-port",
        http,
        "--https-port",
        https,
        "--timeout",
        "120",
    ]
}

/// Removes every local tag of `registry`'s images (the layers stay, as after an earlier pull).
fn untag(registry: &str) {
    let tags = crate::common::engine::docker_names(&[
        "images",
        "--filter",
        &format!("reference={registry}/*"),
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    for tag in tags {
        let _ = Command::new("docker").args(["rmi", &tag]).output();
    }
}

#[test]
fn up_pulls_from_a_real_registry_names_every_missing_image_and_leaves_nothing_when_it_is_down() {
    let mut registry = Registry::start();
    registry.load("5.2.0");
    let medic = registry.medic();
    let s = Stack::new("uppull");
    let (http, https) = (s.http.to_string(), s.https.to_string());

    // --pull missing, on a terminal: every image pulled, with a line each.
    let first = s
        .cht
        .run_on_terminal(&registry_up(&s, &medic, "missing", &http, &https));
    assert_eq!(first.code, 0, "{first:#?}");
    for image in ["cht-couchdb", "cht-api", "cht-nginx", "cht-haproxy"] {
        assert!(
            first
                .stdout
                .contains(&format!("pulled {medic}/{image}:5.2.0")),
            "{image}: {first:#?}"
        );
    }
    s.put_doc("medic", "pulled", 3);

    // --pull always --json: pulled again, and nothing but the JSON.
    s.cmd("down", &[]).ok();
    untag(&medic);
    let mut args = registry_up(&s, &medic, "always", &http, &https);
    args.push("--json");
    let again = s.cht.run(&args).ok();
    let json: serde_json::Value = serde_json::from_str(&again.stdout).expect("only JSON on stdout");
    assert_eq!(json["ready"], true, "{json}");
    assert!(!again.stderr.contains("pulled"), "{again:#?}");
    assert_eq!(s.get_doc("medic", "pulled"), Some(3));
    let image = s.cht.docker_names(&[
        "inspect",
        "--format",
        "{{.Config.Image}}",
        &format!("{}-api-1", s.name),
    ]);
    assert_eq!(image, [format!("{medic}/cht-api:5.2.0")]);

    // A version the registry lacks: every missing image named at once, no project made.
    let other = Stack::new("uplack");
    let (ohttp, ohttps) = (other.http.to_string(), other.https.to_string());
    let mut args = registry_up(&other, &medic, "missing", &ohttp, &ohttps);
    args.extend(["--cht-version", "4.22.0"]);
    let lacking = other.cht.run(&args);
    let line = lacking.error_after_progress();
    for image in [
        "cht-couchdb",
        "cht-haproxy",
        "cht-haproxy-healthcheck",
        "cht-api",
        "cht-sentinel",
        "cht-nginx",
    ] {
        assert!(
            line.contains(&format!("{medic}/{image}:4.22.0")),
            "{image}: {line}"
        );
    }
    assert!(
        line.contains("not in the registry") && line.contains("--cht-version"),
        "{line}"
    );
    assert_eq!(lacking.code, 1, "{lacking:#?}");
    assert!(!other.dir().exists(), "no project is left: {lacking:#?}");

    // The registry down: a clear error, and no project left behind.
    registry.stop();
    untag(&medic);
    let down = other
        .cht
        .run(&registry_up(&other, &medic, "always", &ohttp, &ohttps));
    let line = down.error_after_progress();
    assert!(
        line.contains("could not reach the registry")
            && line.contains(&format!("localhost:{}", registry.port)),
        "{line}"
    );
    assert!(!other.dir().exists(), "no project is left: {down:#?}");
    assert!(other.all_containers().is_empty());
    assert!(other.volumes().is_empty());
}

/// A Docker Helper project whose CouchDB data the real cht-couchdb 4.22.0 wrote.
fn helper_with_real_data(user_home: &Path, name: &str, http: u16, https: u16) -> PathBuf {
    let env = crate::common::helper_project_on(user_home, name, http, https, UPSTREAM);
    let couch = user_home.join(format!(".medic/cht-docker/{name}-dir/couch"));
    let container = format!("{name}-helper-couch");
    let docker = |args: &[&str]| {
        let out = Command::new("docker").args(args).output().expect("docker");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let started = docker(&[
        "run",
        "-d",
        "--name",
        &container,
        "-e",
        "COUCHDB_USER=medic",
        "-e",
        "COUCHDB_PASSWORD=password",
        "-e",
        "COUCHDB_SECRET=0123456789abcdef0123456789abcdef",
        "-e",
        "COUCHDB_UUID=fedcba9876543210fedcba9876543210",
        "-v",
        &format!("{}:/opt/couchdb/data", couch.display()),
        &format!("{UPSTREAM}/cht-couchdb:4.22.0"),
    ]);
    assert!(started.0, "{started:?}");
    let curl = |args: &[&str]| {
        let mut all = vec![
            "exec",
            container.as_str(),
            "curl",
            "-sS",
            "-u",
            "medic:password",
        ];
        all.extend(args);
        docker(&all)
    };
    wait_for(90, "the helper's CouchDB answers", || {
        let up = curl(&["http://localhost:5984/_up"]);
        (up.1.contains("\"ok\"").then_some(()), up.1)
    });
    let made = curl(&["-X", "PUT", "http://localhost:5984/medic"]);
    assert!(made.1.contains("\"ok\":true"), "{made:?}");
    let doc = curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/json",
        "-d",
        "{\"n\":42}",
        "http://localhost:5984/medic/helper-doc",
    ]);
    assert!(doc.1.contains("\"ok\":true"), "{doc:?}");
    let gone = docker(&["rm", "-f", &container]);
    assert!(gone.0, "{gone:?}");
    env
}

#[test]
fn adopting_a_helper_project_serves_the_documents_real_couchdb_wrote() {
    let s = Stack::new("upadopt");
    let user = tempfile::tempdir().expect("home");
    let env = helper_with_real_data(user.path(), &s.name, s.http, s.https);
    let run = s
        .cht
        .run(&["adopt", env.to_str().expect("utf8"), "--tls", "local-ca"])
        .ok();
    assert!(run.stdout.contains("adopted"), "{run:#?}");
    s.cht
        .run(&["up", &s.name, "--pull", "never", "--timeout", "120"])
        .ok();
    assert_eq!(s.get_doc("medic", "helper-doc"), Some(42));
}
