//! Start-up settings: defaults, then an optional TOML file, then `PREGONERO_*` variables.
//!
//! These are the settings a service needs before it can open its database. Everything an admin
//! changes while the service runs (sending window, templates, schedules) lives in the database and
//! is edited through the API instead.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The name of the settings file looked for in the working directory when none is given.
pub const DEFAULT_CONFIG_FILE: &str = "pregonero.toml";

/// Why the settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The settings file exists but could not be read.
    #[error("cannot read settings file {path}")]
    Read {
        /// The file that was being read.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The settings file is not valid TOML or has a key of the wrong type.
    #[error("settings file {path} is not valid")]
    Parse {
        /// The file that was being parsed.
        path: PathBuf,
        /// What the TOML parser said, with the line.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// An environment variable holds a value that does not fit its setting.
    #[error("environment variable {name} is not valid: {reason}")]
    Env {
        /// The variable, e.g. `PREGONERO_JWT_TTL_MINUTES`.
        name: &'static str,
        /// Why its value was refused.
        reason: String,
    },
    /// A setting has a value the service cannot work with.
    #[error("setting `{key}` is not valid: {reason}")]
    Invalid {
        /// The setting's key as written in the TOML file.
        key: &'static str,
        /// Why its value was refused.
        reason: String,
    },
}

/// A string that must never reach a log: its `Debug` output is redacted.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

/// The service's start-up settings. Every key can be set in `pregonero.toml` or as
/// `PREGONERO_<KEY>` in upper case.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port the HTTP API listens on. Port 0 picks a free one.
    pub listen: String,
    /// Folder for the SQLite database, the daily event logs and other local state.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; when unset, an SQLite file in `data_dir`. Kept as a
    /// secret because a PostgreSQL URL may carry a password.
    pub database_url: Option<Secret>,
    /// Serial port of the modem (`/dev/ttyUSB0`, `COM3`) or `sim` for the built-in simulator.
    /// Used when `modems` is empty.
    pub modem_port: String,
    /// Id of that one modem. Ids name modems in the API and in each message's record; nodes
    /// sharing one PostgreSQL database must give their modems different ids.
    pub modem_id: String,
    /// SIM PIN of that one modem, given when the SIM asks for it.
    pub modem_pin: Option<Secret>,
    /// Several modems, each `{ id, port, baud_rate, pin }`; when set, `modem_port`, `modem_id`
    /// and `modem_pin` are not used.
    pub modems: Vec<ModemConfig>,
    /// Key that signs session tokens; generated and stored in the database when unset.
    pub jwt_secret: Option<Secret>,
    /// Minutes a session token stays valid after sign-in.
    pub jwt_ttl_minutes: u32,
    /// Username of the first admin, created when the database has no user yet.
    pub admin_username: Option<String>,
    /// Password of the first admin; when unset, a random one is printed once.
    pub admin_password: Option<Secret>,
    /// Region (ISO 3166 code) that phone numbers without a `+` country code belong to.
    pub default_region: String,
    /// IANA time zone in which times are shown and days and months begin.
    pub time_zone: String,
    /// Log filter in `tracing` syntax, e.g. `info` or `pregonero=debug`.
    pub log: String,
    /// Hours when messages may go out, `HH:MM-HH:MM` in `time_zone`; may cross midnight.
    pub sending_window: String,
    /// Whether sending starts by itself once the modem is ready (otherwise: `POST
    /// /v1/sending/start`).
    pub auto_start: bool,
    /// Milliseconds the built-in simulated modem takes for each segment.
    pub sim_segment_ms: u64,
    /// Milliseconds before a failed webhook delivery's first retry; each retry waits twice as
    /// long as the one before, up to an hour.
    pub webhook_retry_ms: u64,
    /// Milliseconds before a mail that failed is tried again; each retry waits twice as long as
    /// the one before, up to half an hour.
    pub mail_retry_ms: u64,
    /// Days that events, finished webhook deliveries and sent or failed mails are kept; 0 keeps
    /// them for ever.
    pub retention_days: u32,
}

/// One modem in the `modems` list.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ModemConfig {
    /// Its id: letters, digits, `-` and `_`, at most 32.
    pub id: String,
    /// Its serial port, or `sim` for a simulated modem.
    pub port: String,
    /// Bits per second (115200 unless set).
    #[serde(default = "default_baud_rate")]
    pub baud_rate: u32,
    /// The SIM PIN, given when the SIM asks for it.
    #[serde(default)]
    pub pin: Option<Secret>,
}

fn default_baud_rate() -> u32 {
    115_200
}

/// Checks a modem id: 1–32 letters, digits, `-` or `_`.
///
/// # Errors
///
/// Says what is wrong with it.
pub fn check_modem_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() || id.len() > 32 {
        return Err("must have 1 to 32 characters");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("may hold only letters, digits, `-` and `_`");
    }
    Ok(())
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            modem_port: "sim".into(),
            modem_id: "modem-1".into(),
            modem_pin: None,
            modems: Vec::new(),
            jwt_secret: None,
            jwt_ttl_minutes: 60,
            admin_username: None,
            admin_password: None,
            default_region: "BO".into(),
            time_zone: "America/La_Paz".into(),
            log: "info".into(),
            sending_window: "08:00-20:00".into(),
            auto_start: true,
            sim_segment_ms: 3_000,
            webhook_retry_ms: 5_000,
            mail_retry_ms: 30_000,
            retention_days: 30,
        }
    }
}

impl Config {
    /// Reads the settings: defaults, then `file` (or `pregonero.toml` when it exists), then the
    /// process environment.
    ///
    /// # Errors
    ///
    /// Fails when the file cannot be read or parsed, or a variable or value is not valid.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => Self::from_file(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                Self::from_file(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        config.validate()?;
        Ok(config)
    }

    fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Overrides settings with the `PREGONERO_*` variables that `lookup` finds.
    ///
    /// # Errors
    ///
    /// Fails when a numeric variable does not hold a number.
    pub fn apply_env(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        if let Some(v) = lookup("PREGONERO_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = lookup("PREGONERO_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = lookup("PREGONERO_DATABASE_URL") {
            self.database_url = Some(Secret::new(v));
        }
        if let Some(v) = lookup("PREGONERO_MODEM_PORT") {
            self.modem_port = v;
        }
        if let Some(v) = lookup("PREGONERO_MODEM_ID") {
            self.modem_id = v;
        }
        if let Some(v) = lookup("PREGONERO_MODEM_PIN") {
            self.modem_pin = Some(Secret::new(v));
        }
        if let Some(v) = lookup("PREGONERO_JWT_SECRET") {
            self.jwt_secret = Some(Secret::new(v));
        }
        if let Some(v) = lookup("PREGONERO_JWT_TTL_MINUTES") {
            self.jwt_ttl_minutes = v.parse().map_err(|_| ConfigError::Env {
                name: "PREGONERO_JWT_TTL_MINUTES",
                reason: format!("`{v}` is not a whole number of minutes"),
            })?;
        }
        if let Some(v) = lookup("PREGONERO_ADMIN_USERNAME") {
            self.admin_username = Some(v);
        }
        if let Some(v) = lookup("PREGONERO_ADMIN_PASSWORD") {
            self.admin_password = Some(Secret::new(v));
        }
        if let Some(v) = lookup("PREGONERO_DEFAULT_REGION") {
            self.default_region = v;
        }
        if let Some(v) = lookup("PREGONERO_TIME_ZONE") {
            self.time_zone = v;
        }
        if let Some(v) = lookup("PREGONERO_LOG") {
            self.log = v;
        }
        if let Some(v) = lookup("PREGONERO_SENDING_WINDOW") {
            self.sending_window = v;
        }
        if let Some(v) = lookup("PREGONERO_AUTO_START") {
            self.auto_start = match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(ConfigError::Env {
                        name: "PREGONERO_AUTO_START",
                        reason: format!("`{v}` is not true or false"),
                    });
                }
            };
        }
        if let Some(v) = lookup("PREGONERO_SIM_SEGMENT_MS") {
            self.sim_segment_ms = v.parse().map_err(|_| ConfigError::Env {
                name: "PREGONERO_SIM_SEGMENT_MS",
                reason: format!("`{v}` is not a whole number of milliseconds"),
            })?;
        }
        if let Some(v) = lookup("PREGONERO_WEBHOOK_RETRY_MS") {
            self.webhook_retry_ms = v.parse().map_err(|_| ConfigError::Env {
                name: "PREGONERO_WEBHOOK_RETRY_MS",
                reason: format!("`{v}` is not a whole number of milliseconds"),
            })?;
        }
        if let Some(v) = lookup("PREGONERO_RETENTION_DAYS") {
            self.retention_days = v.parse().map_err(|_| ConfigError::Env {
                name: "PREGONERO_RETENTION_DAYS",
                reason: format!("`{v}` is not a whole number of days"),
            })?;
        }
        if let Some(v) = lookup("PREGONERO_MAIL_RETRY_MS") {
            self.mail_retry_ms = v.parse().map_err(|_| ConfigError::Env {
                name: "PREGONERO_MAIL_RETRY_MS",
                reason: format!("`{v}` is not a whole number of milliseconds"),
            })?;
        }
        Ok(())
    }

    /// Checks the values that can be checked before anything starts.
    ///
    /// # Errors
    ///
    /// Names the first setting whose value is not usable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.tz()?;
        self.window()?;
        self.region()?;
        let modems = self.modem_list();
        for (i, modem) in modems.iter().enumerate() {
            if let Err(reason) = check_modem_id(&modem.id) {
                return Err(ConfigError::Invalid {
                    key: "modems",
                    reason: format!("id `{}`: {reason}", modem.id),
                });
            }
            if modems[..i].iter().any(|m| m.id == modem.id) {
                return Err(ConfigError::Invalid {
                    key: "modems",
                    reason: format!("the id `{}` is given twice", modem.id),
                });
            }
            if modem.port.trim().is_empty() {
                return Err(ConfigError::Invalid {
                    key: "modems",
                    reason: format!("modem `{}` has no port", modem.id),
                });
            }
        }
        if !(1..=24 * 60).contains(&self.jwt_ttl_minutes) {
            return Err(ConfigError::Invalid {
                key: "jwt_ttl_minutes",
                reason: "must be between 1 and 1440".into(),
            });
        }
        if let Some(username) = &self.admin_username
            && let Err(reason) = crate::auth::check_username(username)
        {
            return Err(ConfigError::Invalid {
                key: "admin_username",
                reason: reason.into(),
            });
        }
        if let Some(secret) = &self.jwt_secret
            && secret.expose().len() < 32
        {
            return Err(ConfigError::Invalid {
                key: "jwt_secret",
                reason: "must be at least 32 characters".into(),
            });
        }
        if let Some(password) = &self.admin_password
            && password.expose().chars().count() < crate::auth::MIN_PASSWORD_LEN
        {
            return Err(ConfigError::Invalid {
                key: "admin_password",
                reason: format!(
                    "must be at least {} characters",
                    crate::auth::MIN_PASSWORD_LEN
                ),
            });
        }
        Ok(())
    }

    /// The modems to run: the `modems` list, or the one modem of `modem_port`.
    pub fn modem_list(&self) -> Vec<ModemConfig> {
        if !self.modems.is_empty() {
            return self.modems.clone();
        }
        vec![ModemConfig {
            id: self.modem_id.clone(),
            port: self.modem_port.clone(),
            baud_rate: default_baud_rate(),
            pin: self.modem_pin.clone(),
        }]
    }

    /// The configured time zone.
    ///
    /// # Errors
    ///
    /// Fails when `time_zone` is not an IANA zone name.
    pub fn tz(&self) -> Result<chrono_tz::Tz, ConfigError> {
        self.time_zone.parse().map_err(|_| ConfigError::Invalid {
            key: "time_zone",
            reason: format!("`{}` is not an IANA time zone", self.time_zone),
        })
    }

    /// The sending window.
    ///
    /// # Errors
    ///
    /// Fails when `sending_window` is not `HH:MM-HH:MM`.
    pub fn window(&self) -> Result<crate::domain::SendingWindow, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            key: "sending_window",
            reason,
        };
        let (start, end) = self
            .sending_window
            .split_once('-')
            .ok_or_else(|| invalid(format!("`{}` is not HH:MM-HH:MM", self.sending_window)))?;
        crate::domain::SendingWindow::parse(start, end, self.tz()?)
            .map_err(|e| invalid(e.to_string()))
    }

    /// The region phone numbers default to.
    ///
    /// # Errors
    ///
    /// Fails when `default_region` is not a region libphonenumber knows.
    pub fn region(&self) -> Result<crate::domain::Region, ConfigError> {
        crate::domain::Region::parse(&self.default_region).map_err(|_| ConfigError::Invalid {
            key: "default_region",
            reason: format!("`{}` is not a known region code", self.default_region),
        })
    }

    /// The database URL with any password replaced by `***`, for messages and logs.
    pub fn database_url_redacted(&self) -> String {
        let url = self.database_url();
        let Some((scheme, rest)) = url.split_once("://") else {
            return url;
        };
        match rest.split_once('@') {
            Some((credentials, host)) if credentials.contains(':') => {
                let user = credentials.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}:***@{host}")
            }
            _ => url,
        }
    }

    /// The database to open: the configured URL, or an SQLite file in the data folder.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("pregonero.db").display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_with_its_modems_uncommented_is_valid() {
        // Every commented-out key of the example, switched on: it must parse and validate.
        let text: String = include_str!("../pregonero.example.toml")
            .lines()
            .map(|l| match l.strip_prefix('#') {
                // `#key = value` is a key switched off; `# text` is prose.
                Some(rest)
                    if !rest.starts_with(' ')
                        && (rest.contains(" = ") || rest.starts_with("[[")) =>
                {
                    rest
                }
                _ => l,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let mut config: Config = toml::from_str(&text).unwrap();
        config.jwt_secret = None;
        config.validate().unwrap();
        let modems = config.modem_list();
        assert_eq!(modems.len(), 2);
        assert_eq!(modems[0].id, "tigo-1");
        assert_eq!(modems[0].pin.as_ref().map(Secret::expose), Some("1234"));
        assert_eq!(modems[1].baud_rate, 115_200);

        config.modems[1].id = "tigo-1".into();
        assert!(config.validate().is_err(), "a repeated id passed");
        config.modems[1].id = "tigo 2".into();
        assert!(config.validate().is_err(), "a space in an id passed");
    }

    #[test]
    fn without_a_list_the_one_modem_comes_from_the_plain_keys() {
        let config = Config::default();
        let modems = config.modem_list();
        assert_eq!(modems.len(), 1);
        assert_eq!(
            (modems[0].id.as_str(), modems[0].port.as_str()),
            ("modem-1", "sim")
        );
    }

    #[test]
    fn environment_overrides_the_defaults() {
        let mut config = Config::default();
        config
            .apply_env(|name| match name {
                "PREGONERO_LISTEN" => Some("0.0.0.0:9000".into()),
                "PREGONERO_JWT_TTL_MINUTES" => Some("15".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(config.jwt_ttl_minutes, 15);
        assert_eq!(config.modem_port, "sim");
    }

    #[test]
    fn a_number_that_is_not_one_names_the_variable() {
        let mut config = Config::default();
        let err = config
            .apply_env(|name| (name == "PREGONERO_JWT_TTL_MINUTES").then(|| "soon".into()))
            .unwrap_err();
        assert!(err.to_string().contains("PREGONERO_JWT_TTL_MINUTES"));
    }

    #[test]
    fn the_file_rejects_unknown_keys() {
        let err = toml::from_str::<Config>("listn = \"x\"").unwrap_err();
        assert!(err.to_string().contains("listn"));
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let config = Config {
            jwt_secret: Some(Secret::new("very-secret-value-that-is-long-enough")),
            ..Config::default()
        };
        assert!(!format!("{config:?}").contains("very-secret"));
    }

    #[test]
    fn database_passwords_are_redacted() {
        let config = Config {
            database_url: Some(Secret::new("postgres://gw:s3cret@db:5432/sms")),
            ..Config::default()
        };
        assert_eq!(
            config.database_url_redacted(),
            "postgres://gw:***@db:5432/sms"
        );
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(config.database_url(), "postgres://gw:s3cret@db:5432/sms");
    }

    #[test]
    fn a_bad_time_zone_is_refused() {
        let config = Config {
            time_zone: "Mars/Olympus".into(),
            ..Config::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::Invalid {
                key: "time_zone",
                ..
            })
        ));
    }
}
