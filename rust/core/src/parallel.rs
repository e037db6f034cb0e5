//! The crate's own rayon thread pool.
//!
//! We do not use rayon's global pool because its size cannot change after it is
//! built, and users expect `set_num_threads(n)` to take effect at once (as in
//! numpy's threadpoolctl or torch.set_num_threads). The size comes from, in order:
//! the last `set_num_threads(n)` call, the environment variable
//! `ANALOGKERNELS_NUM_THREADS`, the number of available CPUs.
//!
//! Fork safety: worker threads do not survive `fork()`; a child that used the
//! parent's pool would wait forever. A `pthread_atfork` child handler marks the
//! pool stale, and the next use in the child builds a fresh one (the stale pool is
//! leaked on purpose: dropping it would signal threads that do not exist).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once, RwLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

static POOL: RwLock<Option<Arc<ThreadPool>>> = RwLock::new(None);
/// Requested thread count; 0 means "not set, use the environment or the CPU count".
static REQUESTED: AtomicUsize = AtomicUsize::new(0);
static FORKED: AtomicBool = AtomicBool::new(false);
static REGISTER_ATFORK: Once = Once::new();

/// Name of the environment variable that sets the default thread count.
pub const NUM_THREADS_ENV: &str = "ANALOGKERNELS_NUM_THREADS";

extern "C" fn mark_forked() {
    FORKED.store(true, Ordering::SeqCst);
}

/// The default thread count, read once (environment, then CPU count): it is
/// consulted on every call and the syscalls behind it cost more than a small
/// transform.
fn default_threads() -> usize {
    static DEFAULT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *DEFAULT.get_or_init(read_default_threads)
}

fn read_default_threads() -> usize {
    if let Ok(text) = std::env::var(NUM_THREADS_ENV) {
        if let Ok(n) = text.trim().parse::<usize>() {
            if n > 0 {
                return n;
            }
        }
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The number of threads the engines will use.
pub fn num_threads() -> usize {
    match REQUESTED.load(Ordering::SeqCst) {
        0 => default_threads(),
        n => n,
    }
}

/// Sets the number of worker threads (`n >= 1`); 0 restores the default.
pub fn set_num_threads(n: usize) {
    REQUESTED.store(n, Ordering::SeqCst);
    let mut guard = POOL.write().unwrap_or_else(|e| e.into_inner());
    if let Some(old) = guard.take() {
        // Dropping an Arc<ThreadPool> only asks idle workers to exit; fine in the
        // parent process. In a forked child the handle is stale: leak it.
        if FORKED.load(Ordering::SeqCst) {
            std::mem::forget(old);
        }
    }
}

/// The worker pool: `num_threads() - 1` workers, the calling thread being the
/// last participant (see [`for_each_index`]).
fn pool() -> Arc<ThreadPool> {
    REGISTER_ATFORK.call_once(|| {
        // SAFETY: registering a plain extern "C" handler that only stores an atomic.
        unsafe {
            libc::pthread_atfork(None, None, Some(mark_forked));
        }
    });
    if FORKED.swap(false, Ordering::SeqCst) {
        let mut guard = POOL.write().unwrap_or_else(|e| e.into_inner());
        if let Some(stale) = guard.take() {
            std::mem::forget(stale);
        }
    }
    let want = num_threads().saturating_sub(1).max(1);
    if let Some(p) = POOL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        if p.current_num_threads() == want {
            return Arc::clone(p);
        }
    }
    let mut guard = POOL.write().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = guard.as_ref() {
        if p.current_num_threads() == want {
            return Arc::clone(p);
        }
    }
    let built = Arc::new(
        ThreadPoolBuilder::new()
            .num_threads(want)
            .thread_name(|i| format!("analogkernels-{i}"))
            .build()
            .expect("building the analogkernels thread pool"),
    );
    *guard = Some(Arc::clone(&built));
    built
}

/// Runs `f(i)` for every `i` in `0..count`, spread over the calling thread and
/// the pool's workers.
///
/// The caller starts on the work at once and the workers join as they wake,
/// each taking the next index from a shared counter. This matters for calls of
/// a few hundred microseconds: handing the whole job to a sleeping worker (as
/// `ThreadPool::install` does) would add a wake-up to every call and leave the
/// calling core idle. `f` must not depend on which thread runs it; results are
/// then independent of the thread count.
pub fn for_each_index(count: usize, f: impl Fn(usize) + Sync) {
    let threads = num_threads().min(count);
    if threads <= 1 {
        (0..count).for_each(f);
        return;
    }
    let next = AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= count {
            break;
        }
        f(i);
    };
    pool().in_place_scope(|scope| {
        for _ in 1..threads {
            scope.spawn(|_| work());
        }
        work();
    });
}

/// Output size (bytes) from which [`for_each_index_populating`] spends one
/// thread on populating the output's pages.
const POPULATE_MIN_BYTES: usize = 8 << 20;

/// [`for_each_index`] for tasks that write a large, freshly allocated output
/// `out` (`len` bytes): with two or more threads, one of them first asks the
/// kernel to populate the output's pages (`madvise(MADV_POPULATE_WRITE)`,
/// Linux ≥ 5.14) while the others compute, then joins them.
///
/// Why: the first write to a fresh page makes the kernel zero it in the
/// writing thread. Zeroing is bound by memory bandwidth, so two threads that
/// both compute and fault gain little on it (measured here: 141 MB cost 12 ms
/// of one thread alone, 29 ms of CPU time when both threads zeroed), while the
/// compute is not; letting one thread populate while the other computes
/// overlaps the two. The populate never changes memory contents (pages
/// already present are left alone), so it cannot race with the tasks'
/// writes; where it is unsupported it is skipped.
pub fn for_each_index_populating(count: usize, out: *mut u8, len: usize, f: impl Fn(usize) + Sync) {
    if num_threads() < 2 || count < 2 || len < POPULATE_MIN_BYTES {
        return for_each_index(count, f);
    }
    let out = out as usize;
    for_each_index(count + 1, |i| {
        if i == 0 {
            populate_for_write(out, len);
        } else {
            f(i - 1)
        }
    });
}

/// Populates the whole pages inside `[addr, addr + len)` as if written,
/// without changing their contents; errors (old kernels, other systems) are
/// ignored: the pages then fault in when the tasks write them.
fn populate_for_write(addr: usize, len: usize) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = addr.next_multiple_of(PAGE);
        let end = (addr + len) / PAGE * PAGE;
        if end > start {
            // SAFETY: the range lies inside a buffer the caller owns for the
            // duration of the call; MADV_POPULATE_WRITE only faults pages in.
            unsafe {
                libc::madvise(
                    start as *mut libc::c_void,
                    end - start,
                    libc::MADV_POPULATE_WRITE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (addr, len);
}
