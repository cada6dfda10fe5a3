//! An instance's user data: a POSIX shell script that arms the time-to-live timer, fetches the
//! runner's own `dist-zero` binary through a presigned URL, checks its SHA-256, writes the
//! machine config, installs a per-boot script and `exec`s `dist-zero machine`. No SSH, no key
//! pair, no AWS credentials.
//!
//! EC2 runs user data at an instance's first boot only. So that an instance stopped and started
//! again (a crash and restart) runs its machine again, reading its disk back, the bootstrap
//! writes [`PER_BOOT`], which cloud-init runs at every boot after that (its `scripts_per_boot`
//! module runs before the user data at the first boot, when the script does not exist yet): it
//! arms what is left of the time to live and `exec`s the machine on the binary and config the
//! first boot verified and wrote.

/// Where the bootstrap puts the binary and the config on the instance.
pub const INSTALL_DIR: &str = "/opt/dist-zero";
/// Where cloud-init keeps the scripts it runs at every boot.
pub const PER_BOOT_DIR: &str = "/var/lib/cloud/scripts/per-boot";
/// The script cloud-init runs at every boot (written by the first; see the module's doc).
pub const PER_BOOT: &str = "/var/lib/cloud/scripts/per-boot/dist-zero-machine";
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
        let per_boot = per_boot_script();
        format!(
            r#"#!/bin/sh
{MARKER}: run {run_id}, machine {machine}
set -eu
# A bootstrap that fails powers the instance off (and so terminates it): the runner sees at once
# that the machine is gone instead of waiting for it. `exec` below replaces this shell, trap and all.
trap 'poweroff -f || poweroff' EXIT
mkdir -p {INSTALL_DIR}
cd {INSTALL_DIR}
# Time to live: power off (the instance's shutdown behaviour is terminate) even if the runner dies.
# The deadline is kept for the boots after this one.
echo $(( $(date +%s) + {ttl_s} )) > expires
( sleep {ttl_s}; poweroff -f || poweroff ) >/dev/null 2>&1 &
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
# Every later boot (a stop and start: a crash and restart) runs the machine again on its disk.
mkdir -p {PER_BOOT_DIR}
cat > {PER_BOOT}.new <<'PER_BOOT'
{per_boot}PER_BOOT
chmod 755 {PER_BOOT}.new
mv {PER_BOOT}.new {PER_BOOT}
exec {INSTALL_DIR}/dist-zero machine --config {INSTALL_DIR}/machine.json
"#
        )
    }
}

/// What cloud-init runs at every boot after the first: the rest of the time to live, then the
/// machine on the verified binary and the config (its disk is in the log directory).
fn per_boot_script() -> String {
    format!(
        r#"#!/bin/sh
{MARKER}: every boot after the first
set -eu
trap 'poweroff -f || poweroff' EXIT
cd {INSTALL_DIR}
left=$(( $(cat expires) - $(date +%s) ))
[ "$left" -gt 0 ] || exit 1
( sleep "$left"; poweroff -f || poweroff ) >/dev/null 2>&1 &
exec {INSTALL_DIR}/dist-zero machine --config {INSTALL_DIR}/machine.json
"#
    )
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
        let exec = script.rfind("exec /opt").expect("exec");
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

    fn parses(script: &str) {
        use std::io::Write as _;
        let mut sh = std::process::Command::new("sh")
            .arg("-n")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("sh runs");
        sh.stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("script written");
        assert!(sh.wait().expect("sh ends").success(), "{script}");
    }

    #[test]
    fn cloud_bootstrap_installs_a_per_boot_script_that_runs_the_machine_again() {
        let script = Bootstrap {
            run_id: "dz-1",
            machine: "m1",
            binary_url: "http://127.0.0.1:5000/b/k",
            binary_sha256: "ab",
            config_json: "{}",
            ttl_s: 600,
        }
        .script();
        parses(&script);
        // The deadline is written before anything can fail, and kept for later boots.
        let expires = script
            .find("echo $(( $(date +%s) + 600 )) > expires")
            .expect("the deadline is kept");
        assert!(expires < script.find("sha256sum -c").expect("checksum"));
        // The per-boot script is in place (atomically) only once the binary is verified and the
        // config written, and before the machine starts.
        let install = script
            .find(&format!("mv {PER_BOOT}.new {PER_BOOT}"))
            .expect("the per-boot script is installed");
        assert!(script.find("chmod 600 machine.json").expect("config") < install);
        assert!(install < script.rfind("exec /opt").expect("exec"));
        assert!(PER_BOOT.starts_with(&format!("{PER_BOOT_DIR}/")));
        // What it writes is the per-boot script, word for word, and it is a shell script too.
        let body = script
            .split_once("<<'PER_BOOT'\n")
            .and_then(|(_, rest)| rest.split_once("PER_BOOT\n"))
            .map(|(body, _)| body)
            .expect("a here-document");
        assert_eq!(body, per_boot_script());
        parses(body);
        // A later boot downloads nothing: it arms what is left of the time to live, powers off if
        // nothing is, and runs the machine on the first boot's binary and config (and disk).
        assert!(!body.contains("wget") && !body.contains("curl"));
        assert!(body.contains("left=$(( $(cat expires) - $(date +%s) ))"));
        assert!(body.contains(r#"[ "$left" -gt 0 ] || exit 1"#));
        assert!(
            body.find("trap 'poweroff").expect("powers off on failure")
                < body.find("exit 1").expect("exit")
        );
        assert!(body.contains(r#"sleep "$left"; poweroff -f"#));
        assert!(body.ends_with(&format!(
            "exec {INSTALL_DIR}/dist-zero machine --config {INSTALL_DIR}/machine.json\n"
        )));
    }
}
