//! A local stand-in for the instances an EC2 emulator (moto) only pretends to run.
//!
//! The [`Realizer`] first creates a Docker network with the run's subnet range (before any
//! instance exists), then watches the emulator: for every DistZero instance it reports running
//! in that range, it starts a container at the instance's private address and runs the
//! instance's user data in it; when the instance stops, it kills the container (kept, with its
//! file system: the instance's root volume), and starts it again when the instance runs again,
//! which then runs cloud-init's per-boot scripts instead of the user data, as a second boot on
//! EC2 does; when the instance terminates, it removes the container. One task, the watch loop,
//! does every one of these container operations, one after another. The image is `FROM scratch`
//! plus a static busybox (Debian's `busybox-static`), which gives the user data a shell, `wget`
//! and `sha256sum`.
//!
//! The emulator listens on 127.0.0.1 only. So that the user data's presigned URL
//! (`http://127.0.0.1:<port>/...`) works unchanged inside a container, the realizer relays the
//! network's gateway address (the host's side of the network it created) to the emulator, and each
//! container relays its own loopback port to that gateway. No packet goes anywhere but to
//! 127.0.0.1, the realizer's own network and its own containers.
//!
//! [`Emulator`] starts moto's server and a realizer together (`dist-zero cloud-emulator`).

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, InstanceAttributeName, InstanceStateName};
use base64::Engine as _;
use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig,
    NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    BuildImageOptions, CreateContainerOptions, ListContainersOptions, ListNetworksOptions,
    RemoveContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::net::{TcpListener, TcpStream};

use super::aws::{api, Clients, TAG_ALL, TAG_RUN};
use super::bootstrap::PER_BOOT_DIR;
use super::Subnet;
use crate::hardware::docker::engine::{self, DockerError};
use crate::hardware::docker::{remove_network, LABEL_ALL, LABEL_RUN};
use crate::hardware::HardwareError;
use crate::settings::{CloudSettings, Secret, Settings};

/// Label on the realizer's network, its value the subnet: the runner checks for it.
pub const LABEL_REALIZER: &str = "dist-zero.realizer";
/// Label on a realized container naming its instance.
pub const LABEL_INSTANCE: &str = "dist-zero.instance";
/// Where Debian's `busybox-static` puts the binary.
pub const BUSYBOX: &str = "/bin/busybox";
/// The fake access key id the emulator's settings carry.
pub const EMULATOR_KEY_ID: &str = "AKIDDISTZEROEMULATOR";
/// The fake secret key the emulator's settings carry.
pub const EMULATOR_SECRET: &str = "dist-zero-emulator-secret";
/// How many looks the realizer tries to realize one instance before giving up on it (at
/// least a minute and a half, for a container being removed under load).
const REALIZE_ATTEMPTS: u32 = 300;
/// Where a realized container keeps its user data, as cloud-init does: its presence means the
/// first boot has happened.
const USER_DATA: &str = "/var/lib/cloud/instance/user-data.txt";
/// How often the realizer asks the emulator what runs.
const POLL: Duration = Duration::from_millis(300);

const DOCKERFILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n";

fn failed(what: &'static str) -> impl Fn(bollard::errors::Error) -> HardwareError {
    move |source| DockerError::hardware(format!("{what} for the realizer"), source)
}

/// The gateway of the realizer network for `subnet`; an error if there is none, so that the
/// runner never sends a packet to a private address that is not one of its own containers.
pub async fn gateway_for(docker_host: &str, subnet: Subnet) -> Result<Ipv4Addr, HardwareError> {
    let missing = || {
        HardwareError::Unavailable(format!(
            "AWS_ENDPOINT_URL points at an emulator but no realizer network holds {subnet}; start `dist-zero cloud-emulator` (docs/cloud-mode.md, Cloud mode on your laptop) and use the DIST_ZERO_CLOUD_SUBNET it prints"
        ))
    };
    let docker = engine::connect(docker_host).await?;
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![format!("{LABEL_REALIZER}={subnet}")],
    )]);
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(failed("list networks"))?;
    for network in networks {
        let configs = network.ipam.and_then(|i| i.config).unwrap_or_default();
        for config in configs {
            if config.subnet.as_deref() == Some(subnet.to_string().as_str()) {
                if let Some(gateway) = config.gateway.and_then(|g| g.parse().ok()) {
                    return Ok(gateway);
                }
            }
        }
    }
    Err(missing())
}

/// Every IPv4 range Docker's networks hold on this host.
async fn taken_ranges(docker: &Docker) -> Result<Vec<Subnet>, HardwareError> {
    let networks = docker
        .list_networks(None::<ListNetworksOptions>)
        .await
        .map_err(failed("list networks"))?;
    Ok(networks
        .into_iter()
        .flat_map(|n| n.ipam.and_then(|i| i.config).unwrap_or_default())
        .filter_map(|c| c.subnet)
        .filter_map(|s| {
            let (ip, prefix) = s.split_once('/')?;
            Some(Subnet {
                base: ip.parse().ok()?,
                prefix: prefix.parse().ok()?,
            })
        })
        .collect())
}

fn overlaps(a: Subnet, b: Subnet) -> bool {
    let prefix = a.prefix.min(b.prefix);
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    };
    u32::from(a.base) & mask == u32::from(b.base) & mask
}

/// The containers the realizer started, by instance id.
type Realized = Arc<Mutex<HashMap<String, String>>>;
/// The name of every container the realizer ever created (to free the network of each at the end).
type Created = Arc<Mutex<Vec<String>>>;
/// How long a stopping realizer waits for the watch loop to finish the look it is taking.
const WATCH_STOP_WAIT: Duration = Duration::from_secs(30);

/// A running realizer: its network, its relay, its watch loop. Removes its containers and
/// network when stopped or dropped.
pub struct Realizer {
    runtime: tokio::runtime::Runtime,
    docker: Docker,
    id: String,
    network: Option<String>,
    subnet: Subnet,
    gateway: Ipv4Addr,
    realized: Realized,
    created: Created,
    stop_watch: tokio::sync::watch::Sender<bool>,
    watch: Option<tokio::task::JoinHandle<()>>,
    relay: Option<tokio::task::JoinHandle<()>>,
}

impl Realizer {
    /// Creates the network on a free /24 of 10.96.0.0/11 (or on `subnet` if given), builds the
    /// busybox image, and starts watching the emulator the settings point at.
    pub fn start(settings: &Settings, subnet: Option<Subnet>) -> Result<Self, HardwareError> {
        let endpoint = settings.cloud.endpoint_url.clone().ok_or_else(|| {
            HardwareError::Unavailable(
                "the realizer needs AWS_ENDPOINT_URL pointing at a local emulator".into(),
            )
        })?;
        let port = loopback_port(&endpoint).ok_or_else(|| {
            HardwareError::Unavailable(format!(
                "the realizer only works with an emulator on 127.0.0.1 (AWS_ENDPOINT_URL={endpoint})"
            ))
        })?;
        let runtime = crate::hardware::remote::runtime()?;
        let docker = runtime.block_on(engine::connect(&settings.docker_host))?;
        let id = format!("dz-realizer-{}", crate::hardware::docker::new_run_id());
        let mut realizer = Realizer {
            runtime,
            docker,
            id,
            network: None,
            subnet: Subnet {
                base: Ipv4Addr::UNSPECIFIED,
                prefix: 32,
            },
            gateway: Ipv4Addr::UNSPECIFIED,
            realized: Arc::default(),
            created: Arc::default(),
            stop_watch: tokio::sync::watch::Sender::new(false),
            watch: None,
            relay: None,
        };
        realizer.create_network(subnet)?;
        let image = realizer.runtime.block_on(build_image(&realizer.docker))?;
        let clients = realizer
            .runtime
            .block_on(Clients::new(&settings.cloud, None))?;
        let relay = realizer.runtime.block_on(async {
            TcpListener::bind(SocketAddr::from((realizer.gateway, port)))
                .await
                .map_err(|source| HardwareError::Io {
                    action: format!("listen on {}:{port} for the realizer", realizer.gateway),
                    source,
                })
        })?;
        let target = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        realizer.relay = Some(realizer.runtime.spawn(relay_to(relay, target)));
        let watch = Watch {
            clients,
            docker: realizer.docker.clone(),
            image,
            network: format!("{}-net", realizer.id),
            subnet: realizer.subnet,
            gateway: realizer.gateway,
            port,
            realized: Arc::clone(&realizer.realized),
            created: Arc::clone(&realizer.created),
        };
        let stopped = realizer.stop_watch.subscribe();
        realizer.watch = Some(realizer.runtime.spawn(watch.run(stopped)));
        Ok(realizer)
    }

    fn create_network(&mut self, wanted: Option<Subnet>) -> Result<(), HardwareError> {
        let taken = self.runtime.block_on(taken_ranges(&self.docker))?;
        let candidates: Vec<Subnet> = match wanted {
            Some(subnet) => vec![subnet],
            None => {
                let draw = xxhash_rust::xxh3::xxh3_64(self.id.as_bytes());
                (0..64u64)
                    .map(|i| {
                        let n = (draw.wrapping_add(i.wrapping_mul(0x9E37_79B9))) % (32 * 256);
                        let (second, third) = (96 + (n / 256) as u8, (n % 256) as u8);
                        Subnet {
                            base: Ipv4Addr::new(10, second, third, 0),
                            prefix: 24,
                        }
                    })
                    .collect()
            }
        };
        let mut last_error = String::from("every candidate range is taken");
        for subnet in candidates {
            if taken.iter().any(|t| overlaps(*t, subnet)) {
                continue;
            }
            let gateway = Ipv4Addr::from(u32::from(subnet.base) + 1);
            let request = NetworkCreateRequest {
                name: format!("{}-net", self.id),
                driver: Some("bridge".into()),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(subnet.to_string()),
                        gateway: Some(gateway.to_string()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                labels: Some(HashMap::from([
                    (LABEL_ALL.to_owned(), "true".to_owned()),
                    (LABEL_RUN.to_owned(), self.id.clone()),
                    (LABEL_REALIZER.to_owned(), subnet.to_string()),
                ])),
                ..Default::default()
            };
            match self.runtime.block_on(self.docker.create_network(request)) {
                Ok(created) => {
                    self.network = Some(created.id);
                    self.subnet = subnet;
                    self.gateway = gateway;
                    return Ok(());
                }
                Err(error) => last_error = error.to_string(),
            }
        }
        Err(HardwareError::Infrastructure(format!(
            "realizer: Docker could not create a network: {last_error}"
        )))
    }

    /// The subnet a run must use (`DIST_ZERO_CLOUD_SUBNET`).
    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    /// The instances it has realized and not yet removed, with their containers.
    pub fn containers(&self) -> HashMap<String, String> {
        self.realized.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Kills the container realizing `instance` (a machine dying under its runner).
    pub fn kill(&self, instance: &str) -> Result<(), HardwareError> {
        let container =
            self.containers().get(instance).cloned().ok_or_else(|| {
                HardwareError::Infrastructure(format!("{instance} is not realized"))
            })?;
        self.runtime
            .block_on(self.docker.kill_container(
                &container,
                None::<bollard::query_parameters::KillContainerOptions>,
            ))
            .map_err(failed("kill a container"))
    }

    /// Stops watching, removes every container it started and its network.
    pub fn stop(mut self) -> Result<(), HardwareError> {
        self.shutdown()
    }

    /// Lets the watch loop finish the look it is taking (a container removal it started must not
    /// race this one: two removals of one container can leave the engine counting an endpoint
    /// that no longer exists), then removes what is left.
    fn shutdown(&mut self) -> Result<(), HardwareError> {
        self.stop_watch.send_replace(true);
        if let Some(watch) = self.watch.take() {
            let abort = watch.abort_handle();
            let finished = self
                .runtime
                .block_on(async { tokio::time::timeout(WATCH_STOP_WAIT, watch).await });
            if finished.is_err() {
                abort.abort();
            }
        }
        if let Some(relay) = self.relay.take() {
            relay.abort();
        }
        let containers: Vec<String> = self
            .realized
            .lock()
            .map(|mut m| m.drain().map(|(_, c)| c).collect())
            .unwrap_or_default();
        let docker = self.docker.clone();
        let network = self.network.take();
        let mut known = self.created.lock().map(|c| c.clone()).unwrap_or_default();
        let run_label = format!("{LABEL_RUN}={}", self.id);
        self.runtime.block_on(async move {
            let mut problems = Vec::new();
            for container in containers {
                remove_container(&docker, &container, &mut problems).await;
            }
            // Any container left on the network (one started as the watch was stopped).
            if let Some(network) = &network {
                if let Ok(inspected) = docker
                    .inspect_network(
                        network,
                        None::<bollard::query_parameters::InspectNetworkOptions>,
                    )
                    .await
                {
                    for id in inspected.containers.unwrap_or_default().into_keys() {
                        remove_container(&docker, &id, &mut problems).await;
                        known.push(id);
                    }
                }
                if let Err(error) = remove_network(&docker, network, &known).await {
                    problems.push(format!("network {network}: {error}"));
                }
            }
            tracing::debug!(label = %run_label, "realizer stopped");
            if problems.is_empty() {
                Ok(())
            } else {
                Err(HardwareError::Infrastructure(format!(
                    "realizer could not remove everything ({}); run `dist-zero clean`",
                    problems.join("; ")
                )))
            }
        })
    }
}

impl Drop for Realizer {
    fn drop(&mut self) {
        if self.network.is_some() {
            if let Err(error) = self.shutdown() {
                eprintln!("dist-zero: {error}");
            }
        }
    }
}

async fn remove_container(docker: &Docker, container: &str, problems: &mut Vec<String>) {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    if let Err(error) = docker.remove_container(container, Some(options)).await {
        let gone = matches!(
            error,
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404 | 409,
                ..
            }
        );
        if !gone {
            problems.push(format!("container {container}: {error}"));
        }
    }
}

/// The port of `http://127.0.0.1:<port>` (or `localhost`), if that is what `endpoint` is.
fn loopback_port(endpoint: &str) -> Option<u16> {
    let rest = endpoint.strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    matches!(host, "127.0.0.1" | "localhost")
        .then(|| port.parse().ok())
        .flatten()
}

/// Builds (once) the `FROM scratch` image holding the host's static busybox.
async fn build_image(docker: &Docker) -> Result<String, HardwareError> {
    let busybox = std::fs::read(BUSYBOX).map_err(|e| {
        HardwareError::Unavailable(format!(
            "the realizer needs a static busybox at {BUSYBOX} ({e}); install Debian's busybox-static (`apt-get install busybox-static`)"
        ))
    })?;
    let tag = format!(
        "dist-zero-realizer:{:016x}",
        xxhash_rust::xxh3::xxh3_64(&busybox)
    );
    if docker.inspect_image(&tag).await.is_ok() {
        return Ok(tag);
    }
    let tar_error = |source: std::io::Error| HardwareError::Io {
        action: "pack the image".into(),
        source,
    };
    let mut archive = tar::Builder::new(Vec::new());
    for (name, mode, data) in [
        ("Dockerfile", 0o644, DOCKERFILE.as_bytes()),
        ("busybox", 0o755, busybox.as_slice()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        archive
            .append_data(&mut header, name, data)
            .map_err(tar_error)?;
    }
    let context = archive.into_inner().map_err(tar_error)?;
    let options = BuildImageOptions {
        dockerfile: "Dockerfile".into(),
        t: Some(tag.clone()),
        rm: true,
        forcerm: true,
        labels: Some(HashMap::from([(LABEL_ALL.to_owned(), "true".to_owned())])),
        ..Default::default()
    };
    let mut progress = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(step) = progress.next().await {
        let info = step.map_err(failed("build the busybox image"))?;
        if let Some(error) = info.error {
            return Err(HardwareError::Infrastructure(format!(
                "realizer: Docker could not build the busybox image: {error}"
            )));
        }
    }
    Ok(tag)
}

/// Relays every connection on `listener` to `target`.
async fn relay_to(listener: TcpListener, target: SocketAddr) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            tokio::time::sleep(POLL).await;
            continue;
        };
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// The watch loop's state.
struct Watch {
    clients: Clients,
    docker: Docker,
    image: String,
    network: String,
    subnet: Subnet,
    gateway: Ipv4Addr,
    port: u16,
    realized: Realized,
    created: Created,
}

impl Watch {
    /// Looks at the emulator every [`POLL`] until `stopped` turns true; a look under way is
    /// finished first.
    async fn run(self, mut stopped: tokio::sync::watch::Receiver<bool>) {
        let mut failures: HashMap<String, u32> = HashMap::new();
        let mut halted: HashSet<String> = HashSet::new();
        while !*stopped.borrow() {
            if let Err(error) = self.step(&mut failures, &mut halted).await {
                tracing::warn!(%error, "realizer step failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stopped.changed() => {}
            }
        }
    }

    /// One look at the emulator: realize new instances, kill the containers of stopped ones
    /// (`halted` holds them) and start them again when their instances run again, remove
    /// terminated ones. An instance that cannot be realized (its address still held by a
    /// container being removed) is tried again at the next look, [`REALIZE_ATTEMPTS`] times at
    /// most; a container that cannot be killed or started yet, at the next look.
    async fn step(
        &self,
        failures: &mut HashMap<String, u32>,
        halted: &mut HashSet<String>,
    ) -> Result<(), HardwareError> {
        let described = self
            .clients
            .ec2
            .describe_instances()
            .filters(
                Filter::builder()
                    .name(format!("tag:{TAG_ALL}"))
                    .values("true")
                    .build(),
            )
            .send()
            .await
            .map_err(api("DescribeInstances"))?;
        let mut alive = HashSet::new();
        let mut stopped = HashSet::new();
        for instance in described.reservations().iter().flat_map(|r| r.instances()) {
            let (Some(id), Some(ip)) = (
                instance.instance_id(),
                instance
                    .private_ip_address()
                    .and_then(|ip| ip.parse::<Ipv4Addr>().ok()),
            ) else {
                continue;
            };
            if !self.subnet.contains(ip) {
                continue;
            }
            match instance.state().and_then(|s| s.name()) {
                Some(InstanceStateName::Running | InstanceStateName::Pending) => {}
                Some(InstanceStateName::Stopping | InstanceStateName::Stopped) => {
                    stopped.insert(id.to_owned());
                    continue;
                }
                _ => continue,
            }
            alive.insert(id.to_owned());
            let container = self
                .realized
                .lock()
                .map(|m| m.get(id).cloned())
                .unwrap_or_default();
            if let Some(container) = container {
                if halted.contains(id) {
                    self.boot_again(id, &container, halted).await;
                }
                continue;
            }
            if failures.get(id).is_some_and(|n| *n >= REALIZE_ATTEMPTS) {
                continue;
            }
            let run = instance
                .tags()
                .iter()
                .find(|t| t.key() == Some(TAG_RUN))
                .and_then(|t| t.value())
                .unwrap_or("unknown")
                .to_owned();
            // Recorded before the container exists, so that nobody takes the realizer for idle
            // while a container is being created.
            let name = format!("dz-real-{id}");
            if let Ok(mut m) = self.realized.lock() {
                m.insert(id.to_owned(), name.clone());
            }
            if let Err(error) = self.realize(id, ip, &run, &name).await {
                tracing::warn!(instance = id, %error, "cannot realize an instance yet");
                *failures.entry(id.to_owned()).or_default() += 1;
                if let Ok(mut m) = self.realized.lock() {
                    m.remove(id);
                }
            }
        }
        for id in stopped.difference(halted).cloned().collect::<Vec<_>>() {
            let container = self
                .realized
                .lock()
                .map(|m| m.get(&id).cloned())
                .unwrap_or_default();
            if let Some(container) = container {
                self.power_off(&id, &container, halted).await;
            }
        }
        self.shut_down_exited(&alive, halted).await?;
        let ended: Vec<(String, String)> = self
            .realized
            .lock()
            .map(|m| {
                m.iter()
                    .filter(|(id, _)| !alive.contains(*id) && !stopped.contains(*id))
                    .map(|(id, c)| (id.clone(), c.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for (id, container) in ended {
            let mut problems = Vec::new();
            remove_container(&self.docker, &container, &mut problems).await;
            if problems.is_empty() {
                halted.remove(&id);
                if let Ok(mut m) = self.realized.lock() {
                    m.remove(&id);
                }
            }
        }
        Ok(())
    }

    /// A stopped instance loses power: its container is killed (SIGKILL, no clean shutdown)
    /// and kept, file system and address, as EC2 keeps a stopped instance's root volume and
    /// private address. One that is not running any more (its process ended) counts as killed.
    async fn power_off(&self, instance: &str, container: &str, halted: &mut HashSet<String>) {
        let killed = self
            .docker
            .kill_container(
                container,
                Some(bollard::query_parameters::KillContainerOptions {
                    signal: "SIGKILL".into(),
                }),
            )
            .await;
        match killed {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => {
                tracing::info!(instance, container, "instance stopped: container killed");
                halted.insert(instance.to_owned());
            }
            Err(error) => {
                tracing::warn!(instance, container, %error, "cannot kill a stopped instance's container yet");
            }
        }
    }

    /// A stopped instance that runs again boots again: its container starts again at the same
    /// address on the same file system, and runs the per-boot scripts its first boot wrote.
    async fn boot_again(&self, instance: &str, container: &str, halted: &mut HashSet<String>) {
        let started = self
            .docker
            .start_container(
                container,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await;
        match started {
            Ok(()) => {
                tracing::info!(
                    instance,
                    container,
                    "instance runs again: container started"
                );
                halted.remove(instance);
            }
            Err(error) => {
                tracing::warn!(instance, container, %error, "cannot start a container again yet");
            }
        }
    }

    /// An instance whose container exited (its user data failed, or it powered itself off when
    /// its time to live ran out) shuts down as EC2 would have it: terminated or stopped, as its
    /// `InstanceInitiatedShutdownBehavior` says. The container's last lines go to the log. A
    /// container the realizer killed itself (`halted`: its instance stopped, and is not started
    /// again yet) is not one of them.
    async fn shut_down_exited(
        &self,
        alive: &HashSet<String>,
        halted: &HashSet<String>,
    ) -> Result<(), HardwareError> {
        let filters = HashMap::from([
            (
                "label".to_owned(),
                vec![format!("{LABEL_REALIZER}={}", self.subnet)],
            ),
            ("status".to_owned(), vec!["exited".to_owned()]),
        ]);
        let exited = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(failed("list containers"))?;
        for container in exited {
            let Some(instance) = container
                .labels
                .as_ref()
                .and_then(|labels| labels.get(LABEL_INSTANCE))
                .filter(|instance| alive.contains(*instance) && !halted.contains(*instance))
                .cloned()
            else {
                continue;
            };
            let name = container.id.unwrap_or_default();
            let last_lines = self.last_lines(&name).await;
            tracing::warn!(%instance, %last_lines, "an instance's machine exited; it shuts down");
            let behaviour = self
                .clients
                .ec2
                .describe_instance_attribute()
                .instance_id(&instance)
                .attribute(InstanceAttributeName::InstanceInitiatedShutdownBehavior)
                .send()
                .await
                .map_err(api("DescribeInstanceAttribute"))?;
            let stop = behaviour
                .instance_initiated_shutdown_behavior()
                .and_then(|b| b.value())
                == Some("stop");
            if stop {
                self.clients
                    .ec2
                    .stop_instances()
                    .instance_ids(&instance)
                    .send()
                    .await
                    .map_err(api("StopInstances"))?;
            } else {
                self.clients
                    .ec2
                    .terminate_instances()
                    .instance_ids(&instance)
                    .send()
                    .await
                    .map_err(api("TerminateInstances"))?;
            }
        }
        Ok(())
    }

    /// The last lines a container wrote (for the log; empty if Docker cannot say).
    async fn last_lines(&self, container: &str) -> String {
        let options = bollard::query_parameters::LogsOptions {
            stdout: true,
            stderr: true,
            tail: "20".into(),
            ..Default::default()
        };
        let mut lines = String::new();
        let mut logs = self.docker.logs(container, Some(options));
        while let Some(Ok(chunk)) = logs.next().await {
            lines.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        lines
    }

    /// Starts a container at `ip` running `instance`'s user data.
    async fn realize(
        &self,
        instance: &str,
        ip: Ipv4Addr,
        run: &str,
        name: &str,
    ) -> Result<(), HardwareError> {
        let attribute = self
            .clients
            .ec2
            .describe_instance_attribute()
            .instance_id(instance)
            .attribute(InstanceAttributeName::UserData)
            .send()
            .await
            .map_err(api("DescribeInstanceAttribute"))?;
        let encoded = attribute
            .user_data()
            .and_then(|u| u.value())
            .unwrap_or_default();
        let script = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                HardwareError::Infrastructure(format!("{instance}: user data is not base64 text"))
            })?;
        if !script.contains(super::bootstrap::MARKER) {
            return Err(HardwareError::Infrastructure(format!(
                "{instance}: not a dist-zero bootstrap; not run"
            )));
        }
        let wrapper = boot_script(self.port, self.gateway);
        let body = ContainerCreateBody {
            image: Some(self.image.clone()),
            cmd: Some(vec!["/bin/sh".into(), "-c".into(), wrapper]),
            env: Some(vec![
                "PATH=/bin".to_owned(),
                format!("DZ_USER_DATA={script}"),
            ]),
            labels: Some(HashMap::from([
                (LABEL_ALL.to_owned(), "true".to_owned()),
                (LABEL_RUN.to_owned(), run.to_owned()),
                (LABEL_INSTANCE.to_owned(), instance.to_owned()),
                (LABEL_REALIZER.to_owned(), self.subnet.to_string()),
            ])),
            stop_timeout: Some(2),
            host_config: Some(HostConfig {
                network_mode: Some(self.network.clone()),
                // `poweroff -f` (the user data's time to live) ends the container's own PID
                // namespace and nothing else, as powering off ends an instance.
                cap_add: Some(vec!["SYS_BOOT".into()]),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    self.network.clone(),
                    EndpointSettings {
                        ipam_config: Some(EndpointIpamConfig {
                            ipv4_address: Some(ip.to_string()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(name.to_owned()),
            ..Default::default()
        };
        if let Ok(mut created) = self.created.lock() {
            created.push(name.to_owned());
        }
        self.docker
            .create_container(Some(options), body)
            .await
            .map_err(failed("create a container"))?;
        if let Err(error) = self
            .docker
            .start_container(
                name,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
        {
            let mut problems = Vec::new();
            remove_container(&self.docker, name, &mut problems).await;
            return Err(failed("start a container")(error));
        }
        tracing::info!(instance, %ip, container = %name, "instance realized");
        Ok(())
    }
}

/// What a realized container runs at each start: the relay to the emulator, then, as cloud-init
/// does, the user data at the first boot (saved where cloud-init keeps it) and the per-boot
/// scripts at every later one. The user data is in `DZ_USER_DATA`.
fn boot_script(port: u16, gateway: Ipv4Addr) -> String {
    format!(
        r#"nc -ll -p {port} -e nc {gateway} {port} &
if [ -e {USER_DATA} ]; then
  unset DZ_USER_DATA
  for script in {PER_BOOT_DIR}/*; do
    if [ -x "$script" ]; then "$script"; fi
  done
else
  mkdir -p {PER_BOOT_DIR} "$(dirname {USER_DATA})"
  printf '%s' "$DZ_USER_DATA" > {USER_DATA}
  unset DZ_USER_DATA
  exec /bin/sh {USER_DATA}
fi
"#
    )
}

/// moto's server on 127.0.0.1 and a realizer watching it: what `dist-zero cloud-emulator`
/// and the cloud tests run.
pub struct Emulator {
    moto: Child,
    /// The realizer (taken when stopping).
    realizer: Option<Realizer>,
    /// Settings pointing at the emulator and the realizer's subnet.
    pub settings: Settings,
}

/// How to start moto.
#[derive(Debug, Clone, Default)]
pub struct EmulatorOptions {
    /// The port (a free one if `None`).
    pub port: Option<u16>,
    /// Make moto check request signatures against its own IAM (no key is valid then).
    pub check_signatures: bool,
    /// Start the realizer too.
    pub realizer: bool,
}

impl Emulator {
    /// Starts `moto_server` on 127.0.0.1 and, if asked, a realizer; `base` supplies the other
    /// settings. Settings for the run come back in [`Emulator::settings`].
    pub fn start(base: &Settings, options: &EmulatorOptions) -> Result<Self, HardwareError> {
        let port = match options.port {
            Some(port) => port,
            None => std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .map_err(|source| HardwareError::Io {
                    action: "find a free port".into(),
                    source,
                })?,
        };
        let mut command = Command::new("moto_server");
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if options.check_signatures {
            command.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
        }
        let moto = command.spawn().map_err(|e| {
            HardwareError::Unavailable(format!(
                "cannot start moto_server ({e}); install it with `pip install 'moto[server]==5.2.1'`"
            ))
        })?;
        let mut settings = base.clone();
        settings.cloud = CloudSettings {
            endpoint_url: Some(format!("http://127.0.0.1:{port}")),
            region: Some("us-east-1".into()),
            static_credentials: Some((
                Secret(EMULATOR_KEY_ID.into()),
                Secret(EMULATOR_SECRET.into()),
            )),
            ..base.cloud.clone()
        };
        let mut emulator = Emulator {
            moto,
            realizer: None,
            settings,
        };
        emulator.wait_for_moto(port)?;
        if options.realizer {
            let realizer = Realizer::start(&emulator.settings, None)?;
            emulator.settings.cloud.subnet = realizer.subnet().to_string();
            emulator.realizer = Some(realizer);
        }
        Ok(emulator)
    }

    fn wait_for_moto(&mut self, port: u16) -> Result<(), HardwareError> {
        for _ in 0..300 {
            if let Ok(Some(status)) = self.moto.try_wait() {
                return Err(HardwareError::Unavailable(format!(
                    "moto_server exited at once ({status}); is port {port} free?"
                )));
            }
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(HardwareError::Unavailable(format!(
            "moto_server did not answer on 127.0.0.1:{port}"
        )))
    }

    /// The realizer, if one runs.
    pub fn realizer(&self) -> Option<&Realizer> {
        self.realizer.as_ref()
    }

    /// Stops the realizer (removing its containers and network) and moto.
    pub fn stop(mut self) -> Result<(), HardwareError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), HardwareError> {
        let outcome = self.realizer.take().map_or(Ok(()), Realizer::stop);
        let _ = self.moto.kill();
        let _ = self.moto.wait();
        outcome
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Err(error) = self.shutdown() {
            eprintln!("dist-zero: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_the_realizer_only_relays_to_a_loopback_emulator() {
        assert_eq!(loopback_port("http://127.0.0.1:5000"), Some(5000));
        assert_eq!(loopback_port("http://localhost:5000/"), Some(5000));
        assert_eq!(loopback_port("https://ec2.us-east-1.amazonaws.com"), None);
        assert_eq!(loopback_port("http://10.0.0.1:5000"), None);
    }

    #[test]
    fn cloud_ranges_that_share_addresses_overlap() {
        let net = |a, b, c, p| Subnet {
            base: Ipv4Addr::new(10, a, b, c),
            prefix: p,
        };
        assert!(overlaps(net(96, 0, 0, 16), net(96, 3, 0, 24)));
        assert!(!overlaps(net(96, 4, 0, 24), net(96, 3, 0, 24)));
    }
}
