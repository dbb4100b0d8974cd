//! Value parsers for clap: the spellings users write, with errors that say
//! what is expected.

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
}
