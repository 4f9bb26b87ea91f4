//! `etmem`: the command-line client of etmemd, a drop-in for C etmem's client.
//!
//! This file only wires the pieces: [`cli`] reads the command line, [`transport`] talks to
//! the daemon, and the exact C texts live in [`help`]. Everything goes to stdout except
//! glibc getopt's own diagnostics (stderr). Write errors on stdout are ignored: a closed
//! pipe must not turn into a panic (spec B17).

mod cli;
#[cfg(test)]
mod clidoc_drift;
mod help;
mod transport;

use std::io::Write;

fn main() {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let status = match cli::parse(&argv) {
        cli::Parsed::Finish(finish) => {
            let _ = out.write_all(finish.stdout.as_bytes());
            finish.status
        }
        cli::Parsed::Run(inv) => {
            let frame = inv.request.encode();
            // `project heatmap -f FILE` (ours): the reply is held, then written to FILE; a
            // failed request prints what came as any other does
            let mut held = Vec::new();
            let sink: &mut dyn Write = match inv.out_file {
                Some(_) => &mut held,
                None => &mut out,
            };
            match (
                transport::exchange(&inv.socket, &frame, sink),
                &inv.out_file,
            ) {
                (Ok(()), None) => 0,
                (Ok(()), Some(path)) => match std::fs::write(path, &held) {
                    Ok(()) => 0,
                    Err(e) => {
                        let text = format!("write {path} failed: {e}\n");
                        let finish = cli::object_failure(inv.object, &text, -cli::EIO);
                        let _ = out.write_all(finish.stdout.as_bytes());
                        finish.status
                    }
                },
                (Err(e), _) => {
                    let _ = out.write_all(&held);
                    let finish = cli::object_failure(inv.object, &e.report(), e.ret());
                    let _ = out.write_all(finish.stdout.as_bytes());
                    finish.status
                }
            }
        }
    };
    let _ = out.flush();
    std::process::exit(i32::from(status));
}
