//! conf/etmemd.service agrees with the binary: forking type, the pid file `-m` writes, and an
//! ExecStart command line that parses to a systemd-mode start.

use etmemd::cli::{LogLevel, Options, Outcome, parse_args};
use etmemd::systemd::DEFAULT_PID_FILE;

const UNIT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../conf/etmemd.service"
));

fn service_value(key: &str) -> Vec<&'static str> {
    let mut in_service = false;
    let mut values = Vec::new();
    for line in UNIT.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if in_service
            && let Some(v) = line.strip_prefix(key).and_then(|r| r.strip_prefix('='))
        {
            values.push(v);
        }
    }
    values
}

#[test]
fn unit_matches_the_daemon() {
    assert_eq!(service_value("Type"), ["forking"]);
    assert_eq!(service_value("PIDFile"), [DEFAULT_PID_FILE]);
    let exec = service_value("ExecStart");
    assert_eq!(exec.len(), 1);
    let argv: Vec<String> = exec[0].split_whitespace().map(str::to_owned).collect();
    assert_eq!(argv[0], "/usr/bin/etmemd");
    let parsed = parse_args(&argv);
    assert_eq!(
        parsed.outcome,
        Outcome::Run(Options {
            socket: "etmemd_socket".into(),
            log_level: LogLevel::Debug,
            systemd: true,
        })
    );
    // hardening that would break /proc, /sys or move_pages must stay out
    for forbidden in [
        "ProtectProc",
        "ProtectKernelTunables",
        "ProtectControlGroups",
        "PrivateUsers",
        "MemoryDenyWriteExecute",
    ] {
        assert!(service_value(forbidden).is_empty(), "{forbidden} is set");
    }
    let caps = service_value("CapabilityBoundingSet").join(" ");
    for cap in ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_NICE"] {
        assert!(caps.contains(cap), "{cap} missing from the bounding set");
    }
}
