//! A stand-in for the local-ip certificate's source: a test root CA, an intermediate it
//! signed, and a Python HTTPS server (`tests/fixtures/local-ip-server.py`) serving a
//! `*.local-ip.medicmobile.org` chain and key the intermediate signs, as
//! https://local-ip.medicmobile.org serves the real one. cht-dev trusts the root through
//! `SSL_CERT_FILE`, as OpenSSL tools would; browsers and curl are given it explicitly.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use time::{Duration, OffsetDateTime};

/// The name the real certificate covers.
pub const WILDCARD: &str = "*.local-ip.medicmobile.org";
/// The local-ip name of loopback, which every machine has.
pub const LOOPBACK_HOST: &str = "127-0-0-1.local-ip.medicmobile.org";

/// A certificate chain and its key, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The leaf, then the intermediate.
    pub fullchain: String,
    /// The leaf's key.
    pub key: String,
}

/// A random tag for names that must not meet.
fn rand_tag() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
}

/// The test CA and the server serving its pair.
pub struct LocalIpServer {
    /// Files: the root, the server's pair, and what it serves.
    dir: tempfile::TempDir,
    /// The intermediate that signs the served leaves.
    intermediate: Issuer<'static, KeyPair>,
    /// The server, while it runs.
    child: Option<Child>,
    /// Its port.
    port: u16,
    /// The second engine in whose network it listens, if not the host's.
    engine: Option<super::engine::SecondEngine>,
}

impl LocalIpServer {
    /// A new test CA and a server serving a fresh 90-day pair, on the host's loopback.
    pub fn start() -> LocalIpServer {
        LocalIpServer::start_on(None)
    }

    /// [`LocalIpServer::start`], listening in `engine`'s network when given, where runs on
    /// that engine reach it.
    pub fn start_on(engine: Option<&super::engine::SecondEngine>) -> LocalIpServer {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        let tag = rand_tag();
        let root_key = KeyPair::generate().expect("key");
        let mut root = CertificateParams::new(Vec::<String>::new()).expect("params");
        root.distinguished_name.push(
            DnType::CommonName,
            format!("cht-dev test public root {tag}"),
        );
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let root_cert = root.self_signed(&root_key).expect("root");
        std::fs::write(dir.path().join("root.pem"), root_cert.pem()).expect("write");
        let root = Issuer::new(root, root_key);

        let mid_key = KeyPair::generate().expect("key");
        let mut mid = CertificateParams::new(Vec::<String>::new()).expect("params");
        mid.distinguished_name.push(
            DnType::CommonName,
            format!("cht-dev test intermediate {tag}"),
        );
        mid.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        let mid_cert = mid.signed_by(&mid_key, &root).expect("intermediate");
        std::fs::write(dir.path().join("intermediate.pem"), mid_cert.pem()).expect("write");
        let intermediate = Issuer::new(mid, mid_key);

        // The server's own certificate, for 127.0.0.1, from the same root.
        let server_key = KeyPair::generate().expect("key");
        let mut server = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        server
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        let server_cert = server.signed_by(&server_key, &root).expect("server");
        std::fs::write(dir.path().join("server.pem"), server_cert.pem()).expect("write");
        std::fs::write(
            dir.path().join("server-key.pem"),
            server_key.serialize_pem(),
        )
        .expect("write");
        std::fs::create_dir(dir.path().join("served")).expect("mkdir");

        let mut this = LocalIpServer {
            dir,
            intermediate,
            child: None,
            port: 0,
            engine: engine.cloned(),
        };
        let pair = this.issue(&[WILDCARD], 90);
        this.serve(&pair);
        this.resume();
        this
    }

    /// A leaf for `names` from the intermediate, valid from a day ago for `days` days,
    /// with its chain.
    pub fn issue(&self, names: &[&str], days: i64) -> Pair {
        self.issue_until(names, Duration::days(days))
    }

    /// [`LocalIpServer::issue`], valid for `valid` from now.
    pub fn issue_until(&self, names: &[&str], valid: Duration) -> Pair {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + valid;
        let cert = params.signed_by(&key, &self.intermediate).expect("leaf");
        let mid = std::fs::read_to_string(self.dir.path().join("intermediate.pem")).expect("read");
        Pair {
            fullchain: cert.pem() + &mid,
            key: key.serialize_pem(),
        }
    }

    /// Serves `pair` from now on.
    pub fn serve(&self, pair: &Pair) {
        let served = self.dir.path().join("served");
        std::fs::write(served.join("fullchain"), &pair.fullchain).expect("write");
        std::fs::write(served.join("key"), &pair.key).expect("write");
    }

    /// Serves `fullchain` with another `key` (a mismatch).
    pub fn serve_parts(&self, fullchain: &str, key: &str) {
        self.serve(&Pair {
            fullchain: fullchain.to_string(),
            key: key.to_string(),
        });
    }

    /// Cuts the fullchain's transfer short (`true`) or sends it whole.
    pub fn truncate(&self, on: bool) {
        let mode = self.dir.path().join("served/mode");
        if on {
            std::fs::write(mode, "truncate").expect("write");
        } else {
            let _ = std::fs::remove_file(mode);
        }
    }

    /// Stops the server: its port refuses connections, as a source that is down.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again, on its old port when it had one).
    pub fn resume(&mut self) {
        self.stop();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/local-ip-server.py");
        let d = self.dir.path();
        let python = std::ffi::OsStr::new("python3");
        let mut child = match &self.engine {
            None => Command::new(python),
            Some(e) => e.exec(python),
        }
        .arg(&script)
        .arg(d.join("served"))
        .arg(d.join("server.pem"))
        .arg(d.join("server-key.pem"))
        .env("LOCAL_IP_PORT", self.port.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the local-ip stand-in (apt-get install python3)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port");
        self.port = line.trim().parse().expect("the stand-in prints its port");
        self.child = Some(child);
    }

    /// GET `https://127-0-0-1.local-ip.medicmobile.org:port/` with curl where `cht` runs,
    /// resolving the name to loopback, as public DNS does, and trusting only the test root.
    pub fn curl(&self, cht: &crate::common::ChtDev, port: u16) -> crate::common::Run {
        let curl = crate::common::tool("curl", "apt-get install curl");
        cht.in_network(
            &curl,
            &[
                "-sS",
                "--resolve",
                &format!("{LOOPBACK_HOST}:{port}:127.0.0.1"),
                "--cacert",
                &self.root().display().to_string(),
                "-w",
                "\n%{http_code}",
                &format!("https://{LOOPBACK_HOST}:{port}/"),
            ],
        )
    }

    /// The source URL for `CHT_DEV_LOCAL_IP_URL`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The test root: `SSL_CERT_FILE` for cht-dev, `--cacert` for curl.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root.pem")
    }
}

impl Drop for LocalIpServer {
    fn drop(&mut self) {
        self.stop();
    }
}
