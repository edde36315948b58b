//! Lowering a background thread's CPU priority ([`crate::Options::background_nice`]).

/// Sets the calling thread's nice value to `nice` (0 to 19). On Linux a nice value belongs to
/// one thread (`setpriority(PRIO_PROCESS, tid)` names a thread id), so this leaves the rest of
/// the process alone. Lowering needs no privilege; the error is the system call's.
#[cfg(target_os = "linux")]
pub(crate) fn lower_current_thread(nice: i32) -> std::io::Result<()> {
    if nice == 0 {
        return Ok(());
    }
    // SAFETY: gettid and setpriority take plain integers and touch no memory of ours.
    #[allow(unsafe_code)]
    let rc = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Elsewhere only 0 is accepted (options validation refuses the rest): nothing to do.
#[cfg(not(target_os = "linux"))]
pub(crate) fn lower_current_thread(_nice: i32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The nice value of thread `tid` of this process, from /proc (field 19 of its stat).
    fn nice_of(tid: i32) -> i32 {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
        // The command name (field 2) may hold spaces: count fields after its closing ')'.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        after.split_whitespace().nth(16).unwrap().parse().unwrap()
    }

    #[test]
    fn only_the_calling_thread_is_lowered() {
        // Proves the nice value lands on the thread that asked and on no other thread.
        #[allow(unsafe_code)]
        let me = unsafe { libc::gettid() };
        let before = nice_of(me);
        let (tid, nice) = std::thread::spawn(|| {
            lower_current_thread(7).unwrap();
            #[allow(unsafe_code)]
            let tid = unsafe { libc::gettid() };
            (tid, nice_of(tid))
        })
        .join()
        .unwrap();
        assert_ne!(tid, me);
        assert_eq!(nice, 7);
        assert_eq!(nice_of(me), before);
    }
}
