//! Value parsers for clap: each `run` value becomes its type as it is
//! parsed, with an error that says what is expected (clap puts the flag, or
//! `main` the variable, before it).

use crate::trust::base::{BaseSpec, BaseSpecError};

/// The spellings of a boolean variable people write in manifests (`"1"`,
/// `"yes"`, `"on"` …); clap alone accepts only `true`/`false`.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected 1/0, true/false, yes/no or on/off".into()),
    }
}

/// A whole, non-negative number, with an error that says what is expected
/// (the standard one says "invalid digit found in string").
fn parse_count(value: &str, unit: &str, zero: &str) -> Result<u64, String> {
    let expected = format!("expected a whole number of {unit} such as 60 ({zero})");
    let v = value.trim();
    if v.starts_with('-') {
        return Err(format!("must not be negative: {expected}"));
    }
    v.parse::<u64>().map_err(|_| expected)
}

pub(super) fn parse_seconds(value: &str) -> Result<u64, String> {
    parse_count(value, "seconds", "0 turns the resync off")
}

pub(super) fn parse_millis(value: &str) -> Result<u64, String> {
    parse_count(value, "milliseconds", "0 re-reads at once")
}

/// `--base`: system, embedded, none or a path; empty is refused (an unset
/// variable in a manifest gives it), since no base is spelt `none`.
pub(super) fn parse_base(value: &str) -> Result<BaseSpec, String> {
    BaseSpec::parse(value).map_err(|e| match e {
        BaseSpecError::Empty => "empty value (use system, embedded, none or a path)".to_string(),
    })
}

/// `--on-change-url`: only plain HTTP, which is what a reload endpoint of a
/// container in the same pod speaks.
pub(super) fn parse_http_url(value: &str) -> Result<String, String> {
    if value.starts_with("http://") {
        Ok(value.to_string())
    } else {
        Err(
            "only http:// URLs are supported (the reload endpoint of a container in the same pod)"
                .into(),
        )
    }
}

/// `--retain-removed` in seconds, 0 when off (`0` or `off`); the message
/// of `output::retain::parse_duration` says what is expected.
pub(super) fn parse_retain(value: &str) -> Result<u64, String> {
    crate::output::retain::parse_duration(value).map(|grace| grace.unwrap_or(0))
}

/// How to reach the application after a changed publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalTarget {
    /// Signal number.
    pub signal: i32,
    /// Signal name as given, for logs.
    pub signal_name: String,
    /// Process name (`/proc/<pid>/comm`).
    pub process: String,
}

/// Parses `SIG:NAME`, e.g. `HUP:nginx` or `SIGUSR1:dotnet`.
pub(super) fn parse_signal_target(value: &str) -> Result<SignalTarget, String> {
    let bad = |why: &str| why.to_string();
    let (sig, name) = value
        .split_once(':')
        .ok_or_else(|| bad("expected SIG:NAME, e.g. HUP:nginx"))?;
    let sig_name = sig.trim_start_matches("SIG").to_ascii_uppercase();
    let signal = match sig_name.as_str() {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "TERM" => libc::SIGTERM,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "KILL" => return Err(bad("KILL is refused: the application could not react")),
        n => n
            .parse::<i32>()
            .ok()
            .filter(|n| (1..=64).contains(n) && *n != libc::SIGKILL)
            .ok_or_else(|| {
                bad("unknown signal (use HUP, USR1, USR2, TERM, INT, QUIT or a number)")
            })?,
    };
    if name.is_empty() || name.len() > 15 {
        return Err(bad(
            "process name must be 1 to 15 characters (as in /proc/PID/comm)",
        ));
    }
    Ok(SignalTarget {
        signal,
        signal_name: format!("SIG{sig_name}"),
        process: name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_take_every_usual_spelling() {
        for v in ["1", "true", "yes", "on", "TRUE", " On "] {
            assert_eq!(parse_bool(v), Ok(true), "{v}");
        }
        for v in ["0", "false", "no", "off", "No"] {
            assert_eq!(parse_bool(v), Ok(false), "{v}");
        }
        assert!(parse_bool("maybe").unwrap_err().contains("yes/no"));
    }

    #[test]
    fn counts_say_what_is_expected() {
        assert_eq!(parse_seconds("0"), Ok(0));
        let e = parse_seconds("-1").unwrap_err();
        assert!(e.contains("negative") && e.contains("seconds"), "{e}");
        assert!(parse_millis("soon").unwrap_err().contains("milliseconds"));
    }

    #[test]
    fn signal_targets() {
        let t = parse_signal_target("HUP:nginx").unwrap();
        assert_eq!((t.signal, t.process.as_str()), (libc::SIGHUP, "nginx"));
        assert_eq!(
            parse_signal_target("SIGUSR1:dotnet").unwrap().signal,
            libc::SIGUSR1
        );
        assert!(parse_signal_target("KILL:x").is_err());
        assert!(parse_signal_target("HUP").is_err());
    }
}
