//! Making, loading and reading projects.

use super::create::{random_alnum, random_hex16, tls_mode};
use super::lock::lock_in;
use super::*;

/// Options for a project called `name` with every default.
fn opts(name: &str) -> InitOptions {
    InitOptions {
        name: name.to_string(),
        ..InitOptions::default()
    }
}

#[test]
fn a_failure_after_checks_leaves_no_project_behind() {
    let dir = tempfile::tempdir().expect("tmp");
    let home = Home::at(dir.path()).expect("home");
    // A CA folder without its files makes creation fail after all input checks.
    std::fs::create_dir_all(home.ca_dir()).expect("mkdir");
    let err = create(&home, &opts("half")).expect_err("fails");
    assert!(err.to_string().contains("lacks ca.pem"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, [std::ffi::OsString::from("ca")]);
}

#[test]
fn staging_folders_vanish_unless_committed() {
    let dir = tempfile::tempdir().expect("tmp");
    let staged = {
        let staging = fsutil::Staging::new(dir.path(), "x").expect("staging");
        std::fs::write(staging.path().join("f"), "x").expect("write");
        staging.path().to_path_buf()
    };
    assert!(!staged.exists());
    let staging = fsutil::Staging::new(dir.path(), "y").expect("staging");
    staging.commit(&dir.path().join("y")).expect("commit");
    assert!(dir.path().join("y").is_dir());
}

#[test]
fn urls_fauxton_and_cht_conf_name_the_projects_own_host() {
    let dir = tempfile::tempdir().expect("tmp");
    let home = Home::at(dir.path()).expect("home");
    let mut project = create(&home, &opts("my_app")).expect("create").project;
    let port = project.https_port();
    let password = project.credentials().password.clone();
    assert_eq!(project.url(), format!("https://my-app.localhost:{port}/"));
    assert_eq!(
        project.urls()[..2],
        [
            format!("https://my-app.localhost:{port}/"),
            format!("https://localhost:{port}/")
        ]
    );
    assert_eq!(
        project.fauxton_url(),
        format!("https://my-app.localhost:{port}/_utils/")
    );
    assert_eq!(
        project.cht_conf_command(Path::new("/home/Jo Doe/ca.pem")),
        Some(format!(
            "NODE_EXTRA_CA_CERTS='/home/Jo Doe/ca.pem' cht --url=https://medic:{password}@localhost:{port}"
        ))
    );
    // A login with characters a URL reserves is percent-encoded, then quoted.
    project
        .update_env(&[("COUCHDB_USER", "jo doe"), ("COUCHDB_PASSWORD", "p@ss'w")])
        .expect("edit");
    assert_eq!(
        project.cht_conf_command(Path::new("/ca.pem")),
        Some(format!(
            "NODE_EXTRA_CA_CERTS=/ca.pem cht --url=https://jo%20doe:p%40ss%27w@localhost:{port}"
        ))
    );
    // A domain comes first; an own certificate needs no extra CA.
    project
        .update_env(&[(DOMAIN_VAR, "cht.example.org"), (CERT_VAR, "own")])
        .expect("edit");
    assert_eq!(project.url(), format!("https://cht.example.org:{port}/"));
    assert!(
        project
            .cht_conf_command(Path::new("/ca.pem"))
            .is_some_and(|c| c.starts_with("cht --url=https://")
                && c.ends_with(&format!("@cht.example.org:{port}")))
    );
}

#[test]
fn local_ip_projects_are_reached_by_local_ip_names_only() {
    let dir = tempfile::tempdir().expect("tmp");
    let home = Home::at(dir.path()).expect("home");
    let mut project = create(&home, &opts("phone")).expect("create").project;
    project.update_env(&[(CERT_VAR, "local-ip")]).expect("edit");
    let port = project.https_port();
    let urls = project.urls();
    assert!(
        urls.iter()
            .all(|u| u.contains(".local-ip.medicmobile.org:")),
        "{urls:?}"
    );
    assert_eq!(
        urls.last(),
        Some(&format!(
            "https://127-0-0-1.local-ip.medicmobile.org:{port}/"
        ))
    );
    assert_eq!(urls.len(), crate::net::lan_ipv4().len() + 1);
    assert_eq!(Some(&project.url()), urls.first());
    // The phone's URL is the first LAN address's, when there is one.
    assert_eq!(
        project.phone_url().is_some(),
        !crate::net::lan_ipv4().is_empty()
    );
    let command = project
        .cht_conf_command(Path::new("/ca.pem"))
        .expect("command");
    assert!(
        command.starts_with("cht --url=https://medic:")
            && command.ends_with(&urls[0]["https://".len()..urls[0].len() - 1]),
        "{command}"
    );
    // Other modes have no phone URL.
    project.update_env(&[(CERT_VAR, "local-ca")]).expect("edit");
    assert_eq!(project.phone_url(), None);
}

#[test]
fn the_certificate_options_choose_one_mode() {
    let mode = |tls: Option<TlsMode>, own: bool, domain: Option<&str>, host: bool| {
        let o = InitOptions {
            name: "p".into(),
            tls,
            domain: domain.map(str::to_string),
            hosts: if host {
                vec!["cht.local".into()]
            } else {
                vec![]
            },
            ..InitOptions::default()
        };
        tls_mode(&o, own).map_err(|e| e.to_string())
    };
    assert_eq!(mode(None, false, None, false), Ok(TlsMode::LocalCa));
    assert_eq!(mode(None, true, None, false), Ok(TlsMode::Own));
    assert_eq!(
        mode(Some(TlsMode::Own), true, None, false),
        Ok(TlsMode::Own)
    );
    assert_eq!(
        mode(Some(TlsMode::LocalIp), false, None, false),
        Ok(TlsMode::LocalIp)
    );
    assert!(mode(Some(TlsMode::Own), false, None, false).is_err_and(|e| e.contains("--cert-file")));
    assert!(mode(Some(TlsMode::LocalIp), true, None, false).is_err_and(|e| e.contains("give one")));
    assert!(
        mode(
            Some(TlsMode::LocalIp),
            false,
            Some("cht.example.org"),
            false
        )
        .is_err_and(|e| e.contains("does not cover --domain cht.example.org"))
    );
    assert!(mode(Some(TlsMode::LocalIp), false, None, true).is_err_and(|e| e.contains("--host")));
}

/// `.env` text read as a project's settings.
fn config(text: &str) -> std::result::Result<Config, String> {
    Config::read(&EnvFile::parse(text).expect("parses"))
}

#[test]
fn settings_are_checked_once_on_load_and_name_the_line() {
    for (text, want) in [
        ("", TlsMode::LocalCa),
        ("CHT_DEV_CERT=local-ca\n", TlsMode::LocalCa),
        ("CHT_DEV_CERT= local-ip \n", TlsMode::LocalIp),
        ("CHT_DEV_CERT=own\n", TlsMode::Own),
    ] {
        assert_eq!(config(text).expect("reads").tls, want, "{text:?}");
    }
    let read = config("NGINX_HTTPS_PORT=8443\nCOUCHDB_PASSWORD=pw\n").expect("reads");
    assert_eq!((read.http_port, read.https_port), (80, 8443));
    assert_eq!(
        (
            read.credentials.user.as_str(),
            read.credentials.password.as_str()
        ),
        (DEFAULT_USER, "pw")
    );
    assert_eq!(read.layout, Layout::Single);
    for (text, want) in [
        (
            "A=1\nNGINX_HTTPS_PORT=44x3\n",
            "line 2: NGINX_HTTPS_PORT is \"44x3\"; it must be a port number from 1 to 65535",
        ),
        (
            "NGINX_HTTP_PORT=0\n",
            "line 1: NGINX_HTTP_PORT is \"0\"; it must be a port number",
        ),
        (
            "NGINX_HTTP_PORT=70000\n",
            "line 1: NGINX_HTTP_PORT is \"70000\"",
        ),
        (
            "X='a\nb'\nCHT_DEV_COUCHDB_NODES=2\n",
            "line 3: CHT_DEV_COUCHDB_NODES is \"2\"; it must be 1 or 3",
        ),
        (
            "CHT_DEV_CERT=lcoal-ip\n",
            "line 1: CHT_DEV_CERT is \"lcoal-ip\"; it must be local-ca, local-ip or own",
        ),
    ] {
        let err = config(text).expect_err("refused");
        assert!(err.starts_with(want), "{text:?}: {err}");
    }
}

#[test]
fn loads_what_it_created_and_reads_version_from_the_files() {
    let dir = tempfile::tempdir().expect("tmp");
    let home = Home::at(dir.path()).expect("home");
    let mut o = opts("p");
    o.cht_version = Some("4.22.0".into());
    let created = create(&home, &o).expect("create");
    let loaded = Project::load(&home, "p").expect("load");
    assert_eq!(loaded.env, created.project.env);
    assert_eq!(loaded.cht_version().expect("version"), "4.22.0");
    assert!(
        taken_ports(&home)
            .expect("ports")
            .values()
            .all(|p| p == "p")
    );
    let missing = Project::load(&home, "q").expect_err("missing").to_string();
    assert!(missing.contains("known projects: p"), "{missing}");
}

#[test]
fn locks_hold_one_home_by_its_canonical_path_and_never_follow_links() {
    let dir = tempfile::tempdir().expect("tmp");
    let base = dir.path().join("locks");
    let home = Home::at(&dir.path().join("home")).expect("home");
    let held = lock_in(&base, &home, "p").expect("first");
    // The same home spelt another way is the same lock.
    std::fs::create_dir_all(dir.path().join("a")).expect("mkdir");
    let detour = Home::at(&dir.path().join("a/../home")).expect("home");
    let busy = lock_in(&base, &detour, "p").expect_err("busy");
    assert!(matches!(busy, Error::Busy { .. }), "{busy}");
    drop(held);
    assert!(lock_in(&base, &detour, "p").is_ok());
    // A planted link is never followed: no file appears where it points.
    let victim = dir.path().join("victim");
    let name = std::fs::read_dir(&base)
        .expect("read")
        .flatten()
        .map(|e| {
            e.file_name()
                .to_string_lossy()
                .replace("-p.lock", "-q.lock")
        })
        .next()
        .expect("a lock file");
    std::os::unix::fs::symlink(&victim, base.join(&name)).expect("link");
    assert!(lock_in(&base, &home, "q").is_err());
    assert!(!victim.exists());
    // A lock folder open to others is refused.
    let open = dir.path().join("open");
    std::fs::create_dir(&open).expect("mkdir");
    fsutil::set_mode(&open, 0o777).expect("chmod");
    let err = lock_in(&open, &home, "p").expect_err("refused").to_string();
    assert!(err.contains("open to other users"), "{err}");
}

#[test]
fn a_registry_read_back_from_the_files_is_checked_like_the_flag() {
    let dir = tempfile::tempdir().expect("tmp");
    let home = Home::at(dir.path()).expect("home");
    let mut o = opts("reg");
    o.image_registry = Some("localhost:5000/cht".into());
    let project = create(&home, &o).expect("create").project;
    assert_eq!(
        project.image_registry().expect("registry").as_deref(),
        Some("localhost:5000/cht")
    );
    let core = project.path(render::CORE_FILE);
    let text = std::fs::read_to_string(&core).expect("read");
    let hostile = text.replace(
        "\"localhost:5000/cht/cht-api:5.2.0\"",
        "\"r.io\\\"\\n    privileged: true\\n    pid: host\\n    x: \\\"y/cht-api:5.2.0\"",
    );
    assert_ne!(hostile, text);
    std::fs::write(&core, hostile).expect("write");
    // The files are read once per load: this one still knows the registry it read.
    assert!(project.image_registry().is_ok());
    let project = Project::load(&home, "reg").expect("load");
    let err = project.image_registry().expect_err("refused").to_string();
    assert!(
        err.contains("cht-core.yml line") && err.contains("registry is refused"),
        "{err}"
    );
}

#[test]
fn a_cluster_keeps_a_data_folder_per_node_and_its_layout_in_env() {
    let dir = tempfile::tempdir().expect("tmp");
    let home = Home::at(dir.path()).expect("home");
    let mut o = opts("trio");
    o.couchdb_nodes = Some(3);
    let mut project = create(&home, &o).expect("create").project;
    assert_eq!(project.layout(), Layout::Cluster);
    let folders = project.data_folders();
    let names: Vec<(&str, &str)> = folders.iter().map(|f| (f.name, f.var)).collect();
    assert_eq!(
        names,
        [
            ("node-1", "DB1_DATA"),
            ("node-2", "DB2_DATA"),
            ("node-3", "DB3_DATA")
        ]
    );
    for (n, folder) in folders.iter().enumerate() {
        assert_eq!(
            folder.path,
            project.path(&format!("couchdb/node-{}", n + 1))
        );
        assert!(folder.path.is_dir());
    }
    assert_eq!(
        project.compose_files(),
        ["cht-core.yml", "cht-couchdb-clustered.yml"]
    );
    assert!(project.path(render::CLUSTER_FILE).is_file());
    assert!(!project.path(render::COUCHDB_FILE).exists());
    // A folder inside any node's data folder is refused as another project's data.
    let outside = tempfile::tempdir().expect("tmp");
    std::fs::create_dir(outside.path().join("inner")).expect("mkdir");
    project
        .update_env(&[("DB2_DATA", &outside.path().display().to_string())])
        .expect("edit");
    let inner = outside.path().join("inner").display().to_string();
    let err = check_data_folder(&home, &inner).expect_err("overlaps");
    assert!(err.contains("project \"trio\""), "{err}");
    // The layout is cht-dev's own setting: anything but 1 or 3 is a damaged project.
    let err = project
        .update_env(&[(layout::NODES_VAR, "2")])
        .expect_err("refused")
        .to_string();
    assert!(
        err.contains("CHT_DEV_COUCHDB_NODES") && err.contains("1 or 3"),
        "{err}"
    );
    assert_eq!(
        project.layout(),
        Layout::Cluster,
        "a refused edit changes nothing"
    );
    let text = std::fs::read_to_string(project.path(".env")).expect("read");
    assert!(!text.contains("CHT_DEV_COUCHDB_NODES=2"), "{text}");
    let single = create(&home, &opts("solo")).expect("create").project;
    assert_eq!(single.layout(), Layout::Single);
    assert_eq!(single.data_folders()[0].path, single.path("couchdb"));
}

#[test]
fn random_credentials_differ_and_are_url_safe() {
    let a = random_alnum(PASSWORD_LEN);
    assert_eq!(a.len(), PASSWORD_LEN);
    assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_ne!(a, random_alnum(PASSWORD_LEN));
    assert_eq!(random_hex16().len(), 32);
}

#[test]
fn domain_and_hosts_read_back_from_env_pass_the_flags_rules() {
    let dir = tempfile::tempdir().expect("tmp");
    let home = Home::at(dir.path()).expect("home");
    let mut project = create(&home, &opts("edited")).expect("create").project;
    project
        .update_env(&[
            (DOMAIN_VAR, "cht.example.org"),
            (HOSTS_VAR, "10.0.0.2,lan.example"),
        ])
        .expect("good values");
    for (var, value, expect) in [
        (DOMAIN_VAR, "evil.example/x?", "as --domain takes"),
        (DOMAIN_VAR, "10.0.0.1", "as --domain takes"),
        (DOMAIN_VAR, "*.example.org", "as --domain takes"),
        (HOSTS_VAR, "ok.example,bad host", "as --host takes"),
    ] {
        let err = project
            .update_env(&[(var, value)])
            .expect_err("refused")
            .to_string();
        assert!(err.contains(var) && err.contains(expect), "{value}: {err}");
    }
    // Edited by hand: the project is damaged, naming the file and line.
    let env = project.path(".env");
    let text = std::fs::read_to_string(&env).expect("read");
    std::fs::write(
        &env,
        text.replace(
            "CHT_DEV_DOMAIN=cht.example.org",
            "CHT_DEV_DOMAIN='https://evil.example/x?'",
        ),
    )
    .expect("write");
    let err = Project::load(&home, "edited")
        .expect_err("damaged")
        .to_string();
    assert!(
        err.contains(".env line ") && err.contains("CHT_DEV_DOMAIN is \"https://evil.example/x?\""),
        "{err}"
    );
}

#[test]
fn data_used_in_place_stays_out_of_system_folders_and_engine_roots() {
    for system in [
        "/etc",
        "/etc/ssl",
        "/usr/share",
        "/var/lib/docker",
        "/root/.ssh",
        "/proc/1",
    ] {
        let err = check_in_place(Path::new(system), &[]).expect_err(system);
        assert!(err.contains("the system folder /"), "{system}: {err}");
    }
    let dir = tempfile::tempdir().expect("tmp");
    let root = std::fs::canonicalize(dir.path()).expect("canonical");
    std::fs::create_dir_all(root.join("engine/volumes")).expect("mkdir");
    let roots = [root.join("engine")];
    for inside in [root.join("engine/volumes"), root.clone()] {
        let err = check_in_place(&inside, &roots).expect_err("overlaps");
        assert!(err.contains("the container engine's data root"), "{err}");
    }
    assert_eq!(check_in_place(&root.join("data"), &roots), Ok(()));
    assert!(engine_roots(Some(Path::new("/srv/docker"))).contains(&PathBuf::from("/srv/docker")));
}
