//! Images: what is present, what the pull policy asks to pull, and their ids.

use std::collections::BTreeMap;

use futures_util::future::try_join_all;

use super::load::Stacks;
use crate::docker::{Engine, ImageInfo};
use crate::error::{Error, Result};
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
    let pulled = try_join_all(to_pull.iter().map(|image| async move {
        engine
            .pull(image, &|event| reporter.pull(image, &event))
            .await?;
        reporter.pulled(image);
        let info = engine.image(image).await?.ok_or_else(|| {
            Error::engine(
                format!("pull {image}"),
                "the image is still absent after the pull",
            )
        })?;
        Ok::<_, Error>((image.clone(), info))
    }))
    .await?;
    found.extend(pulled);
    Ok(found)
}
