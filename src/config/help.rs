//! `trust-injector help [COMMAND]...`: exactly what `COMMAND... --help`
//! prints, for the commands that exist.

use super::args::Cli;
use clap::error::ErrorKind;
use clap::CommandFactory;

/// What `trust-injector help PATH...` answers, as clap's outcome to exit
/// with: the help of the command named by `path` (empty: the top level's),
/// which clap prints on stdout with exit code 0, or a usage error naming the
/// command that does not exist.
pub fn help(path: &[String]) -> clap::Error {
    let top = Cli::command();
    let mut command = &top;
    for name in path {
        command = match command.find_subcommand(name) {
            Some(c) => c,
            None => return no_such_command(command, name),
        };
    }
    let argv = std::iter::once("trust-injector")
        .chain(path.iter().map(String::as_str))
        .chain(["--help"]);
    match top.clone().try_get_matches_from(argv) {
        Err(e) => e,
        // `--help` always ends parsing with DisplayHelp.
        Ok(_) => unreachable!("--help parsed as a command line"),
    }
}

/// The usage error for `help PARENT NAME` where PARENT has no command NAME.
fn no_such_command(parent: &clap::Command, name: &str) -> clap::Error {
    let known: Vec<&str> = parent.get_subcommands().map(|c| c.get_name()).collect();
    let message = if known.is_empty() {
        format!("`{name}`: `{}` has no subcommands\n", parent.get_name())
    } else {
        format!("no command `{name}` (known: {})\n", known.join(", "))
    };
    clap::Error::raw(ErrorKind::InvalidSubcommand, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_of_nested_and_unknown_commands() {
        let certs = help(&["webhook".into(), "certs".into()]);
        assert_eq!(certs.kind(), ErrorKind::DisplayHelp);
        assert!(
            certs.to_string().contains("trust-injector webhook certs"),
            "{certs}"
        );
        let e = help(&["nope".into()]);
        assert_eq!(e.kind(), ErrorKind::InvalidSubcommand);
        assert!(e.to_string().contains("inspect"), "{e}");
    }
}
