//! A strict reader for the consensus-spec config format.
//!
//! The format (`configs/README.md` upstream) is a flat mapping of `UPPER_SNAKE_CASE` keys to
//! unsigned integers, `0x` hex strings or short names, plus one nested value since Fulu:
//! `BLOB_SCHEDULE`, a list of flat mappings (or `[]`). This reader accepts exactly that subset
//! and rejects everything else (anchors, flow mappings, multi-line scalars, tabs, duplicate
//! keys), so a value is never silently reinterpreted: a general YAML parser would read
//! `GENESIS_FORK_VERSION: 0x00000000` as the integer 0 and lose the width.
//!
//! Values stay text here; `config.rs` converts the keys it uses, with the line number kept for
//! error messages.

use std::collections::BTreeMap;

use crate::ConfigError;

/// Largest config text accepted. Published configs are under 8 KiB.
pub const MAX_CONFIG_LEN: usize = 256 * 1024;
/// Most top-level keys accepted (published configs have about 100).
pub(crate) const MAX_KEYS: usize = 2048;
/// Most entries in one list value (`BLOB_SCHEDULE`).
pub(crate) const MAX_LIST_ITEMS: usize = 1024;
/// Longest key or scalar accepted (a 32-byte hex value is 66 characters; decimal
/// `TERMINAL_TOTAL_DIFFICULTY` up to 78).
const MAX_TOKEN_LEN: usize = 128;

/// A scalar with the (1-based) line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scalar {
    pub(crate) text: String,
    pub(crate) line: usize,
}

/// A value: a scalar or a list of flat mappings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Scalar(Scalar),
    List {
        line: usize,
        items: Vec<BTreeMap<String, Scalar>>,
    },
}

/// The parsed document: top-level keys in name order.
pub(crate) type Document = BTreeMap<String, Value>;

fn syntax(line: usize, reason: &'static str) -> ConfigError {
    ConfigError::Syntax { line, reason }
}

/// Cut a trailing comment: a `#` at the start or after a space, outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '#' && prev_space => return &line[..i],
            None if c == '\'' || c == '"' => quote = Some(c),
            None => {}
        }
        prev_space = c == ' ';
    }
    line
}

fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some('A'..='Z'))
        && key.len() <= MAX_TOKEN_LEN
        && chars.all(|c| matches!(c, 'A'..='Z' | '0'..='9' | '_'))
}

/// A scalar: plain (`[A-Za-z0-9_.+-]`), or single- or double-quoted without escapes.
fn parse_scalar(raw: &str, line: usize) -> Result<Scalar, ConfigError> {
    if raw.len() > MAX_TOKEN_LEN {
        return Err(syntax(line, "value too long"));
    }
    let text = match raw.as_bytes().first() {
        Some(&q @ (b'\'' | b'"')) => {
            let inner = raw
                .strip_prefix(q as char)
                .and_then(|r| r.strip_suffix(q as char))
                .ok_or_else(|| syntax(line, "unterminated quoted value"))?;
            if inner.contains(['\'', '"', '\\']) {
                return Err(syntax(line, "quotes or escapes inside a quoted value"));
            }
            inner
        }
        Some(_) => raw,
        None => return Err(syntax(line, "empty value")),
    };
    if text.is_empty()
        || !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'))
    {
        return Err(syntax(line, "value is not a number, hex string or name"));
    }
    Ok(Scalar {
        text: text.to_owned(),
        line,
    })
}

/// Split `KEY: rest` (rest may be empty).
fn split_key(content: &str, line: usize) -> Result<(&str, &str), ConfigError> {
    let (key, rest) = content
        .split_once(':')
        .ok_or_else(|| syntax(line, "expected `KEY: value`"))?;
    if !valid_key(key) {
        return Err(syntax(line, "key is not UPPER_SNAKE_CASE"));
    }
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return Err(syntax(line, "expected a space after `:`"));
    }
    Ok((key, rest.trim_start_matches(' ')))
}

/// An open list being filled: its key, the column of its items' fields.
struct OpenList {
    key: String,
    line: usize,
    field_indent: Option<usize>,
    items: Vec<BTreeMap<String, Scalar>>,
}

fn close(doc: &mut Document, list: OpenList) -> Result<(), ConfigError> {
    if list.items.is_empty() {
        return Err(syntax(
            list.line,
            "empty value (write `[]` for an empty list)",
        ));
    }
    doc.insert(
        list.key,
        Value::List {
            line: list.line,
            items: list.items,
        },
    );
    Ok(())
}

fn insert_unique(
    doc: &mut Document,
    key: &str,
    value: Value,
    line: usize,
) -> Result<(), ConfigError> {
    if doc.len() >= MAX_KEYS {
        return Err(syntax(line, "too many keys"));
    }
    if doc.insert(key.to_owned(), value).is_some() {
        return Err(ConfigError::DuplicateKey {
            key: key.to_owned(),
            line,
        });
    }
    Ok(())
}

/// Parse config text.
pub(crate) fn parse(text: &str) -> Result<Document, ConfigError> {
    if text.len() > MAX_CONFIG_LEN {
        return Err(ConfigError::TooLarge {
            len: text.len(),
            max: MAX_CONFIG_LEN,
        });
    }
    let mut doc = Document::new();
    let mut open: Option<OpenList> = None;
    for (idx, raw_line) in text.split('\n').enumerate() {
        let line = idx + 1;
        let raw_line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        let content = strip_comment(raw_line).trim_end_matches(' ');
        if content.contains('\t') {
            return Err(syntax(line, "tab character"));
        }
        if content.is_empty() {
            continue;
        }
        let indent = content.len() - content.trim_start_matches(' ').len();
        let body = &content[indent..];
        if indent == 0 {
            if let Some(list) = open.take() {
                close(&mut doc, list)?;
            }
            let (key, rest) = split_key(body, line)?;
            if doc.contains_key(key) {
                return Err(ConfigError::DuplicateKey {
                    key: key.to_owned(),
                    line,
                });
            }
            match rest {
                "" => {
                    open = Some(OpenList {
                        key: key.to_owned(),
                        line,
                        field_indent: None,
                        items: Vec::new(),
                    })
                }
                "[]" => insert_unique(
                    &mut doc,
                    key,
                    Value::List {
                        line,
                        items: Vec::new(),
                    },
                    line,
                )?,
                _ => insert_unique(
                    &mut doc,
                    key,
                    Value::Scalar(parse_scalar(rest, line)?),
                    line,
                )?,
            }
            continue;
        }
        let Some(list) = open.as_mut() else {
            return Err(syntax(line, "indented line outside a list"));
        };
        let (field_col, field) = if let Some(after_dash) = body.strip_prefix("- ") {
            let spaces = after_dash.len() - after_dash.trim_start_matches(' ').len();
            if list.items.len() >= MAX_LIST_ITEMS {
                return Err(syntax(line, "too many list items"));
            }
            list.items.push(BTreeMap::new());
            (indent + 2 + spaces, after_dash.trim_start_matches(' '))
        } else {
            (indent, body)
        };
        match list.field_indent {
            None => list.field_indent = Some(field_col),
            Some(col) if col == field_col => {}
            Some(_) => return Err(syntax(line, "inconsistent indentation in a list")),
        }
        let Some(item) = list.items.last_mut() else {
            return Err(syntax(line, "list field before the first `- `"));
        };
        let (key, rest) = split_key(field, line)?;
        if rest.is_empty() || rest == "[]" {
            return Err(syntax(line, "nested values inside a list item"));
        }
        let scalar = parse_scalar(rest, line)?;
        if item.insert(key.to_owned(), scalar).is_some() {
            return Err(ConfigError::DuplicateKey {
                key: key.to_owned(),
                line,
            });
        }
    }
    if let Some(list) = open.take() {
        close(&mut doc, list)?;
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(doc: &Document, key: &str) -> String {
        match &doc[key] {
            Value::Scalar(s) => s.text.clone(),
            Value::List { .. } => panic!("{key} is a list"),
        }
    }

    #[test]
    fn reads_scalars_quotes_comments_and_lists() {
        let doc = parse(
            "# header\nPRESET_BASE: 'mainnet'\nCONFIG_NAME: \"x\" # trailing\nA_B: 0x01000000\n\
             EMPTY: []\nBLOB_SCHEDULE:\n  - EPOCH: 5  # c\n    MAX_BLOBS_PER_BLOCK: 15\n\
             \x20 - EPOCH: 6\n    MAX_BLOBS_PER_BLOCK: 21\nLAST: 7\r\n",
        )
        .unwrap();
        assert_eq!(scalar(&doc, "PRESET_BASE"), "mainnet");
        assert_eq!(scalar(&doc, "CONFIG_NAME"), "x");
        assert_eq!(scalar(&doc, "A_B"), "0x01000000");
        assert_eq!(scalar(&doc, "LAST"), "7");
        assert_eq!(
            doc["EMPTY"],
            Value::List {
                line: 5,
                items: vec![]
            }
        );
        let Value::List { items, .. } = &doc["BLOB_SCHEDULE"] else {
            panic!()
        };
        assert_eq!(items.len(), 2);
        assert_eq!(items[1]["MAX_BLOBS_PER_BLOCK"].text, "21");
        assert_eq!(items[1]["EPOCH"].line, 9);
    }

    #[test]
    fn rejects_what_is_outside_the_subset() {
        let cases: &[(&str, usize)] = &[
            ("A: 1\nA: 2\n", 2),
            ("A:1\n", 1),
            ("lower: 1\n", 1),
            ("A: &anchor 1\n", 1),
            ("A: {x: 1}\n", 1),
            ("A: 'unterminated\n", 1),
            ("A: 'it''s'\n", 1),
            ("A:\tb\n", 1),
            ("  A: 1\n", 1),
            ("A:\nB: 1\n", 1),
            ("A:\n  - X: 1\n     Y: 2\n", 3),
            ("A:\n  - X: 1\n    X: 2\n", 3),
            ("A:\n  - X:\n", 2),
            ("A: |\n", 1),
            ("---\n", 1),
            ("A: 1 2\n", 1),
        ];
        for (text, line) in cases {
            match parse(text) {
                Err(ConfigError::Syntax { line: l, .. })
                | Err(ConfigError::DuplicateKey { line: l, .. }) => {
                    assert_eq!(l, *line, "{text:?}")
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        assert!(matches!(
            parse(&"#".repeat(MAX_CONFIG_LEN + 1)),
            Err(ConfigError::TooLarge { .. })
        ));
    }
}
