//! `--include GLOB`: which files of a directory source are taken.
//!
//! A projected volume mixes CA files with a service-account token and
//! downwardAPI files that are not certificates; without a way to pick keys,
//! those sit in `error` forever. The globs are shell globs on the key's path
//! inside the source (`ca.crt`, `tls/ca.crt`), matched the way a shell matches
//! file names: `*` and `?` never cross a `/`, `**` does, `[abc]`, `[a-z]` and
//! `[!a]` are classes, `\` escapes. A hand-written matcher (about fifty lines)
//! rather than `globset`, which would bring a regex engine into a 6 MB budget
//! for patterns this small.

use std::path::Path;

/// Why a `--include` pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    #[error("--include {0:?}: empty pattern")]
    Empty(String),
    #[error("--include {0:?}: unclosed '[' (a class needs its ']')")]
    UnclosedClass(String),
    #[error("--include {0:?}: ends with a lone '\\'")]
    TrailingEscape(String),
    #[error("--include {0:?}: must be a path inside the source (no leading '/')")]
    Absolute(String),
}

/// The set of `--include` patterns; empty means "every file".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Include {
    /// Each pattern as given, checked once at start so a bad one is a usage
    /// error (exit 2) instead of a silent "matches nothing".
    patterns: Vec<String>,
}

impl Include {
    /// Takes every file (no `--include`).
    pub fn all() -> Self {
        Include::default()
    }

    /// Validates `patterns` (as given on the command line).
    pub fn new(patterns: &[String]) -> Result<Self, GlobError> {
        for p in patterns {
            validate(p)?;
        }
        Ok(Include {
            patterns: patterns.to_vec(),
        })
    }

    /// Whether the filter takes every file.
    pub fn is_all(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns as given, for messages.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether the file at `rel` (its path inside the source) is taken.
    /// A name that is not UTF-8 is matched on its lossy form: no pattern
    /// the user can type depends on the invalid bytes.
    pub fn takes(&self, rel: &Path) -> bool {
        if self.patterns.is_empty() {
            return true;
        }
        let rel = rel.to_string_lossy();
        let name: Vec<char> = rel.chars().collect();
        self.patterns.iter().any(|p| {
            let pat: Vec<char> = p.chars().collect();
            matches(&pat, &name)
        })
    }
}

fn validate(p: &str) -> Result<(), GlobError> {
    if p.is_empty() {
        return Err(GlobError::Empty(p.into()));
    }
    if p.starts_with('/') {
        return Err(GlobError::Absolute(p.into()));
    }
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 == chars.len() => return Err(GlobError::TrailingEscape(p.into())),
            '\\' => i += 1,
            '[' => match class_end(&chars, i) {
                Some(end) => i = end,
                None => return Err(GlobError::UnclosedClass(p.into())),
            },
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Index of the `]` closing the class opened at `open` (a `]` right after
/// `[` or `[!` is a member, as in the shell).
fn class_end(p: &[char], open: usize) -> Option<usize> {
    let mut i = open + 1;
    if matches!(p.get(i), Some('!' | '^')) {
        i += 1;
    }
    if p.get(i) == Some(&']') {
        i += 1;
    }
    (i..p.len()).find(|&j| p[j] == ']')
}

/// Whether `c` is in the class `p[open..=end]`.
fn in_class(p: &[char], open: usize, end: usize, c: char) -> bool {
    let mut i = open + 1;
    let negated = matches!(p[i], '!' | '^');
    if negated {
        i += 1;
    }
    let mut found = false;
    while i < end {
        if i + 2 < end && p[i + 1] == '-' {
            found |= p[i] <= c && c <= p[i + 2];
            i += 3;
        } else {
            found |= p[i] == c;
            i += 1;
        }
    }
    found != negated && c != '/'
}

/// Whether pattern `p` matches all of `s`.
fn matches(p: &[char], s: &[char]) -> bool {
    let mut failed = vec![false; (p.len() + 1) * (s.len() + 1)];
    match_at(p, s, 0, 0, &mut failed)
}

/// Backtracking match of `p[pi..]` against `s[si..]`, remembering the states
/// that failed: a name in the volume is chosen by whoever writes it, so the
/// cost stays polynomial (pattern length x name length squared) whatever the
/// pattern and name.
fn match_at(p: &[char], s: &[char], pi: usize, si: usize, failed: &mut [bool]) -> bool {
    let state = pi * (s.len() + 1) + si;
    if failed[state] {
        return false;
    }
    let next = |pi2: usize, si2: usize, failed: &mut [bool]| match_at(p, s, pi2, si2, failed);
    let c = s.get(si).copied();
    let ok = match p.get(pi) {
        None => si == s.len(),
        Some('*') if p.get(pi + 1) == Some(&'*') => {
            // `**/` also matches no directory at all (`**/ca.crt` takes `ca.crt`).
            (p.get(pi + 2) == Some(&'/') && next(pi + 3, si, failed))
                || (si..=s.len()).any(|k| next(pi + 2, k, failed))
        }
        Some('*') => {
            let stop = s[si..]
                .iter()
                .position(|&c| c == '/')
                .map_or(s.len(), |n| si + n);
            (si..=stop).any(|k| next(pi + 1, k, failed))
        }
        Some('?') => c.is_some_and(|c| c != '/') && next(pi + 1, si + 1, failed),
        Some('[') => match class_end(p, pi) {
            Some(end) => {
                c.is_some_and(|c| in_class(p, pi, end, c)) && next(end + 1, si + 1, failed)
            }
            None => c == Some('[') && next(pi + 1, si + 1, failed),
        },
        Some('\\') if pi + 1 < p.len() => c == Some(p[pi + 1]) && next(pi + 2, si + 1, failed),
        Some(&l) => c == Some(l) && next(pi + 1, si + 1, failed),
    };
    if !ok {
        failed[state] = true;
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn takes(pattern: &str, path: &str) -> bool {
        Include::new(&[pattern.to_string()])
            .unwrap()
            .takes(Path::new(path))
    }

    #[test]
    fn shell_rules() {
        assert!(takes("*.crt", "ca.crt"));
        assert!(!takes("*.crt", "token"));
        assert!(!takes("*.crt", "sub/ca.crt"), "* does not cross /");
        assert!(takes("*/*.crt", "sub/ca.crt"));
        assert!(takes("**/*.crt", "a/b/ca.crt"));
        assert!(takes("**/*.crt", "ca.crt"));
        assert!(takes("ca-?.pem", "ca-1.pem"));
        assert!(!takes("ca-?.pem", "ca-12.pem"));
        assert!(takes("ca-[0-9].pem", "ca-7.pem"));
        assert!(!takes("ca-[!0-9].pem", "ca-7.pem"));
        assert!(takes("ca-[!0-9].pem", "ca-x.pem"));
        assert!(takes("[]x].crt", "].crt"));
        assert!(takes("\\*.crt", "*.crt"));
        assert!(!takes("\\*.crt", "a.crt"));
        assert!(takes("ca.crt", "ca.crt"));
        assert!(!takes("ca.crt", "xca.crt"));
    }

    #[test]
    fn no_pattern_takes_everything_and_any_pattern_may_match() {
        assert!(Include::all().takes(Path::new("token")));
        let inc = Include::new(&["*.crt".into(), "*.pem".into()]).unwrap();
        assert!(inc.takes(Path::new("a.pem")) && inc.takes(Path::new("b.crt")));
        assert!(!inc.takes(Path::new("namespace")));
    }

    #[test]
    fn bad_patterns_name_themselves() {
        for (p, words) in [
            ("", "empty"),
            ("ca-[0-9.crt", "unclosed"),
            ("ca\\", "lone"),
            ("/etc/*.crt", "inside the source"),
        ] {
            let e = Include::new(&[p.to_string()]).unwrap_err().to_string();
            assert!(e.contains("--include") && e.contains(words), "{p}: {e}");
        }
    }

    #[test]
    fn pathological_pattern_stays_fast() {
        let name = "a".repeat(40);
        let start = std::time::Instant::now();
        assert!(!takes("*a*a*a*a*a*a*b", &name));
        assert!(!takes("**a**a**a**a**a**a**b", &"a/".repeat(120)));
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
}
