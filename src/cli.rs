//! The command line of the `pregonero` binary.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use pregonero::auth::{MIN_PASSWORD_LEN, check_username, hash_password};
use pregonero::config::Config;
use pregonero::domain::{Module, ModuleSet};
use pregonero::store::NewUser;

/// SMS gateway for GSM modems, with a REST/JSON API.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Settings file (default: ./pregonero.toml when it exists).
    #[arg(long, short, global = true, env = "PREGONERO_CONFIG")]
    pub config: Option<PathBuf>,

    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service.
    Serve,
    /// Create or update the database schema, then exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Modem tools.
    #[command(subcommand)]
    Modem(ModemCommand),
}

/// Modem commands.
#[derive(Debug, Subcommand)]
pub enum ModemCommand {
    /// List the serial ports of this machine, with USB vendor and product ids.
    Ports,
    /// Run the simulated modem on a pseudo-terminal and print its path, until Ctrl-C.
    Simulate {
        /// Milliseconds each segment takes to send.
        #[arg(long, default_value_t = 3000)]
        segment_ms: u64,
    },
}

/// Runs `pregonero modem ports`.
pub fn list_ports() -> anyhow::Result<()> {
    let ports = pregonero::modem::transport::list_ports().context("cannot list serial ports")?;
    if ports.is_empty() {
        println!("no serial ports found");
    }
    for port in ports {
        let usb = port
            .usb
            .map(|(vid, pid)| format!("  usb {vid:04x}:{pid:04x}"))
            .unwrap_or_default();
        let description = port.description.unwrap_or_default();
        println!("{}{usb}  {description}", port.path);
    }
    Ok(())
}

/// Runs `pregonero modem simulate`.
pub async fn simulate(segment_ms: u64) -> anyhow::Result<()> {
    let config = pregonero::modem::simulator::SimConfig {
        segment_time_ms: segment_ms,
        ..Default::default()
    };
    let modem = pregonero::modem::simulated::PtyModem::start(config)
        .context("cannot open a pseudo-terminal")?;
    println!("{}", modem.path());
    eprintln!("simulated Huawei E303 on {}; Ctrl-C to stop", modem.path());
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// User commands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from standard input.
    Add {
        /// The name used to sign in.
        username: String,
        /// The person's name.
        #[arg(long, default_value = "")]
        name: String,
        /// Modules, comma-separated: operators, reports, dashboard, admin.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "operators,reports,dashboard"
        )]
        modules: Vec<String>,
    },
}

/// Runs `pregonero user add`.
pub async fn add_user(
    config: &Config,
    username: String,
    name: String,
    modules: Vec<String>,
) -> anyhow::Result<()> {
    check_username(&username).map_err(|e| anyhow::anyhow!("username `{username}`: {e}"))?;
    let modules: ModuleSet = modules
        .iter()
        .map(|m| Module::parse(m.trim()).with_context(|| format!("`{m}` is not a module")))
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .collect();

    eprintln!("Password for {username} (one line on standard input):");
    let mut password = String::new();
    std::io::stdin().lock().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    if password.chars().count() < MIN_PASSWORD_LEN {
        bail!("the password must have at least {MIN_PASSWORD_LEN} characters");
    }

    let store = crate::open_store(config).await?;
    let user = store
        .create_user(NewUser {
            name: if name.is_empty() {
                username.clone()
            } else {
                name
            },
            username,
            password_hash: hash_password(&password)?,
            enabled: true,
            modules,
        })
        .await
        .context("cannot create the user")?;
    println!("created user {} ({})", user.username, user.id);
    Ok(())
}
