//! The resolution of every command line, and clap's own checks of its definition.

use super::*;
use crate::project::InitOptions;

/// What `args` (after the program name) resolve to.
fn resolved(args: &[&str]) -> (Settings, Resolved) {
    let cli = Cli::try_parse_from(std::iter::once("cht-dev").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?} should parse: {e}"));
    cli.resolve()
}

/// The typed request `args` resolve to.
fn action(args: &[&str]) -> Action {
    match resolved(args).1 {
        Resolved::Action(a) => *a,
        other => panic!("{args:?} resolved to {other:?}"),
    }
}

/// Command lines and what they resolve to, part 1 of 3.
fn table_1() -> Vec<(&'static [&'static str], Action)> {
    let up_defaults = UpRequest {
        name: None,
        init: InitOptions::default(),
        init_given: false,
        pull: PullPolicy::Missing,
        timeout: Duration::from_secs(300),
        no_wait: false,
    };
    vec![
        (&["up"], Action::Up(up_defaults.clone())),
        (
            &[
                "up",
                "app",
                "--cht-version",
                "4.22.0",
                "--pull",
                "never",
                "--timeout",
                "60",
                "--no-wait",
            ],
            Action::Up(UpRequest {
                name: Some("app".into()),
                init: InitOptions {
                    name: "app".into(),
                    cht_version: Some("4.22.0".into()),
                    ..InitOptions::default()
                },
                init_given: true,
                pull: PullPolicy::Never,
                timeout: Duration::from_secs(60),
                no_wait: true,
            }),
        ),
        (
            &[
                "up",
                "app",
                "--host",
                "a.local",
                "--host",
                "10.0.0.2",
                "--http-port",
                "8080",
            ],
            Action::Up(UpRequest {
                name: Some("app".into()),
                init: InitOptions {
                    name: "app".into(),
                    hosts: vec!["a.local".into(), "10.0.0.2".into()],
                    http_port: Some(8080),
                    ..InitOptions::default()
                },
                init_given: true,
                ..up_defaults.clone()
            }),
        ),
        (
            &["up", "app", "--couchdb-nodes", "3"],
            Action::Up(UpRequest {
                name: Some("app".into()),
                init: InitOptions {
                    name: "app".into(),
                    couchdb_nodes: Some(3),
                    ..InitOptions::default()
                },
                init_given: true,
                ..up_defaults.clone()
            }),
        ),
        (&["stop"], Action::Stop { name: None }),
        (
            &["down", "app"],
            Action::Down {
                name: Some("app".into()),
            },
        ),
        (
            &["destroy", "app", "-y"],
            Action::Destroy {
                name: "app".into(),
                yes: true,
            },
        ),
        (&["status"], Action::Status { name: None }),
    ]
}

/// Command lines and what they resolve to, part 2 of 3.
fn table_2() -> Vec<(&'static [&'static str], Action)> {
    vec![
        (
            &["logs", "app", "api", "-f", "--tail", "5"],
            Action::Logs(LogsRequest {
                name: "app".into(),
                service: Some("api".into()),
                follow: true,
                tail: Some(5),
            }),
        ),
        (
            &[
                "upgrade",
                "app",
                "--cht-version",
                "5.2.0",
                "--force",
                "--pull",
                "always",
            ],
            Action::Upgrade(UpgradeRequest {
                name: "app".into(),
                version: "5.2.0".into(),
                force: true,
                pull: PullPolicy::Always,
                timeout: Duration::from_secs(300),
            }),
        ),
        (
            &["snapshot", "create", "app"],
            Action::SnapshotCreate {
                name: "app".into(),
                label: None,
                level: None,
            },
        ),
        (
            &["snapshot", "create", "app", "--level", "19"],
            Action::SnapshotCreate {
                name: "app".into(),
                label: None,
                level: Some(19),
            },
        ),
        (
            &["snapshot", "ls", "app"],
            Action::SnapshotLs { name: "app".into() },
        ),
        (
            &[
                "snapshot",
                "restore",
                "app",
                "before",
                "--yes",
                "--timeout",
                "9",
            ],
            Action::SnapshotRestore(RestoreRequest {
                name: "app".into(),
                label: "before".into(),
                yes: true,
                timeout: Duration::from_secs(9),
            }),
        ),
        (
            &["snapshot", "rm", "app", "before"],
            Action::SnapshotRm {
                name: "app".into(),
                label: "before".into(),
            },
        ),
        (
            &["adopt", "x.env", "--copy-data"],
            Action::Adopt(AdoptRequest {
                env_file: "x.env".into(),
                name: None,
                copy_data: true,
                tls: TlsMode::LocalIp,
            }),
        ),
        (
            &["adopt", "x.env", "--tls", "local-ca"],
            Action::Adopt(AdoptRequest {
                env_file: "x.env".into(),
                name: None,
                copy_data: false,
                tls: TlsMode::LocalCa,
            }),
        ),
    ]
}

/// Command lines and what they resolve to, part 3 of 3.
fn table_3() -> Vec<(&'static [&'static str], Action)> {
    vec![
        (
            &["tls", "app", "local-ip", "--refresh"],
            Action::Tls(TlsRequest {
                name: "app".into(),
                mode: TlsMode::LocalIp,
                refresh: true,
                cert_file: None,
                key_file: None,
            }),
        ),
        (
            &["export", "kubernetes", "app", "--out", "k8s"],
            Action::ExportKubernetes(ExportRequest {
                name: "app".into(),
                out: "k8s".into(),
                namespace: None,
                host: None,
                helm_values: None,
                image_registry: None,
                pull: None,
                no_upgrade_service: false,
            }),
        ),
        (
            &[
                "export",
                "kubernetes",
                "app",
                "--out",
                "k8s",
                "--pull",
                "never",
                "--no-upgrade-service",
            ],
            Action::ExportKubernetes(ExportRequest {
                name: "app".into(),
                out: "k8s".into(),
                namespace: None,
                host: None,
                helm_values: None,
                image_registry: None,
                pull: Some(PullPolicy::Never),
                no_upgrade_service: true,
            }),
        ),
        (&["doctor"], Action::Doctor),
        (
            &["init", "app", "--domain", "cht.example.org"],
            Action::Init(InitOptions {
                name: "app".into(),
                domain: Some("cht.example.org".into()),
                ..InitOptions::default()
            }),
        ),
        (&["ls"], Action::Ls),
        (
            &["open", "app", "--fauxton"],
            Action::Open {
                name: Some("app".into()),
                fauxton: true,
            },
        ),
        (&["versions"], Action::Versions),
        (
            &["ca", "--der", "ca.crt"],
            Action::Ca {
                der: Some("ca.crt".into()),
            },
        ),
        (
            &["ca", "install", "--system"],
            Action::Trust {
                install: true,
                system: true,
            },
        ),
        (
            &["ca", "uninstall"],
            Action::Trust {
                install: false,
                system: false,
            },
        ),
    ]
}

#[test]
fn every_command_resolves_to_its_typed_request() {
    let table = [table_1(), table_2(), table_3()].concat();
    for (args, want) in table {
        assert_eq!(action(args), want, "{args:?}");
    }
}

#[test]
fn global_options_resolve_into_settings_anywhere_on_the_line() {
    let (settings, _) = resolved(&["ls", "--json", "--home", "/tmp/h"]);
    assert!(settings.printer.is_json());
    assert_eq!(
        settings.home().expect("home").root(),
        std::path::Path::new("/tmp/h")
    );
    let (settings, _) = resolved(&["-q", "status"]);
    assert!(settings.printer.is_quiet() && !settings.printer.is_json());
    let (_, completions) = resolved(&["completions", "bash"]);
    assert_eq!(
        completions,
        Resolved::Completions(clap_complete::Shell::Bash)
    );
}

#[test]
fn parse_failures_are_one_line_and_help_is_text() {
    let err = Cli::try_parse_from(["cht-dev", "up", "--pull", "sometimes"])
        .map_err(parse_error)
        .expect_err("bad value");
    let line = err.to_string();
    assert!(matches!(err, Error::Usage(_)), "{err:?}");
    assert!(
        !line.contains('\n') && line.ends_with("(see --help)"),
        "{line}"
    );
    assert_eq!(err.exit_code(), 2);
    let help = Cli::try_parse_from(["cht-dev", "--help"])
        .map_err(parse_error)
        .expect_err("help");
    assert!(matches!(&help, Error::Help(text) if text.contains("Examples:")));
    assert_eq!(help.exit_code(), 0);
}
