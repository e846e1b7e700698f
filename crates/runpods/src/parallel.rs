//! Working on many containers at once, each under its own timeout, so one slow
//! or failing pod never holds up or stops the others.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;

/// Run `work` on every item, `parallel` at a time, results in input order.
/// An item that takes longer than `timeout` gets `on_timeout(item)` instead.
pub async fn for_each<T, R, F, Fut>(
    items: Vec<T>,
    parallel: usize,
    timeout: Duration,
    work: F,
    on_timeout: impl Fn(&T) -> R,
) -> Vec<R>
where
    T: Clone,
    F: Fn(T) -> Fut,
    Fut: Future<Output = R>,
{
    let work = &work;
    let on_timeout = &on_timeout;
    futures::stream::iter(items)
        .map(|item| async move {
            let keep = item.clone();
            match tokio::time::timeout(timeout, work(item)).await {
                Ok(r) => r,
                Err(_) => on_timeout(&keep),
            }
        })
        .buffered(parallel.max(1))
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slow_items_time_out_alone() {
        let out = for_each(
            vec![1u64, 500, 2],
            2,
            Duration::from_millis(100),
            |ms| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                format!("done {ms}")
            },
            |ms| format!("timeout {ms}"),
        )
        .await;
        assert_eq!(out, ["done 1", "timeout 500", "done 2"]);
    }
}
