//! Phones: the publicly trusted local-ip certificate (`--tls local-ip`, `cht-dev tls`),
//! checked, kept whole, refreshed, and served by nginx; tested against a stand-in source
//! whose test root cht-dev trusts through `SSL_CERT_FILE`, with curl, openssl and headless
//! Chromium resolving `*.local-ip.medicmobile.org` to loopback as public DNS would.

use std::path::Path;

use crate::common::engine::{SecondEngine, Stack};
use crate::common::local_ip::{LOOPBACK_HOST, LocalIpServer, Pair, WILDCARD};
use crate::common::{ChtDev, mode, run_tool, tool};

/// The kept pair's file in a home.
fn kept(cht: &ChtDev) -> Option<String> {
    std::fs::read_to_string(cht.home().join("local-ip.json")).ok()
}

#[test]
fn init_keeps_a_checked_local_ip_pair_and_refuses_unfit_ones_changing_nothing() {
    let mut server = LocalIpServer::start();
    let cht = ChtDev::new().with_local_ip(&server);

    // Each unfit source is refused with one line naming the URL, and nothing is written.
    let source = format!("{}/", server.url());
    let refused = |cht: &ChtDev, want: &str| {
        let before = cht.tree();
        let run = cht.run(&["init", "phone", "--tls", "local-ip"]);
        let line = run.one_line_error();
        assert!(line.contains(&source), "{line}");
        assert!(line.contains(want), "{want:?} in {line}");
        assert_eq!(cht.tree(), before, "nothing written: {line}");
    };
    let good = server.issue(&[WILDCARD], 90);
    let stranger = server.issue(&[WILDCARD], 90);
    server.serve_parts(&good.fullchain, &stranger.key);
    refused(&cht, "the key does not match the certificate");
    server.serve(&server.issue(&["cht.example.org"], 90));
    refused(&cht, &format!("it covers cht.example.org, not {WILDCARD}"));
    server.serve(&good);
    server.truncate(true);
    refused(&cht, "the download failed");
    server.truncate(false);
    // HTTPS to the source is verified: without the test root, the system's roots refuse it.
    let untrusted = ChtDev::new().env("CHT_DEV_LOCAL_IP_URL", &server.url());
    refused(&untrusted, "the download failed");
    server.stop();
    refused(&cht, "the download failed");
    server.resume();

    // Options that cannot go together.
    for (args, want) in [
        (
            &["--domain", "cht.example.org"][..],
            "does not cover --domain",
        ),
        (&["--host", "cht.local"][..], "--host cht.local"),
    ] {
        let mut all = vec!["init", "phone", "--tls", "local-ip"];
        all.extend(args);
        let line = cht.run(&all).one_line_error();
        assert!(line.contains(want), "{line}");
    }
    let line = cht.run(&["init", "phone", "--tls", "own"]).one_line_error();
    assert!(line.contains("--cert-file"), "{line}");

    let init = cht.run(&["init", "phone", "--tls", "local-ip"]).ok();
    assert!(
        init.stdout.contains(&format!(
            "certificate: {WILDCARD} (local-ip: phones trust it)"
        )),
        "{init:#?}"
    );
    assert!(
        init.stdout.contains(".local-ip.medicmobile.org:"),
        "{init:#?}"
    );
    assert!(
        init.stderr.contains("key is public"),
        "the public key is said: {init:#?}"
    );
    let dir = cht.project("phone");
    assert_eq!(
        std::fs::read_to_string(dir.join("certs/cert.pem")).expect("cert"),
        good.fullchain,
        "the chain exactly as served"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("certs/key.pem")).expect("key"),
        good.key
    );
    assert_eq!(mode(&dir.join("certs/key.pem")), 0o600);
    assert_eq!(mode(&cht.home().join("local-ip.json")), 0o600);
    let env = std::fs::read_to_string(dir.join(".env")).expect("env");
    assert!(env.contains("CHT_DEV_CERT=local-ip"), "{env}");

    // A second project shares the kept pair: no download while it is fresh.
    server.stop();
    let second = cht.run(&["init", "tablet", "--tls", "local-ip"]).ok();
    assert!(!second.stderr.contains("downloaded"), "{second:#?}");
    assert_eq!(
        std::fs::read_to_string(cht.project("tablet").join("certs/cert.pem")).expect("cert"),
        good.fullchain
    );
    // ls and --json agree on the URL to use.
    let ls: serde_json::Value =
        serde_json::from_str(&cht.run(&["ls", "--json"]).ok().stdout).expect("json");
    let url = ls[0]["url"].as_str().unwrap_or_default().to_string();
    assert!(url.contains(".local-ip.medicmobile.org:"), "{ls}");
}

/// The chain the TLS server at `127.0.0.1:port`, where `cht` runs, sends for the local-ip
/// name of loopback, as PEM blocks.
fn served_chain(cht: &ChtDev, port: u16) -> Vec<String> {
    let openssl = tool("openssl", "apt-get install openssl");
    let run = cht.in_network(
        &openssl,
        &[
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            LOOPBACK_HOST,
            "-showcerts",
        ],
    );
    pem_blocks(&run.stdout)
}

/// The PEM certificate blocks in `text`, each normalised to its base64 body.
fn pem_blocks(text: &str) -> Vec<String> {
    text.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .filter_map(|b| b.split("-----END CERTIFICATE-----").next())
        .map(|b| b.split_whitespace().collect::<String>())
        .collect()
}

#[test]
fn a_phone_project_serves_the_local_ip_chain_refreshes_it_and_switches_back() {
    let mut server = LocalIpServer::start();
    let s = Stack::in_home("phone", ChtDev::new().with_local_ip(&server));
    let first = server.issue(&[WILDCARD], 90);
    server.serve(&first);
    let up = s.up(&["--tls", "local-ip"]).ok();
    let urls: Vec<&str> = up
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("https://"))
        .collect();
    assert!(
        !urls.is_empty()
            && urls
                .iter()
                .all(|u| u.contains(".local-ip.medicmobile.org:")),
        "every URL is a local-ip one: {up:#?}"
    );
    assert_eq!(
        urls.last().copied(),
        Some(format!("https://{LOOPBACK_HOST}:{}/", s.https).as_str())
    );
    assert!(up.stderr.contains("key is public"), "{up:#?}");
    assert!(!up.stdout.contains("local CA:"), "{up:#?}");

    // With a LAN address, the phone's URL is the first, and on a terminal `up` draws it as
    // a QR code (which reads back as the URL: see the printer's unit test); piped, it does not.
    let lan = urls.len() > 1;
    let phone = urls[0].to_string();
    assert_eq!(
        up.stdout.contains(&format!("phone:    {phone} ")),
        lan,
        "{up:#?}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&s.cmd("up", &["--json"]).ok().stdout).expect("json");
    assert_eq!(json["tls"], "local-ip");
    if lan {
        assert_eq!(json["phone"], phone.as_str());
        let qr = cht_dev::printer::qr_lines(&phone).expect("qr");
        assert!(!up.stdout.contains(&qr[1]), "no picture when piped");
        let shown = s.cht.run_on_terminal(&["up", &s.name]);
        assert_eq!(shown.code, 0, "{shown:#?}");
        let picture = qr.iter().map(|l| format!("  {l}\n")).collect::<String>();
        assert!(shown.stdout.contains(&picture), "{shown:#?}");
    } else {
        assert!(json["phone"].is_null(), "{json}");
    }

    // nginx serves exactly that chain, which verifies against the test root by name.
    assert_eq!(served_chain(&s.cht, s.https), pem_blocks(&first.fullchain));
    let got = server.curl(&s.cht, s.https);
    assert_eq!(got.code, 0, "{got:#?}");
    assert!(got.stdout.ends_with("\n200"), "{got:#?}");
    assert!(got.stdout.contains("CHT API stand-in"), "{got:#?}");

    // A real browser, trusting the test root as a phone trusts the public one.
    let certutil = tool("certutil", "apt-get install libnss3-tools");
    let browser_home = tempfile::tempdir().expect("tmp");
    let nssdb = browser_home.path().join(".pki/nssdb");
    std::fs::create_dir_all(&nssdb).expect("mkdir");
    let db = format!("sql:{}", nssdb.display());
    let root = server.root().display().to_string();
    for args in [
        &["-N", "-d", &db, "--empty-password"][..],
        &["-A", "-d", &db, "-t", "C,,", "-n", "test-root", "-i", &root][..],
    ] {
        assert_eq!(run_tool(&certutil, args, Path::new("/")).code, 0);
    }
    let page = crate::common::chromium_with(
        browser_home.path(),
        &format!("https://{LOOPBACK_HOST}:{}/", s.https),
        &["--host-resolver-rules=MAP *.local-ip.medicmobile.org 127.0.0.1"],
    );
    assert!(page.contains("CHT API stand-in"), "{page}");

    // The cht-conf command needs no CA variable: pasted into a shell, a stand-in `cht`
    // reaches its URL, resolving the name as public DNS would.
    let command = crate::common::paste_cht_conf(
        &up.stdout,
        s.cht.scratch(),
        r#"#!/bin/sh
[ -z "$NODE_EXTRA_CA_CERTS" ] || { echo "NODE_EXTRA_CA_CERTS set" >&2; exit 3; }
case "$1" in --url=*) url=${1#--url=} ;; *) echo "no --url" >&2; exit 4 ;; esac
hostport=${url#*@}
exec curl -sS --resolve "$hostport:127.0.0.1" --cacert "$TEST_ROOT" -o /dev/null -w '%{http_code}' "$url/"
"#,
        &[("TEST_ROOT", &root)],
    );
    assert!(!command.contains("NODE_EXTRA_CA_CERTS"), "{command}");

    // Refresh on `up`: a kept pair expiring within 7 days is replaced, and nginx serves
    // the new one.
    let short = server.issue(&[WILDCARD], 3);
    server.serve(&short);
    let refreshed = s.cmd("tls", &["local-ip", "--refresh"]).ok();
    assert!(
        refreshed.stdout.contains("reloaded nginx"),
        "{refreshed:#?}"
    );
    assert_eq!(served_chain(&s.cht, s.https), pem_blocks(&short.fullchain));
    let doctor = s.cht.run(&["doctor"]);
    let line = doctor
        .stdout
        .lines()
        .find(|l| l.contains("local-ip certificate"))
        .unwrap_or_else(|| panic!("doctor names the kept pair: {doctor:#?}"));
    assert!(line.contains("within 7 days"), "{line}");
    let fresh = server.issue(&[WILDCARD], 90);
    server.serve(&fresh);
    let up = s.up(&[]).ok();
    assert!(
        up.stderr.contains("downloaded the local-ip certificate"),
        "{up:#?}"
    );
    assert_eq!(served_chain(&s.cht, s.https), pem_blocks(&fresh.fullchain));

    // Offline with a pair due for refresh: a one-line note, and the kept pair serves on.
    server.serve(&short);
    s.cmd("tls", &["local-ip", "--refresh"]).ok();
    server.stop();
    let offline = s.up(&[]).ok();
    let notes: Vec<&str> = offline
        .stderr
        .lines()
        .filter(|l| l.contains("refreshing it failed"))
        .collect();
    assert_eq!(notes.len(), 1, "{offline:#?}");
    assert_eq!(served_chain(&s.cht, s.https), pem_blocks(&short.fullchain));
    server.resume();

    // Each failed refresh: one clear error, the kept pair unchanged and still served.
    let kept_before = kept(&s.cht);
    let check_failure = |s: &Stack, want: &str| {
        let run = s.cmd("tls", &["local-ip", "--refresh"]);
        let line = run.one_line_error();
        assert!(line.contains(want), "{want:?} in {line}");
        assert_eq!(kept(&s.cht), kept_before, "kept pair unchanged: {line}");
        assert_eq!(
            served_chain(&s.cht, s.https),
            pem_blocks(&short.fullchain),
            "still served: {line}"
        );
    };
    let stranger: Pair = server.issue(&[WILDCARD], 90);
    server.serve_parts(&fresh.fullchain, &stranger.key);
    check_failure(&s, "the key does not match the certificate");
    server.serve(&server.issue(&["cht.example.org"], 90));
    check_failure(&s, "not *.local-ip.medicmobile.org");
    server.serve(&fresh);
    server.truncate(true);
    check_failure(&s, "the download failed");
    server.truncate(false);
    server.stop();
    check_failure(&s, &format!("{}/fullchain", server.url()));
    server.resume();

    // A kept pair that expired, and no source: an error naming the URL, nothing started anew.
    let brief = server.issue_until(&[WILDCARD], time::Duration::seconds(3));
    server.serve(&brief);
    s.cmd("tls", &["local-ip", "--refresh"]).ok();
    std::thread::sleep(std::time::Duration::from_secs(4));
    server.stop();
    let line = s.up(&[]).error_after_progress();
    assert!(
        line.contains("expired on") && line.contains(&format!("{}/fullchain", server.url())),
        "{line}"
    );
    server.resume();

    // Back to the local CA: NAME.localhost verifies against the home CA; then local-ip
    // again, without a download while the kept pair is fine.
    let ca = s.cmd("tls", &["local-ca"]).ok();
    assert!(
        ca.stdout.contains("serves the local-ca certificate"),
        "{ca:#?}"
    );
    assert_eq!(
        s.curl_https_at(&format!("{}.localhost", s.name), "/").0,
        "200"
    );
    server.serve(&fresh);
    let back = s.cmd("tls", &["local-ip", "--refresh"]).ok();
    assert!(back.stdout.contains("reloaded nginx"), "{back:#?}");
    assert_eq!(served_chain(&s.cht, s.https), pem_blocks(&fresh.fullchain));
    let line = s.cmd("tls", &["local-ca", "--refresh"]).one_line_error();
    assert!(line.contains("--refresh"), "{line}");
}

/// A phone project where `cht` runs (an unprivileged user, a second engine): `up --tls
/// local-ip` serves the source's chain, `tls --refresh` hands nginx a new one, and `tls
/// local-ca` goes back to the home CA. The source listens in `engine`'s network.
pub fn phone_round(cht: ChtDev, engine: Option<&SecondEngine>) {
    let server = LocalIpServer::start_on(engine);
    let s = Stack::in_home("phone", cht.with_local_ip(&server));
    let first = server.issue(&[WILDCARD], 90);
    server.serve(&first);
    s.up(&["--tls", "local-ip"]).ok();
    assert_eq!(served_chain(&s.cht, s.https), pem_blocks(&first.fullchain));
    let got = server.curl(&s.cht, s.https);
    assert!(got.stdout.ends_with("\n200"), "{got:#?}");
    assert_eq!(mode(&s.cht.home().join("local-ip.json")), 0o600);
    let next = server.issue(&[WILDCARD], 60);
    server.serve(&next);
    let refreshed = s.cmd("tls", &["local-ip", "--refresh"]).ok();
    assert!(
        refreshed.stdout.contains("reloaded nginx"),
        "{refreshed:#?}"
    );
    assert_eq!(served_chain(&s.cht, s.https), pem_blocks(&next.fullchain));
    s.cmd("tls", &["local-ca"]).ok();
    assert_eq!(
        s.curl_https_at(&format!("{}.localhost", s.name), "/").0,
        "200"
    );
    s.cmd("destroy", &["--yes"]).ok();
}

#[test]
fn a_normal_user_serves_a_phone_project() {
    phone_round(ChtDev::as_test_user(), None);
}
