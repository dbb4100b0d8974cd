//! Parsing the command line, and naming the environment variable (not the
//! flag) in an error about a value the variable set.

use super::args::{Cli, Command, RunArgs};
use super::validate::{ConfigError, RunConfig};
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use std::ffi::OsString;

/// Parses the command line like [`Cli::parse`], but an error about a value
/// taken from an environment variable names the variable (the flag does not
/// appear on the command line, so naming it would send the user looking in
/// the wrong place), and `run`'s options learn which came from a variable.
pub fn parse() -> Cli {
    parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
}

/// [`parse`] on given arguments (tests).
pub fn parse_from<I, T>(argv: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let command = with_former_names(Cli::command());
    let matches = command
        .clone()
        .try_get_matches_from(&argv)
        .map_err(|e| name_variable_in_error(e, &command, &argv))?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    let (args, run_matches) = match (&mut cli.command, matches.subcommand()) {
        (Some(Command::Run(args)), Some((_, sub))) => (args, sub),
        (None, _) => (&mut cli.run, &matches),
        _ => return Ok(cli),
    };
    for arg in command.get_arguments() {
        let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
            continue;
        };
        if run_matches.value_source(arg.get_id().as_str()) == Some(ValueSource::EnvVariable) {
            args.from_env
                .push((format!("--{long}"), env.to_string_lossy().into_owned()));
        }
    }
    Ok(cli)
}

/// Variables renamed to fit the one scheme (`TRUST_INJECTOR_<FLAG>` for
/// `run`, `TRUST_INJECTOR_<COMMAND>_<FLAG>` for `inject` and `webhook`), as
/// (command, argument id, name, former name): a manifest that sets the former
/// name keeps working.
const FORMER_NAMES: &[(&str, &str, &str, &str)] = &[(
    "webhook",
    "image",
    "TRUST_INJECTOR_WEBHOOK_IMAGE",
    "TRUST_INJECTOR_IMAGE",
)];

/// `command` reading each former variable where its new name is unset, so
/// the new name wins when both are set.
fn with_former_names(mut command: clap::Command) -> clap::Command {
    for &(sub, id, name, former) in FORMER_NAMES {
        if std::env::var_os(name).is_none() && std::env::var_os(former).is_some() {
            command = command.mut_subcommand(sub, |c| c.mut_arg(id, |a| a.env(former)));
        }
    }
    command
}

/// Rewrites clap's "invalid value 'x' for '--flag'" into "VARIABLE=x: …"
/// when the value came from the flag's variable.
fn name_variable_in_error(
    e: clap::Error,
    command: &clap::Command,
    argv: &[OsString],
) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return e;
    }
    let Some(ContextValue::String(flag)) = e.get(ContextKind::InvalidArg) else {
        return e;
    };
    let Some(long) = flag
        .split_whitespace()
        .next()
        .and_then(|f| f.strip_prefix("--"))
    else {
        return e;
    };
    let on_command_line = argv.iter().any(|a| {
        let a = a.to_string_lossy();
        a.strip_prefix("--")
            .is_some_and(|rest| rest == long || rest.starts_with(&format!("{long}=")))
    });
    let arg = command
        .get_arguments()
        .chain(command.get_subcommands().flat_map(|c| c.get_arguments()))
        .find(|a| a.get_long() == Some(long));
    let Some(var) = arg.and_then(|a| a.get_env()) else {
        return e;
    };
    let Some(value) = std::env::var_os(var).filter(|_| !on_command_line) else {
        return e;
    };
    let expected = match (
        e.get(ContextKind::ValidValue),
        std::error::Error::source(&e),
    ) {
        (Some(ContextValue::Strings(valid)), _) => format!("expected one of {}", valid.join(", ")),
        (_, Some(why)) => why.to_string(),
        _ => "invalid value".to_string(),
    };
    clap::Error::raw(
        e.kind(),
        format!(
            "{}={}: {expected}\n",
            var.to_string_lossy(),
            value.to_string_lossy()
        ),
    )
}

impl RunArgs {
    /// [`RunArgs::validate`], with an error about a value taken from an
    /// environment variable naming the variable.
    pub fn check(&self) -> Result<RunConfig, ConfigError> {
        self.validate().map_err(|e| {
            let message = e.to_string();
            let named = self.name_variables(&message);
            if named == message {
                e
            } else {
                ConfigError::Invalid(named)
            }
        })
    }

    /// Rewrites a message that starts with `--flag value` into
    /// `VARIABLE=value` when that flag was set through its variable; other
    /// messages are returned as they are.
    pub fn name_variables(&self, message: &str) -> String {
        for (flag, var) in &self.from_env {
            if let Some(rest) = message.strip_prefix(flag.as_str()) {
                if let Some(value_and_more) = rest.strip_prefix(' ') {
                    return format!("{var}={value_and_more}");
                }
                if rest.starts_with(':') {
                    return format!("{var}{rest}");
                }
            }
        }
        message.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn messages_name_the_variable_that_set_the_value() {
        let mut run = match Cli::try_parse_from(["trust-injector", "run"])
            .unwrap()
            .command
        {
            Some(Command::Run(r)) => r,
            _ => unreachable!(),
        };
        run.from_env = vec![("--listen".into(), "TRUST_INJECTOR_LISTEN".into())];
        assert_eq!(
            run.name_variables("--listen nope: bad"),
            "TRUST_INJECTOR_LISTEN=nope: bad"
        );
        assert_eq!(run.name_variables("--listener x"), "--listener x");
        assert_eq!(run.name_variables("--base x: no"), "--base x: no");
    }
}
