//! A disk that fills: the home on a small file system (a tmpfs with a size limit, mounted
//! by the test, as root), filled up to a chosen point by a file beside the home. Each
//! command fails with the one-line disk-full error saying how much it needed, and leaves
//! nothing half-written: the data as it was, no partial archive, the stack serving.
//!
//! On the stand-in images: the data must be a known size to fill the disk at a chosen
//! point, which a real CouchDB writing its own files at start would move.

use crate::common::disk::SmallDisk;
use crate::common::engine::Stack;
use crate::common::{ChtDev, assert_left_nothing, noise};

/// A project whose home is on a small disk; the project goes before the disk.
struct OnSmallDisk {
    /// The project.
    s: Stack,
    /// The disk its home is on.
    disk: SmallDisk,
}

impl OnSmallDisk {
    /// A project `prefix…` in a home on a `mib` MiB disk, up and serving.
    fn up(prefix: &str, mib: u32, extra: &[&str]) -> OnSmallDisk {
        let s = Stack::standin_in_home(prefix, ChtDev::with_home("disk/home"));
        let disk = SmallDisk::mount(&s.cht.scratch().join("disk"), mib);
        s.up(extra).ok();
        OnSmallDisk { s, disk }
    }
}

/// The stack serves, none of it paused.
fn still_serving(s: &Stack) {
    assert_eq!(s.curl_https("/").0, "200");
    let paused = s.paused();
    assert!(paused.is_empty(), "{paused:?}");
}

#[test]
fn a_snapshot_that_fills_the_disk_fails_cleanly_and_the_stack_runs_on() {
    let d = OnSmallDisk::up("diskfull", 160, &[]);
    let s = &d.s;
    noise(&s.dir().join("couchdb/shards/big.couch"), 48);
    // Room for half the data (the check passes), not for an archive of data that does
    // not compress.
    d.disk.fill_leaving(32 << 20);
    let line = s
        .cht
        .run(&["snapshot", "create", &s.name, "--label", "full"])
        .error_after_progress();
    assert!(
        line.contains("not enough free space")
            && line.contains("to write the snapshot: it needs about 48.0 MB"),
        "{line}"
    );
    assert_left_nothing(&s.cht.home(), "after the failure");
    assert!(!s.dir().join("snapshots/full.tar.zst").exists());
    assert!(!s.dir().join("snapshots/full.json").exists());
    still_serving(s);
    d.disk.empty();
    s.cht
        .run(&["snapshot", "create", &s.name, "--label", "full"])
        .ok();
}

#[test]
fn a_restore_without_room_is_refused_before_the_swap_and_the_data_stays() {
    let d = OnSmallDisk::up("diskrest", 128, &[]);
    let s = &d.s;
    noise(&s.dir().join("couchdb/shards/big.couch"), 24);
    let marker = s.dir().join("couchdb/disk-marker");
    std::fs::write(&marker, "in the snapshot").expect("marker");
    s.cht
        .run(&["snapshot", "create", &s.name, "--label", "base"])
        .ok();
    std::fs::write(&marker, "after").expect("marker");
    d.disk.fill_leaving(8 << 20);
    let line = s
        .cht
        .run(&["snapshot", "restore", &s.name, "base", "--yes"])
        .one_line_error();
    // The data, and the floor kept free for CouchDB while the snapshot is unpacked.
    assert!(
        line.contains("not enough free space")
            && line.contains(
                "to unpack the snapshot and keep 64.0 MB free for CouchDB: it needs about 88.0 MB"
            ),
        "{line}"
    );
    assert_eq!(std::fs::read_to_string(&marker).expect("marker"), "after");
    assert_left_nothing(&s.cht.home(), "after the failure");
    still_serving(s);
}

#[test]
fn an_upgrade_or_an_init_on_a_full_disk_writes_nothing() {
    let d = OnSmallDisk::up("diskupg", 64, &["--cht-version", "4.22.0"]);
    let s = &d.s;
    d.disk.fill_leaving(0);
    let before = s.cht.tree();
    let line = s
        .cht
        .run(&[
            "upgrade",
            &s.name,
            "--cht-version",
            "5.2.0",
            "--pull",
            "never",
        ])
        .one_line_error();
    assert!(
        line.contains("not enough free space")
            && line.contains("write the new release's files: it needs about"),
        "{line}"
    );
    assert_eq!(s.cht.tree(), before, "not one file changed");
    still_serving(s);

    let line = s.cht.run(&["init", "second"]).one_line_error();
    assert!(
        line.contains("not enough free space")
            && line.contains("to make the project: it needs about"),
        "{line}"
    );
    assert!(!s.cht.project("second").exists());
    assert_left_nothing(&s.cht.home(), "after the failure");
    d.disk.empty();
    s.cmd(
        "upgrade",
        &[
            "--cht-version",
            "5.2.0",
            "--pull",
            "never",
            "--timeout",
            "60",
        ],
    )
    .ok();
}
