//! The clap description of `etmemd` (host/clidoc, used for completions and man pages only)
//! against the getopt table the daemon really parses with (`etmemd::cli::GETOPT`) and its
//! sole-argument options (`--version`, `--probe`): every option must be in both and agree
//! on taking a value.

use etmem_clidoc::drift::{self, Accepts, Drift, Side};
use etmem_proto::getopt::{LongOpt, Table};
use etmemd::cli;

fn accepted(table: Table) -> Vec<Accepts> {
    vec![Accepts::new("etmemd", table).with_sole(&[cli::VERSION_ARG, cli::PROBE_ARG])]
}

#[test]
fn clap_description_matches_the_getopt_table() {
    let drifts = drift::compare(&etmem_clidoc::etmemd(), &accepted(cli::GETOPT));
    assert!(
        drifts.is_empty(),
        "the clap description (host/clidoc/src/commands.rs) and host/etmemd/src/cli.rs \
         differ:\n{}",
        drift::report(&drifts)
    );
}

#[test]
fn a_drifted_table_is_caught() {
    // -m made to take a value, and a new -d|--debug the description does not have
    const DRIFTED: Table = Table {
        short: "s:l:m:hd",
        long: &[
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
                has_arg: true,
                val: 'm',
            },
            LongOpt {
                name: "help",
                has_arg: false,
                val: 'h',
            },
            LongOpt {
                name: "debug",
                has_arg: false,
                val: 'd',
            },
        ],
    };
    let drifts = drift::compare(&etmem_clidoc::etmemd(), &accepted(DRIFTED));
    assert_eq!(
        drifts,
        vec![
            Drift::TakesValue {
                command: "etmemd".into(),
                option: "-m|--mode-systemctl".into(),
                getopt: true,
                clap: false,
            },
            Drift::Option {
                command: "etmemd".into(),
                option: "-d|--debug".into(),
                only_in: Side::Getopt,
            },
        ]
    );
}
