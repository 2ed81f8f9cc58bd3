//! Networks and volumes: made once, found by label, removed.

use super::*;

impl Engine {
    /// The networks the engine lists for `filters`.
    pub(super) async fn list_networks(
        &self,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<bollard::models::Network>> {
        let _span = self.span(|| format!("list networks {filters:?}"));
        self.docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(self.fail("list networks"))
    }

    /// Ids of the networks called exactly `name`, oldest first (ties by id), so every
    /// caller picks the same one when an engine holds two of one name.
    pub(super) async fn networks_named(&self, name: &str) -> Result<Vec<String>> {
        let filters = HashMap::from([("name".to_string(), vec![name.to_string()])]);
        let list = self.list_networks(filters).await?;
        let mut same: Vec<(String, String)> = list
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .map(|n| {
                (
                    n.created.map(|c| c.to_string()).unwrap_or_default(),
                    n.id.unwrap_or_default(),
                )
            })
            .collect();
        same.sort();
        Ok(same.into_iter().map(|(_, id)| id).collect())
    }

    /// Removes every network called `name` but the oldest; one in use stays.
    pub(super) async fn remove_duplicates(&self, name: &str, ids: &[String]) -> Result<()> {
        for id in ids.iter().skip(1) {
            self.docker
                .remove_network(id)
                .await
                .map_err(self.fail(format!("remove duplicate network {name}")))
                // Best effort: one still in use (403) stays, and is harmless.
                .tolerate(&[NotFound, Conflict, InUse])?;
        }
        Ok(())
    }

    /// Creates network `name` unless it exists; returns whether it was created.
    ///
    /// Older engines allow two networks of one name: a create the engine finished after
    /// its command was interrupted can race the next one. So the network is found by exact
    /// name, and duplicates are removed, keeping the oldest.
    pub async fn ensure_network(
        &self,
        name: &str,
        driver: Option<&str>,
        labels: &BTreeMap<String, String>,
    ) -> Result<bool> {
        let _span = self.span(|| format!("ensure network {name}"));
        let same = self.networks_named(name).await?;
        if !same.is_empty() {
            self.remove_duplicates(name, &same).await?;
            return Ok(false);
        }
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some(driver.unwrap_or("bridge").to_string()),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        // Created meanwhile by compose or a parallel cht-dev: fine.
        let creating = self.span(|| format!("create network {name}"));
        let created = self
            .docker
            .create_network(request)
            .await
            .map_err(self.fail(format!("create network {name}")))
            .tolerate(&[Conflict])?;
        drop(creating);
        let same = self.networks_named(name).await?;
        self.remove_duplicates(name, &same).await?;
        Ok(created.is_some())
    }

    /// Creates volume `name` unless it exists; returns whether it was created.
    pub async fn ensure_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<bool> {
        let _span = self.span(|| format!("ensure volume {name}"));
        let found = self
            .docker
            .inspect_volume(name)
            .await
            .map_err(self.fail(format!("inspect volume {name}")))
            .tolerate(&[NotFound])?;
        if found.is_some() {
            return Ok(false);
        }
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map_err(self.fail(format!("create volume {name}")))?;
        Ok(true)
    }

    /// The engine's filter for one `label=value`.
    pub(super) fn label_filter(label: &str, value: &str) -> HashMap<String, Vec<String>> {
        HashMap::from([("label".to_string(), vec![format!("{label}={value}")])])
    }

    /// Names of the networks carrying `label=value`.
    pub async fn networks(&self, label: &str, value: &str) -> Result<Vec<String>> {
        let list = self.list_networks(Self::label_filter(label, value)).await?;
        let mut names: Vec<String> = list.into_iter().filter_map(|n| n.name).collect();
        names.sort();
        Ok(names)
    }

    /// Names of the volumes carrying `label=value`.
    pub async fn volumes(&self, label: &str, value: &str) -> Result<Vec<String>> {
        let _span = self.span(|| format!("list volumes {label}={value}"));
        let filters = Self::label_filter(label, value);
        let list = self
            .docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(self.fail("list volumes"))?;
        let mut names: Vec<String> = list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect();
        names.sort();
        Ok(names)
    }

    /// Removes the network(s) called `name`; a missing one is not an error, one in use
    /// fails with [`EngineFailure::InUse`]. A lone network goes by its name: Podman removes
    /// one by its full id even with containers on it (which it then cannot remove), but
    /// refuses by name, as Docker does either way; only Docker can hold two of one name,
    /// and those go by id.
    pub async fn remove_network(&self, name: &str) -> Result<()> {
        let _span = self.span(|| format!("remove network {name}"));
        let ids = self.networks_named(name).await?;
        let targets = if ids.len() == 1 {
            vec![name.to_string()]
        } else {
            ids
        };
        for id in targets {
            self.docker
                .remove_network(&id)
                .await
                .map_err(self.fail(format!("remove network {name}")))
                .tolerate(&[NotFound])?;
        }
        Ok(())
    }

    /// The names of the containers attached to the network called `name`, sorted (none
    /// when it is gone).
    pub async fn network_containers(&self, name: &str) -> Result<Vec<String>> {
        let _span = self.span(|| format!("inspect network {name}"));
        let mut names = Vec::new();
        for id in self.networks_named(name).await? {
            let inspect = self
                .docker
                .inspect_network(
                    &id,
                    None::<bollard::query_parameters::InspectNetworkOptions>,
                )
                .await
                .map_err(self.fail(format!("inspect network {name}")))
                .tolerate(&[NotFound])?;
            names.extend(
                inspect
                    .and_then(|n| n.containers)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(id, c)| c.name.unwrap_or(id)),
            );
        }
        names.sort();
        Ok(names)
    }

    /// Deletes the endpoint called `container` from the network called `name` by force,
    /// whether that container still exists or not (the engine's way to drop an endpoint a
    /// removed container left behind); a missing network or endpoint is not an error.
    pub async fn force_disconnect(&self, name: &str, container: &str) -> Result<()> {
        let _span = self.span(|| format!("force-disconnect {container} from network {name}"));
        for id in self.networks_named(name).await? {
            self.docker
                .disconnect_network(
                    &id,
                    bollard::models::NetworkDisconnectRequest {
                        container: container.to_string(),
                        force: Some(true),
                    },
                )
                .await
                .map_err(self.fail(format!("force-disconnect {container} from network {name}")))
                .tolerate(&[NotFound])?;
        }
        Ok(())
    }

    /// Removes a volume; a missing one is not an error.
    pub async fn remove_volume(&self, name: &str) -> Result<()> {
        let _span = self.span(|| format!("remove volume {name}"));
        self.docker
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
            .map_err(self.fail(format!("remove volume {name}")))
            .tolerate(&[NotFound])?;
        Ok(())
    }
}
