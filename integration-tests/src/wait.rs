//! Bounded waiting for what a daemon does in the background.

use std::time::{Duration, Instant};

/// Polls `probe` every 100 ms until it says done, for at most `within`;
/// panics with what it last saw.
pub async fn eventually<T: std::fmt::Debug>(
    what: &str,
    within: Duration,
    mut probe: impl AsyncFnMut() -> (bool, T),
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let (done, seen) = probe().await;
        if done {
            return seen;
        }
        assert!(Instant::now() < deadline, "{what}: last saw {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The next item of a watch stream within `within`; panics (failing the
/// test) when none comes in time, the stream fails or it ends.
pub async fn next_event<S, T, E>(stream: &mut S, within: Duration) -> T
where
    S: futures::TryStream<Ok = T, Error = E> + Unpin,
    E: std::fmt::Debug,
{
    use futures::TryStreamExt;
    tokio::time::timeout(within, stream.try_next())
        .await
        .expect("a watch event in time")
        .expect("no watch error")
        .expect("the watch goes on")
}
