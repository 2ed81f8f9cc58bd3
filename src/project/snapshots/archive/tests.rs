use super::*;
use crate::project::snapshots::testing::project_in;

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
