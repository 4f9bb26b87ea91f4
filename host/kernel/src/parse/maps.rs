//! `/proc/PID/maps` and `/proc/PID/smaps`: the VMAs of a process (spec §6.3).
//!
//! Unlike C etmem (B10) a last line without `\n` is parsed, the path keeps its spaces and
//! loses its newline, and lines of any length are accepted. This module never opens files.

use thiserror::Error;

/// Why a maps or smaps text could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MapsError {
    /// A VMA header line did not have the `start-end perms offset dev inode` shape.
    #[error("line {line}: expected `start-end perms offset maj:min inode [path]`, found `{text}`")]
    BadLine {
        /// 1-based line number
        line: usize,
        /// the offending line (cut to 120 characters)
        text: String,
    },
}

/// The four permission characters of a maps line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Perms {
    /// `r`
    pub read: bool,
    /// `w`
    pub write: bool,
    /// `x`
    pub exec: bool,
    /// 4th character other than `p` (may-share)
    pub shared: bool,
}

/// One virtual memory area.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vma {
    /// first address
    pub start: u64,
    /// one past the last address
    pub end: u64,
    /// permissions
    pub perms: Perms,
    /// file offset
    pub offset: u64,
    /// device major
    pub dev_major: u32,
    /// device minor
    pub dev_minor: u32,
    /// inode (0 for anonymous memory)
    pub inode: u64,
    /// the path or pseudo-path (`[heap]`), spaces kept, newline removed; empty if none
    pub path: String,
    /// the `VmFlags:` two-letter flags (smaps only; `None` when read from maps)
    pub vm_flags: Option<Vec<String>>,
    /// `Rss:` in kB (smaps only)
    pub rss_kb: Option<u64>,
    /// `Swap:` in kB (smaps only)
    pub swap_kb: Option<u64>,
    /// `AnonHugePages:` in kB (smaps only)
    pub anon_huge_kb: Option<u64>,
    /// `KernelPageSize:` in kB (smaps only): the page size backing the VMA, larger than
    /// the base page only for hugetlb VMAs (THP VMAs say the base size)
    pub kernel_page_kb: Option<u64>,
}

impl Vma {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// True when the VMA has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The anonymous rule of spec §6.3: not may-share, not executable, and (inode 0 or
    /// writable); and, unlike C etmem, not one of the kernel's special mappings
    /// (`[vvar]`, `[vvar_vclock]`, `[vdso]`, `[vsyscall]`): they pass the C rule, but the
    /// kernel refuses to swap or migrate them (MADV_PAGEOUT: EINVAL).
    pub fn is_anonymous(&self) -> bool {
        !self.perms.shared
            && !self.perms.exec
            && (self.inode == 0 || self.perms.write)
            && !self.is_special()
    }

    /// True for the kernel's special mappings (pseudo-paths `[vvar]`, `[vvar_vclock]`,
    /// `[vdso]`, `[vsyscall]`), which hold no pages of the process's own.
    pub fn is_special(&self) -> bool {
        matches!(
            self.path.as_str(),
            "[vvar]" | "[vvar_vclock]" | "[vdso]" | "[vsyscall]"
        )
    }

    /// True when the VMA is locked in memory (`lo` in smaps' VmFlags: mlock, VM_LOCKED);
    /// false when it came from maps, which has no flags.
    pub fn is_locked(&self) -> bool {
        self.has_vm_flags(&["lo"])
    }

    /// True when every flag of `flags` is among the VMA's `VmFlags` (false when the VMA
    /// came from maps, which has no flags, unless `flags` is empty).
    pub fn has_vm_flags<S: AsRef<str>>(&self, flags: &[S]) -> bool {
        if flags.is_empty() {
            return true;
        }
        match &self.vm_flags {
            None => false,
            Some(have) => flags
                .iter()
                .all(|f| have.iter().any(|h| h.as_str() == f.as_ref())),
        }
    }

    /// True when `[addr, addr + len)` lies inside this VMA.
    pub fn contains_range(&self, addr: u64, len: u64) -> bool {
        addr >= self.start && addr.checked_add(len).is_some_and(|e| e <= self.end)
    }
}

/// Which VMAs a scan keeps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VmaFilter {
    /// keep only VMAs passing the anonymous rule
    pub anon_only: bool,
    /// keep only VMAs whose `VmFlags` has every one of these (e.g. `ht`); needs smaps
    pub vm_flags: Vec<String>,
    /// read smaps even when no flag is asked for: the caller wants each VMA's `VmFlags`
    pub smaps: bool,
}

impl VmaFilter {
    /// True when `vma` passes the filter.
    pub fn keep(&self, vma: &Vma) -> bool {
        (!self.anon_only || vma.is_anonymous()) && vma.has_vm_flags(&self.vm_flags)
    }

    /// True when the filter needs smaps (VmFlags) rather than maps.
    pub fn needs_smaps(&self) -> bool {
        self.smaps || !self.vm_flags.is_empty()
    }
}

fn cut(s: &str) -> String {
    s.chars().take(120).collect()
}

/// Splits off the next space-separated field, skipping leading spaces.
fn field(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start_matches(' ');
    if s.is_empty() {
        return None;
    }
    Some(s.split_once(' ').unwrap_or((s, "")))
}

/// Parses one maps header line. `None` when the line does not have the shape.
fn parse_header(line: &str) -> Option<Vma> {
    let (range, rest) = field(line)?;
    let (perms, rest) = field(rest)?;
    let (offset, rest) = field(rest)?;
    let (dev, rest) = field(rest)?;
    let (inode, rest) = field(rest)?;
    let (start, end) = range.split_once('-')?;
    let start = u64::from_str_radix(start, 16).ok()?;
    let end = u64::from_str_radix(end, 16).ok()?;
    if end < start {
        return None;
    }
    let p = perms.as_bytes();
    if p.len() != 4 {
        return None;
    }
    let (maj, min) = dev.split_once(':')?;
    Some(Vma {
        start,
        end,
        perms: Perms {
            read: p[0] == b'r',
            write: p[1] == b'w',
            exec: p[2] == b'x',
            shared: p[3] != b'p',
        },
        offset: u64::from_str_radix(offset, 16).ok()?,
        dev_major: u32::from_str_radix(maj, 16).ok()?,
        dev_minor: u32::from_str_radix(min, 16).ok()?,
        inode: inode.parse().ok()?,
        path: rest.trim_start_matches(' ').to_owned(),
        ..Vma::default()
    })
}

/// The non-empty lines of `text` with their 1-based numbers. `text` is the whole file made
/// UTF-8 once (`String::from_utf8_lossy`, borrowed when it already is) rather than line by
/// line: a bad sequence cannot span a `'\n'`, so the lines are the same.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n')
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| (i + 1, l))
}

/// Parses `/proc/PID/maps`. A last line without `\n` is fine; paths keep their spaces.
pub fn parse_maps(bytes: &[u8]) -> Result<Vec<Vma>, MapsError> {
    let text = String::from_utf8_lossy(bytes);
    lines(&text)
        .map(|(n, l)| {
            parse_header(l).ok_or_else(|| MapsError::BadLine {
                line: n,
                text: cut(l),
            })
        })
        .collect()
}

fn kb(value: &str) -> Option<u64> {
    value.split_ascii_whitespace().next()?.parse().ok()
}

/// Parses `/proc/PID/smaps`: header lines like maps, then `Key: value` lines, of which
/// `VmFlags`, `Rss`, `Swap`, `AnonHugePages` and `KernelPageSize` are kept.
pub fn parse_smaps(bytes: &[u8]) -> Result<Vec<Vma>, MapsError> {
    let mut out: Vec<Vma> = Vec::new();
    let text = String::from_utf8_lossy(bytes);
    for (n, l) in lines(&text) {
        // Attribute lines start with a capitalised key followed by `:`; header lines start
        // with a hex digit and contain `-` before the first space.
        let first = l.split(' ').next().unwrap_or("");
        if let Some(key) = first.strip_suffix(':')
            && !key.contains('-')
        {
            let value = &l[first.len()..];
            let Some(cur) = out.last_mut() else {
                return Err(MapsError::BadLine {
                    line: n,
                    text: cut(l),
                });
            };
            match key {
                "VmFlags" => {
                    cur.vm_flags = Some(value.split_ascii_whitespace().map(String::from).collect())
                }
                "Rss" => cur.rss_kb = kb(value),
                "Swap" => cur.swap_kb = kb(value),
                "AnonHugePages" => cur.anon_huge_kb = kb(value),
                "KernelPageSize" => cur.kernel_page_kb = kb(value),
                _ => {}
            }
            continue;
        }
        out.push(parse_header(l).ok_or_else(|| MapsError::BadLine {
            line: n,
            text: cut(l),
        })?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]
7f1c00000000-7f1c00200000 rw-p 00000000 00:00 0 \n\
7f1c10000000-7f1c10001000 r-xp 00002000 fd:01 1234                       /usr/lib/libc.so.6
7f1c20000000-7f1c20004000 rw-s 00000000 00:05 99                         /dev/shm/x
7f1c30000000-7f1c30002000 rw-p 00001000 fd:01 555                        /data/my file with spaces (deleted)
7f1c40000000-7f1c40001000 r--p 00000000 fd:01 556                        /ro/file";

    #[test]
    fn maps_fields_and_anonymous_rule() {
        let v = parse_maps(MAPS.as_bytes()).expect("parse");
        assert_eq!(v.len(), 6);
        assert_eq!(v[0].start, 0x55d0c0a00000);
        assert_eq!(v[0].end, 0x55d0c0a21000);
        assert_eq!(v[0].path, "[heap]");
        assert!(v[0].is_anonymous());
        assert_eq!(v[1].path, "");
        assert!(v[1].is_anonymous());
        // executable file mapping
        assert!(!v[2].is_anonymous());
        assert_eq!(
            (v[2].dev_major, v[2].dev_minor, v[2].inode),
            (0xfd, 1, 1234)
        );
        assert_eq!(v[2].offset, 0x2000);
        // shared
        assert!(v[3].perms.shared);
        assert!(!v[3].is_anonymous());
        // private writable file: anonymous by the rule; long path with spaces, no newline
        assert_eq!(v[4].path, "/data/my file with spaces (deleted)");
        assert!(v[4].is_anonymous());
        // read-only file, last line without newline
        assert_eq!(v[5].path, "/ro/file");
        assert!(!v[5].is_anonymous());
    }

    #[test]
    fn the_kernels_special_mappings_are_not_anonymous() {
        let m = "7ffd1c5f2000-7ffd1c5f6000 r--p 00000000 00:00 0                          [vvar]
7ffd1c5f6000-7ffd1c5f8000 r-xp 00000000 00:00 0                          [vdso]
7ffd1c500000-7ffd1c521000 rw-p 00000000 00:00 0                          [stack]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
";
        let v = parse_maps(m.as_bytes()).expect("parse");
        let anon: Vec<&str> = v
            .iter()
            .filter(|v| v.is_anonymous())
            .map(|v| v.path.as_str())
            .collect();
        // [vvar] is r--p with inode 0: the C rule alone would keep it
        assert_eq!(anon, vec!["[stack]"]);
        assert!(v[0].is_special() && v[1].is_special() && !v[2].is_special());
    }

    #[test]
    fn maps_rejects_garbage_with_line_number() {
        let err = parse_maps(b"00400000-00401000 r-xp 0 fd:01 1 /x\nnot a line\n")
            .expect_err("must fail");
        assert_eq!(
            err,
            MapsError::BadLine {
                line: 2,
                text: "not a line".into()
            }
        );
        assert!(parse_maps(b"2000-1000 rw-p 0 0:0 0\n").is_err());
        assert_eq!(parse_maps(b"").expect("empty"), vec![]);
    }

    #[test]
    fn long_path_is_kept_whole() {
        let path = format!("/{}", "a b".repeat(700));
        let line = format!("1000-2000 rw-p 00000000 00:00 7 {path}");
        let v = parse_maps(line.as_bytes()).expect("parse");
        assert_eq!(v[0].path, path);
    }

    const SMAPS: &str = "\
7f1c00000000-7f1c00400000 rw-p 00000000 00:00 0 
Size:               4096 kB
Rss:                2048 kB
Swap:                 12 kB
AnonHugePages:      2048 kB
KernelPageSize:     2048 kB
VmFlags: rd wr mr mw me ac sd hg ht
7f1c10000000-7f1c10001000 rw-p 00000000 00:00 0 
Rss:                   4 kB
KernelPageSize:        4 kB
VmFlags: rd wr mr mw me ac sd";

    #[test]
    fn smaps_flags_and_filter() {
        let v = parse_smaps(SMAPS.as_bytes()).expect("parse");
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].rss_kb, Some(2048));
        assert_eq!(v[0].swap_kb, Some(12));
        assert_eq!(v[0].anon_huge_kb, Some(2048));
        assert_eq!(
            (v[0].kernel_page_kb, v[1].kernel_page_kb),
            (Some(2048), Some(4))
        );
        assert!(v[0].has_vm_flags(&["ht"]));
        assert!(v[0].has_vm_flags(&["ht", "sd"]));
        assert!(!v[1].has_vm_flags(&["ht"]));
        let f = VmaFilter {
            anon_only: true,
            vm_flags: vec!["ht".into()],
            ..Default::default()
        };
        assert!(f.needs_smaps());
        let kept: Vec<_> = v.iter().filter(|x| f.keep(x)).collect();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].start, 0x7f1c00000000);
        // maps has no flags: a flag filter keeps nothing
        let m = parse_maps(b"1000-2000 rw-p 0 0:0 0\n").expect("maps");
        assert!(!f.keep(&m[0]));
        assert!(VmaFilter::default().keep(&m[0]));
    }

    #[test]
    fn smaps_attribute_before_header_is_an_error() {
        assert!(parse_smaps(b"Rss: 4 kB\n").is_err());
    }

    #[test]
    fn contains_range() {
        let v = Vma {
            start: 0x1000,
            end: 0x3000,
            ..Vma::default()
        };
        assert!(v.contains_range(0x1000, 0x2000));
        assert!(!v.contains_range(0x2000, 0x2000));
        assert!(!v.contains_range(0x0, 0x1000));
        assert!(!v.contains_range(u64::MAX, 2));
    }
}
