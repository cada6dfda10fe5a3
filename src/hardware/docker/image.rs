//! The machine image: `FROM scratch` plus the statically linked `dist-zero` binary, built through
//! the Engine API from an in-memory build context — no registry, no base image, no `docker` CLI.
//!
//! The tag is the image name plus a hash of the binary, so a run reuses the image an earlier run
//! built from the same binary and a rebuilt binary gets a fresh image.

use std::collections::HashMap;
use std::path::Path;

use bollard::query_parameters::{BuildImageOptions, ListImagesOptions, RemoveImageOptions};
use bollard::Docker;
use futures_util::StreamExt;

use super::engine::failed;
use super::{LABEL_ALL, LABEL_BINARY};
use crate::hardware::HardwareError;

const DOCKERFILE: &str = "FROM scratch\nCOPY dist-zero /dist-zero\nENTRYPOINT [\"/dist-zero\"]\n";

/// A machine image ready to build: its tag and its build context.
pub struct ImageSource {
    /// `name:hash`.
    pub tag: String,
    hash: String,
    binary: Vec<u8>,
}

impl ImageSource {
    /// Reads the binary and names the image after its content.
    pub fn read(binary: &Path, name: &str) -> Result<Self, HardwareError> {
        let bytes = std::fs::read(binary).map_err(|e| {
            HardwareError::Infrastructure(format!(
                "cannot read the machine binary {}: {e}",
                binary.display()
            ))
        })?;
        check_static(&bytes, binary)?;
        let hash = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes));
        Ok(ImageSource {
            tag: format!("{name}:{hash}"),
            hash,
            binary: bytes,
        })
    }

    /// Builds the image unless the engine already has it.
    pub async fn ensure(&self, docker: &Docker) -> Result<(), HardwareError> {
        if docker.inspect_image(&self.tag).await.is_ok() {
            return Ok(());
        }
        tracing::info!(tag = %self.tag, "building the machine image");
        let context = self.context()?;
        let options = BuildImageOptions {
            dockerfile: "Dockerfile".into(),
            t: Some(self.tag.clone()),
            rm: true,
            forcerm: true,
            labels: Some(HashMap::from([
                (LABEL_ALL.to_owned(), "true".to_owned()),
                (LABEL_BINARY.to_owned(), self.hash.clone()),
            ])),
            ..Default::default()
        };
        let mut progress =
            docker.build_image(options, None, Some(bollard::body_full(context.into())));
        while let Some(step) = progress.next().await {
            let info = step.map_err(failed("build the machine image"))?;
            if let Some(error) = info.error {
                return Err(HardwareError::Infrastructure(format!(
                    "Docker could not build the machine image: {error}"
                )));
            }
        }
        self.prune_older(docker).await;
        Ok(())
    }

    /// Removes images built from earlier binaries (best effort: one still in use stays).
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

    /// A tar archive holding the Dockerfile and the binary.
    fn context(&self) -> Result<Vec<u8>, HardwareError> {
        let tar_error = |e: std::io::Error| {
            HardwareError::Infrastructure(format!("cannot pack the image: {e}"))
        };
        let mut archive = tar::Builder::new(Vec::new());
        for (name, mode, data) in [
            ("Dockerfile", 0o644, DOCKERFILE.as_bytes()),
            ("dist-zero", 0o755, self.binary.as_slice()),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(mode);
            header.set_cksum();
            archive
                .append_data(&mut header, name, data)
                .map_err(tar_error)?;
        }
        archive.into_inner().map_err(tar_error)
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

    #[test]
    fn virtual_the_build_context_holds_the_binary() {
        let source = ImageSource {
            tag: "x:1".into(),
            hash: "1".into(),
            binary: vec![1, 2, 3],
        };
        let context = source.context().expect("packs");
        let mut archive = tar::Archive::new(context.as_slice());
        let names: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["Dockerfile", "dist-zero"]);
    }
}
