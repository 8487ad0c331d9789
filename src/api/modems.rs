//! `/v1/modems`: each modem's status, its port settings, connecting and disconnecting it, a
//! test message, the AT trace, the serial ports of the machine, and for the built-in simulator,
//! a received text or call on demand.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::AppState;
use super::caller::Caller;
use super::error::{self, ApiError};
use super::json::JsonBody;
use super::time::show_opt;
use crate::config::Secret;
use crate::dispatch::fleet::{FleetError, ModemStatus, SIM_PORT};
use crate::domain::{Module, PhoneNumber};
use crate::modem::pdu::{SubmitOptions, encode_submit};
use crate::modem::session::Registration;
use crate::modem::simulator::UssdShape;
use crate::modem::transport::{self, PortSettings};

/// How long a test message may take on the air, each segment.
const TEST_SEGMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A modem's status.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModemView {
    /// Its id.
    #[schema(example = "modem-1")]
    pub id: String,
    /// The port it is opened by (`sim` for the built-in simulator).
    #[schema(example = "/dev/ttyUSB0")]
    pub port: String,
    /// Whether it is the built-in simulator.
    pub simulated: bool,
    /// Whether it is meant to be connected (false after `disconnect`).
    pub enabled: bool,
    /// Whether its port is open and initialised now.
    pub connected: bool,
    /// Whether it is sending a message now.
    pub busy: bool,
    /// Manufacturer, as the modem reports it.
    pub manufacturer: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Firmware revision.
    pub revision: Option<String>,
    /// IMEI.
    pub imei: Option<String>,
    /// The SIM's IMSI.
    pub imsi: Option<String>,
    /// The network operator.
    pub operator: Option<String>,
    /// `home`, `roaming`, `searching`, `denied`, `not_registered` or `unknown`.
    pub registration: Option<String>,
    /// Signal in dBm, when known.
    pub signal_dbm: Option<i32>,
    /// Signal in bars, 0–5.
    pub signal_bars: Option<u8>,
    /// When signal, registration and operator were read.
    pub status_at: Option<String>,
    /// When it last became ready.
    pub connected_since: Option<String>,
    /// The last thing that went wrong with it.
    pub last_error: Option<String>,
}

impl ModemView {
    fn new(status: ModemStatus, tz: chrono_tz::Tz) -> ModemView {
        let identity = status.identity.as_ref();
        let network = status.network.as_ref();
        ModemView {
            id: status.id.clone(),
            port: if status.simulated {
                SIM_PORT.to_owned()
            } else {
                status.port.clone()
            },
            simulated: status.simulated,
            enabled: status.enabled,
            connected: status.ready,
            busy: status.busy,
            manufacturer: identity.map(|i| i.manufacturer.clone()),
            model: identity.map(|i| i.model.clone()),
            revision: identity.map(|i| i.revision.clone()),
            imei: identity.map(|i| i.imei.clone()),
            imsi: identity.map(|i| i.imsi.clone()),
            operator: network.and_then(|n| n.operator.clone()),
            registration: network.map(|n| registration_name(n.registration).to_owned()),
            signal_dbm: network.and_then(|n| n.signal.dbm),
            signal_bars: network.map(|n| n.signal.bars),
            status_at: show_opt(status.network_at, tz),
            connected_since: show_opt(status.connected_since, tz),
            last_error: status.last_error,
        }
    }
}

fn registration_name(registration: Registration) -> &'static str {
    match registration {
        Registration::Home => "home",
        Registration::Roaming => "roaming",
        Registration::Searching => "searching",
        Registration::Denied => "denied",
        Registration::NotRegistered => "not_registered",
        Registration::Unknown => "unknown",
    }
}

/// A modem's port settings. The PIN is never shown; `pin_set` says whether there is one.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortSettingsView {
    /// The serial port, or `sim`.
    #[schema(example = "/dev/ttyUSB0")]
    pub port: String,
    /// Bits per second.
    #[schema(example = 115200)]
    pub baud_rate: u32,
    /// 5–8.
    pub data_bits: u8,
    /// `none`, `odd` or `even`.
    pub parity: String,
    /// 1 or 2.
    pub stop_bits: u8,
    /// `none`, `software` or `hardware`.
    pub flow_control: String,
    /// Whether a SIM PIN is set.
    pub pin_set: bool,
    /// Whether these are the configured settings (no admin change stored).
    pub is_default: bool,
}

fn settings_view(current: &PortSettings, defaults: &PortSettings) -> PortSettingsView {
    PortSettingsView {
        port: current.path.clone(),
        baud_rate: current.baud_rate,
        data_bits: transport::data_bits_number(current.data_bits),
        parity: transport::parity_name(current.parity).to_owned(),
        stop_bits: transport::stop_bits_number(current.stop_bits),
        flow_control: transport::flow_control_name(current.flow_control).to_owned(),
        pin_set: current.pin.is_some(),
        is_default: current == defaults,
    }
}

/// New port settings; absent fields keep their current value. Applying them reconnects the
/// modem.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortSettingsChange {
    /// The serial port (`/dev/ttyUSB0`, `COM3`), or `sim`.
    pub port: Option<String>,
    /// Bits per second, 300–4000000.
    pub baud_rate: Option<u32>,
    /// 5–8.
    pub data_bits: Option<u64>,
    /// `none`, `odd` or `even`.
    pub parity: Option<String>,
    /// 1 or 2.
    pub stop_bits: Option<u64>,
    /// `none`, `software` or `hardware`.
    pub flow_control: Option<String>,
    /// The SIM PIN (4–8 digits), write-only; an empty text removes it.
    pub pin: Option<String>,
}

/// A test message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestSms {
    /// The recipient.
    #[schema(example = "71234567")]
    pub to: String,
    /// The text (default: a short test text).
    pub text: Option<String>,
}

/// What the network said to a test message.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestSmsResult {
    /// The recipient in E.164.
    pub to: String,
    /// The message reference of each segment.
    pub references: Vec<u8>,
}

/// A text or call for the simulated modem to receive.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulatedInbound {
    /// The sender or caller, with its country code.
    #[schema(example = "+59171234567")]
    pub from: String,
    /// The text; absent for a call.
    pub text: Option<String>,
}

/// What the simulated modem's operator answers USSD requests with.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulatedUssd {
    /// The answer; null makes the network answer that USSD is not supported.
    #[schema(example = "Tu saldo es Bs 25,50 vigente hasta 31/12/2026")]
    pub text: Option<String>,
    /// How the modem writes it: `plain`, `packed` (GSM 7-bit hex, the default) or `ucs2`.
    pub shape: Option<UssdShape>,
}

/// One AT exchange.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExchangeView {
    /// Milliseconds since the modem was connected.
    pub at_ms: u64,
    /// `>` written to the modem, `<` read from it.
    pub direction: String,
    /// The line (PINs masked).
    pub text: String,
}

/// A serial port on the machine.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortView {
    /// Its path.
    pub path: String,
    /// USB vendor:product, e.g. `12d1:1506`.
    pub usb: Option<String>,
    /// What the device says it is.
    pub description: Option<String>,
}

/// Mounts the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let post = |path: &str, handler| super::resource(path).route(handler);
    cfg.service(super::resource("/v1/modems").route(web::get().to(list)))
        .service(super::resource("/v1/modems/ports").route(web::get().to(ports)))
        .service(super::resource("/v1/modems/{id}").route(web::get().to(get)))
        .service(
            super::resource("/v1/modems/{id}/settings")
                .route(web::get().to(get_settings))
                .route(web::put().to(put_settings)),
        )
        .service(post(
            "/v1/modems/{id}/settings/defaults",
            web::post().to(default_settings),
        ))
        .service(post("/v1/modems/{id}/connect", web::post().to(connect)))
        .service(post(
            "/v1/modems/{id}/disconnect",
            web::post().to(disconnect),
        ))
        .service(post("/v1/modems/{id}/test-sms", web::post().to(test_sms)))
        .service(super::resource("/v1/modems/{id}/trace").route(web::get().to(trace)))
        .service(post(
            "/v1/modems/{id}/simulator/inbound",
            web::post().to(simulate_inbound),
        ))
        .service(post(
            "/v1/modems/{id}/simulator/ussd",
            web::post().to(simulate_ussd),
        ));
}

/// The answer for a fleet request that failed.
pub(super) fn fleet_error(err: FleetError) -> ApiError {
    match err {
        FleetError::Unknown => ApiError::NotFound("modem"),
        FleetError::Disconnected => ApiError::Conflict {
            field: None,
            detail: "the modem is disconnected; connect it first".into(),
        },
        FleetError::NotSimulated => ApiError::Conflict {
            field: None,
            detail: "this modem is a real one; only the simulator can be told to receive".into(),
        },
        FleetError::Modem(err) => ApiError::Upstream(format!("the modem failed: {err}")),
        FleetError::Ussd(words) => ApiError::Upstream(words),
        FleetError::Journal(reason) => ApiError::Internal(anyhow::anyhow!(reason)),
        FleetError::Store(err) => err.into(),
    }
}

/// Every modem of this node, with its status.
#[utoipa::path(
    get, path = "/v1/modems", tag = "modems",
    responses(
        (status = 200, description = "The modems", body = [ModemView]),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["dashboard"]))
)]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Dashboard)?;
    let modems: Vec<ModemView> = state
        .fleet
        .list()
        .into_iter()
        .map(|s| ModemView::new(s, state.tz))
        .collect();
    Ok(HttpResponse::Ok().json(modems))
}

/// One modem's status: identity, network, signal, last error.
#[utoipa::path(
    get, path = "/v1/modems/{id}", tag = "modems",
    params(("id" = String, Path, description = "The modem's id")),
    responses(
        (status = 200, description = "The modem", body = ModemView),
        (status = 404, response = error::NotFound),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["dashboard"]))
)]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Dashboard)?;
    let status = state.fleet.status(&id).map_err(fleet_error)?;
    Ok(HttpResponse::Ok().json(ModemView::new(status, state.tz)))
}

/// The serial ports found on the machine, to pick a modem's port from.
#[utoipa::path(
    get, path = "/v1/modems/ports", tag = "modems",
    responses(
        (status = 200, description = "The ports", body = [PortView]),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn ports(caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let found = web::block(transport::list_ports)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(|e| ApiError::Internal(e.into()))?;
    let ports: Vec<PortView> = found
        .into_iter()
        .map(|p| PortView {
            path: p.path,
            usb: p.usb.map(|(vid, pid)| format!("{vid:04x}:{pid:04x}")),
            description: p.description,
        })
        .collect();
    Ok(HttpResponse::Ok().json(ports))
}

/// A modem's port settings.
#[utoipa::path(
    get, path = "/v1/modems/{id}/settings", tag = "modems",
    params(("id" = String, Path, description = "The modem's id")),
    responses(
        (status = 200, description = "The settings", body = PortSettingsView),
        (status = 404, response = error::NotFound),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn get_settings(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let (current, defaults) = state.fleet.settings(&id).map_err(fleet_error)?;
    Ok(HttpResponse::Ok().json(settings_view(&current, &defaults)))
}

/// Change a modem's port settings; the modem reconnects with them. They are kept in the
/// database and outlive restarts.
#[utoipa::path(
    put, path = "/v1/modems/{id}/settings", tag = "modems",
    params(("id" = String, Path, description = "The modem's id")),
    request_body = PortSettingsChange,
    responses(
        (status = 200, description = "The settings in use", body = PortSettingsView),
        (status = 400, response = error::BadRequest),
        (status = 404, response = error::NotFound),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn put_settings(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    JsonBody(change): JsonBody<PortSettingsChange>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let (current, defaults) = state.fleet.settings(&id).map_err(fleet_error)?;
    let settings = apply_change(current, change)?;
    let settings = state
        .fleet
        .set_settings(&id, Some(settings))
        .await
        .map_err(fleet_error)?;
    state.events.record(
        "modem.settings_changed",
        Some(&caller.label()),
        json!({"modem": id.as_str(), "port": settings.path}),
    );
    Ok(HttpResponse::Ok().json(settings_view(&settings, &defaults)))
}

fn apply_change(
    mut settings: PortSettings,
    change: PortSettingsChange,
) -> Result<PortSettings, ApiError> {
    if let Some(port) = change.port {
        let port = port.trim().to_owned();
        if port.is_empty() || port.len() > 256 || port.chars().any(char::is_control) {
            return Err(ApiError::invalid("port", "must be a device path or `sim`"));
        }
        settings.path = port;
    }
    if let Some(baud) = change.baud_rate {
        if !(300..=4_000_000).contains(&baud) {
            return Err(ApiError::invalid("baud_rate", "must be 300–4000000"));
        }
        settings.baud_rate = baud;
    }
    if let Some(bits) = change.data_bits {
        settings.data_bits = transport::parse_data_bits(bits)
            .ok_or_else(|| ApiError::invalid("data_bits", "must be 5, 6, 7 or 8"))?;
    }
    if let Some(parity) = change.parity {
        settings.parity = transport::parse_parity(&parity)
            .ok_or_else(|| ApiError::invalid("parity", "must be `none`, `odd` or `even`"))?;
    }
    if let Some(bits) = change.stop_bits {
        settings.stop_bits = transport::parse_stop_bits(bits)
            .ok_or_else(|| ApiError::invalid("stop_bits", "must be 1 or 2"))?;
    }
    if let Some(flow) = change.flow_control {
        settings.flow_control = transport::parse_flow_control(&flow).ok_or_else(|| {
            ApiError::invalid("flow_control", "must be `none`, `software` or `hardware`")
        })?;
    }
    if let Some(pin) = change.pin {
        settings.pin = match pin.as_str() {
            "" => None,
            p if (4..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit()) => {
                Some(Secret::new(p))
            }
            _ => return Err(ApiError::invalid("pin", "must be 4 to 8 digits")),
        };
    }
    Ok(settings)
}

/// Go back to the configured port settings; the modem reconnects with them.
#[utoipa::path(
    post, path = "/v1/modems/{id}/settings/defaults", tag = "modems",
    params(("id" = String, Path, description = "The modem's id")),
    responses(
        (status = 200, description = "The settings in use", body = PortSettingsView),
        (status = 404, response = error::NotFound),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn default_settings(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let settings = state
        .fleet
        .set_settings(&id, None)
        .await
        .map_err(fleet_error)?;
    state.events.record(
        "modem.settings_reset",
        Some(&caller.label()),
        json!({"modem": id.as_str()}),
    );
    Ok(HttpResponse::Ok().json(settings_view(&settings, &settings)))
}

/// Connect a modem: open its port and start sending through it.
#[utoipa::path(
    post, path = "/v1/modems/{id}/connect", tag = "modems",
    params(("id" = String, Path, description = "The modem's id")),
    responses(
        (status = 200, description = "Connecting; `connected` turns true once it answers",
            body = ModemView),
        (status = 404, response = error::NotFound),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn connect(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let status = state.fleet.connect(&id).await.map_err(fleet_error)?;
    state.events.record(
        "modem.connect",
        Some(&caller.label()),
        json!({"modem": id.as_str()}),
    );
    Ok(HttpResponse::Ok().json(ModemView::new(status, state.tz)))
}

/// Disconnect a modem: the message on the air finishes, then its port is closed. Its
/// messages wait for another modem or for it to come back.
#[utoipa::path(
    post, path = "/v1/modems/{id}/disconnect", tag = "modems",
    params(("id" = String, Path, description = "The modem's id")),
    responses(
        (status = 200, description = "Disconnected", body = ModemView),
        (status = 404, response = error::NotFound),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn disconnect(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let status = state.fleet.disconnect(&id).await.map_err(fleet_error)?;
    state.events.record(
        "modem.disconnect",
        Some(&caller.label()),
        json!({"modem": id.as_str()}),
    );
    Ok(HttpResponse::Ok().json(ModemView::new(status, state.tz)))
}

/// Send a test message through this modem now, outside the queue and the sending window.
#[utoipa::path(
    post, path = "/v1/modems/{id}/test-sms", tag = "modems",
    params(("id" = String, Path, description = "The modem's id")),
    request_body = TestSms,
    responses(
        (status = 200, description = "The network accepted it", body = TestSmsResult),
        (status = 404, response = error::NotFound),
        (status = 409, response = error::Conflict),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["operators"]))
)]
pub async fn test_sms(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    JsonBody(body): JsonBody<TestSms>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Operators)?;
    let to = PhoneNumber::parse(&body.to, state.region).map_err(|e| ApiError::invalid("to", e))?;
    let text = body
        .text
        .unwrap_or_else(|| "Pregonero: mensaje de prueba.".to_owned());
    let checked =
        crate::domain::MessageText::parse(&text).map_err(|e| ApiError::invalid("text", e))?;
    let references = send_now(&state, &id, &to, &checked).await?;
    state.events.record(
        "modem.test_sms",
        Some(&caller.label()),
        json!({"modem": id.as_str(), "to": to.as_str(), "segments": references.len()}),
    );
    Ok(HttpResponse::Ok().json(TestSmsResult {
        to: to.as_str().to_owned(),
        references,
    }))
}

/// Sends `text` to `to` through the modem `id` at once, outside the queue and the sending
/// window, and counts its segments; returns the message reference of each.
pub(super) async fn send_now(
    state: &AppState,
    id: &str,
    to: &PhoneNumber,
    text: &crate::domain::MessageText,
) -> Result<Vec<u8>, ApiError> {
    let modem = state.fleet.handle(id).await.map_err(fleet_error)?;
    if !modem.is_ready() {
        return Err(fleet_error(FleetError::Disconnected));
    }
    let parts = encode_submit(to.as_str(), text.as_str(), &SubmitOptions::default())
        .map_err(|e| ApiError::invalid("text", e))?;
    let mut references = Vec::with_capacity(parts.len());
    for part in &parts {
        let sent = modem
            .send_pdu(part.tpdu_length, &part.hex, TEST_SEGMENT_TIMEOUT)
            .await;
        match sent {
            Ok(mr) => references.push(mr),
            Err(err) => {
                return Err(ApiError::Conflict {
                    field: None,
                    detail: format!("the modem did not send it: {err}"),
                });
            }
        }
    }
    state
        .store
        .count_segments(id, references.len() as i64)
        .await?;
    Ok(references)
}

/// The last AT exchanges with this modem (PDUs shown, PINs masked), oldest first.
#[utoipa::path(
    get, path = "/v1/modems/{id}/trace", tag = "modems",
    params(("id" = String, Path, description = "The modem's id")),
    responses(
        (status = 200, description = "The exchanges", body = [ExchangeView]),
        (status = 404, response = error::NotFound),
        (status = 409, response = error::Conflict),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn trace(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let exchanges: Vec<ExchangeView> = state
        .fleet
        .trace(&id)
        .await
        .map_err(fleet_error)?
        .into_iter()
        .map(|e| ExchangeView {
            at_ms: e.at_ms,
            direction: e.direction.to_string(),
            text: e.text,
        })
        .collect();
    Ok(HttpResponse::Ok().json(exchanges))
}

/// Make the built-in simulated modem receive a text (with `text`) or a call (without), as if
/// a phone had sent it. Real modems answer 409.
#[utoipa::path(
    post, path = "/v1/modems/{id}/simulator/inbound", tag = "modems",
    params(("id" = String, Path, description = "The modem's id")),
    request_body = SimulatedInbound,
    responses(
        (status = 202, description = "The simulator received it; the inbox shows it shortly"),
        (status = 404, response = error::NotFound),
        (status = 409, response = error::Conflict),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn simulate_inbound(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    JsonBody(body): JsonBody<SimulatedInbound>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let from =
        PhoneNumber::parse(&body.from, state.region).map_err(|e| ApiError::invalid("from", e))?;
    if let Some(text) = &body.text
        && (text.is_empty() || text.chars().count() > 1_000)
    {
        return Err(ApiError::invalid("text", "must have 1 to 1000 characters"));
    }
    let simulator = state.fleet.simulator(&id).await.map_err(fleet_error)?;
    simulator.with_simulator(|sim, now| match &body.text {
        Some(text) => sim.receive_sms(from.as_str(), text, now),
        None => sim.ring(from.as_str(), now),
    });
    Ok(HttpResponse::Accepted().json(json!({"accepted": true})))
}

/// Set what the built-in simulated modem's operator answers USSD requests (balance checks)
/// with, and how the modem writes the answer. Real modems answer 409.
#[utoipa::path(
    post, path = "/v1/modems/{id}/simulator/ussd", tag = "modems",
    params(("id" = String, Path, description = "The modem's id")),
    request_body = SimulatedUssd,
    responses(
        (status = 200, description = "Set"),
        (status = 404, response = error::NotFound),
        (status = 409, response = error::Conflict),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn simulate_ussd(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    JsonBody(body): JsonBody<SimulatedUssd>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    if let Some(text) = &body.text
        && (text.is_empty() || text.chars().count() > 182)
    {
        return Err(ApiError::invalid(
            "text",
            "a USSD answer has 1 to 182 characters",
        ));
    }
    let simulator = state.fleet.simulator(&id).await.map_err(fleet_error)?;
    let shape = body.shape.unwrap_or_default();
    simulator.with_simulator(|sim, _| sim.set_ussd_answer(body.text.clone(), shape));
    Ok(HttpResponse::Ok().json(json!({"text": body.text, "shape": shape})))
}
