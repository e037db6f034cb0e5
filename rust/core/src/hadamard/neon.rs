//! aarch64 Advanced SIMD kernels (NEON is part of the aarch64 baseline, so no
//! run-time check is needed).

use std::arch::aarch64::*;

use super::generic::{kernel_table, Simd};
use super::Kernels;

const SIGN32: u32 = 0x8000_0000;
const SIGN64: u64 = 0x8000_0000_0000_0000;

/// Flips the sign bit of the lanes set in `mask` (exact: `a + (-b) == a - b`).
#[inline(always)]
unsafe fn negate_f32(v: float32x4_t, mask: &[u32; 4]) -> float32x4_t {
    vreinterpretq_f32_u32(veorq_u32(
        vreinterpretq_u32_f32(v),
        vld1q_u32(mask.as_ptr()),
    ))
}

pub(crate) struct NeonF32;
impl Simd for NeonF32 {
    type T = f32;
    type V = float32x4_t;
    const LANES: usize = 4;
    #[inline(always)]
    unsafe fn load(p: *const f32) -> float32x4_t {
        vld1q_f32(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: float32x4_t) {
        vst1q_f32(p, v)
    }
    #[inline(always)]
    unsafe fn add(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        vaddq_f32(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        vsubq_f32(a, b)
    }
    #[inline(always)]
    unsafe fn mul(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        vmulq_f32(a, b)
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> float32x4_t {
        vdupq_n_f32(x)
    }
    #[inline(always)]
    unsafe fn in_register(v: float32x4_t) -> float32x4_t {
        // Partner b = x[i ^ h]; lower lanes b + v (= v + b), upper b + (-v).
        let b = vrev64q_f32(v);
        let v = vaddq_f32(b, negate_f32(v, &[0, SIGN32, 0, SIGN32]));
        let b = vextq_f32::<2>(v, v);
        vaddq_f32(b, negate_f32(v, &[0, 0, SIGN32, SIGN32]))
    }
    #[inline(always)]
    unsafe fn peak(acc: float32x4_t, v: float32x4_t) -> float32x4_t {
        vmaxq_f32(acc, vabsq_f32(v))
    }
    #[inline(always)]
    unsafe fn any_gt(v: float32x4_t, t: float32x4_t) -> bool {
        vmaxvq_u32(vcgtq_f32(v, t)) != 0
    }
}

pub(crate) struct NeonF64;
impl Simd for NeonF64 {
    type T = f64;
    type V = float64x2_t;
    const LANES: usize = 2;
    #[inline(always)]
    unsafe fn load(p: *const f64) -> float64x2_t {
        vld1q_f64(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f64, v: float64x2_t) {
        vst1q_f64(p, v)
    }
    #[inline(always)]
    unsafe fn add(a: float64x2_t, b: float64x2_t) -> float64x2_t {
        vaddq_f64(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: float64x2_t, b: float64x2_t) -> float64x2_t {
        vsubq_f64(a, b)
    }
    #[inline(always)]
    unsafe fn mul(a: float64x2_t, b: float64x2_t) -> float64x2_t {
        vmulq_f64(a, b)
    }
    #[inline(always)]
    unsafe fn splat(x: f64) -> float64x2_t {
        vdupq_n_f64(x)
    }
    #[inline(always)]
    unsafe fn in_register(v: float64x2_t) -> float64x2_t {
        let mask = [0u64, SIGN64];
        let b = vextq_f64::<1>(v, v);
        let neg = vreinterpretq_f64_u64(veorq_u64(
            vreinterpretq_u64_f64(v),
            vld1q_u64(mask.as_ptr()),
        ));
        vaddq_f64(b, neg)
    }
    #[inline(always)]
    unsafe fn peak(acc: float64x2_t, v: float64x2_t) -> float64x2_t {
        vmaxq_f64(acc, vabsq_f64(v))
    }
    #[inline(always)]
    unsafe fn any_gt(v: float64x2_t, t: float64x2_t) -> bool {
        vmaxvq_u32(vreinterpretq_u32_u64(vcgtq_f64(v, t))) != 0
    }
}

pub(crate) fn kernels_f32() -> Kernels<f32> {
    kernel_table!(NeonF32, f32, "neon")
}

pub(crate) fn kernels_f64() -> Kernels<f64> {
    kernel_table!(NeonF64, f64, "neon")
}
