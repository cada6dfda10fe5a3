//! The AWS clients of a run: configured from settings, with the SDK's retries for throttling and
//! our own for the API's eventual consistency, and errors turned into one line each.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_types::retry::RetryConfig;

use crate::hardware::{BackendKind, HardwareError};
use crate::settings::CloudSettings;

/// Tag on everything DistZero creates in the cloud.
pub const TAG_ALL: &str = "dist-zero";
/// Tag naming the run a resource belongs to.
pub const TAG_RUN: &str = "dist-zero.run";
/// Tag naming an instance's machine (`m0`, `m1`, ...).
pub const TAG_MACHINE: &str = "dist-zero.machine";
/// Tag holding the time (seconds since 1970, UTC) after which a resource may be removed by
/// anyone; its instance has terminated itself by then.
pub const TAG_EXPIRES: &str = "dist-zero.expires";
/// Attempts the SDK makes at one call before giving up (throttling, 5xx, timeouts).
const SDK_ATTEMPTS: u32 = 8;
/// How long a call may keep failing with an eventual-consistency error.
const EVENTUAL_LIMIT: Duration = Duration::from_secs(90);

/// A failed AWS call: the action, the service's error code if any, and its message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("AWS {action} failed: {}{message}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct ApiError {
    /// The API action.
    pub action: &'static str,
    /// The service's error code (e.g. `InvalidInstanceID.NotFound`).
    pub code: Option<String>,
    /// What the service or the transport said.
    pub message: String,
}

impl ApiError {
    /// Whether the service refused the caller's credentials.
    pub fn is_auth(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some(
                "AuthFailure"
                    | "InvalidClientTokenId"
                    | "SignatureDoesNotMatch"
                    | "UnrecognizedClientException"
                    | "InvalidAccessKeyId"
                    | "AccessDenied"
                    | "UnauthorizedOperation"
                    | "MissingAuthenticationToken"
            )
        )
    }

    /// Whether the error says a resource just created is not visible yet, or one being removed
    /// is still in use: both pass with time.
    pub fn is_eventual(&self) -> bool {
        self.code.as_deref().is_some_and(|code| {
            code.ends_with(".NotFound")
                || code == "DependencyViolation"
                || code == "IncorrectInstanceState"
                || code == "IncorrectState"
        })
    }

    /// Whether the resource is already gone (removals count that as done).
    pub fn is_gone(&self) -> bool {
        self.code
            .as_deref()
            .is_some_and(|code| code.ends_with(".NotFound") || code == "NoSuchBucket")
    }
}

impl From<ApiError> for HardwareError {
    fn from(error: ApiError) -> Self {
        if error.is_auth() {
            HardwareError::Unavailable(format!(
                "AWS refused the credentials ({}: {}); check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or your AWS profile (see docs/cloud-mode.md)",
                error.code.as_deref().unwrap_or("auth"),
                error.message
            ))
        } else {
            HardwareError::Backend {
                backend: BackendKind::Aws,
                source: Box::new(error),
            }
        }
    }
}

/// Turns an SDK error into an [`ApiError`] for `action`.
pub fn api<E, R>(
    action: &'static str,
) -> impl Fn(aws_smithy_runtime_api::client::result::SdkError<E, R>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |error| {
        let code = error.code().map(str::to_owned);
        let message = match error.message() {
            Some(message) => message.to_owned(),
            None => aws_smithy_types::error::display::DisplayErrorContext(&error).to_string(),
        };
        ApiError {
            action,
            code,
            message,
        }
    }
}

/// Runs `call` until it succeeds or fails with something other than an eventual-consistency
/// error, backing off between attempts, for at most `EVENTUAL_LIMIT` (90 s).
pub async fn eventually<T, F, Fut>(mut call: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        match call().await {
            Err(error) if error.is_eventual() && started.elapsed() < EVENTUAL_LIMIT => {
                tracing::debug!(%error, "not consistent yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(3));
            }
            outcome => return outcome,
        }
    }
}

/// Seconds since 1970 (UTC).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A run's clients.
#[derive(Clone)]
pub struct Clients {
    /// EC2.
    pub ec2: aws_sdk_ec2::Client,
    /// S3.
    pub s3: aws_sdk_s3::Client,
    /// The region in use.
    pub region: String,
}

impl Clients {
    /// Builds the clients from settings. With an endpoint override, credentials and region come
    /// from settings only; otherwise from the SDK's standard chain. `wrap` may replace the HTTP
    /// client (tests inject faults with it).
    pub async fn new(
        settings: &CloudSettings,
        wrap: Option<&HttpWrapper>,
    ) -> Result<Self, HardwareError> {
        let retry = RetryConfig::standard()
            .with_max_attempts(SDK_ATTEMPTS)
            .with_initial_backoff(Duration::from_millis(100));
        let mut loader =
            aws_config::defaults(aws_config::BehaviorVersion::latest()).retry_config(retry);
        if let Some(endpoint) = &settings.endpoint_url {
            let Some((id, secret)) = &settings.static_credentials else {
                return Err(HardwareError::Unavailable(
                    "AWS_ENDPOINT_URL is set but AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not: an emulator needs (fake) credentials from settings".into(),
                ));
            };
            let region = settings
                .region
                .clone()
                .unwrap_or_else(|| "us-east-1".into());
            loader = loader
                .endpoint_url(endpoint)
                .region(aws_config::Region::new(region))
                .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                    id.0.clone(),
                    secret.0.clone(),
                    None,
                    None,
                    "dist-zero settings",
                ));
        } else if let Some(region) = &settings.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let shared = loader.load().await;
        let Some(region) = shared.region().map(ToString::to_string) else {
            return Err(HardwareError::Unavailable(
                "no AWS region: set AWS_REGION (see .env.template) or a region in your AWS profile"
                    .into(),
            ));
        };
        let mut ec2 = aws_sdk_ec2::config::Builder::from(&shared);
        let mut s3 = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(settings.endpoint_url.is_some())
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            );
        if let Some(wrap) = wrap {
            use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
            let inner = shared.http_client().unwrap_or_else(|| {
                aws_smithy_http_client::Builder::new()
                    .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
                    .build_https()
            });
            let wrapped = (wrap.0)(inner);
            ec2 = ec2.http_client(wrapped.clone());
            s3 = s3.http_client(wrapped);
        }
        Ok(Clients {
            ec2: aws_sdk_ec2::Client::from_conf(ec2.build()),
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            region,
        })
    }
}

impl Clients {
    /// One cheap call, so that refused credentials are reported before anything is created.
    pub async fn check(&self) -> Result<(), ApiError> {
        self.ec2
            .describe_availability_zones()
            .send()
            .await
            .map(drop)
            .map_err(api("DescribeAvailabilityZones"))
    }
}

/// Replaces the SDK's HTTP client with one built around it (fault injection in tests).
#[derive(Clone)]
pub struct HttpWrapper(
    pub std::sync::Arc<dyn Fn(SharedHttpClient) -> SharedHttpClient + Send + Sync>,
);

impl std::fmt::Debug for HttpWrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpWrapper")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: &str) -> ApiError {
        ApiError {
            action: "X",
            code: Some(code.into()),
            message: "m".into(),
        }
    }

    #[test]
    fn cloud_errors_are_classified_by_their_code() {
        assert!(error("InvalidInstanceID.NotFound").is_eventual());
        assert!(error("DependencyViolation").is_eventual());
        assert!(!error("RequestLimitExceeded").is_eventual());
        assert!(error("AuthFailure").is_auth());
        assert!(!error("InvalidParameterValue").is_auth());
        let hardware = HardwareError::from(error("AuthFailure"));
        assert!(matches!(hardware, HardwareError::Unavailable(_)));
        assert!(!hardware.to_string().contains('\n'));
    }

    #[test]
    fn cloud_eventual_errors_are_retried_until_they_pass() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut calls = 0;
        let outcome = runtime.block_on(eventually(|| {
            calls += 1;
            let now = calls;
            async move {
                if now < 3 {
                    Err(error("InvalidGroup.NotFound"))
                } else {
                    Ok(now)
                }
            }
        }));
        assert_eq!(outcome.expect("passes"), 3);
        let mut calls = 0;
        let outcome: Result<(), ApiError> = runtime.block_on(eventually(|| {
            calls += 1;
            async { Err(error("InvalidParameterValue")) }
        }));
        assert!(outcome.is_err());
        assert_eq!(calls, 1);
    }
}
