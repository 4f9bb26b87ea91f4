//! The `etmemd` command line, exactly as C etmemd parses it (spec §1.1): glibc
//! `getopt_long` over `s:l:mh`, the same validation order, the same texts on stdout, and the
//! same exit statuses (255 on failure, 0 for help).
//!
//! [`parse_args`] returns what to print instead of printing it; only glibc's own diagnostic
//! (`invalid option -- 'x'`) goes straight to stderr, as glibc writes it itself. This module
//! must not start anything.

use etmem_proto::getopt::{LongOpt, Parsed, Table, getopt_long};

/// Usage text printed by `-h` and after most errors.
pub const USAGE: &str = "\nusage of etmemd:\n    etmemd [options]\n\noptions:\n    -l|--log-level <log-level>  Log level\n    -s|--socket <sockect name>  Socket name to listen to\n    -m|--mode-systemctl         mode used to start(systemctl)\n    -h|--help                   Show this message\n";

/// What `etmemd --version` prints (our addition, like `--probe`: accepted only as the sole
/// argument, so C's option parsing and usage text stay as they are).
pub fn version_text() -> String {
    format!(
        "etmemd (etmem-rs) {}\nwire protocol and config files of openEuler etmem\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// Legend printed after an out-of-range log level.
pub const LOG_LEVEL_LEGEND: &str = "\n[0] for debug level\n[1] for info level\n[2] for warning level\n[3] for error level\ndefault level is error\n\n";

/// Line `main` prints after any parse failure.
pub const PARSE_FAILED: &str = "fail to parse parameters to start etmemd\n";

/// Most argv entries C accepts, program name included.
pub const MAX_ARGC: usize = 6;

/// Socket names of this many bytes or more are refused (C: `sun_path` minus NUL and `@`).
pub const SOCKET_NAME_LIMIT: usize = 107;

/// `etmemd --version` (ours), accepted only as the sole argument.
pub const VERSION_ARG: &str = "--version";

/// `etmemd --probe` (ours), accepted only as the sole argument: what this kernel offers for
/// tracking and moving memory.
pub const PROBE_ARG: &str = "--probe";

/// C etmemd's getopt table (spec §1.1).
pub const GETOPT: Table = Table {
    short: "s:l:mh",
    long: &LONG_OPTS,
};

const LONG_OPTS: [LongOpt; 4] = [
    LongOpt {
        name: "socket",
        has_arg: true,
        val: 's',
    },
    LongOpt {
        name: "log-level",
        has_arg: true,
        val: 'l',
    },
    LongOpt {
        name: "mode-systemctl",
        has_arg: false,
        val: 'm',
    },
    LongOpt {
        name: "help",
        has_arg: false,
        val: 'h',
    },
];

/// The four log levels of `-l` (spec §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// 0: everything, syslog LOG_DEBUG and up
    Debug,
    /// 1: LOG_INFO and up
    Info,
    /// 2: LOG_WARNING and up
    Warning,
    /// 3 (default): LOG_ERR only
    Error,
}

impl LogLevel {
    /// The level for a `-l` value.
    pub fn from_number(n: i64) -> Option<LogLevel> {
        Some(match n {
            0 => LogLevel::Debug,
            1 => LogLevel::Info,
            2 => LogLevel::Warning,
            3 => LogLevel::Error,
            _ => return None,
        })
    }
}

/// A command line that starts the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// socket name, without `@`
    pub socket: String,
    /// `-l`, default error
    pub log_level: LogLevel,
    /// `-m`: fork for systemd (`Type=forking`)
    pub systemd: bool,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Start the daemon.
    Run(Options),
    /// `-h`: the usage is in [`Parse::stdout`]; exit 0.
    Help,
    /// Invalid: print [`Parse::stdout`] and exit 255.
    Fail,
}

/// The result of parsing: the outcome and what to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parse {
    /// what to do
    pub outcome: Outcome,
    /// everything C etmemd prints on stdout for this command line, including
    /// [`PARSE_FAILED`] on failure
    pub stdout: String,
    /// messages C etmemd sends to syslog only (at error level) during parsing
    pub log: Vec<String>,
    /// the log level in force when parsing stopped (default error)
    pub log_level: LogLevel,
}

impl Parse {
    /// The process exit status C etmemd has for this outcome, if it exits now.
    pub fn exit_status(&self) -> Option<u8> {
        match self.outcome {
            Outcome::Run(_) => None,
            Outcome::Help => Some(0),
            Outcome::Fail => Some(255),
        }
    }
}

/// `strtol(s, &end, 10)` that must consume the whole string, then an `int` range check,
/// as C's `get_int_value`: leading white space and a sign are accepted, an empty string is 0.
/// On failure, the message C logs.
fn c_int_value(s: &str) -> Result<i32, String> {
    const NOT_INT: &str = "invalid value, must be type of int.";
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let mut neg = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        neg = b[i] == b'-';
        i += 1;
    }
    let digits_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if digits_start == i {
        // No conversion: strtol leaves end at the start of the string.
        return if b.is_empty() {
            Ok(0)
        } else {
            Err(NOT_INT.to_owned())
        };
    }
    if i != b.len() {
        return Err(NOT_INT.to_owned());
    }
    let magnitude: i128 = s[digits_start..i].parse().unwrap_or(i128::MAX);
    let value = if neg { -magnitude } else { magnitude };
    if value < i128::from(i64::MIN) || value > i128::from(i64::MAX) {
        return Err(NOT_INT.to_owned()); // ERANGE
    }
    i32::try_from(value).map_err(|_| {
        format!(
            "invalid value {value}, out of range [{}-{}]",
            i32::MIN,
            i32::MAX
        )
    })
}

/// Parses `argv` (`argv[0]` is the program name) as C etmemd does.
pub fn parse_args(argv: &[String]) -> Parse {
    let mut p = Parse {
        outcome: Outcome::Fail,
        stdout: String::new(),
        log: Vec::new(),
        log_level: LogLevel::Error,
    };
    if argv.len() > MAX_ARGC {
        p.stdout.push_str("error: invalid parameters!\n");
        p.stdout.push_str(PARSE_FAILED);
        return p;
    }
    if parse_options(argv, &mut p).is_err() {
        p.outcome = Outcome::Fail;
        p.stdout.push_str(PARSE_FAILED);
    }
    p
}

struct Failed;

fn parse_options(argv: &[String], p: &mut Parse) -> Result<(), Failed> {
    let is_help = |c: char| c == 'h';
    // A silent pass first: C stops at the first invalid option value, before glibc would
    // have diagnosed a later bad option, so glibc may only speak if parsing gets that far.
    let silent = getopt_long(argv, GETOPT.short, GETOPT.long, false, is_help);
    let mut socket: Option<String> = None;
    let mut systemd = false;
    let mut help = false;
    let mut parsed = 0usize;
    for item in &silent.parsed {
        match item {
            Parsed::Opt('s', arg) => {
                if socket.is_some() {
                    p.stdout.push_str("error: parse sock parameter repeated\n");
                    return Err(Failed);
                }
                let name = arg.clone().unwrap_or_default();
                if name.is_empty() {
                    return Err(Failed);
                }
                if name.len() >= SOCKET_NAME_LIMIT {
                    p.log.push(format!(
                        "length of socket name to listen should be less than {SOCKET_NAME_LIMIT}"
                    ));
                    return Err(Failed);
                }
                socket = Some(name);
            }
            Parsed::Opt('l', arg) => {
                let value = c_int_value(arg.as_deref().unwrap_or_default()).map_err(|m| {
                    p.log.push(m);
                    Failed
                })?;
                match LogLevel::from_number(i64::from(value)) {
                    Some(level) => p.log_level = level,
                    None => {
                        p.stdout
                            .push_str(&format!("error: invalid log level [{value}]\n"));
                        p.stdout.push_str(LOG_LEVEL_LEGEND);
                        return Err(Failed);
                    }
                }
            }
            Parsed::Opt('h', _) => {
                p.stdout.push_str(USAGE);
                help = true;
            }
            Parsed::Opt('m', _) => systemd = true,
            Parsed::Error => {
                // Let glibc print its own diagnostic for the same option.
                let _ = getopt_long(argv, GETOPT.short, GETOPT.long, true, is_help);
                p.stdout.push_str("error: parse parameters failed\n");
                p.stdout.push_str(USAGE);
                return Err(Failed);
            }
            Parsed::Opt(_, _) => {
                p.stdout.push_str(USAGE);
                return Err(Failed);
            }
        }
        parsed += 1;
        if help {
            break;
        }
    }
    let argc = argv.len();
    if (parsed == 0 && argc > 1)
        || (help && argc > 2)
        || (parsed > 0 && !help && argc - 1 > parsed * 2)
    {
        p.stdout.push_str("warn: useless parameters passed in\n");
        return Err(Failed);
    }
    if help {
        p.outcome = Outcome::Help;
        return Ok(());
    }
    let Some(socket) = socket else {
        p.stdout
            .push_str("error: socket name of rpc to listen must be provided\n");
        p.stdout.push_str(USAGE);
        return Err(Failed);
    };
    p.outcome = Outcome::Run(Options {
        socket,
        log_level: p.log_level,
        systemd,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Parse {
        let argv: Vec<String> = std::iter::once("etmemd")
            .chain(args.iter().copied())
            .map(str::to_owned)
            .collect();
        parse_args(&argv)
    }

    fn run(socket: &str, level: LogLevel, systemd: bool) -> Outcome {
        Outcome::Run(Options {
            socket: socket.into(),
            log_level: level,
            systemd,
        })
    }

    #[test]
    fn c_test_matrix() {
        // etmem_common_func_llt.c:82-158
        for ok in [&["-h"][..], &["-help"], &["--help"]] {
            let p = parse(ok);
            assert_eq!(p.outcome, Outcome::Help, "{ok:?}");
            assert_eq!(p.stdout, USAGE);
            assert_eq!(p.exit_status(), Some(0));
        }
        assert_eq!(
            parse(&["-l", "0", "-s", "x"]).outcome,
            run("x", LogLevel::Debug, false)
        );
        assert_eq!(
            parse(&["-s", "x"]).outcome,
            run("x", LogLevel::Error, false)
        );
        for bad in [
            &[][..],
            &["-d"],
            &["help"],
            &["---help"],
            &["-l"],
            &["-l", "0"],
            &["-l", "0", "-s"],
            &["-l", "0", "1", "-s"],
            &["-l", "0", "-l", "0"],
            &["-s", "a", "-s", "b"],
            &["-l", "0", "-s", "x", "-m", "y"],
            &["-l", "0", "-h", "-s", "x"],
            &["-l", "0", "-h"],
            &["-l", "0", "-d", "file"],
        ] {
            let p = parse(bad);
            assert_eq!(p.outcome, Outcome::Fail, "{bad:?}");
            assert_eq!(p.exit_status(), Some(255), "{bad:?}");
            assert!(p.stdout.ends_with(PARSE_FAILED), "{bad:?}: {}", p.stdout);
        }
    }

    #[test]
    fn exact_texts() {
        let u = USAGE;
        let f = PARSE_FAILED;
        let cases: [(&[&str], String); 10] = [
            (
                &[],
                format!("error: socket name of rpc to listen must be provided\n{u}{f}"),
            ),
            (&["-d"], format!("error: parse parameters failed\n{u}{f}")),
            (
                &["help"],
                format!("warn: useless parameters passed in\n{f}"),
            ),
            (
                &["-s", "a", "-s", "b"],
                format!("error: parse sock parameter repeated\n{f}"),
            ),
            (
                &["-l", "0", "-h"],
                format!("{u}warn: useless parameters passed in\n{f}"),
            ),
            (
                &["-l", "7", "-s", "x"],
                format!("error: invalid log level [7]\n{LOG_LEVEL_LEGEND}{f}"),
            ),
            (
                &["-l", "-1", "-s", "x"],
                format!("error: invalid log level [-1]\n{LOG_LEVEL_LEGEND}{f}"),
            ),
            (&["-l", "abc", "-s", "x"], f.to_owned()),
            (&["-s", ""], f.to_owned()),
            (
                &["1", "2", "3", "4", "5", "6"],
                format!("error: invalid parameters!\n{f}"),
            ),
        ];
        for (args, stdout) in cases {
            assert_eq!(parse(args).stdout, stdout, "{args:?}");
        }
    }

    #[test]
    fn syslog_only_messages() {
        let p = parse(&["-l", "abc", "-s", "x"]);
        assert_eq!(
            p.log,
            vec!["invalid value, must be type of int.".to_owned()]
        );
        let p = parse(&["-l", "9999999999", "-s", "x"]);
        assert_eq!(
            p.log,
            vec!["invalid value 9999999999, out of range [-2147483648-2147483647]".to_owned()]
        );
        let p = parse(&["-s", &"n".repeat(107)]);
        assert_eq!(p.outcome, Outcome::Fail);
        assert_eq!(
            p.log,
            vec!["length of socket name to listen should be less than 107".to_owned()]
        );
        assert_eq!(p.stdout, PARSE_FAILED);
    }

    #[test]
    fn getopt_forms_and_counting() {
        let name106 = "n".repeat(106);
        assert_eq!(
            parse(&["-s", &name106]).outcome,
            run(&name106, LogLevel::Error, false)
        );
        assert_eq!(
            parse(&["-sabc"]).outcome,
            run("abc", LogLevel::Error, false)
        );
        assert_eq!(
            parse(&["--socket=abc", "--log-level=1"]).outcome,
            run("abc", LogLevel::Info, false)
        );
        assert_eq!(
            parse(&["--sock", "abc", "--mode"]).outcome,
            run("abc", LogLevel::Error, true)
        );
        // every option counts two argv slots, -m included
        assert_eq!(
            parse(&["-m", "-s", "x", "junk"]).outcome,
            run("x", LogLevel::Error, true)
        );
        assert_eq!(
            parse(&["-l", "0", "-s", "name", "-m"]).outcome,
            run("name", LogLevel::Debug, true)
        );
        // strtol forms
        assert_eq!(
            parse(&["-l", " +2", "-s", "x"]).outcome,
            run("x", LogLevel::Warning, false)
        );
        assert_eq!(
            parse(&["-l", "", "-s", "x"]).outcome,
            run("x", LogLevel::Debug, false)
        );
        assert_eq!(parse(&["-l", "1x", "-s", "x"]).outcome, Outcome::Fail);
        // a repeated level is allowed, last wins
        assert_eq!(
            parse(&["-l0", "-l2", "-s", "x"]).outcome,
            run("x", LogLevel::Warning, false)
        );
    }
}
