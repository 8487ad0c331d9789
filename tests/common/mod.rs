//! What more than one test binary needs: a fresh database for each test.

use std::path::Path;

/// An SQLite file in `dir`, or, when `PREGONERO_TEST_POSTGRES_URL` names a PostgreSQL server,
/// a new database on it, so that every test starts empty on either backend.
pub async fn fresh_database_url(dir: &Path) -> String {
    let Ok(server) = std::env::var("PREGONERO_TEST_POSTGRES_URL") else {
        return format!("sqlite://{}", dir.join("test.db").display());
    };
    use sqlx::Connection;
    let name = format!("pregonero_test_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(&server)
        .await
        .expect("PostgreSQL at PREGONERO_TEST_POSTGRES_URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let (base, _) = server.rsplit_once('/').expect("URL with a database name");
    format!("{base}/{name}")
}
