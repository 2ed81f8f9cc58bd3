//! Manifests and Helm values for each release and layout.

use super::*;
use crate::project::versions;

fn input(version: &str, layout: Layout) -> KubeInput {
    KubeInput {
        project: "p".into(),
        namespace: "p".into(),
        host: "p.local".into(),
        version: versions::find(version).expect("version"),
        registry: "public.ecr.aws/medic".into(),
        own_registry: false,
        user: "medic".into(),
        password: "pw".into(),
        secret: "s".into(),
        uuid: "u".into(),
        layout,
        data_paths: (1..=layout.nodes()).map(|n| format!("/data/{n}")).collect(),
        node: "n".into(),
        upgrade_service: true,
        pull: ImagePull::Default,
    }
}

fn files(i: &KubeInput) -> Vec<&'static str> {
    manifests(i).iter().map(|m| m.file).collect()
}

#[test]
fn only_4x_runs_the_upgrade_service_and_only_when_asked() {
    let four = input("4.22.0", Layout::Single);
    assert!(files(&four).contains(&"upgrade-service.yaml"));
    assert!(files(&four).contains(&"roles.yaml"));
    let five = input("5.2.0", Layout::Single);
    assert!(!files(&five).contains(&"upgrade-service.yaml"));
    assert!(!files(&five).contains(&"roles.yaml"));
    let mut local = four.clone();
    local.upgrade_service = false;
    assert!(!files(&local).contains(&"upgrade-service.yaml"));
    let api = |i: &KubeInput| {
        manifests(i)
            .into_iter()
            .find(|m| m.file == "api.yaml")
            .map(|m| m.docs[0].to_string())
            .unwrap_or_default()
    };
    assert!(api(&four).contains("http://upgrade-service.p.svc.cluster.local:5008"));
    assert!(!api(&five).contains("UPGRADE_SERVICE_URL"));
    assert!(!api(&local).contains("UPGRADE_SERVICE_URL"));
    assert_eq!(helm_values(&four)["environment"], "remote");
    assert_eq!(helm_values(&local)["environment"], "local");
    assert!(helm_values(&five).get("environment").is_none());
}

#[test]
fn images_are_pinned_and_pull_as_asked() {
    let mut i = input("4.22.0", Layout::Cluster);
    let text = |i: &KubeInput| {
        format!(
            "{:?}",
            manifests(i).iter().map(|m| &m.docs).collect::<Vec<_>>()
        )
    };
    assert!(!text(&i).contains(":latest"));
    assert!(!text(&i).contains("imagePullPolicy"));
    i.pull = ImagePull::IfNotPresent;
    let pulls = text(&i).matches("IfNotPresent").count();
    let images = text(&i).matches("\"image\"").count();
    assert_eq!(pulls, images, "every container");
    assert_eq!(
        i.upgrade_service_image(),
        "medicmobile/upgrade-service:0.32"
    );
    i.own_registry = true;
    i.registry = "r.local/medic".into();
    assert_eq!(
        i.upgrade_service_image(),
        "r.local/medic/upgrade-service:0.32"
    );
}

#[test]
fn the_chart_of_a_release_and_its_layers() {
    let v = |s| versions::find(s).expect("version");
    assert_eq!(chart_release(v("4.21.0")), "4.22.0");
    assert_eq!(chart_release(v("4.22.0")), "4.22.0");
    assert_eq!(chart_release(v("5.1.0")), "5.1.0");
    assert_eq!(
        helm_layers(Layout::Cluster)[1],
        "values/deployment-multi.yaml"
    );
    let values = helm_values(&input("5.2.0", Layout::Cluster));
    assert_eq!(values["local_storage"]["preExistingDiskPath-3"], "/data/3");
    assert_eq!(values["nodes"]["node-2"], "n");
    assert_eq!(values["clusteredCouch"]["noOfCouchDBNodes"], 3);
}
