//! Test harness: runs the real `cht-dev` binary in a temporary home, and finds the
//! outside tools (compose CLI, check-jsonschema, openssl) the tests check files with.

pub mod disk;
pub mod engine;
pub mod local_ip;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary cht-dev home and a way to run the binary in it.
pub struct ChtDev {
    /// The temporary folder; the home is [`ChtDev::home_rel`] inside it, not created up front.
    dir: tempfile::TempDir,
    /// Where the home is inside `dir`.
    home_rel: PathBuf,
    /// The unprivileged user runs are made as, with the binary copied where it can run it.
    user: Option<(User, PathBuf)>,
    /// The second engine runs are made on, in its network, if not the host's.
    engine: Option<engine::SecondEngine>,
    /// Extra environment for every run.
    envs: Vec<(String, String)>,
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// The exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Panics with the run's output unless it exited 0.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success, got {self:#?}");
        self
    }

    /// Panics unless it failed with one error line, last on stderr after any progress
    /// lines, and returns that line.
    #[track_caller]
    pub fn error_after_progress(&self) -> String {
        assert_ne!(self.code, 0, "expected failure, got {self:#?}");
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "expected one error line, got {self:#?}");
        assert_eq!(
            self.stderr.lines().last(),
            Some(errors[0]),
            "the error comes last: {self:#?}"
        );
        errors[0].to_string()
    }

    /// Panics unless it failed with exactly one line on stderr, and returns that line.
    #[track_caller]
    pub fn one_line_error(&self) -> String {
        assert_ne!(self.code, 0, "expected failure, got {self:#?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one error line, got {self:#?}");
        assert!(lines[0].starts_with("error: "), "{self:#?}");
        lines[0].to_string()
    }
}

impl ChtDev {
    /// A fresh temporary home (not yet created on disk).
    pub fn new() -> ChtDev {
        ChtDev::with_home("home")
    }

    /// A fresh temporary home at `rel` inside a temporary folder, e.g. a path with
    /// spaces as macOS's data folder has (not yet created on disk).
    pub fn with_home(rel: &str) -> ChtDev {
        ChtDev {
            dir: tempfile::tempdir().expect("temp dir"),
            home_rel: PathBuf::from(rel),
            user: None,
            engine: None,
            envs: Vec::new(),
        }
    }

    /// A fresh temporary home whose runs are made as [`TEST_USER`], an unprivileged member
    /// of the `docker` group, as CHT developers run cht-dev: the folder is theirs, and so
    /// is `HOME`.
    pub fn as_test_user() -> ChtDev {
        let user = test_user();
        let mut cht = ChtDev::with_home("home");
        let bin = cht.dir.path().join("bin/cht-dev");
        std::fs::create_dir_all(bin.parent().expect("bin folder")).expect("mkdir");
        std::fs::copy(env!("CARGO_BIN_EXE_cht-dev"), &bin).expect("copy the binary");
        let home = cht.dir.path().join("user-home");
        std::fs::create_dir(&home).expect("mkdir");
        for path in [cht.dir.path(), home.as_path()] {
            std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)).expect("chown");
        }
        cht.envs.push(("HOME".into(), home.display().to_string()));
        cht.user = Some((user, bin));
        cht
    }

    /// These runs, on the second engine `e` and in its network.
    pub fn on_engine(mut self, e: &engine::SecondEngine) -> ChtDev {
        self.engine = Some(e.clone());
        self
    }

    /// The docker CLI, talking to the engine runs are made on.
    pub fn docker(&self) -> Command {
        match &self.engine {
            None => Command::new("docker"),
            Some(e) => e.docker(),
        }
    }

    /// A docker CLI listing on the engine runs are made on, its lines sorted.
    pub fn docker_names(&self, args: &[&str]) -> Vec<String> {
        engine::lines_of(self.docker().args(args))
    }

    /// Runs `program` (a client such as curl) where runs are made: in the second
    /// engine's network when there is one.
    pub fn in_network(&self, program: &Path, args: &[&str]) -> Run {
        match &self.engine {
            None => run_tool(program, args, Path::new("/")),
            Some(e) => to_run(
                e.exec(program.as_os_str())
                    .args(args)
                    .output()
                    .expect("run in the engine's network"),
            ),
        }
    }

    /// Adds an environment variable to every run.
    pub fn env(mut self, key: &str, value: &str) -> ChtDev {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// These runs, with `server` as the local-ip certificate's source, trusted through
    /// `SSL_CERT_FILE` as OpenSSL tools trust a system store.
    pub fn with_local_ip(self, server: &local_ip::LocalIpServer) -> ChtDev {
        let root = server.root().display().to_string();
        self.env("CHT_DEV_LOCAL_IP_URL", &server.url())
            .env("SSL_CERT_FILE", &root)
    }

    /// The home folder passed with `--home`.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join(&self.home_rel)
    }

    /// A project's folder.
    pub fn project(&self, name: &str) -> PathBuf {
        self.home().join(name)
    }

    /// A scratch folder beside the home.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// Spawns cht-dev with `args`, held at the fault-hooks step `step` (stdout and stderr
    /// piped), and returns once it is there, with the file whose creation lets it go on.
    pub fn spawn_held_at(&self, step: &str, args: &[String]) -> (std::process::Child, PathBuf) {
        let go = self.scratch().join(format!("go-{step}"));
        let child = self
            .command()
            .env("CHT_DEV_WAIT_AT", step)
            .env("CHT_DEV_WAIT_FILE", &go)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn cht-dev");
        let reached = self.scratch().join(format!("go-{step}.reached"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !reached.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "never reached the step {step}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        (child, go)
    }

    /// The binary, ready to run with `--home` and a clean colour environment.
    pub fn command(&self) -> Command {
        let program = |p: &std::ffi::OsStr| match &self.engine {
            None => Command::new(p),
            Some(e) => e.exec(p),
        };
        let mut cmd = match &self.user {
            None => program(std::ffi::OsStr::new(env!("CARGO_BIN_EXE_cht-dev"))),
            Some((user, bin)) => {
                let mut cmd = program(std::ffi::OsStr::new("setpriv"));
                cmd.args(["--reuid", &user.uid.to_string(), "--regid"])
                    .arg(user.gid.to_string())
                    .args(["--init-groups", "--"])
                    .arg(bin);
                cmd
            }
        };
        cmd.arg("--home").arg(self.home());
        cmd.env_remove("CHT_DEV_HOME")
            .env_remove("CHT_DEV_LOCAL_IP_URL")
            .env_remove("SSL_CERT_FILE")
            .env("NO_COLOR", "1");
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs the binary with `args`.
    pub fn run(&self, args: &[&str]) -> Run {
        let output = self.command().args(args).output().expect("run cht-dev");
        to_run(output)
    }

    /// Runs the binary with `args` (no standard input) and returns what it did and its
    /// peak memory in KiB (the kernel's maximum resident set of that process alone, from
    /// `wait4`). A run still going after `within` is killed, and the test fails saying so:
    /// a guard against hangs, not a timing.
    pub fn run_measured(&self, args: &[&str], within: std::time::Duration) -> (Run, u64) {
        use std::io::Read;
        use std::process::Stdio;
        #[allow(
            clippy::zombie_processes,
            reason = "reaped by wait4 below, which also gives its resource usage"
        )]
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run cht-dev");
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_string(&mut text);
                }
                text
            })
        };
        let out = drain(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let err = drain(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let pid = i32::try_from(child.id()).expect("pid");
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let killed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watchdog = {
            let (done, killed) = (done.clone(), killed.clone());
            std::thread::spawn(move || {
                let deadline = std::time::Instant::now() + within;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    if std::time::Instant::now() > deadline {
                        killed.store(true, std::sync::atomic::Ordering::SeqCst);
                        // SAFETY: pid is our child, not reaped until wait4 below returns.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            })
        };
        let mut status = 0;
        // SAFETY: rusage is plain data, filled in by wait4.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child, with valid pointers for the results.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        watchdog.join().expect("watchdog");
        assert_eq!(reaped, pid, "wait4");
        assert!(
            !killed.load(std::sync::atomic::Ordering::SeqCst),
            "cht-dev {args:?} still ran after {within:?}: it hangs"
        );
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        };
        let run = Run {
            code,
            stdout: out.join().expect("stdout"),
            stderr: err.join().expect("stderr"),
        };
        (run, u64::try_from(usage.ru_maxrss).unwrap_or(u64::MAX))
    }

    /// Runs the binary with `args` on a pseudo-terminal (util-linux `script`), as people
    /// run it; stdout holds what the terminal showed, with `\r\n` made `\n`.
    pub fn run_on_terminal(&self, args: &[&str]) -> Run {
        let mut cmd = self.command();
        cmd.args(args);
        let quote =
            |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"));
        let line = std::iter::once(quote(cmd.get_program()))
            .chain(cmd.get_args().map(quote))
            .collect::<Vec<_>>()
            .join(" ");
        let mut script = Command::new(tool("script", "apt-get install bsdutils"));
        script.args(["-qec", &line, "/dev/null"]);
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => script.env(k, v),
                None => script.env_remove(k),
            };
        }
        let mut run = to_run(script.output().expect("script"));
        run.stdout = run.stdout.replace("\r\n", "\n");
        run
    }

    /// Every file and folder under the home with its contents' length and mode,
    /// to prove a command changed nothing.
    pub fn tree(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        walk(&self.home(), &self.home(), &mut out);
        out
    }
}

/// The unprivileged user the non-root tests run cht-dev as; `scripts/test.sh` makes it
/// (as root: `useradd --create-home --groups docker cht-dev-user`).
pub const TEST_USER: &str = "cht-dev-user";

/// A user's ids.
#[derive(Debug, Clone, Copy)]
pub struct User {
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
}

/// [`TEST_USER`], checked to exist, to be unprivileged and in the `docker` group, and this
/// process checked to be root (only root can run commands as it); panics with the fix.
pub fn test_user() -> User {
    let id = |flag: &str| {
        let out = Command::new("id")
            .args([flag, TEST_USER])
            .output()
            .expect("id");
        assert!(
            out.status.success(),
            "the non-root tests need the user {TEST_USER} in the docker group: run bash scripts/test.sh as root, or useradd --create-home --groups docker {TEST_USER}"
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let user = User {
        uid: id("-u").parse().expect("uid"),
        gid: id("-g").parse().expect("gid"),
    };
    assert_ne!(user.uid, 0, "{TEST_USER} must not be root");
    assert!(
        id("-Gn").split_whitespace().any(|g| g == "docker"),
        "{TEST_USER} must be in the docker group: usermod -aG docker {TEST_USER}"
    );
    let me = Command::new("id").arg("-u").output().expect("id");
    assert_eq!(
        String::from_utf8_lossy(&me.stdout).trim(),
        "0",
        "the non-root tests run cht-dev as {TEST_USER} through setpriv, which needs root"
    );
    user
}

/// Converts a process output into a [`Run`].
pub fn to_run(output: Output) -> Run {
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Records `dir`'s contents into `out`, keyed by path relative to `root`.
fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .expect("under root")
            .display()
            .to_string();
        if path.is_dir() {
            out.insert(rel, "dir".into());
            walk(root, &path, out);
        } else {
            let bytes = std::fs::read(&path).unwrap_or_default();
            out.insert(
                rel,
                format!("{} bytes, mode {:o}", bytes.len(), mode(&path)),
            );
        }
    }
}

/// The permission bits of `path`.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Finds an outside tool: the repo's `.venv/bin`, then PATH; fails clearly if absent.
pub fn tool(name: &str, install_hint: &str) -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".venv/bin")
        .join(name);
    if venv.is_file() {
        return venv;
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "{name} is not installed, and these tests need it: {install_hint} (scripts/test.sh installs everything)"
    );
}

/// One compose CLI the tests check files and stacks with.
#[derive(Debug, Clone)]
pub struct ComposeCli {
    /// What it is, for messages: `v1`, `v2 trixie` or `v2 sid`.
    pub label: String,
    /// The binary (compose v2 runs standalone, as `docker-compose`).
    pub path: PathBuf,
}

impl ComposeCli {
    /// Runs it with `args` in `cwd`.
    pub fn run(&self, args: &[&str], cwd: &Path) -> Run {
        run_tool(&self.path, args, cwd)
    }
}

/// The Debian suite whose compose v2 the stand-in upgrade service carries (2.26.x).
pub const STANDIN_SUITE: &str = "trixie";
/// A newer compose v2 than the stand-in's, as users run on their hosts (2.40.x).
pub const HOST_SUITE: &str = "sid";

/// Compose v2 from Debian's `suite`, fetched by `scripts/compose-v2.sh` (scripts/test.sh
/// runs it first; a lock keeps parallel tests from fetching twice).
pub fn compose_v2(suite: &str) -> ComposeCli {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root
        .join("target/compose-v2")
        .join(suite)
        .join("docker-compose");
    if !path.is_file() {
        std::fs::create_dir_all(root.join("target")).expect("target");
        let lock = std::fs::File::create(root.join("target/compose-v2.lock")).expect("lock");
        lock.lock().expect("lock");
        if !path.is_file() {
            let run = run_tool(
                Path::new("/bin/bash"),
                &["scripts/compose-v2.sh", suite],
                root,
            );
            assert!(
                run.code == 0 && path.is_file(),
                "compose v2 ({suite}) is missing and scripts/compose-v2.sh {suite} could not fetch it: {run:#?}"
            );
        }
    }
    ComposeCli {
        label: format!("v2 {suite}"),
        path,
    }
}

/// Every compose CLI the suite checks with: v1 (Debian's docker-compose) and v2 from
/// trixie and sid, which compute different config hashes for the same service.
pub fn composes() -> Vec<ComposeCli> {
    vec![
        ComposeCli {
            label: "v1".into(),
            path: tool("docker-compose", "apt-get install docker-compose"),
        },
        compose_v2(STANDIN_SUITE),
        compose_v2(HOST_SUITE),
    ]
}

/// Removes everything inside `dir`, keeping the folder itself (a lost data disk).
pub fn empty_folder(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("read").flatten() {
        let path = entry.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).expect("rm");
        } else {
            std::fs::remove_file(&path).expect("rm");
        }
    }
}

/// Runs an outside tool and returns its output.
pub fn run_tool(program: &Path, args: &[&str], cwd: &Path) -> Run {
    let output = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    to_run(output)
}

/// Pastes the cht-conf command `up` printed (its `cht-conf:` line in `up_stdout`) into
/// `sh`, with `stand_in` as the `cht` on PATH (written under `scratch`), `envs` set and
/// `NODE_EXTRA_CA_CERTS` unset; panics unless it exits 0 printing `200`, and returns the
/// command.
#[track_caller]
pub fn paste_cht_conf(
    up_stdout: &str,
    scratch: &Path,
    stand_in: &str,
    envs: &[(&str, &str)],
) -> String {
    let command = up_stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("cht-conf: "))
        .expect("a cht-conf line")
        .to_string();
    let bin = scratch.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    std::fs::write(bin.join("cht"), stand_in).expect("write");
    std::fs::set_permissions(
        bin.join("cht"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let pasted = Command::new("sh")
        .args(["-c", &command])
        .env("PATH", path)
        .envs(envs.iter().copied())
        .env_remove("NODE_EXTRA_CA_CERTS")
        .output()
        .expect("sh");
    assert!(
        pasted.status.success() && String::from_utf8_lossy(&pasted.stdout).trim() == "200",
        "{command}: {pasted:?}"
    );
    command
}

/// Loads `url` in headless Chromium with `home` as HOME and returns the page and any load
/// errors; retried only when Docker's interface changes abort the load (ERR_NETWORK_CHANGED).
pub fn chromium(home: &Path, url: &str) -> String {
    chromium_with(home, url, &[])
}

/// [`chromium`] with `extra` switches (such as `--host-resolver-rules`).
pub fn chromium_with(home: &Path, url: &str, extra: &[&str]) -> String {
    let chromium = tool("chromium", "apt-get install chromium");
    let mut last = String::new();
    for _ in 0..4 {
        let out = Command::new(&chromium)
            .env("HOME", home)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--dump-dom",
            ])
            .args(extra)
            .arg(url)
            .output()
            .expect("chromium");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("Page load failed"))
            .collect();
        last = format!(
            "{}\n-- load errors: {}",
            String::from_utf8_lossy(&out.stdout),
            errors.join(" / ")
        );
        if !last.contains("ERR_NETWORK_CHANGED") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    last
}

/// Lays out a project as the bash Docker Helper leaves it: `NAME.env` and
/// `~/.medic/cht-docker/NAME-dir/{couch,compose}`; returns the env file's path.
pub fn helper_project(user_home: &Path, name: &str, http: u16, https: u16) -> std::path::PathBuf {
    helper_project_on(user_home, name, http, https, engine::REGISTRY)
}

/// [`helper_project`] whose compose file names `registry`'s images.
pub fn helper_project_on(
    user_home: &Path,
    name: &str,
    http: u16,
    https: u16,
    registry: &str,
) -> std::path::PathBuf {
    let dir = user_home.join(format!(".medic/cht-docker/{name}-dir"));
    std::fs::create_dir_all(dir.join("couch")).expect("couch");
    std::fs::create_dir_all(dir.join("compose")).expect("compose");
    std::fs::write(dir.join("couch/helper-marker"), "from the helper").expect("marker");
    std::fs::write(
        dir.join("compose/cht-core.yml"),
        format!("services:\n  api:\n    image: {registry}/cht-api:4.22.0\n"),
    )
    .expect("compose");
    let env = format!(
        "NGINX_HTTP_PORT={http}\nNGINX_HTTPS_PORT={https}\nCOUCHDB_USER=medic\nCOUCHDB_PASSWORD=password\n\
         CHT_COMPOSE_PROJECT_NAME={name}\nDOCKER_CONFIG_PATH={d}\nCOUCHDB_SECRET=0123456789abcdef0123456789abcdef\n\
         COUCHDB_UUID=fedcba9876543210fedcba9876543210\nCOUCHDB_DATA={d}/couch\nCHT_COMPOSE_PATH={d}/compose\nCHT_NETWORK={name}-cht-net\n",
        d = dir.display()
    );
    let file = user_home.join(format!("{name}.env"));
    std::fs::write(&file, env).expect("env");
    file
}

/// Fails when a staging folder or half-written file (`.staging-*`, `*.new-*`) is left
/// anywhere under `dir`; `when` says after what, for the message.
#[track_caller]
pub fn assert_left_nothing(dir: &Path, when: &str) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with(".staging-") && !name.contains(".new-"),
                "{when}: left behind: {}",
                entry.path().display()
            );
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
        }
    }
}

/// `mib` MiB of bytes that do not compress (xorshift, seeded by the path, so no two files
/// repeat each other), written to `path`.
pub fn noise(path: &Path, mib: usize) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let mut x: u64 = path
        .to_string_lossy()
        .bytes()
        .fold(0x2545_f491_4f6c_dd1d, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    let bytes: Vec<u8> = (0..mib << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(path, bytes).expect("noise");
}

/// Sends Ctrl-C (SIGINT) to `child` and waits for it; returns its output and how long it
/// took to end after the signal.
pub fn interrupt(child: std::process::Child) -> (std::process::Output, std::time::Duration) {
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let sent = std::time::Instant::now();
    let output = child.wait_with_output().expect("wait");
    (output, sent.elapsed())
}
