//! The textbook iterative transform, kept deliberately naive: it is the
//! reference that every optimised path must match bit for bit.

use super::Float;

/// In-place FWHT of one row: `x ← scale · H · diag(signs) · x`.
///
/// Stages run in increasing half-width `h`; each butterfly writes `a + b` and
/// `a - b`. Panics if `n` is not a power of two or `signs` has another length.
pub fn fwht_reference<T: Float>(x: &mut [T], signs: Option<&[T]>, scale: Option<T>) {
    let n = x.len();
    assert!(
        n == 0 || n.is_power_of_two(),
        "length must be a power of two"
    );
    if let Some(s) = signs {
        assert_eq!(s.len(), n, "signs length");
        for (xi, si) in x.iter_mut().zip(s) {
            *xi = *xi * *si;
        }
    }
    let mut h = 1;
    while h < n {
        for start in (0..n).step_by(2 * h) {
            for j in start..start + h {
                let a = x[j];
                let b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
        }
        h *= 2;
    }
    if let Some(s) = scale {
        for xi in x.iter_mut() {
            *xi = *xi * s;
        }
    }
}
