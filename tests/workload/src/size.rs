//! Parsing of human sizes such as `64M`, `1G`, `4096` or `2MiB`.
//!
//! Units are binary (K = 1024). Pure: a string in, a byte count out; it never rounds to a
//! page size (the caller does, and reports the rounded size in the layout).

use thiserror::Error;

/// Why a size could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SizeError {
    /// The text was empty.
    #[error("size: expected a number with an optional K/M/G/T suffix, found an empty string")]
    Empty,
    /// The number part was missing or not decimal digits.
    #[error("size `{0}`: expected a decimal number with an optional K/M/G/T suffix")]
    BadNumber(String),
    /// The suffix is not one we know.
    #[error(
        "size `{text}`: unknown unit `{unit}`, expected K, M, G or T (optionally with iB or B)"
    )]
    BadUnit {
        /// The whole input.
        text: String,
        /// The unit part of it.
        unit: String,
    },
    /// The value does not fit in 64 bits.
    #[error("size `{0}`: too large")]
    Overflow(String),
}

/// Parses `N`, `NK`, `NM`, `NG`, `NT` (case-insensitive, optional `iB`/`B`) into bytes.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(SizeError::Empty);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(SizeError::BadNumber(text.to_string()));
    }
    let value: u64 = num
        .parse()
        .map_err(|_| SizeError::Overflow(text.to_string()))?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(SizeError::BadUnit {
                text: text.to_string(),
                unit: unit.to_string(),
            });
        }
    };
    value
        .checked_mul(1u64 << shift)
        .ok_or_else(|| SizeError::Overflow(text.to_string()))
}

/// Rounds `bytes` up to a multiple of `page` (a power of two); `None` on overflow.
pub fn round_up(bytes: u64, page: u64) -> Option<u64> {
    debug_assert!(page.is_power_of_two());
    bytes.checked_add(page - 1).map(|b| b & !(page - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_bytes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size(" 12b "), Ok(12));
    }

    #[test]
    fn binary_units_any_case() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("2MiB"), Ok(2 << 20));
        assert_eq!(parse_size("3kb"), Ok(3 << 10));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_size(""), Err(SizeError::Empty));
        assert_eq!(parse_size("M"), Err(SizeError::BadNumber("M".into())));
        assert_eq!(parse_size("-1M"), Err(SizeError::BadNumber("-1M".into())));
        assert_eq!(
            parse_size("10X"),
            Err(SizeError::BadUnit {
                text: "10X".into(),
                unit: "X".into()
            })
        );
        assert_eq!(
            parse_size("1.5G"),
            Err(SizeError::BadUnit {
                text: "1.5G".into(),
                unit: ".5G".into()
            })
        );
    }

    #[test]
    fn overflow_is_an_error() {
        assert_eq!(
            parse_size("99999999999999999999"),
            Err(SizeError::Overflow("99999999999999999999".into()))
        );
        assert_eq!(
            parse_size("20000000T"),
            Err(SizeError::Overflow("20000000T".into()))
        );
    }

    #[test]
    fn error_text_names_the_value() {
        let e = parse_size("7Q").expect_err("bad unit");
        assert_eq!(
            e.to_string(),
            "size `7Q`: unknown unit `Q`, expected K, M, G or T (optionally with iB or B)"
        );
    }

    #[test]
    fn rounding() {
        assert_eq!(round_up(1, 4096), Some(4096));
        assert_eq!(round_up(4096, 4096), Some(4096));
        assert_eq!(round_up(0, 4096), Some(0));
        assert_eq!(round_up(3 << 20, 2 << 20), Some(4 << 20));
        assert_eq!(round_up(u64::MAX, 4096), None);
    }
}
