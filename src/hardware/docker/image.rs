//! The machine image: the statically linked `dist-zero` binary alone (as `FROM scratch` would
//! give), loaded through the Engine API from an image archive made in memory — no registry, no
//! base image, no `docker` CLI, no build container.
//!
//! The tag is the image name plus a hash of the binary, so a run reuses the image an earlier run
//! loaded from the same binary and a rebuilt binary gets a fresh image.
//!
//! The archive is a function of the binary and the image name alone (no timestamps), so the image
//! id is too. Runs that start together (from different runs directories, which share no lock)
//! may each find the image missing and load it; they load the same image, and the tag stays on
//! it. (An image built with `docker build` differs from build to build: runs racing to build one
//! used to leave the losers untagged, as `<none>` images.)

use std::collections::HashMap;
use std::path::Path;

use bollard::query_parameters::{ImportImageOptions, ListImagesOptions, RemoveImageOptions};
use bollard::Docker;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::engine::failed;
use super::{LABEL_ALL, LABEL_BINARY, LABEL_IMAGE};
use crate::hardware::HardwareError;

/// Where the binary sits in the image, and what a container runs.
const ENTRYPOINT: &str = "/dist-zero";

/// A machine image ready to load: its tag and the binary it holds.
pub struct ImageSource {
    /// `name:hash`.
    pub tag: String,
    /// The image's name (`DIST_ZERO_IMAGE`).
    name: String,
    hash: String,
    binary: Vec<u8>,
}

impl ImageSource {
    /// Reads the binary and names the image after its content.
    pub fn read(binary: &Path, name: &str) -> Result<Self, HardwareError> {
        let bytes = std::fs::read(binary).map_err(|source| HardwareError::Io {
            action: format!("read the machine binary {}", binary.display()),
            source,
        })?;
        check_static(&bytes, binary)?;
        let hash = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes));
        Ok(ImageSource {
            tag: format!("{name}:{hash}"),
            name: name.to_owned(),
            hash,
            binary: bytes,
        })
    }

    /// Loads the image unless the engine already has it.
    pub async fn ensure(&self, docker: &Docker) -> Result<(), HardwareError> {
        if docker.inspect_image(&self.tag).await.is_ok() {
            return Ok(());
        }
        tracing::info!(tag = %self.tag, "loading the machine image");
        let archive = self.archive()?;
        let options = ImportImageOptions {
            quiet: true,
            ..Default::default()
        };
        let mut progress = docker.import_image(options, bollard::body_full(archive.into()), None);
        while let Some(step) = progress.next().await {
            let info = step.map_err(failed("load the machine image"))?;
            if let Some(error) = info.error {
                return Err(HardwareError::Infrastructure(format!(
                    "Docker could not load the machine image: {error}"
                )));
            }
        }
        self.prune_older(docker).await;
        Ok(())
    }

    /// Removes images loaded from earlier binaries (best effort: one still in use stays).
    async fn prune_older(&self, docker: &Docker) {
        let filters = HashMap::from([("label".to_owned(), vec![format!("{LABEL_ALL}=true")])]);
        let options = ListImagesOptions {
            filters: Some(filters),
            ..Default::default()
        };
        let Ok(images) = docker.list_images(Some(options)).await else {
            return;
        };
        let repository = self.tag.split(':').next().unwrap_or_default();
        for image in images {
            let ours = image.labels.get(LABEL_BINARY) == Some(&self.hash);
            let same_name = image
                .repo_tags
                .iter()
                .any(|tag| tag.split(':').next() == Some(repository));
            if !ours && same_name {
                let removed = docker
                    .remove_image(&image.id, None::<RemoveImageOptions>, None)
                    .await;
                tracing::debug!(image = %image.id, ok = removed.is_ok(), "pruned an older machine image");
            }
        }
    }

    /// The image's config: the entry point, the labels, and the digest of `layer`.
    fn config(&self, layer: &[u8]) -> Vec<u8> {
        let diff_id = format!("sha256:{}", sha256_hex(layer));
        let config = serde_json::json!({
            "architecture": docker_architecture(),
            "os": "linux",
            "config": {
                "Entrypoint": [ENTRYPOINT],
                "Labels": {
                    LABEL_ALL: "true",
                    LABEL_BINARY: self.hash,
                    LABEL_IMAGE: self.name,
                },
            },
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": format!("dist-zero: the binary as {ENTRYPOINT}")}],
        });
        config.to_string().into_bytes()
    }

    /// The image archive `docker load` takes: a manifest naming the tag, the config, the layer.
    fn archive(&self) -> Result<Vec<u8>, HardwareError> {
        let layer = tar_of(&[(ENTRYPOINT.trim_start_matches('/'), 0o755, &self.binary)])?;
        let config = self.config(&layer);
        let config_name = format!("{}.json", sha256_hex(&config));
        let manifest = serde_json::json!([{
            "Config": config_name,
            "RepoTags": [self.tag],
            "Layers": ["layer.tar"],
        }])
        .to_string();
        tar_of(&[
            ("manifest.json", 0o644, manifest.as_bytes()),
            (&config_name, 0o644, &config),
            ("layer.tar", 0o644, &layer),
        ])
    }
}

/// A tar archive of `(name, mode, content)` files, owned by root, dated 1970: the same files
/// always give the same bytes.
fn tar_of(files: &[(&str, u32, &[u8])]) -> Result<Vec<u8>, HardwareError> {
    let tar_error = |source: std::io::Error| HardwareError::Io {
        action: "pack the image".into(),
        source,
    };
    let mut archive = tar::Builder::new(Vec::new());
    for (name, mode, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        archive
            .append_data(&mut header, name, *data)
            .map_err(tar_error)?;
    }
    archive.into_inner().map_err(tar_error)
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// This build's architecture as Docker names it.
fn docker_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A `FROM scratch` image has no dynamic loader: refuse a binary that needs one (an ELF with a
/// `PT_INTERP` program header), with a hint, instead of failing obscurely in the container.
fn check_static(bytes: &[u8], path: &Path) -> Result<(), HardwareError> {
    if needs_interpreter(bytes) {
        return Err(HardwareError::Infrastructure(format!(
            "{} is dynamically linked; virtual mode needs a static binary \
             (build with the repository's .cargo/config.toml, which sets +crt-static)",
            path.display()
        )));
    }
    Ok(())
}

/// Whether a 64-bit little-endian ELF has a `PT_INTERP` header (non-ELF input: false).
fn needs_interpreter(bytes: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let read = |at: usize, len: usize| bytes.get(at..at + len);
    let u16_at = |at| read(at, 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u32_at = |at| read(at, 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let u64_at = |at| {
        read(at, 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
    };
    if read(0, 5) != Some(b"\x7fELF\x02".as_slice()) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    (0..phnum).any(|i| u32_at(phoff + i * phentsize) == Some(PT_INTERP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_this_test_binary_is_static() {
        let me = std::fs::read("/proc/self/exe").expect("own binary");
        assert!(
            !needs_interpreter(&me),
            "the crate's .cargo/config.toml sets +crt-static"
        );
    }

    #[test]
    fn virtual_garbage_is_not_taken_for_a_dynamic_elf() {
        assert!(!needs_interpreter(b""));
        assert!(!needs_interpreter(b"\x7fELF\x02 truncated"));
    }

    fn entries(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
        use std::io::Read;
        tar::Archive::new(archive)
            .entries()
            .expect("entries")
            .map(|entry| {
                let mut entry = entry.expect("entry");
                let name = entry.path().expect("path").display().to_string();
                let mut data = Vec::new();
                entry.read_to_end(&mut data).expect("data");
                (name, data)
            })
            .collect()
    }

    fn source(binary: &[u8]) -> ImageSource {
        ImageSource {
            tag: "x:1".into(),
            name: "x".into(),
            hash: "1".into(),
            binary: binary.to_vec(),
        }
    }

    #[test]
    fn virtual_the_image_archive_holds_the_binary_and_names_its_digest() {
        let source = source(&[1, 2, 3]);
        let archive = source.archive().expect("packs");
        let files = entries(&archive);
        let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names.len(), 3);
        assert_eq!(names[0], "manifest.json");
        assert_eq!(names[2], "layer.tar");
        let layer = &files[2].1;
        assert_eq!(entries(layer), [("dist-zero".to_owned(), vec![1, 2, 3])]);

        let config: serde_json::Value = serde_json::from_slice(&files[1].1).expect("config");
        assert_eq!(names[1], format!("{}.json", sha256_hex(&files[1].1)));
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            format!("sha256:{}", sha256_hex(layer))
        );
        assert_eq!(config["config"]["Entrypoint"][0], "/dist-zero");
        assert_eq!(config["config"]["Labels"]["dist-zero"], "true");
        let manifest: serde_json::Value = serde_json::from_slice(&files[0].1).expect("manifest");
        assert_eq!(manifest[0]["RepoTags"][0], "x:1");
        assert_eq!(manifest[0]["Config"], names[1]);
    }

    /// Two runs loading the same binary load the same image (same id), so neither's tag
    /// leaves the other's image untagged.
    #[test]
    fn virtual_the_same_binary_always_gives_the_same_image() {
        let first = source(&[7; 1000]).archive().expect("packs");
        let second = source(&[7; 1000]).archive().expect("packs");
        assert_eq!(first, second);
        let other = source(&[8; 1000]).archive().expect("packs");
        assert_ne!(first, other);
    }

    #[test]
    fn virtual_sha256_is_the_standard_one() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
