//! Drift between the clap description of a command line and the getopt tables that really
//! parse it.
//!
//! [`compare`] walks the clap command tree and the list of commands a parser accepts (each
//! with its getopt [`Table`] and its sole-argument options such as `--version`) and reports
//! every command or option that is in one and not the other, and every option whose
//! "takes a value" differs. Options are matched as glibc pairs them: a long option and the
//! short letter it returns, written `-s|--socket`; a short letter with no long name is `-x`,
//! a long name whose letter is not a short option is `--name`. Positional arguments are not
//! compared (getopt has none).
//!
//! It reads descriptions only; it never runs a parser.

use etmem_proto::getopt::Table;
use std::collections::BTreeMap;
use std::fmt;

/// A getopt table with no option: a command word that only dispatches (`etmem obj`).
pub const NO_OPTIONS: Table = Table {
    short: "",
    long: &[],
};

/// One command as the real parser accepts it.
#[derive(Debug, Clone)]
pub struct Accepts {
    /// The words from the program name on: `["etmem", "project", "show"]`.
    pub path: Vec<String>,
    /// The getopt table parsed after these words ([`NO_OPTIONS`] when none is).
    pub table: Table,
    /// Long options taking no value that the program checks only as its sole argument,
    /// outside getopt (`"--version"`), with their dashes.
    pub sole: Vec<&'static str>,
}

impl Accepts {
    /// A command at `path` (space-separated words) parsed with `table`.
    pub fn new(path: &str, table: Table) -> Accepts {
        Accepts {
            path: path.split_whitespace().map(str::to_owned).collect(),
            table,
            sole: Vec::new(),
        }
    }

    /// The same, with sole-argument options.
    pub fn with_sole(mut self, sole: &[&'static str]) -> Accepts {
        self.sole.extend_from_slice(sole);
        self
    }
}

/// Which description holds something the other lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// the clap description (documents)
    Clap,
    /// the getopt tables (the parsers)
    Getopt,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Clap => "the clap description",
            Side::Getopt => "the getopt tables",
        })
    }
}

/// One difference between the two descriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// A command path present on one side only.
    Command {
        /// the command, e.g. `etmem project stats`
        command: String,
        /// where it is
        only_in: Side,
    },
    /// An option present on one side only.
    Option {
        /// the command it belongs to
        command: String,
        /// `-s|--socket`, `-x` or `--name`
        option: String,
        /// where it is
        only_in: Side,
    },
    /// An option on both sides that takes a value on one only.
    TakesValue {
        /// the command it belongs to
        command: String,
        /// `-s|--socket`
        option: String,
        /// whether getopt expects a value
        getopt: bool,
        /// whether clap expects a value
        clap: bool,
    },
    /// A getopt table whose long option and short letter disagree about taking a value.
    Table {
        /// the command of the table
        command: String,
        /// the long option, with dashes
        option: String,
        /// whether the long option takes a value
        long_takes_value: bool,
    },
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let other = |s: &Side| match s {
            Side::Clap => Side::Getopt,
            Side::Getopt => Side::Clap,
        };
        let takes = |b: &bool| {
            if *b {
                "takes a value"
            } else {
                "takes no value"
            }
        };
        match self {
            Drift::Command { command, only_in } => write!(
                f,
                "command `{command}` is in {only_in} but not in {}",
                other(only_in)
            ),
            Drift::Option {
                command,
                option,
                only_in,
            } => write!(
                f,
                "`{command}`: option {option} is in {only_in} but not in {}",
                other(only_in)
            ),
            Drift::TakesValue {
                command,
                option,
                getopt,
                clap,
            } => write!(
                f,
                "`{command}`: option {option} {} in the getopt tables but {} in the clap \
                 description",
                takes(getopt),
                takes(clap)
            ),
            Drift::Table {
                command,
                option,
                long_takes_value,
            } => write!(
                f,
                "`{command}`: getopt table: {option} {} but its short letter {}",
                takes(long_takes_value),
                takes(&!long_takes_value)
            ),
        }
    }
}

/// An option by its display name (`-s|--socket`), and whether it takes a value.
type Options = BTreeMap<String, bool>;

fn name(short: Option<char>, long: Option<&str>) -> String {
    match (short, long) {
        (Some(s), Some(l)) => format!("-{s}|--{l}"),
        (Some(s), None) => format!("-{s}"),
        (None, Some(l)) => format!("--{l}"),
        (None, None) => String::new(),
    }
}

/// The short letters of a getopt short string and whether each takes a value (`:`, or
/// `::` for an optional value, counted as taking one). Leading `+`, `-` and `:` are modes.
fn shorts(spec: &str) -> BTreeMap<char, bool> {
    let chars: Vec<char> = spec.trim_start_matches(['+', '-', ':']).chars().collect();
    let mut out = BTreeMap::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let takes = chars.get(i + 1) == Some(&':');
        out.insert(c, takes);
        i += 1;
        while chars.get(i) == Some(&':') {
            i += 1;
        }
    }
    out
}

fn getopt_options(a: &Accepts, command: &str, drifts: &mut Vec<Drift>) -> Options {
    let mut shorts = shorts(a.table.short);
    let mut out = Options::new();
    for l in a.table.long {
        match shorts.get(&l.val).copied() {
            Some(takes) if takes == l.has_arg => {
                shorts.remove(&l.val);
                out.insert(name(Some(l.val), Some(l.name)), takes);
            }
            Some(_) => {
                drifts.push(Drift::Table {
                    command: command.to_owned(),
                    option: format!("--{}", l.name),
                    long_takes_value: l.has_arg,
                });
                out.insert(name(None, Some(l.name)), l.has_arg);
            }
            None => {
                out.insert(name(None, Some(l.name)), l.has_arg);
            }
        }
    }
    for (c, takes) in shorts {
        out.insert(name(Some(c), None), takes);
    }
    for s in &a.sole {
        out.insert(format!("--{}", s.trim_start_matches('-')), false);
    }
    out
}

fn clap_options(cmd: &clap::Command) -> Options {
    cmd.get_arguments()
        .filter(|a| !a.is_positional())
        .map(|a| {
            let takes = a.get_action().takes_values();
            (name(a.get_short(), a.get_long()), takes)
        })
        .collect()
}

/// Every command of the tree under `cmd` by its path (`etmem project show`).
fn clap_commands<'a>(
    cmd: &'a clap::Command,
    prefix: &str,
    out: &mut BTreeMap<String, &'a clap::Command>,
) {
    let path = if prefix.is_empty() {
        cmd.get_name().to_owned()
    } else {
        format!("{prefix} {}", cmd.get_name())
    };
    for sub in cmd.get_subcommands() {
        clap_commands(sub, &path, out);
    }
    out.insert(path, cmd);
}

/// Every difference between the clap description `cmd` and the commands `parser` accepts,
/// in a stable order (by command, then option). Empty when they agree.
pub fn compare(cmd: &clap::Command, parser: &[Accepts]) -> Vec<Drift> {
    let mut drifts = Vec::new();
    let mut clap_cmds = BTreeMap::new();
    clap_commands(cmd, "", &mut clap_cmds);
    let mut getopt_cmds: BTreeMap<String, Options> = BTreeMap::new();
    for a in parser {
        let command = a.path.join(" ");
        let opts = getopt_options(a, &command, &mut drifts);
        getopt_cmds.entry(command).or_default().extend(opts);
    }
    for (command, c) in &clap_cmds {
        let Some(g) = getopt_cmds.get(command) else {
            drifts.push(Drift::Command {
                command: command.clone(),
                only_in: Side::Clap,
            });
            continue;
        };
        let copts = clap_options(c);
        for (option, &clap) in &copts {
            match g.get(option) {
                None => drifts.push(Drift::Option {
                    command: command.clone(),
                    option: option.clone(),
                    only_in: Side::Clap,
                }),
                Some(&getopt) if getopt != clap => drifts.push(Drift::TakesValue {
                    command: command.clone(),
                    option: option.clone(),
                    getopt,
                    clap,
                }),
                Some(_) => {}
            }
        }
        for option in g.keys().filter(|o| !copts.contains_key(*o)) {
            drifts.push(Drift::Option {
                command: command.clone(),
                option: option.clone(),
                only_in: Side::Getopt,
            });
        }
    }
    for command in getopt_cmds.keys().filter(|c| !clap_cmds.contains_key(*c)) {
        drifts.push(Drift::Command {
            command: command.clone(),
            only_in: Side::Getopt,
        });
    }
    drifts
}

/// The drifts one per line, for a test's failure message.
pub fn report(drifts: &[Drift]) -> String {
    drifts.iter().map(|d| format!("{d}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use etmem_proto::getopt::LongOpt;

    const fn l(name: &'static str, has_arg: bool, val: char) -> LongOpt {
        LongOpt { name, has_arg, val }
    }

    fn tool() -> clap::Command {
        clap::Command::new("tool")
            .disable_help_flag(true)
            .disable_version_flag(true)
            .subcommand(
                clap::Command::new("run")
                    .disable_help_flag(true)
                    .arg(
                        clap::Arg::new("socket")
                            .short('s')
                            .long("socket")
                            .num_args(1),
                    )
                    .arg(
                        clap::Arg::new("mode")
                            .short('m')
                            .long("mode")
                            .action(clap::ArgAction::SetTrue),
                    )
                    .arg(clap::Arg::new("word")),
            )
    }

    const RUN: Table = Table {
        short: "s:m",
        long: &[l("socket", true, 's'), l("mode", false, 'm')],
    };

    #[test]
    fn agreeing_descriptions_have_no_drift() {
        let parser = [
            Accepts::new("tool", NO_OPTIONS),
            Accepts::new("tool run", RUN),
        ];
        assert_eq!(compare(&tool(), &parser), vec![]);
    }

    #[test]
    fn every_kind_of_drift_is_reported() {
        // -m takes a value here, -x is extra, --socket is long-only (its letter is `S`,
        // not a short option), `tool stop` is unknown to clap, `tool` itself is missing.
        const DRIFTED: Table = Table {
            short: "m:x",
            long: &[l("socket", true, 'S'), l("mode", true, 'm')],
        };
        let parser = [
            Accepts::new("tool run", DRIFTED),
            Accepts::new("tool stop", NO_OPTIONS),
        ];
        let got = compare(&tool(), &parser);
        let cmd = |c: &str| c.to_owned();
        assert_eq!(
            got,
            vec![
                Drift::Command {
                    command: cmd("tool"),
                    only_in: Side::Clap
                },
                Drift::TakesValue {
                    command: cmd("tool run"),
                    option: cmd("-m|--mode"),
                    getopt: true,
                    clap: false
                },
                Drift::Option {
                    command: cmd("tool run"),
                    option: cmd("-s|--socket"),
                    only_in: Side::Clap
                },
                Drift::Option {
                    command: cmd("tool run"),
                    option: cmd("--socket"),
                    only_in: Side::Getopt
                },
                Drift::Option {
                    command: cmd("tool run"),
                    option: cmd("-x"),
                    only_in: Side::Getopt
                },
                Drift::Command {
                    command: cmd("tool stop"),
                    only_in: Side::Getopt
                },
            ]
        );
        assert_eq!(
            got[1].to_string(),
            "`tool run`: option -m|--mode takes a value in the getopt tables but takes no \
             value in the clap description"
        );
    }

    #[test]
    fn inconsistent_table_and_sole_options() {
        const ODD: Table = Table {
            short: "s",
            long: &[l("socket", true, 's')],
        };
        let parser = [
            Accepts::new("tool", NO_OPTIONS).with_sole(&["--version"]),
            Accepts::new("tool run", ODD),
        ];
        let got = compare(&tool(), &parser);
        assert!(
            got.contains(&Drift::Table {
                command: "tool run".into(),
                option: "--socket".into(),
                long_takes_value: true
            }),
            "{got:?}"
        );
        assert!(
            got.contains(&Drift::Option {
                command: "tool".into(),
                option: "--version".into(),
                only_in: Side::Getopt
            }),
            "{got:?}"
        );
    }

    #[test]
    fn short_strings() {
        let s = shorts("+s:l::mh");
        assert_eq!(
            s.into_iter().collect::<Vec<_>>(),
            vec![('h', false), ('l', true), ('m', false), ('s', true)]
        );
    }
}
