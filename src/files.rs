//! Files a user names — a scenario, a machine config, a `.env` file — read with a size limit, so
//! that no file (not even `/dev/zero`) can make DistZero read without end.

use std::io::Read;
use std::path::Path;

/// The most bytes DistZero reads from any file a user names: 64 MiB.
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// Why a file could not be read as text.
#[derive(Debug, thiserror::Error)]
pub enum ReadProblem {
    /// The operating system refused (no such file, no permission, a directory…).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file holds more than [`MAX_INPUT_BYTES`].
    #[error("it is larger than the {} MiB limit", MAX_INPUT_BYTES / (1024 * 1024))]
    TooLarge,
    /// The file is not UTF-8.
    #[error("it is not UTF-8 text: {0}")]
    NotUtf8(#[from] std::string::FromUtf8Error),
}

/// Reads the whole of `path` as UTF-8 text, refusing a file larger than [`MAX_INPUT_BYTES`]
/// after reading at most one byte more than that.
pub fn read_text(path: &Path) -> Result<String, ReadProblem> {
    read_text_from(std::fs::File::open(path)?)
}

/// Reads the whole of `reader` as UTF-8 text, refusing more than [`MAX_INPUT_BYTES`].
pub fn read_text_from(reader: impl Read) -> Result<String, ReadProblem> {
    let mut bytes = Vec::new();
    reader.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(ReadProblem::TooLarge);
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
            Err(ReadProblem::TooLarge)
        ));
        let exactly = std::io::repeat(b' ').take(MAX_INPUT_BYTES);
        assert_eq!(
            read_text_from(exactly).map(|text| text.len() as u64).ok(),
            Some(MAX_INPUT_BYTES)
        );
        let invalid = read_text_from(&[0xff, 0xfe][..]).expect_err("not UTF-8");
        assert!(invalid.to_string().contains("not UTF-8"), "{invalid}");
        assert_eq!(
            ReadProblem::TooLarge.to_string(),
            "it is larger than the 64 MiB limit"
        );
    }
}
