//! Parsing the command line, and which environment variables set what: the
//! former variable names still read, the variable (not the flag) named in
//! clap's error about a value it set, and the [`Setting`] `validate`'s
//! messages name.

use super::args::{Cli, Command, RunArgs};
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use std::ffi::OsString;

/// Parses the command line like [`Cli::parse`], but an error about a value
/// taken from an environment variable names the variable (the flag does not
/// appear on the command line, so naming it would send the user looking in
/// the wrong place), and `run`'s options learn which came from a variable.
pub fn parse() -> Cli {
    let (cli, parser) = parse_keeping(std::env::args_os()).unwrap_or_else(|e| e.exit());
    let once = match &cli.command {
        None => cli.run.once,
        Some(Command::Run(args)) => args.once,
        Some(_) => false,
    };
    if once {
        // Kept to process exit: `run --once` exits right after its one
        // reconcile, and freeing clap's command tree and matches first only
        // made musl's allocator unmap groups and map fresh ones for the
        // reconcile (docs/performance.md). A long-running command drops
        // them, so they do not stay in its idle memory.
        std::mem::forget(parser);
    }
    cli
}

/// [`parse`] on given arguments (tests).
#[cfg(test)]
pub fn parse_from<I, T>(argv: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    parse_keeping(argv).map(|(cli, _)| cli)
}

/// What [`parse_keeping`] built besides the [`Cli`]: clap's command tree
/// (as defined, and as built for parsing) and the matches, handed back so
/// that [`parse`] can keep them to process exit.
struct Parser {
    _defined: clap::Command,
    _built: clap::Command,
    _matches: clap::ArgMatches,
}

fn parse_keeping<I, T>(argv: I) -> Result<(Cli, Parser), clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let mut command = with_former_names(Cli::command());
    if !std::ptr::eq(invoked(&command, &argv), &command) {
        // The top level's options are `run`'s, for when no command is named;
        // with another command they must not read (and refuse) `run`'s
        // variables, which a sidecar's environment may well hold.
        command = command.mut_args(|a| a.env(None::<&'static str>));
    }
    // What `try_get_matches_from` does on a clone, with the clone kept.
    let mut built = command.clone();
    let matches = built
        .try_get_matches_from_mut(&argv)
        .map_err(|e| name_variable_in_error(e, &command, &argv))?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    let run = match (&mut cli.command, matches.subcommand()) {
        (Some(Command::Run(args)), Some((_, sub))) => Some((args, sub)),
        (None, _) => Some((&mut cli.run, &matches)),
        _ => None,
    };
    // `run`, or the top level for the default command: where the variables are.
    if let Some((args, run_matches)) = run {
        for arg in invoked(&command, &argv).get_arguments() {
            let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
                continue;
            };
            if run_matches.value_source(arg.get_id().as_str()) == Some(ValueSource::EnvVariable) {
                args.from_env
                    .push((format!("--{long}"), env.to_string_lossy().into_owned()));
            }
        }
    }
    let parser = Parser {
        _defined: command,
        _built: built,
        _matches: matches,
    };
    Ok((cli, parser))
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

/// The (sub)command `argv` runs: each word that names a subcommand of the
/// command so far, unless it is the value of the option before it.
fn invoked<'a>(top: &'a clap::Command, argv: &[OsString]) -> &'a clap::Command {
    let mut command = top;
    let mut after_option = false;
    for word in argv.iter().skip(1).filter_map(|a| a.to_str()) {
        match command.find_subcommand(word) {
            Some(sub) if !after_option => command = sub,
            _ => {}
        }
        after_option = word.starts_with('-') && !word.contains('=');
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
    // The command that was run, not the first that has such a flag: `run`,
    // `inject` and `webhook` share flag names but not variables.
    let arg = invoked(command, argv)
        .get_arguments()
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

/// An option as the user set it, named the way a message about it must
/// name it: `--flag value` on the command line, `VARIABLE=value` when its
/// environment variable set it (the flag then appears nowhere, and naming it
/// would send the user looking in the wrong place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The flag, or the variable that set it.
    name: String,
    /// Whether `name` is a variable.
    from_env: bool,
    /// The value at fault, when the message is about one.
    value: Option<String>,
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.value, self.from_env) {
            (Some(v), true) => write!(f, "{}={v}", self.name),
            (Some(v), false) => write!(f, "{} {v}", self.name),
            (None, _) => f.write_str(&self.name),
        }
    }
}

impl RunArgs {
    /// `flag` set to `value`, as the user set it.
    pub fn setting(&self, flag: &str, value: impl std::fmt::Display) -> Setting {
        Setting {
            value: Some(value.to_string()),
            ..self.option(flag)
        }
    }

    /// `flag` without a value: the flag, or the variable that set it.
    pub fn option(&self, flag: &str) -> Setting {
        match self.from_env.iter().find(|(f, _)| f == flag) {
            Some((_, var)) => Setting {
                name: var.clone(),
                from_env: true,
                value: None,
            },
            None => Setting {
                name: flag.to_string(),
                from_env: false,
                value: None,
            },
        }
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
            run.setting("--listen", "nope").to_string(),
            "TRUST_INJECTOR_LISTEN=nope"
        );
        assert_eq!(run.option("--listen").to_string(), "TRUST_INJECTOR_LISTEN");
        assert_eq!(run.setting("--base", "x").to_string(), "--base x");
        assert_eq!(run.option("--base").to_string(), "--base");
    }
}
