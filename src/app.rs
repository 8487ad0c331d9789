//! The service as one value: opens the database, migrates it, makes sure there is an admin and a
//! token secret, binds the listener and runs until stopped.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::{Server, Service};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use serde_json::json;

use std::time::Duration;

use crate::api::{self, AppState};
use crate::auth::{TokenKeys, hash_password, random_hex, random_password};
use crate::config::Config;
use crate::dispatch::{self, SendingControl};
use crate::domain::ModuleSet;
use crate::eventlog::EventLog;
use crate::metrics::Metrics;
use crate::modem::actor::ModemHandle;
use crate::modem::at::Urc;
use crate::modem::pdu::{self, Received, ReportOutcome};
use crate::modem::session;
use crate::modem::simulator::SimConfig;
use crate::modem::transport::{PortSettings, PtyModem};
use crate::store::{MessageWriter, NewUser, ReportEffect, Store};

/// The settings key under which a generated token secret is kept.
const JWT_SECRET_KEY: &str = "jwt_secret";

/// A built service, bound to its port, not yet running.
pub struct Application {
    port: u16,
    server: Server,
    events: Arc<EventLog>,
    store: Store,
    /// The built-in simulated modem, when `modem_port` is `sim`; it lives as long as the service.
    _simulator: Option<PtyModem>,
}

impl Application {
    /// Prepares everything and binds `config.listen`.
    ///
    /// # Errors
    ///
    /// Fails when the data folder, the database or the port cannot be used.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let tz = config.tz()?;
        let region = config.region()?;
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data folder {}",
                config.data_dir.display()
            )
        })?;
        let events = Arc::new(EventLog::open(&config.data_dir.join("logs"), tz)?);

        let store = Store::connect(&config.database_url())
            .await
            .context("cannot open the database")?;
        store
            .migrate()
            .await
            .context("cannot migrate the database")?;
        store.spawn_checkpointer();
        let recovered = store.recover_interrupted().await?;
        if recovered != Default::default() {
            tracing::warn!(
                requeued = recovered.requeued,
                for_review = recovered.for_review,
                "recovered messages interrupted by the last stop"
            );
            events.record(
                "dispatch.recovered",
                None,
                json!({"requeued": recovered.requeued, "for_review": recovered.for_review}),
            );
        }
        ensure_admin(&store, &config, &events).await?;
        let secret = match &config.jwt_secret {
            Some(secret) => secret.expose().to_owned(),
            None => {
                store
                    .setting_or_insert(JWT_SECRET_KEY, &random_hex(32))
                    .await?
            }
        };

        let sending = Arc::new(SendingControl::new(config.auto_start, config.window()?));
        let simulator = start_modem(&config, &store, &sending, &events)?;

        let state = web::Data::new(AppState {
            writer: MessageWriter::spawn(store.clone()),
            store: store.clone(),
            tokens: TokenKeys::new(&secret, config.jwt_ttl_minutes)?,
            events: events.clone(),
            metrics: Arc::new(Metrics::default()),
            tz,
            region,
            callers: Default::default(),
            sending,
        });

        let listener = TcpListener::bind(&config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let port = listener.local_addr()?.port();
        let server = HttpServer::new(move || {
            let metrics = state.metrics.clone();
            let events = state.events.clone();
            App::new()
                .app_data(state.clone())
                .wrap_fn(move |req, srv| {
                    let started = Instant::now();
                    let (metrics, events) = (metrics.clone(), events.clone());
                    let answer = srv.call(req);
                    async move {
                        let res = answer.await?;
                        let status = res.status().as_u16();
                        metrics.observe(status, started.elapsed());
                        if status >= 500 {
                            // The cause is in the tracing output; the event log keeps the fact.
                            let route =
                                format!("{} {}", res.request().method(), res.request().path());
                            events.record("error", None, json!({"route": route, "status": status}));
                        }
                        Ok(res)
                    }
                })
                .configure(api::configure)
                .default_service(web::to(api::not_found))
        })
        .listen(listener)?
        .shutdown_timeout(10)
        .run();

        tracing::info!(
            listen = %config.listen,
            port,
            database = store_kind(&config),
            modem = %config.modem_port,
            "pregonero listening"
        );
        events.record(
            "service.started",
            None,
            json!({
                "version": env!("CARGO_PKG_VERSION"),
                "port": port,
                "database": store_kind(&config),
                "modem_port": config.modem_port,
            }),
        );
        Ok(Application {
            port,
            server,
            events,
            store,
            _simulator: simulator,
        })
    }

    /// The port the service listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is asked to stop (Ctrl-C, SIGTERM), then finishes the requests
    /// under way, lets the writer commit what it holds, and closes the database.
    ///
    /// # Errors
    ///
    /// Fails when the server fails.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let result = self.server.await;
        self.store.close().await;
        self.events.record("service.stopped", None, json!({}));
        tracing::info!("pregonero stopped");
        Ok(result?)
    }
}

/// The identifier of the one modem configured so far.
const MODEM_ID: &str = "modem-1";

/// Starts the modem's actor (on the built-in simulator when the port is `sim`), and once the
/// modem has answered its init sequence, the dispatcher's worker for it.
fn start_modem(
    config: &Config,
    store: &Store,
    sending: &Arc<SendingControl>,
    events: &Arc<EventLog>,
) -> anyhow::Result<Option<PtyModem>> {
    let (path, simulator) = if config.modem_port == "sim" {
        let simulator = PtyModem::start(SimConfig {
            segment_time_ms: config.sim_segment_ms,
            report_delay_ms: config.sim_segment_ms,
            ..SimConfig::default()
        })
        .context("cannot start the simulated modem")?;
        (simulator.path().to_owned(), Some(simulator))
    } else {
        (config.modem_port.clone(), None)
    };
    let (modem, urcs) = ModemHandle::spawn(PortSettings::new(&path));
    tokio::spawn(handle_events(urcs, modem.clone(), store.clone()));

    let (store, sending, events) = (store.clone(), sending.clone(), events.clone());
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(500);
        let identity = loop {
            match session::initialize(&modem).await {
                Ok(identity) => break identity,
                Err(err) => {
                    tracing::warn!(modem.id = MODEM_ID, error = %err, "modem not ready; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        };
        tracing::info!(
            modem.id = MODEM_ID,
            manufacturer = %identity.manufacturer,
            model = %identity.model,
            "modem ready"
        );
        events.record(
            "modem.connected",
            None,
            json!({"modem": MODEM_ID, "model": identity.model}),
        );
        dispatch::spawn_worker(store, MODEM_ID.to_owned(), modem, sending);
    });
    Ok(simulator)
}

/// Acts on what the modem says unprompted. Status reports come straight (`+CDS`) or stored in
/// the SIM (`+CDSI`, read and deleted here); received texts and calls are only traced until the
/// inbox exists.
async fn handle_events(
    mut urcs: tokio::sync::mpsc::UnboundedReceiver<Urc>,
    modem: ModemHandle,
    store: Store,
) {
    while let Some(urc) = urcs.recv().await {
        match urc {
            Urc::StatusReport { pdu } => {
                tokio::spawn(apply_report(store.clone(), pdu));
            }
            Urc::NewStatusReport { index, .. } => {
                let read = modem
                    .command(
                        &format!("AT+CMGR={index}"),
                        &["+CMGR"],
                        Duration::from_secs(5),
                    )
                    .await;
                if let Ok(lines) = read
                    && let Some(pdu) = lines.get(1)
                {
                    tokio::spawn(apply_report(store.clone(), pdu.clone()));
                    let delete = format!("AT+CMGD={index}");
                    let _ = modem.command(&delete, &[], Duration::from_secs(5)).await;
                }
            }
            other => tracing::debug!(modem.id = MODEM_ID, urc = ?other, "unsolicited"),
        }
    }
}

/// Records a status report. A report can overtake the record of its segment's `+CMGS` (the
/// network may answer within milliseconds), so one that matches nothing is tried again a few
/// times before it is let go.
async fn apply_report(store: Store, pdu: String) {
    let report = match pdu::decode(&pdu) {
        Ok(Received::StatusReport(report)) => report,
        other => {
            tracing::warn!(modem.id = MODEM_ID, result = ?other, "not a status report");
            return;
        }
    };
    let delivered = match report.outcome() {
        ReportOutcome::Delivered => Some(true),
        ReportOutcome::Failed => Some(false),
        ReportOutcome::Pending => None,
    };
    let mut wait = Duration::from_millis(200);
    for _ in 0..6 {
        let applied = store
            .apply_report(
                MODEM_ID,
                report.message_reference,
                &report.recipient.value,
                delivered,
                report.status,
            )
            .await;
        match applied {
            Ok(ReportEffect::Unmatched) if delivered.is_some() => {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Ok(effect) => {
                tracing::debug!(modem.id = MODEM_ID, effect = ?effect, "status report");
                return;
            }
            Err(err) => {
                tracing::warn!(error = ?err, "status report not recorded");
                return;
            }
        }
    }
    tracing::info!(
        modem.id = MODEM_ID,
        mr = report.message_reference,
        "unmatched status report"
    );
}

fn store_kind(config: &Config) -> &'static str {
    if config.database_url().starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    }
}

/// Creates the first admin when the database has no user: with the configured username and
/// password, or `admin` and a random password printed once on standard output.
async fn ensure_admin(store: &Store, config: &Config, events: &EventLog) -> anyhow::Result<()> {
    if store.count_users().await? > 0 {
        return Ok(());
    }
    let username = config
        .admin_username
        .clone()
        .unwrap_or_else(|| "admin".into());
    let (password, generated) = match &config.admin_password {
        Some(p) => (p.expose().to_owned(), false),
        None => (random_password(), true),
    };
    let to_hash = password.clone();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&to_hash)).await??;

    let created = store
        .create_user(NewUser {
            username: username.clone(),
            name: "Administrator".into(),
            password_hash,
            enabled: true,
            modules: ModuleSet::all(),
        })
        .await;
    match created {
        Ok(_) => {}
        // Another node sharing the database made the first admin at the same moment.
        Err(crate::store::StoreError::Duplicate { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    }

    if generated {
        // Printed, never logged: this is the only place the password ever appears.
        println!(
            "Created the first admin. Username: {username}  Password: {password}\n\
             Sign in and change it: PATCH /v1/users/{{id}} with a new password."
        );
    }
    tracing::info!(user.username = %username, generated, "first admin created");
    events.record(
        "user.created",
        None,
        json!({ "username": username, "first_admin": true }),
    );
    Ok(())
}
