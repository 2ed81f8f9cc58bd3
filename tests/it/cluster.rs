//! Upstream's three-node CouchDB layout (`init --couchdb-nodes 3`): its files against
//! upstream's own by the compose CLIs' config hashes, every command on three nodes against
//! the real engine, and its Kubernetes export under Kubernetes 1.30's schemas.

use std::path::Path;

use crate::common::engine::{REGISTRY, Stack};
use crate::common::{ChtDev, composes, empty_folder};

/// The CouchDB services of upstream's cluster.
const NODES: [&str; 3] = ["couchdb-1.local", "couchdb-2.local", "couchdb-3.local"];

/// An upstream-shaped fixture (`tests/fixtures/upstream-<line>/<file>`) filled in for
/// `tag` and written into `dir`; returns its path.
fn upstream_file(line: &str, file: &str, tag: &str, dir: &Path) -> String {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let text = std::fs::read_to_string(fixtures.join(format!("upstream-{line}")).join(file))
        .expect("fixture");
    std::fs::create_dir_all(dir).expect("mkdir");
    let path = dir.join(file);
    std::fs::write(
        &path,
        text.replace("@REGISTRY@", REGISTRY).replace("@TAG@", tag),
    )
    .expect("write");
    path.display().to_string()
}

/// `compose --env-file .env -p NAME -f FILES... ARGS` in the project folder, which must
/// succeed; returns stdout's lines, sorted.
fn compose_lines(
    cli: &crate::common::ComposeCli,
    dir: &Path,
    name: &str,
    files: &[&str],
    args: &[&str],
) -> Vec<String> {
    let mut all = vec!["--env-file", ".env", "-p", name];
    for f in files {
        all.extend(["-f", f]);
    }
    all.extend(args);
    let run = cli.run(&all, dir);
    assert_eq!(run.code, 0, "compose {} {all:?}: {run:#?}", cli.label);
    let mut lines: Vec<String> = run.stdout.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// A comparison: project, release, CouchDB nodes, cht-dev's files, and upstream's files as
/// (line, file).
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

#[test]
fn clustered_files_give_upstreams_services_and_config_hashes() {
    let cht = ChtDev::new();
    // Upstream's cluster template is byte-identical across 4.12.0..=4.22.0 and across
    // 5.0.0..=5.2.0: each line's first and last release are compared.
    let rows: [Row; 6] = [
        (
            "c412",
            "4.12.0",
            "3",
            &["compose/cht-couchdb-clustered.yml"],
            &[("4.x", "cht-couchdb-clustered.yml")],
        ),
        (
            "c500",
            "5.0.0",
            "3",
            &["compose/cht-couchdb-clustered.yml"],
            &[("5.x", "cht-couchdb-clustered.yml")],
        ),
        (
            "c4",
            "4.22.0",
            "3",
            &["compose/cht-couchdb-clustered.yml"],
            &[("4.x", "cht-couchdb-clustered.yml")],
        ),
        (
            "c5",
            "5.2.0",
            "3",
            &["compose/cht-couchdb-clustered.yml"],
            &[("5.x", "cht-couchdb-clustered.yml")],
        ),
        // The whole clustered stack: CHT Core's file is the single node's, and HAProxy
        // learns the three nodes from COUCHDB_SERVERS in .env.
        (
            "c5",
            "5.2.0",
            "3",
            &["compose/cht-core.yml", "compose/cht-couchdb-clustered.yml"],
            &[
                ("5.x", "cht-core.yml"),
                ("5.x", "cht-couchdb-clustered.yml"),
            ],
        ),
        // The single node, checked the same way.
        (
            "s5",
            "5.2.0",
            "1",
            &["compose/cht-core.yml", "compose/cht-couchdb.yml"],
            &[("5.x", "cht-core.yml"), ("5.x", "cht-couchdb.yml")],
        ),
    ];
    for (name, version, nodes, ours, theirs) in rows {
        if !cht.project(name).exists() {
            cht.run(&[
                "init",
                name,
                "--cht-version",
                version,
                "--couchdb-nodes",
                nodes,
                "--image-registry",
                REGISTRY,
            ])
            .ok();
        }
        let dir = cht.project(name);
        let scratch = cht.scratch().join(format!("upstream-{name}"));
        let theirs: Vec<String> = theirs
            .iter()
            .map(|(line, file)| upstream_file(line, file, version, &scratch))
            .collect();
        let theirs: Vec<&str> = theirs.iter().map(String::as_str).collect();
        // nginx-dns and haproxy-dns are cht-dev's own, enabled only by the `podman` profile; compose v1
        // lists and hashes the services of every profile, v2 only the enabled ones.
        let upstreams = |lines: Vec<String>| -> Vec<String> {
            lines
                .into_iter()
                .filter(|l| {
                    !matches!(
                        l.split_whitespace().next(),
                        Some("nginx-dns" | "haproxy-dns")
                    )
                })
                .collect()
        };
        for cli in composes() {
            let services = upstreams(compose_lines(
                &cli,
                &dir,
                name,
                ours,
                &["config", "--services"],
            ));
            assert_eq!(
                services,
                compose_lines(&cli, &dir, name, &theirs, &["config", "--services"]),
                "{name} {ours:?}: services ({})",
                cli.label
            );
            let hashes = upstreams(compose_lines(
                &cli,
                &dir,
                name,
                ours,
                &["config", "--hash", "*"],
            ));
            assert_eq!(
                hashes.len(),
                services.len(),
                "{name}: a hash per service ({}): {hashes:?}",
                cli.label
            );
            assert_eq!(
                hashes,
                compose_lines(&cli, &dir, name, &theirs, &["config", "--hash", "*"]),
                "{name} {ours:?}: config hashes ({})",
                cli.label
            );
            if nodes == "3" {
                for node in NODES {
                    assert!(services.iter().any(|s| s == node), "{node} in {services:?}");
                }
            }
        }
    }
    // The cluster's settings: a data folder per node, and the servers HAProxy watches.
    let env = std::fs::read_to_string(cht.project("c5").join(".env")).expect("env");
    for n in 1..=3 {
        let folder = cht.project("c5").join(format!("couchdb/node-{n}"));
        assert!(folder.is_dir(), "{}", folder.display());
        assert!(
            env.contains(&format!("DB{n}_DATA={}\n", folder.display())),
            "{env}"
        );
    }
    assert!(
        env.contains("COUCHDB_SERVERS=couchdb-1.local,couchdb-2.local,couchdb-3.local\n"),
        "{env}"
    );
    assert!(!env.contains("COUCHDB_DATA="), "{env}");
    assert!(!cht.project("c5").join("compose/cht-couchdb.yml").exists());
}

#[test]
fn clustered_export_validates_under_kubernetes_1_30() {
    let cht = ChtDev::new();
    for version in ["4.22.0", "5.2.0"] {
        let name = format!("k{}", &version[..1]);
        cht.run(&[
            "init",
            &name,
            "--cht-version",
            version,
            "--couchdb-nodes",
            "3",
        ])
        .ok();
        let out = cht.scratch().join(format!("k8s-{name}"));
        let values = cht.scratch().join(format!("{name}-values.yaml"));
        cht.run(&[
            "export",
            "kubernetes",
            &name,
            "--out",
            out.to_str().expect("utf8"),
            "--helm-values",
            values.to_str().expect("utf8"),
        ])
        .ok();
        let files = crate::export::validated_manifests(&out);
        // Both lines run the healthcheck beside a cluster; 5.x adds Nouveau.
        assert!(files.iter().any(|f| f == "healthcheck.yaml"), "{files:?}");
        assert_eq!(
            files.iter().any(|f| f == "nouveau.yaml"),
            version == "5.2.0",
            "{files:?}"
        );

        let docs = |file: &str| crate::export::yaml_docs(&out.join(file));
        let dir = cht.project(&name);
        let ns = name.as_str();
        // One deployment per node, each on its own data folder, named as the chart names them.
        let couchdb = docs("couchdb.yaml");
        assert_eq!(couchdb.len(), 3);
        for (i, deployment) in couchdb.iter().enumerate() {
            let n = i + 1;
            assert_eq!(deployment["metadata"]["name"], format!("cht-couchdb-{n}"));
            let pod = &deployment["spec"]["template"]["spec"];
            assert_eq!(
                pod["volumes"][0]["hostPath"]["path"],
                dir.join(format!("couchdb/node-{n}")).display().to_string()
            );
            let env = pod["containers"][0]["env"].as_array().expect("env");
            let named = |key: &str| env.iter().find(|e| e["name"] == key).cloned();
            assert_eq!(
                named("SVC_NAME").expect("SVC_NAME")["value"],
                format!("couchdb-{n}.{ns}.svc.cluster.local")
            );
            assert_eq!(named("CLUSTER_PEER_IPS").is_some(), n == 1, "node {n}");
            assert_eq!(
                named("COUCHDB_SYNC_ADMINS_NODE").is_some(),
                n > 1,
                "node {n}"
            );
        }
        // One service per node, and the servers config map the chart writes.
        let services = docs("services.yaml");
        for n in 1..=3 {
            assert!(
                services
                    .iter()
                    .any(|s| s["metadata"]["name"] == format!("couchdb-{n}")),
                "couchdb-{n}"
            );
        }
        assert!(!services.iter().any(|s| s["metadata"]["name"] == "couchdb"));
        let config = &docs("credentials.yaml")[1]["data"];
        let dns = |n: u32| format!("couchdb-{n}.{ns}.svc.cluster.local");
        assert_eq!(
            config["COUCHDB_SERVERS"],
            format!("{},{},{}", dns(1), dns(2), dns(3))
        );
        assert_eq!(config["COUCHDB_SYNC_ADMINS_NODE"], dns(1));
        assert_eq!(config["CLUSTER_PEER_IPS"], format!("{},{}", dns(2), dns(3)));
        if version == "5.2.0" {
            let nouveau = &docs("nouveau.yaml")[0]["spec"]["template"]["spec"];
            assert_eq!(
                nouveau["volumes"][0]["hostPath"]["path"],
                dir.join("couchdb/node-1").display().to_string()
            );
        }

        // The chart's clustered keys, each node's data pre-existing on this machine.
        crate::export::check_helm_values(
            &values,
            version,
            &[
                "values/base.yaml".to_string(),
                "values/deployment-multi.yaml".to_string(),
                "values/platform-k3s-k3d.yaml".to_string(),
            ],
        );
        let values = crate::export::yaml_docs(&values).remove(0);
        assert_eq!(values["couchdb"]["clusteredCouchEnabled"], true);
        assert_eq!(values["clusteredCouch"]["noOfCouchDBNodes"], 3);
        assert_eq!(values["couchdb_data"]["preExistingDataAvailable"], true);
        for n in 1..=3 {
            assert_eq!(
                values["local_storage"][format!("preExistingDiskPath-{n}")],
                dir.join(format!("couchdb/node-{n}")).display().to_string()
            );
            assert!(values["nodes"][format!("node-{n}")].is_string(), "{values}");
        }
        assert!(
            values["nodes"].get("single_node_deploy").is_none(),
            "{values}"
        );
    }
}

/// Every file in each node's data folder, sorted, as `node-N/name`.
fn data_files(s: &Stack) -> Vec<String> {
    let mut files = Vec::new();
    for n in 1..=3 {
        let dir = s.dir().join(format!("couchdb/node-{n}"));
        for entry in std::fs::read_dir(&dir).expect("read").flatten() {
            files.push(format!("node-{n}/{}", entry.file_name().to_string_lossy()));
        }
    }
    files.sort();
    files
}

/// Empties each node's data folder, as a lost disk would.
fn lose_the_data(s: &Stack) {
    for n in 1..=3 {
        empty_folder(&s.dir().join(format!("couchdb/node-{n}")));
    }
}

#[test]
fn three_couchdb_nodes_run_and_every_command_handles_them() {
    let s = Stack::new("clu");
    let name = s.name.clone();
    s.up(&["--cht-version", "4.22.0", "--couchdb-nodes", "3"])
        .ok();
    let containers = s.containers("com.docker.compose.project", &name);
    for node in NODES {
        assert!(
            containers.contains(&format!("{name}-{node}-1")),
            "{node} in {containers:?}"
        );
    }
    assert!(
        !containers.iter().any(|c| c == &format!("{name}-couchdb-1")),
        "{containers:?}"
    );
    // Each node wrote into its own data folder.
    for n in 1..=3 {
        s.couch_wrote(&s.dir().join(format!("couchdb/node-{n}")));
    }
    assert_eq!(s.curl_https("/").0, "200");

    // status names all three, running.
    let status: serde_json::Value =
        serde_json::from_str(&s.cht.run(&["--json", "status", &name]).ok().stdout).expect("json");
    let rows = status["services"].as_array().expect("services");
    for node in NODES {
        let row = rows
            .iter()
            .find(|r| r["service"] == node)
            .unwrap_or_else(|| panic!("{node} in {status}"));
        assert_eq!(row["state"], "running", "{row}");
    }
    let human = s.cmd("status", &[]).ok();
    for node in NODES {
        assert!(human.stdout.contains(node), "{human:#?}");
    }
    // logs takes a node's service name; an unknown one is named with the ones there are.
    s.cmd("logs", &["couchdb-2.local", "--tail", "5"]).ok();
    let line = s.cmd("logs", &["couchdb-4.local"]).one_line_error();
    assert!(
        line.contains("couchdb-4.local") && line.contains("couchdb-2.local"),
        "{line}"
    );

    // The upgrade service's compose at boot agrees with every container cht-dev made.
    let logs = s.wait_boots(1);
    let boot = logs.rsplit("startup: begin").next().unwrap_or_default();
    assert!(boot.contains("cht-couchdb-clustered.yml"), "{logs}");
    assert!(!boot.contains("Recreate"), "the boot recreated: {logs}");

    // upgrade to 5.x: Nouveau beside the nodes, its index in the first node's folder, and
    // the healthcheck moves into the clustered file; every node keeps its data.
    for n in 1..=3 {
        std::fs::write(
            s.dir().join(format!("couchdb/node-{n}/user-marker")),
            format!("node {n}"),
        )
        .expect("marker");
    }
    let ids_before = s.ids();
    s.cht
        .run(&[
            "upgrade",
            &name,
            "--cht-version",
            "5.2.0",
            "--pull",
            "never",
        ])
        .ok();
    let after = s.containers("com.docker.compose.project", &name);
    for want in ["nouveau", "healthcheck", NODES[0], NODES[1], NODES[2]] {
        assert!(
            after.contains(&format!("{name}-{want}-1")),
            "{want} in {after:?}"
        );
    }
    assert_ne!(s.ids(), ids_before);
    assert!(s.dir().join("couchdb/node-1/nouveau").is_dir());
    let clustered = std::fs::read_to_string(s.dir().join("compose/cht-couchdb-clustered.yml"))
        .expect("clustered");
    assert!(
        clustered.contains("cht-couchdb-nouveau:5.2.0"),
        "{clustered}"
    );
    assert_eq!(s.curl_https("/").0, "200");

    // A snapshot holds every node; lose them all, restore while running, all are back.
    let made = s
        .cht
        .run(&["snapshot", "create", &name, "--label", "three"])
        .ok();
    assert!(made.stdout.contains("CouchDB's 3 nodes"), "{made:#?}");
    let files = data_files(&s);
    assert!(
        files.contains(&"node-3/user-marker".to_string()),
        "{files:?}"
    );
    lose_the_data(&s);
    s.cht
        .run(&["snapshot", "restore", &name, "three", "--yes"])
        .ok();
    assert_eq!(data_files(&s), files);
    for n in 1..=3 {
        assert_eq!(
            std::fs::read_to_string(s.dir().join(format!("couchdb/node-{n}/user-marker")))
                .expect("marker"),
            format!("node {n}")
        );
    }
    assert_eq!(s.curl_https("/").0, "200", "ready again after the restore");
    // A single node's snapshot does not fit three nodes: refused, data untouched.
    let sidecar = s.dir().join("snapshots/three.json");
    let text = std::fs::read_to_string(&sidecar).expect("sidecar");
    std::fs::write(
        &sidecar,
        text.replace("\"couchdb_nodes\": 3", "\"couchdb_nodes\": 1"),
    )
    .expect("write");
    let line = s
        .cht
        .run(&["snapshot", "restore", &name, "three", "--yes"])
        .one_line_error();
    assert!(
        line.contains("a single CouchDB node") && line.contains("three CouchDB nodes"),
        "{line}"
    );
    assert_eq!(data_files(&s), files);

    // stop, then up again: the same containers; down keeps every node's data.
    s.cmd("stop", &[]).ok();
    let status: serde_json::Value =
        serde_json::from_str(&s.cht.run(&["--json", "status", &name]).ok().stdout).expect("json");
    for row in status["services"].as_array().expect("services") {
        assert_ne!(row["state"], "running", "{row}");
    }
    let ids = s.ids();
    s.up(&[]).ok();
    assert_eq!(s.ids(), ids, "up after stop starts the same containers");
    s.cmd("down", &[]).ok();
    assert!(s.containers("com.docker.compose.project", &name).is_empty());
    assert!(data_files(&s).contains(&"node-2/user-marker".to_string()));

    // destroy removes it all.
    s.cmd("destroy", &["--yes"]).ok();
    assert!(s.all_containers().is_empty());
    assert!(s.volumes().is_empty());
    assert!(!s.dir().exists());
}
