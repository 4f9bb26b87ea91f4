//! Golden error tests: every `tests/ui/config/err/<case>.ini` is copied into a temporary
//! directory, chmod 0600 (we run as root, so the copy is root:root), loaded with
//! `load_for_add`, and the reply the user would see is compared with `<case>.err`:
//! C's fixed text, a newline, our detail (the temp dir shown as `$DIR`), a newline.
//!
//! `ETMEM_BLESS=1 cargo test -p etmem-config --test ui` rewrites the `.err` files on
//! purpose; review the diff before committing.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn err_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/ui/config/err")
}

/// What the C client prints for a failed `obj add` (the 0xFE tag becomes `\n`).
fn reply_text(case: &Path, tmp: &Path) -> String {
    let name = case.file_name().expect("file name");
    let dst = tmp.join(name);
    std::fs::copy(case, &dst).expect("copy case");
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    match etmem_config::load_for_add(dst.to_str().expect("utf-8 path")) {
        Ok(c) => format!("unexpectedly accepted: {c:?}\n"),
        Err(e) => {
            let tmp_real = std::fs::canonicalize(tmp).expect("canonical tmp");
            let detail = e
                .to_string()
                .replace(tmp_real.to_str().expect("utf-8"), "$DIR");
            format!("{}\n{}\n", e.result().text(), detail)
        }
    }
}

#[test]
fn golden_config_errors() {
    let bless = std::env::var_os("ETMEM_BLESS").is_some_and(|v| v == "1");
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(err_dir())
        .expect("tests/ui/config/err")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "ini"))
        .collect();
    cases.sort();
    assert!(cases.len() > 50, "golden cases not found");
    let mut failures = Vec::new();
    for case in &cases {
        let got = reply_text(case, tmp.path());
        let golden = case.with_extension("err");
        if bless {
            std::fs::write(&golden, &got).expect("write .err");
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(want) if want == got => {}
            Ok(want) => failures.push(format!(
                "{}:\n--- expected\n{want}--- got\n{got}",
                case.display()
            )),
            Err(_) => failures.push(format!(
                "{}: no .err file; run with ETMEM_BLESS=1 to create it. got:\n{got}",
                case.display()
            )),
        }
    }
    // Every .err has its .ini (a renamed case must not leave a stale golden file).
    for e in std::fs::read_dir(err_dir()).expect("dir") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "err") && !p.with_extension("ini").exists() {
            failures.push(format!("{}: no matching .ini", p.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
