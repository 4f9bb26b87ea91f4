//! The messages of the memRouter daemon `memdcd` (spec §5.6): the fixed 12336-byte layout,
//! the START/PROCESS/END batching and the reply rule. Pure: it builds bytes and judges
//! replies; the connections are the kernel layer's ([`etmem_kernel::Kernel::unix_exchange`]).
//!
//! Layout (host byte order, as C's struct on x86_64 and aarch64):
//!
//! | offset | field |
//! | --- | --- |
//! | 0 | `i32 cmd_type` = 0 |
//! | 8 | `i32 pid` |
//! | 12 | `u32 enable_uswap` = 1 |
//! | 16 | `u32 type` = 0xFFFFFF01 |
//! | 24 | `u64 length` = entries in this message × 24 |
//! | 32 | `u64 total_length` = entries in all messages |
//! | 40 | `u32 status`: 0 START, 1 PROCESS, 2 END |
//! | 48 | 512 entries `{u64 start_addr, u64 len, i32 count, 4 bytes padding}` |
//!
//! Gaps and unused entries are zero.

/// The size of every message.
pub const MESSAGE_BYTES: usize = 12336;
/// Entries one message holds.
pub const ENTRIES_PER_MESSAGE: usize = 512;
/// The size of one entry.
pub const ENTRY_BYTES: usize = 24;
/// Where the entries start.
const ENTRIES_AT: usize = 48;
/// The reply is read up to this many bytes.
pub const REPLY_MAX: usize = 10;
/// `type` of every message.
pub const MSG_TYPE: u32 = 0xFFFF_FF01;

/// Where a message stands in its sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Status {
    /// the first message (and the only one, when one is enough)
    Start = 0,
    /// a full message between the first and the last
    Process = 1,
    /// the last of several messages
    End = 2,
}

/// One page as memdcd sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// start address
    pub addr: u64,
    /// page size in bytes
    pub len: u64,
    /// weighted access count over the round's passes
    pub count: i32,
}

/// How many messages `total` entries take (none for none).
pub fn message_count(total: u64) -> u64 {
    total.div_ceil(ENTRIES_PER_MESSAGE as u64)
}

/// The status of message `index` of `count` (§5.6: the first is START, later ones
/// PROCESS, the last END, unless there is only one, which stays START).
pub fn status(index: u64, count: u64) -> Status {
    if index == 0 {
        Status::Start
    } else if index + 1 == count {
        Status::End
    } else {
        Status::Process
    }
}

/// Builds one message of `pid` with `entries` (at most [`ENTRIES_PER_MESSAGE`]; more are
/// left out), `total` entries in the whole sequence.
pub fn encode(pid: i32, total: u64, status: Status, entries: &[Entry]) -> Vec<u8> {
    let entries = &entries[..entries.len().min(ENTRIES_PER_MESSAGE)];
    let mut m = vec![0u8; MESSAGE_BYTES];
    let mut put = |at: usize, bytes: &[u8]| m[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, &0i32.to_ne_bytes());
    put(8, &pid.to_ne_bytes());
    put(12, &1u32.to_ne_bytes());
    put(16, &MSG_TYPE.to_ne_bytes());
    put(24, &((entries.len() * ENTRY_BYTES) as u64).to_ne_bytes());
    put(32, &total.to_ne_bytes());
    put(40, &(status as u32).to_ne_bytes());
    for (i, e) in entries.iter().enumerate() {
        let at = ENTRIES_AT + i * ENTRY_BYTES;
        put(at, &e.addr.to_ne_bytes());
        put(at + 8, &e.len.to_ne_bytes());
        put(at + 16, &e.count.to_ne_bytes());
    }
    m
}

/// The messages of a sequence of `total` entries, built one at a time from `entries`
/// (so a long list never sits in memory as messages).
pub struct Messages<I> {
    pid: i32,
    total: u64,
    count: u64,
    index: u64,
    entries: I,
}

impl<I: Iterator<Item = Entry>> Messages<I> {
    /// The messages of `pid` for `entries`, which must yield exactly `total` entries.
    pub fn new(pid: i32, total: u64, entries: I) -> Messages<I> {
        Messages {
            pid,
            total,
            count: message_count(total),
            index: 0,
            entries,
        }
    }

    /// How many messages the sequence has.
    pub fn total_messages(&self) -> u64 {
        self.count
    }
}

impl<I: Iterator<Item = Entry>> Iterator for Messages<I> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.index >= self.count {
            return None;
        }
        let batch: Vec<Entry> = self.entries.by_ref().take(ENTRIES_PER_MESSAGE).collect();
        let m = encode(self.pid, self.total, status(self.index, self.count), &batch);
        self.index += 1;
        Some(m)
    }
}

/// Judges a reply (§5.6): none (memdcd closes without a word) or `success` is a success;
/// `success` followed by NUL bytes too (what C's `strcmp` accepts when the terminator is
/// sent). Anything else is returned escaped, for the error.
pub fn check_reply(reply: &[u8]) -> Result<(), String> {
    let text = reply
        .iter()
        .rposition(|&b| b != 0)
        .map_or(&reply[..0], |end| &reply[..=end]);
    if reply.is_empty() || text == b"success" {
        Ok(())
    } else {
        Err(reply.escape_ascii().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(m: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(m[at..at + 4].try_into().unwrap_or_default())
    }
    fn u64_at(m: &[u8], at: usize) -> u64 {
        u64::from_ne_bytes(m[at..at + 8].try_into().unwrap_or_default())
    }

    #[test]
    fn the_layout_matches_the_c_struct() {
        assert_eq!(
            ENTRIES_AT + ENTRIES_PER_MESSAGE * ENTRY_BYTES,
            MESSAGE_BYTES
        );
        let e = [
            Entry {
                addr: 0x7f00_0000_1000,
                len: 4096,
                count: 3,
            },
            Entry {
                addr: 0x7f00_0020_0000,
                len: 2 << 20,
                count: 0,
            },
        ];
        let m = encode(4242, 700, Status::Process, &e);
        assert_eq!(m.len(), MESSAGE_BYTES);
        assert_eq!(u32_at(&m, 0), 0);
        assert_eq!(u32_at(&m, 4), 0);
        assert_eq!(u32_at(&m, 8), 4242);
        assert_eq!(u32_at(&m, 12), 1);
        assert_eq!(u32_at(&m, 16), 0xFFFF_FF01);
        assert_eq!(u32_at(&m, 20), 0);
        assert_eq!(u64_at(&m, 24), 48);
        assert_eq!(u64_at(&m, 32), 700);
        assert_eq!(u32_at(&m, 40), 1);
        assert_eq!(u32_at(&m, 44), 0);
        assert_eq!(u64_at(&m, 48), 0x7f00_0000_1000);
        assert_eq!(u64_at(&m, 56), 4096);
        assert_eq!(u32_at(&m, 64), 3);
        assert_eq!(u32_at(&m, 68), 0);
        assert_eq!(u64_at(&m, 72), 0x7f00_0020_0000);
        assert_eq!(u64_at(&m, 80), 2 << 20);
        assert!(m[96..].iter().all(|&b| b == 0));
    }

    #[test]
    fn batching_follows_start_process_end() {
        use Status::*;
        let cases: &[(u64, &[Status], &[u64])] = &[
            (0, &[], &[]),
            (1, &[Start], &[1]),
            (511, &[Start], &[511]),
            (512, &[Start], &[512]),
            (513, &[Start, End], &[512, 1]),
            (1024, &[Start, End], &[512, 512]),
            (1025, &[Start, Process, End], &[512, 512, 1]),
            (1536, &[Start, Process, End], &[512, 512, 512]),
            (1537, &[Start, Process, Process, End], &[512, 512, 512, 1]),
        ];
        for &(n, statuses, sizes) in cases {
            let entries = (0..n).map(|i| Entry {
                addr: i << 12,
                len: 4096,
                count: (i % 7) as i32,
            });
            let msgs = Messages::new(9, n, entries);
            assert_eq!(msgs.total_messages(), statuses.len() as u64, "{n}");
            let mut next = 0u64;
            let mut got = Vec::new();
            for (k, m) in msgs.enumerate() {
                let len = u64_at(&m, 24) / ENTRY_BYTES as u64;
                assert_eq!(u64_at(&m, 32), n, "{n}: total");
                got.push((u32_at(&m, 40), len));
                for j in 0..len as usize {
                    let at = ENTRIES_AT + j * ENTRY_BYTES;
                    assert_eq!(u64_at(&m, at), next << 12, "{n}: message {k} entry {j}");
                    assert_eq!(u32_at(&m, at + 16), (next % 7) as u32);
                    next += 1;
                }
            }
            let want: Vec<(u32, u64)> = statuses
                .iter()
                .zip(sizes)
                .map(|(s, z)| (*s as u32, *z))
                .collect();
            assert_eq!(got, want, "{n}");
            assert_eq!(next, n);
        }
    }

    #[test]
    fn replies() {
        assert_eq!(check_reply(b""), Ok(()));
        assert_eq!(check_reply(b"success"), Ok(()));
        assert_eq!(check_reply(b"success\0"), Ok(()));
        assert_eq!(check_reply(b"success\0\0\0"), Ok(()));
        assert_eq!(check_reply(b"fail"), Err("fail".into()));
        assert_eq!(check_reply(b"successX"), Err("successX".into()));
        assert_eq!(check_reply(b"\0"), Err("\\x00".into()));
        assert_eq!(check_reply(b"no\n\x1b[2J"), Err("no\\n\\x1b[2J".into()));
    }
}
