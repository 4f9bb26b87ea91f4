//! C's file rules (spec §4.1): realpath, not a directory, root:root, mode 0600 or 0400,
//! at most 10 MiB; each failure is `Inval` with a message naming the file and the rule.
//! These tests run as root (they chown).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use etmem_config::*;
use etmem_proto::OptResult;

const GOOD: &str = "[project]\nname=p\nloop=1\ninterval=1\nsleep=1\n";

fn write(dir: &Path, name: &str, text: &[u8], mode: u32) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    p
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn modes_0600_and_0400_are_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    for mode in [0o600, 0o400] {
        let p = write(dir.path(), &format!("m{mode:o}.ini"), GOOD.as_bytes(), mode);
        let c = load_for_add(s(&p)).expect("accepted");
        assert_eq!(c.projects[0].name, "p");
        assert_eq!(c.path, std::fs::canonicalize(&p).expect("canonical"));
        assert_eq!(load_for_del(s(&p)).expect("del").projects, ["p"]);
    }
}

#[test]
fn other_modes_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    for mode in [0o644, 0o700, 0o640, 0o200, 0o000, 0o666] {
        let p = write(dir.path(), &format!("m{mode:o}.ini"), GOOD.as_bytes(), mode);
        let e = load_for_add(s(&p)).expect_err("refused");
        assert_eq!(e.result(), OptResult::Inval, "{mode:o}");
        let msg = e.to_string();
        assert!(
            matches!(e, ConfigError::Mode { mode: m, .. } if m == mode & 0o777),
            "{mode:o}: {msg}"
        );
        assert!(
            msg.contains(&format!("mode {:04o}", mode & 0o777)) && msg.contains("0600 or 0400"),
            "{msg}"
        );
        assert!(matches!(load_for_del(s(&p)), Err(ConfigError::Mode { .. })));
    }
}

#[test]
fn owner_must_be_root_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (uid, gid) in [(1000, 0), (0, 1000), (65534, 65534)] {
        let p = write(
            dir.path(),
            &format!("o{uid}_{gid}.ini"),
            GOOD.as_bytes(),
            0o600,
        );
        std::os::unix::fs::chown(&p, Some(uid), Some(gid)).expect("chown (tests run as root)");
        let e = load_for_add(s(&p)).expect_err("refused");
        assert_eq!(e.result(), OptResult::Inval);
        assert!(
            matches!(e, ConfigError::Owner { uid: u, gid: g, .. } if u == uid && g == gid),
            "{e}"
        );
        assert!(
            e.to_string().contains(&format!("uid {uid} gid {gid}")),
            "{e}"
        );
    }
}

#[test]
fn size_limit_is_10_mib_inclusive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limit = usize::try_from(MAX_CONFIG_FILE_SIZE).expect("fits");
    assert_eq!(limit, 10 * 1024 * 1024);
    let mut text = GOOD.as_bytes().to_vec();
    // Pad with comment lines up to exactly the limit.
    while text.len() < limit {
        let room = limit - text.len();
        let line = room.min(1000);
        text.push(b'#');
        text.extend(std::iter::repeat_n(b'x', line.saturating_sub(2)));
        if line >= 2 {
            text.push(b'\n');
        }
    }
    assert_eq!(text.len(), limit);
    let p = write(dir.path(), "limit.ini", &text, 0o600);
    assert_eq!(
        load_for_add(s(&p)).expect("exactly 10 MiB").projects.len(),
        1
    );

    text.push(b'\n');
    let p = write(dir.path(), "over.ini", &text, 0o600);
    let e = load_for_add(s(&p)).expect_err("over the limit");
    assert_eq!(e.result(), OptResult::Inval);
    assert!(
        matches!(e, ConfigError::TooLarge { size, .. } if size == MAX_CONFIG_FILE_SIZE + 1),
        "{e}"
    );
    assert!(e.to_string().contains("10485761 bytes"), "{e}");
}

#[test]
fn missing_file_is_inval_with_the_path_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("absent.ini");
    let e = load_for_add(s(&p)).expect_err("missing");
    assert_eq!(e.result(), OptResult::Inval);
    assert!(matches!(e, ConfigError::Resolve { .. }), "{e}");
    assert!(e.to_string().contains(s(&p)), "{e}");
    assert!(matches!(
        load_for_del(s(&p)),
        Err(ConfigError::Resolve { .. })
    ));
}

#[test]
fn directory_is_inval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("conf.ini");
    std::fs::create_dir(&d).expect("mkdir");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let e = load_for_add(s(&d)).expect_err("directory");
    assert_eq!(e.result(), OptResult::Inval);
    assert!(matches!(e, ConfigError::Directory { .. }), "{e}");
    assert!(e.to_string().contains("is a directory"), "{e}");
}

/// Watches one path for `IN_OPEN` (an open for reading or writing; `O_PATH` opens and
/// `stat` do not count), so a test can prove a file was never opened.
struct OpenWatch(std::os::fd::OwnedFd);

impl OpenWatch {
    fn new(path: &Path) -> OpenWatch {
        use rustix::fs::inotify;
        let fd = inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC)
            .expect("inotify_init1");
        inotify::add_watch(&fd, path, inotify::WatchFlags::OPEN).expect("inotify_add_watch");
        OpenWatch(fd)
    }

    /// Whether the path was opened since [`OpenWatch::new`].
    fn opened(&self) -> bool {
        let mut buf = [0u8; 4096];
        match rustix::io::read(&self.0, &mut buf) {
            Ok(n) => n > 0,
            Err(e) => {
                assert_eq!(e, rustix::io::Errno::AGAIN, "inotify read: {e}");
                false
            }
        }
    }
}

/// Runs `load_for_add(path)` on a thread and returns its error; fails if it does not
/// return within 10 s (a blocking open of a fifo without a writer would never return) or
/// if it accepts the file.
fn refused_within_deadline(path: &Path) -> ConfigError {
    let (tx, rx) = std::sync::mpsc::channel();
    let p = s(path).to_string();
    std::thread::spawn(move || {
        let _ = tx.send(load_for_add(&p).err());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(10)) {
        Ok(Some(e)) => e,
        Ok(None) => panic!("{} was accepted", path.display()),
        Err(_) => panic!(
            "load_for_add({}) blocked: it opened the file",
            path.display()
        ),
    }
}

#[test]
fn fifo_is_refused_without_being_opened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("fifo.ini");
    let st = std::process::Command::new("mkfifo")
        .arg("-m")
        .arg("600")
        .arg(&f)
        .status()
        .expect("mkfifo runs");
    assert!(st.success());
    let watch = OpenWatch::new(&f);
    let e = refused_within_deadline(&f);
    assert!(!watch.opened(), "the fifo was opened");
    assert_eq!(e.result(), OptResult::Inval);
    assert!(
        matches!(e, ConfigError::NotRegular { kind: "a fifo", .. }),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "config file `{}`: is a fifo, expected a regular file",
            f.display()
        )
    );
    assert!(matches!(
        load_for_del(s(&f)),
        Err(ConfigError::NotRegular { kind: "a fifo", .. })
    ));
    assert!(!watch.opened(), "the fifo was opened by obj del");
}

#[test]
fn devices_are_refused_without_being_opened() {
    // /dev/null itself: other processes open it all the time, so only the outcome is
    // checked there; a private node of the same device (1,3) proves no open happens.
    let e = refused_within_deadline(Path::new("/dev/null"));
    assert_eq!(e.result(), OptResult::Inval);
    assert_eq!(
        e.to_string(),
        "config file `/dev/null`: is a character device, expected a regular file"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let node = dir.path().join("null.ini");
    // tests run as root
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &node,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o600),
        rustix::fs::makedev(1, 3),
    )
    .expect("mknod");
    let watch = OpenWatch::new(&node);
    let e = refused_within_deadline(&node);
    assert!(!watch.opened(), "the device node was opened");
    assert!(
        matches!(
            e,
            ConfigError::NotRegular {
                kind: "a character device",
                ..
            }
        ),
        "{e}"
    );
    // a socket is refused the same way
    let sock = dir.path().join("sock.ini");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
    let e = refused_within_deadline(&sock);
    assert!(
        matches!(
            e,
            ConfigError::NotRegular {
                kind: "a socket",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn a_regular_file_is_read_through_its_checked_descriptor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), "ok.ini", GOOD.as_bytes(), 0o400);
    let watch = OpenWatch::new(&p);
    assert_eq!(load_for_add(s(&p)).expect("accepted").projects[0].name, "p");
    assert!(
        watch.opened(),
        "a regular file is opened for reading once checked"
    );
}

#[test]
fn symlink_is_resolved_and_the_target_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = write(dir.path(), "real.ini", GOOD.as_bytes(), 0o600);
    let link = dir.path().join("link.ini");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let c = load_for_add(s(&link)).expect("accepted through the link");
    assert_eq!(c.path, std::fs::canonicalize(&target).expect("canonical"));
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    assert!(matches!(
        load_for_add(s(&link)),
        Err(ConfigError::Mode { mode: 0o644, .. })
    ));
}

#[test]
fn relative_path_resolves_against_cwd() {
    // The only test here that changes the cwd; the others use absolute paths.
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "rel.ini", GOOD.as_bytes(), 0o600);
    std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
    std::env::set_current_dir(dir.path().join("sub")).expect("chdir");
    let c = load_for_add("../rel.ini").expect("relative path");
    assert_eq!(
        c.path,
        std::fs::canonicalize(dir.path().join("rel.ini")).expect("canonical")
    );
    assert!(matches!(
        load_for_add("rel.ini"),
        Err(ConfigError::Resolve { .. })
    ));
    std::env::set_current_dir("/").expect("chdir back");
}

#[test]
fn file_rules_come_before_syntax() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), "bad.ini", b"garbage\n", 0o644);
    assert!(matches!(load_for_add(s(&p)), Err(ConfigError::Mode { .. })));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let e = load_for_add(s(&p)).expect_err("syntax");
    assert_eq!(e.result(), OptResult::InterErr);
    assert!(matches!(e, ConfigError::Syntax { line: 1, .. }), "{e}");
}
