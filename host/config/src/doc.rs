//! Stage one: config text → INI document (sections of raw key/value entries with lines).
//!
//! rust-ini builds the document. A light pre-scan of the raw lines adds what rust-ini
//! does not give or does differently from GKeyFile, without parsing values itself:
//! - the line of every section header and key (for error messages);
//! - whether a value had trailing whitespace (rust-ini trims it, GKeyFile keeps it);
//! - GKeyFile's line rules: a key before any section, or a line that is neither blank,
//!   `# comment`, `[section]` nor `key=value`, fails the whole file; `;` does not start
//!   a comment; indented comments are comments.
//!
//! Comment lines are blanked and leading whitespace is removed before rust-ini sees the
//! text, so both agree on every line; their results are cross-checked.
//! This module knows nothing of etmem keys.

use std::path::Path;

use ini::{Ini, ParseOption};

use crate::error::ConfigError;

/// One `key=value` line.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    /// The value as rust-ini gives it (surrounding whitespace trimmed, no unescaping).
    pub value: String,
    /// 1-based line.
    pub line: usize,
    /// The raw value ended with whitespace.
    pub trailing_ws: bool,
}

/// One `[section]` with its entries in file order.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    pub name: String,
    /// 0-based index among sections with the same name.
    pub index: usize,
    /// 1-based line of the header.
    pub line: usize,
    pub entries: Vec<Entry>,
}

impl Section {
    /// Every entry with this key, in file order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| e.key == key)
    }
}

fn syntax(path: &Path, line: usize, reason: impl Into<String>) -> ConfigError {
    ConfigError::Syntax {
        path: path.to_path_buf(),
        line,
        reason: reason.into(),
    }
}

fn shorten(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push_str("...");
        t
    }
}

/// Parses `text` into sections, in file order.
pub(crate) fn parse_document(text: &str, path: &Path) -> Result<Vec<Section>, ConfigError> {
    let mut sections: Vec<Section> = Vec::new();
    let mut feed = String::with_capacity(text.len());

    for (i, raw) in text.split('\n').enumerate() {
        let lineno = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let t = line.trim_start();
        if i > 0 {
            feed.push('\n');
        }
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if t.starts_with('[') {
            let tt = t.trim_end();
            let inner = tt
                .strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .filter(|s| !s.contains(['[', ']']) && !s.trim().is_empty());
            let Some(inner) = inner else {
                return Err(syntax(
                    path,
                    lineno,
                    format!("malformed section header `{}`", shorten(tt)),
                ));
            };
            let name = inner.trim().to_string();
            let index = sections.iter().filter(|s| s.name == name).count();
            sections.push(Section {
                name,
                index,
                line: lineno,
                entries: Vec::new(),
            });
            feed.push_str(tt);
            continue;
        }
        let Some((k, v)) = t.split_once('=') else {
            return Err(syntax(
                path,
                lineno,
                format!(
                    "expected `key=value`, `[section]` or `# comment`, found `{}`",
                    shorten(t.trim_end())
                ),
            ));
        };
        let key = k.trim();
        if key.is_empty() {
            return Err(syntax(path, lineno, "missing key before `=`"));
        }
        if key.contains(':') {
            return Err(syntax(
                path,
                lineno,
                format!(
                    "key `{}` contains `:`, which is not supported",
                    shorten(key)
                ),
            ));
        }
        let Some(section) = sections.last_mut() else {
            return Err(syntax(
                path,
                lineno,
                format!("key `{}` before any [section]", shorten(key)),
            ));
        };
        let value = v.trim_start();
        if value.ends_with('\\') {
            return Err(syntax(
                path,
                lineno,
                format!("key `{key}`: value ends with `\\`; line continuation is not supported"),
            ));
        }
        section.entries.push(Entry {
            key: key.to_string(),
            value: String::new(),
            line: lineno,
            trailing_ws: !value.is_empty() && value != value.trim_end(),
        });
        feed.push_str(t);
    }

    let opt = ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        enabled_indented_mutiline_value: false,
        enabled_preserve_key_leading_whitespace: false,
    };
    let ini =
        Ini::load_from_str_opt(&feed, opt).map_err(|e| syntax(path, e.line, e.msg.into_owned()))?;

    // rust-ini keeps same-named sections apart, in order: pair them with the pre-scan.
    let mut names: Vec<&str> = Vec::new();
    for s in &sections {
        if !names.contains(&s.name.as_str()) {
            names.push(&s.name);
        }
    }
    let mut filled: Vec<Section> = sections.clone();
    for name in names {
        let parsed: Vec<_> = ini.section_all(Some(name)).collect();
        let ours: Vec<&mut Section> = filled.iter_mut().filter(|s| s.name == name).collect();
        if parsed.len() != ours.len() {
            let line = ours.first().map_or(1, |s| s.line);
            return Err(syntax(
                path,
                line,
                format!("cannot split the file into sections (near [{name}])"),
            ));
        }
        for (props, sec) in parsed.into_iter().zip(ours) {
            let pairs: Vec<(&str, &str)> = props.iter().collect();
            if pairs.len() != sec.entries.len()
                || pairs
                    .iter()
                    .zip(&sec.entries)
                    .any(|((k, _), e)| *k != e.key)
            {
                return Err(syntax(
                    path,
                    sec.line,
                    format!("cannot read the keys of section [{name}]"),
                ));
            }
            for ((_, v), e) in pairs.into_iter().zip(sec.entries.iter_mut()) {
                e.value = v.to_string();
            }
        }
    }
    if ini.general_section().iter().next().is_some() {
        return Err(syntax(path, 1, "key before any [section]"));
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("/x.ini")
    }

    #[test]
    fn sections_keep_order_lines_and_duplicates() {
        let text = "# c\n[task]\nname = a \n  # indented comment\n[engine]\nname=slide\n[task]\n\tname=b\nname=c\n";
        let s = parse_document(text, p()).expect("parses");
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].name.as_str(), s[0].index, s[0].line), ("task", 0, 2));
        assert_eq!(s[0].entries[0].value, "a");
        assert!(s[0].entries[0].trailing_ws);
        assert_eq!(
            (s[1].name.as_str(), s[1].index, s[1].line),
            ("engine", 0, 5)
        );
        assert_eq!((s[2].name.as_str(), s[2].index, s[2].line), ("task", 1, 7));
        let vals: Vec<_> = s[2]
            .all("name")
            .map(|e| (e.value.as_str(), e.line))
            .collect();
        assert_eq!(vals, [("b", 8), ("c", 9)]);
    }

    #[test]
    fn values_are_raw_and_keep_hash_semicolon_quotes() {
        let s = parse_document("[t]\na=x # y\nb='q'\nc=a;b\nd=\\s\ne=\n", p()).expect("parses");
        let v: Vec<_> = s[0].entries.iter().map(|e| e.value.as_str()).collect();
        assert_eq!(v, ["x # y", "'q'", "a;b", "\\s", ""]);
    }

    #[test]
    fn gkeyfile_line_errors() {
        for (text, line) in [
            ("a=1\n[t]\n", 1),
            ("[t]\ngarbage\n", 2),
            ("[t]\n; not a comment in gkeyfile\n", 2),
            ("[t]\n=1\n", 2),
            ("[t\n", 1),
            ("[t]\nx=1\\\ny=2\n", 2),
            ("[t]\n\n\nk:v\n", 4),
        ] {
            match parse_document(text, p()) {
                Err(ConfigError::Syntax { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn crlf_is_a_line_end_not_trailing_space() {
        let s = parse_document("[t]\r\na=1\r\n", p()).expect("parses");
        assert_eq!(s[0].entries[0].value, "1");
        assert!(!s[0].entries[0].trailing_ws);
    }
}
