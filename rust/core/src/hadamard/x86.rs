//! x86-64 kernels: SSE2 (baseline), AVX2, AVX-512F. Each type below only says
//! how to load, store, add and how to run the in-register stages; the transform
//! itself is the generic code in `generic.rs`.

use std::arch::x86_64::{
    __m128, __m128d, __m256, __m256d, __m512, __m512d, _mm256_add_pd, _mm256_add_ps,
    _mm256_andnot_pd, _mm256_andnot_ps, _mm256_blend_pd, _mm256_blend_ps, _mm256_cmp_pd,
    _mm256_cmp_ps, _mm256_loadu_pd, _mm256_loadu_ps, _mm256_max_pd, _mm256_max_ps,
    _mm256_movemask_pd, _mm256_movemask_ps, _mm256_mul_pd, _mm256_mul_ps, _mm256_permute2f128_pd,
    _mm256_permute2f128_ps, _mm256_permute_pd, _mm256_permute_ps, _mm256_set1_pd, _mm256_set1_ps,
    _mm256_storeu_pd, _mm256_storeu_ps, _mm256_sub_pd, _mm256_sub_ps, _mm512_abs_pd, _mm512_abs_ps,
    _mm512_add_pd, _mm512_add_ps, _mm512_cmp_pd_mask, _mm512_cmp_ps_mask, _mm512_loadu_pd,
    _mm512_loadu_ps, _mm512_mask_sub_pd, _mm512_mask_sub_ps, _mm512_max_pd, _mm512_max_ps,
    _mm512_mul_pd, _mm512_mul_ps, _mm512_permute_pd, _mm512_permute_ps, _mm512_set1_pd,
    _mm512_set1_ps, _mm512_shuffle_f32x4, _mm512_shuffle_f64x2, _mm512_storeu_pd, _mm512_storeu_ps,
    _mm512_sub_pd, _mm512_sub_ps, _mm_add_pd, _mm_add_ps, _mm_andnot_pd, _mm_andnot_ps,
    _mm_cmpgt_pd, _mm_cmpgt_ps, _mm_loadu_pd, _mm_loadu_ps, _mm_max_pd, _mm_max_ps, _mm_movehl_ps,
    _mm_movelh_ps, _mm_movemask_pd, _mm_movemask_ps, _mm_mul_pd, _mm_mul_ps, _mm_set1_pd,
    _mm_set1_ps, _mm_set_pd, _mm_set_ps, _mm_shuffle_ps, _mm_storeu_pd, _mm_storeu_ps, _mm_sub_pd,
    _mm_sub_ps, _mm_unpackhi_pd, _mm_unpacklo_pd, _mm_xor_pd, _mm_xor_ps, _CMP_GT_OQ,
};

use super::generic::{kernel_table, Simd};
use super::{Isa, Kernels};

/// Flips the sign bit of the lanes set in `mask` (exact: `a + (-b) == a - b`).
#[inline(always)]
unsafe fn sse_negate_ps(v: __m128, mask: __m128) -> __m128 {
    _mm_xor_ps(v, mask)
}

pub(crate) struct Sse2F32;
impl Simd for Sse2F32 {
    type T = f32;
    type V = __m128;
    const LANES: usize = 4;
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m128 {
        _mm_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m128) {
        _mm_storeu_ps(p, v);
    }
    #[inline(always)]
    unsafe fn add(a: __m128, b: __m128) -> __m128 {
        _mm_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: __m128, b: __m128) -> __m128 {
        _mm_sub_ps(a, b)
    }
    #[inline(always)]
    unsafe fn mul(a: __m128, b: __m128) -> __m128 {
        _mm_mul_ps(a, b)
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m128 {
        _mm_set1_ps(x)
    }
    #[inline(always)]
    unsafe fn in_register(v: __m128) -> __m128 {
        // h = 1: [x0, x0, x2, x2] + [x1, -x1, x3, -x3]
        let lo = _mm_shuffle_ps::<0xA0>(v, v);
        let hi = _mm_shuffle_ps::<0xF5>(v, v);
        let v = _mm_add_ps(lo, sse_negate_ps(hi, _mm_set_ps(-0.0, 0.0, -0.0, 0.0)));
        // h = 2: [x0, x1, x0, x1] + [x2, x3, -x2, -x3]
        let lo = _mm_movelh_ps(v, v);
        let hi = _mm_movehl_ps(v, v);
        _mm_add_ps(lo, sse_negate_ps(hi, _mm_set_ps(-0.0, -0.0, 0.0, 0.0)))
    }
    #[inline(always)]
    unsafe fn peak(acc: __m128, v: __m128) -> __m128 {
        _mm_max_ps(acc, _mm_andnot_ps(_mm_set1_ps(-0.0), v))
    }
    #[inline(always)]
    unsafe fn any_gt(v: __m128, t: __m128) -> bool {
        _mm_movemask_ps(_mm_cmpgt_ps(v, t)) != 0
    }
}

pub(crate) struct Sse2F64;
impl Simd for Sse2F64 {
    type T = f64;
    type V = __m128d;
    const LANES: usize = 2;
    #[inline(always)]
    unsafe fn load(p: *const f64) -> __m128d {
        _mm_loadu_pd(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f64, v: __m128d) {
        _mm_storeu_pd(p, v);
    }
    #[inline(always)]
    unsafe fn add(a: __m128d, b: __m128d) -> __m128d {
        _mm_add_pd(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: __m128d, b: __m128d) -> __m128d {
        _mm_sub_pd(a, b)
    }
    #[inline(always)]
    unsafe fn mul(a: __m128d, b: __m128d) -> __m128d {
        _mm_mul_pd(a, b)
    }
    #[inline(always)]
    unsafe fn splat(x: f64) -> __m128d {
        _mm_set1_pd(x)
    }
    #[inline(always)]
    unsafe fn in_register(v: __m128d) -> __m128d {
        // [x0, x0] + [x1, -x1]
        let lo = _mm_unpacklo_pd(v, v);
        let hi = _mm_unpackhi_pd(v, v);
        _mm_add_pd(lo, _mm_xor_pd(hi, _mm_set_pd(-0.0, 0.0)))
    }
    #[inline(always)]
    unsafe fn peak(acc: __m128d, v: __m128d) -> __m128d {
        _mm_max_pd(acc, _mm_andnot_pd(_mm_set1_pd(-0.0), v))
    }
    #[inline(always)]
    unsafe fn any_gt(v: __m128d, t: __m128d) -> bool {
        _mm_movemask_pd(_mm_cmpgt_pd(v, t)) != 0
    }
}

pub(crate) struct Avx2F32;
impl Simd for Avx2F32 {
    type T = f32;
    type V = __m256;
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m256 {
        _mm256_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m256) {
        _mm256_storeu_ps(p, v);
    }
    #[inline(always)]
    unsafe fn add(a: __m256, b: __m256) -> __m256 {
        _mm256_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: __m256, b: __m256) -> __m256 {
        _mm256_sub_ps(a, b)
    }
    #[inline(always)]
    unsafe fn mul(a: __m256, b: __m256) -> __m256 {
        _mm256_mul_ps(a, b)
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m256 {
        _mm256_set1_ps(x)
    }
    #[inline(always)]
    unsafe fn in_register(v: __m256) -> __m256 {
        // Partner b = x[i ^ h]; lower lanes keep v + b, upper lanes b - v.
        let b = _mm256_permute_ps::<0xB1>(v);
        let v = _mm256_blend_ps::<0xAA>(_mm256_add_ps(v, b), _mm256_sub_ps(b, v));
        let b = _mm256_permute_ps::<0x4E>(v);
        let v = _mm256_blend_ps::<0xCC>(_mm256_add_ps(v, b), _mm256_sub_ps(b, v));
        let b = _mm256_permute2f128_ps::<0x01>(v, v);
        _mm256_blend_ps::<0xF0>(_mm256_add_ps(v, b), _mm256_sub_ps(b, v))
    }
    #[inline(always)]
    unsafe fn peak(acc: __m256, v: __m256) -> __m256 {
        _mm256_max_ps(acc, _mm256_andnot_ps(_mm256_set1_ps(-0.0), v))
    }
    #[inline(always)]
    unsafe fn any_gt(v: __m256, t: __m256) -> bool {
        _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(v, t)) != 0
    }
}

pub(crate) struct Avx2F64;
impl Simd for Avx2F64 {
    type T = f64;
    type V = __m256d;
    const LANES: usize = 4;
    #[inline(always)]
    unsafe fn load(p: *const f64) -> __m256d {
        _mm256_loadu_pd(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f64, v: __m256d) {
        _mm256_storeu_pd(p, v);
    }
    #[inline(always)]
    unsafe fn add(a: __m256d, b: __m256d) -> __m256d {
        _mm256_add_pd(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: __m256d, b: __m256d) -> __m256d {
        _mm256_sub_pd(a, b)
    }
    #[inline(always)]
    unsafe fn mul(a: __m256d, b: __m256d) -> __m256d {
        _mm256_mul_pd(a, b)
    }
    #[inline(always)]
    unsafe fn splat(x: f64) -> __m256d {
        _mm256_set1_pd(x)
    }
    #[inline(always)]
    unsafe fn in_register(v: __m256d) -> __m256d {
        let b = _mm256_permute_pd::<0x5>(v);
        let v = _mm256_blend_pd::<0xA>(_mm256_add_pd(v, b), _mm256_sub_pd(b, v));
        let b = _mm256_permute2f128_pd::<0x01>(v, v);
        _mm256_blend_pd::<0xC>(_mm256_add_pd(v, b), _mm256_sub_pd(b, v))
    }
    #[inline(always)]
    unsafe fn peak(acc: __m256d, v: __m256d) -> __m256d {
        _mm256_max_pd(acc, _mm256_andnot_pd(_mm256_set1_pd(-0.0), v))
    }
    #[inline(always)]
    unsafe fn any_gt(v: __m256d, t: __m256d) -> bool {
        _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_GT_OQ>(v, t)) != 0
    }
}

pub(crate) struct Avx512F32;
impl Simd for Avx512F32 {
    type T = f32;
    type V = __m512;
    const LANES: usize = 16;
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m512 {
        _mm512_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m512) {
        _mm512_storeu_ps(p, v);
    }
    #[inline(always)]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        _mm512_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: __m512, b: __m512) -> __m512 {
        _mm512_sub_ps(a, b)
    }
    #[inline(always)]
    unsafe fn mul(a: __m512, b: __m512) -> __m512 {
        _mm512_mul_ps(a, b)
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m512 {
        _mm512_set1_ps(x)
    }
    #[inline(always)]
    unsafe fn in_register(v: __m512) -> __m512 {
        // Partner b = x[i ^ h]; all lanes get v + b, then the upper lanes of
        // each pair are overwritten with b - v through a lane mask.
        let b = _mm512_permute_ps::<0xB1>(v);
        let v = _mm512_mask_sub_ps(_mm512_add_ps(v, b), 0xAAAA, b, v);
        let b = _mm512_permute_ps::<0x4E>(v);
        let v = _mm512_mask_sub_ps(_mm512_add_ps(v, b), 0xCCCC, b, v);
        let b = _mm512_shuffle_f32x4::<0xB1>(v, v);
        let v = _mm512_mask_sub_ps(_mm512_add_ps(v, b), 0xF0F0, b, v);
        let b = _mm512_shuffle_f32x4::<0x4E>(v, v);
        _mm512_mask_sub_ps(_mm512_add_ps(v, b), 0xFF00, b, v)
    }
    #[inline(always)]
    unsafe fn peak(acc: __m512, v: __m512) -> __m512 {
        _mm512_max_ps(acc, _mm512_abs_ps(v))
    }
    #[inline(always)]
    unsafe fn any_gt(v: __m512, t: __m512) -> bool {
        _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, t) != 0
    }
}

pub(crate) struct Avx512F64;
impl Simd for Avx512F64 {
    type T = f64;
    type V = __m512d;
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn load(p: *const f64) -> __m512d {
        _mm512_loadu_pd(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f64, v: __m512d) {
        _mm512_storeu_pd(p, v);
    }
    #[inline(always)]
    unsafe fn add(a: __m512d, b: __m512d) -> __m512d {
        _mm512_add_pd(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: __m512d, b: __m512d) -> __m512d {
        _mm512_sub_pd(a, b)
    }
    #[inline(always)]
    unsafe fn mul(a: __m512d, b: __m512d) -> __m512d {
        _mm512_mul_pd(a, b)
    }
    #[inline(always)]
    unsafe fn splat(x: f64) -> __m512d {
        _mm512_set1_pd(x)
    }
    #[inline(always)]
    unsafe fn in_register(v: __m512d) -> __m512d {
        let b = _mm512_permute_pd::<0x55>(v);
        let v = _mm512_mask_sub_pd(_mm512_add_pd(v, b), 0xAA, b, v);
        let b = _mm512_shuffle_f64x2::<0xB1>(v, v);
        let v = _mm512_mask_sub_pd(_mm512_add_pd(v, b), 0xCC, b, v);
        let b = _mm512_shuffle_f64x2::<0x4E>(v, v);
        _mm512_mask_sub_pd(_mm512_add_pd(v, b), 0xF0, b, v)
    }
    #[inline(always)]
    unsafe fn peak(acc: __m512d, v: __m512d) -> __m512d {
        _mm512_max_pd(acc, _mm512_abs_pd(v))
    }
    #[inline(always)]
    unsafe fn any_gt(v: __m512d, t: __m512d) -> bool {
        _mm512_cmp_pd_mask::<_CMP_GT_OQ>(v, t) != 0
    }
}

/// The f32 kernels of `isa`, if this CPU runs it.
pub(crate) fn kernels_f32(isa: Isa) -> Option<Kernels<f32>> {
    if !isa.is_available() {
        return None;
    }
    match isa {
        Isa::Sse2 => Some(kernel_table!(Sse2F32, f32, "sse2")),
        Isa::Avx2 => Some(kernel_table!(Avx2F32, f32, "avx2")),
        Isa::Avx512 => Some(kernel_table!(Avx512F32, f32, "avx512f")),
        _ => None,
    }
}

/// The f64 kernels of `isa`, if this CPU runs it.
pub(crate) fn kernels_f64(isa: Isa) -> Option<Kernels<f64>> {
    if !isa.is_available() {
        return None;
    }
    match isa {
        Isa::Sse2 => Some(kernel_table!(Sse2F64, f64, "sse2")),
        Isa::Avx2 => Some(kernel_table!(Avx2F64, f64, "avx2")),
        Isa::Avx512 => Some(kernel_table!(Avx512F64, f64, "avx512f")),
        _ => None,
    }
}
