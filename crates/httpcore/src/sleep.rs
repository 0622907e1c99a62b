//! How an executor waits between attempts.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

/// How the executor waits between attempts; tests substitute one that records and returns.
#[async_trait]
pub trait Sleeper: Send + Sync + fmt::Debug {
    /// Waits `d`.
    async fn sleep(&self, d: Duration);
}

/// Waits with `tokio::time::sleep`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSleeper;

#[async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

/// A sleeper that does not wait but remembers every wait asked of it (for tests).
#[derive(Debug, Default)]
pub struct RecordingSleeper(Mutex<Vec<Duration>>);

impl RecordingSleeper {
    /// The waits so far.
    pub fn waits(&self) -> Vec<Duration> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl Sleeper for RecordingSleeper {
    async fn sleep(&self, d: Duration) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(d);
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_recording_sleeper_records_without_waiting() {
        let s = RecordingSleeper::default();
        let t0 = std::time::Instant::now();
        s.sleep(Duration::from_secs(3600)).await;
        s.sleep(Duration::from_millis(5)).await;
        assert!(t0.elapsed() < Duration::from_secs(60));
        assert_eq!(
            s.waits(),
            [Duration::from_secs(3600), Duration::from_millis(5)]
        );
    }
}
