//! Shared by the cloud-mode tests: moto and a realizer per test (each its own emulator, so tests
//! run in parallel), what is left in moto and Docker, and an HTTP layer that injects API faults.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use bollard::query_parameters::{ListContainersOptions, ListNetworksOptions};
use dist_zero::hardware::cloud::aws::{Clients, HttpWrapper};
use dist_zero::hardware::cloud::inventory::discover;
use dist_zero::hardware::cloud::realizer::{
    Emulator, EmulatorOptions, EMULATOR_KEY_ID, EMULATOR_SECRET,
};
use dist_zero::hardware::cloud::CloudConfig;
use dist_zero::hardware::docker::LABEL_RUN;
use dist_zero::settings::Settings;

/// moto and a realizer, for one test.
pub fn emulator() -> Emulator {
    let settings = Settings::load().expect("settings load");
    let options = EmulatorOptions {
        realizer: true,
        ..Default::default()
    };
    Emulator::start(&settings, &options).expect("moto and the realizer start")
}

/// A system of `machines` instances running the `dist-zero` binary cargo built for these tests.
pub fn config(emulator: &Emulator, machines: u32) -> CloudConfig {
    let mut settings = emulator.settings.clone();
    settings.cloud.ready_timeout_s = 90;
    CloudConfig::new(
        machines,
        7,
        PathBuf::from(env!("CARGO_BIN_EXE_dist-zero")),
        settings,
    )
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// The emulator's clients.
pub fn clients(emulator: &Emulator) -> Clients {
    block_on(Clients::new(&emulator.settings.cloud, None)).expect("clients")
}

/// The instances moto knows tagged `key` = `value`, in any state.
pub fn instances_tagged(
    clients: &Clients,
    key: &str,
    value: &str,
) -> Vec<aws_sdk_ec2::types::Instance> {
    let filter = aws_sdk_ec2::types::Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build();
    let described =
        block_on(clients.ec2.describe_instances().filters(filter).send()).expect("moto answers");
    described
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .cloned()
        .collect()
}

/// Every DistZero resource still in moto (instances not terminated, groups, subnets, VPCs,
/// gateways, route tables, buckets), as `kind id` lines.
pub fn cloud_leftovers(emulator: &Emulator) -> Vec<String> {
    let clients = clients(emulator);
    block_on(async {
        let runs = discover(&clients).await.expect("moto answers");
        runs.into_iter()
            .filter(|inventory| !inventory.is_empty())
            .map(|inventory| format!("{inventory:?}"))
            .collect()
    })
}

/// Containers and networks carrying `run`'s label (the realizer labels its containers with the
/// instance's run).
pub fn docker_leftovers(run: &str) -> Vec<String> {
    labelled(&format!("{LABEL_RUN}={run}"))
}

fn docker() -> bollard::Docker {
    let settings = Settings::load().expect("settings load");
    let host = settings
        .docker_host
        .trim_start_matches("unix://")
        .to_owned();
    bollard::Docker::connect_with_unix(&host, 30, bollard::API_DEFAULT_VERSION).expect("docker")
}

/// Containers and networks the realizer of `subnet` labelled (its containers and its network):
/// none once it stopped.
pub fn realizer_leftovers(subnet: &str) -> Vec<String> {
    use dist_zero::hardware::cloud::realizer::LABEL_REALIZER;
    labelled(&format!("{LABEL_REALIZER}={subnet}"))
}

/// Names of the containers and networks carrying `label` (`key=value`).
fn labelled(label: &str) -> Vec<String> {
    block_on(async {
        let docker = docker();
        let filters = HashMap::from([("label".to_owned(), vec![label.to_owned()])]);
        let containers = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                ..Default::default()
            }))
            .await
            .expect("list containers");
        let networks = docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters),
            }))
            .await
            .expect("list networks");
        containers
            .into_iter()
            .filter_map(|c| c.names.and_then(|n| n.into_iter().next()))
            .chain(networks.into_iter().filter_map(|n| n.name))
            .collect()
    })
}

/// What Docker says of a container: its id, whether it runs, and its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    /// Its id.
    pub id: String,
    /// Whether it runs.
    pub running: bool,
    /// Its IPv4 addresses, on every network.
    pub ips: Vec<String>,
}

/// The container `name`, if it exists.
pub fn container_state(name: &str) -> Option<ContainerState> {
    block_on(async {
        let inspected = docker()
            .inspect_container(
                name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .ok()?;
        let ips = inspected
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default()
            .into_values()
            .filter_map(|e| e.ip_address)
            .filter(|ip| !ip.is_empty())
            .collect();
        Some(ContainerState {
            id: inspected.id?,
            running: inspected.state.and_then(|s| s.running) == Some(true),
            ips,
        })
    })
}

/// The file at `path` in container `name` (running or not), if it is there.
pub fn container_file(name: &str, path: &str) -> Option<Vec<u8>> {
    use futures_util::StreamExt;
    use std::io::Read;
    let archive = block_on(async {
        let options = bollard::query_parameters::DownloadFromContainerOptions {
            path: path.to_owned(),
        };
        let docker = docker();
        let mut stream = docker.download_from_container(name, Some(options));
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            archive.extend_from_slice(&chunk.ok()?);
        }
        Some(archive)
    })?;
    let mut archive = tar::Archive::new(archive.as_slice());
    let mut entry = archive.entries().ok()?.next()?.ok()?;
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

#[derive(Debug)]
struct Rule {
    action: String,
    skip: u32,
    status: u16,
    code: String,
    times: u32,
}

/// Faults to inject: for an API action, the error code and how many calls get it.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    injected: Mutex<HashMap<String, u32>>,
}

impl Faults {
    /// After `skip` calls of `action` go through, the next `times` fail with HTTP `status` and
    /// `code`.
    pub fn add(&self, action: &str, skip: u32, status: u16, code: &str, times: u32) {
        self.rules.lock().expect("lock").push(Rule {
            action: action.into(),
            skip,
            status,
            code: code.into(),
            times,
        });
    }

    /// How many faults were injected per error code.
    pub fn injected(&self) -> HashMap<String, u32> {
        self.injected.lock().expect("lock").clone()
    }

    fn take(&self, body: &[u8]) -> Option<(u16, String)> {
        let text = std::str::from_utf8(body).ok()?;
        let mut rules = self.rules.lock().ok()?;
        let rule = rules.iter_mut().find(|rule| {
            rule.times > 0
                && text
                    .split('&')
                    .any(|p| p == format!("Action={}", rule.action))
        })?;
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        rule.times -= 1;
        let fault = (rule.status, rule.code.clone());
        *self
            .injected
            .lock()
            .ok()?
            .entry(fault.1.clone())
            .or_default() += 1;
        Some(fault)
    }
}

#[derive(Debug)]
struct Faulty {
    inner: SharedHttpClient,
    faults: Arc<Faults>,
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    faults: Arc<Faults>,
}

impl HttpClient for Faulty {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            inner: self.inner.http_connector(settings, components),
            faults: Arc::clone(&self.faults),
        })
    }
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let fault = request
            .body()
            .bytes()
            .and_then(|body| self.faults.take(body));
        match fault {
            Some((status, code)) => {
                let xml = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code><Message>injected by the test</Message></Error></Errors><RequestID>injected</RequestID></Response>"
                );
                let status = StatusCode::try_from(status).expect("status");
                HttpConnectorFuture::ready(Ok(HttpResponse::new(status, SdkBody::from(xml))))
            }
            None => self.inner.call(request),
        }
    }
}

/// An HTTP layer that injects `faults` in front of the SDK's own client.
pub fn fault_layer(faults: Arc<Faults>) -> HttpWrapper {
    HttpWrapper(Arc::new(move |inner| {
        SharedHttpClient::new(Faulty {
            inner,
            faults: Arc::clone(&faults),
        })
    }))
}

/// The `dist-zero` binary with the emulator's settings.
pub fn dist_zero(emulator: &Emulator, args: &[&str]) -> Command {
    let cloud = &emulator.settings.cloud;
    let mut command = Command::new(env!("CARGO_BIN_EXE_dist-zero"));
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env(
            "AWS_ENDPOINT_URL",
            cloud.endpoint_url.as_deref().expect("endpoint"),
        )
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", EMULATOR_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", EMULATOR_SECRET)
        .env("DIST_ZERO_CLOUD_SUBNET", &cloud.subnet)
        .env("DIST_ZERO_CLOUD_READY_TIMEOUT_S", "300");
    command
}
