//! The clap description of `etmem` (host/clidoc, used for completions and man pages only)
//! against the getopt tables and command words this client really parses with: every
//! object, sub-command and option must be in both, and agree on taking a value.

use crate::cli::{self, Object};
use etmem_clidoc::drift::{self, Accepts, NO_OPTIONS};

/// Everything `cli::parse` accepts, as drift::compare reads it.
fn accepted() -> Vec<Accepts> {
    let mut v = vec![
        Accepts::new("etmem", NO_OPTIONS).with_sole(&[cli::VERSION_ARG]),
        Accepts::new(&format!("etmem {}", cli::HELP_WORD), NO_OPTIONS),
    ];
    for (word, object) in cli::OBJECTS {
        let path = format!("etmem {word}");
        match object {
            // the command word is taken verbatim: no sub-commands, one table
            Object::Engine => v.push(Accepts::new(&path, cli::ENGINE_GETOPT)),
            Object::Obj | Object::Project => {
                v.push(Accepts::new(&path, NO_OPTIONS));
                v.push(Accepts::new(
                    &format!("{path} {}", cli::HELP_WORD),
                    NO_OPTIONS,
                ));
                if object == Object::Obj {
                    for (sub, _) in cli::OBJ_COMMANDS {
                        v.push(Accepts::new(&format!("{path} {sub}"), cli::OBJ_GETOPT));
                    }
                } else {
                    for (sub, cmd) in cli::PROJECT_COMMANDS {
                        v.push(Accepts::new(
                            &format!("{path} {sub}"),
                            cli::project_getopt(cmd),
                        ));
                    }
                    v.push(Accepts::new(
                        &format!("{path} {}", cli::HEATMAP_WORD),
                        cli::HEATMAP_GETOPT,
                    ));
                }
            }
        }
    }
    v
}

#[test]
fn clap_description_matches_the_getopt_tables() {
    let drifts = drift::compare(&etmem_clidoc::etmem(), &accepted());
    assert!(
        drifts.is_empty(),
        "the clap description (host/clidoc/src/commands.rs) and host/etmem/src/cli.rs \
         differ:\n{}",
        drift::report(&drifts)
    );
}

#[test]
fn a_drifted_table_is_caught() {
    // `project start` parsed with the query table: -o is then in getopt only
    let mut accepted = accepted();
    let start = accepted
        .iter_mut()
        .find(|a| a.path == ["etmem", "project", "start"])
        .expect("project start");
    start.table = cli::PROJECT_QUERY_GETOPT;
    let drifts = drift::compare(&etmem_clidoc::etmem(), &accepted);
    assert_eq!(
        drifts,
        vec![drift::Drift::Option {
            command: "etmem project start".into(),
            option: "-o|--output".into(),
            only_in: drift::Side::Getopt,
        }]
    );
}
