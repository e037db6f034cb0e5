//! The CPU's SIMD feature level, detected once: the one place that asks the
//! CPU what it can run.
//!
//! Every dispatcher in the crate (the Walsh–Hadamard [`Isa`](crate::hadamard::Isa),
//! the RNG fillers, the feature-map rows, the crossbar's block and MVM kernels)
//! picks its kernel from [`level`]. Each kernel's `#[target_feature]` set is a
//! subset of the features that define the level selecting it, so a kernel can
//! never run on a CPU without its instructions (no `SIGILL`), and every
//! dispatcher agrees on what the CPU is.
//!
//! The levels are cumulative (each implies the ones below it), after the
//! x86-64 micro-architecture levels:
//! - [`Level::Avx2`]: AVX2 + FMA (the SIMD part of x86-64-v3);
//! - [`Level::Avx512`]: AVX-512 F + BW + DQ + VL (the SIMD part of x86-64-v4);
//! - [`Level::Avx512Vnni`]: the above + AVX-512 VNNI.
//!
//! The kernels compute IEEE-exact or integer arithmetic, so the level changes
//! speed, never bits (the crate's tests compare every kernel bit for bit).

use std::sync::atomic::{AtomicU8, Ordering};

/// A cumulative SIMD feature level (each implies every level below it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The architecture's baseline only (SSE2 on x86-64, NEON on aarch64).
    Baseline = 0,
    /// x86-64 with AVX2 and FMA.
    Avx2 = 1,
    /// x86-64 with AVX-512 F, BW, DQ and VL (and AVX2 + FMA).
    Avx512 = 2,
    /// [`Level::Avx512`] with AVX-512 VNNI.
    Avx512Vnni = 3,
}

impl Level {
    const ALL: [Level; 4] = [
        Level::Baseline,
        Level::Avx2,
        Level::Avx512,
        Level::Avx512Vnni,
    ];

    /// Lower-case name, for logs and build information.
    pub fn name(self) -> &'static str {
        match self {
            Level::Baseline => "baseline",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
            Level::Avx512Vnni => "avx512vnni",
        }
    }
}

/// `u8::MAX`: not detected yet. Cached in an atomic rather than a `OnceLock`:
/// a `fork()` while another thread initialises a `OnceLock` leaves it locked
/// in the child (see the module notes of [`parallel`](crate::parallel)).
static LEVEL: AtomicU8 = AtomicU8::new(u8::MAX);

/// The SIMD feature level of this CPU, detected on the first call.
pub fn level() -> Level {
    let cached = LEVEL.load(Ordering::Relaxed);
    if let Some(&level) = Level::ALL.get(cached as usize) {
        return level;
    }
    let level = detect();
    LEVEL.store(level as u8, Ordering::Relaxed);
    level
}

/// Whether this CPU has at least `wanted`.
pub fn has(wanted: Level) -> bool {
    level() >= wanted
}

fn detect() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if !(has!("avx2") && has!("fma")) {
            return Level::Baseline;
        }
        if !(has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl")) {
            return Level::Avx2;
        }
        if !has!("avx512vnni") {
            return Level::Avx512;
        }
        Level::Avx512Vnni
    }
    #[cfg(not(target_arch = "x86_64"))]
    Level::Baseline
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_implies_its_features_and_is_cached() {
        let level = level();
        assert_eq!(level, super::level());
        assert_eq!(level, detect());
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if level >= Level::Avx2 {
                assert!(has!("avx2") && has!("fma"));
            }
            if level >= Level::Avx512 {
                assert!(
                    has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl")
                );
            }
            if level >= Level::Avx512Vnni {
                assert!(has!("avx512vnni"));
            }
        }
        assert!(has(Level::Baseline));
        assert!(!Level::name(level).is_empty());
    }
}
