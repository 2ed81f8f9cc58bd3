//! Single-node production: a public domain and the user's own certificate, served by the
//! real nginx stand-in and checked with curl; bad certificates refused before anything is written.

use std::path::{Path, PathBuf};

use crate::common::engine::{REGISTRY, Stack};
use crate::common::{ChtDev, run_tool, tool};

/// Makes a self-signed ECDSA server certificate (CA:FALSE) and PKCS#8 key for `names` with
/// openssl; returns (cert, key).
pub(crate) fn openssl_cert(dir: &Path, stem: &str, names: &[&str]) -> (PathBuf, PathBuf) {
    let openssl = tool("openssl", "apt-get install openssl");
    let (cert, key) = (
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}-key.pem")),
    );
    let san = names
        .iter()
        .map(|n| format!("DNS:{n}"))
        .collect::<Vec<_>>()
        .join(",");
    let run = run_tool(
        &openssl,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            key.to_str().expect("utf8"),
            "-out",
            cert.to_str().expect("utf8"),
            "-days",
            "90",
            "-subj",
            &format!("/CN={}", names[0]),
            "-addext",
            &format!("subjectAltName={san}"),
            // A server certificate, as a CA issues it (openssl's own default is CA:TRUE).
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ],
        dir,
    );
    assert_eq!(run.code, 0, "{run:#?}");
    (cert, key)
}

/// `cht-dev up NAME` replacing the certificate with `cert` and `key`.
fn up_with_cert(s: &Stack, cert: &Path, key: &Path) -> crate::common::Run {
    let (cert, key) = (cert.to_str().expect("utf8"), key.to_str().expect("utf8"));
    s.cht.run(&[
        "up",
        &s.name,
        "--pull",
        "never",
        "--cert-file",
        cert,
        "--key-file",
        key,
    ])
}

/// curl to `https://DOMAIN:PORT/` resolved to loopback, trusting `ca`.
fn curl_domain(domain: &str, port: u16, ca: &Path) -> crate::common::Run {
    let curl = tool("curl", "apt-get install curl");
    let resolve = format!("{domain}:{port}:127.0.0.1");
    let url = format!("https://{domain}:{port}/");
    run_tool(
        &curl,
        &[
            "-sS",
            "--resolve",
            &resolve,
            "--cacert",
            ca.to_str().expect("utf8"),
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &url,
        ],
        Path::new("/"),
    )
}

#[test]
fn own_certificate_and_domain_are_served_and_can_be_replaced() {
    let s = Stack::new("prod");
    let domain = "cht.example.test";
    let (cert, key) = openssl_cert(s.cht.scratch(), "own", &[domain]);
    let up = s
        .up(&[
            "--domain",
            domain,
            "--cert-file",
            cert.to_str().expect("utf8"),
            "--key-file",
            key.to_str().expect("utf8"),
        ])
        .ok();
    assert!(
        up.stdout
            .contains(&format!("https://{domain}:{}/", s.https)),
        "{up:#?}"
    );
    let env = std::fs::read_to_string(s.dir().join(".env")).expect("env");
    assert!(
        env.contains(&format!("CHT_DEV_DOMAIN={domain}")) && env.contains("CHT_DEV_CERT=own"),
        "{env}"
    );
    assert!(env.contains("CERTIFICATE_MODE=OWN_CERT"));
    assert_eq!(
        std::fs::read_to_string(s.dir().join("certs/cert.pem")).expect("cert"),
        std::fs::read_to_string(&cert).expect("own")
    );
    let ok = curl_domain(domain, s.https, &cert);
    assert_eq!((ok.code, ok.stdout.as_str()), (0, "200"), "{ok:#?}");

    // A renewed certificate (e.g. from certbot) replaces the old one on `up`; nginx serves it.
    let (cert2, key2) = openssl_cert(s.cht.scratch(), "renewed", &[domain, "www.example.test"]);
    let again = up_with_cert(&s, &cert2, &key2).ok();
    assert!(again.stderr.contains("reloaded nginx"), "{again:#?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut served = curl_domain(domain, s.https, &cert2);
    while served.code != 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        served = curl_domain(domain, s.https, &cert2);
    }
    assert_eq!(
        (served.code, served.stdout.as_str()),
        (0, "200"),
        "{served:#?}"
    );
    // A replacement that does not cover the domain is refused, and nothing changes.
    let (wrong, wrong_key) = openssl_cert(s.cht.scratch(), "wrong", &["other.example.test"]);
    let before = s.cht.tree();
    let line = up_with_cert(&s, &wrong, &wrong_key).one_line_error();
    assert!(line.contains("does not cover cht.example.test"), "{line}");
    assert_eq!(s.cht.tree(), before);
}

#[test]
fn bad_own_certificates_are_refused_before_anything_is_written() {
    let cht = ChtDev::new();
    let dir = cht.scratch().to_path_buf();
    let (cert, key) = openssl_cert(&dir, "a", &["cht.example.test"]);
    let (_, other_key) = openssl_cert(&dir, "b", &["cht.example.test"]);
    let c = cert.to_str().expect("utf8");
    for (args, expect) in [
        (
            vec![
                "init",
                "p",
                "--domain",
                "cht.example.test",
                "--cert-file",
                c,
                "--key-file",
                other_key.to_str().expect("utf8"),
            ],
            "does not match",
        ),
        (
            vec![
                "init",
                "p",
                "--domain",
                "elsewhere.test",
                "--cert-file",
                c,
                "--key-file",
                key.to_str().expect("utf8"),
            ],
            "does not cover elsewhere.test",
        ),
        (vec!["init", "p", "--cert-file", c], "--key-file"),
        (
            vec![
                "init",
                "p",
                "--cert-file",
                "/nonexistent.pem",
                "--key-file",
                "/nonexistent-key.pem",
            ],
            "cannot read",
        ),
        (
            vec!["init", "p", "--domain", "10.0.0.1"],
            "must be a DNS name",
        ),
        (
            vec![
                "init",
                "p",
                "--cert-file",
                key.to_str().expect("utf8"),
                "--key-file",
                key.to_str().expect("utf8"),
            ],
            "certificate",
        ),
    ] {
        let line = cht.run(&args).one_line_error();
        assert!(line.contains(expect), "{args:?}: {line}");
        assert!(!cht.home().exists(), "{args:?} wrote into the home");
    }
    // A generated certificate for a domain covers it, signed by the local CA; the URL
    // printed first, by init and ls, is the domain's, which the certificate covers.
    let init = cht
        .run(&["init", "gen", "--domain", "cht.example.test"])
        .ok();
    let ls: serde_json::Value =
        serde_json::from_str(&cht.run(&["--json", "ls"]).ok().stdout).expect("json");
    let port = ls[0]["https_port"].as_u64().expect("port");
    let domain_url = format!("https://cht.example.test:{port}/");
    assert!(
        init.stdout.contains(&format!("https:       {domain_url}")),
        "{init:#?}"
    );
    assert_eq!(ls[0]["url"], domain_url.as_str());
    let openssl = tool("openssl", "apt-get install openssl");
    let text = run_tool(
        &openssl,
        &[
            "x509",
            "-in",
            "certs/cert.pem",
            "-noout",
            "-ext",
            "subjectAltName",
        ],
        &cht.project("gen"),
    )
    .stdout;
    assert!(text.contains("DNS:cht.example.test"), "{text}");

    // The home CA's own pair, or any certificate made for the CA's key, is never taken
    // as a server certificate (its key would land in nginx's volume).
    let home = cht.home();
    let ca_cert = home.join("ca/ca.pem");
    let ca_key = home.join("ca/ca-key.pem");
    let before = cht.tree();
    let line = cht
        .run(&[
            "init",
            "stolen",
            "--cert-file",
            ca_cert.to_str().expect("utf8"),
            "--key-file",
            ca_key.to_str().expect("utf8"),
        ])
        .one_line_error();
    assert!(
        line.contains("CA certificate (CA:TRUE)")
            && line.contains("-addext basicConstraints=critical,CA:FALSE")
            && line.contains("leave out --cert-file to use the local CA"),
        "{line}"
    );
    let disguised = dir.join("disguised.pem");
    let made = run_tool(
        &openssl,
        &[
            "req",
            "-x509",
            "-key",
            ca_key.to_str().expect("utf8"),
            "-subj",
            "/CN=cht.example.test",
            "-addext",
            "subjectAltName=DNS:cht.example.test",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-days",
            "30",
            "-out",
            disguised.to_str().expect("utf8"),
        ],
        &dir,
    );
    assert_eq!(made.code, 0, "{made:#?}");
    let line = cht
        .run(&[
            "init",
            "stolen",
            "--domain",
            "cht.example.test",
            "--cert-file",
            disguised.to_str().expect("utf8"),
            "--key-file",
            ca_key.to_str().expect("utf8"),
        ])
        .one_line_error();
    assert!(line.contains("the local CA's own"), "{line}");
    assert_eq!(cht.tree(), before, "nothing written");

    // A CA whose key is not its own is named by doctor and refused by init.
    let (_, stray) = openssl_cert(&dir, "stray", &["x.test"]);
    std::fs::copy(&stray, &ca_key).expect("swap the CA key");
    let doctor = cht.run(&["doctor"]);
    let line = doctor
        .stdout
        .lines()
        .find(|l| l.contains("local CA"))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.starts_with("FAIL") && line.contains("does not match"),
        "{doctor:#?}"
    );
    let line = cht.run(&["init", "after"]).one_line_error();
    assert!(
        line.contains("its key does not match its certificate"),
        "{line}"
    );
}

#[test]
fn ports_80_and_443_are_accepted_when_free() {
    let cht = ChtDev::new();
    let free = |p: u16| std::net::TcpListener::bind(("0.0.0.0", p)).is_ok();
    let run = cht.run(&[
        "init",
        "web",
        "--http-port",
        "80",
        "--https-port",
        "443",
        "--image-registry",
        REGISTRY,
    ]);
    if free(80) && free(443) {
        assert_eq!(run.code, 0, "{run:#?}");
        let env = std::fs::read_to_string(cht.project("web").join(".env")).expect("env");
        assert!(env.contains("NGINX_HTTP_PORT=80\n") && env.contains("NGINX_HTTPS_PORT=443\n"));
        let json: serde_json::Value =
            serde_json::from_str(&cht.run(&["--json", "ls"]).ok().stdout).expect("json");
        assert_eq!(json[0]["url"], "https://web.localhost:443/");
    } else {
        assert!(run.one_line_error().contains("is busy"), "{run:#?}");
    }
}
