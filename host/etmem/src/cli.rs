//! The `etmem` command line: top-level dispatch (spec §2.1) and the `obj`, `project` and
//! `engine` sub-commands (spec §2.2-§2.4), exactly as C etmem parses them.
//!
//! [`parse`] takes `argv` and returns either a request to send or a finished outcome (the
//! exact stdout text and exit status). It does no I/O of its own; the only side effect is
//! glibc `getopt_long`'s diagnostic on stderr (`add: invalid option -- 'o'`), which is
//! part of C etmem's output and cannot be reproduced otherwise. This module must not touch
//! sockets or print anything itself: `main` prints, `transport` talks to the daemon.
//!
//! Return values follow C etmem: each object's `do_cmd` returns an `int` (0, a negative
//! errno, -1, or a positive errno from `connect`); on non-zero `main` prints
//! `etmem: error <n>` with `n` that signed value in decimal (`%d`), then the object help,
//! and exits with `n & 0xff`. Spec §2.5 pins this reading: a daemon error returns -ECOMM
//! and is shown as `etmem: error -70` with exit 186 (= -70 & 0xff).

use etmem_proto::getopt::{LongOpt, Parsed as Opt, Table, getopt_long};
use etmem_proto::heatmap::Format as HeatmapFormat;
use etmem_proto::{Command, Request};

use crate::help;

/// `EINVAL`: usage errors in `obj` and `project`, a missing object or command.
pub const EINVAL: i32 = 22;
/// `E2BIG`: the argument-count rule.
pub const E2BIG: i32 = 7;
/// `ECOMM`: every receive-side failure of the transport.
pub const ECOMM: i32 = 70;
/// `EPERM`: a request longer than 512 bytes.
pub const EPERM: i32 = 1;
/// `EIO`: `project heatmap -f FILE` could not write FILE (ours): exit 251.
pub const EIO: i32 = 5;

/// The top-level word that prints the usage (`etmem help`), and the sub-command word that
/// prints an object's help (`etmem obj help`).
pub const HELP_WORD: &str = "help";

/// `etmem --version` (ours), accepted only as the sole argument.
pub const VERSION_ARG: &str = "--version";

/// The objects by their command-line word.
pub const OBJECTS: [(&str, Object); 3] = [
    ("obj", Object::Obj),
    ("project", Object::Project),
    ("engine", Object::Engine),
];

/// The sub-commands of `etmem obj` by their word.
pub const OBJ_COMMANDS: [(&str, Command); 2] = [("add", Command::ObjAdd), ("del", Command::ObjDel)];

/// The sub-commands of `etmem project` by their word; `stats` is ours (a C etmemd refuses
/// it).
pub const PROJECT_COMMANDS: [(&str, Command); 4] = [
    ("show", Command::ProjectShow),
    ("start", Command::ProjectStart),
    ("stop", Command::ProjectStop),
    ("stats", Command::ProjectStats),
];

/// getopt table of `etmem obj add|del` (spec §2.2).
pub const OBJ_GETOPT: Table = Table {
    short: "f:s:",
    long: &[long("file", 'f'), long("socket", 's')],
};

/// getopt table of `etmem project start|stop` (spec §2.3): C's options.
pub const PROJECT_GETOPT: Table = Table {
    short: "n:s:",
    long: &[long("name", 'n'), long("socket", 's')],
};

/// getopt table of `etmem project show|stats`: C's options and our `-o|--output text|json`.
pub const PROJECT_QUERY_GETOPT: Table = Table {
    short: "n:s:o:",
    long: &[long("name", 'n'), long("socket", 's'), long("output", 'o')],
};

/// getopt table of `etmem engine <eng_cmd>` (spec §2.4); the long name of `-n` is
/// `proj_name`.
pub const ENGINE_GETOPT: Table = Table {
    short: "n:s:e:t:o:",
    long: &[
        long("proj_name", 'n'),
        long("socket", 's'),
        long("engine", 'e'),
        long("task_name", 't'),
        // ours: `-o json` asks the engine for JSON (wire command 8)
        long("output", 'o'),
    ],
};

/// `etmem project heatmap` (ours): a task's access heatmap; a C etmemd refuses it.
pub const HEATMAP_WORD: &str = "heatmap";

/// getopt table of `etmem project heatmap` (ours).
pub const HEATMAP_GETOPT: Table = Table {
    short: "n:s:t:e:o:f:",
    long: &[
        long("name", 'n'),
        long("socket", 's'),
        long("task_name", 't'),
        long("engine", 'e'),
        long("output", 'o'),
        long("file", 'f'),
    ],
};

/// The three objects of the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// `etmem obj add|del`
    Obj,
    /// `etmem project start|stop|show`
    Project,
    /// `etmem engine <eng_cmd>`
    Engine,
}

impl Object {
    /// The object for its command-line word.
    pub fn from_word(word: &str) -> Option<Object> {
        OBJECTS.iter().find(|(w, _)| *w == word).map(|&(_, o)| o)
    }

    /// The object's help text.
    pub fn help(self) -> &'static str {
        match self {
            Object::Obj => help::OBJ_HELP,
            Object::Project => help::PROJECT_HELP,
            Object::Engine => help::ENGINE_HELP,
        }
    }
}

/// A command ready to be sent to the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The object, for the help printed after a transport failure.
    pub object: Object,
    /// The abstract socket name given with `-s`.
    pub socket: String,
    /// The request frame's fields.
    pub request: Request,
    /// `project heatmap -f FILE` (ours): the reply goes to this file instead of stdout.
    pub out_file: Option<String>,
}

/// What the process prints on stdout and its exit status, when no request is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// Everything written to stdout.
    pub stdout: String,
    /// The exit status (C's `main` return value & 0xff).
    pub status: u8,
}

/// The result of reading the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Send this request.
    Run(Invocation),
    /// Print and exit without talking to the daemon.
    Finish(Finish),
}

/// A sub-command that failed before any transport: the lines it printed and the `int`
/// it returned to C's `main`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdFailure {
    /// The lines printed by the object (each ends with `\n`).
    pub text: String,
    /// The C return value (never 0).
    pub ret: i32,
    /// The help printed after the failure, when not the object's (our commands' own).
    pub help: Option<&'static str>,
}

impl CmdFailure {
    fn new(ret: i32, lines: &[&str]) -> CmdFailure {
        let mut text = String::new();
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        CmdFailure {
            text,
            ret,
            help: None,
        }
    }

    fn with_help(self, help: &'static str) -> CmdFailure {
        CmdFailure {
            help: Some(help),
            ..self
        }
    }
}

/// The outcome C's `main` produces when an object's `do_cmd` returned `ret != 0` after
/// printing `text`: `etmem: error <ret>`, the object help, exit `ret & 0xff`.
pub fn object_failure(object: Object, text: &str, ret: i32) -> Finish {
    Finish {
        stdout: format!("{text}etmem: error {ret}\n{}", object.help()),
        status: exit_status(ret),
    }
}

/// The exit status of a C `main` that returns `ret` (`ret & 0xff`).
pub fn exit_status(ret: i32) -> u8 {
    ret.to_le_bytes()[0]
}

/// Reads the whole command line (`argv[0]` is the program name) as C etmem's `main` does.
pub fn parse(argv: &[String]) -> Parsed {
    let usage = |status| {
        Parsed::Finish(Finish {
            stdout: help::USAGE.to_owned(),
            status,
        })
    };
    let einval = exit_status(-EINVAL);
    let Some(word) = argv.get(1) else {
        return usage(einval);
    };
    if argv.len() == 2 && word == HELP_WORD {
        return usage(0);
    }
    // our addition: C etmem answers `--version` with its usage and -EINVAL
    if argv.len() == 2 && word == VERSION_ARG {
        return Parsed::Finish(Finish {
            stdout: format!("etmem (etmem-rs) {}\n", env!("CARGO_PKG_VERSION")),
            status: 0,
        });
    }
    let Some(object) = Object::from_word(word) else {
        return usage(einval);
    };
    let sub = &argv[2..];
    match sub.first().map(String::as_str) {
        None => Parsed::Finish(Finish {
            stdout: object.help().to_owned(),
            status: einval,
        }),
        Some(HELP_WORD) => Parsed::Finish(Finish {
            stdout: object.help().to_owned(),
            status: 0,
        }),
        Some(_) => match parse_object(object, sub) {
            Ok(invocation) => Parsed::Run(invocation),
            Err(f) => Parsed::Finish(match f.help {
                Some(help) => Finish {
                    stdout: format!("{}etmem: error {}\n{help}", f.text, f.ret),
                    status: exit_status(f.ret),
                },
                None => object_failure(object, &f.text, f.ret),
            }),
        },
    }
}

/// Parses `sub` (`sub[0]` is the sub-command word, also getopt's program name) for `object`.
pub fn parse_object(object: Object, sub: &[String]) -> Result<Invocation, CmdFailure> {
    match object {
        Object::Obj => parse_obj(sub),
        Object::Project => parse_project(sub),
        Object::Engine => parse_engine(sub),
    }
}

/// Options as the C objects collect them: the last value of each option wins.
#[derive(Debug, Default)]
struct Values {
    socket: Option<String>,
    file: Option<String>,
    name: Option<String>,
    engine: Option<String>,
    task: Option<String>,
    /// `-o|--output` of `project stats|show|heatmap` and `engine` (ours)
    output: Option<String>,
}

/// Why the getopt stage failed.
enum GetoptFailure {
    /// getopt returned `?`; C prints `argv[optind]`, `(null)` past the end.
    Invalid { at: String },
    /// The argument-count rule (spec §2.2) rejected the line.
    Useless,
}

const USELESS: &str = "warn: etmem useless parameters passed in";

const fn long(name: &'static str, val: char) -> LongOpt {
    LongOpt {
        name,
        has_arg: true,
        val,
    }
}

/// Runs glibc getopt over `sub`, then applies the argument-count rule: fail when at least
/// one option was parsed and `argc - 1 > 2 * options_parsed` (`argc` counts `sub[0]`).
fn getopt(sub: &[String], table: Table) -> Result<Values, GetoptFailure> {
    let outcome = getopt_long(sub, table.short, table.long, true, |_| false);
    let mut values = Values::default();
    let mut count = 0usize;
    for parsed in outcome.parsed {
        match parsed {
            Opt::Error => {
                let at = outcome
                    .argv
                    .get(outcome.optind)
                    .cloned()
                    .unwrap_or_else(|| "(null)".to_owned());
                return Err(GetoptFailure::Invalid { at });
            }
            Opt::Opt(c, arg) => {
                let slot = match c {
                    's' => &mut values.socket,
                    'f' => &mut values.file,
                    'n' => &mut values.name,
                    'e' => &mut values.engine,
                    't' => &mut values.task,
                    'o' => &mut values.output,
                    _ => continue,
                };
                *slot = arg;
                count += 1;
            }
        }
    }
    if count > 0 && sub.len().saturating_sub(1) > 2 * count {
        return Err(GetoptFailure::Useless);
    }
    Ok(values)
}

fn useless() -> CmdFailure {
    CmdFailure::new(-E2BIG, &[USELESS])
}

const SOCKET_MISSING: &str = "socket name to connect must all be given, please check.";

/// `etmem obj add|del` (spec §2.2).
fn parse_obj(sub: &[String]) -> Result<Invocation, CmdFailure> {
    let word = sub.first().map(String::as_str).unwrap_or_default();
    let Some(&(_, cmd)) = OBJ_COMMANDS.iter().find(|(w, _)| *w == word) else {
        return Err(CmdFailure::new(
            -1,
            &[
                &format!("obj cmd {word} is not supported."),
                "obj_parse_cmd fail",
            ],
        ));
    };
    let values = match getopt(sub, OBJ_GETOPT) {
        Ok(v) => v,
        Err(GetoptFailure::Invalid { at }) => {
            return Err(CmdFailure::new(
                -EINVAL,
                &[&format!("invalid option: {at}"), "obj_parse_args fail"],
            ));
        }
        Err(GetoptFailure::Useless) => return Err(useless()),
    };
    let Some(socket) = values.socket else {
        return Err(CmdFailure::new(
            -EINVAL,
            &[SOCKET_MISSING, "obj_check_params fail"],
        ));
    };
    let Some(file) = values.file else {
        return Err(CmdFailure::new(
            -EINVAL,
            &[
                "file name must be given in add command.",
                "obj_check_params fail",
            ],
        ));
    };
    let mut request = Request::new(cmd);
    request.file_name = Some(file);
    Ok(Invocation {
        object: Object::Obj,
        socket,
        request,
        out_file: None,
    })
}

/// `etmem project start|stop|show` (spec §2.3).
fn parse_project(sub: &[String]) -> Result<Invocation, CmdFailure> {
    let word = sub.first().map(String::as_str).unwrap_or_default();
    // our addition: a task's access heatmap (a C etmemd refuses it)
    if word == HEATMAP_WORD {
        return parse_heatmap(sub).map_err(|f| f.with_help(help::HEATMAP_HELP));
    }
    // `stats` is our addition: what the rounds of each task did
    let Some(&(_, cmd)) = PROJECT_COMMANDS.iter().find(|(w, _)| *w == word) else {
        return Err(CmdFailure::new(
            -1,
            &[&format!("project cmd {word} is not supported")],
        ));
    };
    let table = project_getopt(cmd);
    let values = match getopt(sub, table) {
        Ok(v) => v,
        Err(GetoptFailure::Invalid { at }) => {
            return Err(CmdFailure::new(
                -EINVAL,
                &[&format!("invalid option: {at}")],
            ));
        }
        Err(GetoptFailure::Useless) => return Err(useless()),
    };
    let Some(socket) = values.socket else {
        return Err(CmdFailure::new(-EINVAL, &[SOCKET_MISSING]));
    };
    if cmd != Command::ProjectShow && values.name.is_none() {
        return Err(CmdFailure::new(
            -EINVAL,
            &["project name must be given, please check"],
        ));
    }
    let json = match values.output.as_deref() {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => {
            return Err(CmdFailure::new(
                -EINVAL,
                &[&format!("output must be text or json, found {other}")],
            ));
        }
    };
    // JSON: `project show` becomes our command 7 (a C etmemd refuses it rather than print
    // its table), `project stats` says so in its `eng_cmd`
    let cmd = match cmd {
        Command::ProjectShow if json => Command::ProjectShowJson,
        other => other,
    };
    let mut request = Request::new(cmd);
    request.proj_name = values.name;
    if json && cmd == Command::ProjectStats {
        request.eng_cmd = Some("json".to_string());
    }
    Ok(Invocation {
        object: Object::Project,
        socket,
        request,
        out_file: None,
    })
}

/// `etmem project heatmap -n NAME -t TASK [-e ENGINE] -s SOCKET [-o text|svg|json]
/// [-f FILE]` (ours): wire command 9, the form in `eng_cmd`; `-f` stays in the client.
fn parse_heatmap(sub: &[String]) -> Result<Invocation, CmdFailure> {
    let values = match getopt(sub, HEATMAP_GETOPT) {
        Ok(v) => v,
        Err(GetoptFailure::Invalid { at }) => {
            return Err(CmdFailure::new(
                -EINVAL,
                &[&format!("invalid option: {at}")],
            ));
        }
        Err(GetoptFailure::Useless) => return Err(useless()),
    };
    let Some(socket) = values.socket else {
        return Err(CmdFailure::new(-EINVAL, &[SOCKET_MISSING]));
    };
    let Some(name) = values.name else {
        return Err(CmdFailure::new(
            -EINVAL,
            &["project name must be given, please check"],
        ));
    };
    let Some(task) = values.task else {
        return Err(CmdFailure::new(
            -EINVAL,
            &["task name must be given, please check"],
        ));
    };
    let format = match values.output.as_deref() {
        None => HeatmapFormat::Text,
        Some(word) => HeatmapFormat::from_word(word).ok_or_else(|| {
            CmdFailure::new(
                -EINVAL,
                &[&format!("output must be text, svg or json, found {word}")],
            )
        })?,
    };
    let mut request = Request::new(Command::TaskHeatmap);
    request.proj_name = Some(name);
    request.task_name = Some(task);
    request.eng_name = values.engine;
    request.eng_cmd = Some(format.word().to_string());
    Ok(Invocation {
        object: Object::Project,
        socket,
        request,
        out_file: values.file,
    })
}

/// The getopt table of a `project` sub-command: `project stats` (ours) and `project show`
/// also take `-o|--output text|json`; start and stop keep C's options.
pub fn project_getopt(cmd: Command) -> Table {
    if matches!(cmd, Command::ProjectStats | Command::ProjectShow) {
        PROJECT_QUERY_GETOPT
    } else {
        PROJECT_GETOPT
    }
}

/// `etmem engine <eng_cmd>` (spec §2.4). The command word is taken verbatim, whatever it is.
fn parse_engine(sub: &[String]) -> Result<Invocation, CmdFailure> {
    const CHECK_FAIL: &str = "engine_check_params fail";
    let values = match getopt(sub, ENGINE_GETOPT) {
        Ok(v) => v,
        Err(GetoptFailure::Invalid { at }) => {
            return Err(CmdFailure::new(
                -1,
                &[&format!("invalid options: {at}"), "engine_parse_args fail"],
            ));
        }
        Err(GetoptFailure::Useless) => return Err(useless()),
    };
    let Some(socket) = values.socket else {
        return Err(CmdFailure::new(
            -1,
            &[
                "socket name to connect must be given, please check.",
                CHECK_FAIL,
            ],
        ));
    };
    let Some(proj_name) = values.name else {
        return Err(CmdFailure::new(
            -1,
            &["project name must be given, please check.", CHECK_FAIL],
        ));
    };
    // The command word is argv[0] after `engine`, so it is always present: C's third check
    // (`engine command must be given, please check.`) cannot fire from a command line.
    let Some(eng_cmd) = sub.first().cloned() else {
        return Err(CmdFailure::new(
            -1,
            &["engine command must be given, please check.", CHECK_FAIL],
        ));
    };
    let Some(eng_name) = values.engine else {
        return Err(CmdFailure::new(
            -1,
            &["engine name must be given, please check.", CHECK_FAIL],
        ));
    };
    let cmd = match values.output.as_deref() {
        None | Some("text") => Command::EngineCmd,
        Some("json") => Command::EngineCmdJson,
        Some(other) => {
            return Err(CmdFailure::new(
                -1,
                &[
                    &format!("output must be text or json, found {other}"),
                    CHECK_FAIL,
                ],
            ));
        }
    };
    let mut request = Request::new(cmd);
    request.proj_name = Some(proj_name);
    request.eng_name = Some(eng_name);
    request.eng_cmd = Some(eng_cmd);
    request.task_name = values.task;
    Ok(Invocation {
        object: Object::Engine,
        socket,
        request,
        out_file: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<String> {
        std::iter::once("etmem")
            .chain(line.split_whitespace())
            .map(str::to_owned)
            .collect()
    }

    fn run(line: &str) -> Invocation {
        match parse(&argv(line)) {
            Parsed::Run(i) => i,
            Parsed::Finish(f) => panic!("`{line}` did not parse: {f:?}"),
        }
    }

    fn finish(line: &str) -> Finish {
        match parse(&argv(line)) {
            Parsed::Finish(f) => f,
            Parsed::Run(i) => panic!("`{line}` unexpectedly parsed: {i:?}"),
        }
    }

    #[test]
    fn version_is_printed_only_as_the_sole_argument() {
        let v = finish("--version");
        assert_eq!(v.status, 0);
        assert_eq!(
            v.stdout,
            format!("etmem (etmem-rs) {}\n", env!("CARGO_PKG_VERSION"))
        );
        // anywhere else it is what C makes of it: not an object, the usage and -EINVAL
        let other = finish("--version project");
        assert_eq!(other.status, exit_status(-EINVAL));
        assert_eq!(other.stdout, help::USAGE);
    }

    #[test]
    fn project_stats_is_our_request_6_and_needs_a_name() {
        let i = run("project stats -n p -s sock");
        assert_eq!(i.request.cmd, 6);
        assert_eq!(i.request.proj_name.as_deref(), Some("p"));
        let j = run("project stats -n p -s sock -o json");
        assert_eq!(j.request.eng_cmd.as_deref(), Some("json"));
        assert_eq!(
            run("project stats -n p -s sock --output text")
                .request
                .eng_cmd,
            None
        );
        let bad = finish("project stats -n p -s sock -o yaml");
        assert_eq!(bad.status, exit_status(-EINVAL));
        assert!(
            bad.stdout
                .contains("output must be text or json, found yaml"),
            "{}",
            bad.stdout
        );
        // show takes it too (our command 7); start and stop keep C's options
        let show = run("project show -s sock -o json");
        assert_eq!(
            (show.request.cmd, show.request.proj_name.as_deref()),
            (7, None)
        );
        assert_eq!(run("project show -n p -s sock -o text").request.cmd, 4);
        assert_eq!(
            finish("project start -n p -s sock -o json").status,
            exit_status(-EINVAL)
        );
        let f = finish("project stats -s sock");
        assert_eq!(f.status, exit_status(-EINVAL));
        assert!(
            f.stdout.contains("project name must be given"),
            "{}",
            f.stdout
        );
    }

    #[test]
    fn engine_output_json_is_our_request_8() {
        let i = run("engine showtaskpages -n p -e cslide -t t1 -s sock -o json");
        assert_eq!(
            i.request.encode(),
            "proj_name p file_name - cmd 8 eng_name cslide eng_cmd showtaskpages task_name t1"
        );
        assert_eq!(
            run("engine showtaskpages -n p -e cslide -s sock --output text")
                .request
                .cmd,
            5
        );
        let bad = finish("engine showhostpages -n p -e cslide -s sock -o yaml");
        assert_eq!(bad.status, exit_status(-1));
        assert!(
            bad.stdout.starts_with(
                "output must be text or json, found yaml\nengine_check_params fail\netmem: error -1\n"
            ),
            "{}",
            bad.stdout
        );
    }

    #[test]
    fn project_heatmap_is_our_request_9() {
        let i = run("project heatmap -n p -t t1 -s sock");
        assert_eq!(
            i.request.encode(),
            "proj_name p file_name - cmd 9 eng_name - eng_cmd text task_name t1"
        );
        assert_eq!(i.out_file, None);
        assert_eq!(i.object, Object::Project);
        let i = run("project heatmap -n p -t t1 -e slide -s sock -o svg -f /tmp/h.svg");
        assert_eq!(
            i.request.encode(),
            "proj_name p file_name - cmd 9 eng_name slide eng_cmd svg task_name t1"
        );
        assert_eq!(i.out_file.as_deref(), Some("/tmp/h.svg"));
        assert_eq!(
            run("project heatmap --name p --task_name t -s s --output json")
                .request
                .eng_cmd
                .as_deref(),
            Some("json")
        );
        for (line, needle) in [
            ("project heatmap -n p -s s", "task name must be given"),
            ("project heatmap -t t -s s", "project name must be given"),
            ("project heatmap -n p -t t", "socket name to connect"),
            (
                "project heatmap -n p -t t -s s -o png",
                "output must be text, svg or json, found png",
            ),
        ] {
            let f = finish(line);
            assert_eq!(f.status, exit_status(-EINVAL), "{line}");
            assert!(f.stdout.contains(needle), "{line}: {}", f.stdout);
            assert!(f.stdout.ends_with(help::HEATMAP_HELP), "{line}");
        }
    }

    #[test]
    fn exit_status_is_low_byte_of_c_return() {
        assert_eq!(exit_status(-ECOMM), 186);
        assert_eq!(exit_status(-EINVAL), 234);
        assert_eq!(exit_status(-E2BIG), 249);
        assert_eq!(exit_status(-1), 255);
        assert_eq!(exit_status(111), 111);
        assert_eq!(exit_status(0), 0);
    }

    #[test]
    fn frames_match_spec_examples() {
        assert_eq!(
            run("project start -n test -s s").request.encode(),
            "proj_name test file_name - cmd 2 eng_name - eng_cmd - task_name -"
        );
        assert_eq!(
            run("obj add -f /etc/etmem/slide_conf.yaml -s s")
                .request
                .encode(),
            "proj_name - file_name /etc/etmem/slide_conf.yaml cmd 0 eng_name - eng_cmd - task_name -"
        );
        assert_eq!(
            run("engine showtaskpages -n test -e cslide -t t1 -s s")
                .request
                .encode(),
            "proj_name test file_name - cmd 5 eng_name cslide eng_cmd showtaskpages task_name t1"
        );
    }

    #[test]
    fn last_value_wins_and_forms_mix() {
        let i = run("obj del --file=a -sX -f b --sock Y");
        assert_eq!(i.socket, "Y");
        assert_eq!(i.request.file_name.as_deref(), Some("b"));
        assert_eq!(i.request.command(), Some(Command::ObjDel));
    }

    #[test]
    fn argument_count_rule() {
        // one option, argc 4: 3 > 2 fails
        assert_eq!(finish("project show -s x junk").status, 249);
        // attached form: argc 3, one option: 2 > 2 holds, junk is ignored as in C
        assert_eq!(
            run("project show -sx junk").request.command(),
            Some(Command::ProjectShow)
        );
        // no option parsed: the rule does not apply, the required check fires
        assert_eq!(finish("project show junk").status, 234);
    }

    #[test]
    fn engine_word_is_verbatim() {
        let i = run("engine --weird -n p -e e -s s");
        assert_eq!(i.request.eng_cmd.as_deref(), Some("--weird"));
        assert_eq!(i.request.task_name, None);
    }

    #[test]
    fn missing_argument_reports_null() {
        let f = finish("obj add -s");
        assert!(
            f.stdout
                .starts_with("invalid option: (null)\nobj_parse_args fail\n")
        );
        assert_eq!(f.status, 234);
    }
}
