//! Settings: the one module that reads the environment.
//!
//! Variables come from the OS environment first, then from a `.env` file in the working directory
//! (not checked in; `.env.template` is, with working defaults). No other module reads environment
//! variables; a test below enforces that.

use std::path::{Path, PathBuf};

use crate::files::{read_text, ReadProblem};

/// Which environment DistZero runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Tests and CI.
    Test,
    /// A developer's machine.
    Development,
    /// Real deployments.
    Production,
}

/// A setting that is present but unusable, or a `.env` file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A variable has a value outside what it accepts.
    #[error("environment variable {name}={value} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it accepts.
        reason: &'static str,
    },
    /// `.env` exists but is malformed, unreadable or larger than
    /// [`MAX_INPUT_BYTES`](crate::files::MAX_INPUT_BYTES).
    #[error("cannot read {path}: {reason}")]
    DotEnv {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// `PATH`, where a shell looks for a command by its name: read when a replay command is
/// printed, to name the binary by the name alone only where that name finds it.
pub fn search_path() -> Option<std::ffi::OsString> {
    std::env::var_os("PATH")
}

/// Everything DistZero takes from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `DIST_ZERO_ENV`: test, development or production (default test).
    pub environment: Environment,
    /// `DIST_ZERO_LOG`: the log filter (default `warn`).
    pub log_filter: String,
    /// `DOCKER_HOST`: the Docker Engine endpoint (default the local socket).
    pub docker_host: String,
    /// `DIST_ZERO_RUNS_DIR`: where runs keep their files (default `.tmp`).
    pub runs_dir: PathBuf,
    /// `DIST_ZERO_IMAGE`: the machine image's name (default `dist-zero-machine`).
    pub machine_image: String,
    /// `DIST_ZERO_MACHINE_LOG`: the log filter of virtual-mode machines (default `info`).
    pub machine_log_filter: String,
    /// `DIST_ZERO_MACHINE_MEMORY_MIB`: each virtual-mode container's memory limit in MiB
    /// (default 256, at least 16).
    pub machine_memory_mib: u64,
    /// Cloud mode's settings (`AWS_ENDPOINT_URL`, `DIST_ZERO_CLOUD_*`).
    pub cloud: CloudSettings,
}

/// A secret read from the environment: its `Debug` form never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Cloud mode's settings. Credentials and region otherwise come from the AWS SDK's standard
/// chain; with an endpoint override (an emulator such as moto), they come from here only, so a
/// test can never fall back on a real account or on the instance metadata service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudSettings {
    /// `AWS_ENDPOINT_URL`: send every AWS API call here instead of AWS (an emulator).
    pub endpoint_url: Option<String>,
    /// `AWS_REGION`: the region (default: the SDK's chain; `us-east-1` with an endpoint override).
    pub region: Option<String>,
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, read here only for an endpoint override.
    pub static_credentials: Option<(Secret, Secret)>,
    /// `DIST_ZERO_CLOUD_INSTANCE_TYPE`: the instance type (default `t3.micro`).
    pub instance_type: String,
    /// `DIST_ZERO_CLOUD_IMAGE`: the machine image (AMI) id; any x86-64 Linux image with a
    /// shell and curl or wget will do. Required on real AWS.
    pub image: Option<String>,
    /// `DIST_ZERO_CLOUD_TTL_S`: seconds an instance lives at most, even if the runner dies
    /// (default 3600).
    pub ttl_s: u64,
    /// `DIST_ZERO_CLOUD_SUBNET`: the run's subnet, a /16 to /28 IPv4 range; its VPC is the
    /// enclosing /16 (default `10.96.0.0/24`).
    pub subnet: String,
    /// `DIST_ZERO_CLOUD_RUNNER_CIDR`: the only source admitted to the machines' control port
    /// (e.g. `203.0.113.7/32`, this computer's public address). Required on real AWS; with an
    /// endpoint override it defaults to the local realizer network's gateway.
    pub runner_cidr: Option<String>,
    /// `DIST_ZERO_CLOUD_READY_TIMEOUT_S`: seconds every machine has to answer (default 300).
    pub ready_timeout_s: u64,
}

/// The smallest memory limit a machine container may be given, in MiB.
pub const MIN_MACHINE_MEMORY_MIB: u64 = 16;

impl Settings {
    /// Reads the OS environment, then `.env` in the working directory if there is one.
    pub fn load() -> Result<Self, SettingsError> {
        let dotenv = read_dotenv(Path::new(".env"))?;
        Self::from_lookup(|name| std::env::var(name).ok().or_else(|| lookup(&dotenv, name)))
    }

    /// Builds settings from any variable lookup (for tests and embedding).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let environment = match get("DIST_ZERO_ENV").as_deref() {
            None | Some("test") => Environment::Test,
            Some("development") => Environment::Development,
            Some("production") => Environment::Production,
            Some(other) => {
                return Err(SettingsError::Invalid {
                    name: "DIST_ZERO_ENV",
                    value: other.to_owned(),
                    reason: "expected test, development or production",
                })
            }
        };
        Ok(Settings {
            environment,
            log_filter: get("DIST_ZERO_LOG").unwrap_or_else(|| "warn".into()),
            docker_host: get("DOCKER_HOST").unwrap_or_else(|| "unix:///var/run/docker.sock".into()),
            runs_dir: get("DIST_ZERO_RUNS_DIR")
                .map_or_else(|| PathBuf::from(".tmp"), PathBuf::from),
            machine_image: get("DIST_ZERO_IMAGE").unwrap_or_else(|| "dist-zero-machine".into()),
            machine_log_filter: get("DIST_ZERO_MACHINE_LOG").unwrap_or_else(|| "info".into()),
            machine_memory_mib: match get("DIST_ZERO_MACHINE_MEMORY_MIB") {
                None => 256,
                Some(value) => match value.trim().parse::<u64>() {
                    Ok(mib) if (MIN_MACHINE_MEMORY_MIB..=1 << 20).contains(&mib) => mib,
                    _ => {
                        return Err(SettingsError::Invalid {
                            name: "DIST_ZERO_MACHINE_MEMORY_MIB",
                            value,
                            reason: "expected a whole number of MiB from 16 to 1048576",
                        })
                    }
                },
            },
            cloud: CloudSettings::from_lookup(&get)?,
        })
    }
}

impl CloudSettings {
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let non_empty = |name: &str| get(name).filter(|value| !value.trim().is_empty());
        let seconds = |name: &'static str, default: u64| -> Result<u64, SettingsError> {
            match non_empty(name) {
                None => Ok(default),
                Some(text) => match text.trim().parse::<u64>() {
                    Ok(value) if value > 0 => Ok(value),
                    _ => Err(SettingsError::Invalid {
                        name,
                        value: text,
                        reason: "expected a whole number of seconds above 0",
                    }),
                },
            }
        };
        let endpoint_url = non_empty("AWS_ENDPOINT_URL");
        let static_credentials = if endpoint_url.is_some() {
            match (
                non_empty("AWS_ACCESS_KEY_ID"),
                non_empty("AWS_SECRET_ACCESS_KEY"),
            ) {
                (Some(id), Some(secret)) => Some((Secret(id), Secret(secret))),
                _ => None,
            }
        } else {
            None
        };
        Ok(CloudSettings {
            endpoint_url,
            region: non_empty("AWS_REGION"),
            static_credentials,
            instance_type: non_empty("DIST_ZERO_CLOUD_INSTANCE_TYPE")
                .unwrap_or_else(|| "t3.micro".into()),
            image: non_empty("DIST_ZERO_CLOUD_IMAGE"),
            ttl_s: seconds("DIST_ZERO_CLOUD_TTL_S", 3600)?,
            subnet: non_empty("DIST_ZERO_CLOUD_SUBNET").unwrap_or_else(|| "10.96.0.0/24".into()),
            runner_cidr: non_empty("DIST_ZERO_CLOUD_RUNNER_CIDR"),
            ready_timeout_s: seconds("DIST_ZERO_CLOUD_READY_TIMEOUT_S", 300)?,
        })
    }
}

/// The variables of the `.env` file at `path`; none if there is no such file.
fn read_dotenv(path: &Path) -> Result<Vec<(String, String)>, SettingsError> {
    let text = match read_text(path) {
        Ok(text) => text,
        Err(ReadProblem::Io(error)) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Vec::new())
        }
        Err(problem) => {
            return Err(SettingsError::DotEnv {
                path: path.display().to_string(),
                reason: problem.to_string(),
            })
        }
    };
    dotenvy::from_read_iter(text.as_bytes())
        .map(|entry| {
            entry.map_err(|e| SettingsError::DotEnv {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        })
        .collect()
}

fn lookup(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .rev()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_settings_default_to_the_test_environment() {
        let settings = Settings::from_lookup(|_| None).expect("defaults");
        assert_eq!(settings.environment, Environment::Test);
        assert_eq!(settings.runs_dir, PathBuf::from(".tmp"));
    }

    #[test]
    fn simulated_invalid_environment_names_the_variable() {
        let error =
            Settings::from_lookup(|name| (name == "DIST_ZERO_ENV").then(|| "staging".into()))
                .expect_err("invalid");
        assert!(error.to_string().contains("DIST_ZERO_ENV=staging"));
    }

    #[test]
    fn simulated_the_template_parses_to_working_settings() {
        let template = Path::new(env!("CARGO_MANIFEST_DIR")).join(".env.template");
        let pairs = read_dotenv(&template).expect("template parses");
        assert!(lookup(&pairs, "DIST_ZERO_ENV").is_some());
        let settings = Settings::from_lookup(|name| lookup(&pairs, name)).expect("valid");
        assert_eq!(settings.environment, Environment::Test);
    }

    #[test]
    fn simulated_a_dotenv_file_beyond_64_mib_is_refused() {
        let dir = std::env::temp_dir().join(format!("dist-zero-dotenv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the temp dir is writable");
        let path = dir.join(".env");
        let mut text = String::from("DIST_ZERO_ENV=test\n");
        text.push_str(&"#\n".repeat(32 * 1024 * 1024));
        std::fs::write(&path, text).expect("written");
        let error = read_dotenv(&path).expect_err("too large");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(error.to_string().contains("64 MiB"), "{error}");
        assert_eq!(read_dotenv(&dir.join("absent")).ok(), Some(Vec::new()));
    }

    #[test]
    fn simulated_machine_memory_is_a_bounded_number_of_mib() {
        let with = |value: &str| {
            let value = value.to_owned();
            Settings::from_lookup(move |name| {
                (name == "DIST_ZERO_MACHINE_MEMORY_MIB").then(|| value.clone())
            })
        };
        assert_eq!(with("512").expect("valid").machine_memory_mib, 512);
        assert_eq!(
            Settings::from_lookup(|_| None)
                .expect("defaults")
                .machine_memory_mib,
            256
        );
        for bad in ["0", "15", "-1", "256m", "lots"] {
            let error = with(bad).expect_err(bad);
            assert!(
                error.to_string().contains("DIST_ZERO_MACHINE_MEMORY_MIB"),
                "{error}"
            );
        }
    }

    #[test]
    fn cloud_credentials_are_read_only_for_an_endpoint_override_and_never_shown() {
        let vars = |endpoint: bool| {
            move |name: &str| match name {
                "AWS_ENDPOINT_URL" if endpoint => Some("http://127.0.0.1:5000".to_owned()),
                "AWS_ACCESS_KEY_ID" => Some("AKIDTEST".to_owned()),
                "AWS_SECRET_ACCESS_KEY" => Some("hush".to_owned()),
                _ => None,
            }
        };
        let real = Settings::from_lookup(vars(false)).expect("valid");
        assert_eq!(real.cloud.static_credentials, None);
        let emulated = Settings::from_lookup(vars(true)).expect("valid");
        assert!(emulated.cloud.static_credentials.is_some());
        assert!(!format!("{emulated:?}").contains("hush"));
        let error = Settings::from_lookup(|name| {
            (name == "DIST_ZERO_CLOUD_TTL_S").then(|| "soon".to_owned())
        })
        .expect_err("invalid");
        assert!(error.to_string().contains("DIST_ZERO_CLOUD_TTL_S=soon"));
    }

    /// Only this module may read the environment.
    #[test]
    fn simulated_no_module_but_settings_reads_the_environment() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let forbidden = [
            "std::env::var",
            "env::var(",
            "env::vars(",
            "env::var_os(",
            "dotenvy::",
        ];
        let mut offenders = Vec::new();
        let mut stack = vec![src.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("src is readable").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|ext| ext == "rs")
                    && path != src.join("settings.rs")
                {
                    let text = std::fs::read_to_string(&path).expect("source is readable");
                    if forbidden.iter().any(|pattern| text.contains(pattern)) {
                        offenders.push(path.display().to_string());
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "environment read outside settings: {offenders:?}"
        );
    }
}
