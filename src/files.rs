//! Files a user names — a scenario, a machine config, a `.env` file — read with a size limit, so
//! that no file (not even `/dev/zero`) can make DistZero read without end.

use std::io::Read;
use std::path::Path;

/// The most bytes DistZero reads from a machine config or a `.env` file: 64 MiB.
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// The most bytes DistZero reads from a scenario file unless told otherwise (`--max-input-mb`):
/// 256 MiB, room for a few hundred thousand users listed one by one (a 100,000-user file of 20
/// increments each is 91 MB). A file is held whole while it is parsed, so this also bounds the
/// memory an endless or enormous file can take.
pub const MAX_SCENARIO_BYTES: u64 = 256 * 1024 * 1024;

/// Why a file could not be read as text.
#[derive(Debug, thiserror::Error)]
pub enum ReadProblem {
    /// The operating system refused (no such file, no permission, a directory…).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file holds more than the limit it was read with.
    #[error("it is larger than the {} limit", size_in_words(*limit))]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The file is not UTF-8.
    #[error("it is not UTF-8 text: {0}")]
    NotUtf8(#[from] std::string::FromUtf8Error),
}

/// A limit as the messages say it: `64 MiB`, or a count of bytes if it is no whole number of MiB.
fn size_in_words(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes}-byte")
    }
}

/// Reads the whole of `path` as UTF-8 text, refusing a file larger than [`MAX_INPUT_BYTES`]
/// after reading at most one byte more than that.
pub fn read_text(path: &Path) -> Result<String, ReadProblem> {
    read_text_limited(path, MAX_INPUT_BYTES)
}

/// Reads the whole of `path` as UTF-8 text, refusing a file larger than `limit` bytes after
/// reading at most one byte more than that.
pub fn read_text_limited(path: &Path, limit: u64) -> Result<String, ReadProblem> {
    let file = std::fs::File::open(path)?;
    // A regular file says how long it is: room for all of it at once, not grown by doubling.
    let expected = file.metadata().map_or(0, |meta| meta.len()).min(limit);
    let expected = usize::try_from(expected).unwrap_or(0);
    read_into(file, limit, Vec::with_capacity(expected.saturating_add(1)))
}

/// Reads the whole of `reader` as UTF-8 text, refusing more than [`MAX_INPUT_BYTES`].
pub fn read_text_from(reader: impl Read) -> Result<String, ReadProblem> {
    read_limited_from(reader, MAX_INPUT_BYTES)
}

/// Reads the whole of `reader` as UTF-8 text, refusing more than `limit` bytes.
pub fn read_limited_from(reader: impl Read, limit: u64) -> Result<String, ReadProblem> {
    read_into(reader, limit, Vec::new())
}

/// Reads `reader` into `bytes` as UTF-8 text, refusing more than `limit` bytes. The buffer
/// grows by doubling but never past the limit and a byte, so that an endless file costs no
/// more memory than about one and a half times the limit while it is refused (a regular file
/// of known length is read into a buffer of its length).
fn read_into(reader: impl Read, limit: u64, mut bytes: Vec<u8>) -> Result<String, ReadProblem> {
    let most = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
    let mut taken = reader.take(limit.saturating_add(1));
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let read = match taken.read(&mut chunk) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error.into()),
        };
        let needed = bytes.len() + read;
        if bytes.capacity() < needed {
            // Doubling, but straight to the most once past half of it: never a buffer of the
            // limit copied into one a byte larger.
            let doubled = bytes.capacity().saturating_mul(2);
            let grown = if doubled > most / 2 { most } else { doubled }.max(needed);
            bytes.reserve_exact(grown - bytes.len());
        }
        bytes.extend_from_slice(&chunk[..read]);
    }
    if bytes.len() as u64 > limit {
        return Err(ReadProblem::TooLarge { limit });
    }
    Ok(String::from_utf8(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_reading_stops_one_byte_past_the_limit() {
        let endless = std::io::repeat(b' ');
        assert!(matches!(
            read_text_from(endless),
            Err(ReadProblem::TooLarge {
                limit: MAX_INPUT_BYTES
            })
        ));
        let exactly = std::io::repeat(b' ').take(MAX_INPUT_BYTES);
        assert_eq!(
            read_text_from(exactly).map(|text| text.len() as u64).ok(),
            Some(MAX_INPUT_BYTES)
        );
        let invalid = read_text_from(&[0xff, 0xfe][..]).expect_err("not UTF-8");
        assert!(invalid.to_string().contains("not UTF-8"), "{invalid}");
        assert_eq!(
            ReadProblem::TooLarge {
                limit: MAX_INPUT_BYTES
            }
            .to_string(),
            "it is larger than the 64 MiB limit"
        );
    }

    #[test]
    fn simulated_a_limit_of_its_own_is_kept_to_the_byte() {
        let endless = std::io::repeat(b' ');
        let refused = read_limited_from(endless, 10).expect_err("endless");
        assert_eq!(refused.to_string(), "it is larger than the 10-byte limit");
        assert_eq!(
            read_limited_from(&b"0123456789"[..], 10).ok().as_deref(),
            Some("0123456789")
        );
        let scenario_limit =
            read_limited_from(std::io::repeat(b' '), MAX_SCENARIO_BYTES).expect_err("endless");
        assert_eq!(
            scenario_limit.to_string(),
            "it is larger than the 256 MiB limit"
        );
    }
}
