//! [`Params`]: the `key = value` pairs of an `[engine]` or `[task]` section, with typed
//! getters that reject what they cannot parse.
//!
//! Every error names the key and the value. When a key appears twice the last value wins
//! (as GLib's key file does). This module only parses; it must not read files.

use crate::EngineError;
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// The project keys the host adds to the params of `configure`, under their config names,
/// when the project sets them: `loop`, `interval`, `sleep` (page-scan projects),
/// `sample_interval`, `aggr_interval`, `update_interval`, `min_nr_regions`,
/// `max_nr_regions` (region projects), `sysmem_threshold`, `swapcache_high_wmark`, `swapcache_low_wmark`. An engine reads the
/// ones it needs and [`Params::deny_unknown`] never rejects them.
pub const PROJECT_KEYS: &[&str] = &[
    "loop",
    "interval",
    "sleep",
    "sysmem_threshold",
    "swapcache_high_wmark",
    "swapcache_low_wmark",
    "sample_interval",
    "aggr_interval",
    "update_interval",
    "min_nr_regions",
    "max_nr_regions",
];

/// The engine-specific keys of a section, in file order.
///
/// ```
/// use etmem_sdk::{EngineError, Params};
///
/// # fn main() -> Result<(), EngineError> {
/// // what `[task] ... idle_rounds=3` followed by `max_pages=lots` gives an engine
/// let params = Params::from_pairs([("idle_rounds", " 3 "), ("max_pages", "lots")]);
/// params.deny_unknown(&["idle_rounds", "max_pages"])?;
/// assert_eq!(params.get_in::<u32>("idle_rounds", 1..=255)?, Some(3)); // trimmed
/// assert_eq!(params.get_or::<bool>("verbose", false)?, false); // absent: the default
/// assert_eq!(
///     params.get::<u64>("max_pages").unwrap_err().to_string(),
///     "key `max_pages`: expected an integer in 0..=18446744073709551615, found `lots`"
/// );
/// assert_eq!(
///     params.require::<String>("mode"),
///     Err(EngineError::MissingParam("mode".into()))
/// );
/// assert_eq!(
///     params.deny_unknown(&["idle_rounds"]),
///     Err(EngineError::UnknownParam("max_pages".into()))
/// );
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

/// A value type [`Params`] can parse.
pub trait FromParam: Sized {
    /// What a valid value looks like, for error messages (e.g. `an unsigned integer`).
    fn expected() -> String;
    /// Parses `value` (already trimmed); `None` if it is not valid.
    fn from_param(value: &str) -> Option<Self>;
}

macro_rules! int_from_param {
    ($($t:ty),*) => {$(
        impl FromParam for $t {
            fn expected() -> String {
                format!("an integer in {}..={}", <$t>::MIN, <$t>::MAX)
            }
            fn from_param(value: &str) -> Option<Self> {
                // Decimal only: no sign on unsigned types, no `0x`, no `_`.
                if value.starts_with('+') {
                    return None;
                }
                <$t>::from_str(value).ok()
            }
        }
    )*};
}
int_from_param!(u8, u16, u32, u64, usize, i32, i64);

impl FromParam for f64 {
    fn expected() -> String {
        "a finite number".to_string()
    }
    fn from_param(value: &str) -> Option<Self> {
        f64::from_str(value).ok().filter(|v| v.is_finite())
    }
}

impl FromParam for bool {
    fn expected() -> String {
        "`yes` or `no`".to_string()
    }
    fn from_param(value: &str) -> Option<Self> {
        match value {
            "yes" | "true" | "1" => Some(true),
            "no" | "false" | "0" => Some(false),
            _ => None,
        }
    }
}

impl FromParam for String {
    fn expected() -> String {
        "a non-empty string".to_string()
    }
    fn from_param(value: &str) -> Option<Self> {
        (!value.is_empty()).then(|| value.to_string())
    }
}

impl Params {
    /// No keys.
    pub fn new() -> Params {
        Params::default()
    }

    /// Params from `(key, value)` pairs, in order.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Params
    where
        K: Into<String>,
        V: Into<String>,
    {
        Params {
            pairs: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The pairs, in file order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// True when there is no key at all.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The raw value of `key` (the last one if repeated), untrimmed.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key` parsed as `T`; `Ok(None)` when absent.
    ///
    /// Surrounding whitespace is ignored; anything else that does not parse is an
    /// [`EngineError::InvalidParam`] naming the key and the value.
    pub fn get<T: FromParam>(&self, key: &str) -> Result<Option<T>, EngineError> {
        let Some(raw) = self.raw(key) else {
            return Ok(None);
        };
        T::from_param(raw.trim())
            .map(Some)
            .ok_or_else(|| EngineError::invalid_param(key, raw, T::expected()))
    }

    /// The value of `key` parsed as `T`, or `default` when absent.
    pub fn get_or<T: FromParam>(&self, key: &str, default: T) -> Result<T, EngineError> {
        Ok(self.get(key)?.unwrap_or(default))
    }

    /// The value of `key` parsed as `T`; absent is [`EngineError::MissingParam`].
    pub fn require<T: FromParam>(&self, key: &str) -> Result<T, EngineError> {
        self.get(key)?
            .ok_or_else(|| EngineError::MissingParam(key.to_string()))
    }

    /// The value of `key` parsed as `T` and checked against `range`; `Ok(None)` when absent.
    pub fn get_in<T>(&self, key: &str, range: RangeInclusive<T>) -> Result<Option<T>, EngineError>
    where
        T: FromParam + PartialOrd + Display,
    {
        let Some(raw) = self.raw(key) else {
            return Ok(None);
        };
        let expected = || {
            format!(
                "{} in {}..={}",
                if T::expected().contains("integer") {
                    "an integer"
                } else {
                    "a value"
                },
                range.start(),
                range.end()
            )
        };
        match T::from_param(raw.trim()) {
            Some(v) if range.contains(&v) => Ok(Some(v)),
            _ => Err(EngineError::invalid_param(key, raw, expected())),
        }
    }

    /// Rejects any key not in `known` with [`EngineError::UnknownParam`] (the first one,
    /// in file order). The project keys the host adds to `configure`'s params
    /// ([`PROJECT_KEYS`]) are always accepted.
    pub fn deny_unknown(&self, known: &[&str]) -> Result<(), EngineError> {
        match self
            .pairs
            .iter()
            .find(|(k, _)| !known.contains(&k.as_str()) && !PROJECT_KEYS.contains(&k.as_str()))
        {
            Some((k, _)) => Err(EngineError::UnknownParam(k.clone())),
            None => Ok(()),
        }
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Params {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Params {
        Params::from_pairs(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn integers_parse_and_reject_with_key_and_value() {
        let params = p(&[
            ("n", " 42 "),
            ("neg", "-1"),
            ("hex", "0x10"),
            ("plus", "+3"),
        ]);
        assert_eq!(params.get::<u32>("n"), Ok(Some(42)));
        assert_eq!(params.get::<i64>("neg"), Ok(Some(-1)));
        assert_eq!(
            params.get::<u32>("neg").expect_err("must fail").to_string(),
            "key `neg`: expected an integer in 0..=4294967295, found `-1`"
        );
        assert_eq!(
            params.get::<u8>("hex").expect_err("must fail").to_string(),
            "key `hex`: expected an integer in 0..=255, found `0x10`"
        );
        assert!(params.get::<u8>("plus").is_err());
        assert_eq!(params.get::<u8>("absent"), Ok(None));
        assert_eq!(
            p(&[("big", "256")])
                .get::<u8>("big")
                .expect_err("must fail"),
            EngineError::invalid_param("big", "256", "an integer in 0..=255")
        );
    }

    #[test]
    fn ranges_defaults_and_required() {
        let params = p(&[("r", "0"), ("ok", "7")]);
        assert_eq!(
            params
                .get_in::<u32>("r", 1..=255)
                .expect_err("must fail")
                .to_string(),
            "key `r`: expected an integer in 1..=255, found `0`"
        );
        assert_eq!(params.get_in::<u32>("ok", 1..=255), Ok(Some(7)));
        assert_eq!(params.get_in::<u32>("none", 1..=255), Ok(None));
        assert_eq!(params.get_or::<u32>("none", 3), Ok(3));
        assert_eq!(params.get_or::<u32>("ok", 3), Ok(7));
        assert_eq!(
            params.require::<u32>("none"),
            Err(EngineError::MissingParam("none".into()))
        );
    }

    #[test]
    fn bools_floats_strings() {
        let params = p(&[
            ("a", "yes"),
            ("b", "no"),
            ("c", "maybe"),
            ("f", "0.5"),
            ("nan", "NaN"),
            ("s", ""),
        ]);
        assert_eq!(params.get::<bool>("a"), Ok(Some(true)));
        assert_eq!(params.get::<bool>("b"), Ok(Some(false)));
        assert_eq!(
            params.get::<bool>("c").expect_err("must fail").to_string(),
            "key `c`: expected `yes` or `no`, found `maybe`"
        );
        assert_eq!(params.get::<f64>("f"), Ok(Some(0.5)));
        assert!(params.get::<f64>("nan").is_err());
        assert!(params.get::<String>("s").is_err());
    }

    #[test]
    fn last_value_wins_and_unknown_keys_are_named() {
        let params = p(&[("k", "1"), ("x", "2"), ("k", "3")]);
        assert_eq!(params.get::<u8>("k"), Ok(Some(3)));
        assert_eq!(params.deny_unknown(&["k", "x"]), Ok(()));
        assert_eq!(
            params.deny_unknown(&["k"]),
            Err(EngineError::UnknownParam("x".into()))
        );
        assert_eq!(params.pairs().len(), 3);
    }
}
