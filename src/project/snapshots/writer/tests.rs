use super::*;

/// A project in `dir` with nothing but a name.
fn project_in(dir: &Path) -> Project {
    Project::from_env(
        "p",
        dir.to_path_buf(),
        crate::project::dotenv::EnvFile::new(),
    )
    .expect("project")
}

/// Every file under `dir` with its contents, by path relative to `dir`.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).expect("read") {
            let path = entry.expect("entry").path();
            let relative = path.strip_prefix(dir).expect("inside").to_path_buf();
            if path.is_dir() {
                found.insert(relative, b"<dir>".to_vec());
                stack.push(path);
            } else {
                found.insert(relative, std::fs::read(&path).expect("read"));
            }
        }
    }
    found
}

/// A sidecar for `label`.
fn info(label: &str) -> SnapshotInfo {
    SnapshotInfo {
        label: label.into(),
        cht_version: "5.2.0".into(),
        created: "2026-12-02T00:00:00Z".into(),
        bytes: 0,
        data_bytes: 0,
        method: "test".into(),
        couchdb_nodes: 1,
        compression: Compression::Zstd,
        level: None,
        unpacked_bytes: None,
    }
}

/// Appends `text` to the file at `path`.
fn append(path: &Path, text: &str) {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open");
    file.write_all(text.as_bytes()).expect("append");
}

#[test]
fn an_archive_of_folders_in_use_holds_them_as_they_were_at_the_stop() {
    let tmp = tempfile::tempdir().expect("tmp");
    let project = project_in(tmp.path());
    let data = tmp.path().join("couchdb");
    std::fs::create_dir_all(data.join("shards/00-7f")).expect("mkdir");
    std::fs::create_dir_all(data.join("nouveau/index")).expect("mkdir");
    let shard = data.join("shards/00-7f/medic.couch");
    std::fs::write(&shard, "header;doc1;".repeat(500)).expect("write");
    std::fs::write(data.join("_users.couch"), "users;").expect("write");
    std::fs::write(data.join("compacted.couch"), "before compaction;").expect("write");
    std::fs::write(data.join("deleted.couch"), "soon gone;").expect("write");
    std::fs::write(data.join("rewritten.ini"), "a=1\n").expect("write");
    std::fs::write(data.join("nouveau/index/seg_1"), "segment").expect("write");
    let sources = [Source {
        name: "data".into(),
        dir: data.clone(),
        later: vec![PathBuf::from("nouveau")],
    }];
    let mut writer = Writer::create(&project, "live", 3).expect("create");
    let seen = std::sync::Mutex::new(0);
    writer
        .take_live(&sources, &|n| *seen.lock().expect("lock") = n)
        .expect("first pass");
    assert!(*seen.lock().expect("lock") > 6000, "progress counts bytes");
    // While the services ran: appends, a compaction's rename, a deletion, new files, an
    // in-place rewrite of the same length, and Nouveau writing its index.
    append(&shard, "doc2;doc3;");
    std::fs::write(data.join("compacted.couch.compact"), "after compaction;").expect("write");
    std::fs::rename(
        data.join("compacted.couch.compact"),
        data.join("compacted.couch"),
    )
    .expect("rename");
    std::fs::remove_file(data.join("deleted.couch")).expect("remove");
    std::fs::create_dir_all(data.join("shards/80-ff")).expect("mkdir");
    std::fs::write(data.join("shards/80-ff/new.couch"), "new db;").expect("write");
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(data.join("rewritten.ini"), "a=2\n").expect("write");
    std::fs::write(data.join("nouveau/index/seg_2"), "segment 2").expect("write");
    // The stop: what the snapshot must hold.
    let at_stop = contents(&data);
    let caught = writer.catch_up(&sources).expect("second pass");
    assert_eq!(caught.grown, 1, "{caught:?}");
    // compacted, new, rewritten, and Nouveau's two segments.
    assert_eq!(caught.whole, 5, "{caught:?}");
    assert_eq!(caught.bytes, 10 + 17 + 7 + 4 + 7 + 9);
    // Running again: CouchDB appends on, compacts again, deletes a database.
    append(&shard, "doc4 after the stop;");
    std::fs::write(data.join("compacted.couch.compact"), "compacted again;").expect("write");
    std::fs::rename(
        data.join("compacted.couch.compact"),
        data.join("compacted.couch"),
    )
    .expect("rename");
    std::fs::remove_file(data.join("_users.couch")).expect("remove");
    let mut sidecar = info("live");
    sidecar.data_bytes = caught.data;
    let written = writer
        .finish(&|_| {})
        .expect("finish")
        .publish(&project, sidecar)
        .expect("publish");
    assert_eq!(
        (written.compression, written.level),
        (Compression::Zstd, Some(3))
    );
    assert_eq!(
        archive::archive_of(&project, &written),
        tmp.path().join("snapshots/live.tar.zst")
    );
    let listed = archive::list(&project).expect("list");
    assert_eq!(listed, std::slice::from_ref(&written));
    let into = tmp.path().join("restored");
    std::fs::create_dir(&into).expect("mkdir");
    super::super::unpack::extract(&project, &written, &[("data", &into)], &|_| {})
        .expect("extract");
    assert_eq!(contents(&into), at_stop);
    let left: Vec<_> = std::fs::read_dir(tmp.path().join("snapshots"))
        .expect("list")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 2, "the archive and its sidecar only: {left:?}");
}

#[test]
fn a_file_rewritten_in_place_at_the_end_is_taken_whole_and_a_failure_leaves_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let project = project_in(tmp.path());
    let data = tmp.path().join("couchdb");
    std::fs::create_dir_all(&data).expect("mkdir");
    let file = data.join("db.couch");
    std::fs::write(&file, "abcdef").expect("write");
    let sources = [Source {
        name: "data".into(),
        dir: data.clone(),
        later: Vec::new(),
    }];
    let mut writer = Writer::create(&project, "x", 1).expect("create");
    writer.take_live(&sources, &|_| {}).expect("first pass");
    // Longer, but its old end changed: not an append.
    std::fs::write(&file, "abcdeXgh").expect("write");
    let caught = writer.catch_up(&sources).expect("second pass");
    assert_eq!((caught.grown, caught.whole), (0, 1));
    drop(writer);
    let left: Vec<_> = std::fs::read_dir(tmp.path().join("snapshots"))
        .expect("list")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "a writer dropped unfinished leaves nothing: {left:?}"
    );
    assert!(archive::list(&project).expect("list").is_empty());
}

#[test]
fn exactly_pads_a_reader_that_ends_early() {
    let mut out = Vec::new();
    let mut short = Exactly::new(&b"abc"[..], 5);
    short.read_to_end(&mut out).expect("read");
    assert_eq!(out, b"abc\0\0");
    assert!(short.short);
    let mut out = Vec::new();
    Exactly::new(&b"abcdef"[..], 4)
        .read_to_end(&mut out)
        .expect("read");
    assert_eq!(out, b"abcd");
}
