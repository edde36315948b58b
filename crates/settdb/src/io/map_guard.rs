//! Reads of a file mapping that turn a `SIGBUS` into a failed read instead of the end of the
//! process.
//!
//! A read through a mapping of a file raises `SIGBUS` when the page cannot be brought in: the
//! disk failed to read it, or the file was truncated under the mapping (by another program:
//! SettDB never truncates a file it maps). By default the signal ends the process, which
//! DESIGN.md forbids ("the library never exits the process"). So every read of a mapping goes
//! through [`guarded`], and the first mapping installs a process-wide `SIGBUS` handler:
//!
//! - A fault at an address inside the range the faulting thread is reading in [`guarded`]
//!   (a thread-local, set around the read) is ours: the handler counts it in [`FAULTS`] and
//!   maps a page of zeros over the faulting page, then returns, so the interrupted copy
//!   finishes (reading zeros). [`guarded`] sees the count change and reports the read as
//!   failed; the caller then reads the same bytes with `pread`, which returns the real error
//!   (EIO, or a short read past the new end) as an ordinary typed error.
//! - Any other fault is not ours: the handler passes it to the handler installed before it,
//!   or, if there was none, restores the default action and returns, so the faulting
//!   instruction runs again and the process ends as it would have without SettDB.
//!
//! After the first caught fault, mapped reads are off for the rest of the process: the
//! zero page stays in that mapping, and a read of another thread could land on it without
//! faulting. That read started before the fault was counted or ends after, so [`guarded`]
//! checks the count after the copy too (the handler counts before it maps the zero page).
//! A read that still returned zeros would fail its record checksum: the count is the first
//! line of defence, the checksum the second.
//!
//! The technique (zero-filling the bad page from the handler) is the one Meta's Sapling
//! (`indexedlog`) and EFL's `eina_mmap` use; no maintained crate offers it as a general
//! guard, so it is written here, in the few lines of `unsafe` it needs. The handler does only
//! what is async-signal-safe: an atomic add, a read of a const-initialised thread-local, and
//! the `mmap` and `sigaction` system calls.

#![allow(unsafe_code)]

use std::cell::Cell;
use std::sync::atomic::{compiler_fence, fence, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Faults caught in guarded reads since the process started (see the module docs).
static FAULTS: AtomicU64 = AtomicU64::new(0);

/// The page size, read when the handler is installed (`sysconf` is not async-signal-safe).
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// The `SIGBUS` action before ours, or the error that kept ours from being installed.
static INSTALLED: OnceLock<Result<Previous, i32>> = OnceLock::new();

/// The action ours replaced (only read, by the handler and by nothing else).
struct Previous(libc::sigaction);

// SAFETY: a `sigaction` is plain data (a handler address, flags, a signal mask); it is
// written once before any handler can read it and never changed.
unsafe impl Sync for Previous {}
unsafe impl Send for Previous {}

thread_local! {
    /// The address range this thread is reading in [`guarded`]; empty outside it. Const
    /// initialised and without a destructor, so reading it never allocates or registers
    /// anything: safe in a signal handler.
    static GUARD: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// Installs the `SIGBUS` handler (once per process). Errors: the `errno` of a failed
/// `sigaction`, as an I/O error (mapping must then not be used).
pub(crate) fn install() -> std::io::Result<()> {
    let installed = INSTALLED.get_or_init(|| {
        // SAFETY: `sysconf` and `sigaction` are called with valid arguments; the new action
        // is fully initialised (zeroed, then its fields set).
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE);
            PAGE_SIZE.store(usize::try_from(page).unwrap_or(4096), Ordering::SeqCst);
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            // SA_ONSTACK: run on the thread's alternate signal stack if it has one, as other
            // runtimes in the process (Go, the JVM) expect of every handler.
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &action, &mut previous) != 0 {
                return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
            }
            Ok(Previous(previous))
        }
    });
    match installed {
        Ok(_) => Ok(()),
        Err(errno) => Err(std::io::Error::from_raw_os_error(*errno)),
    }
}

/// Runs `read` over `bytes` (part of a mapping) with faults in `bytes` caught. `None` if a
/// fault was caught during it, or in any read of this process before it (mapped reads are
/// then off; the caller reads the bytes another way). REQUIRES: [`install`] succeeded
/// before the mapping holding `bytes` was used; `read` touches no other mapped memory.
pub(crate) fn guarded<R>(bytes: &[u8], read: impl FnOnce(&[u8]) -> R) -> Option<R> {
    if FAULTS.load(Ordering::Acquire) != 0 {
        return None;
    }
    let start = bytes.as_ptr() as usize;
    GUARD.with(|g| g.set((start, start + bytes.len())));
    // The copy must stay between setting and clearing the guard: the handler runs on this
    // thread, so a compiler fence is the barrier that matters.
    compiler_fence(Ordering::SeqCst);
    let out = read(bytes);
    compiler_fence(Ordering::SeqCst);
    GUARD.with(|g| g.set((0, 0)));
    // The loads of the copy come before the load of the count (module docs).
    fence(Ordering::Acquire);
    (FAULTS.load(Ordering::Acquire) == 0).then_some(out)
}

/// Faults caught so far (0 in a healthy process); shown by tests.
#[cfg(test)]
pub(crate) fn faults() -> u64 {
    FAULTS.load(Ordering::SeqCst)
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid `siginfo_t` to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let (start, end) = GUARD.with(Cell::get);
    if (start..end).contains(&addr) {
        FAULTS.fetch_add(1, Ordering::SeqCst);
        let page = addr & !(PAGE_SIZE.load(Ordering::Relaxed) - 1);
        // SAFETY: the page lies inside a mapping this thread is reading (the guard says so),
        // and replacing it with zeros changes only what that mapping shows.
        let zeroed = unsafe {
            libc::mmap(
                page as *mut libc::c_void,
                PAGE_SIZE.load(Ordering::Relaxed),
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if zeroed != libc::MAP_FAILED {
            return;
        }
    }
    pass_on(sig, info, ctx);
}

/// Hands a fault that is not ours to the action installed before ours.
fn pass_on(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let previous = match INSTALLED.get() {
        Some(Ok(Previous(p))) => *p,
        // Only in the instant between `sigaction` and the recording of its result in
        // `install`: a fault then that is not ours ends the process as by default.
        _ => default_action(),
    };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Back to the default action; returning runs the faulting instruction again, which
        // now ends the process (an ignored SIGBUS from a fault would spin forever).
        let dfl = default_action();
        // SAFETY: `sigaction` is async-signal-safe; `dfl` is fully initialised.
        unsafe { libc::sigaction(sig, &dfl, std::ptr::null_mut()) };
        return;
    }
    // SAFETY: the previous handler was installed for this signal with these flags, so it is
    // a function of the matching signature.
    unsafe {
        if previous.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(handler);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
            f(sig);
        }
    }
}

fn default_action() -> libc::sigaction {
    // SAFETY: an all-zero `sigaction` is SIG_DFL with no flags and an empty mask.
    let mut dfl: libc::sigaction = unsafe { std::mem::zeroed() };
    dfl.sa_sigaction = libc::SIG_DFL;
    dfl
}

#[cfg(test)]
mod tests {
    //! Each case runs in a child process (this test binary, run again for one test with
    //! `MAP_GUARD_CHILD` set): a caught fault turns mapped reads off for the whole process,
    //! and an uncaught one ends it.
    use super::*;
    use std::io::Write;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, ExitStatus};

    const CHILD: &str = "MAP_GUARD_CHILD";

    /// Runs the test `name` of this module alone in a child process.
    fn run_child(name: &str) -> ExitStatus {
        let exe = std::env::current_exe().unwrap();
        Command::new(exe)
            .args([
                "--exact",
                &format!("io::map_guard::tests::{name}"),
                "--include-ignored",
            ])
            .args(["--test-threads", "1", "--nocapture"])
            .env(CHILD, "1")
            .status()
            .unwrap()
    }

    /// A file of 3 pages of 7s, mapped whole, then truncated to 1 page: its last 2 pages
    /// fault. Returns the mapping, the page size and the directory keeping the file.
    fn truncated_mapping() -> (memmap2::Mmap, usize, tempfile::TempDir) {
        let page = PAGE_SIZE.load(Ordering::SeqCst);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&vec![7u8; 3 * page]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: the file is truncated under the mapping on purpose: it is what is tested.
        let map = unsafe { memmap2::Mmap::map(&file).unwrap() };
        f.set_len(page as u64).unwrap();
        (map, page, dir)
    }

    fn sum(b: &[u8]) -> u64 {
        b.iter().map(|&x| u64::from(x)).sum()
    }

    #[test]
    fn a_fault_in_a_guarded_read_is_a_failed_read() {
        // Proves the handler catches a fault inside a guarded read (the child returns None and
        // lives), and that mapped reads are off afterwards, even of pages that still map the
        // file. Fails if the handler is not installed (the child dies of SIGBUS).
        let status = run_child("child_faults_in_a_guarded_read");
        assert!(status.success(), "child: {status:?}");
    }

    #[test]
    fn a_fault_outside_a_guarded_read_still_ends_the_process() {
        // Proves a fault that is not in a guarded read is not swallowed: with no handler
        // before ours, the child ends by SIGBUS, as it would without SettDB.
        let status = run_child("child_faults_outside_a_guarded_read");
        assert_eq!(status.signal(), Some(libc::SIGBUS), "child: {status:?}");
        // The same with no handler at all before ours (SIG_DFL, not Rust's own handler):
        // ours must restore the default action, not call a handler that is not there.
        let status = run_child("child_faults_with_the_default_action_before");
        assert_eq!(status.signal(), Some(libc::SIGBUS), "child: {status:?}");
    }

    #[test]
    #[ignore = "a child of a_fault_in_a_guarded_read_is_a_failed_read"]
    fn child_faults_in_a_guarded_read() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        install().unwrap();
        let (map, page, _dir) = truncated_mapping();
        assert_eq!(guarded(&map[..page], sum), Some(7 * page as u64));
        assert_eq!(faults(), 0);
        assert_eq!(guarded(&map[page..3 * page], sum), None);
        assert_eq!(faults(), 2, "one fault per page past the end");
        assert_eq!(guarded(&map[..page], sum), None);
    }

    #[test]
    #[ignore = "a child of a_fault_outside_a_guarded_read_still_ends_the_process"]
    fn child_faults_with_the_default_action_before() {
        if std::env::var_os(CHILD).is_some() {
            fault_after_own_handler(libc::SIG_DFL, false);
        }
    }

    #[test]
    #[ignore = "a child of a_fault_outside_a_guarded_read_still_ends_the_process"]
    fn child_faults_outside_a_guarded_read() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        install().unwrap();
        let (map, page, _dir) = truncated_mapping();
        assert_eq!(guarded(&map[..page], sum), Some(7 * page as u64));
        // Not guarded: this read must end the process.
        let s = sum(std::hint::black_box(&map[page..2 * page]));
        println!("read {s} from a truncated page and lived");
    }

    #[test]
    fn a_fault_outside_a_guarded_read_goes_to_the_handler_installed_before() {
        // Proves a fault that is not ours reaches the handler the program had installed
        // before SettDB's, of either kind (SA_SIGINFO or plain): the children's handlers end
        // them with exit codes 42 and 43.
        let status = run_child("child_passes_a_fault_to_a_siginfo_handler");
        assert_eq!(status.code(), Some(42), "child: {status:?}");
        let status = run_child("child_passes_a_fault_to_a_plain_handler");
        assert_eq!(status.code(), Some(43), "child: {status:?}");
    }

    extern "C" fn exit_42(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
        // SAFETY: `_exit` is async-signal-safe.
        unsafe { libc::_exit(42) }
    }

    extern "C" fn exit_43(_: libc::c_int) {
        // SAFETY: `_exit` is async-signal-safe.
        unsafe { libc::_exit(43) }
    }

    /// Installs `handler` for SIGBUS (with SA_SIGINFO if `siginfo`), then SettDB's, then
    /// reads a truncated page outside any guarded read.
    fn fault_after_own_handler(handler: usize, siginfo: bool) {
        // SAFETY: a fully initialised action whose handler has the signature its flags say.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler;
            action.sa_flags = if siginfo { libc::SA_SIGINFO } else { 0 };
            libc::sigemptyset(&mut action.sa_mask);
            assert_eq!(
                libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()),
                0
            );
        }
        install().unwrap();
        let (map, page, _dir) = truncated_mapping();
        let s = sum(std::hint::black_box(&map[page..2 * page]));
        println!("read {s} from a truncated page and lived");
    }

    #[test]
    #[ignore = "a child of a_fault_outside_a_guarded_read_goes_to_the_handler_installed_before"]
    fn child_passes_a_fault_to_a_siginfo_handler() {
        if std::env::var_os(CHILD).is_some() {
            fault_after_own_handler(exit_42 as *const () as usize, true);
        }
    }

    #[test]
    #[ignore = "a child of a_fault_outside_a_guarded_read_goes_to_the_handler_installed_before"]
    fn child_passes_a_fault_to_a_plain_handler() {
        if std::env::var_os(CHILD).is_some() {
            fault_after_own_handler(exit_43 as *const () as usize, false);
        }
    }
}
