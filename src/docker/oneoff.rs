//! One-off containers run to their end, and image pulls.

use super::*;
use crate::error::PullFailure;

impl Engine {
    /// Runs `job` to its end (at most `limit`), returns its exit code and output, and
    /// removes its container whatever happened.
    pub async fn run_to_end(&self, job: &OneOff, limit: Duration) -> Result<Finished> {
        let _span = self.span(|| format!("run one-off {}", job.name));
        let body = ContainerCreateBody {
            image: Some(job.image.clone()),
            entrypoint: Some(job.entrypoint.clone()),
            cmd: Some(Vec::new()),
            user: job.user.clone(),
            env: Some(job.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(job.labels.clone().into_iter().collect()),
            host_config: Some(HostConfig {
                binds: Some(job.binds.clone()),
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = self.create_named(&job.name, body).await?;
        let outcome = tokio::time::timeout(limit, self.start_wait_collect(&id, &job.name))
            .await
            .unwrap_or_else(|_| {
                Err(Error::engine(
                    format!("run {}", job.name),
                    format!("it did not finish within {} s", limit.as_secs()),
                ))
            });
        self.remove(&id, &job.name).await?;
        outcome
    }

    /// Creates a container called `name` from `body`; returns its id. A name already in use
    /// is [`Error::NameTaken`].
    pub(super) async fn create_named(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<String> {
        let _span = self.span(|| format!("create container {name}"));
        let options = CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(self.fail(format!("create container {name}")))
            .tolerate(&[Conflict])?
            .ok_or_else(|| Error::NameTaken {
                name: name.to_string(),
            })?;
        Ok(created.id)
    }

    /// Starts a created container, waits for it to stop, and reads its output.
    pub(super) async fn start_wait_collect(&self, id: &str, name: &str) -> Result<Finished> {
        let _span = self.span(|| format!("wait for and read {name}"));
        self.start(id, name).await?;
        let mut waiting = self.docker.wait_container(
            id,
            Some(WaitContainerOptions {
                condition: "not-running".into(),
            }),
        );
        let mut code = 0;
        while let Some(item) = waiting.next().await {
            match item {
                Ok(response) => code = response.status_code,
                // bollard reports a non-zero exit as an error; it is an outcome here.
                Err(BollardError::DockerContainerWaitError { code: c, .. }) => code = c,
                Err(e) => return Err(self.fail(format!("wait for {name}"))(e)),
            }
        }
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: "all".into(),
            ..Default::default()
        };
        let mut logs = self.docker.logs(id, Some(options));
        let (mut stdout, mut stderr) = (String::new(), String::new());
        while let Some(chunk) = logs.next().await {
            match chunk.map_err(self.fail(format!("read the output of {name}")))? {
                LogOutput::StdErr { message } => {
                    stderr.push_str(&String::from_utf8_lossy(&message))
                }
                other => stdout.push_str(&other.to_string()),
            }
        }
        Ok(Finished {
            code,
            stdout,
            stderr,
        })
    }

    /// Pulls exactly `image` (one tag, never all), reporting progress events. The outer
    /// error is the engine's own (unreachable, refusing); the inner one is why the registry
    /// could not give the image, for the caller to gather with the other pulls' failures.
    pub async fn pull(
        &self,
        image: &str,
        on_event: &(dyn Fn(PullEvent) + Sync),
    ) -> Result<std::result::Result<(), PullFailure>> {
        let _span = self.span(|| format!("pull {image}"));
        let (from_image, tag) = split_reference(image);
        let options = CreateImageOptions {
            from_image: Some(from_image),
            tag: Some(tag),
            ..Default::default()
        };
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(BollardError::DockerResponseServerError { message, .. }) => {
                    return Ok(Err(pull_failure(&message)));
                }
                Err(e) => return Err(self.fail(format!("pull {image}"))(e)),
            };
            if let Some(detail) = info.error_detail {
                return Ok(Err(pull_failure(&detail.message.unwrap_or_default())));
            }
            let progress = info.progress_detail.unwrap_or_default();
            on_event(PullEvent {
                layer: info.id,
                current: progress.current.unwrap_or(0).max(0) as u64,
                total: progress.total.unwrap_or(0).max(0) as u64,
            });
        }
        Ok(Ok(()))
    }
}

/// What an engine's words about a failed pull mean: Docker and Podman say "manifest
/// unknown", "not found" or "does not exist" for a tag or repository the registry lacks,
/// and name the dial ("connection refused", "no such host", a timeout) when the registry
/// cannot be reached.
pub fn pull_failure(message: &str) -> PullFailure {
    let text = message.to_lowercase();
    let said = |words: &[&str]| words.iter().any(|w| text.contains(w));
    if said(&[
        "connection refused",
        "no such host",
        "i/o timeout",
        "dial tcp",
        "network is unreachable",
        "server misbehaving",
        "tls handshake",
        "connection reset",
        "timeout exceeded",
    ]) {
        PullFailure::Unreachable(message.trim().to_string())
    } else if said(&[
        "manifest unknown",
        "not found",
        "does not exist",
        "name unknown",
    ]) {
        PullFailure::NotFound
    } else {
        PullFailure::Other(message.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_words_about_a_pull_are_read() {
        // Docker 20.10 and 28, and Podman 5, on a tag the registry lacks.
        for lacking in [
            "manifest for localhost:5000/medic/cht-api:9.9.9 not found: manifest unknown: manifest unknown",
            "reading manifest 9.9.9 in localhost:5000/medic/cht-api: manifest unknown",
            "pull access denied for medic/cht-api, repository does not exist or may require 'docker login'",
        ] {
            assert_eq!(pull_failure(lacking), PullFailure::NotFound, "{lacking}");
        }
        // A registry that is down, or a name that resolves nowhere.
        for down in [
            "Get \"http://localhost:5999/v2/\": dial tcp 127.0.0.1:5999: connect: connection refused",
            "Get \"https://nowhere.invalid/v2/\": dial tcp: lookup nowhere.invalid: no such host",
        ] {
            assert_eq!(
                pull_failure(down),
                PullFailure::Unreachable(down.to_string()),
                "{down}"
            );
        }
        assert_eq!(
            pull_failure(" unauthorized: authentication required "),
            PullFailure::Other("unauthorized: authentication required".into())
        );
    }
}
