//! The clap descriptions of `etmem` and `etmemd`: every object, sub-command and option the
//! real parsers accept (`host/etmem/src/cli.rs`, `host/etmemd/src/cli.rs` and its `main`),
//! with the value names and help wording of C etmem's usage texts (`host/etmem/src/help.rs`,
//! `etmemd::cli::USAGE`) where there is one.
//!
//! These are descriptions for documents only: no binary parses its command line with them.
//! [`crate::drift::compare`] checks them against the getopt tables, so an option added to a
//! parser and not here (or the reverse) fails a test.

use clap::builder::PossibleValue;
use clap::{Arg, ArgAction, Command, ValueHint};

/// The workspace version, shown in `--version` and the man pages.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// An option that takes one value.
fn opt(long: &'static str, short: char, value: &'static str, help: &'static str) -> Arg {
    Arg::new(long)
        .short(short)
        .long(long)
        .value_name(value)
        .num_args(1)
        .action(ArgAction::Set)
        .help(help)
}

/// A `--version` accepted only as the sole argument (ours in both binaries).
fn version_flag(what: &str) -> Arg {
    Arg::new("version")
        .long("version")
        .action(ArgAction::Version)
        .help(format!(
            "Print the version of {what} (only as the sole argument)"
        ))
}

/// The `help` word of `etmem` and of an object (not a flag: C etmem has none).
fn help_word(about: &'static str) -> Command {
    Command::new("help").about(about)
}

/// `-s|--socket` of the client.
fn client_socket() -> Arg {
    opt(
        "socket",
        's',
        "socket_name",
        "Socket name to connect (etmemd's -s, an abstract socket)",
    )
    .required(true)
}

/// `-o|--output` of `project show`, `project stats` and `engine` (ours).
fn output() -> Arg {
    opt(
        "output",
        'o',
        "format",
        "Output format (etmem-rs only), text by default",
    )
    .value_parser([
        PossibleValue::new("text").help("the text C etmem prints"),
        PossibleValue::new("json").help("one JSON document"),
    ])
}

fn obj() -> Command {
    let sub = |name: &'static str, about: &'static str| {
        Command::new(name)
            .about(about)
            .arg(
                opt("file", 'f', "conf_file", "Add configuration file")
                    .long_help(
                        "Add configuration file: an INI file owned by root:root with mode \
                         0600 or 0400, resolved against etmemd's working directory",
                    )
                    .value_hint(ValueHint::FilePath)
                    .required(true),
            )
            .arg(client_socket())
    };
    Command::new("obj")
        .about("Add or delete the projects, engines and tasks of a configuration file")
        .subcommand_required(true)
        .subcommand(sub(
            "add",
            "Add the projects, engines and tasks of a configuration file",
        ))
        .subcommand(sub(
            "del",
            "Delete the projects, engines and tasks of a configuration file",
        ))
        .subcommand(help_word("Show the help of etmem obj"))
}

fn project() -> Command {
    let name =
        |required: bool| opt("name", 'n', "proj_name", "Add project name").required(required);
    Command::new("project")
        .about("Start, stop, show and count the rounds of projects")
        .subcommand_required(true)
        .subcommand(
            Command::new("show")
                .about("Show every project, or the one named with -n")
                .arg(name(false))
                .arg(client_socket())
                .arg(output()),
        )
        .subcommand(
            Command::new("start")
                .about("Start the tasks of a project")
                .arg(name(true))
                .arg(client_socket()),
        )
        .subcommand(
            Command::new("stop")
                .about("Stop the tasks of a project")
                .arg(name(true))
                .arg(client_socket()),
        )
        .subcommand(
            Command::new("stats")
                .about(
                    "Per task: rounds, what the last and all rounds moved, the last plan \
                     error (etmem-rs only)",
                )
                .arg(name(true))
                .arg(client_socket())
                .arg(output()),
        )
        .subcommand(
            Command::new("heatmap")
                .about(
                    "A task's access heatmap: its last rounds by address range, as text, SVG \
                     or JSON (etmem-rs only)",
                )
                .arg(name(true))
                .arg(client_socket())
                .arg(opt("task_name", 't', "task_name", "task to show").required(true))
                .arg(opt(
                    "engine",
                    'e',
                    "engine_name",
                    "engine of the task, when two engines have a task of that name",
                ))
                .arg(
                    opt("output", 'o', "format", "Output format, text by default").value_parser([
                        PossibleValue::new("text").help("a terminal heatmap"),
                        PossibleValue::new("svg").help("an SVG picture"),
                        PossibleValue::new("json").help("the matrix with its addresses"),
                    ]),
                )
                .arg(
                    opt("file", 'f', "file", "Write to this file instead of stdout")
                        .value_hint(ValueHint::FilePath),
                ),
        )
        .subcommand(help_word("Show the help of etmem project"))
}

fn engine() -> Command {
    Command::new("engine")
        .about("Send a command to an engine of a project")
        .arg(
            Arg::new("eng_cmd")
                .value_name("eng_cmd")
                .required(true)
                .help(
                    "Engine command, taken verbatim (cslide: showtaskpages, showhostpages); \
                     `help` shows the help of etmem engine",
                ),
        )
        .arg(opt("proj_name", 'n', "proj_name", "project engine belongs to").required(true))
        .arg(opt("socket", 's', "socket_name", "socket name to connect").required(true))
        .arg(opt("engine", 'e', "engine_name", "engine to execute cmd").required(true))
        .arg(opt("task_name", 't', "task_name", "task for cmd"))
        .arg(output())
}

/// The `etmem` client: `etmem OBJECT COMMAND [options]`.
pub fn etmem() -> Command {
    Command::new("etmem")
        .bin_name("etmem")
        .version(VERSION)
        .about("the command-line client of etmemd")
        .long_about(
            "etmem sends one command to etmemd over its abstract unix socket and prints the \
             reply. It is a drop-in for openEuler's C etmem client: same objects, options, \
             output and exit statuses.\n\n\
             Options are parsed as glibc getopt_long does: -s NAME, -sNAME, --socket NAME, \
             --socket=NAME and unique prefixes of long names (--sock) all work; an option \
             given twice keeps its last value.",
        )
        .disable_help_flag(true)
        .disable_version_flag(true)
        .disable_help_subcommand(true)
        .subcommand_required(true)
        .override_usage("etmem OBJECT COMMAND [options]\n       etmem help\n       etmem --version")
        .arg(version_flag("etmem"))
        .subcommand(obj())
        .subcommand(project())
        .subcommand(engine())
        .subcommand(help_word("Show the usage of etmem"))
}

/// The `etmemd` daemon: `etmemd -s NAME [-l LEVEL] [-m]`.
pub fn etmemd() -> Command {
    Command::new("etmemd")
        .bin_name("etmemd")
        .version(VERSION)
        .about("the etmem memory-tiering daemon")
        .long_about(
            "etmemd finds the cold memory of chosen processes and moves it somewhere cheaper \
             (swap or zram, or a slower NUMA node), as the projects, engines and tasks that \
             etmem adds from configuration files say. It listens on an abstract unix socket \
             and serves root only. A drop-in for openEuler's C etmemd: same options, \
             configuration files, output and wire protocol.\n\n\
             Options are parsed as glibc getopt_long does; at most five arguments are \
             accepted.",
        )
        .disable_help_flag(true)
        .disable_version_flag(true)
        .override_usage(
            "etmemd -s socket_name [-l log-level] [-m]\n       etmemd -h\n       \
             etmemd --version\n       etmemd --probe",
        )
        .arg(
            opt("log-level", 'l', "log-level", "Log level")
                .long_help("Log level: 0 debug, 1 info, 2 warning, 3 error (the default)")
                .value_parser([
                    PossibleValue::new("0").help("debug"),
                    PossibleValue::new("1").help("info"),
                    PossibleValue::new("2").help("warning"),
                    PossibleValue::new("3").help("error (the default)"),
                ]),
        )
        .arg(
            opt("socket", 's', "socket_name", "Socket name to listen to").long_help(
                "Socket name to listen to: an abstract unix socket, shorter than 107 bytes; \
                 required unless -h",
            ),
        )
        .arg(
            Arg::new("mode-systemctl")
                .short('m')
                .long("mode-systemctl")
                .action(ArgAction::SetTrue)
                .help("mode used to start(systemctl)")
                .long_help(
                    "mode used to start(systemctl): fork, write the pid file \
                     (/run/etmemd.pid) and return once the socket listens (Type=forking)",
                ),
        )
        .arg(
            Arg::new("help")
                .short('h')
                .long("help")
                .action(ArgAction::Help)
                .help("Show this message"),
        )
        .arg(version_flag("etmemd"))
        .arg(
            Arg::new("probe")
                .long("probe")
                .action(ArgAction::SetTrue)
                .help(
                    "List what this kernel offers for tracking and moving memory, then exit \
                     (only as the sole argument)",
                ),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_accepts_both_descriptions() {
        // clap's own consistency checks (duplicate ids or shorts, bad settings)
        etmem().debug_assert();
        etmemd().debug_assert();
    }

    #[test]
    fn descriptions_parse_the_documented_examples() {
        // Not how the binaries parse; a check that the description means what it says.
        let m = etmem()
            .try_get_matches_from([
                "etmem",
                "engine",
                "showtaskpages",
                "-n",
                "p",
                "-s",
                "x",
                "-e",
                "cslide",
            ])
            .expect("engine line");
        let (name, sub) = m.subcommand().expect("a sub-command");
        assert_eq!(name, "engine");
        assert_eq!(
            sub.get_one::<String>("eng_cmd").map(String::as_str),
            Some("showtaskpages")
        );
        assert!(
            etmem()
                .try_get_matches_from(["etmem", "project", "show", "-s", "x", "-o", "yaml"])
                .is_err(),
            "-o takes text or json only"
        );
        assert!(
            etmem()
                .try_get_matches_from(["etmem", "project", "start", "-s", "x", "-o", "json"])
                .is_err(),
            "start has no -o"
        );
        let d = etmemd()
            .try_get_matches_from(["etmemd", "-l", "1", "-s", "name", "-m"])
            .expect("etmemd line");
        assert!(d.get_flag("mode-systemctl"));
        assert_eq!(
            d.get_one::<String>("log-level").map(String::as_str),
            Some("1")
        );
    }
}
