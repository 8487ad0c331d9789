//! The service as one value: opens the database, migrates it, makes sure there is an admin and a
//! token secret, binds the listener and runs until stopped.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::{Server, Service};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use serde_json::json;

use crate::api::{self, AppState};
use crate::auth::{TokenKeys, hash_password, random_hex, random_password};
use crate::config::Config;
use crate::credit::Credit;
use crate::dispatch::fleet::Fleet;
use crate::dispatch::{SendingControl, SendingSettings, journal};
use crate::domain::ModuleSet;
use crate::eventlog::EventLog;
use crate::jobs;
use crate::loads::{self, Loader};
use crate::metrics::Metrics;
use crate::modem::simulator::SimConfig;
use crate::modem::transport::PortSettings;
use crate::optout::SuppressionList;
use crate::store::{MessageWriter, NewUser, Store};

/// The settings key under which a generated token secret is kept.
const JWT_SECRET_KEY: &str = "jwt_secret";

/// A built service, bound to its port, not yet running.
pub struct Application {
    port: u16,
    server: Server,
    events: Arc<EventLog>,
    store: Store,
    fleet: Arc<Fleet>,
    schedule: tokio::task::JoinHandle<()>,
    summary: tokio::task::JoinHandle<()>,
    credit: tokio::task::JoinHandle<()>,
    webhooks: tokio::task::JoinHandle<()>,
    feed: tokio::task::JoinHandle<()>,
    suppressions: tokio::task::JoinHandle<()>,
    mail: tokio::task::JoinHandle<()>,
    pruning: tokio::task::JoinHandle<()>,
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
        let modems: Vec<(String, PortSettings)> = config
            .modem_list()
            .into_iter()
            .map(|m| {
                let mut settings = PortSettings::new(&m.port);
                settings.baud_rate = m.baud_rate;
                settings.pin = m.pin;
                (m.id, settings)
            })
            .collect();
        let modem_ids: Vec<String> = modems.iter().map(|(id, _)| id.clone()).collect();
        // What the modems' journals hold goes to the database before recovery reads it.
        let journal_dir = config.data_dir.join("journal");
        let replayed = journal::replay(&store, &journal_dir)
            .await
            .with_context(|| format!("cannot read the journals in {}", journal_dir.display()))?;
        if replayed.steps > 0 {
            tracing::info!(steps = replayed.steps, "journalled dispatch steps applied");
        }
        // A modem taken out of the settings since still has its messages put back.
        let mut recovering = modem_ids.clone();
        recovering.extend(replayed.modems);
        recovering.sort();
        recovering.dedup();
        let recovered = store.recover_interrupted(&recovering).await?;
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
        if let Some(stored) = store.setting(SendingSettings::KEY).await? {
            match SendingSettings::from_json(&stored) {
                Ok(settings) => sending.configure(settings),
                Err(err) => tracing::warn!(error = %err, "stored sending settings not usable"),
            }
        }
        let fleet = Arc::new(Fleet::new(
            store.clone(),
            sending.clone(),
            events.clone(),
            region,
            SimConfig {
                segment_time_ms: config.sim_segment_ms,
                report_delay_ms: config.sim_segment_ms,
                ..SimConfig::default()
            },
            journal_dir,
            modems,
        ));
        // A modem paused for a low balance stays paused across the restart, from its first
        // moment.
        let credit = Arc::new(Credit::new(store.clone(), fleet.clone()));
        credit.apply_pauses().await;
        fleet.start().await?;

        // A node is its machine and data folder: the same after a restart, apart from another
        // gateway on the same machine.
        let node = format!("{}:{}", hostname(), config.data_dir.display());
        let interrupted = store.fail_interrupted_loads(&node, STALE_LOAD_MS).await?;
        if interrupted > 0 {
            tracing::warn!(
                loads = interrupted,
                "loads interrupted by the last stop marked failed"
            );
        }
        let suppressions = Arc::new(
            SuppressionList::load(&store)
                .await
                .context("cannot read the suppression list")?,
        );
        let suppressions_task = suppressions.clone().spawn_refresher(store.clone());
        let loads = Arc::new(Loader::new(
            store.clone(),
            node.clone(),
            tz,
            region,
            sending.clone(),
            suppressions.clone(),
        ));
        let clock: Arc<dyn jobs::Clock> = Arc::new(jobs::SystemClock);
        let schedule = tokio::spawn(loads::schedule::run(
            loads.clone(),
            store.clone(),
            node.clone(),
            clock.clone(),
        ));
        let summary = tokio::spawn(loads::daily_summary(
            loads.clone(),
            store.clone(),
            node.clone(),
            clock.clone(),
        ));
        let credit_task = credit.clone().spawn(node.clone(), tz, clock.clone());

        // POSTs and mails this node had under way when it stopped go again now.
        let (deliveries, mails) = store.release_claims(&node).await?;
        if deliveries + mails > 0 {
            tracing::warn!(
                deliveries,
                mails,
                "notifications interrupted by the last stop resumed"
            );
        }
        let webhooks =
            crate::notify::webhooks::spawn(store.clone(), config.webhook_retry_ms, node.clone());
        let (feed, feed_task) = crate::notify::feed::Feed::spawn(store.clone());
        let pruning = crate::notify::spawn_pruning(store.clone(), config.retention_days);
        let mail_wake = Arc::new(tokio::sync::Notify::new());
        let mail = crate::notify::mail::spawn(
            store.clone(),
            tz,
            config.mail_retry_ms,
            node.clone(),
            mail_wake.clone(),
        );

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
            fleet: fleet.clone(),
            loads,
            feed,
            suppressions,
            credit,
            mail_wake,
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
            fleet,
            schedule,
            summary,
            credit: credit_task,
            webhooks,
            feed: feed_task,
            suppressions: suppressions_task,
            mail,
            pruning,
        })
    }

    /// The port the service listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The modems of this node.
    pub fn fleet(&self) -> Arc<Fleet> {
        self.fleet.clone()
    }

    /// Serves until the process is asked to stop (Ctrl-C, SIGTERM), then finishes the requests
    /// under way, lets the writer commit what it holds, and closes the database.
    ///
    /// # Errors
    ///
    /// Fails when the server fails.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let result = self.server.await;
        self.schedule.abort();
        self.summary.abort();
        self.credit.abort();
        self.webhooks.abort();
        self.feed.abort();
        self.suppressions.abort();
        self.mail.abort();
        self.pruning.abort();
        self.store.close().await;
        self.events.record("service.stopped", None, json!({}));
        tracing::info!("pregonero stopped");
        Ok(result?)
    }
}

/// A load running this long was left by a node that stopped and never came back: a load of
/// 100,000 rows takes seconds, and the ERP's query may run for five minutes at most.
const STALE_LOAD_MS: i64 = 15 * 60 * 1000;

/// The machine's name, to tell nodes apart in the schedule's runs.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length, and gethostname writes at most that much.
    let done = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if done == 0 && end > 0 {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "node".into()
    }
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
