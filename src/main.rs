//! The `pregonero` binary: reads the settings, sets up logging and runs a command.

mod cli;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command, UserCommand};
use pregonero::app::Application;
use pregonero::config::Config;
use pregonero::store::Store;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info")))
        .init();

    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => Application::build(config).await?.run_until_stopped().await,
        Command::Migrate => {
            let store = Store::connect(&config.database_url()).await?;
            store.migrate().await?;
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
    }
}
