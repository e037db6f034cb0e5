//! SORF projection of 16 rows at a time in structure-of-arrays form (AVX-512F,
//! float32): vector `k` holds coordinate `k` of 16 rows, so every butterfly of
//! the Walsh–Hadamard transform is one vertical add and one subtract (no
//! in-register shuffles, which dominate the row-wise transform of rows of 16
//! to 64 elements), and the sign diagonals are broadcasts. The result is
//! transposed back 16 × 16 at a time.
//!
//! Same bits as `hadamard::sorf_block_serial`: the butterflies are those of
//! the textbook transform (stages in increasing half-width, `a + b`, `a − b`),
//! the signs and the `1/n` scale are the same multiplications, only the order
//! in which independent operations run differs.

use std::arch::x86_64::{
    __m512, __mmask16, _mm512_add_ps, _mm512_castpd_ps, _mm512_castps_pd, _mm512_loadu_ps,
    _mm512_mask_storeu_ps, _mm512_mul_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_shuffle_f32x4,
    _mm512_sub_ps, _mm512_unpackhi_pd, _mm512_unpackhi_ps, _mm512_unpacklo_pd, _mm512_unpacklo_ps,
};

use super::SorfMatrix;

/// Textbook in-place FWHT across the `N` vectors (lane-wise).
#[inline(always)]
unsafe fn fwht_lanes<const N: usize>(v: &mut [__m512; N]) {
    let mut h = 1;
    while h < N {
        let mut start = 0;
        while start < N {
            for j in start..start + h {
                let (a, b) = (v[j], v[j + h]);
                v[j] = _mm512_add_ps(a, b);
                v[j + h] = _mm512_sub_ps(a, b);
            }
            start += 2 * h;
        }
        h *= 2;
    }
}

/// `v[k] ← v[k] · d[k]` (signs broadcast from memory).
#[inline(always)]
unsafe fn scale_lanes<const N: usize>(v: &mut [__m512; N], d: &[f32]) {
    for (vk, &dk) in v.iter_mut().zip(d) {
        *vk = _mm512_mul_ps(*vk, _mm512_set1_ps(dk));
    }
}

/// Transposes the 16 × 16 block `m` (vector `k` = row `k`) in place.
#[inline(always)]
unsafe fn transpose16(m: &mut [__m512; 16]) {
    let mut t = [_mm512_setzero_ps(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(m[2 * i], m[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(m[2 * i], m[2 * i + 1]);
    }
    let mut u = [_mm512_setzero_ps(); 16];
    for g in 0..4 {
        let (a, b, c, e) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
        let pd = _mm512_castps_pd;
        let ps = _mm512_castpd_ps;
        u[4 * g] = ps(_mm512_unpacklo_pd(pd(a), pd(c)));
        u[4 * g + 1] = ps(_mm512_unpackhi_pd(pd(a), pd(c)));
        u[4 * g + 2] = ps(_mm512_unpacklo_pd(pd(b), pd(e)));
        u[4 * g + 3] = ps(_mm512_unpackhi_pd(pd(b), pd(e)));
    }
    // u[4g + c] holds columns c, c + 4, c + 8, c + 12 of rows 4g..4g + 4.
    for c in 0..4 {
        let v0 = _mm512_shuffle_f32x4::<0x88>(u[c], u[4 + c]);
        let v1 = _mm512_shuffle_f32x4::<0xDD>(u[c], u[4 + c]);
        let v2 = _mm512_shuffle_f32x4::<0x88>(u[8 + c], u[12 + c]);
        let v3 = _mm512_shuffle_f32x4::<0xDD>(u[8 + c], u[12 + c]);
        m[c] = _mm512_shuffle_f32x4::<0x88>(v0, v2);
        m[c + 8] = _mm512_shuffle_f32x4::<0xDD>(v0, v2);
        m[c + 4] = _mm512_shuffle_f32x4::<0x88>(v1, v3);
        m[c + 12] = _mm512_shuffle_f32x4::<0xDD>(v1, v3);
    }
}

/// `dst (count × s) = X Wᵀ` for the `count` rows of `x` (`count` from `dst`),
/// SORF size `N` (16, 32 or 64), `d ≤ N`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn sorf_chunk<const N: usize>(
    x: &[f32],
    d: usize,
    w: &SorfMatrix<'_, f32>,
    dst: &mut [f32],
) {
    let (signs, s, scale) = (w.signs, w.n_components, w.scale);
    let count = dst.len() / s.max(1);
    let inv_n = _mm512_set1_ps(1.0 / N as f32);
    let sc = _mm512_set1_ps(scale);
    let mut g0 = 0;
    while g0 < count {
        let rows = 16.min(count - g0);
        // Coordinates of the group's rows (missing rows and coordinates d..N
        // are zero, as the zero-padded rows of the row-wise transform).
        let mut xt = [_mm512_setzero_ps(); N];
        let mut lane = [0f32; 16];
        for (k, xk) in xt.iter_mut().enumerate().take(d) {
            for (l, v) in lane.iter_mut().enumerate().take(rows) {
                *v = x[(g0 + l) * d + k];
            }
            *xk = _mm512_loadu_ps(lane.as_ptr());
        }
        for b in 0..s.div_ceil(N) {
            let sg = &signs[b * 3 * N..(b + 1) * 3 * N];
            let mut v = xt;
            scale_lanes(&mut v, &sg[2 * N..]);
            fwht_lanes(&mut v);
            scale_lanes(&mut v, &sg[N..2 * N]);
            fwht_lanes(&mut v);
            scale_lanes(&mut v, &sg[..N]);
            fwht_lanes(&mut v);
            for vk in &mut v {
                *vk = _mm512_mul_ps(_mm512_mul_ps(*vk, inv_n), sc);
            }
            let lo = b * N;
            let width = N.min(s - lo);
            for slab in 0..N / 16 {
                let k0 = slab * 16;
                if k0 >= width {
                    break;
                }
                let mut m = [_mm512_setzero_ps(); 16];
                m.copy_from_slice(&v[k0..k0 + 16]);
                transpose16(&mut m);
                let take = (width - k0).min(16);
                let mask: __mmask16 = if take == 16 {
                    0xFFFF
                } else {
                    (1u16 << take) - 1
                };
                for (l, row) in m.iter().enumerate().take(rows) {
                    let p = dst.as_mut_ptr().add((g0 + l) * s + lo + k0);
                    _mm512_mask_storeu_ps(p, mask, *row);
                }
            }
        }
        g0 += 16;
    }
}
