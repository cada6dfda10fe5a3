//! Quoting for POSIX shells, so that a command DistZero prints (the replay of a failing seed)
//! can be pasted into `sh`, `bash` or `zsh` and run as printed, whatever its paths contain.

use std::borrow::Cow;

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
    fn simulated_paths_that_look_like_flags_are_made_relative() {
        assert_eq!(quote_path("-x.json"), "./-x.json");
        assert_eq!(quote_path("- x.json"), "'./- x.json'");
        assert_eq!(quote_path("/tmp/-x.json"), "/tmp/-x.json");
    }
}
