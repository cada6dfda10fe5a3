//! The machine image: runs that start together, each finding it missing, build it once each and
//! leave exactly one image behind, tagged.
#![cfg(feature = "docker")]

mod virtual_support;

use std::collections::HashMap;
use std::sync::{Arc, Barrier};

use bollard::query_parameters::{ListImagesOptions, RemoveImageOptions};
use dist_zero::hardware::docker::{DockerHardware, LABEL_BINARY};

/// Images labelled with the binary hash `hash`: (id, tags), untagged ones with no tags.
fn images_of(hash: &str) -> Vec<(String, Vec<String>)> {
    let filters = HashMap::from([("label".to_owned(), vec![format!("{LABEL_BINARY}={hash}")])]);
    virtual_support::with_docker(|docker| async move {
        docker
            .list_images(Some(ListImagesOptions {
                all: false,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .expect("list images")
            .into_iter()
            .map(|image| {
                let tags = image
                    .repo_tags
                    .into_iter()
                    .filter(|tag| tag != "<none>:<none>")
                    .collect();
                (image.id, tags)
            })
            .collect()
    })
}

fn remove_images(ids: Vec<String>) {
    virtual_support::with_docker(|docker| async move {
        for id in ids {
            let options = RemoveImageOptions {
                force: true,
                ..Default::default()
            };
            let _ = docker.remove_image(&id, Some(options), None).await;
        }
    });
}

#[test]
fn virtual_concurrent_first_runs_leave_no_untagged_image() {
    // A binary no image has been built from yet: this one, with bytes appended (an ELF runs
    // the same with trailing data), so both runs find the image missing and build it.
    let scratch = virtual_support::Scratch::new("image-race");
    let dir = scratch.path();
    let mut binary = std::fs::read(virtual_support::binary()).expect("binary");
    binary.extend_from_slice(format!("\ndist-zero image race {:?}\n", dir).as_bytes());
    binary.extend_from_slice(
        &std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos()
            .to_le_bytes(),
    );
    let hash = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&binary));
    let path = dir.join("dist-zero");
    std::fs::write(&path, &binary).expect("binary copy");
    let image = format!("dist-zero-race-test-{}", std::process::id());

    let barrier = Arc::new(Barrier::new(2));
    let runs: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            let mut config = virtual_support::config(1);
            config.binary = path.clone();
            config.settings.machine_image = image.clone();
            // Different runs directories: the runs share no lock file.
            config.settings.runs_dir = dir.join(format!("runs-{name}"));
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                DockerHardware::start(&config).and_then(DockerHardware::finish)
            })
        })
        .collect();
    let outcomes: Vec<_> = runs
        .into_iter()
        .map(|run| run.join().expect("no panic"))
        .collect();

    let images = images_of(&hash);
    remove_images(images.iter().map(|(id, _)| id.clone()).collect());
    for outcome in outcomes {
        outcome.expect("both runs succeed");
    }
    let untagged: Vec<_> = images.iter().filter(|(_, tags)| tags.is_empty()).collect();
    assert!(untagged.is_empty(), "untagged images left: {images:?}");
    assert_eq!(
        images,
        vec![(images[0].0.clone(), vec![format!("{image}:{hash}")])],
        "one image, with the shared tag only"
    );
}
