//! Quoting for POSIX shells, so that a command DistZero prints (the replay of a failing seed)
//! can be pasted into `sh`, `bash` or `zsh` and run as printed, whatever its paths contain.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;

/// Characters that never need quoting in any POSIX shell word (nor at its start: `~`, `#`
/// and `=` are left out).
fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ',' | ':' | '+' | '@' | '%')
}

/// `word` as one shell word: unchanged if it has nothing special, otherwise in single quotes,
/// each single quote it holds written `'\''`. Everything between single quotes is literal, so
/// this round-trips every string (a NUL byte, which no argument can hold, aside).
pub fn quote(word: &str) -> Cow<'_, str> {
    if !word.is_empty() && word.chars().all(plain) {
        return Cow::Borrowed(word);
    }
    Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
}

/// A path as one shell word that no command-line parser takes for a flag: a relative path
/// that starts with `-` is written `./-…`.
pub fn quote_path(path: &str) -> Cow<'_, str> {
    if path.starts_with('-') {
        Cow::Owned(quote(&format!("./{path}")).into_owned())
    } else {
        quote(path)
    }
}

/// A path as one shell word, as [`quote_path`], for any path the system can name: the bytes
/// that are not UTF-8 (which no `&str` holds) are written `"$(printf '\377')"`, so the word
/// still names the same file rather than one with U+FFFD in its name.
pub fn quote_os_path(path: &OsStr) -> String {
    if let Some(path) = path.to_str() {
        return quote_path(path).into_owned();
    }
    let bytes = path.as_bytes();
    let mut word = String::new();
    if bytes.starts_with(b"-") {
        word.push_str("./");
    }
    for chunk in bytes.utf8_chunks() {
        if !chunk.valid().is_empty() {
            word.push_str(&quote(chunk.valid()));
        }
        if !chunk.invalid().is_empty() {
            word.push_str("\"$(printf '");
            for byte in chunk.invalid() {
                let _ = write!(word, "\\{byte:03o}");
            }
            word.push_str("')\"");
        }
    }
    word
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `sh` makes of `quoted`: the words it passes to `printf`, each followed by NUL.
    fn through_sh(quoted: &str) -> Vec<u8> {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\0' {quoted}"))
            .output()
            .expect("sh runs")
            .stdout
    }

    #[test]
    fn simulated_quoted_words_round_trip_through_sh() {
        for word in [
            "examples/all_faults.json",
            "",
            "with space.json",
            "it's.json",
            "\"double\" and 'single'",
            "$HOME `id` $(id) \\ ; & | < > * ? [a] {b,c} ~ # ! =",
            "new\nline\ttab",
            "'",
            "''",
            "-rf",
            "Zoë/場景.json",
        ] {
            let quoted = quote(word);
            let mut expected = word.as_bytes().to_vec();
            expected.push(0);
            assert_eq!(through_sh(&quoted), expected, "{word:?} quoted as {quoted}");
        }
        assert_eq!(
            quote("examples/all_faults.json"),
            "examples/all_faults.json"
        );
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn simulated_paths_that_are_not_utf8_round_trip_through_sh() {
        for bytes in [
            &b"caf\xe9.json"[..],
            b"\xff",
            b"-\xfe x's.json",
            b"dir/\xc3(\x80\x80.json",
        ] {
            let quoted = quote_os_path(OsStr::from_bytes(bytes));
            let sh_sees: &[u8] = &through_sh(&quoted);
            let expected = if bytes.starts_with(b"-") {
                [b"./", bytes, b"\0"].concat()
            } else {
                [bytes, b"\0"].concat()
            };
            assert_eq!(sh_sees, expected, "{bytes:?} quoted as {quoted}");
        }
        assert_eq!(quote_os_path(OsStr::new("a b.json")), "'a b.json'");
    }

    #[test]
    fn simulated_paths_that_look_like_flags_are_made_relative() {
        assert_eq!(quote_path("-x.json"), "./-x.json");
        assert_eq!(quote_path("- x.json"), "'./- x.json'");
        assert_eq!(quote_path("/tmp/-x.json"), "/tmp/-x.json");
    }
}
