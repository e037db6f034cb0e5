//! The crate's own rayon thread pool.
//!
//! We do not use rayon's global pool because its size cannot change after it is
//! built, and users expect `set_num_threads(n)` to take effect at once (as in
//! numpy's threadpoolctl or `torch.set_num_threads`). The size comes from, in order:
//! the last `set_num_threads(n)` call, the environment variable
//! `ANALOGKERNELS_NUM_THREADS`, the number of available CPUs. It never exceeds
//! [`MAX_THREADS`]: spawning more threads than that only costs time and memory
//! (100,000 threads took 80 s to spawn, then failed).
//!
//! # Fork safety
//! Worker threads do not survive `fork()`. Two things could leave a child stuck:
//! - a pool inherited from the parent (its workers are gone): a
//!   `pthread_atfork` child handler marks the pool stale, and the next use in
//!   the child builds a fresh one (the stale pool is leaked on purpose:
//!   dropping it would signal threads that do not exist);
//! - the lock that guards the pool slot, if another thread held it at the
//!   moment of the fork: the child would inherit it locked, with no thread
//!   left to release it. So the prepare handler takes the lock itself (waiting
//!   for any builder to finish; building never waits on anything a forking
//!   thread holds) and the parent and child handlers release it: no fork
//!   happens while another thread is inside the lock. This is how glibc keeps
//!   its own allocator locks consistent across `fork()`.
//!
//! Nothing else on the paths that a child takes blocks on state a vanished
//! thread could own: the default thread count and the instruction set are
//! cached in atomics, not in `OnceLock`s (a fork during their first
//! initialisation would leave a `OnceLock` "running" forever in the child).
//!
//! # Interruption
//! [`run_interruptible`] lets the thread that calls into the core poll for a
//! cancellation (Ctrl-C) between the tasks of [`for_each_index`]: once the poll
//! says stop, no new task starts on any thread, later `for_each_index` calls
//! of the same computation return at once, and the caller learns that the
//! result is incomplete.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};

static POOL: Mutex<Option<Arc<ThreadPool>>> = Mutex::new(None);
/// Requested thread count; 0 means "not set, use the environment or the CPU count".
static REQUESTED: AtomicUsize = AtomicUsize::new(0);
/// The default thread count once read (0: not read yet).
static DEFAULT: AtomicUsize = AtomicUsize::new(0);
static FORKED: AtomicBool = AtomicBool::new(false);
static REGISTER_ATFORK: Once = Once::new();

/// Name of the environment variable that sets the default thread count.
pub const NUM_THREADS_ENV: &str = "ANALOGKERNELS_NUM_THREADS";

/// Most worker threads a pool may have (far above any CPU this code runs on;
/// each thread reserves a stack, and spawning thousands takes seconds).
pub const MAX_THREADS: usize = 1024;

fn lock_pool() -> MutexGuard<'static, Option<Arc<ThreadPool>>> {
    POOL.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

thread_local! {
    /// The pool lock held across a `fork()` by the forking thread (set by the
    /// prepare handler, released by the parent/child handlers, which run on
    /// the same thread).
    static FORK_GUARD: RefCell<Option<MutexGuard<'static, Option<Arc<ThreadPool>>>>> =
        const { RefCell::new(None) };
}

extern "C" fn before_fork() {
    let guard = lock_pool();
    FORK_GUARD.with(|g| *g.borrow_mut() = Some(guard));
}

extern "C" fn after_fork_parent() {
    FORK_GUARD.with(|g| drop(g.borrow_mut().take()));
}

extern "C" fn after_fork_child() {
    FORKED.store(true, Ordering::SeqCst);
    FORK_GUARD.with(|g| drop(g.borrow_mut().take()));
}

/// Registers the fork handlers (once per process). The bindings call it when
/// the module loads, before any thread can use the pool; [`pool`] calls it too
/// for pure-Rust users.
pub fn register_fork_handlers() {
    REGISTER_ATFORK.call_once(|| {
        // SAFETY: plain extern "C" handlers; they only lock/unlock a mutex
        // and store an atomic.
        unsafe {
            libc::pthread_atfork(
                Some(before_fork),
                Some(after_fork_parent),
                Some(after_fork_child),
            );
        }
    });
}

/// Parses a value of [`NUM_THREADS_ENV`]: an integer from 1 to [`MAX_THREADS`].
/// The error says what is wrong, for the warning the bindings show.
pub fn parse_num_threads(text: &str) -> std::result::Result<usize, String> {
    let t = text.trim();
    match t.parse::<i128>() {
        Ok(n) if (1..=MAX_THREADS as i128).contains(&n) => Ok(n as usize),
        Ok(n) => Err(format!(
            "{NUM_THREADS_ENV}={text:?} is out of range: expected an integer from 1 to {MAX_THREADS}; got {n}"
        )),
        Err(_) => Err(format!(
            "{NUM_THREADS_ENV}={text:?} is not an integer: expected an integer from 1 to {MAX_THREADS}"
        )),
    }
}

/// Why the value of [`NUM_THREADS_ENV`] is ignored, if it is set and invalid
/// (the default is then the CPU count).
pub fn num_threads_env_problem() -> Option<String> {
    let text = std::env::var_os(NUM_THREADS_ENV)?;
    match text.to_str() {
        Some(s) => parse_num_threads(s).err(),
        None => Some(format!("{NUM_THREADS_ENV} is not valid UTF-8")),
    }
}

/// The default thread count, read once (environment, then CPU count): it is
/// consulted on every call and the syscalls behind it cost more than a small
/// transform. Cached in an atomic (see the module notes on fork safety).
fn default_threads() -> usize {
    match DEFAULT.load(Ordering::Relaxed) {
        0 => {
            let n = read_default_threads();
            DEFAULT.store(n, Ordering::Relaxed);
            n
        }
        n => n,
    }
}

fn read_default_threads() -> usize {
    if let Some(Ok(n)) = std::env::var(NUM_THREADS_ENV)
        .ok()
        .map(|t| parse_num_threads(&t))
    {
        return n;
    }
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(MAX_THREADS)
}

/// The number of threads the engines will use.
pub fn num_threads() -> usize {
    match REQUESTED.load(Ordering::SeqCst) {
        0 => default_threads(),
        n => n,
    }
}

/// Sets the number of worker threads, `1 ..= MAX_THREADS`; 0 restores the
/// default. Larger values are an error naming `n`.
pub fn try_set_num_threads(n: usize) -> Result<()> {
    if n > MAX_THREADS {
        return Err(Error::value(
            "n",
            format!("the thread count must be from 0 (the default) to {MAX_THREADS}, got {n}"),
        ));
    }
    REQUESTED.store(n, Ordering::SeqCst);
    let mut guard = lock_pool();
    if let Some(old) = guard.take() {
        // Dropping an Arc<ThreadPool> only asks idle workers to exit; fine in the
        // parent process. In a forked child the handle is stale: leak it.
        if FORKED.load(Ordering::SeqCst) {
            std::mem::forget(old);
        }
    }
    Ok(())
}

/// [`try_set_num_threads`], with counts above [`MAX_THREADS`] clamped to it.
pub fn set_num_threads(n: usize) {
    // Cannot fail once clamped.
    let _ = try_set_num_threads(n.min(MAX_THREADS));
}

/// The worker pool: `num_threads() - 1` workers, the calling thread being the
/// last participant (see [`for_each_index`]); `None` when the threads cannot
/// be created (a memory or process limit): the work then runs on the calling
/// thread alone, with the same results.
fn pool() -> Option<Arc<ThreadPool>> {
    register_fork_handlers();
    let want = num_threads().saturating_sub(1).max(1);
    let mut guard = lock_pool();
    if FORKED.swap(false, Ordering::SeqCst) {
        if let Some(stale) = guard.take() {
            std::mem::forget(stale);
        }
    }
    if let Some(p) = guard.as_ref() {
        if p.current_num_threads() == want {
            return Some(Arc::clone(p));
        }
    }
    let built = Arc::new(
        ThreadPoolBuilder::new()
            .num_threads(want)
            .thread_name(|i| format!("analogkernels-{i}"))
            .build()
            .ok()?,
    );
    *guard = Some(Arc::clone(&built));
    Some(built)
}

/// How often the calling thread polls for a cancellation while it computes.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The cancellation state of one [`run_interruptible`] call, on its stack.
struct Interrupt {
    poll: RefCell<Box<dyn FnMut() -> bool>>,
    last: Cell<Instant>,
    stopped: Cell<bool>,
}

thread_local! {
    /// The innermost [`run_interruptible`] of this thread (null: none).
    static INTERRUPT: Cell<*const Interrupt> = const { Cell::new(std::ptr::null()) };
}

/// Restores the previous interrupt state when a [`run_interruptible`] call
/// ends, also when it unwinds.
struct RestoreInterrupt(*const Interrupt);

impl Drop for RestoreInterrupt {
    fn drop(&mut self) {
        INTERRUPT.with(|c| c.set(self.0));
    }
}

/// Runs `f` on this thread; while it runs, every [`for_each_index`] called
/// from this thread asks `poll` (at most every 50 ms, between tasks, on this
/// thread only) whether to stop. Once `poll` returns true, no further task
/// starts and every later `for_each_index` of `f` returns at once. Returns
/// `f`'s result and whether it was stopped (the result is then incomplete and
/// must be discarded).
///
/// `poll` may call back into the core (a Python signal handler can): nested
/// calls neither poll again nor see the outer state as theirs.
pub fn run_interruptible<R>(poll: Box<dyn FnMut() -> bool>, f: impl FnOnce() -> R) -> (R, bool) {
    let state = Interrupt {
        poll: RefCell::new(poll),
        last: Cell::new(Instant::now()),
        stopped: Cell::new(false),
    };
    let previous = INTERRUPT.with(|c| c.replace(&raw const state));
    let restore = RestoreInterrupt(previous);
    let result = f();
    drop(restore);
    (result, state.stopped.get())
}

/// Whether the computation running on this thread (inside
/// [`run_interruptible`]) has been told to stop. Engines that keep state
/// check it before they commit a result, so that a stopped call leaves the
/// state as it was instead of half-updated.
pub fn interrupted() -> bool {
    let state = current_interrupt();
    // SAFETY: as in `should_stop`.
    !state.is_null() && unsafe { &*state }.stopped.get()
}

/// The calling thread's interrupt state (null when none).
fn current_interrupt() -> *const Interrupt {
    INTERRUPT.with(std::cell::Cell::get)
}

/// Whether the computation of `state` must stop; polls when it is time.
fn should_stop(state: *const Interrupt) -> bool {
    if state.is_null() {
        return false;
    }
    // SAFETY: a non-null pointer is set only by `run_interruptible` for the
    // duration of its `f`, on this thread, and points to its live stack frame.
    let s = unsafe { &*state };
    if s.stopped.get() {
        return true;
    }
    let now = Instant::now();
    if now.duration_since(s.last.get()) < POLL_INTERVAL {
        return false;
    }
    s.last.set(now);
    // try_borrow_mut: a poll that re-enters the core must not poll again.
    if let Ok(mut poll) = s.poll.try_borrow_mut() {
        if poll() {
            s.stopped.set(true);
        }
    }
    s.stopped.get()
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
///
/// Inside [`run_interruptible`], the calling thread polls between its tasks
/// and, when told to stop, makes every thread stop taking new indices.
pub fn for_each_index(count: usize, f: impl Fn(usize) + Sync) {
    let state = current_interrupt();
    if should_stop(state) {
        return;
    }
    let threads = num_threads().min(count);
    let pool = if threads > 1 { pool() } else { None };
    let Some(pool) = pool else {
        for i in 0..count {
            if i > 0 && should_stop(state) {
                return;
            }
            f(i);
        }
        return;
    };
    let next = AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= count {
            break;
        }
        f(i);
    };
    pool.in_place_scope(|scope| {
        for _ in 1..threads {
            scope.spawn(|_| work());
        }
        // The calling thread: as `work`, polling between its tasks.
        loop {
            if should_stop(state) {
                next.fetch_max(count, Ordering::Relaxed);
                break;
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                break;
            }
            f(i);
        }
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
            f(i - 1);
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

/// One mutable buffer shared by parallel tasks that each touch their own,
/// disjoint elements of it: the crate's only way to hand parts of one buffer
/// to several threads (the chunk loops below are built on it).
///
/// It is `Send`/`Sync` only for `T: Send` (the elements move between threads
/// with the tasks) and borrows the buffer mutably for `'a`, so the buffer can
/// neither be read elsewhere nor dropped while tasks hold it. Disjointness is
/// the one thing the compiler cannot see, so the accessors are `unsafe` and
/// check their bounds.
pub(crate) struct DisjointMut<'a, T> {
    ptr: *mut T,
    len: usize,
    _buffer: PhantomData<&'a mut [T]>,
}

impl<T> Clone for DisjointMut<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for DisjointMut<'_, T> {}

// SAFETY: sharing the wrapper shares nothing but the right to touch disjoint
// elements (the accessors' contract), which is sound when the elements may
// move to another thread: `T: Send`.
unsafe impl<T: Send> Send for DisjointMut<'_, T> {}
// SAFETY: as above; no method reads through `&self` what another task writes.
unsafe impl<T: Send> Sync for DisjointMut<'_, T> {}

impl<'a, T> DisjointMut<'a, T> {
    /// Shares `buffer` for the duration of its borrow.
    pub(crate) fn new(buffer: &'a mut [T]) -> Self {
        Self {
            ptr: buffer.as_mut_ptr(),
            len: buffer.len(),
            _buffer: PhantomData,
        }
    }

    /// Elements `[start, start + len)`.
    ///
    /// # Safety
    /// No other task touches these elements while the slice lives.
    pub(crate) unsafe fn slice(self, start: usize, len: usize) -> &'a mut [T] {
        assert!(start <= self.len && len <= self.len - start);
        // SAFETY: in bounds (checked); exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }

    /// Writes element `i`.
    ///
    /// # Safety
    /// No other task touches element `i` during the call.
    pub(crate) unsafe fn write(self, i: usize, value: T) {
        assert!(i < self.len);
        // SAFETY: in bounds (checked); exclusive by the caller's contract.
        unsafe { *self.ptr.add(i) = value };
    }

    /// A raw pointer to element `offset` (`<= len`), for kernels that take
    /// pointers and walk strided, disjoint parts of the buffer.
    ///
    /// # Safety
    /// Whatever the pointer is used for stays inside the buffer and touches
    /// no element another task touches meanwhile.
    pub(crate) unsafe fn ptr_at(self, offset: usize) -> *mut T {
        assert!(offset <= self.len);
        // SAFETY: in bounds or one past the end (checked).
        unsafe { self.ptr.add(offset) }
    }
}

/// Runs `f(i, chunk)` for every chunk `i` of `data` cut into consecutive
/// pieces of `chunk_len` elements (the last may be shorter), spread over the
/// pool as [`for_each_index`] (same interruption, same thread-count
/// independence: each chunk is the same whichever thread runs it).
/// Nothing runs when `data` is empty.
pub fn for_each_chunk_mut<T: Send>(
    data: &mut [T],
    chunk_len: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    chunks_mut(data, chunk_len, false, f);
}

/// [`for_each_chunk_mut`] through [`for_each_index_populating`]: for a large,
/// freshly allocated `data`, one thread populates its pages while the others
/// compute.
pub fn for_each_chunk_mut_populating<T: Send>(
    data: &mut [T],
    chunk_len: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    chunks_mut(data, chunk_len, true, f);
}

/// The body of both chunk loops above.
fn chunks_mut<T: Send>(
    data: &mut [T],
    chunk_len: usize,
    populate: bool,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let len = data.len();
    if len == 0 {
        return;
    }
    let chunk_len = chunk_len.max(1);
    let bytes = std::mem::size_of_val(data);
    let shared = DisjointMut::new(data);
    let task = |i: usize| {
        let start = i * chunk_len;
        // SAFETY: chunk i is [start, start + chunk_len) ∩ data; chunks are
        // disjoint and for_each_index runs each index at most once.
        let chunk = unsafe { shared.slice(start, chunk_len.min(len - start)) };
        f(i, chunk);
    };
    let count = len.div_ceil(chunk_len);
    if populate {
        // SAFETY: the populate only faults pages in (contents unchanged), so
        // it may overlap the tasks' writes; see `for_each_index_populating`.
        let start_ptr = unsafe { shared.ptr_at(0) }.cast::<u8>();
        for_each_index_populating(count, start_ptr, bytes, task);
    } else {
        for_each_index(count, task);
    }
}

/// [`for_each_chunk_mut`] over two buffers of equal length in lockstep:
/// `f(i, a_chunk, b_chunk)` with both chunks covering the same indices.
///
/// # Panics
/// If the lengths differ (a caller bug).
pub fn for_each_chunk_pair_mut<A: Send, B: Send>(
    a: &mut [A],
    b: &mut [B],
    chunk_len: usize,
    f: impl Fn(usize, &mut [A], &mut [B]) + Sync,
) {
    assert_eq!(a.len(), b.len(), "for_each_chunk_pair_mut: lengths differ");
    let len = a.len();
    if len == 0 {
        return;
    }
    let chunk_len = chunk_len.max(1);
    let (sa, sb) = (DisjointMut::new(a), DisjointMut::new(b));
    for_each_index(len.div_ceil(chunk_len), |i| {
        let start = i * chunk_len;
        let n = chunk_len.min(len - start);
        // SAFETY: as in `for_each_chunk_mut`, for each buffer.
        let (ca, cb) = unsafe { (sa.slice(start, n), sb.slice(start, n)) };
        f(i, ca, cb);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn thread_counts_are_bounded_and_the_variable_is_checked() {
        let err = try_set_num_threads(MAX_THREADS + 1).unwrap_err();
        assert!(err.to_string().contains("`n`"), "{err}");
        assert!(try_set_num_threads(usize::MAX).is_err());
        assert_eq!(parse_num_threads(" 4 "), Ok(4));
        assert_eq!(parse_num_threads("1024"), Ok(1024));
        for bad in [
            "0",
            "-3",
            "abc",
            "",
            "1025",
            "100000",
            "99999999999999999999999",
        ] {
            let msg = parse_num_threads(bad).unwrap_err();
            assert!(msg.contains(NUM_THREADS_ENV), "{msg}");
        }
    }

    #[test]
    fn an_interrupt_stops_every_thread_between_tasks() {
        for threads in [1, 3] {
            let done = AtomicUsize::new(0);
            let polls = Arc::new(AtomicUsize::new(0));
            let p = Arc::clone(&polls);
            let task = |_: usize| {
                std::thread::sleep(Duration::from_millis(2));
                done.fetch_add(1, Ordering::Relaxed);
            };
            let (seen, stopped) = run_interruptible(
                Box::new(move || p.fetch_add(1, Ordering::Relaxed) >= 1),
                || {
                    // One thread count per pass; for_each_index reads it.
                    REQUESTED.store(threads, Ordering::SeqCst);
                    for_each_index(2000, task);
                    // A later parallel loop of the same computation does nothing.
                    for_each_index(2000, task);
                    interrupted()
                },
            );
            REQUESTED.store(0, Ordering::SeqCst);
            assert!(stopped && seen);
            assert!(!interrupted());
            let n = done.load(Ordering::Relaxed);
            assert!(n < 2000, "{threads} threads ran {n} of 4000 tasks");
            assert_eq!(polls.load(Ordering::Relaxed), 2);
            // Outside run_interruptible nothing polls.
            let all = AtomicUsize::new(0);
            for_each_index(50, |_| {
                all.fetch_add(1, Ordering::Relaxed);
            });
            assert_eq!(all.load(Ordering::Relaxed), 50);
        }
    }

    #[test]
    fn chunk_loops_cover_every_element_once() {
        // (The thread count is global state that other tests set; the engines'
        // own tests compare results across thread counts.)
        let want: Vec<u64> = (0..10_007u64).map(|i| i * 3 + i / 1000).collect();
        {
            for chunk in [1, 7, 1000, 20_000] {
                let mut a = vec![0u64; want.len()];
                for_each_chunk_mut(&mut a, chunk, |i, c| {
                    for (j, v) in c.iter_mut().enumerate() {
                        let k = (i * chunk + j) as u64;
                        *v += k * 3 + k / 1000;
                    }
                });
                assert_eq!(a, want);
                let mut b = vec![0u64; want.len()];
                for_each_chunk_mut_populating(&mut b, chunk, |i, c| {
                    for (j, v) in c.iter_mut().enumerate() {
                        let k = (i * chunk + j) as u64;
                        *v += k * 3 + k / 1000;
                    }
                });
                assert_eq!(b, want);
                let (mut p, mut q) = (vec![0u64; want.len()], vec![0u8; want.len()]);
                for_each_chunk_pair_mut(&mut p, &mut q, chunk, |i, x, y| {
                    assert_eq!(x.len(), y.len());
                    for (j, (v, w)) in x.iter_mut().zip(y.iter_mut()).enumerate() {
                        let k = (i * chunk + j) as u64;
                        *v += k * 3 + k / 1000;
                        *w += 1;
                    }
                });
                assert_eq!(p, want);
                assert!(q.iter().all(|&w| w == 1));
            }
            // Empty buffers run nothing, whatever the chunk length.
            for_each_chunk_mut(&mut [0u8; 0], 0, |_, _| panic!("ran on nothing"));
        }
    }

    #[test]
    fn an_uninterrupted_computation_runs_everything() {
        let done = AtomicUsize::new(0);
        let (value, stopped) = run_interruptible(Box::new(|| false), || {
            for_each_index(300, |_| {
                done.fetch_add(1, Ordering::Relaxed);
            });
            7
        });
        assert_eq!((value, stopped), (7, false));
        assert_eq!(done.load(Ordering::Relaxed), 300);
    }
}
