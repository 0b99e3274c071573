//! CPU priority of inference threads (Linux niceness, which threads have
//! each their own). Bulk work (photos being indexed) runs on threads
//! lowered with [`lower_this_thread`]; a guest's selfie runs at the
//! process's own priority, so on shared cores the selfie takes the CPU
//! while it runs and the bulk work has it otherwise.
//!
//! ONNX Runtime starts a session's intra-op threads when the session is
//! built, and a new thread inherits its creator's niceness: a session for
//! bulk work is therefore built with [`on_lowered_thread`], so that its
//! whole thread pool is lowered, not only the thread that calls `run`.
//! Lowering needs no privilege; raising back would need CAP_SYS_NICE,
//! which pods lack, so a lowered thread stays lowered.

use std::cell::Cell;

thread_local! {
    static LOWERED: Cell<i32> = const { Cell::new(0) };
}

/// Lowers the calling thread to niceness `nice` (1..=19; 0 or less does
/// nothing). Idempotent per thread. A failure is logged, never fatal: the
/// work still runs, only at the process's priority.
pub fn lower_this_thread(nice: i32) {
    let nice = nice.min(19);
    if nice <= 0 || LOWERED.with(|l| l.get()) >= nice {
        return;
    }
    // SAFETY: setpriority and gettid have no memory-safety preconditions.
    let result =
        unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice) };
    if result == 0 {
        LOWERED.with(|l| l.set(nice));
    } else {
        tracing::warn!(nice, error = %std::io::Error::last_os_error(), "could not lower an inference thread's priority");
    }
}

/// Runs `work` on a new thread lowered to `nice` and returns its result:
/// whatever threads `work` starts (an ONNX session's pool) are lowered too.
pub fn on_lowered_thread<T: Send>(nice: i32, work: impl FnOnce() -> T + Send) -> T {
    if nice <= 0 {
        return work();
    }
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("lowered-loader".into())
            .spawn_scoped(scope, move || {
                lower_this_thread(nice);
                work()
            })
            .expect("spawn a thread")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The niceness of thread `tid` of this process, read from /proc (for
/// tests and diagnostics).
pub fn thread_nice(tid: u32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields are
    // counted after the last ')'. Niceness is field 19; after the name
    // come fields 3.. so it is the 17th there.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(16)?.parse().ok()
}

/// The calling thread's id (Linux).
pub fn this_thread_id() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lowered_thread_and_the_threads_it_starts_run_lowered() {
        let (own, child) = on_lowered_thread(7, || {
            let own = thread_nice(this_thread_id());
            let child = std::thread::spawn(|| thread_nice(this_thread_id()))
                .join()
                .unwrap();
            (own, child)
        });
        assert_eq!(own, Some(7));
        assert_eq!(child, Some(7), "a thread inherits its creator's niceness");
        // The caller is untouched.
        assert_eq!(thread_nice(this_thread_id()), Some(0));
    }

    #[test]
    fn lowering_is_once_and_never_raises() {
        std::thread::spawn(|| {
            lower_this_thread(5);
            lower_this_thread(3); // would raise: ignored
            assert_eq!(thread_nice(this_thread_id()), Some(5));
            lower_this_thread(0);
            assert_eq!(thread_nice(this_thread_id()), Some(5));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn zero_runs_in_place() {
        let caller = this_thread_id();
        assert_eq!(on_lowered_thread(0, this_thread_id), caller);
    }
}
