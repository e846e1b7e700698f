//! Retrying transient API failures (429, 5xx, connection trouble) with exponential backoff.

use std::future::Future;
use std::time::Duration;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts after the first one.
    pub retries: u32,
    /// Wait before the first retry; doubled each time, capped at 5 s.
    pub initial_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 3,
            initial_backoff: Duration::from_millis(200),
        }
    }
}

/// Whether a kube error is worth retrying: the server was busy or broken, or the
/// connection failed; never 4xx answers such as 403 or 404.
pub fn is_transient(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        kube::Error::UpgradeConnection(kube::client::UpgradeConnectionError::ProtocolSwitch(
            code,
        )) => code.as_u16() == 429 || code.is_server_error(),
        kube::Error::UpgradeConnection(
            kube::client::UpgradeConnectionError::GetPendingUpgrade(_),
        ) => true,
        _ => false,
    }
}

/// Run `op` until it succeeds, fails permanently, or the retries are used up.
/// Returns the result and how many attempts were made.
pub async fn with_retries<T, E, F, Fut>(
    policy: RetryPolicy,
    what: &str,
    transient: impl Fn(&E) -> bool,
    mut op: F,
) -> (Result<T, E>, u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut delay = policy.initial_backoff;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op().await {
            Ok(v) => return (Ok(v), attempt),
            Err(e) if attempt <= policy.retries && transient(&e) => {
                tracing::debug!("{what}: attempt {attempt} failed ({e}); retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return (Err(e), attempt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retries_transient_then_gives_up() {
        let policy = RetryPolicy {
            retries: 2,
            initial_backoff: Duration::from_millis(1),
        };
        let mut calls = 0;
        let (r, attempts) = with_retries(
            policy,
            "t",
            |_: &String| true,
            || {
                calls += 1;
                async { Err::<(), _>("busy".to_string()) }
            },
        )
        .await;
        assert!(r.is_err());
        assert_eq!(attempts, 3);
        assert_eq!(calls, 3);
    }

    #[tokio::test]
    async fn permanent_error_is_not_retried() {
        let (r, attempts) = with_retries(
            RetryPolicy::default(),
            "t",
            |_: &String| false,
            || async { Err::<(), _>("forbidden".to_string()) },
        )
        .await;
        assert!(r.is_err());
        assert_eq!(attempts, 1);
    }

    #[test]
    fn api_codes() {
        let s = |code| {
            kube::Error::Api(
                kube::core::Status::failure("x", "y")
                    .with_code(code)
                    .boxed(),
            )
        };
        assert!(is_transient(&s(429)));
        assert!(is_transient(&s(503)));
        assert!(!is_transient(&s(403)));
        assert!(!is_transient(&s(404)));
    }
}
