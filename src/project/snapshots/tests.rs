use super::*;
use crate::home::Home;
use crate::project::InitOptions;

/// A project made as `init` makes it, with `nodes` CouchDB nodes, in a temporary home.
fn created(nodes: u32) -> (tempfile::TempDir, Project) {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = Home::at(tmp.path()).expect("home");
    let opts = InitOptions {
        name: "snap".into(),
        cht_version: Some("4.22.0".into()),
        couchdb_nodes: Some(nodes),
        ..InitOptions::default()
    };
    let project = crate::project::create(&home, &opts)
        .expect("create")
        .project;
    (tmp, project)
}

#[test]
fn the_method_says_how_the_services_were_held_for_how_long_and_what_was_copied() {
    let took = Some(Held::Stopped(Duration::from_millis(512)));
    let caught = |grown, whole| CaughtUp {
        grown,
        whole,
        bytes: 2048,
        data: 0,
    };
    assert_eq!(
        method(Layout::Single, took, &caught(0, 0)),
        "consistent: API, Sentinel, CouchDB and Nouveau (where it runs) stopped for 0.51 s while nothing had changed (2.0 kB), then started again"
    );
    assert_eq!(
        method(Layout::Cluster, took, &caught(2, 1)),
        "consistent: API, Sentinel, CouchDB's 3 nodes and Nouveau (where it runs) stopped for 0.51 s while the tails of 2 files that grew and 1 file whole were copied (2.0 kB), then started again"
    );
    assert_eq!(
        method(Layout::Single, took, &caught(0, 3)),
        "consistent: API, Sentinel, CouchDB and Nouveau (where it runs) stopped for 0.51 s while 3 files were copied (2.0 kB), then started again"
    );
    assert_eq!(
        method(
            Layout::Single,
            Some(Held::Paused(Duration::from_millis(7))),
            &caught(1, 0)
        ),
        "consistent: API, Sentinel, CouchDB and Nouveau (where it runs) paused for 0.01 s while the tails of 1 file that grew were copied (2.0 kB), then resumed"
    );
    assert_eq!(
        method(Layout::Single, None, &caught(0, 0)),
        "consistent: nothing was running while the data was read"
    );
}

#[test]
fn the_sidecar_records_the_release_layout_and_a_whole_second() {
    let now = time::macros::datetime!(2026-12-02 10:11:12.987 UTC);
    let info = info(
        "l".into(),
        "5.2.0".into(),
        Layout::Cluster,
        7,
        "m".into(),
        now,
    );
    assert_eq!(info.created, "2026-12-02T10:11:12Z");
    assert_eq!((info.couchdb_nodes, info.data_bytes, info.bytes), (3, 7, 0));
}

#[test]
fn the_first_node_reads_nouveau_only_while_stopped_and_sizes_add_up() {
    let (_tmp, project) = created(3);
    let sources = sources(&project).expect("sources");
    assert_eq!(
        sources.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["node-1", "node-2", "node-3"]
    );
    assert_eq!(sources[0].later, [PathBuf::from(NOUVEAU_DIR)]);
    assert!(sources[1].later.is_empty() && sources[2].later.is_empty());
    std::fs::create_dir_all(sources[0].dir.join("shards")).expect("mkdir");
    std::fs::write(sources[0].dir.join("shards/a.couch"), "x".repeat(100)).expect("write");
    std::fs::write(sources[0].dir.join("b.couch"), "y".repeat(20)).expect("write");
    assert_eq!(data_size(&sources[0].dir), 120);
    let folder = folder(&project);
    std::fs::create_dir_all(&folder).expect("mkdir");
    let err = check_space(&folder, u64::MAX, "write the snapshot").expect_err("refused");
    assert!(
        err.to_string().contains("not enough free space")
            && err.to_string().contains("write the snapshot"),
        "{err}"
    );
    check_space(&folder, 1, "write the snapshot").expect("fits");
}

#[test]
fn a_restore_is_refused_before_anything_is_made_when_it_does_not_fit() {
    let (_tmp, project) = created(1);
    let missing = RestoreStaging::prepare(&project, "none")
        .err()
        .expect("refused");
    assert!(
        matches!(missing, Error::SnapshotNotFound { .. }),
        "{missing}"
    );
    let folder = folder(&project);
    std::fs::create_dir_all(&folder).expect("mkdir");
    for (label, version, nodes) in [("newer", "5.2.0", 1), ("trio", "4.22.0", 3)] {
        let sidecar = serde_json::json!({
            "label": label, "cht_version": version, "created": "2026-12-02T00:00:00Z",
            "bytes": 1, "data_bytes": 1, "method": "m", "couchdb_nodes": nodes,
        });
        std::fs::write(folder.join(format!("{label}.tar.gz")), "x").expect("write");
        std::fs::write(folder.join(format!("{label}.json")), sidecar.to_string()).expect("write");
    }
    let newer = RestoreStaging::prepare(&project, "newer")
        .err()
        .expect("refused");
    assert!(matches!(newer, Error::SnapshotNewer { .. }), "{newer}");
    assert_eq!(newer.exit_code(), 2);
    let trio = RestoreStaging::prepare(&project, "trio")
        .err()
        .expect("refused");
    assert!(matches!(trio, Error::SnapshotLayout { .. }), "{trio}");
    let parent = project.data_folders()[0]
        .path
        .parent()
        .expect("parent")
        .to_path_buf();
    let left: Vec<_> = std::fs::read_dir(&parent)
        .expect("list")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("restore"))
        .collect();
    assert!(left.is_empty(), "no unpacking folder is made: {left:?}");
}

#[test]
fn a_cluster_unpacks_beside_each_node_and_hands_back_its_owner() {
    let (_tmp, project) = created(3);
    let folder = folder(&project);
    std::fs::create_dir_all(&folder).expect("mkdir");
    let sidecar = serde_json::json!({
        "label": "trio", "cht_version": "4.22.0", "created": "2026-12-02T00:00:00Z",
        "bytes": 1, "data_bytes": 1, "method": "m", "couchdb_nodes": 3,
    });
    std::fs::write(folder.join("trio.tar.gz"), "x").expect("write");
    std::fs::write(folder.join("trio.json"), sidecar.to_string()).expect("write");
    let (info, staging) = RestoreStaging::prepare(&project, "trio").expect("fits");
    assert_eq!(info.couchdb_nodes, 3);
    let targets = staging.targets();
    assert_eq!(
        targets.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        ["node-1", "node-2", "node-3"]
    );
    let pairs = staging.pairs();
    for ((data, unpacked), (_, target)) in pairs.iter().zip(&targets) {
        assert_eq!(unpacked, target);
        assert_eq!(
            data.parent(),
            unpacked.parent(),
            "one rename on one file system"
        );
        assert!(unpacked.is_dir());
    }
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(&pairs[0].0).expect("meta").uid();
    // This user owns the data folders: nothing is left for the engine.
    assert!(staging.hand_back(owner).is_empty());
    // Another user's data folders, and this user not root: the engine hands them over.
    let left = staging.hand_back(owner + 1);
    assert_eq!(left.len(), 3);
    assert!(
        left.iter()
            .all(|(path, uid, _)| *uid == owner && path.is_dir())
    );
    assert!(staging.dispose().is_empty());
    assert!(pairs.iter().all(|(_, unpacked)| !unpacked.exists()));
}

#[test]
fn a_failed_swap_puts_back_the_swaps_done() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = |n: &str| tmp.path().join(n);
    for (folder, file) in [("data-1", "old"), ("new-1", "new"), ("data-2", "old")] {
        std::fs::create_dir(dir(folder)).expect("mkdir");
        std::fs::write(dir(folder).join("f"), file).expect("write");
    }
    // The second staged folder is missing: its swap fails after the first one's.
    let pairs = [(dir("data-1"), dir("new-1")), (dir("data-2"), dir("new-2"))];
    let swaps = |pairs: &[(PathBuf, PathBuf)]| -> Vec<Swap> {
        pairs
            .iter()
            .map(|(data, staged)| Swap::of(data, staged).expect("swap"))
            .collect()
    };
    let first = swaps(&pairs);
    assert!(exchange_all(&first).is_err());
    let read = |folder: &str| std::fs::read_to_string(dir(folder).join("f")).expect("read");
    assert_eq!(read("data-1"), "new", "the first swap stays until undone");
    assert_eq!(undo_swaps(&first).expect("undo"), 1);
    assert_eq!(read("data-1"), "old");
    assert_eq!(read("new-1"), "new");
    assert_eq!(read("data-2"), "old");
    std::fs::create_dir(dir("new-2")).expect("mkdir");
    std::fs::write(dir("new-2").join("f"), "new").expect("write");
    exchange_all(&swaps(&pairs)).expect("swaps");
    assert_eq!(read("data-1"), "new");
    assert_eq!(read("data-2"), "new");
}
