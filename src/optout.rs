//! The suppression list as the submit path and loads see it: every number on it, in memory, so
//! that checking one costs a hash lookup rather than a database read on the hot path of
//! `POST /v1/messages`.
//!
//! Numbers added or removed through this node's API are seen at once; an opt-out texted to a
//! modem, or a change made by another node sharing the database, within [`REFRESH`] (every
//! change moves the list's version on, which each node compares). A message accepted in
//! that second still never goes out: modems do not claim messages to numbers on the list, and
//! the refresher cancels them.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::store::{Store, StoreError};

/// How often the database is asked whether the list changed.
const REFRESH: Duration = Duration::from_secs(2);

/// How long after a change pending messages to listed numbers are looked for again: past the
/// moment every node has seen the change.
const SWEEP_AGAIN_AFTER: Duration = Duration::from_secs(5);

/// The numbers on the suppression list.
#[derive(Debug, Default)]
pub struct SuppressionList {
    numbers: RwLock<HashSet<String>>,
}

impl SuppressionList {
    /// The list as stored now.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn load(store: &Store) -> Result<SuppressionList, StoreError> {
        let numbers = store.suppressed_numbers().await?.into_iter().collect();
        Ok(SuppressionList {
            numbers: RwLock::new(numbers),
        })
    }

    /// Whether `phone` (E.164) is on the list.
    pub fn contains(&self, phone: &str) -> bool {
        self.read().contains(phone)
    }

    /// Notes a number put on the list by this node.
    pub fn insert(&self, phone: &str) {
        self.write().insert(phone.to_owned());
    }

    /// Notes a number taken off the list by this node.
    pub fn remove(&self, phone: &str) {
        self.write().remove(phone);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashSet<String>> {
        self.numbers.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashSet<String>> {
        self.numbers.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the list in step with the database until the task is dropped, and cancels
    /// pending messages to numbers that joined it.
    pub fn spawn_refresher(self: Arc<Self>, store: Store) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut seen = None;
            let mut sweep_at: Option<tokio::time::Instant> = None;
            loop {
                tokio::time::sleep(REFRESH).await;
                match store.suppressions_version().await {
                    Ok(print) if Some(print) != seen => match store.suppressed_numbers().await {
                        Ok(numbers) => {
                            *self.write() = numbers.into_iter().collect();
                            // The first look only learns the fingerprint.
                            if seen.is_some() {
                                sweep(&store).await;
                                sweep_at = Some(tokio::time::Instant::now() + SWEEP_AGAIN_AFTER);
                            }
                            seen = Some(print);
                        }
                        Err(err) => tracing::warn!(error = %err, "suppression list not read"),
                    },
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "suppression list not checked"),
                }
                if sweep_at.is_some_and(|at| at <= tokio::time::Instant::now()) {
                    sweep_at = None;
                    sweep(&store).await;
                }
            }
        })
    }
}

async fn sweep(store: &Store) {
    match store.cancel_suppressed().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(cancelled = n, "messages to suppressed numbers cancelled"),
        Err(err) => tracing::warn!(error = %err, "messages to suppressed numbers not cancelled"),
    }
}
