//! Schema migrations: numbered SQL files, one per backend, embedded in the binary and applied in
//! order at start-up.
//!
//! Each migration runs in one transaction together with the row that records it, so a crash
//! half-way leaves the schema as it was. On PostgreSQL an advisory lock keeps two gateway nodes
//! that start together from applying the same migration twice.

use sqlx::{Acquire, Executor};

use super::{Backend, Store, StoreError, now_ms};

/// A schema change, written once for each backend.
struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// The migrations, in order.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_foundation.sql",
        sqlite: include_str!("../../migrations/sqlite/0001_foundation.sql"),
        postgres: include_str!("../../migrations/postgres/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "0002_dispatch.sql",
        // The same SQL serves both backends.
        sqlite: include_str!("../../migrations/0002_dispatch.sql"),
        postgres: include_str!("../../migrations/0002_dispatch.sql"),
    },
    Migration {
        version: 3,
        name: "0003_inbox.sql",
        sqlite: include_str!("../../migrations/sqlite/0003_inbox.sql"),
        postgres: include_str!("../../migrations/postgres/0003_inbox.sql"),
    },
    Migration {
        version: 4,
        name: "0004_counters.sql",
        sqlite: include_str!("../../migrations/0004_counters.sql"),
        postgres: include_str!("../../migrations/0004_counters.sql"),
    },
    Migration {
        version: 5,
        name: "0005_templates.sql",
        sqlite: include_str!("../../migrations/0005_templates.sql"),
        postgres: include_str!("../../migrations/0005_templates.sql"),
    },
    Migration {
        version: 6,
        name: "0006_loads.sql",
        sqlite: include_str!("../../migrations/0006_loads.sql"),
        postgres: include_str!("../../migrations/0006_loads.sql"),
    },
    Migration {
        version: 7,
        name: "0007_events.sql",
        sqlite: include_str!("../../migrations/sqlite/0007_events.sql"),
        postgres: include_str!("../../migrations/postgres/0007_events.sql"),
    },
    Migration {
        version: 8,
        name: "0008_suppressions.sql",
        sqlite: include_str!("../../migrations/0008_suppressions.sql"),
        postgres: include_str!("../../migrations/0008_suppressions.sql"),
    },
    Migration {
        version: 9,
        name: "0009_mail.sql",
        sqlite: include_str!("../../migrations/sqlite/0009_mail.sql"),
        postgres: include_str!("../../migrations/postgres/0009_mail.sql"),
    },
    Migration {
        version: 10,
        name: "0010_balances.sql",
        sqlite: include_str!("../../migrations/sqlite/0010_balances.sql"),
        postgres: include_str!("../../migrations/postgres/0010_balances.sql"),
    },
    Migration {
        version: 11,
        name: "0011_daily_runs.sql",
        sqlite: include_str!("../../migrations/0011_daily_runs.sql"),
        postgres: include_str!("../../migrations/0011_daily_runs.sql"),
    },
    Migration {
        version: 12,
        name: "0012_retention.sql",
        sqlite: include_str!("../../migrations/0012_retention.sql"),
        postgres: include_str!("../../migrations/0012_retention.sql"),
    },
];

/// An arbitrary constant that names Pregonero's migration lock among PostgreSQL advisory locks.
const PG_LOCK_KEY: i64 = 0x5052_4547_4f4e;

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

pub(super) async fn run(store: &Store) -> Result<(), StoreError> {
    let mut conn = store.pool().acquire().await?;
    if store.backend() == Backend::Postgres {
        conn.execute(format!("SELECT pg_advisory_lock({PG_LOCK_KEY})").as_str())
            .await?;
    }

    let result = apply_pending(&mut conn, store.backend()).await;

    if store.backend() == Backend::Postgres {
        conn.execute(format!("SELECT pg_advisory_unlock({PG_LOCK_KEY})").as_str())
            .await?;
    }
    result
}

async fn apply_pending(conn: &mut sqlx::AnyConnection, backend: Backend) -> Result<(), StoreError> {
    conn.execute(CREATE_LEDGER).await?;

    for migration in MIGRATIONS {
        let (version, name) = (migration.version, migration.name);
        let sql = match backend {
            Backend::Sqlite => migration.sqlite,
            Backend::Postgres => migration.postgres,
        };
        let applied: Option<(i64,)> =
            sqlx::query_as("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *conn)
                .await?;
        if applied.is_some() {
            continue;
        }

        let failed = |source| StoreError::Migration {
            version,
            name,
            source,
        };
        let mut tx = conn.begin().await.map_err(failed)?;
        for statement in statements(sql) {
            tx.execute(statement.as_str()).await.map_err(failed)?;
        }
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(version)
        .bind(name)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        tracing::info!(
            migration.version = version,
            migration.name = name,
            "migration applied"
        );
    }
    Ok(())
}

/// Splits a migration file into statements: comment lines dropped first (they may hold a `;`),
/// then one statement per `;`.
fn statements(sql: &str) -> Vec<String> {
    let code: String = sql
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_not_statements_even_with_a_semicolon() {
        let sql = "-- a comment; with a semicolon\nCREATE TABLE a (x BIGINT);\n-- trailing\n";
        let found = statements(sql);
        assert_eq!(found, ["CREATE TABLE a (x BIGINT)"]);
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
        }
    }
}
