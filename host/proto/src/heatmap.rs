//! The access heatmap of a task (`etmem project heatmap`, our addition): the matrix etmemd
//! keeps of a task's recent rounds ([`Heatmap`]) and its three renderings, terminal text
//! ([`text`]), SVG ([`svg`]) and JSON ([`json`]).
//!
//! Rows are rounds, oldest first; columns are address buckets shared by every row. The
//! buckets split the task's scanned pages into equal shares in address order (the gaps
//! between mappings are left out of the count, so a bucket may span a gap), so
//! `bounds[i]..bounds[i + 1]` is bucket `i`'s address range. A cell counts the bucket's
//! pages scanned that round and those of them seen accessed, in 4 KiB units.
//!
//! Pure: values in, text out. It must not know where the matrix comes from or where the
//! text goes.

use std::fmt::Write as _;

/// The unit of [`Cell`]'s counts, in bytes.
pub const UNIT_BYTES: u64 = 4096;

/// One bucket of one round: pages scanned and pages seen accessed, in 4 KiB units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cell {
    /// 4 KiB units scanned in the bucket
    pub pages: u32,
    /// of those, units seen accessed in at least one pass of the round
    pub accessed: u32,
}

impl Cell {
    /// The share of the bucket's pages seen accessed, `None` when nothing was scanned.
    pub fn share(&self) -> Option<f64> {
        (self.pages > 0).then(|| f64::from(self.accessed.min(self.pages)) / f64::from(self.pages))
    }
}

/// One round of the matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// the round's number (the task's round counter)
    pub round: u64,
    /// one cell per bucket
    pub cells: Vec<Cell>,
    /// 4 KiB units the round scanned outside `bounds` (counted in no cell)
    pub outside: u64,
}

/// A task's heatmap.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Heatmap {
    /// project name
    pub project: String,
    /// engine name
    pub engine: String,
    /// task name
    pub task: String,
    /// bucket boundaries, one more than the buckets; empty before the first round
    pub bounds: Vec<u64>,
    /// rounds, oldest first
    pub rows: Vec<Row>,
}

impl Heatmap {
    /// The number of buckets.
    pub fn columns(&self) -> usize {
        self.bounds.len().saturating_sub(1)
    }

    fn first_addr(&self) -> u64 {
        self.bounds.first().copied().unwrap_or(0)
    }

    fn last_addr(&self) -> u64 {
        self.bounds.last().copied().unwrap_or(0)
    }

    fn title(&self) -> String {
        format!(
            "project `{}` engine `{}` task `{}`",
            self.project, self.engine, self.task
        )
    }
}

/// The output forms of `etmem project heatmap -o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// a terminal heatmap
    Text,
    /// an SVG document
    Svg,
    /// the matrix as JSON
    Json,
}

impl Format {
    /// The form for its `-o` word (`text`, `svg`, `json`).
    pub fn from_word(word: &str) -> Option<Format> {
        match word {
            "text" => Some(Format::Text),
            "svg" => Some(Format::Svg),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// The `-o` word of the form (also its value in the request's `eng_cmd`).
    pub fn word(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Svg => "svg",
            Format::Json => "json",
        }
    }
}

/// `heatmap` in the form `format`.
pub fn render(heatmap: &Heatmap, format: Format) -> String {
    match format {
        Format::Text => text(heatmap),
        Format::Svg => svg(heatmap),
        Format::Json => json(heatmap),
    }
}

/// The characters of the text form: nothing scanned, none accessed, then eight levels of
/// the accessed share (up to 12.5 %, 25 %, ..., 100 %).
pub const LEVELS: [char; 10] = [' ', '.', ':', '-', '=', '+', '*', '#', '%', '@'];

/// The character of a cell in the text form.
pub fn level_char(cell: &Cell) -> char {
    match cell.share() {
        None => LEVELS[0],
        Some(s) if cell.accessed == 0 || s <= 0.0 => LEVELS[1],
        Some(s) => {
            // (0, 1] onto levels 2..=9: 8 equal steps
            let step = (s * 8.0).ceil().clamp(1.0, 8.0) as usize;
            LEVELS[1 + step]
        }
    }
}

fn hex(addr: u64) -> String {
    format!("{addr:#018x}")
}

/// The terminal heatmap: a header, one line per round (oldest first, the round number then
/// one character per bucket), the address axis and the legend.
pub fn text(h: &Heatmap) -> String {
    let mut out = String::new();
    if h.rows.is_empty() || h.columns() == 0 {
        let _ = writeln!(out, "heatmap of {}: no round yet", h.title());
        return out;
    }
    let cols = h.columns();
    let scanned: u64 = h
        .rows
        .last()
        .map(|r| r.cells.iter().map(|c| u64::from(c.pages)).sum())
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "heatmap of {}: {} round(s), {} bucket(s) of {}..{} ({} KiB scanned in the last round)",
        h.title(),
        h.rows.len(),
        cols,
        hex(h.first_addr()),
        hex(h.last_addr()),
        scanned * (UNIT_BYTES / 1024)
    );
    let _ = writeln!(out, "{:>8} +{}+", "round", "-".repeat(cols));
    for r in &h.rows {
        let line: String = (0..cols)
            .map(|i| level_char(&r.cells.get(i).copied().unwrap_or_default()))
            .collect();
        let _ = write!(out, "{:>8} |{line}|", r.round);
        if r.outside > 0 {
            let _ = write!(out, " +{} KiB outside", r.outside * (UNIT_BYTES / 1024));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{:>8} +{}+", "", "-".repeat(cols));
    // the axis: first address under the first bucket, last address ending under the last
    let (first, last) = (hex(h.first_addr()), hex(h.last_addr()));
    let gap = (cols + 2).saturating_sub(first.len() + last.len()).max(1);
    let _ = writeln!(out, "{:>8} {first}{}{last}", "address", " ".repeat(gap));
    let _ = writeln!(
        out,
        "legend: ' ' nothing scanned, '.' nothing accessed, ':' '-' '=' '+' '*' '#' '%' '@' up to 12.5 %, 25 %, ..., 100 % of the bucket's pages accessed"
    );
    out
}

/// `s` with the five XML special characters escaped.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // characters XML 1.0 does not allow at all
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// The SVG cell size in pixels.
pub const SVG_CELL: usize = 10;
const SVG_LEFT: usize = 80;
const SVG_TOP: usize = 40;
const SVG_BOTTOM: usize = 50;
const SVG_RIGHT: usize = 20;

/// The fill of a cell with accessed share `s`: from blue (nothing accessed) to red (all).
fn svg_fill(s: f64) -> String {
    let s = s.clamp(0.0, 1.0);
    let mix = |cold: f64, hot: f64| (cold + (hot - cold) * s).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(49.0, 215.0),
        mix(54.0, 48.0),
        mix(149.0, 39.0)
    )
}

/// The SVG document: one `rect` per cell that scanned pages (`SVG_CELL` pixels square,
/// rows top to bottom oldest first), round numbers on the left, the first and last
/// addresses under the grid, a title with the task's names.
pub fn svg(h: &Heatmap) -> String {
    let cols = h.columns();
    let width = SVG_LEFT + cols * SVG_CELL + SVG_RIGHT;
    let height = SVG_TOP + h.rows.len() * SVG_CELL + SVG_BOTTOM;
    let title = xml_escape(&format!("access heatmap of {}", h.title()));
    let mut out = String::new();
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="monospace" font-size="10">"#
    );
    let _ = writeln!(out, "<title>{title}</title>");
    let _ = writeln!(out, r#"<text x="4" y="14">{title}</text>"#);
    if h.rows.is_empty() || cols == 0 {
        let _ = writeln!(out, r#"<text x="4" y="30">no round yet</text>"#);
        out.push_str("</svg>\n");
        return out;
    }
    let _ = writeln!(out, r#"<text x="4" y="{}">round</text>"#, SVG_TOP - 4);
    for (y, r) in h.rows.iter().enumerate() {
        let top = SVG_TOP + y * SVG_CELL;
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            SVG_LEFT - 4,
            top + SVG_CELL - 1,
            r.round
        );
        for (x, c) in r.cells.iter().take(cols).enumerate() {
            if let Some(s) = c.share() {
                let _ = writeln!(
                    out,
                    r#"<rect x="{}" y="{top}" width="{SVG_CELL}" height="{SVG_CELL}" fill="{}"><title>{}..{}: {} of {} KiB accessed</title></rect>"#,
                    SVG_LEFT + x * SVG_CELL,
                    svg_fill(s),
                    hex(h.bounds[x]),
                    hex(h.bounds[x + 1]),
                    u64::from(c.accessed) * (UNIT_BYTES / 1024),
                    u64::from(c.pages) * (UNIT_BYTES / 1024),
                );
            }
        }
    }
    let axis = SVG_TOP + h.rows.len() * SVG_CELL + 14;
    let _ = writeln!(
        out,
        r#"<text x="{SVG_LEFT}" y="{axis}">{}</text>"#,
        hex(h.first_addr())
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{axis}" text-anchor="end">{}</text>"#,
        SVG_LEFT + cols * SVG_CELL,
        hex(h.last_addr())
    );
    let _ = writeln!(
        out,
        r#"<text x="{SVG_LEFT}" y="{}">blue: no page accessed, red: every page accessed</text>"#,
        axis + 16
    );
    out.push_str("</svg>\n");
    out
}

/// `s` as a JSON string (quotes included).
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_list<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let mut out = String::from("[");
    for (i, v) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{v}");
    }
    out.push(']');
    out
}

/// The matrix as one JSON object on one line: `{"project":..,"engine":..,"task":..,
/// "unit_bytes":4096,"columns":64,"bounds":[ADDR,..],"rows":[{"round":N,
/// "outside":UNITS,"pages":[..],"accessed":[..]}]}`, rows oldest first, addresses as
/// numbers.
pub fn json(h: &Heatmap) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"{{"project":{},"engine":{},"task":{},"unit_bytes":{UNIT_BYTES},"columns":{},"bounds":{},"rows":["#,
        json_string(&h.project),
        json_string(&h.engine),
        json_string(&h.task),
        h.columns(),
        json_list(h.bounds.iter()),
    );
    for (i, r) in h.rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            r#"{{"round":{},"outside":{},"pages":{},"accessed":{}}}"#,
            r.round,
            r.outside,
            json_list(r.cells.iter().map(|c| c.pages)),
            json_list(r.cells.iter().map(|c| c.accessed)),
        );
    }
    out.push_str("]}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 4 buckets of 16 KiB from 0x10000; two rounds: the first bucket hot, the last cold,
    /// one bucket empty.
    fn sample(task: &str) -> Heatmap {
        let row = |round, accessed: [u32; 4]| Row {
            round,
            cells: accessed
                .iter()
                .enumerate()
                .map(|(i, &a)| Cell {
                    pages: if i == 2 { 0 } else { 4 },
                    accessed: a,
                })
                .collect(),
            outside: 0,
        };
        Heatmap {
            project: "p".into(),
            engine: "slide".into(),
            task: task.into(),
            bounds: vec![0x10000, 0x14000, 0x18000, 0x1c000, 0x20000],
            rows: vec![row(1, [4, 1, 0, 0]), row(2, [4, 2, 0, 0])],
        }
    }

    #[test]
    fn levels_follow_the_accessed_share() {
        let c = |pages, accessed| level_char(&Cell { pages, accessed });
        assert_eq!(c(0, 0), ' ');
        assert_eq!(c(8, 0), '.');
        assert_eq!(c(8, 1), ':');
        assert_eq!(c(8, 2), '-');
        assert_eq!(c(8, 7), '%');
        assert_eq!(c(8, 8), '@');
        assert_eq!(c(1000, 1), ':');
        // more accessed than scanned cannot happen, and reads as all
        assert_eq!(c(2, 5), '@');
    }

    #[test]
    fn text_has_a_line_per_round_and_the_address_axis() {
        let t = text(&sample("t"));
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with(
                "heatmap of project `p` engine `slide` task `t`: 2 round(s), 4 bucket(s) of 0x0000000000010000..0x0000000000020000"
            ),
            "{t}"
        );
        assert_eq!(lines[1], "   round +----+");
        assert_eq!(lines[2], "       1 |@- .|");
        assert_eq!(lines[3], "       2 |@+ .|");
        assert_eq!(lines[4], "         +----+");
        assert_eq!(lines[5], " address 0x0000000000010000 0x0000000000020000");
        assert!(lines[6].starts_with("legend: "));
        assert_eq!(lines.len(), 7);
        let empty = Heatmap {
            task: "t".into(),
            ..Heatmap::default()
        };
        assert_eq!(
            text(&empty),
            "heatmap of project `` engine `` task `t`: no round yet\n"
        );
    }

    #[test]
    fn svg_is_one_well_formed_document_with_a_rect_per_scanned_cell() {
        let h = sample("a<b>&\"c'");
        let s = svg(&h);
        assert!(s.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg "));
        assert!(s.ends_with("</svg>\n"));
        // 2 rows x 3 scanned buckets (the empty one draws nothing)
        assert_eq!(s.matches("<rect ").count(), 6);
        assert_eq!(s.matches("</rect>").count(), 6);
        // 80 + 4 * 10 + 20 wide, 40 + 2 * 10 + 50 high
        assert!(
            s.contains(r#"width="140" height="110" viewBox="0 0 140 110""#),
            "{s}"
        );
        // the task's name is escaped, never raw
        assert!(s.contains("task `a&lt;b&gt;&amp;&quot;c&apos;`"), "{s}");
        assert!(!s.contains("a<b>"));
        // every tag opened is closed: count of `<` equals count of `>` outside the prolog,
        // and the elements balance
        for tag in ["svg", "title", "text", "rect"] {
            let open =
                s.matches(&format!("<{tag} ")).count() + s.matches(&format!("<{tag}>")).count();
            assert_eq!(open, s.matches(&format!("</{tag}>")).count(), "{tag}");
        }
        // hot cell red, cold cell blue
        assert!(s.contains(r##"x="80" y="40" width="10" height="10" fill="#d73027""##));
        assert!(s.contains(r##"x="110" y="40" width="10" height="10" fill="#313695""##));
    }

    #[test]
    fn json_carries_the_matrix_and_escapes_names() {
        let j = json(&sample("q\"\\\n"));
        assert_eq!(
            j,
            concat!(
                r#"{"project":"p","engine":"slide","task":"q\"\\\n","unit_bytes":4096,"columns":4,"#,
                r#""bounds":[65536,81920,98304,114688,131072],"rows":["#,
                r#"{"round":1,"outside":0,"pages":[4,4,0,4],"accessed":[4,1,0,0]},"#,
                r#"{"round":2,"outside":0,"pages":[4,4,0,4],"accessed":[4,2,0,0]}]}"#,
                "\n"
            )
        );
        assert_eq!(json_string("\u{1}"), r#""\u0001""#);
        let v: serde_json::Value = serde_json::from_str(&j).expect("valid JSON");
        assert_eq!(v["rows"][1]["accessed"][1], 2);
        assert_eq!(v["task"], "q\"\\\n");
    }

    #[test]
    fn formats_round_trip_their_words() {
        for f in [Format::Text, Format::Svg, Format::Json] {
            assert_eq!(Format::from_word(f.word()), Some(f));
        }
        assert_eq!(Format::from_word("yaml"), None);
    }
}
