//! The value checks that the engines' `validate` methods and entry points
//! share: one function, and so one message, per rule, each naming the field.

use crate::error::{Error, Result};

/// `Ok` when `ok`, else a value error for `field` with the message `why` builds
/// (built only on failure).
fn require(ok: bool, field: &'static str, why: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::value(field, why()))
    }
}

/// `v` is finite and in `[lo, hi]`.
pub fn range(field: &'static str, v: f64, lo: f64, hi: f64) -> Result<()> {
    require(v.is_finite() && (lo..=hi).contains(&v), field, || {
        format!("must be a finite number in [{lo:e}, {hi:e}], got {v}")
    })
}

/// The integer `v` is in `lo..=hi`.
pub fn int_range(field: &'static str, v: u64, lo: u64, hi: u64) -> Result<()> {
    require((lo..=hi).contains(&v), field, || {
        format!("must be in {lo}..={hi}, got {v}")
    })
}

/// `v` is finite and above 0.
pub fn positive(field: &'static str, v: f64) -> Result<()> {
    require(v.is_finite() && v > 0.0, field, || {
        format!("must be a positive finite number, got {v}")
    })
}

/// `v` is finite and at least 0.
pub fn nonnegative(field: &'static str, v: f64) -> Result<()> {
    require(v.is_finite() && v >= 0.0, field, || {
        format!("must be a finite number >= 0, got {v}")
    })
}

/// `v` is a probability, in `[0, 1]`.
pub fn probability(field: &'static str, v: f64) -> Result<()> {
    require((0.0..=1.0).contains(&v), field, || {
        format!("must be a probability in [0, 1], got {v}")
    })
}

/// A time after programming, `t` seconds: finite and at least 0.
pub fn time(field: &'static str, t: f64) -> Result<()> {
    require(t.is_finite() && t >= 0.0, field, || {
        format!("must be a finite number of seconds >= 0, got {t}")
    })
}

/// `devices_per_polarity` is 1, or 2 (the two-device rule of HERMES).
pub fn devices_per_polarity(d: usize) -> Result<()> {
    require((1..=2).contains(&d), "devices_per_polarity", || {
        format!("must be 1 or 2, got {d}")
    })
}

/// The index and value of the first non-finite value, if there is one.
pub fn first_non_finite(values: impl IntoIterator<Item = f64>) -> Option<(usize, f64)> {
    values.into_iter().enumerate().find(|(_, v)| !v.is_finite())
}

/// Every value of the C-ordered matrix `name` (`cols` columns) is finite;
/// the error gives the first other value and its row and column.
pub fn finite_matrix(name: &str, values: impl IntoIterator<Item = f64>, cols: usize) -> Result<()> {
    match first_non_finite(values) {
        None => Ok(()),
        Some((pos, v)) => Err(Error::Data(format!(
            "{name} contains a non-finite value ({v}) at row {}, column {}",
            pos / cols.max(1),
            pos % cols.max(1)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_field_and_the_value() {
        let err = |r: Result<()>| r.unwrap_err().to_string();
        assert!(range("a", 0.0, 1.0, 2.0).is_err() && range("a", 1.5, 1.0, 2.0).is_ok());
        assert!(err(range("a", f64::NAN, 0.0, 1.0)).contains("`a`"));
        assert!(err(int_range("b", 9, 1, 4)).contains("1..=4, got 9"));
        assert!(err(positive("c", 0.0)).contains("`c`"));
        assert!(nonnegative("d", 0.0).is_ok() && nonnegative("d", f64::INFINITY).is_err());
        assert!(err(probability("e", 1.5)).contains("`e`"));
        assert!(err(time("t_inference", -1.0)).contains("seconds >= 0, got -1"));
        assert!(devices_per_polarity(2).is_ok());
        assert!(err(devices_per_polarity(3)).contains("1 or 2, got 3"));
        assert_eq!(
            first_non_finite([1.0, f64::NAN, f64::INFINITY]).map(|p| p.0),
            Some(1)
        );
        let e = err(finite_matrix("X", [0.0, 1.0, 2.0, f64::INFINITY], 3));
        assert!(e.contains("(inf) at row 1, column 0"), "{e}");
    }
}
