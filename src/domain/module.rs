//! The modules of the product a user or an API key may be allowed to use.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One part of the product that access is granted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Module {
    /// Send messages, run loads, edit templates.
    Operators,
    /// Read messages, the inbox, loads and the event logs.
    Reports,
    /// Read status and counters.
    Dashboard,
    /// Settings, modems, users and API keys.
    Admin,
}

impl Module {
    /// Every module, in the order they are shown.
    pub const ALL: [Module; 4] = [
        Module::Operators,
        Module::Reports,
        Module::Dashboard,
        Module::Admin,
    ];

    /// The module's name as it appears in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Module::Operators => "operators",
            Module::Reports => "reports",
            Module::Dashboard => "dashboard",
            Module::Admin => "admin",
        }
    }

    /// Reads a module name.
    pub fn parse(name: &str) -> Option<Module> {
        Module::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of modules, stored as a comma-separated list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModuleSet(u8);

impl ModuleSet {
    /// Every module.
    pub fn all() -> ModuleSet {
        Module::ALL.into_iter().collect()
    }

    /// Whether `module` is in the set.
    pub fn contains(self, module: Module) -> bool {
        self.0 & Self::bit(module) != 0
    }

    /// The modules in the set, in their usual order.
    pub fn to_vec(self) -> Vec<Module> {
        Module::ALL
            .into_iter()
            .filter(|m| self.contains(*m))
            .collect()
    }

    /// The stored form: `operators,reports`.
    pub fn to_stored(self) -> String {
        self.to_vec()
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Reads the stored form, skipping names this version does not know.
    pub fn from_stored(stored: &str) -> ModuleSet {
        stored.split(',').filter_map(Module::parse).collect()
    }

    fn bit(module: Module) -> u8 {
        1 << (module as u8)
    }
}

impl FromIterator<Module> for ModuleSet {
    fn from_iter<I: IntoIterator<Item = Module>>(iter: I) -> Self {
        ModuleSet(iter.into_iter().fold(0, |acc, m| acc | Self::bit(m)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_form_round_trips() {
        let set: ModuleSet = [Module::Reports, Module::Operators].into_iter().collect();
        assert_eq!(set.to_stored(), "operators,reports");
        assert_eq!(ModuleSet::from_stored("operators,reports"), set);
        assert!(!set.contains(Module::Admin));
    }

    #[test]
    fn unknown_names_are_skipped() {
        let set = ModuleSet::from_stored("admin,flying");
        assert_eq!(set.to_vec(), vec![Module::Admin]);
    }
}
