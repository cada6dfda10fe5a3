//! Every link in the README and the guide (`docs/**/*.md`) resolves, without the network.
//!
//! A relative link must name a file or directory inside the repository and, after a `#`, a
//! heading of the Markdown file it names (GitHub's anchors: the heading's text in lower case,
//! punctuation dropped, spaces as hyphens, `-1`, `-2`, … for repeats). Any other link must be an
//! `https` URL, which is not fetched. Code blocks and code spans are not read for links.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// The repository's root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The pages to check, as paths relative to the repository: the README and every Markdown file
/// under `docs/`, in order.
fn pages(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(root.join(dir)) else {
            return;
        };
        let mut entries: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| dir.join(entry.file_name())))
            .collect();
        entries.sort();
        for path in entries {
            if root.join(&path).is_dir() {
                walk(root, &path, found);
            } else if path.extension().is_some_and(|ext| ext == "md") {
                found.push(path);
            }
        }
    }
    let mut found = vec![PathBuf::from("README.md")];
    walk(root, Path::new("docs"), &mut found);
    found
}

/// What the checker may ask of the repository.
trait Repository {
    /// The text of the Markdown file at `path` (relative to the root), if there is one.
    fn markdown(&self, path: &Path) -> Option<String>;
    /// Whether a file or directory exists at `path` (relative to the root).
    fn exists(&self, path: &Path) -> bool;
}

/// The repository on disk.
struct OnDisk(PathBuf);

impl Repository for OnDisk {
    fn markdown(&self, path: &Path) -> Option<String> {
        fs::read_to_string(self.0.join(path)).ok()
    }

    fn exists(&self, path: &Path) -> bool {
        self.0.join(path).exists()
    }
}

/// A link found in a page: its target as written and the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    target: String,
    line: usize,
}

/// The text of `markdown` outside fenced code blocks and code spans, with every character of
/// those replaced by a space (line breaks kept), so that offsets and line numbers stay true.
fn prose(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut fence: Option<String> = None;
    for line in markdown.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let marker: String = trimmed
            .chars()
            .take_while(|c| *c == '`' || *c == '~')
            .collect();
        let opens = marker.len() >= 3 && marker.chars().all(|c| c == marker.as_bytes()[0] as char);
        match &fence {
            Some(open)
                if opens && trimmed.trim_end() == marker && marker.starts_with(open.as_str()) =>
            {
                fence = None;
                out.push_str(&blank(line));
            }
            Some(_) => out.push_str(&blank(line)),
            None if opens => {
                fence = Some(marker);
                out.push_str(&blank(line));
            }
            None => out.push_str(line),
        }
    }
    mask_code_spans(&out)
}

/// `text` with every character but line breaks replaced by a space.
fn blank(text: &str) -> String {
    text.chars()
        .map(|c| if c == '\n' { '\n' } else { ' ' })
        .collect()
}

/// `text` with each code span (a run of backticks up to the next run of the same length)
/// blanked out.
fn mask_code_spans(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = chars.clone();
    let run_at = |i: usize| chars[i..].iter().take_while(|c| **c == '`').count();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            i += 1;
            continue;
        }
        let open = run_at(i);
        let mut j = i + open;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let run = run_at(j);
                if run == open {
                    close = Some(j);
                    break;
                }
                j += run;
            } else {
                j += 1;
            }
        }
        match close {
            Some(j) => {
                for c in &mut out[i..j + open] {
                    if *c != '\n' {
                        *c = ' ';
                    }
                }
                i = j + open;
            }
            None => i += open,
        }
    }
    out.into_iter().collect()
}

/// The line (from 1) of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

/// Every link in `markdown`: inline links and images (`[text](target)`, `![alt](target)`),
/// reference definitions (`[name]: target`) and autolinks (`<scheme:…>`), and every bare
/// `http://` or `https://` address in the prose.
fn links(markdown: &str) -> Vec<Link> {
    let text = prose(markdown);
    let mut found = Vec::new();
    // Inline links: `](` followed by a target up to the matching `)`.
    let mut from = 0;
    while let Some(at) = text[from..].find("](") {
        let start = from + at + 2;
        let mut depth = 0usize;
        let mut end = None;
        for (offset, c) in text[start..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => {
                    end = Some(start + offset);
                    break;
                }
                ')' => depth -= 1,
                '\n' => break,
                _ => {}
            }
        }
        if let Some(end) = end {
            let inner = text[start..end].trim();
            let target = match inner.strip_prefix('<') {
                Some(rest) => rest.split('>').next().unwrap_or_default(),
                None => inner.split_whitespace().next().unwrap_or_default(),
            };
            found.push(Link {
                target: target.to_owned(),
                line: line_of(&text, start),
            });
            from = end;
        } else {
            from = start;
        }
    }
    // Reference definitions.
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix('[') {
            if let Some((_, target)) = rest.split_once("]:") {
                if let Some(target) = target.split_whitespace().next() {
                    found.push(Link {
                        target: target.trim_matches(['<', '>']).to_owned(),
                        line: line_of(&text, offset),
                    });
                }
            }
        }
        offset += line.len();
    }
    // Autolinks and bare addresses (GitHub links these too).
    for scheme in ["http://", "https://"] {
        for (at, _) in text.match_indices(scheme) {
            let already = found
                .iter()
                .any(|link| link.target.starts_with(scheme) && link.line == line_of(&text, at));
            if !already {
                let target: String = text[at..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && !matches!(c, '>' | ')' | '"'))
                    .collect();
                found.push(Link {
                    target,
                    line: line_of(&text, at),
                });
            }
        }
    }
    found
}

/// GitHub's anchor for a heading's text.
fn slug(heading: &str) -> String {
    let text = strip_inline_markup(heading);
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// A heading's text as GitHub reads it for its anchor: links as their text, code spans as their
/// content (the backticks and emphasis go with the punctuation).
fn strip_inline_markup(heading: &str) -> String {
    let mut out = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](") else {
            break;
        };
        let Some(end) = rest[open + close..].find(')') else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&rest[open + 1..open + close]);
        rest = &rest[open + close + end + 1..];
    }
    out.push_str(rest);
    out
}

/// The anchors of every heading in `markdown` (ATX headings outside code blocks), with GitHub's
/// `-1`, `-2`, … for repeated ones.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut fence = false;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = !fence;
            continue;
        }
        if fence {
            continue;
        }
        let hashes = trimmed.chars().take_while(|c| *c == '#').count();
        if !(1..=6).contains(&hashes) {
            continue;
        }
        let text = &trimmed[hashes..];
        if !(text.is_empty() || text.starts_with(' ')) {
            continue;
        }
        let text = text.trim().trim_end_matches('#').trim();
        let base = slug(text);
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// `base`'s directory joined with `relative`, with `.` and `..` resolved; `None` if it leaves
/// the repository.
fn resolve(page: &Path, relative: &str) -> Option<PathBuf> {
    let mut parts: Vec<String> = page
        .parent()
        .into_iter()
        .flat_map(|dir| dir.components())
        .filter_map(|part| match part {
            Component::Normal(name) => Some(name.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    for part in relative.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            name => parts.push(name.to_owned()),
        }
    }
    Some(parts.iter().collect())
}

/// Every broken link of `page`, one line each (`page:line: target: why`).
fn check_page(repo: &dyn Repository, page: &Path) -> Vec<String> {
    let Some(markdown) = repo.markdown(page) else {
        return vec![format!("{}: cannot be read", page.display())];
    };
    let mut broken = Vec::new();
    for link in links(&markdown) {
        let mut fail = |why: &str| {
            broken.push(format!(
                "{}:{}: {}: {why}",
                page.display(),
                link.line,
                link.target
            ))
        };
        let target = link.target.as_str();
        if target.is_empty() {
            fail("empty link");
            continue;
        }
        if let Some(scheme_end) = target.find(':') {
            let scheme = &target[..scheme_end];
            if scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            {
                if scheme != "https" {
                    fail("links outside the repository must be https URLs");
                } else if target.len() <= "https://".len() {
                    fail("an https URL without a host");
                }
                continue;
            }
        }
        if target.starts_with('/') {
            fail("an absolute path: link relative to the page");
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (target, None),
        };
        let file = if path.is_empty() {
            page.to_path_buf()
        } else {
            match resolve(page, path) {
                Some(file) => file,
                None => {
                    fail("leads outside the repository");
                    continue;
                }
            }
        };
        if !repo.exists(&file) {
            fail(&format!("no file {}", file.display()));
            continue;
        }
        if let Some(anchor) = anchor {
            match repo.markdown(&file) {
                Some(text) if file.extension().is_some_and(|ext| ext == "md") => {
                    if !anchors(&text).contains(anchor) {
                        fail(&format!(
                            "no heading with anchor #{anchor} in {}",
                            file.display()
                        ));
                    }
                }
                _ => fail(&format!(
                    "#{anchor} in {}, which is not a Markdown file",
                    file.display()
                )),
            }
        }
    }
    broken
}

#[test]
fn simulated_every_link_in_the_docs_resolves() {
    let root = root();
    let pages = pages(&root);
    assert!(
        pages.len() > 10,
        "the README and the guide's pages: found {pages:?}"
    );
    let repo = OnDisk(root);
    let broken: Vec<String> = pages
        .iter()
        .flat_map(|page| check_page(&repo, page))
        .collect();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn simulated_every_guide_page_is_linked_from_the_index_and_the_readme() {
    let root = root();
    let index = fs::read_to_string(root.join("docs/README.md")).expect("docs/README.md");
    let readme = fs::read_to_string(root.join("README.md")).expect("README.md");
    for page in pages(&root) {
        let Ok(in_docs) = page.strip_prefix("docs") else {
            continue;
        };
        if page == Path::new("docs/README.md") {
            continue;
        }
        let name = in_docs.to_string_lossy().into_owned();
        let in_index = links(&index)
            .iter()
            .any(|link| link.target.split('#').next() == Some(&name));
        let in_readme = links(&readme)
            .iter()
            .any(|link| link.target.split('#').next() == Some(&format!("docs/{name}")));
        assert!(in_index, "docs/README.md does not link {name}");
        assert!(in_readme, "README.md does not link docs/{name}");
    }
}

/// A repository in memory, for testing the checker itself.
struct InMemory(Vec<(&'static str, &'static str)>);

impl Repository for InMemory {
    fn markdown(&self, path: &Path) -> Option<String> {
        self.0
            .iter()
            .find(|(name, _)| Path::new(name) == path)
            .map(|(_, text)| (*text).to_owned())
    }

    fn exists(&self, path: &Path) -> bool {
        self.0.iter().any(|(name, _)| {
            let name = Path::new(name);
            name == path || name.starts_with(path)
        })
    }
}

#[test]
fn simulated_the_link_checker_finds_every_kind_of_broken_link() {
    let page = "# Guide\n\
        \n\
        ## Cloud mode (EC2)\n\
        ## What `--json` prints\n\
        ## Faults\n\
        ## Faults\n\
        \n\
        Good: [a](other.md), [b](other.md#the-other-page), [c](#cloud-mode-ec2),\n\
        [d](#what---json-prints), [e](#faults-1), ![f](report/plot.svg), [g](../README.md),\n\
        [h](https://example.com/x \"title\"), [i](report/), <https://example.com>.\n\
        \n\
        Broken: [j](missing.md), [k](other.md#nowhere), [l](#faults-2),\n\
        [m](http://example.com), [n](../../outside.md), [o](/docs/other.md),\n\
        [p](report/plot.svg#top), [q](file:///etc/passwd), see http://plain.example.\n\
        \n\
        [r]: gone.md\n\
        \n\
        Not links: `[s](nowhere.md)`, ``[t](`x`)(nowhere.md)``.\n\
        \n\
        ```text\n\
        [u](nowhere.md) http://in.a.code.block\n\
        ```\n";
    let repo = InMemory(vec![
        ("README.md", "# Top\n"),
        ("docs/guide.md", page),
        ("docs/other.md", "# The other page\n"),
        ("docs/report/plot.svg", "<svg/>"),
    ]);
    let broken = check_page(&repo, Path::new("docs/guide.md"));
    let targets: Vec<&str> = broken
        .iter()
        .map(|line| line.split(": ").nth(1).unwrap_or_default())
        .collect();
    assert_eq!(
        targets,
        vec![
            "missing.md",
            "other.md#nowhere",
            "#faults-2",
            "http://example.com",
            "../../outside.md",
            "/docs/other.md",
            "report/plot.svg#top",
            "file:///etc/passwd",
            "gone.md",
            "http://plain.example.",
        ],
        "{broken:#?}"
    );
    assert!(broken[0].starts_with("docs/guide.md:12: "), "{}", broken[0]);
    assert!(
        broken[4].contains("outside the repository"),
        "{}",
        broken[4]
    );
    assert!(broken[3].contains("https"), "{}", broken[3]);
}

#[test]
fn simulated_anchors_follow_github_slugs() {
    let cases = [
        ("Cloud mode (EC2)", "cloud-mode-ec2"),
        (
            "Testing one node: the harness",
            "testing-one-node-the-harness",
        ),
        ("What `--json` prints", "what---json-prints"),
        ("**Bold** and [a link](x.md)", "bold-and-a-link"),
        ("snake_case stays", "snake_case-stays"),
        ("Ünïcode — dash", "ünïcode--dash"),
    ];
    for (heading, anchor) in cases {
        assert_eq!(slug(heading), anchor, "{heading}");
    }
}
