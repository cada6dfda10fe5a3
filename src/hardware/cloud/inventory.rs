//! What a run created in the cloud, and its removal in dependency order: instances (waiting
//! until they have terminated), the security group, the route table, the internet gateway, the
//! subnet, the VPC, then the binary's object and bucket. Used by a run's own clean-up and by
//! `dist-zero clean --cloud`, which rebuilds inventories from tags.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, InstanceStateName};

use super::aws::{api, eventually, ApiError, Clients, TAG_ALL, TAG_EXPIRES, TAG_RUN};
use crate::hardware::docker::owner::{Liveness, Owner};

/// How long terminating instances may take to reach `terminated`.
const TERMINATE_LIMIT: Duration = Duration::from_secs(600);

/// Everything one run created, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// The run.
    pub run_id: String,
    /// Instances (not yet known to be terminated).
    pub instances: Vec<String>,
    /// The security group.
    pub group: Option<String>,
    /// The route table and, if any, its association with the subnet.
    pub route_table: Option<(String, Option<String>)>,
    /// The internet gateway and whether it is attached to the VPC.
    pub gateway: Option<(String, bool)>,
    /// The subnet.
    pub subnet: Option<String>,
    /// The VPC.
    pub vpc: Option<String>,
    /// The bucket holding the binary, and the objects in it.
    pub bucket: Option<(String, Vec<String>)>,
    /// Set by a run's final clean-up: nothing more may be created for the run.
    pub closed: bool,
    /// The runner that created it, as its resources' tags name it.
    pub owner: Option<Owner>,
    /// When its resources expire (seconds since the Unix epoch; the earliest tag).
    pub expires: Option<u64>,
}

impl Inventory {
    /// Nothing yet, for `run_id`.
    pub fn new(run_id: &str) -> Self {
        Inventory {
            run_id: run_id.to_owned(),
            ..Default::default()
        }
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
            && self.group.is_none()
            && self.route_table.is_none()
            && self.gateway.is_none()
            && self.subnet.is_none()
            && self.vpc.is_none()
            && self.bucket.is_none()
    }

    /// Why `dist-zero clean --cloud` must leave this run alone at `now` (seconds since the Unix
    /// epoch), or `None` if it is leaked: its runner still runs on this host, or it ran on
    /// another host (which cannot be checked from here) and the run has not expired yet. A run
    /// whose runner is gone, that names no runner, or that has expired, is leaked.
    pub fn in_progress(&self, now: u64) -> Option<String> {
        let owner = self.owner.as_ref()?;
        match owner.liveness() {
            Liveness::Alive(why) => Some(format!("in progress ({why})")),
            Liveness::Gone(_) => None,
            Liveness::Unknown(why) => match self.expires {
                Some(expires) if expires <= now => None,
                Some(expires) => Some(format!(
                    "{why}; it expires in {} s (`clean --cloud --all` removes it now)",
                    expires - now
                )),
                None => Some(format!("{why} (`clean --cloud --all` removes it)")),
            },
        }
    }

    /// Removes everything, in dependency order, and empties itself. Returns what it removed
    /// (`kind id` lines) and fails with what it could not remove.
    pub async fn remove(&mut self, clients: &Clients) -> Result<Vec<String>, String> {
        let mut tally = Tally::default();
        let ec2 = &clients.ec2;
        let instances = std::mem::take(&mut self.instances);
        if !instances.is_empty() {
            let outcome = terminate(clients, &instances).await;
            for id in &instances {
                tally.note(format!("instance {id}"), outcome.clone());
            }
        }
        if let Some(group) = self.group.take() {
            let outcome = eventually(|| async {
                ec2.delete_security_group()
                    .group_id(&group)
                    .send()
                    .await
                    .map(drop)
                    .map_err(api("DeleteSecurityGroup"))
            })
            .await;
            tally.note(format!("security-group {group}"), outcome);
        }
        if let Some((table, association)) = self.route_table.take() {
            if let Some(association) = association {
                let outcome = eventually(|| async {
                    ec2.disassociate_route_table()
                        .association_id(&association)
                        .send()
                        .await
                        .map(drop)
                        .map_err(api("DisassociateRouteTable"))
                })
                .await;
                if let Err(error) = outcome.as_ref().map_err(Clone::clone) {
                    if !error.is_gone() {
                        tally
                            .problems
                            .push(format!("route-table association {association}: {error}"));
                    }
                }
            }
            let outcome = eventually(|| async {
                ec2.delete_route_table()
                    .route_table_id(&table)
                    .send()
                    .await
                    .map(drop)
                    .map_err(api("DeleteRouteTable"))
            })
            .await;
            tally.note(format!("route-table {table}"), outcome);
        }
        if let Some((gateway, attached)) = self.gateway.take() {
            if let (true, Some(vpc)) = (attached, &self.vpc) {
                let outcome = eventually(|| async {
                    ec2.detach_internet_gateway()
                        .internet_gateway_id(&gateway)
                        .vpc_id(vpc)
                        .send()
                        .await
                        .map(drop)
                        .map_err(api("DetachInternetGateway"))
                })
                .await;
                if let Err(error) = outcome {
                    if !error.is_gone() && error.code.as_deref() != Some("Gateway.NotAttached") {
                        tally
                            .problems
                            .push(format!("internet-gateway {gateway} attachment: {error}"));
                    }
                }
            }
            let outcome = eventually(|| async {
                ec2.delete_internet_gateway()
                    .internet_gateway_id(&gateway)
                    .send()
                    .await
                    .map(drop)
                    .map_err(api("DeleteInternetGateway"))
            })
            .await;
            tally.note(format!("internet-gateway {gateway}"), outcome);
        }
        if let Some(subnet) = self.subnet.take() {
            let outcome = eventually(|| async {
                ec2.delete_subnet()
                    .subnet_id(&subnet)
                    .send()
                    .await
                    .map(drop)
                    .map_err(api("DeleteSubnet"))
            })
            .await;
            tally.note(format!("subnet {subnet}"), outcome);
        }
        if let Some(vpc) = self.vpc.take() {
            let outcome = eventually(|| async {
                ec2.delete_vpc()
                    .vpc_id(&vpc)
                    .send()
                    .await
                    .map(drop)
                    .map_err(api("DeleteVpc"))
            })
            .await;
            tally.note(format!("vpc {vpc}"), outcome);
        }
        if let Some((bucket, objects)) = self.bucket.take() {
            for key in objects {
                let outcome = clients
                    .s3
                    .delete_object()
                    .bucket(&bucket)
                    .key(&key)
                    .send()
                    .await
                    .map(drop)
                    .map_err(api("DeleteObject"));
                tally.note(format!("object s3://{bucket}/{key}"), outcome);
            }
            let outcome = clients
                .s3
                .delete_bucket()
                .bucket(&bucket)
                .send()
                .await
                .map(drop)
                .map_err(api("DeleteBucket"));
            tally.note(format!("bucket {bucket}"), outcome);
        }
        if tally.problems.is_empty() {
            Ok(tally.removed)
        } else {
            Err(tally.problems.join("; "))
        }
    }
}

/// What a removal did and could not do.
#[derive(Default)]
struct Tally {
    removed: Vec<String>,
    problems: Vec<String>,
}

impl Tally {
    /// Counts `what` as removed if it was (or was already gone), as a problem otherwise.
    fn note(&mut self, what: String, outcome: Result<(), ApiError>) {
        match outcome {
            Ok(()) => self.removed.push(what),
            Err(error) if error.is_gone() => self.removed.push(what),
            Err(error) => self.problems.push(format!("{what}: {error}")),
        }
    }
}

/// Terminates `instances` and waits until every one has terminated.
async fn terminate(clients: &Clients, instances: &[String]) -> Result<(), ApiError> {
    let ec2 = &clients.ec2;
    eventually(|| async {
        ec2.terminate_instances()
            .set_instance_ids(Some(instances.to_vec()))
            .send()
            .await
            .map(drop)
            .map_err(api("TerminateInstances"))
    })
    .await?;
    let started = tokio::time::Instant::now();
    loop {
        let described = eventually(|| async {
            ec2.describe_instances()
                .set_instance_ids(Some(instances.to_vec()))
                .send()
                .await
                .map_err(api("DescribeInstances"))
        })
        .await?;
        let alive = described
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| i.state().and_then(|s| s.name()) != Some(&InstanceStateName::Terminated))
            .count();
        if alive == 0 {
            return Ok(());
        }
        if started.elapsed() > TERMINATE_LIMIT {
            return Err(ApiError {
                action: "TerminateInstances",
                code: None,
                message: format!("{alive} instances still not terminated"),
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The inventory of the run a resource's `tags` name (`unknown` if none), noting the runner and
/// the expiry they record.
fn entry<'a>(
    runs: &'a mut BTreeMap<String, Inventory>,
    tags: &HashMap<String, String>,
) -> &'a mut Inventory {
    let run = tags
        .get(TAG_RUN)
        .cloned()
        .unwrap_or_else(|| "unknown".to_owned());
    let inventory = runs
        .entry(run.clone())
        .or_insert_with(|| Inventory::new(&run));
    if inventory.owner.is_none() {
        inventory.owner = Owner::from_labels(tags);
    }
    if let Some(expires) = tags.get(TAG_EXPIRES).and_then(|e| e.parse::<u64>().ok()) {
        inventory.expires = Some(inventory.expires.map_or(expires, |e| e.min(expires)));
    }
    inventory
}

/// An EC2 resource's tags, by key.
fn tag_map(tags: &[aws_sdk_ec2::types::Tag]) -> HashMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
        .collect()
}

fn tagged(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

/// Finds every DistZero resource in the region (tag `dist-zero=true`; buckets by the same tag),
/// grouped by run.
pub async fn discover(clients: &Clients) -> Result<Vec<Inventory>, ApiError> {
    let ec2 = &clients.ec2;
    let mut runs: BTreeMap<String, Inventory> = BTreeMap::new();
    let ours = tagged(TAG_ALL, "true");
    let instances = ec2
        .describe_instances()
        .filters(ours.clone())
        .send()
        .await
        .map_err(api("DescribeInstances"))?;
    for instance in instances.reservations().iter().flat_map(|r| r.instances()) {
        let state = instance.state().and_then(|s| s.name());
        if state == Some(&InstanceStateName::Terminated) {
            continue;
        }
        if let Some(id) = instance.instance_id() {
            entry(&mut runs, &tag_map(instance.tags()))
                .instances
                .push(id.to_owned());
        }
    }
    let groups = ec2
        .describe_security_groups()
        .filters(ours.clone())
        .send()
        .await
        .map_err(api("DescribeSecurityGroups"))?;
    for group in groups.security_groups() {
        if let Some(id) = group.group_id() {
            entry(&mut runs, &tag_map(group.tags())).group = Some(id.to_owned());
        }
    }
    let tables = ec2
        .describe_route_tables()
        .filters(ours.clone())
        .send()
        .await
        .map_err(api("DescribeRouteTables"))?;
    for table in tables.route_tables() {
        if let Some(id) = table.route_table_id() {
            let association = table
                .associations()
                .iter()
                .find(|a| a.main() != Some(true))
                .and_then(|a| a.route_table_association_id())
                .map(str::to_owned);
            entry(&mut runs, &tag_map(table.tags())).route_table =
                Some((id.to_owned(), association));
        }
    }
    let gateways = ec2
        .describe_internet_gateways()
        .filters(ours.clone())
        .send()
        .await
        .map_err(api("DescribeInternetGateways"))?;
    for gateway in gateways.internet_gateways() {
        if let Some(id) = gateway.internet_gateway_id() {
            let attached = !gateway.attachments().is_empty();
            entry(&mut runs, &tag_map(gateway.tags())).gateway = Some((id.to_owned(), attached));
        }
    }
    let subnets = ec2
        .describe_subnets()
        .filters(ours.clone())
        .send()
        .await
        .map_err(api("DescribeSubnets"))?;
    for subnet in subnets.subnets() {
        if let Some(id) = subnet.subnet_id() {
            entry(&mut runs, &tag_map(subnet.tags())).subnet = Some(id.to_owned());
        }
    }
    let vpcs = ec2
        .describe_vpcs()
        .filters(ours)
        .send()
        .await
        .map_err(api("DescribeVpcs"))?;
    for vpc in vpcs.vpcs() {
        if let Some(id) = vpc.vpc_id() {
            entry(&mut runs, &tag_map(vpc.tags())).vpc = Some(id.to_owned());
        }
    }
    let buckets = clients
        .s3
        .list_buckets()
        .send()
        .await
        .map_err(api("ListBuckets"))?;
    for bucket in buckets.buckets() {
        let Some(name) = bucket.name() else { continue };
        if !name.starts_with("dist-zero-") {
            continue;
        }
        let Ok(tagging) = clients.s3.get_bucket_tagging().bucket(name).send().await else {
            continue;
        };
        let tags: HashMap<String, String> = tagging
            .tag_set()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
        if tags.get(TAG_ALL).map(String::as_str) != Some("true") {
            continue;
        }
        let objects = clients
            .s3
            .list_objects_v2()
            .bucket(name)
            .send()
            .await
            .map_err(api("ListObjectsV2"))?;
        let keys = objects
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        entry(&mut runs, &tags).bucket = Some((name.to_owned(), keys));
    }
    Ok(runs.into_values().collect())
}
