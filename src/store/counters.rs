//! The segment counter of each modem: what went out on a prepaid line since the last reset.

use super::{Store, StoreError, now_ms};

/// One modem's counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentCounter {
    /// The modem.
    pub modem_id: String,
    /// Segments the network accepted since `since`.
    pub segments: i64,
    /// When the counter was last reset (or first counted).
    pub since: i64,
}

impl Store {
    /// Adds `segments` to a modem's counter.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn count_segments(&self, modem_id: &str, segments: i64) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        super::dispatch::count_segments_on(&mut conn, modem_id, segments).await
    }

    /// The counter of each of `modem_ids`, zero for a modem that has sent nothing yet.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn segment_counters(
        &self,
        modem_ids: &[String],
    ) -> Result<Vec<SegmentCounter>, StoreError> {
        let rows: Vec<(String, i64, i64)> =
            sqlx::query_as("SELECT modem_id, segments, since FROM segment_counters")
                .fetch_all(self.pool())
                .await?;
        Ok(modem_ids
            .iter()
            .map(|id| match rows.iter().find(|(m, ..)| m == id) {
                Some((_, segments, since)) => SegmentCounter {
                    modem_id: id.clone(),
                    segments: *segments,
                    since: *since,
                },
                None => SegmentCounter {
                    modem_id: id.clone(),
                    segments: 0,
                    since: 0,
                },
            })
            .collect())
    }

    /// Resets a modem's counter to zero from now.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn reset_segments(&self, modem_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO segment_counters (modem_id, segments, since) VALUES ($1, 0, $2) \
             ON CONFLICT (modem_id) DO UPDATE SET segments = 0, since = excluded.since",
        )
        .bind(modem_id)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
