//! `export kubernetes`: every manifest validated by kubernetes-validate (offline schemas),
//! the project's credentials, version and data path carried over, and Helm values checked
//! against the keys the official chart reads.

use std::path::Path;

use crate::common::{ChtDev, run_tool, tool};

/// Top-level keys (and their known children) the CHT Helm chart's templates read
/// (`scripts/build/helm/templates` in medic/cht-core 5.2.0).
const CHART_KEYS: &[(&str, &[&str])] = &[
    ("project_name", &[]),
    ("namespace", &[]),
    ("cht_image_tag", &[]),
    ("cluster_type", &[]),
    ("environment", &[]),
    ("upstream_servers", &["docker_registry", "builds_url"]),
    (
        "couchdb",
        &[
            "user",
            "password",
            "secret",
            "uuid",
            "clusteredCouchEnabled",
            "couchdb_node_storage_size",
            "db_name",
            "persistent_disk",
        ],
    ),
    (
        "couchdb_data",
        &[
            "preExistingDataAvailable",
            "dataPathOnDiskForCouchDB",
            "partition",
        ],
    ),
    (
        "local_storage",
        &[
            "preExistingDiskPath-1",
            "preExistingDiskPath-2",
            "preExistingDiskPath-3",
        ],
    ),
    (
        "nodes",
        &["single_node_deploy", "node-1", "node-2", "node-3"],
    ),
    ("ingress", &["host", "annotations", "gcp", "hosted_zone_id"]),
    ("clusteredCouch", &["noOfCouchDBNodes"]),
    ("ebs", &[]),
    ("toleration", &[]),
    ("cache_images", &[]),
];

/// Asserts that a Helm values document holds only keys the official chart reads.
pub fn only_chart_keys(values: &serde_json::Value) {
    let map = values.as_object().expect("a mapping");
    for (key, value) in map {
        let known = CHART_KEYS
            .iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("the chart does not read {key}"));
        if let (Some(children), false) = (value.as_object(), known.1.is_empty()) {
            for child in children.keys() {
                assert!(
                    known.1.contains(&child.as_str()),
                    "the chart does not read {key}.{child}"
                );
            }
        }
    }
}

/// Asserts that every manifest in `out` passes `kubernetes-validate --strict` against
/// Kubernetes 1.30's schemas (offline); returns their file names, sorted.
pub fn validated_manifests(out: &Path) -> Vec<String> {
    let validate = tool(
        "kubernetes-validate",
        "pip install kubernetes-validate (scripts/test.sh does)",
    );
    let mut files: Vec<String> = std::fs::read_dir(out)
        .expect("out")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut args = ["--kubernetes-version", "1.30.0", "--strict"]
        .map(String::from)
        .to_vec();
    args.extend(files.iter().map(|f| out.join(f).display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let checked = run_tool(&validate, &args, Path::new("/"));
    assert_eq!(checked.code, 0, "kubernetes-validate: {checked:#?}");
    assert!(
        !checked.stdout.contains("ERROR") && !checked.stderr.contains("ERROR"),
        "{checked:#?}"
    );
    files
}

/// Parses a YAML file (one or more documents) into JSON values.
pub fn yaml_docs(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).expect("read");
    text.split("\n---\n")
        .map(|doc| {
            serde_saphyr::from_str(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect()
}

/// The value of `key` in a project's `.env`.
fn env_value(cht: &ChtDev, name: &str, key: &str) -> String {
    std::fs::read_to_string(cht.project(name).join(".env"))
        .expect("env")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string))
        .expect("key")
}

#[test]
fn manifests_validate_and_carry_the_project_over() {
    let cht = ChtDev::new();
    cht.run(&[
        "init",
        "old_one",
        "--cht-version",
        "4.22.0",
        "--domain",
        "cht.example.org",
    ])
    .ok();
    cht.run(&["init", "new", "--cht-version", "5.2.0"]).ok();
    for (name, version, extra, absent) in [
        ("old_one", "4.22.0", "healthcheck.yaml", "nouveau.yaml"),
        ("new", "5.2.0", "nouveau.yaml", "healthcheck.yaml"),
    ] {
        let out = cht.scratch().join(format!("k8s-{name}"));
        let values = cht.scratch().join(format!("{name}-values.yaml"));
        let run = cht
            .run(&[
                "export",
                "kubernetes",
                name,
                "--out",
                out.to_str().expect("utf8"),
                "--helm-values",
                values.to_str().expect("utf8"),
            ])
            .ok();
        assert!(run.stdout.contains("manifests"), "{run:#?}");
        let files = validated_manifests(&out);
        for want in [
            "api.yaml",
            "couchdb.yaml",
            "credentials.yaml",
            "haproxy.yaml",
            "ingress.yaml",
            "namespace.yaml",
            "roles.yaml",
            "sentinel.yaml",
            "services.yaml",
            "upgrade-service.yaml",
            extra,
        ] {
            assert!(files.iter().any(|f| f == want), "{want} in {files:?}");
        }
        assert!(!files.iter().any(|f| f == absent), "{absent} in {files:?}");

        let password = env_value(&cht, name, "COUCHDB_PASSWORD");
        let data = env_value(&cht, name, "COUCHDB_DATA");
        let namespace = name.replace('_', "-");
        let secret = &yaml_docs(&out.join("credentials.yaml"))[0];
        assert_eq!(secret["metadata"]["name"], "cht-couchdb-credentials");
        assert_eq!(secret["stringData"]["COUCHDB_PASSWORD"], password);
        assert!(
            secret["stringData"]["COUCH_URL"]
                .as_str()
                .unwrap_or_default()
                .contains(&format!("haproxy.{namespace}.svc.cluster.local:5984/medic"))
        );
        let couchdb = &yaml_docs(&out.join("couchdb.yaml"))[0];
        let pod = &couchdb["spec"]["template"]["spec"];
        assert_eq!(pod["volumes"][0]["hostPath"]["path"], data.as_str());
        assert_eq!(
            pod["containers"][0]["image"],
            format!("public.ecr.aws/medic/cht-couchdb:{version}")
        );
        let roles = yaml_docs(&out.join("roles.yaml"));
        assert_eq!(roles[1]["subjects"][0]["name"], "cht-upgrade-service-user");
        let upgrade = &yaml_docs(&out.join("upgrade-service.yaml"))[0];
        assert_eq!(
            upgrade["spec"]["template"]["spec"]["serviceAccountName"],
            "cht-upgrade-service-user"
        );
        let ingress = &yaml_docs(&out.join("ingress.yaml"))[0];
        let host = if name == "old_one" {
            "cht.example.org".to_string()
        } else {
            "new.local".to_string()
        };
        assert_eq!(ingress["spec"]["rules"][0]["host"], host.as_str());
        assert_eq!(crate::common::mode(&out.join("credentials.yaml")), 0o600);

        // Helm values: only keys the chart reads, with the migrated data marked pre-existing.
        let values = &yaml_docs(&values)[0];
        only_chart_keys(values);
        assert_eq!(values["project_name"], name);
        assert_eq!(values["namespace"], namespace.as_str());
        assert_eq!(values["cht_image_tag"], version);
        assert_eq!(values["couchdb"]["password"], password);
        for required in ["secret", "uuid", "couchdb_node_storage_size"] {
            assert!(
                values["couchdb"][required].is_string(),
                "couchdb.{required}"
            );
        }
        assert_eq!(values["couchdb_data"]["preExistingDataAvailable"], true);
        assert_eq!(
            values["local_storage"]["preExistingDiskPath-1"],
            data.as_str()
        );
    }
    let line = cht
        .run(&[
            "export",
            "kubernetes",
            "new",
            "--out",
            "/tmp/x",
            "--namespace",
            "Bad_NS",
        ])
        .one_line_error();
    assert!(line.contains("DNS label"), "{line}");
    let line = cht
        .run(&["export", "kubernetes", "nope", "--out", "/tmp/x"])
        .one_line_error();
    assert!(line.contains("no project named"), "{line}");
}
