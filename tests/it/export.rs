//! `export kubernetes`: every manifest validated by kubernetes-validate (offline schemas),
//! the project's credentials, version and data path carried over, and Helm values checked
//! against the keys the official chart reads.

use std::path::Path;

use crate::common::{ChtDev, run_tool, tool};

/// The pinned copy of CHT's Helm chart (`scripts/build/helm` in medic/cht-core at the tag)
/// that installs a release: 4.22.0's for 4.x (the first release carrying the chart), the
/// release's own for 5.x.
pub fn chart_dir(version: &str) -> std::path::PathBuf {
    let release = if version.starts_with('4') {
        "4.22.0"
    } else {
        "5.2.0"
    };
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/helm-{release}"))
}

/// Why the chart's templates need not find `key` in `values` (merged as installed): it
/// is read only under a condition these values do not meet, or only when set.
fn not_needed(key: &str, values: &serde_json::Value) -> Option<&'static str> {
    let is = |path: &str, want: &str| {
        at(values, path).is_some_and(|v| {
            v.as_str() == Some(want) || v.as_bool().map(|b| b.to_string()).as_deref() == Some(want)
        })
    };
    let clustered = is("couchdb.clusteredCouchEnabled", "true");
    let under = |prefix: &str| key == prefix || key.starts_with(&format!("{prefix}."));
    if under("ebs") && !is("cluster_type", "eks") {
        Some("read for cluster_type eks only")
    } else if under("couchdb.persistent_disk") && !is("cluster_type", "gke") {
        Some("read for cluster_type gke only")
    } else if under("toleration") || under("haproxy") {
        Some("read only when set (`with`)")
    } else if (key.starts_with("nodes.node-") || under("clusteredCouch")) && !clustered {
        Some("read for a CouchDB cluster only")
    } else if key == "nodes.single_node_deploy" && clustered {
        Some("read for one CouchDB node only, after `hasKey`")
    } else {
        None
    }
}

/// Every key path the chart's templates read (`.Values.a.b`, `index .Values.a "b"`,
/// `index .Values.a (printf "b-%d" ...)` as `a.b-%d`), outside the platform folders of
/// other platforms, with whether a `| default` follows it.
fn chart_reads(chart: &Path) -> Vec<(String, bool)> {
    let mut reads = std::collections::BTreeMap::new();
    let mut stack = vec![chart.join("templates")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("templates").flatten() {
            let path = entry.path();
            if path.is_dir() {
                let other_platform = path.parent().is_some_and(|p| p.ends_with("platforms"))
                    && !path.ends_with("k3s-k3d");
                if !other_platform {
                    stack.push(path);
                }
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("template");
            let mut rest = text.as_str();
            while let Some(at) = rest.find(".Values") {
                let before = &rest[..at];
                let after = &rest[at + ".Values".len()..];
                let mut key: String = after
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                    .collect();
                let tail = &after[key.len()..];
                let indexed = before.trim_end().trim_end_matches('$').ends_with("index");
                if indexed {
                    let tail = tail.trim_start();
                    let literal = tail
                        .strip_prefix('"')
                        .or_else(|| tail.strip_prefix("(printf \""))
                        .and_then(|t| t.split('"').next());
                    if let Some(child) = literal {
                        key = format!("{key}.{child}");
                    }
                }
                let key = key.trim_matches('.').to_string();
                let defaulted = tail
                    .trim_start()
                    .trim_start_matches(|c: char| {
                        c == '"' || c.is_alphanumeric() || c == '-' || c == '%'
                    })
                    .trim_start_matches(['"', ')'])
                    .trim_start()
                    .starts_with("| default");
                if !key.is_empty() {
                    let entry = reads.entry(key).or_insert(true);
                    *entry &= defaulted;
                }
                rest = after;
            }
        }
    }
    reads.into_iter().collect()
}

/// The values `paths` name in order, merged as `helm install -f` merges them (later maps
/// deep-merge into earlier ones; anything else replaces).
fn merged_values(paths: &[std::path::PathBuf]) -> serde_json::Value {
    fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
        match (into, from) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (slot, v) => *slot = v,
        }
    }
    let mut all = serde_json::json!({});
    for path in paths {
        for doc in yaml_docs(path) {
            merge(&mut all, doc);
        }
    }
    all
}

/// The value at a dotted `path` (`%d` in a key tried as node 1).
fn at<'a>(values: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.')
        .try_fold(values, |v, key| v.get(key.replace("%d", "1").as_str()))
        .filter(|v| !v.is_null())
}

/// Whether a value is still a layered file's placeholder (`<password-value>`,
/// `{{cht_version}}`).
fn placeholder(v: &serde_json::Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.starts_with('<') || s.contains("{{"))
}

/// The keys a layered values file marks `REQUIRED: User must set this` without a
/// condition, as dotted paths (from the indentation).
fn required_keys(path: &Path) -> Vec<String> {
    let mut parents: Vec<(usize, String)> = Vec::new();
    let mut out = Vec::new();
    for line in std::fs::read_to_string(path).expect("values").lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let Some((key, _)) = trimmed.split_once(':') else {
            continue;
        };
        parents.retain(|(i, _)| *i < indent);
        let full = parents
            .iter()
            .map(|(_, k)| k.as_str())
            .chain([key.trim()])
            .collect::<Vec<_>>()
            .join(".");
        if let Some((_, comment)) = trimmed.split_once("# REQUIRED: User must set this")
            && !comment.trim_start().starts_with("if ")
        {
            out.push(full);
        }
        parents.push((indent, key.trim().to_string()));
    }
    out
}

/// Checks a project's Helm values against the pinned chart of its release, layered as
/// `helm install` would be (`layers`, then the values): every key the values hold is one
/// the templates read or the layered files carry; every key the templates read without a
/// default resolves to a real value (placeholders and empty strings do not), except those
/// only read under conditions these values do not meet ([`not_needed`]); and every key a layered
/// file marks REQUIRED is set by the values.
pub fn check_helm_values(values_file: &Path, version: &str, layers: &[String]) {
    let chart = chart_dir(version);
    let layer_paths: Vec<_> = layers.iter().map(|l| chart.join(l)).collect();
    let layered = merged_values(&layer_paths);
    let mut all_paths = layer_paths.clone();
    all_paths.push(values_file.to_path_buf());
    let merged = merged_values(&all_paths);
    let ours = merged_values(&[values_file.to_path_buf()]);
    let reads = chart_reads(&chart);
    assert!(reads.len() > 20, "the chart's reads were found: {reads:?}");

    // Every leaf we write is read by the chart, or carried by its layered files.
    fn leaves(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
        match v.as_object() {
            Some(map) if !map.is_empty() => {
                for (k, v) in map {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(v, &p, out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }
    let mut ours_leaves = Vec::new();
    leaves(&ours, "", &mut ours_leaves);
    for leaf in &ours_leaves {
        let read = reads.iter().any(|(r, _)| {
            let r = r.replace("%d", "");
            leaf == &r
                || leaf.starts_with(&format!("{r}."))
                || r.starts_with(&format!("{leaf}."))
                || (r.ends_with('-') && leaf.starts_with(&r))
        });
        assert!(
            read || at(&layered, leaf).is_some(),
            "the values set {leaf}, which neither the chart's templates read nor its layered files carry"
        );
    }
    // Every key the templates read resolves.
    for (key, defaulted) in &reads {
        if *defaulted || not_needed(key, &merged).is_some() {
            continue;
        }
        let value = at(&merged, key);
        assert!(
            value.is_some_and(|v| !placeholder(v)),
            "the chart reads {key}, which the layered values leave {value:?}"
        );
    }
    // Every REQUIRED key of the layers is set.
    for layer in &layer_paths {
        for key in required_keys(layer) {
            let value = at(&merged, &key);
            assert!(
                value.is_some_and(|v| !placeholder(v) && v.as_str() != Some("")),
                "{} marks {key} REQUIRED; the values leave it {value:?}",
                layer.display()
            );
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
        let four = version.starts_with('4');
        for want in [
            "api.yaml",
            "couchdb.yaml",
            "credentials.yaml",
            "haproxy.yaml",
            "ingress.yaml",
            "namespace.yaml",
            "sentinel.yaml",
            "services.yaml",
            extra,
        ] {
            assert!(files.iter().any(|f| f == want), "{want} in {files:?}");
        }
        assert!(!files.iter().any(|f| f == absent), "{absent} in {files:?}");
        // The upgrade service as each release's chart has it: 4.x's Kubernetes one, none in 5.x.
        for file in ["roles.yaml", "upgrade-service.yaml"] {
            assert_eq!(files.iter().any(|f| f == file), four, "{file} in {files:?}");
        }
        assert_eq!(
            run.stderr.contains("no upgrade service on Kubernetes"),
            !four,
            "{run:#?}"
        );
        let api = &yaml_docs(&out.join("api.yaml"))[0];
        let api_env = api["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
        assert_eq!(api_env.contains("UPGRADE_SERVICE_URL"), four, "{api_env}");
        // The commands: kubectl for the manifests, and helm with the layered files.
        assert!(
            run.stdout
                .contains(&format!("kubectl -n {} apply -f ", name.replace('_', "-"))),
            "{run:#?}"
        );
        let helm = run
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with("helm install "))
            .unwrap_or_else(|| panic!("a helm install line: {run:#?}"));
        let layers: Vec<String> = helm
            .split(" -f ")
            .skip(1)
            .filter_map(|f| {
                f.split_once("/scripts/build/helm/")
                    .map(|(_, l)| l.to_string())
            })
            .collect();
        assert_eq!(
            layers,
            [
                "values/base.yaml",
                "values/deployment-single.yaml",
                "values/platform-k3s-k3d.yaml"
            ],
            "{helm}"
        );
        assert!(helm.ends_with(values.to_str().expect("utf8")), "{helm}");
        assert!(
            run.stdout.contains(&format!("--branch {version} ")),
            "{run:#?}"
        );
        check_helm_values(&values, version, &layers);
        // The check has teeth: a key the chart needs left out, or one it never reads, fails it.
        let text = std::fs::read_to_string(&values).expect("values");
        for (broken, why) in [
            (
                text.replace("  secret:", "  not_the_secret:"),
                "couchdb.secret dropped",
            ),
            (
                format!("{text}bogus_key: 1\n"),
                "a key the chart never reads",
            ),
            (
                text.replace("cht_image_tag:", "cht_image_tag_typo:"),
                "cht_image_tag dropped",
            ),
        ] {
            let file = cht.scratch().join("broken-values.yaml");
            std::fs::write(&file, broken).expect("write");
            let caught = std::panic::catch_unwind(|| check_helm_values(&file, version, &layers));
            assert!(caught.is_err(), "the check must fail with {why}");
        }

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
        let ingress = &yaml_docs(&out.join("ingress.yaml"))[0];
        let host = if name == "old_one" {
            "cht.example.org".to_string()
        } else {
            "new.local".to_string()
        };
        assert_eq!(ingress["spec"]["rules"][0]["host"], host.as_str());
        assert_eq!(crate::common::mode(&out.join("credentials.yaml")), 0o600);

        // Helm values: the migrated data marked pre-existing.
        let values = &yaml_docs(&values)[0];
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

/// A chart template rendered with nothing set, as far as a deployment's fields go: lines
/// that are only template control (`{{- if ... }}`, `{{ if ... }}...{{ end }}`) dropped, and
/// each `{{ X | default V }}` replaced by `V`.
fn render_with_defaults(template: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(template).expect("template");
    let mut lines = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("{{- ") || trimmed.starts_with("{{ if") {
            continue;
        }
        let mut out = String::new();
        let mut rest = line;
        while let Some(open) = rest.find("{{") {
            out.push_str(&rest[..open]);
            let close = rest[open..].find("}}").map(|c| open + c).expect("}}");
            let inner = &rest[open + 2..close];
            let default = inner
                .split_once("| default")
                .map(|(_, d)| d.trim().trim_matches('"').to_string())
                .unwrap_or_else(|| {
                    panic!("{{{{{inner}}}}} has no default in {}", template.display())
                });
            out.push_str(&default);
            rest = &rest[close + 2..];
        }
        out.push_str(rest);
        lines.push(out);
    }
    serde_saphyr::from_str(&lines.join("\n")).expect("rendered template")
}

/// Every container of every deployment in `out`.
fn containers(out: &Path) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(out).expect("out").flatten() {
        for doc in yaml_docs(&entry.path()) {
            if doc["kind"] == "Deployment" {
                all.extend(
                    doc["spec"]["template"]["spec"]["containers"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                );
            }
        }
    }
    all
}

#[test]
fn the_upgrade_service_and_images_follow_the_chart_and_suit_offline_clusters() {
    let cht = ChtDev::new();
    cht.run(&["init", "four", "--cht-version", "4.22.0"]).ok();
    let export = |dir: &str, extra: &[&str]| {
        let out = cht.scratch().join(dir);
        let values = cht.scratch().join(format!("{dir}-values.yaml"));
        let mut args = vec![
            "export",
            "kubernetes",
            "four",
            "--out",
            out.to_str().expect("utf8"),
            "--helm-values",
            values.to_str().expect("utf8"),
        ];
        args.extend(extra);
        let run = cht.run(&args).ok();
        validated_manifests(&out);
        (out, yaml_docs(&values).remove(0), run)
    };

    // Field by field as the 4.22.0 chart's template renders it.
    let (out, values, _) = export("k8s-chart", &[]);
    let ours = &yaml_docs(&out.join("upgrade-service.yaml"))[0];
    let chart = render_with_defaults(
        &chart_dir("4.22.0").join("templates/upgrade-service/deployment.yaml"),
    );
    let pod = |d: &serde_json::Value| d["spec"]["template"]["spec"].clone();
    assert_eq!(
        pod(ours)["serviceAccountName"],
        pod(&chart)["serviceAccountName"]
    );
    let (c_ours, c_chart) = (&pod(ours)["containers"][0], &pod(&chart)["containers"][0]);
    assert_eq!(c_ours["image"], "medicmobile/upgrade-service:0.32");
    for field in ["image", "name", "env", "ports"] {
        assert_eq!(c_ours[field], c_chart[field], "{field}");
    }
    for field in ["strategy", "selector", "replicas"] {
        assert_eq!(ours["spec"][field], chart["spec"][field], "{field}");
    }
    assert_eq!(ours["metadata"], chart["metadata"]);
    // Its service account, role and binding, as the chart's.
    for (file, kind) in [
        ("role.yaml", "Role"),
        ("rolebinding.yaml", "RoleBinding"),
        ("serviceaccount.yaml", "ServiceAccount"),
    ] {
        let theirs = render_with_defaults(
            &chart_dir("4.22.0")
                .join("templates/upgrade-service")
                .join(file),
        );
        let mine = yaml_docs(&out.join("roles.yaml"))
            .into_iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("{kind} in roles.yaml"));
        assert_eq!(
            mine["metadata"]["name"], theirs["metadata"]["name"],
            "{kind}"
        );
        for field in ["rules", "roleRef"] {
            assert_eq!(mine[field], theirs[field], "{kind} {field}");
        }
        if kind == "RoleBinding" {
            assert_eq!(mine["subjects"][0]["name"], theirs["subjects"][0]["name"]);
        }
    }
    let service = yaml_docs(&out.join("services.yaml"))
        .into_iter()
        .find(|d| d["metadata"]["name"] == "upgrade-service")
        .expect("the upgrade service's service");
    let theirs =
        render_with_defaults(&chart_dir("4.22.0").join("templates/upgrade-service/service.yaml"));
    assert_eq!(service["spec"]["ports"], theirs["spec"]["ports"]);
    assert_eq!(service["spec"]["selector"], theirs["spec"]["selector"]);
    assert_eq!(
        values["environment"], "remote",
        "the 4.x chart deploys it unless local"
    );
    assert_eq!(values["upgrade_service"]["tag"], "0.32");
    // Pinned tags, and Kubernetes' own default pull policy.
    for c in containers(&out) {
        let image = c["image"].as_str().unwrap_or_default();
        assert!(
            !image.ends_with(":latest") && image.contains(':'),
            "{image}"
        );
        assert!(c.get("imagePullPolicy").is_none(), "{c}");
    }

    // An own registry, offline: every container IfNotPresent, the upgrade service's image
    // under that registry.
    let (out, values, run) = export(
        "k8s-offline",
        &[
            "--image-registry",
            "registry.local:5000/medic",
            "--pull",
            "never",
        ],
    );
    let all = containers(&out);
    assert!(all.len() >= 6, "{all:?}");
    for c in &all {
        assert_eq!(c["imagePullPolicy"], "IfNotPresent", "{c}");
        assert!(
            c["image"]
                .as_str()
                .unwrap_or_default()
                .starts_with("registry.local:5000/medic/"),
            "{c}"
        );
    }
    assert!(
        all.iter()
            .any(|c| c["image"] == "registry.local:5000/medic/upgrade-service:0.32")
    );
    assert_eq!(
        values["upstream_servers"]["docker_registry"],
        "registry.local:5000/medic"
    );
    assert!(
        run.stderr
            .contains("copy medicmobile/upgrade-service:0.32 there"),
        "{run:#?}"
    );
    // A project made with its own registry gets the same without being told.
    cht.run(&[
        "init",
        "mirrored",
        "--cht-version",
        "5.2.0",
        "--image-registry",
        "registry.local:5000/medic",
    ])
    .ok();
    let out = cht.scratch().join("k8s-mirrored");
    cht.run(&[
        "export",
        "kubernetes",
        "mirrored",
        "--out",
        out.to_str().expect("utf8"),
    ])
    .ok();
    assert!(
        containers(&out)
            .iter()
            .all(|c| c["imagePullPolicy"] == "IfNotPresent")
    );

    // Left out as the chart's environment: local does.
    let (out, values, run) = export("k8s-local", &["--no-upgrade-service"]);
    assert!(!out.join("upgrade-service.yaml").exists() && !out.join("roles.yaml").exists());
    let api = &yaml_docs(&out.join("api.yaml"))[0];
    assert!(!api.to_string().contains("UPGRADE_SERVICE_URL"), "{api}");
    assert_eq!(values["environment"], "local");
    assert!(run.stderr.contains("left out"), "{run:#?}");
    // The compose stack keeps the Docker upgrade service.
    let compose =
        std::fs::read_to_string(cht.project("four").join("upgrade-service.yml")).expect("compose");
    assert!(compose.contains("cht-upgrade-service"), "{compose}");
}
