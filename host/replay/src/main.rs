//! `etmem-replay --engine slide|cslide|PATH.so|PATH.wasm [--ops-name NAME]
//! [--engine-key k=v]... [--task-key k=v]... [--check] FILE`: replays the rounds etmemd
//! recorded in FILE (`[task] record_scans`) through the engine and prints, per round, the
//! actions it would take. `--check` exits 1 when a round differs from what was recorded.

use etmem_replay::{EngineChoice, Overrides, ReplayError, key_value, replay, round_text};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: etmem-replay --engine slide|cslide|PATH.so|PATH.wasm \
[--ops-name NAME] [--engine-key k=v]... [--task-key k=v]... [--check] FILE";

struct Args {
    engine: EngineChoice,
    overrides: Overrides,
    check: bool,
    file: PathBuf,
}

fn args() -> Result<Args, ReplayError> {
    let usage = |why: String| ReplayError::Usage(format!("{why}\n{USAGE}"));
    let mut it = std::env::args().skip(1);
    let (mut engine, mut ops, mut file, mut check) = (None, None, None, false);
    let mut overrides = Overrides::default();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .ok_or_else(|| usage(format!("{flag} needs a value")))
        };
        match a.as_str() {
            "--engine" => engine = Some(value("--engine")?),
            "--ops-name" => ops = Some(value("--ops-name")?),
            "--engine-key" => overrides
                .engine
                .push(key_value("--engine-key", &value("--engine-key")?)?),
            "--task-key" => overrides
                .task
                .push(key_value("--task-key", &value("--task-key")?)?),
            "--check" => check = true,
            "-h" | "--help" => return Err(ReplayError::Usage(USAGE.to_string())),
            f if f.starts_with('-') => return Err(usage(format!("unknown option `{f}`"))),
            f if file.is_none() => file = Some(PathBuf::from(f)),
            f => return Err(usage(format!("one FILE only, found `{f}` too"))),
        }
    }
    let engine = engine.ok_or_else(|| usage("--engine is required".to_string()))?;
    Ok(Args {
        engine: EngineChoice::parse(&engine, ops)?,
        overrides,
        check,
        file: file.ok_or_else(|| usage("FILE is required".to_string()))?,
    })
}

fn run() -> Result<bool, ReplayError> {
    let a = args()?;
    let rounds = etmem_host::record::read_file(&a.file)?;
    let replayed = replay(&a.engine, &rounds, &a.overrides, &a.file)?;
    let mut same = true;
    for r in &replayed {
        println!("{}", round_text(r));
        same &= r.same_as_recorded();
    }
    Ok(same || !a.check)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("etmem-replay: some rounds differ from what was recorded");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("etmem-replay: {e}");
            ExitCode::from(2)
        }
    }
}
