//! An instance's user data: a POSIX shell script that arms the time-to-live timer, fetches the
//! runner's own `dist-zero` binary through a presigned URL, checks its SHA-256, writes the
//! machine config and `exec`s `dist-zero machine`. No SSH, no key pair, no AWS credentials.

/// Where the bootstrap puts the binary and the config on the instance.
pub const INSTALL_DIR: &str = "/opt/dist-zero";
/// The line every DistZero user data starts with after the shebang (the realizer checks it).
pub const MARKER: &str = "# dist-zero bootstrap";

/// What one machine's bootstrap needs.
pub struct Bootstrap<'a> {
    /// The run.
    pub run_id: &'a str,
    /// The machine's name (`m0`, ...).
    pub machine: &'a str,
    /// A presigned GET URL of the binary.
    pub binary_url: &'a str,
    /// The binary's SHA-256, lowercase hex.
    pub binary_sha256: &'a str,
    /// The machine config, JSON.
    pub config_json: &'a str,
    /// Seconds until the instance powers itself off (and so terminates).
    pub ttl_s: u64,
}

impl Bootstrap<'_> {
    /// The script. Single quotes in the URL or the config are escaped for the shell.
    pub fn script(&self) -> String {
        let Bootstrap {
            run_id,
            machine,
            binary_url,
            binary_sha256,
            config_json,
            ttl_s,
        } = self;
        let url = quote(binary_url);
        let config = quote(config_json);
        format!(
            r#"#!/bin/sh
{MARKER}: run {run_id}, machine {machine}
set -eu
# A bootstrap that fails powers the instance off (and so terminates it): the runner sees at once
# that the machine is gone instead of waiting for it. `exec` below replaces this shell, trap and all.
trap 'poweroff -f || poweroff' EXIT
# Time to live: power off (the instance's shutdown behaviour is terminate) even if the runner dies.
( sleep {ttl_s}; poweroff -f || poweroff ) >/dev/null 2>&1 &
mkdir -p {INSTALL_DIR}
cd {INSTALL_DIR}
# The download is tried again (an instance's network may come up after its user data starts).
if command -v curl >/dev/null 2>&1; then
  curl -fsS --retry 10 --retry-connrefused --retry-delay 1 -o dist-zero.download {url}
else
  tries=0
  until wget -q -O dist-zero.download {url}; do
    tries=$((tries + 1))
    [ "$tries" -lt 10 ] || exit 1
    sleep 1
  done
fi
echo "{binary_sha256}  dist-zero.download" | sha256sum -c - >/dev/null
chmod 755 dist-zero.download
mv dist-zero.download dist-zero
printf '%s' {config} > machine.json
chmod 600 machine.json
exec {INSTALL_DIR}/dist-zero machine --config {INSTALL_DIR}/machine.json
"#
        )
    }
}

/// `text` as one single-quoted shell word.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_bootstrap_checks_the_binary_then_execs_the_machine() {
        let script = Bootstrap {
            run_id: "dz-1",
            machine: "m0",
            binary_url: "http://127.0.0.1:5000/b/k?X-Amz-Signature=1&a=it's",
            binary_sha256: "ab",
            config_json: r#"{"run_id":"dz-1"}"#,
            ttl_s: 60,
        }
        .script();
        let check = script.find("sha256sum -c").expect("checksum");
        let exec = script.find("exec /opt").expect("exec");
        assert!(check < exec);
        assert!(script.contains("sleep 60; poweroff"));
        assert!(script.contains("--retry-connrefused"), "curl tries again");
        assert!(script.contains("until wget"), "wget tries again");
        let trap = script
            .find("trap 'poweroff")
            .expect("a failed bootstrap powers off");
        assert!(trap < script.find("sha256sum").expect("checksum"));
        assert!(script.contains(r"a=it'\''s'"));
        assert!(script.contains(r#"printf '%s' '{"run_id":"dz-1"}' > machine.json"#));
        assert!(!script.contains("AWS_SECRET"));
    }
}
