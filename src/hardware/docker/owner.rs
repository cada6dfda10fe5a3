//! Who owns a run: the runner process, recorded as labels on everything the run creates, so that
//! `dist-zero clean` can tell a run still in progress from one whose runner is gone.
//!
//! A runner is named by its host name, the host's boot id, its pid and the pid's start time
//! (`/proc/<pid>/stat`, field 22): a pid alone may have been reused by another process since, and
//! a host that has rebooted runs none of the processes it ran before.

use std::collections::HashMap;

/// Label: the host name of the runner's host.
pub const LABEL_OWNER_HOST: &str = "dist-zero.owner-host";
/// Label: the runner's host's boot id (`/proc/sys/kernel/random/boot_id`).
pub const LABEL_OWNER_BOOT: &str = "dist-zero.owner-boot";
/// Label: the runner's process id.
pub const LABEL_OWNER_PID: &str = "dist-zero.owner-pid";
/// Label: the runner's start time, in clock ticks after boot (`/proc/<pid>/stat`, field 22).
pub const LABEL_OWNER_START: &str = "dist-zero.owner-start";

/// The process that created a run's resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Its host's name.
    pub host: String,
    /// Its host's boot id.
    pub boot: String,
    /// Its process id.
    pub pid: u32,
    /// Its start time, in clock ticks after boot.
    pub start: u64,
}

/// Whether a run's runner is still there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// The runner still runs: the run is in progress. Says so.
    Alive(String),
    /// The runner is gone: what it left is leaked. Says how we know.
    Gone(String),
    /// Cannot be told from this host. Says why.
    Unknown(String),
}

/// This host, as owners are compared with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The host name.
    pub name: String,
    /// The boot id.
    pub boot: String,
}

impl Host {
    /// This host, if `/proc` says who it is.
    pub fn this() -> Option<Host> {
        Some(Host {
            name: read_trimmed("/proc/sys/kernel/hostname")?,
            boot: read_trimmed("/proc/sys/kernel/random/boot_id")?,
        })
    }
}

impl Owner {
    /// The current process, if `/proc` can name it.
    pub fn this_process() -> Option<Owner> {
        let host = Host::this()?;
        let pid = std::process::id();
        Some(Owner {
            host: host.name,
            boot: host.boot,
            pid,
            start: process_start(pid)?,
        })
    }

    /// The labels naming this owner.
    pub fn labels(&self) -> [(String, String); 4] {
        [
            (LABEL_OWNER_HOST.to_owned(), self.host.clone()),
            (LABEL_OWNER_BOOT.to_owned(), self.boot.clone()),
            (LABEL_OWNER_PID.to_owned(), self.pid.to_string()),
            (LABEL_OWNER_START.to_owned(), self.start.to_string()),
        ]
    }

    /// The owner a resource's labels name, if they name one completely.
    pub fn from_labels(labels: &HashMap<String, String>) -> Option<Owner> {
        Some(Owner {
            host: labels.get(LABEL_OWNER_HOST)?.clone(),
            boot: labels.get(LABEL_OWNER_BOOT)?.clone(),
            pid: labels.get(LABEL_OWNER_PID)?.parse().ok()?,
            start: labels.get(LABEL_OWNER_START)?.parse().ok()?,
        })
    }

    /// Whether this owner still runs, as seen from this host.
    pub fn liveness(&self) -> Liveness {
        match Host::this() {
            Some(host) => self.judge(&host, process_start),
            None => Liveness::Unknown(format!(
                "its runner, pid {}, cannot be looked up here (no /proc)",
                self.pid
            )),
        }
    }

    /// Whether this owner still runs on `host`, where `start_of(pid)` is the start time of the
    /// process `pid` if there is one.
    pub fn judge(&self, host: &Host, start_of: impl Fn(u32) -> Option<u64>) -> Liveness {
        let pid = self.pid;
        if self.host != host.name {
            return Liveness::Unknown(format!(
                "its runner, pid {pid}, ran on host {}, not this one",
                self.host
            ));
        }
        if self.boot != host.boot {
            return Liveness::Gone(format!(
                "its runner, pid {pid}, ran before this host last booted"
            ));
        }
        match start_of(pid) {
            Some(start) if start == self.start => {
                Liveness::Alive(format!("its runner, pid {pid}, is still running"))
            }
            Some(_) => Liveness::Gone(format!(
                "its runner, pid {pid}, is gone (the pid is another process now)"
            )),
            None => Liveness::Gone(format!("its runner, pid {pid}, is gone")),
        }
    }
}

/// The start time of process `pid` in clock ticks after boot, if it exists.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start(&stat)
}

/// Field 22 of a `/proc/<pid>/stat` line. The command name (field 2) is in parentheses and may
/// hold spaces and parentheses itself, so fields are counted from the last `)`.
fn parse_start(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(19)?.parse().ok()
}

fn read_trimmed(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        Owner {
            host: "box".into(),
            boot: "b1".into(),
            pid: 42,
            start: 1000,
        }
    }

    fn here() -> Host {
        Host {
            name: "box".into(),
            boot: "b1".into(),
        }
    }

    #[test]
    fn virtual_a_runner_with_its_pid_and_start_time_is_alive() {
        let verdict = owner().judge(&here(), |pid| (pid == 42).then_some(1000));
        assert_eq!(
            verdict,
            Liveness::Alive("its runner, pid 42, is still running".into())
        );
    }

    #[test]
    fn virtual_a_missing_or_reused_pid_means_the_runner_is_gone() {
        assert!(matches!(
            owner().judge(&here(), |_| None),
            Liveness::Gone(_)
        ));
        let reused = owner().judge(&here(), |_| Some(2000));
        assert!(
            matches!(&reused, Liveness::Gone(why) if why.contains("another process")),
            "{reused:?}"
        );
        let rebooted = Host {
            boot: "b2".into(),
            ..here()
        };
        assert!(matches!(
            owner().judge(&rebooted, |_| Some(1000)),
            Liveness::Gone(_)
        ));
    }

    #[test]
    fn virtual_a_runner_on_another_host_cannot_be_judged() {
        let elsewhere = Host {
            name: "other".into(),
            ..here()
        };
        let verdict = owner().judge(&elsewhere, |_| None);
        assert!(
            matches!(&verdict, Liveness::Unknown(why) if why.contains("host box")),
            "{verdict:?}"
        );
    }

    #[test]
    fn virtual_owner_labels_round_trip() {
        let labels: HashMap<String, String> = owner().labels().into_iter().collect();
        assert_eq!(Owner::from_labels(&labels), Some(owner()));
        let mut partial = labels.clone();
        partial.remove(LABEL_OWNER_START);
        assert_eq!(Owner::from_labels(&partial), None);
        let mut garbage = labels;
        garbage.insert(LABEL_OWNER_PID.into(), "many".into());
        assert_eq!(Owner::from_labels(&garbage), None);
    }

    #[test]
    fn virtual_start_time_is_counted_from_the_last_parenthesis() {
        let stat = "77 (a (b) c) S 1 77 77 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 100 10";
        assert_eq!(parse_start(stat), Some(123_456));
        assert_eq!(parse_start("garbage"), None);
        assert_eq!(parse_start("1 (x) S 1"), None);
    }

    #[test]
    fn virtual_this_process_is_alive() {
        let me = Owner::this_process().expect("/proc names this process");
        assert!(matches!(me.liveness(), Liveness::Alive(_)));
    }
}
