//! What a run creates in Docker — one network, one container per machine — and the guard that
//! removes it all when dropped: at the end of a run, on an error and on a panic.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig,
    NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, ListNetworksOptions, RemoveContainerOptions,
};
use bollard::Docker;

use super::engine::failed;
use super::{LABEL_ALL, LABEL_MACHINE, LABEL_RUN};
use crate::hardware::HardwareError;

/// How many subnets to try before giving up (another network may hold the one drawn).
const SUBNET_ATTEMPTS: u64 = 16;
/// The first machine's host number in the run's /24.
const FIRST_HOST: u32 = 10;
/// The most machines one run's /24 holds.
pub const MAX_MACHINES: u32 = 240;

/// One container to create.
pub struct ContainerSpec {
    /// The machine's index.
    pub machine: u32,
    /// The image tag.
    pub image: String,
    /// The command line after the entrypoint.
    pub cmd: Vec<String>,
    /// `host_dir:container_dir` bind mounts.
    pub binds: Vec<String>,
    /// Its fixed address on the run's network.
    pub ip: Ipv4Addr,
}

/// The run's Docker objects; removes them when dropped unless [`Resources::remove`] already did.
pub struct Resources {
    /// The runtime every Docker call of this run blocks on.
    pub runtime: tokio::runtime::Runtime,
    /// The engine.
    pub docker: Docker,
    run_id: String,
    network: Option<String>,
    containers: Vec<String>,
    removed: bool,
}

impl Resources {
    /// Nothing created yet.
    pub fn new(runtime: tokio::runtime::Runtime, docker: Docker, run_id: &str) -> Self {
        Resources {
            runtime,
            docker,
            run_id: run_id.to_owned(),
            network: None,
            containers: Vec::new(),
            removed: false,
        }
    }

    fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_ALL.to_owned(), "true".to_owned()),
            (LABEL_RUN.to_owned(), self.run_id.clone()),
        ])
    }

    /// Creates the run's bridge network on a /24 of 10.0.0.0/8 drawn from the run id (the next
    /// one if taken); returns its subnet's base address.
    pub fn create_network(&mut self) -> Result<Ipv4Addr, HardwareError> {
        let name = format!("{}-net", self.run_id);
        let mut last_error = String::new();
        for attempt in 0..SUBNET_ATTEMPTS {
            let draw = xxhash_rust::xxh3::xxh3_64(format!("{}/{attempt}", self.run_id).as_bytes());
            let base = Ipv4Addr::new(10, 200 + (draw % 50) as u8, (draw >> 8) as u8, 0);
            let request = NetworkCreateRequest {
                name: name.clone(),
                driver: Some("bridge".into()),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(format!("{base}/24")),
                        gateway: Some(host(base, 1).to_string()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                labels: Some(self.labels()),
                ..Default::default()
            };
            match self.runtime.block_on(self.docker.create_network(request)) {
                Ok(created) => {
                    self.network = Some(created.id);
                    return Ok(base);
                }
                Err(error) => last_error = error.to_string(),
            }
        }
        Err(HardwareError::Infrastructure(format!(
            "Docker could not create the run's network: {last_error}"
        )))
    }

    /// Creates and starts the containers, a few at a time.
    pub fn start_containers(&mut self, specs: Vec<ContainerSpec>) -> Result<(), HardwareError> {
        if self.network.is_none() {
            return Err(HardwareError::Infrastructure(
                "containers need the run's network first".into(),
            ));
        }
        let network = format!("{}-net", self.run_id);
        let docker = self.docker.clone();
        let mut labels = self.labels();
        let run_id = self.run_id.clone();
        let created = self.runtime.block_on(async {
            use futures_util::StreamExt;
            futures_util::stream::iter(specs)
                .map(|spec| {
                    labels.insert(LABEL_MACHINE.to_owned(), spec.machine.to_string());
                    let body = container_body(&spec, &network, labels.clone());
                    let name = format!("{run_id}-m{}", spec.machine);
                    let docker = docker.clone();
                    async move {
                        let options = CreateContainerOptions {
                            name: Some(name.clone()),
                            ..Default::default()
                        };
                        let made = docker
                            .create_container(Some(options), body)
                            .await
                            .map_err(failed("create a machine container"));
                        let started = match &made {
                            Ok(_) => docker
                                .start_container(
                                    &name,
                                    None::<bollard::query_parameters::StartContainerOptions>,
                                )
                                .await
                                .map_err(failed("start a machine container")),
                            Err(_) => Ok(()),
                        };
                        (name, made.map(|_| ()).and(started))
                    }
                })
                .buffer_unordered(8)
                .collect::<Vec<_>>()
                .await
        });
        let mut first_error = None;
        for (name, outcome) in created {
            match outcome {
                Ok(()) => self.containers.push(name),
                Err(error) => {
                    // Maybe created but not started: remove by name all the same.
                    self.containers.push(name);
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Removes the containers (forcibly) and the network, then anything else labelled with
    /// this run. Says what it could not remove.
    pub fn remove(&mut self) -> Result<(), HardwareError> {
        self.removed = true;
        let docker = self.docker.clone();
        let run_label = format!("{LABEL_RUN}={}", self.run_id);
        let names = std::mem::take(&mut self.containers);
        let network = self.network.take();
        self.runtime.block_on(async move {
            let filters = HashMap::from([("label".to_owned(), vec![run_label])]);
            let mut problems = Vec::new();
            remove_containers(&docker, &names, &mut problems).await;
            // Anything else with the run's label (e.g. created but never recorded).
            let listed = docker
                .list_containers(Some(ListContainersOptions {
                    all: true,
                    filters: Some(filters.clone()),
                    ..Default::default()
                }))
                .await
                .unwrap_or_default();
            let stragglers: Vec<String> = listed.into_iter().filter_map(|c| c.id).collect();
            remove_containers(&docker, &stragglers, &mut problems).await;
            let mut networks: Vec<String> = network.into_iter().collect();
            let listed = docker
                .list_networks(Some(ListNetworksOptions {
                    filters: Some(filters),
                }))
                .await
                .unwrap_or_default();
            networks.extend(listed.into_iter().filter_map(|n| n.id));
            networks.sort();
            networks.dedup();
            for id in networks {
                if let Err(error) = docker.remove_network(&id).await {
                    let missing = matches!(
                        error,
                        bollard::errors::Error::DockerResponseServerError {
                            status_code: 404,
                            ..
                        }
                    );
                    if !missing {
                        problems.push(format!("network {id}: {error}"));
                    }
                }
            }
            if problems.is_empty() {
                Ok(())
            } else {
                Err(HardwareError::Infrastructure(format!(
                    "could not remove everything the run created ({}); run `dist-zero clean`",
                    problems.join("; ")
                )))
            }
        })
    }
}

/// Force-removes containers concurrently, noting what could not be removed.
async fn remove_containers(docker: &Docker, names: &[String], problems: &mut Vec<String>) {
    let removals = names.iter().map(|name| async move {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        (name, docker.remove_container(name, Some(options)).await)
    });
    for (name, outcome) in futures_util::future::join_all(removals).await {
        if let Err(error) = outcome {
            if !gone(&error) {
                problems.push(format!("container {name}: {error}"));
            }
        }
    }
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

impl Drop for Resources {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        if let Err(error) = self.remove() {
            tracing::error!(%error, "cleanup after the run failed");
            eprintln!("dist-zero: {error}");
        }
    }
}

/// Host `n` of the /24 starting at `base`.
pub fn host(base: Ipv4Addr, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base) + n)
}

/// Machine `machine`'s address on the run's network.
pub fn machine_ip(base: Ipv4Addr, machine: u32) -> Ipv4Addr {
    host(base, FIRST_HOST + machine)
}

fn container_body(
    spec: &ContainerSpec,
    network: &str,
    labels: HashMap<String, String>,
) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: Some(spec.cmd.clone()),
        labels: Some(labels),
        stop_timeout: Some(2),
        host_config: Some(HostConfig {
            binds: Some(spec.binds.clone()),
            network_mode: Some(network.to_owned()),
            auto_remove: Some(false),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network.to_owned(),
                EndpointSettings {
                    ipam_config: Some(EndpointIpamConfig {
                        ipv4_address: Some(spec.ip.to_string()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_machine_addresses_stay_inside_the_run_subnet() {
        let base = Ipv4Addr::new(10, 201, 7, 0);
        assert_eq!(machine_ip(base, 0), Ipv4Addr::new(10, 201, 7, 10));
        assert_eq!(
            machine_ip(base, MAX_MACHINES - 1),
            Ipv4Addr::new(10, 201, 7, 249)
        );
    }
}
