//! The `pregonero` binary: reads the settings, sets up logging and runs a command.

mod cli;

use std::io::IsTerminal;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command, ModemCommand, UserCommand};
use pregonero::app::Application;
use pregonero::config::Config;
use pregonero::store::Store;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    return_large_allocations_to_the_system();
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;

    // Diagnostics go to standard error, in colour only on a terminal; standard output is kept
    // for what a command prints (the first admin's password, the OpenAPI document).
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => Application::build(config).await?.run_until_stopped().await,
        Command::Migrate => {
            open_store(&config).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::Openapi => {
            print!("{}", pregonero::api::openapi::document_json());
            Ok(())
        }
        Command::User(UserCommand::Add {
            username,
            name,
            modules,
        }) => cli::add_user(&config, username, name, modules).await,
        Command::Modem(ModemCommand::Ports) => cli::list_ports(),
        Command::Modem(ModemCommand::Simulate { segment_ms }) => cli::simulate(segment_ms).await,
    }
}

/// Opens and migrates the configured database, creating the data folder first.
async fn open_store(config: &Config) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data folder {}",
            config.data_dir.display()
        )
    })?;
    let store = Store::connect(&config.database_url())
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                config.database_url_redacted()
            )
        })?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    Ok(store)
}

/// Keeps glibc from holding on to freed large blocks.
///
/// glibc raises its mmap threshold each time a large mmapped block is freed; after the 19 MiB
/// that one argon2 hash takes, later hashes come from the heap and their memory stays resident
/// for good. A fixed threshold keeps large blocks in mmap, returned to the system when freed,
/// which is what keeps an idle gateway small.
fn return_large_allocations_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}
