//! The validator's settings as a clap argument group, named with the service's prefix.

use std::marker::PhantomData;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{ArgGroup, ArgMatches, Args, Command, FromArgMatches};

use super::{DpopMode, SecretValue, SettingsError, StartError, ValidatorSettings};
use crate::server::ValidatorConfig;
use crate::settings::EnvPrefix;
use crate::settings::with_prefix;

/// [`ValidatorSettings`] as a `clap::Args` group (feature `clap`): each setting a flag
/// and an environment variable named `P::PREFIX` + its upper-case name. Flatten it into
/// the service's arguments; `--help` lists the variables. Exactly one metadata source
/// (or the issuers file) is required.
#[derive(Debug, Clone)]
pub struct ValidatorArgs<P: EnvPrefix> {
    /// The parsed settings.
    pub settings: ValidatorSettings,
    prefix: PhantomData<P>,
}

impl<P: EnvPrefix> ValidatorArgs<P> {
    /// Checks the settings and builds the configuration; errors name the variable.
    pub fn into_config(self) -> Result<ValidatorConfig, SettingsError> {
        self.settings.into_config_named(P::PREFIX)
    }

    /// The Transaction Token checks' configuration (`None` unless
    /// `{P}TXN_TOKEN_TRUST_DOMAIN` is set); errors name the variable.
    pub fn transaction_token_config(
        &self,
    ) -> Result<Option<crate::server::TransactionTokenConfig>, SettingsError> {
        self.settings.transaction_token_config_named(P::PREFIX)
    }

    /// A start error of the validator built from `config` (these settings' own),
    /// naming the variable to check (see [`ValidatorSettings::explain_start_error`]).
    pub fn explain_start_error(&self, config: &ValidatorConfig, error: &StartError) -> String {
        self.settings.explain_start_error(P::PREFIX, config, error)
    }
}

impl<P: EnvPrefix> Args for ValidatorArgs<P> {
    fn augment_args(cmd: Command) -> Command {
        let cmd = with_prefix(
            ValidatorSettings::augment_args(cmd),
            "ValidatorSettings",
            |_| P::PREFIX,
        );
        cmd.group(
            ArgGroup::new("metadata_source")
                .required(true)
                .multiple(true)
                .args(["authority", "metadata_address", "jwks_uri", "issuers_file"]),
        )
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl<P: EnvPrefix> FromArgMatches for ValidatorArgs<P> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(ValidatorArgs {
            settings: ValidatorSettings::from_arg_matches(matches)?,
            prefix: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.settings.update_from_arg_matches(matches)
    }
}

const DPOP_MODES: [(&str, DpopMode); 3] = [
    ("off", DpopMode::Off),
    ("allowed", DpopMode::Allowed),
    ("required", DpopMode::Required),
];

pub(super) fn dpop_mode() -> impl TypedValueParser<Value = DpopMode> {
    PossibleValuesParser::new(DPOP_MODES.map(|(name, _)| name)).map(|name| {
        DPOP_MODES
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(DpopMode::Allowed, |(_, mode)| *mode)
    })
}

pub(super) fn dpop_mode_name(mode: DpopMode) -> &'static str {
    DPOP_MODES
        .iter()
        .find(|(_, m)| *m == mode)
        .map_or("allowed", |(name, _)| name)
}

/// `off` or `on`, for a switch that reads better so than as true/false.
pub(super) fn on_off() -> impl TypedValueParser<Value = bool> {
    PossibleValuesParser::new(["off", "on"]).map(|v| v == "on")
}

pub(super) fn on_off_name(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

pub(super) fn secret(value: &str) -> Result<SecretValue, std::convert::Infallible> {
    Ok(SecretValue::new(value))
}
