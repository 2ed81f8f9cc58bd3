//! Where users run cht-dev beyond a root shell on Linux: here, a home whose path has
//! spaces, as macOS's data folder (`~/Library/Application Support/cht-dev`) has.

use crate::common::ChtDev;
use crate::common::engine::Stack;

/// macOS's default home, under a temporary folder.
const MACOS_LIKE_HOME: &str = "Library/Application Support/cht-dev";

#[test]
fn a_home_whose_path_has_spaces_works_end_to_end() {
    let s = Stack::in_home("spaces", ChtDev::with_home(MACOS_LIKE_HOME));
    let name = s.name.as_str();
    assert!(
        s.dir()
            .display()
            .to_string()
            .contains("Application Support/cht-dev/")
    );

    // up: HTTPS through nginx, verified against the CA (whose path has the space too).
    let up = s.up(&[]).ok();
    assert!(up.stdout.contains("is up"), "{up:#?}");
    assert_eq!(s.curl_https("/").0, "200");
    let data = s.dir().join("couchdb");
    assert!(
        data.join("standin-marker").is_file(),
        "CouchDB writes into the data folder bind-mounted from a path with a space"
    );
    std::fs::write(data.join("keep-me"), "data").expect("marker");

    // Compose, v1 and v2, reads the files and .env from that folder and finds the stack;
    // the upgrade service's boot compose runs there too and recreates nothing.
    let ids = s.ids();
    for cli in crate::common::composes() {
        let ps = s.compose(&cli, &["ps", "--services"]);
        assert_eq!(ps.code, 0, "{}: {ps:#?}", cli.label);
        assert!(ps.stdout.contains("couchdb"), "{}: {ps:#?}", cli.label);
    }
    let boot = s.wait_boots(1);
    assert!(
        boot.contains("startup: done (exit 0)"),
        "the upgrade service's compose ran the project's files: {boot}"
    );
    assert_eq!(s.ids(), ids, "the upgrade service's boot kept them: {boot}");

    // A snapshot round trip: the archive, the folder swap and the restart all under spaces.
    s.cht
        .run(&["snapshot", "create", name, "--label", "spaced"])
        .ok();
    std::fs::remove_file(data.join("keep-me")).expect("rm");
    s.cht
        .run(&["snapshot", "restore", name, "spaced", "--yes"])
        .ok();
    assert_eq!(
        std::fs::read_to_string(data.join("keep-me")).expect("restored"),
        "data"
    );
    assert_eq!(s.curl_https("/").0, "200");

    // down and up again keep the data; destroy leaves nothing of the project.
    s.cmd("down", &[]).ok();
    s.up(&[]).ok();
    assert!(data.join("keep-me").is_file());
    s.cmd("destroy", &["--yes"]).ok();
    assert!(!s.dir().exists());
    assert!(s.all_containers().is_empty());
    assert!(s.volumes().is_empty());
}
