//! The whole output of the commands people read, pinned as insta snapshots: exit code,
//! stdout and stderr. What differs from run to run is filtered: the temporary home, project
//! names and ports, passwords, fingerprints, dates, host and LAN names, durations, versions
//! of the machine's tools. Progress lines of steps that run concurrently come in any
//! order, so stderr is pinned sorted, and the live "waiting: ..." lines are left out.

use std::process::Command;

use crate::common::engine::{REGISTRY, Stack, free_ports};
use crate::common::{ChtDev, Run};

/// What to filter for one home (and, for an engine test, its project).
struct Filters {
    /// Literal strings and what they stand for, longest first.
    literals: Vec<(String, String)>,
}

impl Filters {
    /// Filters for a home without a project in it yet.
    fn home(cht: &ChtDev) -> Filters {
        let mut literals = vec![(cht.home().display().to_string(), "[HOME]".to_string())];
        if let Ok(out) = Command::new("hostname").output() {
            let host = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !host.is_empty() {
                literals.push((host, "[HOSTNAME]".to_string()));
            }
        }
        Filters { literals }
    }

    /// Filters for an engine test's project: its name, ports and password too.
    fn stack(s: &Stack) -> Filters {
        let mut f = Filters::home(&s.cht);
        f.literals.push((s.name.clone(), "[NAME]".into()));
        f.literals.push((s.http.to_string(), "[HTTP]".into()));
        f.literals.push((s.https.to_string(), "[HTTPS]".into()));
        if let Ok(env) = std::fs::read_to_string(s.dir().join(".env")) {
            for line in env.lines() {
                if let Some(password) = line.strip_prefix("COUCHDB_PASSWORD=") {
                    f.literals
                        .push((password.trim_matches('"').to_string(), "[PASSWORD]".into()));
                }
            }
        }
        f.literals
            .sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
        f
    }

    /// The run as one text: exit code, stdout whole, stderr sorted without live lines.
    fn text(&self, run: &Run) -> String {
        let mut stderr: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| !l.starts_with("waiting: "))
            .collect();
        stderr.sort();
        let mut text = format!(
            "exit: {}\n--- stdout\n{}--- stderr (sorted)\n{}",
            run.code,
            run.stdout,
            stderr.iter().map(|l| format!("{l}\n")).collect::<String>()
        );
        for (from, to) in &self.literals {
            text = text.replace(from.as_str(), to);
        }
        text
    }

    /// Pins `run` as snapshot `name`.
    #[track_caller]
    fn pin(&self, name: &str, run: &Run) {
        let text = self.text(run);
        insta::with_settings!({
            filters => vec![
                // Addresses: loopback stays, every other IPv4 address is the machine's.
                (r"\b127\.0\.0\.1\b", "LOOPBACK4"),
                (r"\b127-0-0-1\.local-ip", "LOOPBACK-IP"),
                (r"\b\d{1,3}-\d{1,3}-\d{1,3}-\d{1,3}\.local-ip", "[IP-DASHED].local-ip"),
                ("LOOPBACK-IP", "127-0-0-1.local-ip"),
                (r"(?m)^(  https://\[IP-DASHED\]\.local-ip\.medicmobile\.org:\[HTTPS\]/\n)+", "  [LAN LOCAL-IP URLS]\n"),
                (r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b", "[IP]"),
                ("LOOPBACK4", "127.0.0.1"),
                (r"(https://\[IP\]:\[HTTPS\]/\n?)+", "[LAN URLS]\n"),
                (r"(, \[IP\])+", ", [LAN IPS]"),
                (r"LAN address(\s+)\[IP\](, \[LAN IPS\])?", "LAN address$1[LAN IPS]"),
                (r"([0-9A-F]{2}:){31}[0-9A-F]{2}", "[SHA256]"),
                (r"\b\d{4}-\d{2}-\d{2}\b", "[DATE]"),
                (r"OU=[^,\n]+, CN=cht-dev local CA [^\n]+", "OU=[USER@HOST], CN=cht-dev local CA [USER@HOST]"),
                (r"\(\d+ days\)", "([N] days)"),
                (r"in \d+\.\d s", "in [SECS] s"),
                (r"\d+\.\d GB free", "[N] GB free"),
                (r"Docker [^,\n]+, API [0-9.]+", "Docker [VERSION], API [VERSION]"),
            ],
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(name, text);
        });
    }
}

#[test]
fn versions_init_ls_and_ca_print_what_people_read() {
    let cht = ChtDev::new();
    let f = Filters::home(&cht);
    f.pin("versions", &cht.run(&["versions"]));
    f.pin("versions-json", &cht.run(&["versions", "--json"]));
    f.pin("ls-empty", &cht.run(&["ls"]));
    let (http, https) = free_ports();
    let (http, https) = (http.to_string(), https.to_string());
    let mut f = f;
    f.literals.push((http.clone(), "[HTTP]".into()));
    f.literals.push((https.clone(), "[HTTPS]".into()));
    let init = cht.run(&[
        "init",
        "demo",
        "--image-registry",
        REGISTRY,
        "--http-port",
        &http,
        "--https-port",
        &https,
    ]);
    f.pin("init", &init);
    let (k8s, values) = (cht.home().join("k8s"), cht.home().join("values.yaml"));
    f.pin(
        "export",
        &cht.run(&[
            "export",
            "kubernetes",
            "demo",
            "--out",
            k8s.to_str().expect("utf8"),
            "--helm-values",
            values.to_str().expect("utf8"),
        ]),
    );
    f.pin("ca", &cht.run(&["ca"]));
    f.pin("ca-quiet", &cht.run(&["ca", "--quiet"]));
    f.pin("init-quiet", &cht.run(&["init", "other", "--quiet"]));
}

#[test]
fn errors_are_one_line_with_a_fix_and_json_errors_are_one_document() {
    let cht = ChtDev::new();
    let f = Filters::home(&cht);
    f.pin("error-bad-name", &cht.run(&["init", "Bad_Name"]));
    f.pin(
        "error-unknown-version",
        &cht.run(&["init", "x", "--cht-version", "3.0.0"]),
    );
    f.pin(
        "error-bad-port",
        &cht.run(&["init", "x", "--http-port", "0"]),
    );
    f.pin("error-unknown-project", &cht.run(&["status", "nope"]));
    f.pin("error-usage", &cht.run(&["up", "--pull", "sometimes"]));
    f.pin(
        "error-json",
        &cht.run(&["--json", "init", "x", "--image-registry", "a b"]),
    );
}

#[test]
fn up_status_doctor_and_down_print_what_people_read() {
    let s = Stack::new("outputs");
    s.init();
    let f = Filters::stack(&s);
    let up = s
        .cht
        .run(&["up", &s.name, "--pull", "never", "--timeout", "60"])
        .ok();
    f.pin("up", &up);
    f.pin("status", &s.cmd("status", &[]).ok());
    let doctor = s.cht.run(&["doctor"]);
    f.pin("doctor", &doctor);
    f.pin("down", &s.cmd("down", &[]).ok());
    f.pin("status-down", &s.cmd("status", &[]).ok());
}

#[test]
fn up_in_the_other_certificate_modes_and_tls_print_what_people_read() {
    use crate::common::local_ip::LocalIpServer;
    let server = LocalIpServer::start();
    let s = Stack::in_home("outputs-ip", ChtDev::new().with_local_ip(&server));
    let up = s.up(&["--tls", "local-ip"]).ok();
    let mut f = Filters::stack(&s);
    f.literals
        .insert(0, (server.url(), "[LOCAL-IP SOURCE]".into()));
    f.pin("up-local-ip", &up);
    f.pin("tls-local-ca", &s.cmd("tls", &["local-ca"]).ok());
    f.pin("tls-local-ip", &s.cmd("tls", &["local-ip"]).ok());

    // The user's own certificate for a domain (issued here by the same test CA).
    let own = Stack::new("outputs-own");
    let pair = server.issue(&["cht.example.org"], 90);
    let dir = own.cht.scratch().join("own");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("fullchain.pem"), &pair.fullchain).expect("write");
    std::fs::write(dir.join("privkey.pem"), &pair.key).expect("write");
    let (cert, key) = (dir.join("fullchain.pem"), dir.join("privkey.pem"));
    let up = own
        .up(&[
            "--domain",
            "cht.example.org",
            "--cert-file",
            cert.to_str().expect("utf8"),
            "--key-file",
            key.to_str().expect("utf8"),
        ])
        .ok();
    let mut f = Filters::stack(&own);
    f.literals
        .push((dir.display().to_string(), "[CERTS]".into()));
    f.literals
        .sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
    f.pin("up-own", &up);
}
