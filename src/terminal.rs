//! Text that came from a user — user names, node types, file paths, error messages that echo
//! them — made safe to print on a terminal: control characters (an escape sequence could
//! recolour, hide or rewrite what the terminal shows) and the invisible characters that reorder
//! text are shown escaped, as `\u{1b}`, `\n`, `\t`. JSON output needs none of this: serde
//! escapes every control character.
//!
//! What DistZero prints goes through [`write_out`] and [`write_err`] (the crate's `out!` and
//! `err!`): a stream whose reader has gone — `dist-zero run … | head -1` — ends the printing
//! quietly, as command-line tools do, instead of panicking.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Write};

/// `println!` through [`write_out`].
macro_rules! out {
    () => {
        $crate::terminal::write_out(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::terminal::write_out(format_args!($($arg)*))
    };
}
pub(crate) use out;

/// `eprintln!` through [`write_err`].
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::terminal::write_err(format_args!($($arg)*))
    };
}
pub(crate) use err;

/// Writes `text` and a line break on standard output. A closed or broken stdout (the reader of
/// a pipe has exited) is not an error: the line is dropped, as every later one will be.
pub fn write_out(text: fmt::Arguments<'_>) {
    write_line(&mut io::stdout().lock(), text);
}

/// Writes `text` and a line break on standard error, dropping it if stderr is closed.
pub fn write_err(text: fmt::Arguments<'_>) {
    write_line(&mut io::stderr().lock(), text);
}

/// Writes `text` and a line break to `stream`, and flushes it; a failed write only loses the
/// line (nothing else could be done with it: the stream is where it would be said).
fn write_line(stream: &mut dyn Write, text: fmt::Arguments<'_>) {
    let _ = stream
        .write_fmt(text)
        .and_then(|()| stream.write_all(b"\n"))
        .and_then(|()| stream.flush());
}

/// Whether `c` must not reach a terminal raw: a control character (C0, DEL, C1, including line
/// breaks and tabs), or a bidirectional formatting character.
fn unsafe_on_a_terminal(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every character unsafe on a terminal escaped (Rust's `escape_debug` form), so it
/// shows as one line; borrowed unchanged when there is none.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_on_a_terminal) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_on_a_terminal(c) {
            escaped.extend(c.escape_debug());
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

/// As [`escape`], line by line: the line breaks of a multi-line text stay, everything else
/// unsafe is escaped.
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && unsafe_on_a_terminal(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.split('\n').map(escape).collect::<Vec<_>>().join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_control_characters_are_escaped_and_the_rest_kept() {
        assert!(matches!(
            escape("user b — Zoë"),
            Cow::Borrowed("user b — Zoë")
        ));
        assert_eq!(escape("red\u{1b}[31m"), "red\\u{1b}[31m");
        assert_eq!(
            escape("a\nb\tc\r\u{7f}\u{9b}"),
            "a\\nb\\tc\\r\\u{7f}\\u{9b}"
        );
        assert_eq!(escape("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(escape_lines("one\u{1b}\ntwo\r"), "one\\u{1b}\ntwo\\r");
        assert!(matches!(escape_lines("one\ntwo"), Cow::Borrowed(_)));
    }

    #[test]
    fn simulated_a_stream_that_refuses_writes_loses_the_line_without_panicking() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
        }
        write_line(&mut Closed, format_args!("lost {}", 1));
        let mut open = Vec::new();
        write_line(&mut open, format_args!("kept {}", 2));
        assert_eq!(open, b"kept 2\n");
    }
}
