//! The credit of prepaid lines: asking a modem's balance by USSD (on demand, or daily at an hour
//! set per modem), reading the operator's answer, keeping the history, telling people
//! (`balance.checked`, and `balance.low` under a threshold), and, when an admin chose so,
//! pausing a modem's sending while its balance is low.
//!
//! Whether a modem is paused is worked out from its last balance and its settings, at start-up
//! and after every check or change of settings, so nothing else has to be remembered.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveTime;
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::dispatch::fleet::{Fleet, FleetError};
use crate::domain::parse_balance;
use crate::jobs::{self, BoxFuture, Clock};
use crate::store::{BalanceCheckRecord, NewBalanceCheck, Store, StoreError};

/// The settings key of the USSD presets.
pub const PRESETS_KEY: &str = "credit.presets";

/// How long the network has to answer a balance request.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// How long a daily check waits for its modem to be between messages before asking anyway.
const QUIET_WITHIN: Duration = Duration::from_secs(600);

/// The settings key of a modem's credit settings.
fn settings_key(modem_id: &str) -> String {
    format!("credit.modem.{modem_id}")
}

/// A modem's credit settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditSettings {
    /// The USSD code that asks the balance (`*105#`); absent, the preset for the modem's
    /// operator is used.
    #[schema(example = "*105#")]
    pub ussd_code: Option<String>,
    /// Send the code as packed GSM 7-bit hex, as some Huawei firmware wants.
    #[serde(default)]
    pub packed: bool,
    /// The daily check's hour, `HH:MM` in the gateway's time zone; absent, no daily check.
    #[schema(example = "07:30")]
    pub check_at: Option<String>,
    /// Below this amount a `balance.low` event fires (a decimal number, in the line's currency).
    #[schema(example = "10")]
    pub low_threshold: Option<String>,
    /// Pause sending from this modem while its balance is under the threshold.
    #[serde(default)]
    pub pause_when_low: bool,
}

impl CreditSettings {
    /// Checks every field.
    ///
    /// # Errors
    ///
    /// The field at fault and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if let Some(code) = &self.ussd_code
            && !is_ussd_code(code)
        {
            return Err((
                "ussd_code",
                "a USSD code: digits, * and #, ending in #, e.g. *105#".into(),
            ));
        }
        if let Some(at) = &self.check_at {
            self.time().ok_or_else(|| {
                (
                    "check_at",
                    format!("`{at}` is not a time of day; write HH:MM, e.g. 07:30"),
                )
            })?;
        }
        if let Some(raw) = &self.low_threshold {
            match Decimal::from_str(raw.trim()) {
                Ok(d) if !d.is_sign_negative() => {}
                _ => {
                    return Err((
                        "low_threshold",
                        format!("`{raw}` is not an amount; write it like 10 or 10.50"),
                    ));
                }
            }
        }
        if self.pause_when_low && self.low_threshold.is_none() {
            return Err((
                "pause_when_low",
                "pausing needs a `low_threshold` to compare with".into(),
            ));
        }
        Ok(())
    }

    /// The daily check's hour, if it has a valid one.
    pub fn time(&self) -> Option<NaiveTime> {
        let at = self.check_at.as_deref()?;
        NaiveTime::parse_from_str(at.trim(), "%H:%M").ok()
    }

    /// Whether `amount` is under the threshold (never, without either).
    pub fn is_low(&self, amount: Option<Decimal>) -> bool {
        matches!((amount, self.threshold()), (Some(a), Some(t)) if a < t)
    }

    /// The threshold, if it has a valid one.
    pub fn threshold(&self) -> Option<Decimal> {
        Decimal::from_str(self.low_threshold.as_deref()?.trim()).ok()
    }
}

/// Whether `code` looks like a USSD code: `*`, `#` and digits, ending in `#`.
fn is_ussd_code(code: &str) -> bool {
    (2..=30).contains(&code.len())
        && code.ends_with('#')
        && code
            .chars()
            .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
}

/// The code that asks the balance on an operator's lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// The operator, as the network names itself to the modem (`AT+COPS?`); matched without
    /// regard to case, as a part of that name.
    #[schema(example = "Entel")]
    pub operator: String,
    /// The code.
    #[schema(example = "*105#")]
    pub code: String,
}

/// The presets until an admin changes them: Entel's balance code in Bolivia, and the simulated
/// modem's operator. Codes of other operators are added through `PUT /v1/credit/presets`.
pub fn default_presets() -> Vec<Preset> {
    vec![
        Preset {
            operator: "Entel".into(),
            code: "*105#".into(),
        },
        Preset {
            operator: "Sim Movil".into(),
            code: "*105#".into(),
        },
    ]
}

/// Checks a list of presets.
///
/// # Errors
///
/// The entry at fault (`presets[2].code`) and why.
pub fn check_presets(presets: &[Preset]) -> Result<(), (String, String)> {
    for (i, p) in presets.iter().enumerate() {
        if p.operator.trim().is_empty() || p.operator.chars().count() > 60 {
            return Err((
                format!("presets[{i}].operator"),
                "an operator's name, 1 to 60 characters".into(),
            ));
        }
        if !is_ussd_code(&p.code) {
            return Err((
                format!("presets[{i}].code"),
                "a USSD code: digits, * and #, ending in #, e.g. *105#".into(),
            ));
        }
    }
    Ok(())
}

/// Why a balance check could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CreditError {
    /// The modem could not ask, or the network gave no usable answer.
    #[error(transparent)]
    Fleet(#[from] FleetError),
    /// No code is set for the modem and no preset matches its operator.
    #[error(
        "no USSD code for {modem_id}: set `ussd_code` in its balance settings, or add a preset \
         for its operator ({operator})"
    )]
    NoCode {
        /// The modem.
        modem_id: String,
        /// Its operator, as the network names itself.
        operator: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a check found, as recorded.
#[derive(Debug)]
pub struct Checked {
    /// The record.
    pub record: BalanceCheckRecord,
    /// Whether the balance is under the threshold.
    pub low: bool,
    /// Whether the modem's sending is paused now.
    pub paused: bool,
}

/// Balance checks and their consequences, for every modem of this node.
#[derive(Debug)]
pub struct Credit {
    store: Store,
    fleet: Arc<Fleet>,
}

impl Credit {
    /// Credit over this node's modems.
    pub fn new(store: Store, fleet: Arc<Fleet>) -> Credit {
        Credit { store, fleet }
    }

    /// A modem's credit settings (all off until set).
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn settings(&self, modem_id: &str) -> Result<CreditSettings, StoreError> {
        Ok(self
            .store
            .setting(&settings_key(modem_id))
            .await?
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default())
    }

    /// Stores a modem's credit settings, and pauses or resumes it by its last balance.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn set_settings(
        &self,
        modem_id: &str,
        settings: &CreditSettings,
    ) -> Result<(), CreditError> {
        let json = serde_json::to_string(settings).unwrap_or_default();
        self.store
            .set_setting(&settings_key(modem_id), &json)
            .await?;
        self.apply_pause(modem_id).await?;
        Ok(())
    }

    /// The presets.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn presets(&self) -> Result<Vec<Preset>, StoreError> {
        Ok(self
            .store
            .setting(PRESETS_KEY)
            .await?
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_else(default_presets))
    }

    /// Replaces the presets.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn set_presets(&self, presets: &[Preset]) -> Result<(), StoreError> {
        let json = serde_json::to_string(presets).unwrap_or_default();
        self.store.set_setting(PRESETS_KEY, &json).await
    }

    /// The code that asks a modem's balance: its own, or its operator's preset.
    async fn code_for(
        &self,
        modem_id: &str,
        settings: &CreditSettings,
    ) -> Result<String, CreditError> {
        if let Some(code) = &settings.ussd_code {
            return Ok(code.clone());
        }
        let operator = self
            .fleet
            .status(modem_id)?
            .network
            .and_then(|n| n.operator)
            .unwrap_or_default();
        let lower = operator.to_lowercase();
        self.presets()
            .await?
            .into_iter()
            .find(|p| !lower.is_empty() && lower.contains(&p.operator.to_lowercase()))
            .map(|p| p.code)
            .ok_or(CreditError::NoCode {
                modem_id: modem_id.to_owned(),
                operator: if operator.is_empty() {
                    "not known yet".into()
                } else {
                    operator
                },
            })
    }

    /// Asks a modem's balance now, records the answer (or why none came) with its events, and
    /// pauses or resumes the modem by it. `cause` is `api` or `daily`.
    ///
    /// # Errors
    ///
    /// Fails when no code is known, the modem or the network gave no answer (recorded all the
    /// same), or the database fails.
    #[tracing::instrument(skip(self), fields(modem.id = %modem_id))]
    pub async fn check(&self, modem_id: &str, cause: &str) -> Result<Checked, CreditError> {
        let settings = self.settings(modem_id).await?;
        let code = self.code_for(modem_id, &settings).await?;
        let asked = self
            .fleet
            .ask_ussd(modem_id, &code, settings.packed, ANSWER_WITHIN)
            .await;
        let mut check = NewBalanceCheck {
            modem_id: modem_id.to_owned(),
            code: code.clone(),
            cause: cause.to_owned(),
            answer: None,
            amount: None,
            currency: None,
            expires: None,
            error: None,
        };
        let failure = match asked {
            Ok(answer) => {
                if let Some(balance) = parse_balance(&answer.text) {
                    check.amount = Some(balance.amount.to_string());
                    check.currency = balance.currency;
                    check.expires = balance.expires.map(|d| d.to_string());
                }
                check.answer = Some(answer.text);
                None
            }
            Err(err) => {
                check.error = Some(err.to_string());
                Some(err)
            }
        };

        let threshold = settings.threshold();
        let amount = check
            .amount
            .as_deref()
            .and_then(|a| Decimal::from_str(a).ok());
        let low = settings.is_low(amount);
        let paused = if settings.pause_when_low && amount.is_some() {
            low
        } else {
            self.fleet.is_paused(modem_id)? && settings.pause_when_low
        };
        let payload = json!({
            "modem_id": modem_id,
            "code": code,
            "cause": cause,
            "text": check.answer,
            "parsed": check.amount.is_some(),
            "amount": check.amount,
            "currency": check.currency,
            "expires": check.expires,
            "error": check.error,
            "threshold": threshold.map(|t| t.to_string()),
            "paused": paused,
        });
        let mut events = vec![("balance.checked", payload.clone())];
        if low {
            events.push(("balance.low", payload));
        }
        // Paused (or resumed) first: a check the database then fails to keep still acts.
        self.fleet.set_paused(modem_id, paused)?;
        let record = self.store.record_balance_check(&check, &events).await?;
        match (&failure, &check.amount) {
            (Some(err), _) => tracing::warn!(error = %err, "balance not read"),
            (None, Some(_)) => tracing::info!(low, paused, "balance checked"),
            (None, None) => tracing::warn!("the operator's answer is not a balance"),
        }
        match failure {
            Some(err) => Err(err.into()),
            None => Ok(Checked {
                record,
                low,
                paused,
            }),
        }
    }

    /// Pauses or resumes a modem by its last balance and its settings.
    ///
    /// # Errors
    ///
    /// Fails when the database does, or for an unknown modem.
    pub async fn apply_pause(&self, modem_id: &str) -> Result<bool, CreditError> {
        let settings = self.settings(modem_id).await?;
        let last = self.store.last_balance(modem_id).await?;
        let amount = last
            .and_then(|r| r.check.amount)
            .and_then(|a| Decimal::from_str(&a).ok());
        let paused = settings.pause_when_low && settings.is_low(amount);
        self.fleet.set_paused(modem_id, paused)?;
        Ok(paused)
    }

    /// Pauses every modem whose last balance is under its threshold (and that should pause):
    /// at start-up, before the modems begin.
    pub async fn apply_pauses(&self) {
        for id in self.fleet.ids() {
            if let Err(err) = self.apply_pause(&id).await {
                tracing::warn!(modem.id = %id, error = %err, "pause not worked out");
            }
        }
    }

    /// Starts each modem's daily check.
    pub fn spawn(
        self: Arc<Self>,
        node: String,
        tz: Tz,
        clock: Arc<dyn Clock>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut daily = Vec::new();
            for id in self.fleet.ids() {
                daily.push(crate::notify::AbortOnDrop(tokio::spawn(daily_check(
                    self.clone(),
                    id,
                    node.clone(),
                    tz,
                    clock.clone(),
                ))));
            }
            // The checks stop with this task.
            std::future::pending::<()>().await;
            drop(daily);
        })
    }
}

/// One modem's daily check, at the hour of its settings, on one node.
async fn daily_check(credit: Arc<Credit>, id: String, node: String, tz: Tz, clock: Arc<dyn Clock>) {
    let hour = {
        let (credit, id) = (credit.clone(), id.clone());
        move || -> BoxFuture<'static, Result<Option<NaiveTime>, StoreError>> {
            let (credit, id) = (credit.clone(), id.clone());
            Box::pin(async move { Ok(credit.settings(&id).await?.time()) })
        }
    };
    let work = {
        let (credit, id) = (credit.clone(), id.clone());
        move |_day| -> BoxFuture<'static, Result<(), String>> {
            let (credit, id) = (credit.clone(), id.clone());
            Box::pin(async move {
                // Status polls wait for a quiet moment; so does this, within reason.
                let started = tokio::time::Instant::now();
                while credit.fleet.is_busy(&id).unwrap_or(false) && started.elapsed() < QUIET_WITHIN
                {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                match credit.check(&id, "daily").await {
                    Ok(_) => Ok(()),
                    // Not even recorded: try again in a while.
                    Err(CreditError::Store(err)) => Err(err.to_string()),
                    // Recorded with its reason (no answer), or nothing to ask with (no code):
                    // asking again all day would not help.
                    Err(err) => {
                        tracing::warn!(modem.id = %id, error = %err, "daily balance check failed");
                        Ok(())
                    }
                }
            })
        }
    };
    jobs::run_daily(
        format!("balance:{id}"),
        credit.store.clone(),
        node,
        tz,
        clock,
        hour,
        work,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_field_by_field() {
        let ok = CreditSettings {
            ussd_code: Some("*105#".into()),
            packed: false,
            check_at: Some("07:30".into()),
            low_threshold: Some("10.50".into()),
            pause_when_low: true,
        };
        assert_eq!(ok.check(), Ok(()));
        assert_eq!(ok.threshold(), Decimal::from_str("10.50").ok());
        let field = |s: CreditSettings| s.check().unwrap_err().0;
        assert_eq!(
            field(CreditSettings {
                ussd_code: Some("105".into()),
                ..ok.clone()
            }),
            "ussd_code"
        );
        assert_eq!(
            field(CreditSettings {
                check_at: Some("7.30".into()),
                ..ok.clone()
            }),
            "check_at"
        );
        assert_eq!(
            field(CreditSettings {
                low_threshold: Some("-1".into()),
                ..ok.clone()
            }),
            "low_threshold"
        );
        assert_eq!(
            field(CreditSettings {
                low_threshold: None,
                ..ok
            }),
            "pause_when_low"
        );
    }

    #[test]
    fn presets_name_the_entry_at_fault() {
        let mut presets = default_presets();
        assert_eq!(check_presets(&presets), Ok(()));
        presets.push(Preset {
            operator: "Tigo".into(),
            code: "saldo".into(),
        });
        assert_eq!(check_presets(&presets).unwrap_err().0, "presets[2].code");
    }
}
