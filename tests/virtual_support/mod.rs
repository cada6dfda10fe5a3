//! Shared by the virtual-mode tests: a config for N containers from this build's binary, and a
//! check that nothing labelled with a run is left in Docker.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use bollard::query_parameters::{ListContainersOptions, ListNetworksOptions};
use dist_zero::hardware::docker::{VirtualConfig, LABEL_RUN};
use dist_zero::settings::Settings;

/// A system of `machines` containers running the `dist-zero` binary cargo built for these tests.
pub fn config(machines: u32) -> VirtualConfig {
    let settings = Settings::load().expect("settings load");
    VirtualConfig::new(
        machines,
        7,
        PathBuf::from(env!("CARGO_BIN_EXE_dist-zero")),
        settings,
    )
}

/// Names of containers and networks still carrying `run_id`'s label.
pub fn leftovers(run_id: &str) -> Vec<String> {
    let settings = Settings::load().expect("settings load");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let host = settings
            .docker_host
            .trim_start_matches("unix://")
            .to_owned();
        let docker = bollard::Docker::connect_with_unix(&host, 30, bollard::API_DEFAULT_VERSION)
            .expect("docker")
            .negotiate_version()
            .await
            .expect("docker answers");
        let filters = HashMap::from([("label".to_owned(), vec![format!("{LABEL_RUN}={run_id}")])]);
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
