//! Hostile input, second round: each defect a security probe reproduced, run against the
//! real binary. Special files named as outputs stay what they were; inputs that are
//! devices, FIFOs or huge are refused at once in bounded memory; snapshot archives are
//! untrusted (a huge manifest, a bomb on a small disk, a `data` entry that is a file,
//! damaged records); data named `data` restores; `adopt` keeps system folders and the
//! engine's own data root out of CouchDB; values read back from `.env` pass the flags'
//! rules; registry names follow the reference grammar; `export`'s outputs never overlap.
//!
//! Peak memory is the kernel's count for the one cht-dev process (`wait4`), held to 64 MiB
//! on every hostile input; the disk tests mount a small tmpfs, which needs root (as
//! `scripts/test.sh` runs them).

use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::disk::SmallDisk;
use crate::common::engine::{SecondEngine, Stack};
use crate::common::{ChtDev, Run, assert_left_nothing, helper_project};

/// The most memory cht-dev may take on any hostile input, in KiB.
const RSS_CAP_KIB: u64 = 64 << 10;
/// How long a refusal may take before the run counts as hung.
const HANG: Duration = Duration::from_secs(90);

/// Makes a FIFO at `path`.
fn fifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Makes a character device like `/dev/null` (1, 3) at `path`: as root only, which these
/// tests are run as.
fn null_device(path: &Path) {
    let status = Command::new("mknod")
        .arg(path)
        .args(["c", "1", "3"])
        .status()
        .expect("mknod");
    assert!(
        status.success(),
        "mknod {} needs root (scripts/test.sh runs the tests as root)",
        path.display()
    );
}

/// Runs `args`, which must be refused with exit `code` and one error line holding every
/// one of `expect`, within the memory cap; returns the line.
#[track_caller]
fn refused(cht: &ChtDev, args: &[&str], code: i32, expect: &[&str]) -> String {
    let (run, rss) = cht.run_measured(args, HANG);
    let line = run.one_line_error();
    assert_eq!(run.code, code, "{args:?}: {run:#?}");
    for e in expect {
        assert!(line.contains(e), "{args:?}: expected {e:?} in {line}");
    }
    assert!(
        rss < RSS_CAP_KIB,
        "{args:?} peaked at {rss} KiB, over {RSS_CAP_KIB} KiB"
    );
    eprintln!("{} KiB at most: {}", rss, args.join(" "));
    line
}

/// `export kubernetes p` into `out`, with the Helm values file `values`.
fn export_with_values<'a>(out: &'a str, values: &'a str) -> [&'a str; 7] {
    [
        "export",
        "kubernetes",
        "p",
        "--out",
        out,
        "--helm-values",
        values,
    ]
}

/// A fresh home with a project `p` made by `init` (no engine needed).
fn home_with_project() -> ChtDev {
    let cht = ChtDev::new();
    cht.run(&["init", "p"]).ok();
    cht
}

#[test]
fn special_files_named_as_outputs_are_refused_and_stay_what_they_were() {
    let cht = home_with_project();
    let before = cht.tree();
    let dir = cht.scratch().join("outputs");
    std::fs::create_dir(&dir).expect("mkdir");
    let (pipe, device, link, target) = (
        dir.join("pipe"),
        dir.join("null"),
        dir.join("link"),
        dir.join("target.crt"),
    );
    fifo(&pipe);
    null_device(&device);
    std::fs::write(&target, "keep").expect("write");
    std::os::unix::fs::symlink(&target, &link).expect("link");
    for (path, what) in [
        (&pipe, "a FIFO"),
        (&device, "a character device"),
        (&link, "symbolic link"),
    ] {
        let path = path.display().to_string();
        refused(&cht, &["ca", "--der", &path], 2, &[&path, what]);
        let out = cht.scratch().join("k8s").display().to_string();
        refused(&cht, &export_with_values(&out, &path), 2, &[&path, what]);
        assert!(
            !cht.scratch().join("k8s").exists(),
            "no manifest is written before the refusal"
        );
    }
    assert!(
        std::fs::symlink_metadata(&pipe)
            .expect("meta")
            .file_type()
            .is_fifo()
    );
    assert!(
        std::fs::symlink_metadata(&device)
            .expect("meta")
            .file_type()
            .is_char_device()
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .expect("meta")
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep");
    // A manifest's own path that is a FIFO: refused before any manifest is written.
    let out = cht.scratch().join("k8s-fifo");
    std::fs::create_dir(&out).expect("mkdir");
    fifo(&out.join("credentials.yaml"));
    let shown = out.display().to_string();
    refused(
        &cht,
        &["export", "kubernetes", "p", "--out", &shown],
        2,
        &["credentials.yaml", "a FIFO"],
    );
    let names: Vec<String> = std::fs::read_dir(&out)
        .expect("read")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["credentials.yaml"], "nothing else was written");
    assert_eq!(cht.tree(), before, "the home is as it was");
    // A regular file is still replaced, as before.
    let der = dir.join("ca.der").display().to_string();
    cht.run(&["ca", "--der", &der]).ok();
    cht.run(&["ca", "--der", &der]).ok();
}

#[test]
fn certificate_key_and_helper_files_are_read_only_when_regular_and_small() {
    let cht = ChtDev::new();
    let dir = cht.scratch().join("inputs");
    std::fs::create_dir(&dir).expect("mkdir");
    let (pipe, big, key) = (dir.join("pipe"), dir.join("big.pem"), dir.join("key.pem"));
    fifo(&pipe);
    // 200 MB, sparse: nothing is written to the disk, but reading it whole would take
    // 200 MB of memory.
    std::fs::File::create(&big)
        .expect("create")
        .set_len(200 << 20)
        .expect("grow");
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\n").expect("write");
    let key = key.display().to_string();
    for (cert, what) in [
        ("/dev/zero".to_string(), "a character device"),
        (pipe.display().to_string(), "a FIFO (named pipe)"),
        (
            big.display().to_string(),
            "200.0 MB, more than the certificate can be",
        ),
    ] {
        let line = refused(
            &cht,
            &[
                "init",
                "own",
                "--domain",
                "cht.example.org",
                "--cert-file",
                &cert,
                "--key-file",
                &key,
            ],
            2,
            &["cannot read the certificate", &cert, what],
        );
        assert!(!line.contains("panick"), "{line}");
        assert!(!cht.project("own").exists(), "nothing is made");
    }
    // The key as well, and through `tls NAME own` on an existing project.
    cht.run(&["init", "p"]).ok();
    let pipe_shown = pipe.display().to_string();
    let big_shown = big.display().to_string();
    for (cert, expect) in [(&big_shown, "the certificate"), (&key, "the key")] {
        let args = [
            "tls",
            "p",
            "own",
            "--cert-file",
            cert,
            "--key-file",
            &pipe_shown,
        ];
        // The certificate is read first: a huge one is refused before the key is opened.
        let what = if *cert == big_shown {
            "200.0 MB"
        } else {
            "a FIFO"
        };
        refused(&cht, &args, 2, &[&format!("cannot read {expect}"), what]);
    }
    // A helper project file that is a device or a FIFO.
    for env in ["/dev/zero", pipe_shown.as_str()] {
        refused(
            &cht,
            &["adopt", env, "--name", "helper"],
            2,
            &["the Docker Helper's project file", env],
        );
    }
}

/// A tar header for `name` of `kind` and `size` bytes, as its 512 bytes.
fn tar_header(name: &str, kind: tar::EntryType, size: u64) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_path(name).expect("name");
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    header.as_bytes().to_vec()
}

/// Writes a zstd archive of the tar stream `head`, then `zero_mib` MiB of zeros (the last
/// header's contents), then tar's end, as snapshot `label` of project folder `project`
/// with the sidecar `record`. The zeros are one compressed MiB written again and again
/// (zstd reads frames one after another), so a huge entry takes a few kilobytes.
fn bomb(project: &Path, label: &str, head: &[u8], zero_mib: u64, record: &serde_json::Value) {
    let dir = project.join("snapshots");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut out = std::fs::File::create(dir.join(format!("{label}.tar.zst"))).expect("create");
    out.write_all(&zstd::bulk::compress(head, 1).expect("zstd"))
        .expect("write");
    let mib = zstd::bulk::compress(&vec![0u8; 1 << 20], 1).expect("zstd");
    for _ in 0..zero_mib {
        out.write_all(&mib).expect("write");
    }
    out.write_all(&zstd::bulk::compress(&[0u8; 1024], 1).expect("zstd"))
        .expect("write");
    let archive_bytes = out.metadata().expect("meta").len();
    assert!(
        archive_bytes < 1 << 20,
        "{archive_bytes} bytes: the archive stays small"
    );
    let mut record = record.clone();
    record["label"] = label.into();
    record["bytes"] = archive_bytes.into();
    std::fs::write(dir.join(format!("{label}.json")), record.to_string()).expect("sidecar");
}

/// A sidecar as cht-dev writes one, for a one-node CHT 5.2.0 snapshot of `data_bytes`.
fn record(data_bytes: u64) -> serde_json::Value {
    serde_json::json!({
        "label": "x", "cht_version": "5.2.0", "created": "2026-12-01T00:00:00Z",
        "bytes": 0, "data_bytes": data_bytes, "method": "consistent: nothing was running",
        "couchdb_nodes": 1, "compression": "zstd", "level": 1
    })
}

#[test]
fn hostile_archives_are_refused_in_bounded_memory_without_filling_the_disk() {
    let cht = ChtDev::with_home("disk/home");
    let disk = SmallDisk::mount(&cht.scratch().join("disk"), 128);
    cht.run(&["init", "p"]).ok();
    let project = cht.project("p");
    let marker = project.join("couchdb/marker");
    std::fs::write(&marker, "the data").expect("marker");
    let free_before = disk.free();
    let before = cht.tree();
    let dir = tar_header("data", tar::EntryType::Directory, 0);

    // A manifest entry of 1 GB: refused by its header, never read.
    let mut head = dir.clone();
    head.extend(tar_header(
        ".cht-dev-manifest.json",
        tar::EntryType::Regular,
        1 << 30,
    ));
    bomb(&project, "manifest", &head, 1024, &record(100));
    refused(
        &cht,
        &["snapshot", "restore", "p", "manifest", "--yes"],
        1,
        &["manifest is 1.0 GB, more than"],
    );

    // 500 MB of zeros declared as 100 bytes of data: stopped at what the record allows.
    let mut head = dir.clone();
    head.extend(tar_header("data/zeros", tar::EntryType::Regular, 500 << 20));
    bomb(&project, "zeros", &head, 500, &record(100));
    refused(
        &cht,
        &["snapshot", "restore", "p", "zeros", "--yes"],
        1,
        &[
            "snapshot zeros of p cannot be restored",
            "more than its record declares",
        ],
    );

    // The same, declared honestly as 500 MB in the archive but 1 MB of data: the disk
    // would fall under the floor kept for CouchDB, so it stops there, saying so.
    let mut honest = record(1 << 20);
    honest["unpacked_bytes"] = (500u64 << 20).into();
    bomb(&project, "honest", &head, 500, &honest);
    refused(
        &cht,
        &["snapshot", "restore", "p", "honest", "--yes"],
        1,
        &["not enough free space", "keep 64.0 MB free for CouchDB"],
    );

    // A `data` entry that is a plain file: refused, not restored as empty data.
    let mut head = tar_header("data", tar::EntryType::Regular, 512);
    head.extend([b'x'; 512]);
    bomb(&project, "plain", &head, 0, &record(512));
    refused(
        &cht,
        &["snapshot", "restore", "p", "plain", "--yes"],
        1,
        &["data entry is not a folder"],
    );

    assert_eq!(
        std::fs::read_to_string(&marker).expect("marker"),
        "the data"
    );
    assert_left_nothing(&cht.home(), "after the refusals");
    let mut after = cht.tree();
    after.retain(|path, _| !path.starts_with("p/snapshots"));
    let mut expected = before.clone();
    expected.retain(|path, _| !path.starts_with("p/snapshots"));
    assert_eq!(
        after, expected,
        "the home is as it was, but for the archives put there"
    );
    assert!(
        disk.free() + (4 << 20) >= free_before,
        "nothing stayed on the disk: {} free before, {} after",
        free_before,
        disk.free()
    );
}

#[test]
fn damaged_snapshot_records_are_never_printed_raw_nor_restored() {
    let cht = home_with_project();
    let project = cht.project("p");
    let head = tar_header("data", tar::EntryType::Directory, 0);
    let mut escape = record(0);
    escape["created"] = "2026-12-01T00:00:00Z\u{1b}]0;owned\u{7}\u{1b}[2J".into();
    bomb(&project, "escape", &head, 0, &escape);
    let mut unreadable = record(0);
    unreadable["cht_version"] = "99.x".into();
    bomb(&project, "future", &head, 0, &unreadable);
    bomb(&project, "fine", &head, 0, &record(0));
    let ls = cht.run(&["snapshot", "ls", "p"]).ok();
    assert!(
        !ls.stdout.contains('\u{1b}') && !ls.stderr.contains('\u{1b}'),
        "{ls:#?}"
    );
    assert!(
        ls.stdout.contains("fine") && !ls.stdout.contains("escape"),
        "{ls:#?}"
    );
    for label in ["escape", "future"] {
        assert!(
            ls.stderr
                .contains(&format!("warning: snapshot {label} cannot be restored")),
            "{ls:#?}"
        );
    }
    refused(
        &cht,
        &["snapshot", "restore", "p", "future", "--yes"],
        1,
        &["not a release number", "snapshot rm p future"],
    );
    refused(
        &cht,
        &["snapshot", "restore", "p", "escape", "--yes"],
        1,
        &["not an RFC 3339 time"],
    );
    let json: serde_json::Value =
        serde_json::from_str(&cht.run(&["--json", "snapshot", "ls", "p"]).ok().stdout)
            .expect("json");
    assert_eq!(json["damaged"].as_array().map(Vec::len), Some(2), "{json}");
    cht.run(&["snapshot", "rm", "p", "escape"]).ok();
    assert!(!project.join("snapshots/escape.json").exists());
}

#[test]
fn a_snapshot_of_data_holding_an_entry_named_data_restores() {
    let s = Stack::new("nested");
    s.up(&[]).ok();
    let data = s.dir().join("couchdb");
    std::fs::create_dir_all(data.join("data/data")).expect("mkdir");
    std::fs::write(data.join("data/data/marker"), "nested").expect("marker");
    std::fs::write(data.join("top-marker"), "top").expect("marker");
    s.cht
        .run(&["snapshot", "create", &s.name, "--label", "nested"])
        .ok();
    std::fs::write(data.join("data/data/marker"), "changed").expect("marker");
    std::fs::remove_file(data.join("top-marker")).expect("rm");
    s.cht
        .run(&["snapshot", "restore", &s.name, "nested", "--yes"])
        .ok();
    assert_eq!(
        std::fs::read_to_string(data.join("data/data/marker")).expect("read"),
        "nested"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("top-marker")).expect("read"),
        "top"
    );
    assert_eq!(s.curl_https("/").0, "200", "the stack serves again");
    assert_left_nothing(&s.cht.home(), "after the restore");
}

/// Points the helper project file `env` at `data` as its CouchDB data folder.
fn helper_data(env: &Path, data: &str) {
    let text = std::fs::read_to_string(env).expect("read");
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("COUCHDB_DATA=") {
                format!("COUCHDB_DATA={data}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(env, text).expect("write");
}

#[test]
fn adopt_keeps_system_folders_and_other_projects_data_out_of_couchdb() {
    let cht = ChtDev::new();
    let user_home = cht.scratch().join("user");
    let (http, https) = crate::common::engine::free_ports();
    let env = helper_project(&user_home, "helper", http, https);
    let env_shown = env.display().to_string();
    for system in ["/etc", "/usr/share", "/var/lib"] {
        helper_data(&env, system);
        refused(
            &cht,
            &["adopt", &env_shown],
            2,
            &[
                &format!("{system:?} cannot be used in place"),
                "the system folder",
                "--copy-data",
            ],
        );
    }
    assert!(!cht.home().join("helper").exists());
    // A folder another project uses as its data, outside the home (as an adopted one's).
    cht.run(&["init", "p"]).ok();
    let theirs = cht.scratch().join("p-data");
    std::fs::create_dir(&theirs).expect("mkdir");
    let project_env = cht.project("p").join(".env");
    let text = std::fs::read_to_string(&project_env).expect("read");
    std::fs::write(
        &project_env,
        format!("{text}COUCHDB_DATA={}\n", theirs.display()),
    )
    .expect("write");
    let theirs = theirs.display().to_string();
    helper_data(&env, &theirs);
    refused(
        &cht,
        &["adopt", &env_shown],
        2,
        &["overlaps the data folder of project \"p\""],
    );
    // Copied, a system folder is only read: with --copy-data a small one is taken.
    let copy = cht.scratch().join("to-copy");
    std::fs::create_dir(&copy).expect("mkdir");
    std::fs::write(copy.join("f"), "x").expect("write");
    helper_data(&env, &copy.display().to_string());
    cht.run(&["adopt", &env_shown, "--tls", "local-ca", "--copy-data"])
        .ok();
}

#[test]
fn adopt_keeps_the_engines_own_data_root_out_of_couchdb() {
    // Rootless Docker keeps its data in its user's home, outside every system folder:
    // only the engine's own answer tells it.
    let e = SecondEngine::require_standins("docker28-rootless");
    let cht = ChtDev::as_test_user().on_engine(&e);
    let root = crate::common::engine::lines_of(e.docker().args([
        "info",
        "--format",
        "{{.DockerRootDir}}",
    ]))
    .join("");
    assert!(
        root.starts_with("/tmp/"),
        "docker28-rootless keeps its data under /tmp: {root}"
    );
    let user_home = cht.scratch().join("helper-home");
    let (http, https) = crate::common::engine::free_ports();
    let env = helper_project(&user_home, "helper", http, https);
    helper_data(&env, &root);
    let user = crate::common::test_user();
    let chown = Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", user.uid, user.gid))
        .arg(&user_home)
        .status()
        .expect("chown");
    assert!(chown.success());
    let line = cht
        .run(&["adopt", &env.display().to_string(), "--tls", "local-ca"])
        .one_line_error();
    assert!(
        line.contains("overlaps the container engine's data root") && line.contains("--copy-data"),
        "{line}"
    );
}

#[test]
fn domain_and_hosts_edited_in_env_damage_the_project_instead_of_reaching_urls() {
    let cht = home_with_project();
    let env = cht.project("p").join(".env");
    let text = std::fs::read_to_string(&env).expect("read");
    for (line, expect) in [
        (
            "CHT_DEV_DOMAIN='evil.example/x?'",
            "CHT_DEV_DOMAIN is \"evil.example/x?\"",
        ),
        (
            "CHT_DEV_HOSTS='ok.example,https://evil.example/'",
            "CHT_DEV_HOSTS is",
        ),
    ] {
        std::fs::write(&env, format!("{text}{line}\n")).expect("write");
        let (run, _) = cht.run_measured(&["open", "p"], HANG);
        let err = run.one_line_error();
        assert!(
            err.contains(".env line ") && err.contains(expect),
            "{line}: {err}"
        );
        assert!(!run.stdout.contains("evil.example"), "{run:#?}");
        let ls: Run = cht.run(&["ls"]);
        assert!(
            ls.stdout.contains(expect) || ls.stderr.contains(expect),
            "ls says why p is damaged: {ls:#?}"
        );
        let export = cht.scratch().join("k8s").display().to_string();
        let err = cht
            .run(&["export", "kubernetes", "p", "--out", &export])
            .one_line_error();
        // The project's own setting is named, not export's --host option.
        assert!(
            err.contains(expect) && err.starts_with("error: project \"p\" is damaged"),
            "{err}"
        );
    }
}

#[test]
fn registry_names_follow_the_reference_grammar() {
    let cht = ChtDev::new();
    for registry in [
        "UPPER/x",
        "reg_x.example/medic",
        "registry.example:0/x",
        "a/b___c",
    ] {
        refused(
            &cht,
            &["init", "p", "--image-registry", registry],
            2,
            &["invalid image registry", registry],
        );
        assert!(!cht.home().exists(), "nothing is written");
    }
    cht.run(&[
        "init",
        "p",
        "--image-registry",
        "Registry.Example.org:5000/medic",
    ])
    .ok();
}

#[test]
fn export_outputs_never_overlap_and_are_checked_before_anything_is_written() {
    let cht = home_with_project();
    let out = cht.scratch().join("k8s");
    let out_shown = out.display().to_string();
    for (values, expect) in [
        (
            out.join("credentials.yaml"),
            "is the manifest --out writes as credentials.yaml",
        ),
        (out.clone(), "is the --out folder"),
        (cht.scratch().to_path_buf(), "it is a folder"),
    ] {
        refused(
            &cht,
            &export_with_values(&out_shown, &values.display().to_string()),
            2,
            &[expect],
        );
        assert!(!out.exists(), "no manifest is written before the refusal");
    }
    cht.run(&export_with_values(
        &out_shown,
        &out.join("values.yaml").display().to_string(),
    ))
    .ok();
    assert!(out.join("values.yaml").is_file() && out.join("credentials.yaml").is_file());
}
