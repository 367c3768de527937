//! CPU time of a process (user + system) from `/proc/<pid>/stat`, in seconds.
//! Shared by the herd tool and the `sse_bench` server (`#[path]`).

/// Clock ticks as `/proc` reports them (USER_HZ): 100 on every Linux target we run on.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds of process `pid` (`"self"` for this one); `None` where `/proc` cannot
/// tell (not Linux, the process is gone).
pub fn seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3 (`state`);
    // utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}
