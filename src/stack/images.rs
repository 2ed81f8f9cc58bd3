//! Images: what is present, what the pull policy asks to pull, and their ids.

use std::collections::BTreeMap;

use futures_util::future::{join_all, try_join_all};

use super::load::Stacks;
use crate::docker::{Engine, ImageInfo};
use crate::error::{Error, PullFailure, Result};
use crate::progress::Reporter;

/// When to pull images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PullPolicy {
    /// Pull only images not present locally.
    Missing,
    /// Pull every image, even when present.
    Always,
    /// Never pull; a missing image is an error.
    Never,
}

/// Checks images against the pull policy, pulls what is needed, and returns every
/// image as present afterwards (by reference).
pub(crate) async fn ensure_images(
    engine: &Engine,
    stacks: &Stacks,
    policy: PullPolicy,
    reporter: &dyn Reporter,
) -> Result<BTreeMap<String, ImageInfo>> {
    let mut images: Vec<String> = stacks
        .main
        .services
        .values()
        .chain(stacks.companion.services.values())
        .map(|s| s.image.clone())
        .collect();
    images.sort();
    images.dedup();
    let present = try_join_all(images.iter().map(|i| engine.image(i))).await?;
    let missing: Vec<String> = images
        .iter()
        .zip(&present)
        .filter(|(_, p)| p.is_none())
        .map(|(i, _)| i.clone())
        .collect();
    let mut found: BTreeMap<String, ImageInfo> = images
        .iter()
        .zip(present)
        .filter_map(|(i, p)| Some((i.clone(), p?)))
        .collect();
    let to_pull = match policy {
        PullPolicy::Never if !missing.is_empty() => {
            return Err(Error::MissingImages { images: missing });
        }
        PullPolicy::Never => Vec::new(),
        PullPolicy::Missing => missing,
        PullPolicy::Always => images,
    };
    let pulls = join_all(to_pull.iter().map(|image| async move {
        if let Err(failure) = engine
            .pull(image, &|event| reporter.pull(image, &event))
            .await?
        {
            return Ok(Err(failure));
        }
        reporter.pulled(image);
        let info = engine.image(image).await?.ok_or_else(|| {
            Error::engine(
                format!("pull {image}"),
                "the image is still absent after the pull",
            )
        })?;
        Ok::<_, Error>(Ok(info))
    }))
    .await;
    found.extend(settle_pulls(to_pull.into_iter().zip(pulls).collect())?);
    Ok(found)
}

/// Every pull's outcome, in image order, as the images pulled: the first engine failure
/// if any (the engine itself failed), else every image the registry could not give, in one
/// [`Error::PullFailed`], so the user learns all of them at once.
fn settle_pulls<T>(
    outcomes: Vec<(String, Result<std::result::Result<T, PullFailure>>)>,
) -> Result<Vec<(String, T)>> {
    let mut pulled = Vec::new();
    let mut failures = Vec::new();
    for (image, outcome) in outcomes {
        match outcome? {
            Ok(info) => pulled.push((image, info)),
            Err(failure) => failures.push((image, failure)),
        }
    }
    if failures.is_empty() {
        Ok(pulled)
    } else {
        Err(Error::PullFailed { failures })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failed_pull_is_named_at_once_and_an_engine_failure_comes_first() {
        let down =
            || PullFailure::Unreachable("dial tcp 127.0.0.1:5999: connection refused".into());
        let outcomes = vec![
            ("r/a:1".to_string(), Ok(Ok(1))),
            ("r/b:1".to_string(), Ok(Err(PullFailure::NotFound))),
            ("r/c:1".to_string(), Ok(Err(down()))),
            ("r/d:1".to_string(), Ok(Err(PullFailure::NotFound))),
        ];
        let err = settle_pulls(outcomes).expect_err("failures");
        assert_eq!(
            err.to_string(),
            "could not pull 3 images: not in the registry: r/b:1, r/d:1 (check --image-registry and --cht-version, or push them there); could not reach the registry for r/c:1 (dial tcp 127.0.0.1:5999: connection refused): start it or fix --image-registry, or load the images and use --pull never"
        );
        assert_eq!(err.exit_code(), 1);
        assert!(!err.to_string().contains('\n'));

        let engine_down = vec![
            ("r/a:1".to_string(), Ok(Err(PullFailure::NotFound))),
            (
                "r/b:1".to_string(),
                Err(Error::engine("pull r/b:1", "engine gone")),
            ),
        ];
        let err = settle_pulls::<u8>(engine_down).expect_err("engine");
        assert!(matches!(err, Error::Engine { .. }), "{err}");

        let all = settle_pulls(vec![("r/a:1".to_string(), Ok(Ok(7u8)))]).expect("pulled");
        assert_eq!(all, [("r/a:1".to_string(), 7)]);
    }
}
