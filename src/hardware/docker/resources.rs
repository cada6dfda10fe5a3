//! What a run creates in Docker — one network, one container per machine — and the guard that
//! removes it all when dropped: at the end of a run, on an error and on a panic.
//!
//! The run's network is a /24 of 10.200.0.0–10.249.255.255 that no other Docker network holds
//! (Docker refuses overlapping pools; another is drawn) and that no route of this host covers
//! (so a VPN or LAN in that range is never shadowed). Machines take hosts 10 to 249 of it, so a
//! run has at most [`MAX_MACHINES`] (240) machines.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig,
    NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, ListNetworksOptions, RemoveContainerOptions,
    WaitContainerOptions,
};
use bollard::Docker;

use super::engine::failed;
use super::owner::Owner;
use super::{LABEL_ALL, LABEL_MACHINE, LABEL_RUN};
use crate::hardware::HardwareError;

/// How many containers are created, waited for or removed at once: the engine mishandles a
/// crowd (at a few hundred concurrent removals Docker 20.10 was seen to lose count of a network's
/// endpoints, leaving a network it refuses to remove until it restarts).
const DOCKER_CONCURRENCY: usize = 8;
/// How long stopped machines have to exit before their containers are removed.
const EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// How often a network that still has endpoints is asked again (every 250 ms).
const NETWORK_REMOVAL_ATTEMPTS: u32 = 40;
/// Every how many refused removals of a network its endpoints are disconnected by force.
const FORCE_DISCONNECT_EVERY: u32 = 8;
/// How many subnets to try before giving up (another network may hold the one drawn).
const SUBNET_ATTEMPTS: u64 = 16;
/// The prefix length of a run's subnet.
const SUBNET_PREFIX: u32 = 24;
/// The first machine's host number in the run's subnet (the gateway is host 1).
const FIRST_HOST: u32 = 10;
/// The most machines one run has: its /24 holds hosts 10 to 249 for them.
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
    owner: Option<Owner>,
    memory_mib: u64,
    network: Option<String>,
    containers: Vec<String>,
    removed: bool,
}

impl Resources {
    /// Nothing created yet. Containers will get a `memory_mib` MiB memory limit; everything
    /// will be labelled with this process as its owner.
    pub fn new(
        runtime: tokio::runtime::Runtime,
        docker: Docker,
        run_id: &str,
        memory_mib: u64,
    ) -> Self {
        Resources {
            runtime,
            docker,
            run_id: run_id.to_owned(),
            owner: Owner::this_process(),
            memory_mib,
            network: None,
            containers: Vec::new(),
            removed: false,
        }
    }

    fn labels(&self) -> HashMap<String, String> {
        let mut labels = HashMap::from([
            (LABEL_ALL.to_owned(), "true".to_owned()),
            (LABEL_RUN.to_owned(), self.run_id.clone()),
        ]);
        labels.extend(self.owner.iter().flat_map(Owner::labels));
        labels
    }

    /// Creates the run's bridge network on a /24 drawn from the run id (another if Docker or a
    /// host route has it); returns its subnet's base address.
    pub fn create_network(&mut self) -> Result<Ipv4Addr, HardwareError> {
        let name = format!("{}-net", self.run_id);
        let routes = host_routes();
        let mut last_error = String::from("every subnet drawn is routed on this host");
        for attempt in 0..SUBNET_ATTEMPTS {
            let draw = xxhash_rust::xxh3::xxh3_64(format!("{}/{attempt}", self.run_id).as_bytes());
            let base = subnet(draw);
            if let Some(route) = routes
                .iter()
                .find(|route| route.overlaps(base, SUBNET_PREFIX))
            {
                tracing::debug!(%base, ?route, "subnet is routed on this host; drawing another");
                continue;
            }
            let request = NetworkCreateRequest {
                name: name.clone(),
                driver: Some("bridge".into()),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(format!("{base}/{SUBNET_PREFIX}")),
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
        let memory_mib = self.memory_mib;
        let created = self.runtime.block_on(async {
            use futures_util::StreamExt;
            futures_util::stream::iter(specs)
                .map(|spec| {
                    labels.insert(LABEL_MACHINE.to_owned(), spec.machine.to_string());
                    let body = container_body(&spec, &network, labels.clone(), memory_mib);
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
                .buffer_unordered(DOCKER_CONCURRENCY)
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

    /// Waits (a few seconds at most) until the run's containers are no longer running, so that
    /// removing them does not race with their exits.
    pub async fn wait_exited(&self) {
        use futures_util::StreamExt;
        let waits = futures_util::stream::iter(&self.containers)
            .map(|name| async move {
                let options = WaitContainerOptions {
                    condition: "not-running".into(),
                };
                // An exit code other than 0 comes back as an error: either way it has exited.
                let _ = self.docker.wait_container(name, Some(options)).next().await;
            })
            .buffer_unordered(DOCKER_CONCURRENCY)
            .collect::<Vec<()>>();
        let _ = tokio::time::timeout(EXIT_WAIT, waits).await;
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
            // One endpoint at a time: the engine counts a network's endpoints in one record, and
            // concurrent removals of endpoints on one network can lose a decrement (moby#42119),
            // leaving a network it refuses to remove. Containers without endpoints are then
            // removed concurrently.
            if let Some(network) = &network {
                for name in &names {
                    let request = bollard::models::NetworkDisconnectRequest {
                        container: Some(name.clone()),
                        force: Some(true),
                    };
                    let _ = docker.disconnect_network(network, request).await;
                }
            }
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
            let known: Vec<String> = names.iter().chain(&stragglers).cloned().collect();
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
                if let Err(error) = remove_network(&docker, &id, &known).await {
                    problems.push(format!("network {id}: {error}"));
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
    use futures_util::StreamExt;
    let outcomes: Vec<_> = futures_util::stream::iter(names)
        .map(|name| async move {
            let options = RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            };
            (name, docker.remove_container(name, Some(options)).await)
        })
        .buffer_unordered(DOCKER_CONCURRENCY)
        .collect()
        .await;
    for (name, outcome) in outcomes {
        if let Err(error) = outcome {
            if !gone(&error) {
                problems.push(format!("container {name}: {error}"));
            }
        }
    }
}

/// Removes a network (a missing one is not an error). The engine may still count endpoints of
/// containers it has just removed; it is asked again for a few seconds. If it still refuses,
/// every container that was ever on the network (`known`, by name, and those the engine lists) is
/// disconnected by force first: that frees the endpoints an engine lost count of after racing
/// removals (moby#42119), which otherwise hold the network until the engine restarts.
pub(crate) async fn remove_network(
    docker: &Docker,
    id: &str,
    known: &[String],
) -> Result<(), bollard::errors::Error> {
    let mut attempts = 0;
    loop {
        match docker.remove_network(id).await {
            Ok(()) => return Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 403, ..
            }) if attempts < NETWORK_REMOVAL_ATTEMPTS => {
                attempts += 1;
                if attempts % FORCE_DISCONNECT_EVERY == 0 {
                    force_disconnect(docker, id, known).await;
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Disconnects by force every container `known` to have been on network `id` and every one the
/// engine still lists there (errors ignored: most are no longer connected).
async fn force_disconnect(docker: &Docker, id: &str, known: &[String]) {
    let mut names: Vec<String> = known.to_vec();
    if let Ok(network) = docker
        .inspect_network(id, None::<bollard::query_parameters::InspectNetworkOptions>)
        .await
    {
        for (container, endpoint) in network.containers.unwrap_or_default() {
            names.push(container);
            names.extend(endpoint.name);
        }
    }
    names.sort();
    names.dedup();
    for name in names {
        let request = bollard::models::NetworkDisconnectRequest {
            container: Some(name),
            force: Some(true),
        };
        let _ = docker.disconnect_network(id, request).await;
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

/// Host `n` of the subnet starting at `base`.
pub fn host(base: Ipv4Addr, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base) + n)
}

/// The /24 a draw picks: 10.200.0.0 to 10.249.255.0.
fn subnet(draw: u64) -> Ipv4Addr {
    Ipv4Addr::new(10, 200 + (draw % 50) as u8, (draw >> 8) as u8, 0)
}

/// One destination of this host's routing table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Route {
    destination: u32,
    mask: u32,
}

impl Route {
    /// Whether this route's destination and the subnet `base/prefix` share an address.
    fn overlaps(&self, base: Ipv4Addr, prefix: u32) -> bool {
        let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
        let common = self.mask & mask;
        self.destination & common == u32::from(base) & common
    }
}

/// This host's routes other than the default one (none if `/proc/net/route` cannot be read, as
/// when Docker runs elsewhere; Docker still refuses subnets its own networks hold).
fn host_routes() -> Vec<Route> {
    std::fs::read_to_string("/proc/net/route")
        .map(|table| parse_routes(&table))
        .unwrap_or_default()
}

/// Parses `/proc/net/route`: addresses are hex words in the host's byte order.
fn parse_routes(table: &str) -> Vec<Route> {
    let word = |hex: &str| {
        u32::from_str_radix(hex, 16)
            .ok()
            .map(|value| u32::from_be_bytes(value.to_ne_bytes()))
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let destination = word(fields.get(1)?)?;
            let mask = word(fields.get(7)?)?;
            (mask != 0).then_some(Route { destination, mask })
        })
        .collect()
}

/// Machine `machine`'s address on the run's network.
pub fn machine_ip(base: Ipv4Addr, machine: u32) -> Ipv4Addr {
    host(base, FIRST_HOST + machine)
}

fn container_body(
    spec: &ContainerSpec,
    network: &str,
    labels: HashMap<String, String>,
    memory_mib: u64,
) -> ContainerCreateBody {
    let memory = i64::try_from(memory_mib.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX);
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: Some(spec.cmd.clone()),
        labels: Some(labels),
        stop_timeout: Some(2),
        host_config: Some(HostConfig {
            binds: Some(spec.binds.clone()),
            network_mode: Some(network.to_owned()),
            auto_remove: Some(false),
            memory: Some(memory),
            // No swap beyond the limit: a machine that outgrows it is killed and reported.
            memory_swap: Some(memory),
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
        let last = machine_ip(base, MAX_MACHINES - 1);
        assert_eq!(last, Ipv4Addr::new(10, 201, 7, 249));
        let broadcast = host(base, (1 << (32 - SUBNET_PREFIX)) - 1);
        assert!(u32::from(last) < u32::from(broadcast));
    }

    #[test]
    fn virtual_subnets_are_private_and_varied() {
        let mut seen = std::collections::HashSet::new();
        for draw in 0..5000u64 {
            let base = subnet(xxhash_rust::xxh3::xxh3_64(&draw.to_le_bytes()));
            let [a, b, _, d] = base.octets();
            assert_eq!((a, d), (10, 0));
            assert!((200..250).contains(&b), "{base}");
            seen.insert(base);
        }
        assert!(seen.len() > 4000, "only {} subnets drawn", seen.len());
    }

    #[test]
    fn virtual_subnets_under_a_host_route_are_recognised() {
        let table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            tun0\t0000CA0A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
            br-1\t0004C90A\t00000000\t0001\t0\t0\t0\t00FCFFFF\t0\t0\t0\n";
        let routes = parse_routes(table);
        assert_eq!(routes.len(), 2, "the default route is skipped: {routes:?}");
        let routed = |base: [u8; 4]| {
            routes
                .iter()
                .any(|route| route.overlaps(Ipv4Addr::from(base), SUBNET_PREFIX))
        };
        assert!(routed([10, 202, 100, 0]), "inside 10.202.0.0/16");
        assert!(routed([10, 201, 6, 0]), "inside 10.201.4.0/22");
        assert!(!routed([10, 201, 8, 0]));
        assert!(!routed([10, 203, 0, 0]));
        assert!(parse_routes("header only\n").is_empty());
        assert!(parse_routes("h\nbroken line\n").is_empty());
    }
}
