//! The integer multiply–accumulate kernel of the crossbar: `acc[o] = Σ_c x[c] ·
//! g[o, c]` over one tile in the pair layout of `AnalogMatrix::codes_cm` (for
//! input pair `p`, the padded rows as interleaved i16 `g[o, 2p], g[o, 2p+1]`).
//!
//! One `vpmaddwd` multiplies 16 (AVX-512) or 8 (AVX2) such pairs by the
//! broadcast input pair and adds the two products of each: 32 or 16 exact
//! multiply–adds per instruction; AVX-512 VNNI (`vpdpwssd`) also fuses the
//! accumulation. All paths wrap in i32 the same way, and the caller has checked
//! that the sums cannot overflow, so every path gives the same integers.

/// Signature of a kernel: `(g, rows_padded, x_pairs, acc)`.
pub(super) type Kernel = unsafe fn(&[i16], usize, &[i16], &mut [i32]);

/// `acc[s·acc_stride + r] = Σ_p x_s[2p]·g[p][r][0] + x_s[2p+1]·g[p][r][1]` for
/// `ns` samples whose codes lie back to back in `x` (`x_len` each, even):
/// the weights are loaded once per group of samples (register blocking over
/// samples), which is what makes a batch compute-bound instead of bound by
/// streaming the tile from L2 once per sample. Same integers as [`Kernel`].
pub(super) type MultiKernel = unsafe fn(&[i16], usize, &[i16], usize, usize, &mut [i32], usize);

/// The best multi-sample kernel of this CPU.
pub(super) fn best_multi() -> MultiKernel {
    // The kernels enable "avx512f,avx512bw(,avx512vnni)", implied by the
    // level that selects them.
    #[cfg(target_arch = "x86_64")]
    match crate::cpu::level() {
        crate::cpu::Level::Avx512Vnni => return x86::multi_avx512_vnni,
        crate::cpu::Level::Avx512 => return x86::multi_avx512,
        crate::cpu::Level::Avx2 | crate::cpu::Level::Baseline => {}
    }
    multi_by_sample
}

/// [`MultiKernel`] as one [`Kernel`] call per sample.
pub(super) unsafe fn multi_by_sample(
    g: &[i16],
    rp: usize,
    x: &[i16],
    x_len: usize,
    ns: usize,
    acc: &mut [i32],
    acc_stride: usize,
) {
    let one = best();
    for s in 0..ns {
        one(
            g,
            rp,
            &x[s * x_len..(s + 1) * x_len],
            &mut acc[s * acc_stride..s * acc_stride + rp],
        );
    }
}

/// The best single-sample kernel of this CPU, for [`multi_by_sample`] (CPUs
/// with AVX-512BW use the multi-sample kernels, whose `S = 1` case covers it).
pub(super) fn best() -> Kernel {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::cpu::has(crate::cpu::Level::Avx2) {
            return x86::pairs_avx2;
        }
    }
    pairs_portable
}

/// Portable kernel (also the reference the SIMD kernels are tested against).
///
/// # Safety
/// Safe to call; `unsafe` only to share the [`Kernel`] signature.
pub(super) unsafe fn pairs_portable(g: &[i16], rp: usize, x: &[i16], acc: &mut [i32]) {
    acc[..rp].fill(0);
    for p in 0..x.len() / 2 {
        let (x0, x1) = (i32::from(x[2 * p]), i32::from(x[2 * p + 1]));
        let gp = &g[p * 2 * rp..(p + 1) * 2 * rp];
        for (a, pair) in acc[..rp].iter_mut().zip(gp.chunks_exact(2)) {
            *a = a.wrapping_add((x0 * i32::from(pair[0])).wrapping_add(x1 * i32::from(pair[1])));
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        _mm256_add_epi32, _mm256_loadu_si256, _mm256_madd_epi16, _mm256_set1_epi32,
        _mm256_setzero_si256, _mm256_storeu_si256, _mm512_add_epi32, _mm512_dpwssd_epi32,
        _mm512_loadu_si512, _mm512_madd_epi16, _mm512_set1_epi32, _mm512_setzero_si512,
        _mm512_storeu_si512,
    };

    /// The input pair `(x0, x1)` as one i32 lane (x0 in the low half).
    #[inline(always)]
    fn pack(x0: i16, x1: i16) -> i32 {
        (u32::from(x0 as u16) | (u32::from(x1 as u16) << 16)) as i32
    }

    /// Register-blocked [`super::MultiKernel`]: `S` samples × 4 vectors of 16
    /// rows (16 accumulators for S = 4), each weight vector loaded once per
    /// group and used `S` times.
    macro_rules! avx512_multi_kernel {
        ($name:ident, $group:ident, $features:literal, $fma:expr) => {
            #[target_feature(enable = $features)]
            unsafe fn $group<const S: usize>(
                g: &[i16],
                rp: usize,
                x: &[i16],
                x_len: usize,
                acc: &mut [i32],
                acc_stride: usize,
            ) {
                let fma = $fma;
                let pairs = x_len / 2;
                let gp = g.as_ptr();
                // The input pair (x[2p], x[2p+1]) of sample s, as one i32 lane
                // (x[2p] in the low half: little-endian memory order), read
                // straight from the codes — no packed copy per call.
                let xp = |s: usize, p: usize| {
                    debug_assert!(s * x_len + 2 * p + 1 < x.len());
                    x.as_ptr()
                        .add(s * x_len + 2 * p)
                        .cast::<i32>()
                        .read_unaligned()
                };
                let mut ob = 0;
                while ob + 64 <= rp {
                    let mut a = [[_mm512_setzero_si512(); 4]; S];
                    for p in 0..pairs {
                        let base = gp.add(p * 2 * rp + 2 * ob);
                        let gv = [0, 1, 2, 3].map(|k| _mm512_loadu_si512(base.add(32 * k).cast()));
                        for s in 0..S {
                            let xb = _mm512_set1_epi32(xp(s, p));
                            for k in 0..4 {
                                a[s][k] = fma(a[s][k], xb, gv[k]);
                            }
                        }
                    }
                    for s in 0..S {
                        for k in 0..4 {
                            let dst = acc.as_mut_ptr().add(s * acc_stride + ob + 16 * k);
                            _mm512_storeu_si512(dst.cast(), a[s][k]);
                        }
                    }
                    ob += 64;
                }
                while ob < rp {
                    let mut a = [_mm512_setzero_si512(); S];
                    for p in 0..pairs {
                        let gv = _mm512_loadu_si512(gp.add(p * 2 * rp + 2 * ob).cast());
                        for s in 0..S {
                            a[s] = fma(a[s], _mm512_set1_epi32(xp(s, p)), gv);
                        }
                    }
                    for s in 0..S {
                        let dst = acc.as_mut_ptr().add(s * acc_stride + ob);
                        _mm512_storeu_si512(dst.cast(), a[s]);
                    }
                    ob += 16;
                }
            }

            #[target_feature(enable = $features)]
            pub(in crate::crossbar) unsafe fn $name(
                g: &[i16],
                rp: usize,
                x: &[i16],
                x_len: usize,
                ns: usize,
                acc: &mut [i32],
                acc_stride: usize,
            ) {
                let pairs = x_len / 2;
                assert!(x_len.is_multiple_of(2) && x.len() >= ns * x_len);
                assert!(g.len() >= pairs * 2 * rp && rp.is_multiple_of(16) && acc_stride >= rp);
                assert!(ns == 0 || acc.len() >= (ns - 1) * acc_stride + rp);
                let mut s0 = 0;
                while s0 + 4 <= ns {
                    $group::<4>(
                        g,
                        rp,
                        &x[s0 * x_len..],
                        x_len,
                        &mut acc[s0 * acc_stride..],
                        acc_stride,
                    );
                    s0 += 4;
                }
                while s0 < ns {
                    $group::<1>(
                        g,
                        rp,
                        &x[s0 * x_len..],
                        x_len,
                        &mut acc[s0 * acc_stride..],
                        acc_stride,
                    );
                    s0 += 1;
                }
            }
        };
    }

    avx512_multi_kernel!(multi_avx512, group_avx512, "avx512f,avx512bw", |a, x, g| {
        _mm512_add_epi32(a, _mm512_madd_epi16(x, g))
    });
    avx512_multi_kernel!(
        multi_avx512_vnni,
        group_avx512_vnni,
        "avx512f,avx512bw,avx512vnni",
        |a, x, g| _mm512_dpwssd_epi32(a, x, g)
    );

    #[target_feature(enable = "avx2")]
    pub(in crate::crossbar) unsafe fn pairs_avx2(g: &[i16], rp: usize, x: &[i16], acc: &mut [i32]) {
        let pairs = x.len() / 2;
        assert!(g.len() >= pairs * 2 * rp && acc.len() >= rp && rp.is_multiple_of(16));
        let gp = g.as_ptr();
        let mut ob = 0;
        while ob < rp {
            let width = if ob + 64 <= rp { 8 } else { 2 };
            let mut a = [_mm256_setzero_si256(); 8];
            for p in 0..pairs {
                let xp = _mm256_set1_epi32(pack(x[2 * p], x[2 * p + 1]));
                let base = gp.add(p * 2 * rp + 2 * ob);
                for (k, ak) in a.iter_mut().enumerate().take(width) {
                    let gv = _mm256_loadu_si256(base.add(16 * k).cast());
                    *ak = _mm256_add_epi32(*ak, _mm256_madd_epi16(xp, gv));
                }
            }
            for (k, ak) in a.iter().enumerate().take(width) {
                _mm256_storeu_si256(acc.as_mut_ptr().add(ob + 8 * k).cast(), *ak);
            }
            ob += 8 * width;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_gives_the_same_integers() {
        let mut kernels: Vec<Kernel> = vec![pairs_portable, best()];
        #[cfg(target_arch = "x86_64")]
        {
            if crate::cpu::has(crate::cpu::Level::Avx2) {
                kernels.push(x86::pairs_avx2);
            }
        }
        for (rp, cols) in [(16usize, 2usize), (80, 22), (256, 256), (48, 6)] {
            let g: Vec<i16> = (0..rp * cols)
                .map(|i| ((i as i64 * 7919) % 32769 - 16384) as i16)
                .collect();
            let x: Vec<i16> = (0..cols)
                .map(|i| ((i as i64 * 31) % 255 - 127) as i16)
                .collect();
            let mut want = vec![0i32; rp];
            // SAFETY: portable kernel.
            unsafe { pairs_portable(&g, rp, &x, &mut want) };
            for k in &kernels {
                let mut got = vec![0i32; rp];
                // SAFETY: kernels come from feature checks above.
                unsafe { k(&g, rp, &x, &mut got) };
                assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn multi_sample_kernels_give_the_per_sample_integers() {
        let mut kernels: Vec<MultiKernel> = vec![multi_by_sample, best_multi()];
        #[cfg(target_arch = "x86_64")]
        {
            if crate::cpu::has(crate::cpu::Level::Avx512) {
                kernels.push(x86::multi_avx512);
            }
        }
        for (rp, cols, ns) in [
            (16usize, 2usize, 1usize),
            (80, 22, 7),
            (256, 256, 9),
            (48, 6, 4),
        ] {
            let g: Vec<i16> = (0..rp * cols)
                .map(|i| ((i as i64 * 7919) % 32769 - 16384) as i16)
                .collect();
            let x: Vec<i16> = (0..cols * ns)
                .map(|i| ((i as i64 * 31) % 255 - 127) as i16)
                .collect();
            let stride = rp + 16;
            let mut want = vec![0i32; ns * stride];
            for s in 0..ns {
                // SAFETY: portable kernel.
                unsafe {
                    pairs_portable(
                        &g,
                        rp,
                        &x[s * cols..(s + 1) * cols],
                        &mut want[s * stride..s * stride + rp],
                    );
                };
            }
            for k in &kernels {
                let mut got = vec![0i32; ns * stride];
                // SAFETY: kernels come from feature checks above.
                unsafe { k(&g, rp, &x, cols, ns, &mut got, stride) };
                assert_eq!(got, want);
            }
        }
    }
}
