//! Splits a manifest stream into documents, keeping each document's original text, so
//! that every document we do not change is written back byte for byte (comments, Helm's
//! `# Source:` lines, quoting and all), and only changed ones are re-serialised.

/// One document of a YAML stream, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Doc<'a> {
    /// Everything before the body: the `---` line and the comment or blank lines after
    /// it (Helm's `# Source:` line), kept when the body is re-serialised.
    pub head: &'a str,
    /// The document itself, up to the next separator.
    pub body: &'a str,
    /// 1-based line of the body's first line in the file, for error messages.
    pub line: usize,
}

/// True for a line that starts a new document: `---` alone, or followed by a space,
/// a tab or a comment. (`---` inside a block scalar is indented, so never at column 0.)
fn is_separator(line: &str) -> bool {
    let rest = line.trim_end_matches(['\n', '\r']);
    match rest.strip_prefix("---") {
        Some("") => true,
        Some(r) => r.starts_with([' ', '\t']),
        None => false,
    }
}

/// True for a line holding nothing but whitespace or a comment.
fn is_trivia(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// Splits `text` into documents. Concatenating every `head` and `body` gives `text`
/// back exactly. A separator line with content after it (`--- {a: 1}`) starts a body.
pub(crate) fn split(text: &str) -> Vec<Doc<'_>> {
    let mut docs = Vec::new();
    let mut start = 0; // start of the current document (its separator line, if any)
    let mut body_at: Option<usize> = None; // where its body starts, once known
    let mut body_line = 1;
    let mut line_no = 0;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        line_no += 1;
        let line_start = at;
        at += line.len();
        if is_separator(line) && line_start > 0 {
            let b = body_at.unwrap_or(line_start);
            docs.push(Doc {
                head: &text[start..b],
                body: &text[b..line_start],
                line: body_line,
            });
            start = line_start;
            body_at = None;
        }
        if body_at.is_none() {
            let after_sep = is_separator(line) && line_start == start;
            let sep_content = after_sep && !is_trivia(line.trim_start_matches('-'));
            if sep_content || (!after_sep && !is_trivia(line)) {
                body_at = Some(line_start);
                body_line = line_no;
            }
        }
    }
    let b = body_at.unwrap_or(text.len());
    docs.push(Doc {
        head: &text[start..b],
        body: &text[b..],
        line: if body_at.is_some() {
            body_line
        } else {
            line_no.max(1)
        },
    });
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_every_byte_and_finds_heads() {
        let text = "# lead\n---\n# Source: a.yaml\napiVersion: v1\nkind: A\n---\n---\n# only\n--- {x: 1}\ny: |\n  ---\n  z\n";
        let docs = split(text);
        let joined: String = docs
            .iter()
            .map(|d| format!("{}{}", d.head, d.body))
            .collect();
        assert_eq!(joined, text);
        assert_eq!(docs.len(), 5);
        assert_eq!(docs[0].body, "");
        assert_eq!(docs[1].head, "---\n# Source: a.yaml\n");
        assert_eq!(docs[1].body, "apiVersion: v1\nkind: A\n");
        assert_eq!(docs[1].line, 4);
        assert_eq!(docs[2].body, "");
        assert_eq!(docs[3].body, "");
        assert_eq!(docs[4].head, "");
        assert_eq!(docs[4].body, "--- {x: 1}\ny: |\n  ---\n  z\n");
        assert_eq!(docs[4].line, 9);
    }
}
