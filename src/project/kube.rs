//! A project as Kubernetes sees it: the manifests of the hosting docs' kubectl migration
//! and the values for CHT's Helm chart, built from settings alone (no files, no engine).
//!
//! Rules, from CHT's own chart (`scripts/build/helm` in medic/cht-core):
//! - 4.x runs the Kubernetes upgrade service (`medicmobile/upgrade-service`, which drives
//!   deployments through the API server, not a Docker socket) as the 4.22.0 chart's
//!   templates deploy it, unless left out as the chart's `environment: local` does; the
//!   API then gets `UPGRADE_SERVICE_URL`. The 5.x chart has no upgrade service (removed in
//!   medic/cht-core#10186): 5.x is upgraded with `helm upgrade`, and its API gets no URL.
//! - Every image is pinned to a tag, never `latest`. With a registry of one's own, or a
//!   pull policy that must not reach a registry, every container says `IfNotPresent`.
//! - CouchDB keeps its data where the compose project had it: a hostPath on the node
//!   being enjoined to the cluster, one per CouchDB node.

use serde_json::{Value, json};

use super::layout::Layout;
use super::versions::{ChtVersion, Family};

/// The secret every deployment reads credentials from.
pub const SECRET: &str = "cht-couchdb-credentials";
/// The service account the upgrade service runs as (the chart's).
pub const ACCOUNT: &str = "cht-upgrade-service-user";
/// The Kubernetes upgrade service's image, without a registry, as the chart names it.
pub const UPGRADE_SERVICE_IMAGE: &str = "medicmobile/upgrade-service";
/// The chart's `upgrade_service.tag` default (4.22.0's `values/base.yaml`).
pub const UPGRADE_SERVICE_TAG: &str = "0.32";
/// The port the upgrade service listens on.
const UPGRADE_SERVICE_PORT: u16 = 5008;
/// Where API fetches builds from, as the chart's base values say.
const BUILDS_URL: &str = "https://staging.dev.medicmobile.org/_couch/builds_4";
/// The storage size written into the Helm values (the chart requires one).
pub const STORAGE_SIZE: &str = "100Gi";

/// How containers pull their images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImagePull {
    /// Kubernetes' default for a pinned tag (the chart's `cache_images: true`).
    Default,
    /// Never re-pulled once present: own registries and offline clusters.
    IfNotPresent,
    /// Pulled on every start.
    Always,
}

/// Everything the manifests are made from.
#[derive(Debug, Clone)]
pub struct KubeInput {
    /// The project's name.
    pub project: String,
    /// The namespace (a DNS label).
    pub namespace: String,
    /// The ingress host.
    pub host: String,
    /// The CHT release.
    pub version: ChtVersion,
    /// The registry of CHT's images.
    pub registry: String,
    /// Whether `registry` is one of the user's own (not upstream's).
    pub own_registry: bool,
    /// The CouchDB admin user.
    pub user: String,
    /// Its password.
    pub password: String,
    /// `COUCHDB_SECRET`.
    pub secret: String,
    /// `COUCHDB_UUID`.
    pub uuid: String,
    /// How CouchDB runs.
    pub layout: Layout,
    /// Each CouchDB node's data folder on `node`.
    pub data_paths: Vec<String>,
    /// The Kubernetes node that holds the data.
    pub node: String,
    /// Whether to run the upgrade service (4.x only; the 5.x chart has none).
    pub upgrade_service: bool,
    /// How containers pull.
    pub pull: ImagePull,
}

/// One manifest file: its name and its documents.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file name, e.g. `api.yaml`.
    pub file: &'static str,
    /// Its documents, in apply order.
    pub docs: Vec<Value>,
}

impl KubeInput {
    /// Whether the upgrade service is deployed: asked for, and the release's chart has one.
    pub fn runs_upgrade_service(&self) -> bool {
        self.upgrade_service && self.version.family == Family::V4
    }

    /// A service's address inside the cluster.
    fn dns(&self, service: &str) -> String {
        format!("{service}.{}.svc.cluster.local", self.namespace)
    }

    /// A CHT image, pinned to the release.
    fn image(&self, service: &str) -> String {
        format!("{}/cht-{service}:{}", self.registry, self.version.version)
    }

    /// The upgrade service's image: the chart's, or the same name in the user's registry.
    pub fn upgrade_service_image(&self) -> String {
        let name = UPGRADE_SERVICE_IMAGE
            .rsplit('/')
            .next()
            .unwrap_or(UPGRADE_SERVICE_IMAGE);
        if self.own_registry {
            format!("{}/{name}:{UPGRADE_SERVICE_TAG}", self.registry)
        } else {
            format!("{UPGRADE_SERVICE_IMAGE}:{UPGRADE_SERVICE_TAG}")
        }
    }

    /// A container: `name`, `image`, then `rest`, with the pull policy.
    fn container(&self, name: &str, image: String, rest: Value) -> Value {
        let mut c = json!({ "name": name, "image": image });
        if let (Some(map), Some(extra)) = (c.as_object_mut(), rest.as_object()) {
            map.extend(extra.clone());
            match self.pull {
                ImagePull::Default => {}
                ImagePull::IfNotPresent => {
                    map.insert("imagePullPolicy".into(), json!("IfNotPresent"));
                }
                ImagePull::Always => {
                    map.insert("imagePullPolicy".into(), json!("Always"));
                }
            }
        }
        c
    }
}

/// An env var taken from the credentials secret.
fn secret_env(name: &str) -> Value {
    json!({ "name": name, "valueFrom": { "secretKeyRef": { "name": SECRET, "key": name } } })
}

/// A plain env var.
fn env(name: &str, value: &str) -> Value {
    json!({ "name": name, "value": value })
}

/// An env var read from the pod's own fields.
fn field_env(name: &str, path: &str) -> Value {
    json!({ "name": name, "valueFrom": { "fieldRef": { "fieldPath": path } } })
}

/// An env var taken from the CouchDB servers config map.
fn config_env(name: &str) -> Value {
    json!({ "name": name, "valueFrom": { "configMapKeyRef": { "name": "couchdb-servers-configmap", "key": name } } })
}

/// A one-replica deployment of one container labelled `cht.service: service`, pinned to
/// the node that holds the data (the machine being enjoined to the cluster).
fn deployment(service: &str, name: &str, container: Value, node: &str, extra_spec: Value) -> Value {
    let mut spec = json!({
        "nodeSelector": { "kubernetes.io/hostname": node },
        "containers": [container],
        "restartPolicy": "Always",
    });
    if let (Some(s), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
        s.extend(extra.clone());
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "labels": { "cht.service": service } },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "cht.service": service } },
            "strategy": { "type": "Recreate" },
            "template": { "metadata": { "labels": { "cht.service": service } }, "spec": spec },
        },
    })
}

/// A ClusterIP service in front of the pods labelled `cht.service: service`.
fn service(service: &str, ports: &[(&str, u16)]) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(n, p)| json!({ "name": n, "port": p, "targetPort": p, "protocol": "TCP" }))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": service, "labels": { "cht.service": service } },
        "spec": { "selector": { "cht.service": service }, "ports": ports, "type": "ClusterIP" },
    })
}

/// The Kubernetes services of the CouchDB nodes: `couchdb`, or the chart's `couchdb-1`..
/// for a cluster.
fn couchdb_names(layout: Layout) -> Vec<String> {
    match layout {
        Layout::Single => vec!["couchdb".into()],
        Layout::Cluster => (1..=layout.nodes())
            .map(|n| format!("couchdb-{n}"))
            .collect(),
    }
}

/// The servers config map's data, as the chart writes it: every node's address, and for a
/// cluster the node the others take admins from and the peers the first one joins.
fn servers_config(input: &KubeInput) -> Value {
    let all: Vec<String> = couchdb_names(input.layout)
        .iter()
        .map(|n| input.dns(n))
        .collect();
    match input.layout {
        Layout::Single => json!({ "COUCHDB_SERVERS": all.join(",") }),
        Layout::Cluster => json!({
            "COUCHDB_SERVERS": all.join(","),
            "COUCHDB_SYNC_ADMINS_NODE": all[0],
            "CLUSTER_PEER_IPS": all[1..].join(","),
        }),
    }
}

/// Whether the release runs the HAProxy healthcheck: 4.x, and 5.x beside a cluster (as the
/// compose files have it).
fn has_healthcheck(input: &KubeInput) -> bool {
    input.version.family == Family::V4 || input.layout == Layout::Cluster
}

/// The upgrade service's deployment, field by field as the 4.22.0 chart's
/// `templates/upgrade-service/deployment.yaml` renders it.
pub fn upgrade_service_deployment(input: &KubeInput) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": "upgrade-service", "labels": { "cht.service": "upgrade-service" } },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "cht.service": "upgrade-service" } },
            "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxSurge": 0, "maxUnavailable": 1 } },
            "template": {
                "metadata": { "labels": { "cht.service": "upgrade-service" } },
                "spec": {
                    "restartPolicy": "Always",
                    "serviceAccountName": ACCOUNT,
                    "containers": [input.container("upgrade-service", input.upgrade_service_image(), json!({
                        "resources": {},
                        "env": [
                            field_env("CHT_NAMESPACE", "metadata.namespace"),
                            field_env("CHT_DEPLOYMENT_NAME", "metadata.labels['cht.service']"),
                            env("UPGRADE_SERVICE_PORT", &UPGRADE_SERVICE_PORT.to_string()),
                        ],
                        "ports": [{ "containerPort": UPGRADE_SERVICE_PORT }],
                    }))],
                },
            },
        },
    })
}

/// The role, role binding and service account the upgrade service acts through (the
/// chart's; the binding's subject also names its namespace, which `kubectl -n` needs).
fn upgrade_service_access(input: &KubeInput) -> Vec<Value> {
    let verbs = json!(["get", "update", "watch", "patch", "list"]);
    vec![
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": { "name": "deployment-manager", "namespace": input.namespace },
            "rules": [
                { "apiGroups": ["apps"], "resources": ["deployments"], "verbs": verbs },
                { "apiGroups": [""], "resources": ["pods"], "verbs": verbs },
            ],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": { "name": "deployment-manager-cht", "namespace": input.namespace },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployment-manager" },
            "subjects": [{ "kind": "ServiceAccount", "name": ACCOUNT, "namespace": input.namespace }],
        }),
        json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": { "name": ACCOUNT, "namespace": input.namespace } }),
    ]
}

/// The namespace, and the credentials secret with the CouchDB servers config map.
fn namespace_and_credentials(input: &KubeInput) -> [Manifest; 2] {
    let ns = &input.namespace;
    [
        Manifest {
            file: "namespace.yaml",
            docs: vec![
                json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } }),
            ],
        },
        Manifest {
            file: "credentials.yaml",
            docs: vec![
                json!({
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": { "name": SECRET, "namespace": ns },
                    "type": "Opaque",
                    "stringData": {
                        "COUCHDB_USER": input.user,
                        "COUCHDB_PASSWORD": input.password,
                        "COUCHDB_SECRET": input.secret,
                        "COUCHDB_UUID": input.uuid,
                        "COUCH_URL": format!("http://{}:{}@{}:5984/medic", input.user, input.password, input.dns("haproxy")),
                    },
                }),
                json!({
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": { "name": "couchdb-servers-configmap", "namespace": ns },
                    "data": servers_config(input),
                }),
            ],
        },
    ]
}

/// The services: every CouchDB node, API, HAProxy, and the upgrade service, healthcheck
/// and Nouveau where the release runs them.
fn services(input: &KubeInput) -> Manifest {
    let couchdb_ports = [("couchdb-service", 5984), ("epmd", 4369), ("erlang", 9100)];
    let mut services: Vec<Value> = couchdb_names(input.layout)
        .iter()
        .map(|name| service(name, &couchdb_ports))
        .collect();
    services.extend([
        service("api", &[("api", 5988)]),
        service("haproxy", &[("haproxy", 5984)]),
    ]);
    if input.runs_upgrade_service() {
        services.push(service(
            "upgrade-service",
            &[("upgrade-service", UPGRADE_SERVICE_PORT)],
        ));
    }
    if has_healthcheck(input) {
        services.push(service("healthcheck", &[("healthcheck", 5555)]));
    }
    if input.version.family == Family::V5 {
        services.push(service("nouveau", &[("nouveau", 5987)]));
    }
    Manifest {
        file: "services.yaml",
        docs: services,
    }
}

/// A hostPath volume on the data's node.
fn host_volume(path: &str) -> Value {
    json!([{ "name": "local-volume", "hostPath": { "path": path, "type": "Directory" } }])
}

/// One deployment per CouchDB node, each on its own data folder.
fn couchdb(input: &KubeInput) -> Manifest {
    let nodes = couchdb_names(input.layout);
    let couchdb: Vec<Value> = nodes
        .iter()
        .zip(&input.data_paths)
        .enumerate()
        .map(|(i, (name, path))| {
            let mut env_list = Vec::new();
            if input.layout == Layout::Cluster && i > 0 {
                env_list.push(config_env("COUCHDB_SYNC_ADMINS_NODE"));
            }
            env_list.extend([
                env("COUCHDB_LOG_LEVEL", "info"),
                secret_env("COUCHDB_PASSWORD"),
                secret_env("COUCHDB_SECRET"),
                secret_env("COUCHDB_USER"),
                secret_env("COUCHDB_UUID"),
                env("SVC_NAME", &input.dns(name)),
            ]);
            if input.layout == Layout::Cluster {
                env_list.push(env("NODE_COUNT", &input.layout.nodes().to_string()));
                if i == 0 {
                    env_list.push(config_env("CLUSTER_PEER_IPS"));
                }
            }
            let container = format!("cht-{name}");
            deployment(
                name,
                &container,
                input.container(
                    &container,
                    input.image("couchdb"),
                    json!({
                        "env": env_list,
                        "ports": [{ "containerPort": 5984 }],
                        "volumeMounts": [{ "mountPath": "/opt/couchdb/data", "name": "local-volume" }],
                    }),
                ),
                &input.node,
                json!({ "volumes": host_volume(path) }),
            )
        })
        .collect();
    Manifest {
        file: "couchdb.yaml",
        docs: couchdb,
    }
}

/// HAProxy in front of CouchDB, and its healthcheck where the release runs one.
fn haproxy_and_healthcheck(input: &KubeInput) -> Vec<Manifest> {
    let mut out = Vec::new();
    out.push(Manifest {
        file: "haproxy.yaml",
        docs: vec![deployment(
            "haproxy",
            "cht-haproxy",
            input.container(
                "cht-haproxy",
                input.image("haproxy"),
                json!({
                    "env": [
                        secret_env("COUCHDB_PASSWORD"),
                        config_env("COUCHDB_SERVERS"),
                        secret_env("COUCHDB_USER"),
                        env("HAPROXY_IP", "0.0.0.0"),
                        env("HAPROXY_PORT", "5984"),
                        env("HEALTHCHECK_ADDR", &input.dns("healthcheck")),
                    ],
                    "ports": [{ "containerPort": 5984 }],
                }),
            ),
            &input.node,
            json!({ "hostname": "haproxy" }),
        )],
    });
    if has_healthcheck(input) {
        out.push(Manifest {
            file: "healthcheck.yaml",
            docs: vec![deployment(
                "healthcheck",
                "cht-haproxy-healthcheck",
                input.container(
                    "cht-haproxy-healthcheck",
                    input.image("haproxy-healthcheck"),
                    json!({
                        "env": [
                            secret_env("COUCHDB_PASSWORD"),
                            config_env("COUCHDB_SERVERS"),
                            secret_env("COUCHDB_USER"),
                        ],
                        "ports": [{ "containerPort": 5555 }],
                    }),
                ),
                &input.node,
                json!({}),
            )],
        });
    }
    out
}

/// Nouveau (5.x), its index in the (first) node's data folder, as in compose.
fn nouveau(input: &KubeInput) -> Manifest {
    Manifest {
            file: "nouveau.yaml",
            docs: vec![deployment(
                "nouveau",
                "cht-couchdb-nouveau",
                input.container(
                    "cht-couchdb-nouveau",
                    input.image("couchdb-nouveau"),
                    json!({
                        "ports": [{ "containerPort": 5987 }],
                        "volumeMounts": [{ "mountPath": "/data/nouveau", "name": "local-volume", "subPath": "nouveau" }],
                    }),
                ),
                &input.node,
                json!({ "volumes": host_volume(&input.data_paths[0]) }),
            )],
        }
}

/// API and Sentinel.
fn api_and_sentinel(input: &KubeInput) -> [Manifest; 2] {
    let mut api_env = vec![env("BUILDS_URL", BUILDS_URL), secret_env("COUCH_URL")];
    if input.runs_upgrade_service() {
        api_env.push(env(
            "UPGRADE_SERVICE_URL",
            &format!(
                "http://{}:{UPGRADE_SERVICE_PORT}",
                input.dns("upgrade-service")
            ),
        ));
    }
    api_env.push(env("API_PORT", "5988"));
    [
        Manifest {
        file: "api.yaml",
        docs: vec![deployment(
            "api",
            "cht-api",
            input.container(
                "cht-api",
                input.image("api"),
                json!({ "env": api_env, "ports": [{ "containerPort": 5988 }] }),
            ),
            &input.node,
            json!({}),
        )],
    },
        Manifest {
        file: "sentinel.yaml",
        docs: vec![deployment(
            "sentinel",
            "cht-sentinel",
            input.container(
                "cht-sentinel",
                input.image("sentinel"),
                json!({
                    "env": [env("API_HOST", &input.dns("api")), secret_env("COUCH_URL"), env("API_PORT", "5988")],
                }),
            ),
            &input.node,
            json!({}),
        )],
    },
    ]
}

/// The ingress to API at the project's host.
fn ingress(input: &KubeInput) -> Manifest {
    let ns = &input.namespace;
    Manifest {
        file: "ingress.yaml",
        docs: vec![json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": { "name": "api-ingress", "namespace": ns },
            "spec": { "rules": [{ "host": input.host, "http": { "paths": [{
                "pathType": "Prefix", "path": "/",
                "backend": { "service": { "name": "api", "port": { "number": 5988 } } },
            }] } }] },
        })],
    }
}

/// Every manifest file of the kubectl migration, in apply order.
pub fn manifests(input: &KubeInput) -> Vec<Manifest> {
    let mut out = namespace_and_credentials(input).to_vec();
    if input.runs_upgrade_service() {
        out.push(Manifest {
            file: "roles.yaml",
            docs: upgrade_service_access(input),
        });
    }
    out.push(services(input));
    out.push(couchdb(input));
    out.extend(haproxy_and_healthcheck(input));
    if input.version.family == Family::V5 {
        out.push(nouveau(input));
    }
    out.extend(api_and_sentinel(input));
    if input.runs_upgrade_service() {
        out.push(Manifest {
            file: "upgrade-service.yaml",
            docs: vec![upgrade_service_deployment(input)],
        });
    }
    out.push(ingress(input));
    out
}

/// The chart's layered values files for this project, in `helm install -f` order (before
/// the project's own): the base, the CouchDB layout, then the k3s/k3d platform, whose
/// local storage is the hostPath the data stays in.
pub fn helm_layers(layout: Layout) -> [&'static str; 3] {
    [
        "values/base.yaml",
        match layout {
            Layout::Single => "values/deployment-single.yaml",
            Layout::Cluster => "values/deployment-multi.yaml",
        },
        "values/platform-k3s-k3d.yaml",
    ]
}

/// The release whose chart installs this project: its own from 4.22.0 on (the first
/// release that carries the chart in `scripts/build/helm`), else 4.22.0's, run with the
/// project's image tag.
pub fn chart_release(version: ChtVersion) -> &'static str {
    let parts = |v: &str| -> Vec<u32> { v.split('.').filter_map(|p| p.parse().ok()).collect() };
    if parts(version.version) >= parts("4.22.0") {
        version.version
    } else {
        "4.22.0"
    }
}

/// The values the chart's layered files leave to the user, for this project: its name and
/// namespace, the release (`chtversion`, `cht_image_tag`), the registry, the CouchDB
/// credentials and storage size, where each CouchDB node runs, and the pre-existing data
/// (the compose project's folders, as hostPaths on this node).
pub fn helm_values(input: &KubeInput) -> Value {
    let nodes = match input.layout {
        Layout::Single => json!({ "single_node_deploy": input.node }),
        Layout::Cluster => Value::Object(
            (1..=input.layout.nodes())
                .map(|n| (format!("node-{n}"), json!(input.node)))
                .collect(),
        ),
    };
    let mut doc = json!({
        "project_name": input.project,
        "namespace": input.namespace,
        "chtversion": input.version.version,
        "cht_image_tag": input.version.version,
        "cache_images": input.pull != ImagePull::Always,
        "upstream_servers": {
            "docker_registry": input.registry,
            "builds_url": BUILDS_URL,
        },
        "couchdb": {
            "user": input.user,
            "password": input.password,
            "secret": input.secret,
            "uuid": input.uuid,
            "clusteredCouchEnabled": input.layout == Layout::Cluster,
            "couchdb_node_storage_size": STORAGE_SIZE,
        },
        "couchdb_data": {
            "preExistingDataAvailable": true,
            "dataPathOnDiskForCouchDB": "",
            "partition": "0",
        },
        "local_storage": input.data_paths
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("preExistingDiskPath-{}", i + 1), json!(p)))
            .collect::<serde_json::Map<_, _>>(),
        "nodes": nodes,
        "ingress": { "host": input.host },
    });
    if input.layout == Layout::Cluster
        && let Some(map) = doc.as_object_mut()
    {
        map.insert(
            "clusteredCouch".into(),
            json!({ "noOfCouchDBNodes": input.layout.nodes() }),
        );
    }
    // The 4.x chart deploys the upgrade service unless `environment` is `local`, which its
    // k3s/k3d platform file sets; `remote` is what its cloud platform files set.
    if input.version.family == Family::V4
        && let Some(map) = doc.as_object_mut()
    {
        map.insert(
            "environment".into(),
            json!(if input.upgrade_service {
                "remote"
            } else {
                "local"
            }),
        );
        map.insert(
            "upgrade_service".into(),
            json!({ "tag": UPGRADE_SERVICE_TAG }),
        );
    }
    doc
}

#[cfg(test)]
mod tests;
