//! `/proc/pressure/memory` (PSI). This module never opens files.

/// One line of a PSI file (`some` or `full`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PsiLine {
    /// share of time stalled over 10 s, percent
    pub avg10: f64,
    /// over 60 s
    pub avg60: f64,
    /// over 300 s
    pub avg300: f64,
    /// total stall time, microseconds
    pub total_us: u64,
}

/// A parsed PSI file.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Psi {
    /// some task stalled
    pub some: PsiLine,
    /// all non-idle tasks stalled (absent in old kernels' cpu file)
    pub full: Option<PsiLine>,
}

fn parse_line(rest: &str) -> Option<PsiLine> {
    let mut l = PsiLine::default();
    let mut seen = 0;
    for kv in rest.split_ascii_whitespace() {
        let (k, v) = kv.split_once('=')?;
        match k {
            "avg10" => l.avg10 = v.parse().ok()?,
            "avg60" => l.avg60 = v.parse().ok()?,
            "avg300" => l.avg300 = v.parse().ok()?,
            "total" => l.total_us = v.parse().ok()?,
            _ => continue,
        }
        seen += 1;
    }
    (seen == 4).then_some(l)
}

/// Parses a PSI file. `None` when the `some` line is missing or malformed.
pub fn parse_psi(bytes: &[u8]) -> Option<Psi> {
    let text = String::from_utf8_lossy(bytes);
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("some ") {
            some = Some(parse_line(rest)?);
        } else if let Some(rest) = line.strip_prefix("full ") {
            full = Some(parse_line(rest)?);
        }
    }
    Some(Psi { some: some?, full })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_pressure() {
        let p = parse_psi(b"some avg10=1.50 avg60=0.25 avg300=0.00 total=12345\nfull avg10=0.10 avg60=0.00 avg300=0.00 total=99\n")
            .expect("psi");
        assert_eq!(p.some.avg10, 1.5);
        assert_eq!(p.some.avg60, 0.25);
        assert_eq!(p.some.total_us, 12345);
        assert_eq!(p.full.expect("full").total_us, 99);
        assert_eq!(
            parse_psi(b"some avg10=0.00 avg60=0.00 avg300=0.00 total=0")
                .expect("some")
                .full,
            None
        );
        assert_eq!(
            parse_psi(b"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"),
            None
        );
        assert_eq!(
            parse_psi(b"some avg10=x avg60=0.00 avg300=0.00 total=0\n"),
            None
        );
    }
}
