//! Engine test helpers: Docker checks, stand-in images, free ports, and projects that
//! clean up after themselves.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{ChtDev, ComposeCli, Run, run_tool, tool};

/// The registry name the stand-in images are tagged with.
pub const REGISTRY: &str = "cht-dev-test.local";
/// The registry name the upstream-built images are tagged with (`scripts/upstream-images.sh`:
/// CouchDB built from source, cht-core's nginx, HAProxy and healthcheck, the API stand-in
/// that uses CouchDB; Sentinel, Nouveau and the upgrade service are the stand-ins).
pub const UPSTREAM: &str = "cht-dev-upstream.local";

/// Fails clearly unless a Docker engine answers.
pub fn require_docker() {
    let docker = tool("docker", "apt-get install docker.io");
    let out = Command::new(docker)
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .expect("run docker info");
    assert!(
        out.status.success(),
        "these tests need a running Docker engine, and `docker info` failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Builds the stand-in images once per machine state (a lock serialises parallel tests;
/// docker's build cache makes repeats quick).
pub fn standin_images() {
    let tags = [
        "cht-crash:latest",
        "cht-upgrade-service:no-compose",
        "cht-nginx:4.22.0",
        "cht-nginx:5.2.0",
    ]
    .map(|t| format!("{REGISTRY}/{t}"));
    build_once(
        "standin-images",
        REGISTRY,
        &["scripts/standin-images.sh"],
        &tags,
        "building stand-in images failed",
    );
}

/// Builds the upstream-built images once per machine state, as [`standin_images`] does
/// the stand-ins. The first build on a machine takes minutes (two debootstraps, CouchDB
/// from source); `scripts/test.sh` runs it before the tests and writes the same stamp.
pub fn upstream_images() {
    let tags: Vec<String> = ["cht-couchdb", "cht-nginx", "cht-haproxy", "cht-api"]
        .iter()
        .flat_map(|i| ["4.22.0", "5.2.0"].map(|v| format!("{UPSTREAM}/{i}:{v}")))
        .collect();
    build_once(
        "upstream-images",
        UPSTREAM,
        &[
            "scripts/upstream-images.sh",
            "scripts/upstream/api-standin.py",
            "scripts/standin-images.sh",
        ],
        &tags,
        "building the upstream-built images failed (scripts/upstream-images.sh needs root and ../shared/upstream)",
    );
}

/// Runs `scripts/<name>.sh REGISTRY 5.2.0 4.22.0` unless every image of `tags` is present
/// and `target/<name>.stamp` holds the SHA-256 of `files` (the scripts that make them, in
/// that order); under `target/<name>.lock`, so parallel tests build once.
fn build_once(name: &str, registry: &str, files: &[&str], tags: &[String], failed: &str) {
    require_docker();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lock = std::fs::File::create(root.join(format!("target/{name}.lock"))).expect("lock file");
    lock.lock().expect("lock");
    let stamp = root.join(format!("target/{name}.stamp"));
    let want: String = {
        use sha2::Digest as _;
        let mut hash = sha2::Sha256::new();
        for file in files {
            hash.update(std::fs::read(root.join(file)).expect("script"));
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    };
    let present = Command::new("docker")
        .args(["image", "inspect"])
        .args(tags)
        .output()
        .is_ok_and(|o| o.status.success());
    if present && std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
        return;
    }
    let script = format!("scripts/{name}.sh");
    let run = run_tool(
        Path::new("/bin/bash"),
        &[script.as_str(), registry, "5.2.0", "4.22.0"],
        root,
    );
    assert_eq!(run.code, 0, "{failed}: {run:#?}");
    std::fs::write(&stamp, want).expect("stamp");
}

/// The tags and ids of the images of `registries` on the engine `docker` talks to, sorted.
fn image_ids(docker: impl Fn() -> Command, registries: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = registries
        .iter()
        .flat_map(|registry| {
            lines_of(docker().args([
                "images",
                "--no-trunc",
                "--filter",
                &format!("reference={registry}/*"),
                "--format",
                "{{.Repository}}:{{.Tag}} {{.ID}}",
            ]))
        })
        .collect();
    all.sort();
    all
}

/// A second engine of `scripts/engines.sh`, in its own mount, network and pid namespaces.
#[derive(Debug, Clone)]
pub struct SecondEngine {
    /// Its name for `scripts/engines.sh` (`docker28`).
    pub name: &'static str,
    /// Its `DOCKER_HOST`.
    pub host: String,
    /// The registry of the images the tests' stacks use on it: [`UPSTREAM`], or [`REGISTRY`]
    /// where only the stand-ins are loaded.
    pub registry: &'static str,
}

impl SecondEngine {
    /// The engine `name`, which must be up (`scripts/test.sh` starts it; a test never
    /// does), with the stand-in and upstream-built images loaded into it; fails clearly
    /// otherwise. Stacks on it use the upstream-built images.
    pub fn require(name: &'static str) -> SecondEngine {
        upstream_images();
        SecondEngine::with_images(name, &[REGISTRY, UPSTREAM])
    }

    /// [`SecondEngine::require`] with only the stand-in images, for rootless engines: they
    /// keep their own copy of every image in the user's storage, and the stand-ins are two
    /// megabytes where the upstream-built ones are hundreds (the rootful engines and the
    /// host's run the same journeys on the upstream-built images).
    pub fn require_standins(name: &'static str) -> SecondEngine {
        SecondEngine::with_images(name, &[REGISTRY])
    }

    /// The engine `name` with the images of `registries` loaded into it.
    fn with_images(name: &'static str, registries: &[&str]) -> SecondEngine {
        standin_images();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let run = run_tool(
            Path::new("/bin/bash"),
            &["scripts/engines.sh", "host", name],
            root,
        );
        assert_eq!(
            run.code, 0,
            "these tests need the engine {name}: start it with `bash scripts/engines.sh up {name}` (scripts/test.sh does): {run:#?}"
        );
        let host = run
            .stdout
            .trim()
            .strip_prefix("DOCKER_HOST=")
            .expect("DOCKER_HOST=... from engines.sh host")
            .to_string();
        let registry = if registries.contains(&UPSTREAM) {
            UPSTREAM
        } else {
            REGISTRY
        };
        let engine = SecondEngine {
            name,
            host,
            registry,
        };
        let lock_path = root.join(format!("target/standin-images-{name}.lock"));
        let lock = std::fs::File::create(&lock_path).expect("lock file");
        lock.lock().expect("lock");
        let want = image_ids(|| Command::new("docker"), registries);
        let have = image_ids(|| engine.docker(), registries);
        let missing: Vec<&String> = want.iter().filter(|t| !have.contains(t)).collect();
        if !missing.is_empty() {
            let tags: Vec<&str> = missing
                .iter()
                .filter_map(|l| l.split_whitespace().next())
                .collect();
            let mut save = Command::new("docker")
                .arg("save")
                .args(&tags)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("docker save");
            let load = engine
                .docker()
                .args(["load", "-q"])
                .stdin(save.stdout.take().expect("save's output"))
                .output()
                .expect("docker load");
            let saved = save.wait().expect("docker save");
            assert!(
                saved.success() && load.status.success(),
                "loading the test images into {name} failed: {}",
                String::from_utf8_lossy(&load.stderr)
            );
        }
        engine
    }

    /// The docker CLI, talking to this engine.
    pub fn docker(&self) -> Command {
        let mut docker = Command::new("docker");
        docker.env("DOCKER_HOST", &self.host);
        docker
    }

    /// A command run in this engine's network (its published ports on localhost), with
    /// DOCKER_HOST naming it unless the command's environment sets it.
    pub fn exec(&self, program: &std::ffi::OsStr) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/engines.sh"))
            .args(["exec", self.name])
            .arg(program);
        cmd
    }
}

/// Two ports free on this machine right now, and never handed to another test of this
/// run: the kernel gives a just-released ephemeral port out again, so two test processes
/// could otherwise publish the same one. Each port is claimed by creating a file named
/// after it (atomic across processes); claims older than an hour are from earlier runs.
pub fn free_ports() -> (u16, u16) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-ports");
    std::fs::create_dir_all(&dir).expect("ports folder");
    let claim = || loop {
        let port = std::net::TcpListener::bind("0.0.0.0:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let file = dir.join(port.to_string());
        let stale = std::fs::metadata(&file)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 3600));
        if stale {
            let _ = std::fs::remove_file(&file);
        }
        if std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&file)
            .is_ok()
        {
            return port;
        }
    };
    (claim(), claim())
}

/// A unique project name for this test process, of one length per prefix (so tables
/// that hold it line up the same in every run).
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}{:07}x{:02}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst) % 100
    )
}

/// A project in a temporary home, destroyed (containers, volumes, network) on drop.
pub struct Stack {
    /// The home it lives in.
    pub cht: ChtDev,
    /// Project name.
    pub name: String,
    /// nginx's HTTP port.
    pub http: u16,
    /// nginx's HTTPS port.
    pub https: u16,
    /// The registry its images come from: [`REGISTRY`] or [`UPSTREAM`].
    pub registry: &'static str,
}

impl Stack {
    /// A new project name and ports (nothing created yet), on the upstream-built images.
    pub fn new(prefix: &str) -> Stack {
        Stack::in_home(prefix, ChtDev::new())
    }

    /// A new project name and ports in the home given (nothing created yet), on the
    /// upstream-built images (real CouchDB, nginx and HAProxy), or on the stand-ins when the
    /// home's engine has only those loaded.
    pub fn in_home(prefix: &str, cht: ChtDev) -> Stack {
        let registry = cht.engine.as_ref().map_or(UPSTREAM, |e| e.registry);
        let mut stack = Stack::standin_in_home(prefix, cht);
        if registry == UPSTREAM {
            upstream_images();
        }
        stack.registry = registry;
        stack
    }

    /// A new project name and ports on the stand-in images, in a new home: for tests that
    /// need the stand-ins' own behaviour (a CouchDB that writes all the time, a crashing
    /// service) or where speed matters more than realism (tests that kill commands or fill
    /// disks at dozens of moments, each `up` seconds faster without a real CouchDB start).
    pub fn standin(prefix: &str) -> Stack {
        Stack::standin_in_home(prefix, ChtDev::new())
    }

    /// [`Stack::standin`] in the home given.
    pub fn standin_in_home(prefix: &str, cht: ChtDev) -> Stack {
        standin_images();
        let (http, https) = free_ports();
        Stack {
            cht,
            name: unique(prefix),
            http,
            https,
            registry: REGISTRY,
        }
    }

    /// A file CouchDB itself wrote into the data folder `data` when it started: the
    /// stand-in's start marker, or real CouchDB's shard map database. Waits up to 60 s for
    /// it (the nodes of a cluster start on their own time) and fails if it never comes.
    #[track_caller]
    pub fn couch_wrote(&self, data: &Path) -> std::path::PathBuf {
        let file = data.join(if self.registry == UPSTREAM {
            "_dbs.couch"
        } else {
            "standin-marker"
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !file.is_file() {
            assert!(
                std::time::Instant::now() < deadline,
                "CouchDB wrote no {} within 60 s",
                file.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        file
    }

    /// Creates the project without starting it (stand-in registry, this stack's ports).
    pub fn init(&self) {
        let (http, https) = (self.http.to_string(), self.https.to_string());
        self.cht
            .run(&[
                "init",
                self.name.as_str(),
                "--image-registry",
                self.registry,
                "--http-port",
                http.as_str(),
                "--https-port",
                https.as_str(),
            ])
            .ok();
    }

    /// The arguments of `cht-dev up` for this project with the stand-in registry, then `extra`.
    pub fn up_args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "up",
            self.name.as_str(),
            "--image-registry",
            self.registry,
            "--pull",
            "never",
            "--http-port",
            &self.http.to_string(),
            "--https-port",
            &self.https.to_string(),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        if !extra.contains(&"--timeout") {
            args.extend(["--timeout".to_string(), "60".to_string()]);
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    }

    /// Runs `cht-dev up` for this project with the stand-in registry and `extra` args.
    pub fn up(&self, extra: &[&str]) -> Run {
        let args = self.up_args(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.cht.run(&args)
    }

    /// Starts `cht-dev up` for this project in the background (stderr captured), to be
    /// interrupted with [`Stack::interrupt`].
    pub fn spawn_up(&self) -> std::process::Child {
        self.cht
            .command()
            .args(self.up_args(&[]))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn cht-dev up")
    }

    /// Runs a cht-dev command naming this project: `cmd NAME extra...`.
    pub fn cmd(&self, cmd: &str, extra: &[&str]) -> Run {
        let mut args = vec![cmd, self.name.as_str()];
        args.extend(extra);
        self.cht.run(&args)
    }

    /// Runs a compose CLI on the project's CHT files from the host, with the project's
    /// `.env`, as a user would.
    pub fn compose(&self, cli: &ComposeCli, args: &[&str]) -> Run {
        let mut all = vec![
            "--env-file",
            ".env",
            "-p",
            self.name.as_str(),
            "-f",
            "compose/cht-core.yml",
            "-f",
            "compose/cht-couchdb.yml",
        ];
        all.extend(args);
        cli.run(&all, &self.dir())
    }

    /// Replaces `from` (which must be there) with `to` in one of the project's files, e.g.
    /// `compose/cht-core.yml`; returns the text as it was, to put it back.
    #[track_caller]
    pub fn edit(&self, file: &str, from: &str, to: &str) -> String {
        let path = self.dir().join(file);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains(from), "{from:?} is not in {file}");
        std::fs::write(&path, text.replace(from, to)).expect("write");
        text
    }

    /// The upgrade service's container name.
    pub fn upgrade_container(&self) -> String {
        format!("{}-upgrade-cht-upgrade-service-1", self.name)
    }

    /// Everything the upgrade service's container has logged (stdout and stderr).
    pub fn upgrade_logs(&self) -> String {
        let out = self
            .cht
            .docker()
            .args(["logs", &self.upgrade_container()])
            .output()
            .expect("docker logs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Waits until the upgrade service has finished its boot-time compose run `count`
    /// times in all (it logs "startup: done" each time); returns its logs.
    #[track_caller]
    pub fn wait_boots(&self, count: usize) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        loop {
            let logs = self.upgrade_logs();
            if logs.matches("startup: done").count() >= count {
                return logs;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the upgrade service did not finish boot {count} within 90 s: {logs}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The CHT project's containers as `name id`, sorted: equal lists mean nothing was
    /// recreated.
    pub fn ids(&self) -> Vec<String> {
        self.cht.docker_names(&[
            "ps",
            "-a",
            "--no-trunc",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.name),
            "--format",
            "{{.Names}} {{.ID}}",
        ])
    }

    /// A label of a container.
    pub fn label(&self, container: &str, label: &str) -> String {
        let format = format!("{{{{index .Config.Labels \"{label}\"}}}}");
        let out = self
            .cht
            .docker()
            .args(["inspect", "--format", &format, container])
            .output()
            .expect("docker inspect");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The project folder.
    pub fn dir(&self) -> std::path::PathBuf {
        self.cht.project(&self.name)
    }

    /// The home CA certificate.
    pub fn ca(&self) -> String {
        self.cht.home().join("ca/ca.pem").display().to_string()
    }

    /// Container names carrying `label=value`, sorted.
    pub fn containers(&self, label: &str, value: &str) -> Vec<String> {
        self.cht.docker_names(&[
            "ps",
            "-a",
            "--filter",
            &format!("label={label}={value}"),
            "--format",
            "{{.Names}}",
        ])
    }

    /// All containers of this project (CHT and upgrade service), by compose's project label.
    pub fn all_containers(&self) -> Vec<String> {
        let mut all = self.containers("com.docker.compose.project", &self.name);
        all.extend(self.containers(
            "com.docker.compose.project",
            &format!("{}-upgrade", self.name),
        ));
        all.sort();
        all
    }

    /// The project's containers the engine has paused.
    pub fn paused(&self) -> Vec<String> {
        docker_names(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.name),
            "--filter",
            "status=paused",
        ])
    }

    /// Whether the project's network (`<NAME>-cht-net`) exists.
    pub fn network_exists(&self) -> bool {
        let filter = format!("name=^{}-cht-net$", self.name);
        !self
            .cht
            .docker_names(&[
                "network",
                "ls",
                "--filter",
                &filter,
                "--format",
                "{{.Name}}",
            ])
            .is_empty()
    }

    /// Whether the project's network is gone, or stays only because the engine keeps an
    /// endpoint count of a container it removed (dockerd 20.10 under load, seen after a
    /// killed `up` and after an ordinary `destroy`): then nothing is attached and it refuses
    /// `docker network rm` with "active endpoints", which only an engine restart clears, and
    /// cht-dev warns that it stays. A network the engine would remove fails the check.
    pub fn network_gone_or_stuck(&self) -> std::result::Result<(), String> {
        if !self.network_exists() {
            return Ok(());
        }
        let network = format!("{}-cht-net", self.name);
        let attached = self.cht.docker_names(&[
            "network",
            "inspect",
            &network,
            "--format",
            "{{range $id, $c := .Containers}}{{$c.Name}} {{end}}",
        ]);
        let rm = self
            .cht
            .docker()
            .args(["network", "rm", &network])
            .output()
            .expect("docker network rm");
        let said = String::from_utf8_lossy(&rm.stderr).trim().to_string();
        if rm.status.success() {
            return Err(format!(
                "network {network} was left although the engine removes it"
            ));
        }
        if attached.is_empty() && said.contains("active endpoints") {
            eprintln!("network {network} stays: the engine holds an endpoint count ({said})");
            return Ok(());
        }
        Err(format!(
            "network {network} left: attached {attached:?}, rm said {said}"
        ))
    }

    /// Volumes labelled as belonging to the project's compose project, sorted.
    pub fn volumes(&self) -> Vec<String> {
        let filter = format!("label=com.docker.compose.project={}", self.name);
        self.cht
            .docker_names(&["volume", "ls", "--filter", &filter, "--format", "{{.Name}}"])
    }

    /// GET over HTTPS with curl, trusting only the home CA; returns (status, body).
    pub fn curl_https(&self, path: &str) -> (String, String) {
        self.curl_https_at("localhost", path)
    }

    /// [`Stack::curl_https`] to the host name `host` (curl sends `*.localhost` to the
    /// loopback address itself).
    pub fn curl_https_at(&self, host: &str, path: &str) -> (String, String) {
        let curl = tool("curl", "apt-get install curl");
        let url = format!("https://{host}:{}{path}", self.https);
        let ca = self.ca();
        let run = self.cht.in_network(
            &curl,
            &["-sS", "--cacert", &ca, "-w", "\n%{http_code}", &url],
        );
        assert_eq!(run.code, 0, "curl {url}: {run:#?}");
        let (body, status) = run.stdout.rsplit_once('\n').expect("status line");
        (status.to_string(), body.to_string())
    }

    /// The CouchDB admin's name and password, from the project's `.env`.
    pub fn admin(&self) -> (String, String) {
        let env = std::fs::read_to_string(self.dir().join(".env")).expect(".env");
        let get = |key: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(|v| v.trim_matches('"').to_string())
                .unwrap_or_else(|| panic!("{key} in .env: {env}"))
        };
        (get("COUCHDB_USER"), get("COUCHDB_PASSWORD"))
    }

    /// A request to CouchDB through HTTPS (nginx, the API, HAProxy) as the admin, trusting
    /// only the home CA; `body` is JSON. Returns (status, body).
    pub fn couch(&self, method: &str, path: &str, body: Option<&str>) -> (String, String) {
        let curl = tool("curl", "apt-get install curl");
        let url = format!("https://localhost:{}{path}", self.https);
        let (user, password) = self.admin();
        let auth = format!("{user}:{password}");
        let ca = self.ca();
        let mut args = vec![
            "-sS",
            "--cacert",
            &ca,
            "-u",
            &auth,
            "-X",
            method,
            "-m",
            "120",
            "-w",
            "\n%{http_code}",
        ];
        // A large body goes through a file: one argument may hold at most 128 KiB.
        static BODIES: AtomicUsize = AtomicUsize::new(0);
        let file = self.cht.scratch().join(format!(
            "body-{}.json",
            BODIES.fetch_add(1, Ordering::SeqCst)
        ));
        let from_file = format!("@{}", file.display());
        if let Some(body) = body {
            args.extend(["-H", "Content-Type: application/json", "--data-binary"]);
            if body.len() > 64 * 1024 {
                std::fs::write(&file, body).expect("request body");
                args.push(&from_file);
            } else {
                args.push(body);
            }
        }
        args.push(&url);
        let run = self.cht.in_network(&curl, &args);
        assert_eq!(run.code, 0, "curl {method} {url}: {run:#?}");
        let _ = std::fs::remove_file(&file);
        let (body, status) = run.stdout.rsplit_once('\n').expect("status line");
        (status.to_string(), body.to_string())
    }

    /// Writes the document `id` (`{"n": n}`) through HTTPS and checks CouchDB took it.
    #[track_caller]
    pub fn put_doc(&self, db: &str, id: &str, n: u64) {
        let (status, body) = self.couch(
            "PUT",
            &format!("/{db}/{id}"),
            Some(&format!("{{\"n\":{n}}}")),
        );
        assert_eq!(status, "201", "PUT /{db}/{id}: {body}");
    }

    /// Reads the document `id` back through HTTPS: its `n`, or None when CouchDB has no such
    /// document.
    #[track_caller]
    pub fn get_doc(&self, db: &str, id: &str) -> Option<u64> {
        let (status, body) = self.couch("GET", &format!("/{db}/{id}"), None);
        if status == "404" {
            return None;
        }
        assert_eq!(status, "200", "GET /{db}/{id}: {body}");
        let doc: serde_json::Value = serde_json::from_str(&body).expect("json");
        doc["n"].as_u64()
    }

    /// The status code plain HTTP answers with.
    pub fn curl_http_status(&self) -> String {
        let curl = tool("curl", "apt-get install curl");
        let url = format!("http://localhost:{}/", self.http);
        self.cht
            .in_network(
                &curl,
                &["-s", "-o", "/dev/null", "-w", "%{http_code}", &url],
            )
            .stdout
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if self.dir().exists() {
            let _ = self.cmd("destroy", &["--yes"]);
        }
    }
}

/// Runs a docker CLI listing and returns its lines sorted.
pub fn docker_names(args: &[&str]) -> Vec<String> {
    lines_of(Command::new("docker").args(args))
}

/// Runs a docker CLI listing and returns its lines sorted.
pub fn lines_of(command: &mut Command) -> Vec<String> {
    let out = command.output().expect("docker");
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    names.sort();
    names
}
