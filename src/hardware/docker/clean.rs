//! `dist-zero clean`: removes every container, network and image an earlier run left behind,
//! found by the `dist-zero=true` label.

use std::collections::HashMap;

use bollard::query_parameters::{
    ListContainersOptions, ListImagesOptions, ListNetworksOptions, RemoveContainerOptions,
    RemoveImageOptions,
};

use super::engine::{self, failed};
use super::LABEL_ALL;
use crate::hardware::HardwareError;

/// What [`clean`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// Container names.
    pub containers: Vec<String>,
    /// Network names.
    pub networks: Vec<String>,
    /// Image tags (or ids, for untagged ones).
    pub images: Vec<String>,
}

impl Cleaned {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty() && self.images.is_empty()
    }
}

/// Removes everything labelled `dist-zero=true` from the engine at `docker_host`: containers
/// first (forcibly), then networks, then images.
pub fn clean(docker_host: &str) -> Result<Cleaned, HardwareError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| HardwareError::Infrastructure(format!("cannot start a runtime: {e}")))?;
    runtime.block_on(async {
        let docker = engine::connect(docker_host).await?;
        let filters = Some(HashMap::from([(
            "label".to_owned(),
            vec![format!("{LABEL_ALL}=true")],
        )]));
        let mut cleaned = Cleaned::default();

        let containers = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: filters.clone(),
                ..Default::default()
            }))
            .await
            .map_err(failed("list containers"))?;
        for container in containers {
            let Some(id) = container.id else { continue };
            let name = container
                .names
                .and_then(|names| names.into_iter().next())
                .map_or_else(|| id.clone(), |n| n.trim_start_matches('/').to_owned());
            let options = RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            };
            match docker.remove_container(&id, Some(options)).await {
                Ok(()) => cleaned.containers.push(name),
                // Removed meanwhile (e.g. by the run that made it).
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404 | 409,
                    ..
                }) => {}
                Err(error) => return Err(failed("remove a container")(error)),
            }
        }

        let networks = docker
            .list_networks(Some(ListNetworksOptions {
                filters: filters.clone(),
            }))
            .await
            .map_err(failed("list networks"))?;
        for network in networks {
            let Some(id) = network.id else { continue };
            docker
                .remove_network(&id)
                .await
                .map_err(failed("remove a network"))?;
            cleaned.networks.push(network.name.unwrap_or(id));
        }

        let images = docker
            .list_images(Some(ListImagesOptions {
                all: false,
                filters,
                ..Default::default()
            }))
            .await
            .map_err(failed("list images"))?;
        for image in images {
            let name = image
                .repo_tags
                .first()
                .cloned()
                .unwrap_or_else(|| image.id.clone());
            let options = RemoveImageOptions {
                force: true,
                ..Default::default()
            };
            match docker.remove_image(&image.id, Some(options), None).await {
                Ok(_) => cleaned.images.push(name),
                // Already removed along with another tag of the same image.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => {}
                Err(error) => return Err(failed("remove an image")(error)),
            }
        }
        Ok(cleaned)
    })
}
