//! The typed key reader of stage two: how one key of one section is read, checked against
//! its form and range, and reported (line, C error class), plus the number and string
//! helpers it uses (strict decimal, C `strtoul`, GKeyFile escapes).
//!
//! Pure: it reads an already parsed [`Section`] and returns values or [`ConfigError`]s. It
//! must not open files, touch the kernel or know daemon state, and it does not decide which
//! keys a section has: that is the per-section builders' job (`sections`).

use std::path::Path;

use etmem_proto::OptResult;

use super::MAX_NAME_LEN;
use crate::doc::{Entry, Section};
use crate::error::{ConfigError, KeyProblem, SectionKind, SectionRef};
use crate::types::*;

/// Reads the keys of one section and remembers which keys were used.
pub(super) struct Reader<'a> {
    path: &'a Path,
    sec: &'a Section,
    kind: SectionKind,
    /// The class of non-identity key problems.
    class: OptResult,
    pub(super) used: Vec<&'static str>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(path: &'a Path, sec: &'a Section, kind: SectionKind) -> Self {
        let class = match kind {
            SectionKind::Project => OptResult::Inval,
            SectionKind::Engine | SectionKind::Task => OptResult::InterErr,
        };
        Reader {
            path,
            sec,
            kind,
            class,
            used: Vec::new(),
        }
    }

    pub(super) fn pos(&self) -> SectionPos {
        SectionPos {
            index: self.sec.index,
            line: Some(self.sec.line),
        }
    }

    fn error_at(
        &self,
        key: &str,
        line: Option<usize>,
        problem: KeyProblem,
        class: OptResult,
    ) -> ConfigError {
        ConfigError::Key {
            path: self.path.to_path_buf(),
            section: SectionRef {
                kind: self.kind,
                index: self.sec.index,
                line: line.unwrap_or(self.sec.line),
            },
            key: key.to_string(),
            problem,
            result: class,
        }
    }

    /// An error on `key`, at its line when present.
    pub(super) fn err(&self, key: &str, problem: KeyProblem) -> ConfigError {
        let line = self.sec.all(key).last().map(|e| e.line);
        self.error_at(key, line, problem, self.class)
    }

    pub(super) fn expected(
        &self,
        key: &str,
        expected: impl Into<String>,
        found: &str,
    ) -> ConfigError {
        self.err(
            key,
            KeyProblem::Expected {
                expected: expected.into(),
                found: found.to_string(),
            },
        )
    }

    /// The entry of `key` (at most one), with the whitespace check.
    fn entry(
        &mut self,
        key: &'static str,
        class: OptResult,
    ) -> Result<Option<&'a Entry>, ConfigError> {
        self.used.push(key);
        let mut it = self.sec.all(key);
        let Some(first) = it.next() else {
            return Ok(None);
        };
        if let Some(second) = it.next() {
            return Err(self.error_at(
                key,
                Some(second.line),
                KeyProblem::Duplicate {
                    first_line: first.line,
                },
                class,
            ));
        }
        if first.trailing_ws {
            return Err(self.error_at(
                key,
                Some(first.line),
                KeyProblem::TrailingWhitespace {
                    found: raw_with_ws(first),
                },
                class,
            ));
        }
        Ok(Some(first))
    }

    /// A string key: non-empty, GKeyFile escapes applied.
    fn string_as(
        &mut self,
        key: &'static str,
        class: OptResult,
    ) -> Result<Option<String>, ConfigError> {
        let Some(e) = self.entry(key, class)? else {
            return Ok(None);
        };
        if e.value.is_empty() {
            return Err(self.error_at(key, Some(e.line), KeyProblem::Empty, class));
        }
        match unescape(&e.value) {
            Some(v) => Ok(Some(v)),
            None => Err(self.error_at(
                key,
                Some(e.line),
                KeyProblem::Expected {
                    expected: "only the escapes \\s \\n \\t \\r \\\\".into(),
                    found: e.value.clone(),
                },
                class,
            )),
        }
    }

    pub(super) fn opt_str(&mut self, key: &'static str) -> Result<Option<String>, ConfigError> {
        self.string_as(key, self.class)
    }

    pub(super) fn req_str(&mut self, key: &'static str) -> Result<String, ConfigError> {
        self.opt_str(key)?
            .ok_or_else(|| self.err(key, KeyProblem::Missing))
    }

    /// An identity key: required, 1..=64 bytes, always `Inval`.
    pub(super) fn identity(&mut self, key: &'static str) -> Result<String, ConfigError> {
        let v = self
            .string_as(key, OptResult::Inval)?
            .ok_or_else(|| self.error_at(key, None, KeyProblem::Missing, OptResult::Inval))?;
        if v.len() > MAX_NAME_LEN {
            let line = self.sec.all(key).last().map(|e| e.line);
            return Err(self.error_at(
                key,
                line,
                KeyProblem::TooLong {
                    min: 1,
                    max: MAX_NAME_LEN,
                    found: v,
                },
                OptResult::Inval,
            ));
        }
        Ok(v)
    }

    /// An integer key in `min..=max`: strict decimal with an optional sign.
    pub(super) fn opt_int(
        &mut self,
        key: &'static str,
        min: i64,
        max: i64,
    ) -> Result<Option<i64>, ConfigError> {
        let Some(e) = self.entry(key, self.class)? else {
            return Ok(None);
        };
        let range = if max == i64::MAX {
            format!(">= {min}")
        } else {
            format!("{min}..={max}")
        };
        match parse_decimal(&e.value) {
            Some(n) if (i128::from(min)..=i128::from(max)).contains(&n) => {
                // In range of an i64 by construction.
                Ok(Some(i64::try_from(n).unwrap_or(min)))
            }
            Some(_) => Err(self.expected(key, range, &e.value)),
            None => Err(self.expected(key, format!("an integer {range}"), &e.value)),
        }
    }

    pub(super) fn req_int(
        &mut self,
        key: &'static str,
        min: i64,
        max: i64,
    ) -> Result<i64, ConfigError> {
        self.opt_int(key, min, max)?
            .ok_or_else(|| self.err(key, KeyProblem::Missing))
    }

    pub(super) fn req_u32(
        &mut self,
        key: &'static str,
        min: u32,
        max: u32,
    ) -> Result<u32, ConfigError> {
        let v = self.req_int(key, min.into(), max.into())?;
        Ok(u32::try_from(v).unwrap_or(min))
    }

    pub(super) fn req_u64(&mut self, key: &'static str, min: i64) -> Result<u64, ConfigError> {
        let v = self.req_int(key, min, i64::MAX)?;
        Ok(u64::try_from(v).unwrap_or(0))
    }

    /// `yes` / `no`, exact case.
    pub(super) fn opt_yes_no(&mut self, key: &'static str) -> Result<Option<bool>, ConfigError> {
        match self.opt_str(key)?.as_deref() {
            None => Ok(None),
            Some("yes") => Ok(Some(true)),
            Some("no") => Ok(Some(false)),
            Some(other) => Err(self.expected(key, "`yes` or `no`", other)),
        }
    }

    pub(super) fn req_yes_no(&mut self, key: &'static str) -> Result<bool, ConfigError> {
        self.opt_yes_no(key)?
            .ok_or_else(|| self.err(key, KeyProblem::Missing))
    }

    /// A psi double: > 0, finite.
    pub(super) fn opt_positive_f64(
        &mut self,
        key: &'static str,
        default: f64,
    ) -> Result<f64, ConfigError> {
        let Some(e) = self.entry(key, self.class)? else {
            return Ok(default);
        };
        match e.value.parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
            _ => Err(self.expected(key, "a decimal number > 0", &e.value)),
        }
    }

    /// A psi byte count (C: `strtoul` of the whole string; `-1` wraps to the maximum).
    pub(super) fn opt_ulong(
        &mut self,
        key: &'static str,
        default: u64,
    ) -> Result<u64, ConfigError> {
        let Some(e) = self.entry(key, self.class)? else {
            return Ok(default);
        };
        match parse_strtoul(&e.value) {
            Some(v) => Ok(v),
            None => Err(self.expected(key, "an integer 0..=18446744073709551615", &e.value)),
        }
    }

    /// Keys of this section not read so far, for warnings or raw params; duplicates and
    /// trailing whitespace are errors here too.
    fn rest(&self) -> Result<Vec<&'a Entry>, ConfigError> {
        let mut out: Vec<&'a Entry> = Vec::new();
        for e in &self.sec.entries {
            if self.used.contains(&e.key.as_str()) {
                continue;
            }
            if let Some(first) = out.iter().find(|o| o.key == e.key) {
                return Err(self.error_at(
                    &e.key,
                    Some(e.line),
                    KeyProblem::Duplicate {
                        first_line: first.line,
                    },
                    self.class,
                ));
            }
            out.push(e);
        }
        Ok(out)
    }

    /// Warns about every key not read.
    pub(super) fn warn_unknown(
        &self,
        warnings: &mut Vec<String>,
        why: &str,
    ) -> Result<(), ConfigError> {
        for e in self.rest()? {
            warnings.push(format!(
                "{}: {}: unknown key `{}` ignored{why}",
                self.path.display(),
                SectionRef {
                    kind: self.kind,
                    index: self.sec.index,
                    line: e.line,
                },
                e.key
            ));
        }
        Ok(())
    }

    /// Every key not read, raw, for a thirdparty engine.
    pub(super) fn raw_rest(&self) -> Result<RawParams, ConfigError> {
        let rest = self.rest()?;
        if let Some(e) = rest.iter().find(|e| e.trailing_ws) {
            return Err(self.error_at(
                &e.key,
                Some(e.line),
                KeyProblem::TrailingWhitespace {
                    found: raw_with_ws(e),
                },
                self.class,
            ));
        }
        Ok(rest
            .into_iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect())
    }
}

fn raw_with_ws(e: &Entry) -> String {
    // rust-ini trimmed it; show one space so the user sees where it is.
    format!("{} ", e.value)
}

/// Strict decimal: optional sign, then digits only. Wider than i64 so that overflow is a
/// range error, never a wrap.
fn parse_decimal(s: &str) -> Option<i128> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 30 {
        return None;
    }
    s.parse::<i128>().ok()
}

/// C `strtoul(s, &end, 10)` over the whole string: a leading `-` negates modulo 2⁶⁴
/// (spec bug B25, kept); overflow is an error.
fn parse_strtoul(s: &str) -> Option<u64> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u64 = digits.parse().ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// GKeyFile string escapes: `\s` `\n` `\t` `\r` `\\`; anything else is invalid.
fn unescape(s: &str) -> Option<String> {
    if !s.contains('\\') {
        return Some(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match it.next()? {
            's' => ' ',
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            '\\' => '\\',
            _ => return None,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_is_strict() {
        assert_eq!(parse_decimal("+5"), Some(5));
        assert_eq!(parse_decimal("-7"), Some(-7));
        assert_eq!(parse_decimal("007"), Some(7));
        for bad in ["", "+", "0x10", "1a", " 1", "1.0", "1e3"] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
        assert_eq!(parse_decimal("4294967297"), Some(4_294_967_297));
    }

    #[test]
    fn strtoul_wraps_negative_like_c() {
        assert_eq!(parse_strtoul("-1"), Some(u64::MAX));
        assert_eq!(parse_strtoul("1073741824"), Some(1 << 30));
        assert_eq!(parse_strtoul("18446744073709551616"), None);
        assert_eq!(parse_strtoul("12k"), None);
    }

    #[test]
    fn unescape_gkeyfile() {
        assert_eq!(unescape("a\\sb\\\\").as_deref(), Some("a b\\"));
        assert_eq!(unescape("a\\q"), None);
    }
}
