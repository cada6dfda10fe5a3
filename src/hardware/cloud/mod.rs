//! Cloud mode: every machine is an EC2 instance running the same `dist-zero machine` process as
//! a container does in virtual mode, provisioned through the AWS SDK for Rust.
//!
//! A run creates its own VPC (the /16 around the configured subnet), internet gateway, route
//! table, subnet and security group, and a bucket holding the runner's own binary under its
//! SHA-256. It launches one instance per machine at a fixed private address (so every machine's
//! address book is known before launch) with a bootstrap as user data ([`bootstrap`]): fetch the
//! binary through a presigned URL, check its hash, write the machine config, install a per-boot
//! script (a crash is a forced stop of the instance, a restart a start of it, which boots the
//! machine again from its disk), `exec dist-zero machine`. No SSH, no key pair, no AWS
//! credentials on the instances.
//!
//! Machines talk TLS to each other and to the runner, with a certificate authority made for the
//! run ([`crate::hardware::remote::tls`]); the run's token only travels inside it. The security group
//! admits the peer port only from itself and the control port only from the runner's address.
//!
//! Everything carries the tags `dist-zero=true`, `dist-zero.run=<id>` and `dist-zero.expires`,
//! and is removed when the [`CloudHardware`] finishes or is dropped (an error, a panic, or SIGINT
//! or SIGTERM when it listens for them, as the CLI does: [`crate::hardware::remote::stop`]). Instances also power
//! themselves off (shutdown behaviour `terminate`) when their time to live ends.
//!
//! With `AWS_ENDPOINT_URL` set (an emulator such as moto), the runner reaches machines at their
//! private addresses, and only if a local [`realizer`] network with exactly the run's subnet
//! exists: it refuses to send a packet anywhere else.

pub mod aws;
pub mod bootstrap;
pub mod clean;
pub mod inventory;
mod machines;
pub mod realizer;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, HttpTokensState, InstanceMetadataOptionsRequest, InstanceStateName,
    InstanceType, IpPermission, IpRange, ResourceType, ShutdownBehavior, Tag, TagSpecification,
    UserIdGroupPair,
};
use base64::Engine as _;
use sha2::Digest as _;

use super::HardwareError;
use crate::faults::FaultRule;
use crate::hardware::docker::owner::Owner;
use crate::hardware::remote::hardware::{Provider, RecordsAt, RemoteHardware};
use crate::hardware::remote::stop::Stopper;
use crate::hardware::remote::tls::RunTls;
use crate::hardware::remote::MachineConfig;
use crate::messages::MachineId;
use crate::settings::Settings;
use aws::{api, eventually, unix_now, ApiError, Clients, HttpWrapper};
use inventory::Inventory;
pub use machines::Instances;

pub use aws::{TAG_ALL, TAG_EXPIRES, TAG_MACHINE, TAG_RUN};

/// The port machines take TLS connections from each other on.
pub const PEER_PORT: u16 = 7000;
/// The port machines take TLS control connections from the runner on.
pub const CONTROL_PORT: u16 = 7001;
/// The first machine's host number in the subnet (AWS reserves the first four).
const FIRST_HOST: u32 = 10;
/// The image used with an emulator when none is configured (one moto knows).
pub const EMULATOR_IMAGE: &str = "ami-1e749f67";
/// Where a machine writes its logs on its instance.
const LOG_DIR: &str = "/opt/dist-zero/logs";
/// Virtual mode's networks: 10.200.0.0 to 10.249.255.255.
const VIRTUAL_RANGE: (u32, u32) = (0x0AC8_0000, 0x0AF9_FFFF);

/// What a cloud system is made of.
#[derive(Debug, Clone)]
pub struct CloudConfig {
    /// How many machines.
    pub machines: u32,
    /// The seed every machine's random generator derives from.
    pub seed: u64,
    /// The statically linked x86-64 Linux `dist-zero` binary the instances run.
    pub binary: PathBuf,
    /// The settings (cloud section, Docker host for the emulator check, machine log filter).
    pub settings: Settings,
    /// Whether the runtime's reliable delivery runs between the machines.
    pub reliable: bool,
    /// Transmissions each machine drops on purpose.
    pub drop: Option<FaultRule>,
    /// Transmissions each machine sends twice on purpose.
    pub duplicate: Option<FaultRule>,
    /// Replaces the SDK's HTTP client (tests inject API faults with it).
    pub http: Option<HttpWrapper>,
    /// Have every machine record the structured trace (read back with
    /// [`RemoteHardware::traces`]).
    pub record: bool,
    /// Whether SIGINT and SIGTERM stop the run (and no longer end the process), as in virtual
    /// mode: the CLI sets it; a program embedding the hardware handles its own signals.
    pub stop_on_signals: bool,
}

impl CloudConfig {
    /// A config for `machines` machines running `binary`.
    pub fn new(machines: u32, seed: u64, binary: PathBuf, settings: Settings) -> Self {
        CloudConfig {
            machines,
            seed,
            binary,
            settings,
            reliable: true,
            drop: None,
            duplicate: None,
            http: None,
            record: false,
            stop_on_signals: false,
        }
    }
}

/// The run's subnet and the addresses in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    /// Its first address.
    pub base: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
}

impl Subnet {
    /// Parses `a.b.c.d/n` (16 to 28, host bits zero), refusing virtual mode's range.
    pub fn parse(text: &str) -> Result<Self, HardwareError> {
        let bad = |why: &str| {
            HardwareError::Unavailable(format!(
                "DIST_ZERO_CLOUD_SUBNET={text} is not usable: {why}"
            ))
        };
        let (ip, prefix) = text
            .split_once('/')
            .ok_or_else(|| bad("expected a.b.c.d/n"))?;
        let base: Ipv4Addr = ip.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u8 = prefix.parse().map_err(|_| bad("not a prefix length"))?;
        if !(16..=28).contains(&prefix) {
            return Err(bad("the prefix must be 16 to 28"));
        }
        let subnet = Subnet { base, prefix };
        if u32::from(base) & !subnet.mask() != 0 {
            return Err(bad("host bits are set"));
        }
        let (first, last) = (u32::from(base), u32::from(subnet.last()));
        if first <= VIRTUAL_RANGE.1 && last >= VIRTUAL_RANGE.0 {
            return Err(bad(
                "it overlaps virtual mode's networks (10.200.0.0-10.249.255.255)",
            ));
        }
        Ok(subnet)
    }

    fn mask(self) -> u32 {
        u32::MAX << (32 - u32::from(self.prefix))
    }

    fn last(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) | !self.mask())
    }

    /// The VPC around it: the enclosing /16.
    pub fn vpc_cidr(self) -> String {
        let base = Ipv4Addr::from(u32::from(self.base) & 0xFFFF_0000);
        format!("{base}/16")
    }

    /// How many machines fit (AWS reserves four addresses at the start and one at the end).
    pub fn capacity(self) -> u32 {
        (1u32 << (32 - u32::from(self.prefix))).saturating_sub(FIRST_HOST + 1)
    }

    /// Machine `machine`'s private address.
    pub fn machine_ip(self, machine: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + FIRST_HOST + machine)
    }

    /// Whether `ip` is inside.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.base)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// Removes what a run created.
#[derive(Clone)]
struct TeardownHandle {
    clients: Clients,
    inventory: Arc<tokio::sync::Mutex<Inventory>>,
}

impl TeardownHandle {
    /// Removes everything the run created so far (waits for a removal already under way), and
    /// stops the run from creating more. A last look by tag catches a resource whose creation
    /// was under way when the removal began (a signal in the middle of provisioning).
    async fn teardown(&self) -> Result<(), HardwareError> {
        let mut inventory = self.inventory.lock().await;
        let first_time = !inventory.closed;
        inventory.closed = true;
        if inventory.is_empty() && !first_time {
            return Ok(());
        }
        let run = inventory.run_id.clone();
        let mut outcome = inventory.remove(&self.clients).await.map(drop);
        if outcome.is_ok() {
            match inventory::discover(&self.clients).await {
                Ok(found) => {
                    for mut stray in found.into_iter().filter(|i| i.run_id == run) {
                        outcome = outcome.and(stray.remove(&self.clients).await.map(drop));
                    }
                }
                Err(error) => outcome = Err(error.to_string()),
            }
        }
        outcome.map_err(|problems| {
            HardwareError::Infrastructure(format!(
                "could not remove everything run {run} created ({problems}); run `dist-zero clean --cloud`"
            ))
        })
    }
}

/// A running system of EC2 instances, one per machine.
pub type CloudHardware = RemoteHardware<CloudRun>;

/// What a cloud run made: its network, bucket and instances, removed when the run ends or this
/// is dropped (which also covers a failure while they are being made).
pub struct CloudRun {
    runtime: tokio::runtime::Runtime,
    teardown: TeardownHandle,
    instances: Vec<String>,
}

impl Provider for CloudRun {
    type Backend = Instances;

    fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// Instances keep their records on their own disks; the runner asks for them.
    fn records(&self) -> RecordsAt<'_> {
        RecordsAt::Machines
    }

    async fn exited(&self) {}

    fn remove(&mut self) -> Result<(), HardwareError> {
        self.runtime.block_on(self.teardown.teardown())
    }
}

impl Drop for CloudRun {
    fn drop(&mut self) {
        if let Err(error) = self.remove() {
            tracing::error!(%error, "cloud clean-up failed");
            eprintln!("dist-zero: {error}");
        }
    }
}

impl RemoteHardware<CloudRun> {
    /// Creates the run's network, bucket and instances and waits until every machine answers.
    /// On any failure, or a signal when it listens for them ([`CloudConfig::stop_on_signals`]),
    /// whatever was created is removed before returning.
    pub fn start(config: &CloudConfig) -> Result<Self, HardwareError> {
        let runtime = crate::hardware::remote::runtime()?;
        let stopper = if config.stop_on_signals {
            Stopper::listen(&runtime)?
        } else {
            Stopper::never()
        };
        let cloud = &config.settings.cloud;
        let subnet = Subnet::parse(&cloud.subnet)?;
        if config.machines == 0 || config.machines > subnet.capacity() {
            return Err(HardwareError::Infrastructure(format!(
                "subnet {subnet} holds 1 to {} machines, not {}",
                subnet.capacity(),
                config.machines
            )));
        }
        let emulated = cloud.endpoint_url.is_some();
        let image = match (&cloud.image, emulated) {
            (Some(image), _) => image.clone(),
            (None, true) => EMULATOR_IMAGE.to_owned(),
            (None, false) => {
                return Err(HardwareError::Unavailable(
                    "cloud mode needs DIST_ZERO_CLOUD_IMAGE: give an x86-64 Linux AMI id for your region (see docs/cloud-mode.md, Cloud mode on AWS)".into(),
                ))
            }
        };
        if !emulated && cloud.runner_cidr.is_none() {
            return Err(HardwareError::Unavailable(
                "cloud mode needs DIST_ZERO_CLOUD_RUNNER_CIDR: give this computer's public address as a.b.c.d/32 (see docs/cloud-mode.md, Cloud mode on AWS)".into(),
            ));
        }
        let clients = stopper.block_on(&runtime, Clients::new(cloud, config.http.as_ref()))?;
        stopper.block_on(&runtime, async { Ok(clients.check().await?) })?;
        let runner_cidr = if emulated {
            let gateway = stopper.block_on(
                &runtime,
                realizer::gateway_for(&config.settings.docker_host, subnet),
            )?;
            cloud
                .runner_cidr
                .clone()
                .unwrap_or_else(|| format!("{gateway}/32"))
        } else {
            cloud.runner_cidr.clone().unwrap_or_default()
        };
        let binary = shippable(&config.binary, &config.settings.runs_dir)?;
        let tls = RunTls::generate()?;
        let connector = tls.runner_connector()?;
        let run_id = crate::hardware::docker::new_run_id();
        let token = crate::hardware::docker::new_token();
        // From here on, what is made is removed when `run` is dropped: on an error, a panic or
        // a signal while the instances are being made.
        let mut run = CloudRun {
            runtime,
            teardown: TeardownHandle {
                clients: clients.clone(),
                inventory: Arc::new(tokio::sync::Mutex::new(Inventory::new(&run_id))),
            },
            instances: Vec::new(),
        };
        let plan = Plan {
            config,
            run_id: &run_id,
            token: &token,
            subnet,
            image: &image,
            runner_cidr: &runner_cidr,
            tls: &tls,
            binary: &binary,
            expires: unix_now() + cloud.ttl_s,
            owner: Owner::this_process(),
        };
        let inventory = Arc::clone(&run.teardown.inventory);
        let launched = stopper.block_on(&run.runtime, provision(&clients, &plan, &inventory))?;
        let targets = stopper.block_on(&run.runtime, addresses(&clients, &launched, emulated))?;
        run.instances = launched.iter().map(|(id, _)| id.clone()).collect();
        let timeout = Duration::from_secs(cloud.ready_timeout_s);
        let machines = stopper.block_on(
            &run.runtime,
            machines::connect(
                clients,
                emulated,
                connector,
                targets,
                token,
                config.seed,
                timeout,
            ),
        )?;
        tracing::info!(run = %run_id, machines = machines.len(), "cloud system ready");
        Ok(RemoteHardware::new(run, machines, stopper, run_id))
    }

    /// The instances, machine by machine.
    pub fn instances(&self) -> &[String] {
        &self.provider().instances
    }
}

/// Everything [`provision`] needs.
struct Plan<'a> {
    config: &'a CloudConfig,
    run_id: &'a str,
    token: &'a str,
    subnet: Subnet,
    image: &'a str,
    runner_cidr: &'a str,
    tls: &'a RunTls,
    binary: &'a [u8],
    expires: u64,
    /// This runner, named on every resource so that `clean --cloud` spares the run while it runs.
    owner: Option<Owner>,
}

impl Plan<'_> {
    fn tags(&self, kind: ResourceType, machine: Option<u32>) -> TagSpecification {
        let mut tags = vec![
            tag(TAG_ALL, "true"),
            tag(TAG_RUN, self.run_id),
            tag(TAG_EXPIRES, &self.expires.to_string()),
            tag("Name", &format!("dist-zero {}", self.run_id)),
        ];
        if let Some(machine) = machine {
            tags.push(tag(TAG_MACHINE, &MachineId(machine).to_string()));
        }
        for (key, value) in self.owner.iter().flat_map(Owner::labels) {
            tags.push(tag(&key, &value));
        }
        TagSpecification::builder()
            .resource_type(kind)
            .set_tags(Some(tags))
            .build()
    }

    fn machine_config(&self, machine: u32) -> MachineConfig {
        MachineConfig {
            run_id: self.run_id.to_owned(),
            machine: MachineId(machine),
            peers: (0..self.config.machines)
                .map(|m| SocketAddr::from((self.subnet.machine_ip(m), PEER_PORT)))
                .collect(),
            token: self.token.to_owned(),
            seed: self.config.seed,
            peer_port: PEER_PORT,
            control_port: CONTROL_PORT,
            log_dir: PathBuf::from(LOG_DIR),
            log_filter: self.config.settings.machine_log_filter.clone(),
            reliable: self.config.reliable,
            drop: self.config.drop.clone(),
            duplicate: self.config.duplicate.clone(),
            tls: Some(self.tls.machines.clone()),
            record: self.config.record,
            sync_disk: true,
        }
    }
}

/// Fails if the run's clean-up has begun (a signal): nothing more is created then.
async fn ensure_open(inventory: &tokio::sync::Mutex<Inventory>) -> Result<(), HardwareError> {
    if inventory.lock().await.closed {
        return Err(HardwareError::Infrastructure(
            "the run was interrupted while it was being created".into(),
        ));
    }
    Ok(())
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// Creates the bucket and binary, the network, the security group and the instances, recording
/// each in `inventory` as soon as it exists. Returns (instance id, private address) per machine.
async fn provision(
    clients: &Clients,
    plan: &Plan<'_>,
    inventory: &tokio::sync::Mutex<Inventory>,
) -> Result<Vec<(String, Ipv4Addr)>, HardwareError> {
    let (url, sha256) = upload_binary(clients, plan, inventory).await?;
    let ec2 = &clients.ec2;
    ensure_open(inventory).await?;
    let vpc = ec2
        .create_vpc()
        .cidr_block(plan.subnet.vpc_cidr())
        .tag_specifications(plan.tags(ResourceType::Vpc, None))
        .send()
        .await
        .map_err(api("CreateVpc"))?
        .vpc()
        .and_then(|v| v.vpc_id())
        .map(str::to_owned)
        .ok_or_else(|| missing("CreateVpc", "a VPC id"))?;
    inventory.lock().await.vpc = Some(vpc.clone());

    ensure_open(inventory).await?;
    let gateway = ec2
        .create_internet_gateway()
        .tag_specifications(plan.tags(ResourceType::InternetGateway, None))
        .send()
        .await
        .map_err(api("CreateInternetGateway"))?
        .internet_gateway()
        .and_then(|g| g.internet_gateway_id())
        .map(str::to_owned)
        .ok_or_else(|| missing("CreateInternetGateway", "a gateway id"))?;
    inventory.lock().await.gateway = Some((gateway.clone(), false));
    eventually(|| async {
        ec2.attach_internet_gateway()
            .internet_gateway_id(&gateway)
            .vpc_id(&vpc)
            .send()
            .await
            .map_err(api("AttachInternetGateway"))
    })
    .await?;
    inventory.lock().await.gateway = Some((gateway.clone(), true));

    ensure_open(inventory).await?;
    let subnet = eventually(|| async {
        ec2.create_subnet()
            .vpc_id(&vpc)
            .cidr_block(plan.subnet.to_string())
            .tag_specifications(plan.tags(ResourceType::Subnet, None))
            .send()
            .await
            .map_err(api("CreateSubnet"))
    })
    .await?
    .subnet()
    .and_then(|s| s.subnet_id())
    .map(str::to_owned)
    .ok_or_else(|| missing("CreateSubnet", "a subnet id"))?;
    inventory.lock().await.subnet = Some(subnet.clone());
    eventually(|| async {
        ec2.modify_subnet_attribute()
            .subnet_id(&subnet)
            .map_public_ip_on_launch(AttributeBooleanValue::builder().value(true).build())
            .send()
            .await
            .map_err(api("ModifySubnetAttribute"))
    })
    .await?;

    ensure_open(inventory).await?;
    let table = eventually(|| async {
        ec2.create_route_table()
            .vpc_id(&vpc)
            .tag_specifications(plan.tags(ResourceType::RouteTable, None))
            .send()
            .await
            .map_err(api("CreateRouteTable"))
    })
    .await?
    .route_table()
    .and_then(|t| t.route_table_id())
    .map(str::to_owned)
    .ok_or_else(|| missing("CreateRouteTable", "a route table id"))?;
    inventory.lock().await.route_table = Some((table.clone(), None));
    eventually(|| async {
        ec2.create_route()
            .route_table_id(&table)
            .destination_cidr_block("0.0.0.0/0")
            .gateway_id(&gateway)
            .send()
            .await
            .map_err(api("CreateRoute"))
    })
    .await?;
    let association = eventually(|| async {
        ec2.associate_route_table()
            .route_table_id(&table)
            .subnet_id(&subnet)
            .send()
            .await
            .map_err(api("AssociateRouteTable"))
    })
    .await?
    .association_id()
    .map(str::to_owned);
    inventory.lock().await.route_table = Some((table.clone(), association));

    ensure_open(inventory).await?;
    let group = eventually(|| async {
        ec2.create_security_group()
            .group_name(format!("dist-zero-{}", plan.run_id))
            .description("dist-zero machines: peers from the group, control from the runner")
            .vpc_id(&vpc)
            .tag_specifications(plan.tags(ResourceType::SecurityGroup, None))
            .send()
            .await
            .map_err(api("CreateSecurityGroup"))
    })
    .await?
    .group_id()
    .map(str::to_owned)
    .ok_or_else(|| missing("CreateSecurityGroup", "a group id"))?;
    inventory.lock().await.group = Some(group.clone());
    let peers = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(i32::from(PEER_PORT))
        .to_port(i32::from(PEER_PORT))
        .user_id_group_pairs(UserIdGroupPair::builder().group_id(&group).build())
        .build();
    let control = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(i32::from(CONTROL_PORT))
        .to_port(i32::from(CONTROL_PORT))
        .ip_ranges(
            IpRange::builder()
                .cidr_ip(plan.runner_cidr)
                .description("the dist-zero runner")
                .build(),
        )
        .build();
    eventually(|| async {
        ec2.authorize_security_group_ingress()
            .group_id(&group)
            .ip_permissions(peers.clone())
            .ip_permissions(control.clone())
            .send()
            .await
            .map_err(api("AuthorizeSecurityGroupIngress"))
    })
    .await?;

    let mut launched = Vec::new();
    for machine in 0..plan.config.machines {
        let config = serde_json::to_string(&plan.machine_config(machine)).map_err(|e| {
            HardwareError::Infrastructure(format!("cannot encode a machine config: {e}"))
        })?;
        let name = MachineId(machine).to_string();
        let script = bootstrap::Bootstrap {
            run_id: plan.run_id,
            machine: &name,
            binary_url: &url,
            binary_sha256: &sha256,
            config_json: &config,
            ttl_s: plan.config.settings.cloud.ttl_s,
        }
        .script();
        let ip = plan.subnet.machine_ip(machine);
        ensure_open(inventory).await?;
        let instance = eventually(|| async {
            ec2.run_instances()
                .image_id(plan.image)
                .instance_type(InstanceType::from(
                    plan.config.settings.cloud.instance_type.as_str(),
                ))
                .min_count(1)
                .max_count(1)
                .subnet_id(&subnet)
                .private_ip_address(ip.to_string())
                .security_group_ids(&group)
                .user_data(base64::engine::general_purpose::STANDARD.encode(&script))
                .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate)
                .metadata_options(
                    InstanceMetadataOptionsRequest::builder()
                        .http_tokens(HttpTokensState::Required)
                        .build(),
                )
                .tag_specifications(plan.tags(ResourceType::Instance, Some(machine)))
                .tag_specifications(plan.tags(ResourceType::Volume, Some(machine)))
                .tag_specifications(plan.tags(ResourceType::NetworkInterface, Some(machine)))
                .send()
                .await
                .map_err(api("RunInstances"))
        })
        .await?
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .map(str::to_owned)
        .ok_or_else(|| missing("RunInstances", "an instance id"))?;
        inventory.lock().await.instances.push(instance.clone());
        launched.push((instance, ip));
    }
    Ok(launched)
}

/// Puts the binary in the run's bucket under its SHA-256; returns a presigned URL and the hash.
async fn upload_binary(
    clients: &Clients,
    plan: &Plan<'_>,
    inventory: &tokio::sync::Mutex<Inventory>,
) -> Result<(String, String), HardwareError> {
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration, Tagging};
    let sha256: String = sha2::Sha256::digest(plan.binary)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let bucket = format!("dist-zero-{}", plan.run_id).to_lowercase();
    let key = format!("dist-zero/{sha256}");
    let mut create = clients.s3.create_bucket().bucket(&bucket);
    if clients.region != "us-east-1" {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(clients.region.as_str()))
                .build(),
        );
    }
    ensure_open(inventory).await?;
    create.send().await.map_err(api("CreateBucket"))?;
    inventory.lock().await.bucket = Some((bucket.clone(), Vec::new()));
    let s3_tag = |key: &str, value: &str| {
        aws_sdk_s3::types::Tag::builder()
            .key(key)
            .value(value)
            .build()
            .map_err(|e| HardwareError::Infrastructure(format!("bad tag: {e}")))
    };
    let mut tagging = Tagging::builder()
        .tag_set(s3_tag(TAG_ALL, "true")?)
        .tag_set(s3_tag(TAG_RUN, plan.run_id)?)
        .tag_set(s3_tag(TAG_EXPIRES, &plan.expires.to_string())?);
    for (key, value) in plan.owner.iter().flat_map(Owner::labels) {
        tagging = tagging.tag_set(s3_tag(&key, &value)?);
    }
    let tagging = tagging
        .build()
        .map_err(|e| HardwareError::Infrastructure(format!("bad tagging: {e}")))?;
    eventually(|| async {
        clients
            .s3
            .put_bucket_tagging()
            .bucket(&bucket)
            .tagging(tagging.clone())
            .send()
            .await
            .map_err(api("PutBucketTagging"))
    })
    .await?;
    inventory.lock().await.bucket = Some((bucket.clone(), vec![key.clone()]));
    clients
        .s3
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .tagging(format!(
            "{TAG_ALL}=true&{TAG_RUN}={}&{TAG_EXPIRES}={}",
            plan.run_id, plan.expires
        ))
        .body(aws_sdk_s3::primitives::ByteStream::from(
            plan.binary.to_vec(),
        ))
        .send()
        .await
        .map_err(api("PutObject"))?;
    let lifetime = Duration::from_secs(plan.config.settings.cloud.ttl_s.min(7 * 24 * 3600));
    let presigning = aws_sdk_s3::presigning::PresigningConfig::expires_in(lifetime)
        .map_err(|e| HardwareError::Infrastructure(format!("cannot presign: {e}")))?;
    let url = clients
        .s3
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .presigned(presigning)
        .await
        .map_err(api("GetObject (presign)"))?
        .uri()
        .to_owned();
    Ok((url, sha256))
}

/// Waits until every instance runs and returns, per machine, (instance, private address, the
/// address the runner reaches its control port at): the private one with an emulator, the
/// public one on AWS.
async fn addresses(
    clients: &Clients,
    launched: &[(String, Ipv4Addr)],
    emulated: bool,
) -> Result<Vec<(String, Ipv4Addr, SocketAddr)>, HardwareError> {
    let ids: Vec<String> = launched.iter().map(|(id, _)| id.clone()).collect();
    let started = tokio::time::Instant::now();
    loop {
        let described = eventually(|| async {
            clients
                .ec2
                .describe_instances()
                .set_instance_ids(Some(ids.clone()))
                .send()
                .await
                .map_err(api("DescribeInstances"))
        })
        .await?;
        let mut found = Vec::new();
        for (id, private_ip) in launched {
            let instance = described
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .find(|i| i.instance_id() == Some(id.as_str()));
            let Some(instance) = instance else { break };
            let state = instance.state().and_then(|s| s.name());
            if matches!(
                state,
                Some(
                    InstanceStateName::Terminated
                        | InstanceStateName::ShuttingDown
                        | InstanceStateName::Stopped
                )
            ) {
                return Err(HardwareError::Infrastructure(format!(
                    "instance {id} ({private_ip}) stopped while starting"
                )));
            }
            let reach = if emulated {
                Some(*private_ip)
            } else {
                instance
                    .public_ip_address()
                    .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
            };
            if state == Some(&InstanceStateName::Running) {
                if let Some(reach) = reach {
                    found.push((
                        id.clone(),
                        *private_ip,
                        SocketAddr::from((reach, CONTROL_PORT)),
                    ));
                }
            }
        }
        if found.len() == launched.len() {
            return Ok(found);
        }
        if started.elapsed() > Duration::from_secs(300) {
            return Err(HardwareError::Infrastructure(
                "instances did not reach running with an address within 300 s".into(),
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The binary to ship: a copy without symbols if `strip` is installed (a debug build's symbols
/// are most of its size), the binary itself otherwise.
fn shippable(
    binary: &std::path::Path,
    runs_dir: &std::path::Path,
) -> Result<Vec<u8>, HardwareError> {
    let unreadable = |e: std::io::Error| {
        HardwareError::Infrastructure(format!(
            "cannot read the machine binary {}: {e}",
            binary.display()
        ))
    };
    let _ = std::fs::create_dir_all(runs_dir);
    let copy = runs_dir.join(format!(
        "{}.stripped",
        crate::hardware::docker::new_run_id()
    ));
    let stripped = std::process::Command::new("strip")
        .arg("-o")
        .arg(&copy)
        .arg(binary)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    let bytes = if stripped {
        std::fs::read(&copy).map_err(unreadable)
    } else {
        std::fs::read(binary).map_err(unreadable)
    };
    let _ = std::fs::remove_file(&copy);
    bytes
}

fn missing(action: &'static str, what: &str) -> ApiError {
    ApiError {
        action,
        code: None,
        message: format!("the answer carries no {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_subnets_stay_clear_of_virtual_mode() {
        let subnet = Subnet::parse("10.96.3.0/24").expect("valid");
        assert_eq!(subnet.vpc_cidr(), "10.96.0.0/16");
        assert_eq!(subnet.machine_ip(0), Ipv4Addr::new(10, 96, 3, 10));
        assert_eq!(subnet.capacity(), 245);
        assert!(subnet.contains(subnet.machine_ip(244)));
        assert!(Subnet::parse("10.201.0.0/24").is_err());
        assert!(Subnet::parse("10.96.3.1/24").is_err());
        assert!(Subnet::parse("10.96.3.0/8").is_err());
        assert!(Subnet::parse("garbage").is_err());
    }
}
