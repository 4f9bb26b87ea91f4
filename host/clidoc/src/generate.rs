//! Shell completions (bash, zsh, fish) and man pages (`etmem.1`, `etmemd.8`) from the clap
//! descriptions of [`crate::commands`], and [`write_all`], which writes them under a
//! directory in the layout `scripts/install` takes them from.
//!
//! The texts are rendered in memory; only [`write_all`] touches the file system.

use crate::commands;
use clap::{Arg, Command};
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};
use std::path::{Path, PathBuf};

/// Why the documents could not be written.
#[derive(Debug, thiserror::Error)]
pub enum GenDocsError {
    /// A directory could not be created.
    #[error("{}: cannot create the directory: {source}", path.display())]
    CreateDir {
        /// the directory
        path: PathBuf,
        /// the error
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("{}: cannot write it: {source}", path.display())]
    Write {
        /// the file
        path: PathBuf,
        /// the error
        source: std::io::Error,
    },
    /// clap_mangen failed to render a page (it writes to memory: not expected).
    #[error("man page `{page}`: cannot render it: {source}")]
    Render {
        /// the page, e.g. `etmem.1`
        page: &'static str,
        /// the error
        source: std::io::Error,
    },
}

/// The completion script of `cmd` for `shell`.
pub fn completion(cmd: Command, shell: Shell) -> String {
    let mut cmd = cmd;
    let name = cmd.get_name().to_owned();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// An option's `-s, --socket <socket_name>` in roff.
fn option_term(arg: &Arg) -> Vec<clap_mangen::roff::Inline> {
    let mut t = Vec::new();
    if let Some(s) = arg.get_short() {
        t.push(bold(format!("-{s}")));
    }
    if let Some(l) = arg.get_long() {
        if !t.is_empty() {
            t.push(roman(", "));
        }
        t.push(bold(format!("--{l}")));
    }
    if arg.get_action().takes_values() {
        for v in arg.get_value_names().unwrap_or_default() {
            t.push(roman(" "));
            t.push(italic(v.as_str()));
        }
    }
    t
}

/// The synopsis of one sub-command: its words, positionals, then options (required bare,
/// optional in brackets).
fn command_synopsis(path: &str, cmd: &Command) -> Vec<clap_mangen::roff::Inline> {
    let mut line = vec![bold(path)];
    for a in cmd.get_positionals() {
        for v in a.get_value_names().unwrap_or_default() {
            line.push(roman(" "));
            line.push(italic(v.as_str()));
        }
    }
    for a in cmd.get_arguments().filter(|a| !a.is_positional()) {
        let mut short = String::new();
        if let Some(s) = a.get_short() {
            short = format!("-{s}");
        } else if let Some(l) = a.get_long() {
            short = format!("--{l}");
        }
        let required = a.is_required_set();
        line.push(roman(if required { " " } else { " [" }));
        line.push(bold(short));
        if a.get_action().takes_values() {
            for v in a.get_value_names().unwrap_or_default() {
                line.push(roman(" "));
                line.push(italic(v.as_str()));
            }
        }
        if !required {
            line.push(roman("]"));
        }
    }
    line
}

/// The options of `cmd` as a `.TP` list.
fn options_list(roff: &mut Roff, cmd: &Command) {
    for a in cmd.get_arguments() {
        roff.control("TP", []);
        if a.is_positional() {
            let names = a.get_value_names().unwrap_or_default();
            roff.text(names.iter().map(|v| italic(v.as_str())).collect::<Vec<_>>());
        } else {
            roff.text(option_term(a));
        }
        let help = a.get_long_help().or_else(|| a.get_help());
        let mut text = help.map(|h| h.to_string()).unwrap_or_default();
        let values: Vec<String> = a
            .get_possible_values()
            .iter()
            .map(|v| match v.get_help() {
                Some(h) => format!("{} ({h})", v.get_name()),
                None => v.get_name().to_owned(),
            })
            .collect();
        if !values.is_empty() {
            text.push_str(&format!("; one of: {}", values.join(", ")));
        }
        roff.text([roman(text)]);
    }
}

/// A `COMMANDS` section: every leaf command under `cmd` with its synopsis, what it does
/// and its options.
fn commands_section(roff: &mut Roff, cmd: &Command) {
    fn walk(roff: &mut Roff, path: &str, cmd: &Command) {
        let path = format!("{path} {}", cmd.get_name());
        if cmd.has_subcommands() {
            for sub in cmd.get_subcommands() {
                walk(roff, &path, sub);
            }
            return;
        }
        roff.control("SS", [path.as_str()]);
        roff.text(command_synopsis(&path, cmd));
        roff.control("br", []);
        if let Some(about) = cmd.get_long_about().or_else(|| cmd.get_about()) {
            roff.text([roman(about.to_string())]);
        }
        if cmd.get_arguments().next().is_some() {
            roff.control("RS", []);
            options_list(roff, cmd);
            roff.control("RE", []);
        }
    }
    roff.control("SH", ["COMMANDS"]);
    for sub in cmd.get_subcommands() {
        walk(roff, cmd.get_name(), sub);
    }
}

/// A section of plain paragraphs, `.PP` between them.
fn paragraphs(roff: &mut Roff, title: &str, paras: &[&str]) {
    roff.control("SH", [title]);
    for (i, p) in paras.iter().enumerate() {
        if i > 0 {
            roff.control("PP", []);
        }
        roff.text([roman(*p)]);
    }
}

/// A section of `.TP` entries: bold term, then text.
fn terms(roff: &mut Roff, title: &str, items: &[(&str, &str)]) {
    roff.control("SH", [title]);
    for (term, text) in items {
        roff.control("TP", []);
        roff.text([bold(*term)]);
        roff.text([roman(*text)]);
    }
}

/// The lines roff output starts with (the `\*(Aq` string); each render call of
/// clap_mangen repeats them.
const PREAMBLE: [&str; 2] = [".ie \\n(.g .ds Aq \\(aq", ".el .ds Aq '"];

/// `page` with the preamble once at the top.
fn one_preamble(page: &[u8]) -> String {
    let text = String::from_utf8_lossy(page);
    let mut out = format!("{}\n{}\n", PREAMBLE[0], PREAMBLE[1]);
    for line in text.lines().filter(|l| !PREAMBLE.contains(l)) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The title line, the NAME, SYNOPSIS and DESCRIPTION sections. The title is ours:
/// clap_mangen writes an empty date as nothing, which shifts the other fields.
fn head(man: &Man, name: &str, section: &str, page: &'static str) -> Result<Vec<u8>, GenDocsError> {
    let mut out = Vec::new();
    let render = |r: std::io::Result<()>| r.map_err(|source| GenDocsError::Render { page, source });
    let mut title = Roff::new();
    let source = format!("etmem-rs {}", commands::VERSION);
    title.control(
        "TH",
        [
            name.to_uppercase().as_str(),
            section,
            "\"\"",
            source.as_str(),
            "etmem-rs",
        ],
    );
    render(title.to_writer(&mut out))?;
    render(man.render_name_section(&mut out))?;
    render(man.render_synopsis_section(&mut out))?;
    render(man.render_description_section(&mut out))?;
    Ok(out)
}

/// `etmem.1`: the client, every object and sub-command with its options.
pub fn etmem_man() -> Result<String, GenDocsError> {
    let cmd = commands::etmem();
    let man = Man::new(cmd.clone());
    let mut out = head(&man, "etmem", "1", "etmem.1")?;
    let mut roff = Roff::new();
    roff.control("SH", ["OPTIONS"]);
    options_list(&mut roff, &cmd);
    commands_section(&mut roff, &cmd);
    terms(
        &mut roff,
        "EXIT STATUS",
        &[
            ("0", "success, or a help text asked for"),
            (
                "234",
                "usage error: no or unknown object or command, an invalid option, a \
                 required option missing (-EINVAL)",
            ),
            (
                "249",
                "more arguments than the options account for (-E2BIG)",
            ),
            (
                "186",
                "etmemd answered with an error or closed the connection (-ECOMM); its \
                 message is printed first",
            ),
            (
                "111",
                "no etmemd listens on the socket (ECONNREFUSED, a positive errno)",
            ),
            ("255", "other failures (-1)"),
        ],
    );
    paragraphs(
        &mut roff,
        "NOTES",
        &[
            "Everything is printed on standard output, except getopt's own diagnostics \
             (`add: invalid option -- 'x'`). On failure etmem prints `etmem: error N` and the \
             object's help, as C etmem does.",
            "etmemd serves root only. The configuration file path is sent as given and \
             resolved by etmemd against its own working directory.",
        ],
    );
    paragraphs(&mut roff, "SEE ALSO", &["etmemd(8)"]);
    roff.to_writer(&mut out)
        .map_err(|source| GenDocsError::Render {
            page: "etmem.1",
            source,
        })?;
    Ok(one_preamble(&out))
}

/// `etmemd.8`: the daemon, its options, exit status and environment.
pub fn etmemd_man() -> Result<String, GenDocsError> {
    let cmd = commands::etmemd();
    let man = Man::new(cmd.clone());
    let mut out = head(&man, "etmemd", "8", "etmemd.8")?;
    let mut roff = Roff::new();
    roff.control("SH", ["OPTIONS"]);
    options_list(&mut roff, &cmd);
    terms(
        &mut roff,
        "EXIT STATUS",
        &[
            (
                "0",
                "-h, --version, --probe, or the daemon stopped by SIGINT or SIGTERM",
            ),
            (
                "255",
                "the command line was refused (`fail to parse parameters to start etmemd`)",
            ),
            ("1", "the daemon could not start (socket, fork, runtime)"),
        ],
    );
    terms(
        &mut roff,
        "ENVIRONMENT",
        &[
            (
                "ETMEMD_METRICS_FILE",
                "write Prometheus text metrics to this file (node_exporter's textfile \
                 collector)",
            ),
            (
                "ETMEMD_METRICS_INTERVAL",
                "seconds between rewrites of the metrics file (default 15)",
            ),
            (
                "ETMEMD_PID_FILE",
                "the pid file of -m (default /run/etmemd.pid)",
            ),
            (
                "ETMEMD_FETCH_DIR",
                "where a relative libname of a thirdparty engine is looked up (default \
                 /usr/lib/etmem_fetch)",
            ),
            (
                "ETMEMD_WASM_CACHE",
                "the compiled-component cache of wasm engines",
            ),
            (
                "ETMEMD_WASM_MEMORY_MB",
                "the memory limit of each wasm engine, in MiB",
            ),
        ],
    );
    terms(
        &mut roff,
        "FILES",
        &[
            (
                "/etc/etmem/",
                "example configuration files (root:root, 0600)",
            ),
            ("/usr/lib/etmem_fetch/", "third-party engines"),
            (
                "/usr/lib/systemd/system/etmemd.service",
                "the systemd unit (etmemd -m)",
            ),
        ],
    );
    paragraphs(&mut roff, "SEE ALSO", &["etmem(1)"]);
    roff.to_writer(&mut out)
        .map_err(|source| GenDocsError::Render {
            page: "etmemd.8",
            source,
        })?;
    Ok(one_preamble(&out))
}

/// Every generated document: its path relative to the output directory, and its text.
pub fn documents() -> Result<Vec<(PathBuf, String)>, GenDocsError> {
    let mut docs = Vec::new();
    for (name, cmd) in [("etmem", commands::etmem()), ("etmemd", commands::etmemd())] {
        for (shell, file) in [
            (Shell::Bash, format!("{name}.bash")),
            (Shell::Zsh, format!("_{name}")),
            (Shell::Fish, format!("{name}.fish")),
        ] {
            docs.push((
                Path::new("completions").join(file),
                completion(cmd.clone(), shell),
            ));
        }
    }
    docs.push((Path::new("man/man1/etmem.1").to_path_buf(), etmem_man()?));
    docs.push((Path::new("man/man8/etmemd.8").to_path_buf(), etmemd_man()?));
    Ok(docs)
}

/// Writes every document under `outdir` (created if missing): `completions/etmem.bash`,
/// `completions/_etmem`, `completions/etmem.fish` and the same for etmemd,
/// `man/man1/etmem.1` and `man/man8/etmemd.8`. Returns the paths written.
pub fn write_all(outdir: &Path) -> Result<Vec<PathBuf>, GenDocsError> {
    let mut written = Vec::new();
    for (rel, text) in documents()? {
        let path = outdir.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| GenDocsError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, text).map_err(|source| GenDocsError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etmem_page_documents_every_command_and_option() {
        let page = etmem_man().expect("etmem.1");
        assert_eq!(page.matches(PREAMBLE[1]).count(), 1, "{page}");
        assert!(page.contains("\n.TH ETMEM 1 "), "{page}");
        for needle in [
            ".SS \"etmem obj add\"",
            ".SS \"etmem obj del\"",
            ".SS \"etmem project show\"",
            ".SS \"etmem project stats\"",
            ".SS \"etmem engine\"",
            "\\-\\-proj_name",
            "\\-\\-task_name",
            "Add configuration file",
            "one of: text (the text C etmem prints), json",
            ".SH \"EXIT STATUS\"",
        ] {
            assert!(page.contains(needle), "no `{needle}` in:\n{page}");
        }
        // `project start` has no -o
        let start = page
            .split(".SS \"etmem project start\"")
            .nth(1)
            .and_then(|s| s.split(".SS").next())
            .expect("start section");
        assert!(!start.contains("\\-\\-output"), "{start}");
    }

    #[test]
    fn etmemd_page_and_completions() {
        let page = etmemd_man().expect("etmemd.8");
        assert!(page.contains("\n.TH ETMEMD 8 "), "{page}");
        for needle in [
            "\\-\\-mode\\-systemctl",
            "\\-\\-probe",
            "ETMEMD_METRICS_FILE",
        ] {
            assert!(page.contains(needle), "no `{needle}` in:\n{page}");
        }
        let bash = completion(commands::etmem(), Shell::Bash);
        assert!(bash.contains("complete -F _etmem"), "{bash}");
        assert!(bash.contains("--proj_name"), "{bash}");
        let zsh = completion(commands::etmemd(), Shell::Zsh);
        assert!(zsh.starts_with("#compdef etmemd"), "{zsh}");
        let fish = completion(commands::etmem(), Shell::Fish);
        assert!(fish.contains("-l output"), "{fish}");
    }

    #[test]
    fn write_all_writes_the_eight_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let written = write_all(dir.path()).expect("write");
        let mut rel: Vec<String> = written
            .iter()
            .map(|p| {
                p.strip_prefix(dir.path())
                    .expect("under outdir")
                    .display()
                    .to_string()
            })
            .collect();
        rel.sort();
        assert_eq!(
            rel,
            [
                "completions/_etmem",
                "completions/_etmemd",
                "completions/etmem.bash",
                "completions/etmem.fish",
                "completions/etmemd.bash",
                "completions/etmemd.fish",
                "man/man1/etmem.1",
                "man/man8/etmemd.8",
            ]
        );
        for p in &written {
            let len = std::fs::metadata(p).expect("written").len();
            assert!(len > 200, "{}: {len} bytes", p.display());
        }
    }

    #[test]
    fn write_all_names_the_path_it_cannot_create() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "x").expect("file");
        let err = write_all(&file).expect_err("a file is no directory");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("{}/", file.display())) && msg.contains("cannot create"),
            "{msg}"
        );
    }
}
