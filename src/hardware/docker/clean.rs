//! `dist-zero clean`: removes the containers and networks of runs whose runner is gone, and the
//! machine images when no run is left that may use them; says what it left and why.
//!
//! A run's resources carry its runner's identity ([`super::owner`]). A run whose runner still
//! runs is in progress and is left alone, as is one whose runner cannot be judged from here (it
//! ran on another host, or was made by a DistZero that did not record its runner); `--all`
//! removes those too, and every image.

use std::collections::{BTreeMap, HashMap};

use bollard::query_parameters::{
    ListContainersOptions, ListImagesOptions, ListNetworksOptions, RemoveContainerOptions,
    RemoveImageOptions,
};
use bollard::Docker;

use super::engine::{self, failed};
use super::owner::{Liveness, Owner};
use super::resources::remove_network;
use super::{LABEL_ALL, LABEL_RUN};
use crate::hardware::HardwareError;

/// What [`clean`] should consider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanOptions {
    /// Remove runs still in progress (killing them) and runs that cannot be judged, and every
    /// image.
    pub all: bool,
    /// Only this run's containers and networks (images are then left alone).
    pub run: Option<String>,
}

/// Something [`clean`] did not remove, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    /// What: `run <id>` or `image <tag>`.
    pub what: String,
    /// Why, ending with what would remove it.
    pub why: String,
}

/// What [`clean`] removed and what it left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// Container names.
    pub containers: Vec<String>,
    /// Network names.
    pub networks: Vec<String>,
    /// Image tags (or ids, for untagged ones).
    pub images: Vec<String>,
    /// What was left on purpose.
    pub left: Vec<Left>,
    /// What could not be removed, with Docker's reason.
    pub failed: Vec<String>,
}

impl Cleaned {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
            && self.networks.is_empty()
            && self.images.is_empty()
            && self.left.is_empty()
            && self.failed.is_empty()
    }
}

/// One run's containers and networks, as found.
#[derive(Default)]
struct Run {
    /// (id, name) pairs.
    containers: Vec<(String, String)>,
    /// (id, name) pairs.
    networks: Vec<(String, String)>,
    owner: Option<Owner>,
}

/// Removes what `options` asks for from the engine at `docker_host`: containers first
/// (forcibly), then networks, then images.
pub fn clean(docker_host: &str, options: &CleanOptions) -> Result<Cleaned, HardwareError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| HardwareError::Io {
            action: "start a runtime".into(),
            source,
        })?;
    runtime.block_on(async {
        let docker = engine::connect(docker_host).await?;
        let mut cleaned = Cleaned::default();
        let runs = find_runs(&docker, options).await?;
        let mut runs_left = 0;
        for (run_id, run) in runs {
            let verdict = match (&run.owner, options.all) {
                (_, true) => Ok(None),
                (Some(owner), false) => match owner.liveness() {
                    Liveness::Gone(why) => Ok(Some(why)),
                    Liveness::Alive(why) | Liveness::Unknown(why) => Err(why),
                },
                (None, false) => Err("it does not record its runner (an older DistZero made \
                                      it, or it was not made by a run)"
                    .to_owned()),
            };
            match verdict {
                Ok(why) => {
                    if let Some(why) = why {
                        tracing::info!(run = %run_id, %why, "removing a leaked run");
                    }
                    remove_run(&docker, &run, &mut cleaned).await;
                }
                Err(why) => {
                    runs_left += 1;
                    cleaned.left.push(Left {
                        what: format!("run {run_id}"),
                        why: format!("{why}; use --all to remove it"),
                    });
                }
            }
        }
        if options.run.is_none() {
            clean_images(&docker, options.all, runs_left, &mut cleaned).await?;
        }
        Ok(cleaned)
    })
}

/// Every DistZero container and network (of one run, if asked), grouped by run.
async fn find_runs(
    docker: &Docker,
    options: &CleanOptions,
) -> Result<BTreeMap<String, Run>, HardwareError> {
    let mut labels = vec![format!("{LABEL_ALL}=true")];
    if let Some(run) = &options.run {
        labels.push(format!("{LABEL_RUN}={run}"));
    }
    let filters = Some(HashMap::from([("label".to_owned(), labels)]));
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: filters.clone(),
            ..Default::default()
        }))
        .await
        .map_err(failed("list containers"))?;
    let networks = docker
        .list_networks(Some(ListNetworksOptions { filters }))
        .await
        .map_err(failed("list networks"))?;

    let mut runs: BTreeMap<String, Run> = BTreeMap::new();
    for container in containers {
        let Some(id) = container.id else { continue };
        let name = container
            .names
            .and_then(|names| names.into_iter().next())
            .map_or_else(|| id.clone(), |n| n.trim_start_matches('/').to_owned());
        let labels = container.labels.unwrap_or_default();
        entry(&mut runs, &labels).containers.push((id, name));
    }
    for network in networks {
        let Some(id) = network.id else { continue };
        let name = network.name.unwrap_or_else(|| id.clone());
        let labels = network.labels.unwrap_or_default();
        entry(&mut runs, &labels).networks.push((id, name));
    }
    Ok(runs)
}

/// The run a resource's labels name, noting its owner if this is the first to name one.
fn entry<'a>(runs: &'a mut BTreeMap<String, Run>, labels: &HashMap<String, String>) -> &'a mut Run {
    let run_id = labels
        .get(LABEL_RUN)
        .cloned()
        .unwrap_or_else(|| "without a run label".to_owned());
    let run = runs.entry(run_id).or_default();
    if run.owner.is_none() {
        run.owner = Owner::from_labels(labels);
    }
    run
}

/// Removes one run's containers (forcibly: a running one is killed), then its networks.
async fn remove_run(docker: &Docker, run: &Run, cleaned: &mut Cleaned) {
    for (id, name) in &run.containers {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match docker.remove_container(id, Some(options)).await {
            Ok(()) => cleaned.containers.push(name.clone()),
            // Removed meanwhile (e.g. by the run that made it).
            Err(error) if gone(&error) => {}
            Err(error) => cleaned.failed.push(format!("container {name}: {error}")),
        }
    }
    // Every container of the run, by name: the engine may still count an endpoint of one it has
    // just removed, which a forced disconnect by name frees.
    let known: Vec<String> = run
        .containers
        .iter()
        .map(|(_, name)| name.clone())
        .collect();
    for (id, name) in &run.networks {
        match remove_network(docker, id, &known).await {
            Ok(()) => cleaned.networks.push(name.clone()),
            Err(error) => {
                let hint = if matches!(
                    error,
                    bollard::errors::Error::DockerResponseServerError {
                        status_code: 403,
                        ..
                    }
                ) {
                    " (with no container left on it, the engine has lost count of its endpoints, \
                     moby#42119; restarting the engine frees it)"
                } else {
                    ""
                };
                cleaned
                    .failed
                    .push(format!("network {name}: {error}{hint}"));
            }
        }
    }
}

/// Removes untagged DistZero images (unless a container uses one), and the tagged ones when no
/// run was left (`all`: every one, forcibly).
async fn clean_images(
    docker: &Docker,
    all: bool,
    runs_left: usize,
    cleaned: &mut Cleaned,
) -> Result<(), HardwareError> {
    let images = docker
        .list_images(Some(ListImagesOptions {
            all: false,
            filters: Some(HashMap::from([(
                "label".to_owned(),
                vec![format!("{LABEL_ALL}=true")],
            )])),
            ..Default::default()
        }))
        .await
        .map_err(failed("list images"))?;
    for image in images {
        let tags: Vec<String> = image
            .repo_tags
            .into_iter()
            .filter(|tag| tag != "<none>:<none>")
            .collect();
        if tags.is_empty() {
            let options = RemoveImageOptions {
                force: all,
                ..Default::default()
            };
            match docker.remove_image(&image.id, Some(options), None).await {
                Ok(_) => cleaned.images.push(image.id),
                Err(error) if missing(&error) => {}
                Err(error) => cleaned.left.push(Left {
                    what: format!("image {}", image.id),
                    why: format!("{error}; use --all to remove it"),
                }),
            }
            continue;
        }
        for tag in tags {
            if !all && runs_left > 0 {
                cleaned.left.push(Left {
                    what: format!("image {tag}"),
                    why: "the runs left may use it; use --all to remove it".to_owned(),
                });
                continue;
            }
            let options = RemoveImageOptions {
                force: all,
                ..Default::default()
            };
            match docker.remove_image(&tag, Some(options), None).await {
                Ok(_) => cleaned.images.push(tag),
                Err(error) if missing(&error) => {}
                Err(error) => cleaned.left.push(Left {
                    what: format!("image {tag}"),
                    why: format!("{error}; use --all to remove it"),
                }),
            }
        }
    }
    Ok(())
}

/// Whether an error says the object is already gone or going (404, or 409 removal in progress).
fn gone(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        }
    )
}

/// Whether an error says the object does not exist (any more).
fn missing(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
