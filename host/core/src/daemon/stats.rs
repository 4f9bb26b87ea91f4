//! What `etmem project stats` and the metrics file show, and the log line of an `obj add`
//! or `obj del`: text made from statistics the caller read, no state touched.

use crate::model::TaskStats;

/// One project's statistics, for [`metrics_text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectStats {
    /// project name
    pub project: String,
    /// `project start`ed
    pub started: bool,
    /// `dry_run=yes`
    pub dry_run: bool,
    /// `(engine, task, statistics)`
    pub tasks: Vec<(String, String, TaskStats)>,
}

/// A label value in Prometheus' text format: `\`, `"` and newlines escaped.
fn prom_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The statistics of every project in Prometheus' text exposition format (for
/// node_exporter's textfile collector: `ETMEMD_METRICS_FILE`, see etmemd).
pub fn metrics_text(projects: &[ProjectStats]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut family =
        |name: &str, kind: &str, help: &str, rows: &mut dyn Iterator<Item = (String, u64)>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, v) in rows {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        };
    let proj = |p: &ProjectStats| format!("project=\"{}\"", prom_label(&p.project));
    family(
        "etmem_project_started",
        "gauge",
        "1 while the project is started.",
        &mut projects.iter().map(|p| {
            (
                format!("{},dry_run=\"{}\"", proj(p), p.dry_run),
                u64::from(p.started),
            )
        }),
    );
    let task_rows = || {
        projects.iter().flat_map(move |p| {
            p.tasks.iter().map(move |(e, t, s)| {
                (
                    format!(
                        "{},engine=\"{}\",task=\"{}\"",
                        proj(p),
                        prom_label(e),
                        prom_label(t)
                    ),
                    s,
                )
            })
        })
    };
    family(
        "etmem_task_rounds_total",
        "counter",
        "Rounds the task's engine planned.",
        &mut task_rows().map(|(l, s)| (l, s.rounds)),
    );
    family(
        "etmem_task_swapped_bytes_total",
        "counter",
        "Bytes the task's actions swapped out (in a dry run: would have).",
        &mut task_rows().map(|(l, s)| {
            (
                format!("{l},dry_run=\"{}\"", s.total.dry_run),
                s.total.swap_bytes,
            )
        }),
    );
    family(
        "etmem_task_migrated_bytes_total",
        "counter",
        "Bytes the task's actions migrated, per destination node (in a dry run: would have).",
        &mut task_rows().flat_map(|(l, s)| {
            s.total
                .migrate_bytes
                .iter()
                .map(move |(node, b)| {
                    (
                        format!("{l},node=\"{node}\",dry_run=\"{}\"", s.total.dry_run),
                        *b,
                    )
                })
                .collect::<Vec<_>>()
        }),
    );
    family(
        "etmem_task_last_round_failed",
        "gauge",
        "1 when the task's last plan failed (etmem project stats says why).",
        &mut task_rows().map(|(l, s)| (l, u64::from(s.last_error.is_some()))),
    );
    out
}

/// The text of `etmem project stats`: one line per task of `project`.
pub fn stats_text(project: &str, tasks: &[(String, String, TaskStats)]) -> String {
    let mut out = String::new();
    for (engine, task, s) in tasks {
        let mut line = format!(
            "project {project} engine {engine} task {task}: {} round(s)",
            s.rounds
        );
        if s.rounds > 0 {
            line.push_str(&format!(", last round {}: {}", s.last_round, s.last));
            line.push_str(&format!("; over all rounds: {}", s.total.amounts()));
        } else if s.last.dry_run {
            line.push_str(" (dry run)");
        }
        if let Some(e) = &s.last_error {
            line.push_str(&format!("; last round failed: {e}"));
        }
        out.push_str(&line);
        out.push('\n');
    }
    if tasks.is_empty() {
        out.push_str(&format!("project {project}: no task\n"));
    }
    out
}

/// The JSON of `etmem project stats -o json`: `{"project": .., "tasks": [{"engine": ..,
/// "task": .., "rounds": .., "last_round": .., "last": MOVED, "total": MOVED,
/// "last_error": null|".."}]}` with MOVED `{"dry_run": bool, "swap_bytes": n,
/// "migrate_bytes": {"NODE": n}}`, on one line.
pub fn stats_json(project: &str, tasks: &[(String, String, TaskStats)]) -> String {
    #[derive(serde::Serialize)]
    struct Row<'a> {
        engine: &'a str,
        task: &'a str,
        #[serde(flatten)]
        stats: &'a TaskStats,
    }
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        project: &'a str,
        tasks: Vec<Row<'a>>,
    }
    let doc = Doc {
        project,
        tasks: tasks
            .iter()
            .map(|(engine, task, stats)| Row {
                engine,
                task,
                stats,
            })
            .collect(),
    };
    // plain strings, integers and maps with integer keys: serialising cannot fail
    let mut out = serde_json::to_string(&doc).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    out.push('\n');
    out
}

/// `n kind(s)` and the first few names (`2 tasks (a, b)`, `10000 projects (p0, p1, p2,
/// ... and 9997 more)`), for the log line of an `obj add` or `obj del`.
pub(super) fn counted<'a>(kind: &str, names: impl ExactSizeIterator<Item = &'a str>) -> String {
    const SHOWN: usize = 3;
    let n = names.len();
    let plural = if n == 1 { "" } else { "s" };
    if n == 0 {
        return format!("0 {kind}s");
    }
    let shown: Vec<String> = names.take(SHOWN).map(|s| format!("`{s}`")).collect();
    let more = if n > SHOWN {
        format!(", ... and {} more", n - SHOWN)
    } else {
        String::new()
    };
    format!("{n} {kind}{plural} ({}{more})", shown.join(", "))
}
