//! `etmem-gen-docs OUTDIR`: writes the shell completions and man pages of etmem and etmemd
//! under OUTDIR (`completions/`, `man/man1/etmem.1`, `man/man8/etmemd.8`), the layout
//! `scripts/install` installs from. Prints each path written.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let [outdir] = args.as_slice() else {
        eprintln!("usage: etmem-gen-docs OUTDIR");
        return ExitCode::from(2);
    };
    match etmem_clidoc::write_all(std::path::Path::new(outdir)) {
        Ok(paths) => {
            // a closed stdout (`| head`) is no failure: the files are written
            let mut out = std::io::stdout().lock();
            for p in paths {
                let _ = writeln!(out, "{}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("etmem-gen-docs: {e}");
            ExitCode::FAILURE
        }
    }
}
