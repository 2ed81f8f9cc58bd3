//! Containers: made from a [`ContainerConfig`], started, stopped, removed, entered
//! (files, commands) and read (logs).

use super::*;

impl Engine {
    /// Creates (does not start) the container `config` describes; returns its id.
    pub async fn create_container(&self, config: &ContainerConfig) -> Result<String> {
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for p in &config.published {
            bindings
                .entry(p.container.clone())
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(p.host_ip.clone()),
                    host_port: Some(p.host_port.to_string()),
                });
        }
        let mounts = config
            .volumes
            .iter()
            .map(|m| Mount {
                target: Some(m.target.clone()),
                source: Some(m.volume.clone()),
                typ: Some(MountType::VOLUME),
                read_only: Some(m.read_only),
                ..Default::default()
            })
            .collect();
        let restart = config.restart.map(|r| RestartPolicy {
            name: Some(match r {
                Restart::Always => RestartPolicyNameEnum::ALWAYS,
                Restart::UnlessStopped => RestartPolicyNameEnum::UNLESS_STOPPED,
                Restart::OnFailure(_) => RestartPolicyNameEnum::ON_FAILURE,
                Restart::No => RestartPolicyNameEnum::NO,
            }),
            maximum_retry_count: match r {
                Restart::OnFailure(n) => n,
                _ => None,
            },
        });
        let host_config = HostConfig {
            port_bindings: Some(bindings),
            binds: Some(config.binds.clone()),
            mounts: Some(mounts),
            restart_policy: restart,
            log_config: config
                .log
                .as_ref()
                .map(|(driver, options)| HostConfigLogConfig {
                    typ: Some(driver.clone()),
                    config: Some(options.clone().into_iter().collect()),
                }),
            memory: config.memory,
            network_mode: config
                .network_mode
                .clone()
                .or_else(|| config.networks.first().map(|(n, _)| n.clone())),
            ..Default::default()
        };
        let joins = config.network_mode.is_some();
        let endpoints: HashMap<String, EndpointSettings> = config
            .networks
            .iter()
            .map(|(net, aliases)| {
                (
                    net.clone(),
                    EndpointSettings {
                        aliases: Some(aliases.clone()),
                        ..Default::default()
                    },
                )
            })
            .collect();
        let body = ContainerCreateBody {
            image: Some(config.image.clone()),
            // The engine refuses a hostname for a container in another's namespace.
            hostname: config.hostname.clone().filter(|_| !joins),
            env: Some(config.env.clone()),
            labels: Some(config.labels.clone().into_iter().collect()),
            exposed_ports: Some(config.exposed.clone()),
            cmd: config.command.clone(),
            entrypoint: config.entrypoint.clone(),
            user: config.user.clone(),
            working_dir: config.working_dir.clone(),
            host_config: Some(host_config),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(endpoints),
            }),
            ..Default::default()
        };
        self.create_named(&config.name, body).await
    }

    /// The network mode a container was made with (`container:ID` for one that joins
    /// another's namespace); `None` when the container is gone.
    pub async fn network_mode(&self, id: &str, name: &str) -> Result<Option<String>> {
        let _span = self.span(|| format!("inspect container {name}"));
        let inspect = self
            .docker
            .inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map_err(self.fail(format!("inspect container {name}")))
            .tolerate(&[NotFound])?;
        Ok(inspect.map(|i| {
            i.host_config
                .and_then(|h| h.network_mode)
                .unwrap_or_default()
        }))
    }

    /// Starts a container (already running is fine).
    pub async fn start(&self, id: &str, name: &str) -> Result<()> {
        let _span = self.span(|| format!("start container {name}"));
        self.docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(self.fail(format!("start container {name}")))
            .tolerate(&[NotModified])?;
        Ok(())
    }

    /// Stops a container, waiting up to `grace` seconds before killing it.
    pub async fn stop(&self, id: &str, name: &str, grace: i32) -> Result<()> {
        let _span = self.span(|| format!("stop container {name}"));
        let options = StopContainerOptions {
            t: Some(grace),
            ..Default::default()
        };
        self.docker
            .stop_container(id, Some(options))
            .await
            .map_err(self.fail(format!("stop container {name}")))
            .tolerate(&[NotModified, NotFound])?;
        Ok(())
    }

    /// Freezes every process of a container (the cgroup freezer): none runs until
    /// [`Engine::unpause`]; nothing is signalled, nothing restarts. Engines that cannot
    /// (rootless on cgroup v1) refuse.
    pub async fn pause(&self, id: &str, name: &str) -> Result<()> {
        let _span = self.span(|| format!("pause container {name}"));
        self.docker
            .pause_container(id)
            .await
            .map_err(self.fail(format!("pause container {name}")))
    }

    /// Lets a frozen container's processes run again; one not frozen (or gone) is fine.
    pub async fn unpause(&self, id: &str, name: &str) -> Result<()> {
        let _span = self.span(|| format!("unpause container {name}"));
        self.docker
            .unpause_container(id)
            .await
            .map_err(self.fail(format!("unpause container {name}")))
            .tolerate(&[NotFound, Conflict, NotModified])?;
        Ok(())
    }

    /// Sends SIGKILL to a container's processes and returns once it is sent (the kernel
    /// ends them at once; the engine's own cleanup goes on). One not running is fine.
    pub async fn kill(&self, id: &str, name: &str) -> Result<()> {
        let _span = self.span(|| format!("kill container {name}"));
        let options = bollard::query_parameters::KillContainerOptions {
            signal: "SIGKILL".into(),
        };
        self.docker
            .kill_container(id, Some(options))
            .await
            .map_err(self.fail(format!("kill container {name}")))
            .tolerate(&[NotFound, Conflict])?;
        Ok(())
    }

    /// Removes a container, running or not (its named volumes stay).
    pub async fn remove(&self, id: &str, name: &str) -> Result<()> {
        let _span = self.span(|| format!("remove container {name}"));
        let options = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        // Gone already, or its removal under way (a parallel down): fine.
        self.docker
            .remove_container(id, Some(options))
            .await
            .map_err(self.fail(format!("remove container {name}")))
            .tolerate(&[NotFound, Conflict])?;
        Ok(())
    }

    /// Extracts a tar archive into `dir` of a container (works on created, stopped containers and their volumes).
    pub async fn upload(&self, id: &str, name: &str, dir: &str, tar: Vec<u8>) -> Result<()> {
        let _span = self.span(|| format!("copy files into {name}:{dir}"));
        let options = UploadToContainerOptions {
            path: dir.to_string(),
            ..Default::default()
        };
        self.docker
            .upload_to_container(id, Some(options), bollard::body_full(tar.into()))
            .await
            .map_err(self.fail(format!("copy files into {name}:{dir}")))
    }

    /// Runs `cmd` in a running container and returns its exit code and output.
    pub async fn exec(&self, id: &str, name: &str, cmd: &[&str]) -> Result<(i64, String)> {
        let _span = self.span(|| format!("exec in {name}"));
        let fail = || self.fail(format!("run {:?} in {name}", cmd.join(" ")));
        let exec = self
            .docker
            .create_exec(
                id,
                bollard::exec::CreateExecOptions {
                    cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(fail())?;
        let mut output = String::new();
        if let bollard::exec::StartExecResults::Attached {
            output: mut stream, ..
        } = self
            .docker
            .start_exec(&exec.id, None::<bollard::exec::StartExecOptions>)
            .await
            .map_err(fail())?
        {
            while let Some(chunk) = stream.next().await {
                output.push_str(&chunk.map_err(fail())?.to_string());
            }
        }
        let inspect = self.docker.inspect_exec(&exec.id).await.map_err(fail())?;
        Ok((inspect.exit_code.unwrap_or(-1), output))
    }

    /// A container's log lines, following new ones when `follow` is set.
    pub fn logs(
        &self,
        id: &str,
        follow: bool,
        tail: Option<u64>,
    ) -> impl Stream<Item = Result<String>> + Send + 'static + use<> {
        let options = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            tail: tail.map_or_else(|| "all".to_string(), |n| n.to_string()),
            ..Default::default()
        };
        let host = self.endpoint.host.clone();
        self.docker.logs(id, Some(options)).map(move |item| {
            item.map(|chunk| chunk.to_string())
                .map_err(|e| failure(&host, "read logs".into(), e))
        })
    }

    /// The last `n` log lines of a container, as one string.
    pub async fn last_logs(&self, id: &str, n: u64) -> Result<String> {
        let mut stream = Box::pin(self.logs(id, false, Some(n)));
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            text.push_str(&chunk?);
        }
        Ok(text)
    }
}
