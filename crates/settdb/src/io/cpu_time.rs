//! CPU time of the process and of the calling thread, so a background thread can tell how
//! busy the rest of the process keeps the cores (automatic value-log GC yields on it).

use std::time::Duration;

/// CPU time used so far by the whole process and by the calling thread (POSIX
/// `CLOCK_PROCESS_CPUTIME_ID` and `CLOCK_THREAD_CPUTIME_ID`); `None` where the system has no
/// such clocks.
#[cfg(unix)]
pub(crate) fn process_and_thread() -> Option<(Duration, Duration)> {
    fn read(clock: libc::clockid_t) -> Option<Duration> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec, which `ts` is, and keeps no pointer.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
        let secs = u64::try_from(ts.tv_sec).ok()?;
        let nanos = u32::try_from(ts.tv_nsec).ok()?;
        (rc == 0).then(|| Duration::new(secs, nanos))
    }
    Some((
        read(libc::CLOCK_PROCESS_CPUTIME_ID)?,
        read(libc::CLOCK_THREAD_CPUTIME_ID)?,
    ))
}

/// Elsewhere the clocks are not read: callers treat the process as never busy.
#[cfg(not(unix))]
pub(crate) fn process_and_thread() -> Option<(Duration, Duration)> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// Spins until the calling thread has used `d` of CPU time (not wall time, so a loaded
    /// machine only makes it take longer).
    fn spin(d: Duration) {
        let start = process_and_thread().unwrap().1;
        let mut x = 0u64;
        while process_and_thread().unwrap().1 - start < d {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    #[test]
    fn another_threads_work_counts_for_the_process_not_for_this_thread() {
        // Proves the two clocks tell the caller's CPU time from the rest of the process's:
        // what a spinning thread used shows in the process clock and not in this thread's,
        // and this thread's own spin shows in both.
        let (p0, t0) = process_and_thread().unwrap();
        std::thread::spawn(|| spin(Duration::from_millis(150)))
            .join()
            .unwrap();
        let (p1, t1) = process_and_thread().unwrap();
        assert!(p1 - p0 >= Duration::from_millis(150), "{:?}", p1 - p0);
        assert!(t1 - t0 < Duration::from_millis(50), "{:?}", t1 - t0);
        spin(Duration::from_millis(150));
        let (p2, t2) = process_and_thread().unwrap();
        assert!(t2 - t1 >= Duration::from_millis(150), "{:?}", t2 - t1);
        assert!(p2 - p1 >= t2 - t1);
    }
}
