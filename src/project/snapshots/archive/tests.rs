use std::fs::File;

use super::*;
use crate::project::snapshots::testing::project_in;
use crate::project::snapshots::unpack::{extract, limit};

/// A sidecar for `label`.
fn info(label: &str, nodes: u32) -> SnapshotInfo {
    SnapshotInfo {
        label: label.into(),
        cht_version: "5.2.0".into(),
        created: "2026-11-23T00:00:00Z".into(),
        bytes: 0,
        data_bytes: 0,
        method: "test".into(),
        couchdb_nodes: nodes,
        compression: Compression::Zstd,
        level: None,
        unpacked_bytes: None,
    }
}

/// The folders `names` of `root` archived as snapshot `info` with nothing changing.
fn write(
    project: &Project,
    root: &Path,
    names: &[&str],
    info: SnapshotInfo,
) -> Result<SnapshotInfo> {
    let sources: Vec<super::super::Source> = names
        .iter()
        .map(|n| super::super::Source {
            name: (*n).to_string(),
            dir: root.join(n),
            later: Vec::new(),
        })
        .collect();
    let mut writer = super::super::Writer::create(project, &info.label, DEFAULT_LEVEL)?;
    writer.take_live(&sources, &|_| {})?;
    writer.catch_up(&sources)?;
    writer.finish(&|_| {})?.publish(project, info)
}

#[test]
fn every_node_round_trips_and_a_missing_or_foreign_folder_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let project = project_in(tmp.path());
    let copy = tmp.path().join("copy");
    let names = ["node-1", "node-2", "node-3"];
    for name in names {
        std::fs::create_dir_all(copy.join(name).join("shards")).expect("mkdir");
        std::fs::write(copy.join(name).join("shards/db.couch"), name).expect("write");
    }
    let written = write(&project, &copy, &names, info("three", 3)).expect("write");
    assert!(written.bytes > 0);
    assert_eq!(list(&project).expect("list")[0].couchdb_nodes, 3);
    let targets: Vec<PathBuf> = names
        .iter()
        .map(|n| tmp.path().join(format!("out-{n}")))
        .collect();
    for t in &targets {
        std::fs::create_dir(t).expect("mkdir");
    }
    let pairs: Vec<(&str, &Path)> = names
        .iter()
        .copied()
        .zip(targets.iter().map(PathBuf::as_path))
        .collect();
    extract(&project, &written, &pairs, &|_| {}).expect("extract");
    for (name, t) in &pairs {
        assert_eq!(
            std::fs::read_to_string(t.join("shards/db.couch")).expect("read"),
            *name
        );
    }
    // Two targets only: the third folder is foreign to them.
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir(&fresh).expect("mkdir");
    let err = extract(
        &project,
        &written,
        &[("node-1", &fresh), ("node-2", &fresh)],
        &|_| {},
    )
    .expect_err("refused")
    .to_string();
    assert!(err.contains("outside node-1/, node-2/"), "{err}");
    // A one-folder snapshot lacks the second folder of a two-folder restore.
    let one = write(&project, &copy, &["node-1"], info("one", 1)).expect("write");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for t in [&a, &b] {
        std::fs::create_dir(t).expect("mkdir");
    }
    let err = extract(&project, &one, &[("node-1", &a), ("node-2", &b)], &|_| {})
        .expect_err("refused")
        .to_string();
    assert!(err.contains("holds no node-2/ folder"), "{err}");
}

#[test]
fn sidecars_from_before_clusters_and_zstd_hold_one_node_in_gzip() {
    let old = r#"{"label":"a","cht_version":"5.2.0","created":"x","bytes":1,"data_bytes":1,"method":"m"}"#;
    let parsed: SnapshotInfo = serde_json::from_str(old).expect("parse");
    assert_eq!(parsed.couchdb_nodes, 1);
    assert_eq!(
        (parsed.compression, parsed.level),
        (Compression::Gzip, None)
    );
}

#[test]
fn a_gzip_snapshot_from_before_zstd_lists_restores_and_is_removed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let project = project_in(tmp.path());
    let dir = folder(&project);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = File::create(dir.join("old.tar.gz")).expect("create");
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("shards")).expect("mkdir");
    std::fs::write(data.join("shards/a.couch"), "old data").expect("write");
    tar.append_dir_all("data", &data).expect("archive");
    tar.into_inner().expect("tar").finish().expect("gzip");
    let sidecar = r#"{"label":"old","cht_version":"5.2.0","created":"2026-01-01T00:00:00Z","bytes":1,"data_bytes":8,"method":"m"}"#;
    std::fs::write(dir.join("old.json"), sidecar).expect("write");
    let info = find(&project, "old").expect("listed");
    assert_eq!(archive_of(&project, &info), dir.join("old.tar.gz"));
    let into = tmp.path().join("into");
    std::fs::create_dir(&into).expect("mkdir");
    extract(&project, &info, &[("data", &into)], &|_| {}).expect("extract");
    assert_eq!(
        std::fs::read_to_string(into.join("shards/a.couch")).expect("read"),
        "old data"
    );
    assert!(check_free(&project, "old").is_err());
    remove(&project, "old").expect("remove");
    assert!(!dir.join("old.tar.gz").exists() && !dir.join("old.json").exists());
}

#[test]
fn a_file_behind_a_link_out_of_the_data_folder_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let project = project_in(tmp.path());
    let dir = folder(&project);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    let file = File::create(dir.join("evil.tar.zst")).expect("create");
    let mut tar = tar::Builder::new(zstd::stream::write::Encoder::new(file, 1).expect("zstd"));
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_size(0);
    tar.append_data(&mut header, "data", std::io::empty())
        .expect("dir");
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    tar.append_link(&mut link, "data/evil", &outside)
        .expect("link");
    let mut plain = tar::Header::new_gnu();
    plain.set_mode(0o644);
    plain.set_size(2);
    tar.append_data(&mut plain, "data/evil/f", &b"no"[..])
        .expect("file");
    tar.into_inner().expect("tar").finish().expect("zstd");
    let mut sidecar = info("evil", 1);
    sidecar.compression = Compression::Zstd;
    let into = tmp.path().join("into");
    std::fs::create_dir(&into).expect("mkdir");
    // The link, or the file behind it, is refused; nothing lands outside.
    let err = extract(&project, &sidecar, &[("data", &into)], &|_| {}).expect_err("refused");
    assert!(err.to_string().contains("unpack"), "{err}");
    assert!(!outside.join("f").exists());
}

#[test]
fn labels_are_plain_file_names() {
    for good in ["before-upgrade", "2026-11-23T01-30-05Z", "v5.2.0_a"] {
        assert!(check_label(good).is_ok(), "{good}");
    }
    for bad in ["", ".hidden", "-x", "a/b", "a:b", "a b", &"x".repeat(65)] {
        assert!(check_label(bad).is_err(), "{bad}");
    }
    let label = default_label(time::macros::datetime!(2026-11-23 01:02:03 UTC));
    assert_eq!(label, "2026-11-23T01-02-03Z");
    assert!(check_label(&label).is_ok());
}

#[test]
fn a_snapshot_restores_only_into_an_older_or_equal_release_with_as_many_nodes() {
    use crate::project::layout::Layout;
    let info = SnapshotInfo {
        label: "before".into(),
        cht_version: "4.22.0".into(),
        created: String::new(),
        bytes: 0,
        data_bytes: 0,
        method: String::new(),
        couchdb_nodes: 1,
        compression: Compression::Zstd,
        level: Some(3),
        unpacked_bytes: None,
    };
    assert!(info.restorable_into("p", "4.22.0", Layout::Single).is_ok());
    assert!(info.restorable_into("p", "5.2.0", Layout::Single).is_ok());
    let newer = info
        .restorable_into("p", "4.21.0", Layout::Single)
        .expect_err("newer");
    assert!(
        newer.to_string().contains("upgrade the project first"),
        "{newer}"
    );
    let nodes = info
        .restorable_into("p", "4.22.0", Layout::Cluster)
        .expect_err("nodes");
    assert!(
        nodes.to_string().contains("same number of CouchDB nodes"),
        "{nodes}"
    );
}

/// Writes `entries` (name, entry type, contents) as the zstd archive of snapshot `info`.
fn hand_made(project: &Project, info: &SnapshotInfo, entries: &[(&str, tar::EntryType, &[u8])]) {
    let dir = folder(project);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = File::create(archive_of(project, info)).expect("create");
    let mut tar = tar::Builder::new(zstd::stream::write::Encoder::new(file, 1).expect("zstd"));
    for (name, kind, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        header.set_size(data.len() as u64);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        tar.append_data(&mut header, name, *data).expect("entry");
    }
    tar.into_inner().expect("tar").finish().expect("zstd");
}

/// A fresh empty folder `name` in `dir`.
fn fresh(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir(&path).expect("mkdir");
    path
}

#[test]
fn data_holding_an_entry_named_data_round_trips() {
    let tmp = tempfile::tempdir().expect("tmp");
    let project = project_in(tmp.path());
    let copy = tmp.path().join("copy");
    std::fs::create_dir_all(copy.join("data/data/data")).expect("mkdir");
    std::fs::write(copy.join("data/data/data/f"), "deep").expect("write");
    std::fs::write(copy.join("data/.cht-dev-lift-0"), "named like the aside").expect("write");
    let written = write(&project, &copy, &["data"], info("nested", 1)).expect("write");
    assert!(
        written
            .unpacked_bytes
            .is_some_and(|u| u >= written.data_bytes)
    );
    let into = fresh(tmp.path(), "into");
    extract(&project, &written, &[("data", &into)], &|_| {}).expect("restores");
    assert_eq!(
        std::fs::read_to_string(into.join("data/data/f")).expect("read"),
        "deep"
    );
    assert_eq!(
        std::fs::read_to_string(into.join(".cht-dev-lift-0")).expect("read"),
        "named like the aside"
    );
    let mut names: Vec<String> = std::fs::read_dir(&into)
        .expect("read")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [".cht-dev-lift-0", "data"], "nothing else is left");
}

#[test]
fn a_data_entry_that_is_a_file_or_a_device_entry_is_refused() {
    use tar::EntryType;
    let tmp = tempfile::tempdir().expect("tmp");
    let project = project_in(tmp.path());
    let plain = info("plain", 1);
    hand_made(&project, &plain, &[("data", EntryType::Regular, b"x")]);
    let err = extract(
        &project,
        &plain,
        &[("data", &fresh(tmp.path(), "a"))],
        &|_| {},
    )
    .expect_err("refused")
    .to_string();
    assert!(err.contains("data entry is not a folder"), "{err}");
    for (label, kind) in [
        ("fifo", EntryType::Fifo),
        ("dev", EntryType::Char),
        ("block", EntryType::Block),
    ] {
        let odd = info(label, 1);
        hand_made(
            &project,
            &odd,
            &[("data", EntryType::Directory, b""), ("data/odd", kind, b"")],
        );
        let into = fresh(tmp.path(), label);
        let err = extract(&project, &odd, &[("data", &into)], &|_| {})
            .expect_err("refused")
            .to_string();
        assert!(
            err.contains("which CouchDB data never has"),
            "{label}: {err}"
        );
        assert!(!into.join("data/odd").exists(), "{label}");
    }
}

#[test]
fn an_archive_holding_more_than_its_record_declares_stops_there() {
    use tar::EntryType;
    let tmp = tempfile::tempdir().expect("tmp");
    let project = project_in(tmp.path());
    let mut bomb = info("bomb", 1);
    bomb.data_bytes = 100;
    bomb.unpacked_bytes = Some(100);
    let zeros = vec![0u8; 3 << 20];
    hand_made(
        &project,
        &bomb,
        &[
            ("data", EntryType::Directory, b""),
            ("data/small", EntryType::Regular, b"fits"),
            ("data/big", EntryType::Regular, &zeros),
        ],
    );
    let into = fresh(tmp.path(), "into");
    let err = extract(&project, &bomb, &[("data", &into)], &|_| {}).expect_err("stopped");
    assert!(
        matches!(err, Error::BadSnapshot { .. })
            && err
                .to_string()
                .contains("more than its record declares (1.0 MB)")
            && err.to_string().contains("stopped after 4 B"),
        "{err}"
    );
    assert!(
        !into.join("data/big").exists(),
        "the large file is never begun"
    );
    // A record from before the sizes were kept: twice its data or twenty times the archive,
    // and the slack.
    bomb.unpacked_bytes = None;
    assert_eq!(limit(&bomb, 5), 200 + (1 << 20));
    assert_eq!(limit(&bomb, 1000), 20_000 + (1 << 20));
}

#[test]
fn records_read_back_are_checked_field_by_field() {
    let good = info("good", 1);
    assert_eq!(good.check(), Ok(()));
    /// What the error must say, and how the record is spoiled.
    type Case = (&'static str, fn(&mut SnapshotInfo));
    let cases: [Case; 9] = [
        ("release number", |i| i.cht_version = "5.x".into()),
        ("release number", |i| i.cht_version = "5.2.0.1".into()),
        ("RFC 3339", |i| {
            i.created = "2026-11-23T00:00:00Z\u{1b}[2J".into()
        }),
        ("control characters", |i| i.method = "a\u{1b}[31mb".into()),
        ("over 1 PiB", |i| i.data_bytes = u64::MAX),
        ("fewer bytes in its archive", |i| {
            i.data_bytes = 10;
            i.unpacked_bytes = Some(9);
        }),
        ("CouchDB nodes", |i| i.couchdb_nodes = 2),
        ("zstd level", |i| i.level = Some(99)),
        ("over 1024 bytes", |i| i.method = "m".repeat(2000)),
    ];
    for (expect, spoil) in cases {
        let mut bad = good.clone();
        spoil(&mut bad);
        let err = bad.check().expect_err(expect);
        assert!(err.contains(expect), "{expect}: {err}");
        assert!(!err.contains('\u{1b}'), "escaped: {err}");
    }
}

#[test]
fn damaged_records_are_not_listed_and_say_why_when_asked_for() {
    let tmp = tempfile::tempdir().expect("tmp");
    let project = project_in(tmp.path());
    let ok = info("ok", 1);
    hand_made(&project, &ok, &[("data", tar::EntryType::Directory, b"")]);
    publish_record(&project, &ok);
    let mut odd = info("odd", 1);
    odd.cht_version = "99".into();
    hand_made(&project, &odd, &[("data", tar::EntryType::Directory, b"")]);
    publish_record(&project, &odd);
    std::fs::write(folder(&project).join("huge.json"), vec![b' '; 100 << 10]).expect("write");
    let (found, damaged) = scan(&project).expect("scan");
    assert_eq!(
        found.iter().map(|i| i.label.as_str()).collect::<Vec<_>>(),
        ["ok"]
    );
    let labels: Vec<&str> = damaged.iter().map(|d| d.label.as_str()).collect();
    assert_eq!(labels, ["huge", "odd"]);
    let err = find(&project, "odd").expect_err("damaged").to_string();
    assert!(
        err.contains("release number") && err.contains("snapshot rm"),
        "{err}"
    );
    remove(&project, "odd").expect("a damaged one is removed");
    remove(&project, "huge").expect("a damaged one is removed");
    assert!(scan(&project).expect("scan").1.is_empty());
}

/// Writes `info`'s sidecar as cht-dev does.
fn publish_record(project: &Project, info: &SnapshotInfo) {
    let text = serde_json::to_string(info).expect("json");
    std::fs::write(sidecar_path(project, &info.label), text).expect("sidecar");
}
