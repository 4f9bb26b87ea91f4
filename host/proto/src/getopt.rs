//! glibc `getopt_long`, called through FFI.
//!
//! Both binaries must parse their command lines exactly as C etmem does: permutation,
//! `-sNAME`, `--socket=NAME`, unique prefixes of long names, and glibc's own diagnostics on
//! stderr (`add: invalid option -- 'o'`). No Rust argument parser reproduces those bytes, so
//! we call the C library that defines them. clap is used elsewhere (test and lab tools).
//!
//! glibc keeps its parser state in globals; a process-wide lock serialises callers, and
//! `optind = 0` makes glibc fully re-initialise for every parse.

use std::ffi::{CString, c_char, c_int};
use std::sync::Mutex;

unsafe extern "C" {
    static mut optind: c_int;
    static mut optarg: *mut c_char;
    static mut opterr: c_int;
}

static GETOPT_LOCK: Mutex<()> = Mutex::new(());

/// One long option: `--name`, whether it takes an argument, and the short letter it maps to.
#[derive(Debug, Clone, Copy)]
pub struct LongOpt {
    /// the long name without `--`
    pub name: &'static str,
    /// true if the option takes an argument
    pub has_arg: bool,
    /// the short option character returned for it
    pub val: char,
}

/// A getopt table: glibc's short option string (`"n:s:"`, a `:` after a letter that takes
/// an argument) and the long options. The parsers keep theirs as `pub const`s, so that
/// the documentation generator (`host/clidoc`) can check its description against them.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// the short option string passed to `getopt_long`
    pub short: &'static str,
    /// the long options
    pub long: &'static [LongOpt],
}

/// What getopt returned for one option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A known option and its argument, if it takes one.
    Opt(char, Option<String>),
    /// getopt returned `?`: an unknown option or a missing argument. glibc has already
    /// printed its diagnostic to stderr (when `print_errors` was set).
    Error,
}

/// The result of parsing a whole command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Every option in the order getopt returned them, up to and including the first one the
    /// caller's `stop_after` accepted, or the first error.
    pub parsed: Vec<Parsed>,
    /// `argv` as glibc left it (permuted: options first).
    pub argv: Vec<String>,
    /// glibc's `optind` when parsing stopped.
    pub optind: usize,
}

/// Runs glibc `getopt_long` over `argv` (`argv[0]` is the program name glibc prints in its
/// diagnostics). Parsing stops at the end, at the first error, or after an option for which
/// `stop_after` returns true (C etmemd stops at `-h`).
pub fn getopt_long(
    argv: &[String],
    shortopts: &str,
    longopts: &[LongOpt],
    print_errors: bool,
    stop_after: impl Fn(char) -> bool,
) -> Outcome {
    // Arguments come from the kernel as C strings, so none contains NUL; if a caller passes
    // one, it is cut at the NUL as C would see it.
    let cstr = |s: &str| {
        let bytes = s.as_bytes();
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        CString::new(&bytes[..end]).unwrap_or_default()
    };
    let owned: Vec<CString> = argv.iter().map(|a| cstr(a)).collect();
    let mut ptrs: Vec<*mut c_char> = owned.iter().map(|c| c.as_ptr().cast_mut()).collect();
    ptrs.push(std::ptr::null_mut());
    let short = cstr(shortopts);
    let names: Vec<CString> = longopts.iter().map(|l| cstr(l.name)).collect();
    let mut table: Vec<libc::option> = longopts
        .iter()
        .zip(&names)
        .map(|(l, n)| libc::option {
            name: n.as_ptr(),
            has_arg: if l.has_arg { 1 } else { 0 },
            flag: std::ptr::null_mut(),
            val: l.val as c_int,
        })
        .collect();
    table.push(libc::option {
        name: std::ptr::null(),
        has_arg: 0,
        flag: std::ptr::null_mut(),
        val: 0,
    });
    let argc = c_int::try_from(argv.len()).unwrap_or(c_int::MAX);

    let _guard = GETOPT_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mut parsed = Vec::new();
    // SAFETY: the globals are only touched while GETOPT_LOCK is held; optind = 0 asks glibc
    // to re-initialise its parser.
    unsafe {
        optind = 0;
        opterr = c_int::from(print_errors);
    }
    loop {
        // SAFETY: `ptrs` is a NULL-terminated array of `argc` pointers to NUL-terminated
        // strings that live in `owned` for the whole loop; glibc may permute the pointer array
        // (which we own and keep mutable) but never writes to the strings. `table` ends with an
        // all-zero entry and its names live in `names`. The lock serialises glibc's globals.
        let c = unsafe {
            libc::getopt_long(
                argc,
                ptrs.as_ptr(),
                short.as_ptr(),
                table.as_ptr(),
                std::ptr::null_mut(),
            )
        };
        if c == -1 {
            break;
        }
        let ch = u8::try_from(c).map(char::from).unwrap_or('?');
        if ch == '?' || ch == ':' {
            parsed.push(Parsed::Error);
            break;
        }
        // SAFETY: optarg is set by getopt_long for an option with an argument and points into
        // one of our `owned` strings (still alive); it is NULL otherwise.
        let arg = unsafe {
            let p = optarg;
            (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
        };
        parsed.push(Parsed::Opt(ch, arg));
        if stop_after(ch) {
            break;
        }
    }
    // SAFETY: read under the lock, after the last getopt_long call.
    let optind_now = usize::try_from(unsafe { optind }).unwrap_or(0);
    let permuted = ptrs[..argv.len()]
        .iter()
        .map(|&p| {
            // SAFETY: every entry still points at one of our `owned` C strings (glibc only
            // reorders the pointers).
            unsafe { std::ffi::CStr::from_ptr(p) }
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    Outcome {
        parsed,
        argv: permuted,
        optind: optind_now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    const LONG: [LongOpt; 2] = [
        LongOpt {
            name: "socket",
            has_arg: true,
            val: 's',
        },
        LongOpt {
            name: "file",
            has_arg: true,
            val: 'f',
        },
    ];

    #[test]
    fn short_long_attached_and_prefix_forms() {
        let o = getopt_long(
            &args(&["add", "-sA", "--file=/x", "--sock", "B", "-f", "y"]),
            "f:s:",
            &LONG,
            false,
            |_| false,
        );
        assert_eq!(
            o.parsed,
            vec![
                Parsed::Opt('s', Some("A".into())),
                Parsed::Opt('f', Some("/x".into())),
                Parsed::Opt('s', Some("B".into())),
                Parsed::Opt('f', Some("y".into())),
            ]
        );
        assert_eq!(o.optind, 7);
    }

    #[test]
    fn permutes_non_options_to_the_end() {
        let o = getopt_long(
            &args(&["add", "junk", "-s", "x"]),
            "f:s:",
            &LONG,
            false,
            |_| false,
        );
        assert_eq!(o.parsed, vec![Parsed::Opt('s', Some("x".into()))]);
        assert_eq!(o.argv, args(&["add", "-s", "x", "junk"]));
        assert_eq!(o.optind, 3);
    }

    #[test]
    fn unknown_and_missing_argument_are_errors() {
        let o = getopt_long(&args(&["add", "-o"]), "f:s:", &LONG, false, |_| false);
        assert_eq!(o.parsed, vec![Parsed::Error]);
        let o = getopt_long(&args(&["add", "-s"]), "f:s:", &LONG, false, |_| false);
        assert_eq!(o.parsed, vec![Parsed::Error]);
    }

    #[test]
    fn stop_after_stops_at_once() {
        let o = getopt_long(&args(&["etmemd", "-help"]), "s:l:mh", &[], false, |c| {
            c == 'h'
        });
        assert_eq!(o.parsed, vec![Parsed::Opt('h', None)]);
    }
}
