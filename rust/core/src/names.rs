//! The names of every mode enum, as users spell them in configs and keyword
//! arguments: the one table per enum, the one parser, and the choice lists the
//! bindings hand to Python (`analogkernels._core._choices()`); likewise the
//! names of the PCM device state codes (`analogkernels._core._device_codes()`).

use crate::crossbar::{DriftCompensation, Programming, WeightScaling};
use crate::error::{Error, Result};
use crate::hadamard::Isa;
use crate::noise_models::NoiseModel;
use crate::pcm::{Fault, Phase};

/// An enum with user-facing names.
pub trait Named: Copy + PartialEq + 'static {
    /// The config field or argument that takes these names (for messages).
    const FIELD: &'static str;
    /// Every value with its name, in the order the documentation lists them.
    const NAMES: &'static [(&'static str, Self)];

    /// The user-facing name.
    fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("?", |(n, _)| n)
    }

    /// Parses a name; the error names [`Named::FIELD`] and the choices.
    fn from_name(name: &str) -> Result<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, v)| v)
            .ok_or_else(|| {
                Error::value(
                    Self::FIELD,
                    format!("{name:?}; expected one of {}", Self::choices_text()),
                )
            })
    }

    /// The names, in order.
    fn choices() -> Vec<&'static str> {
        Self::NAMES.iter().map(|(n, _)| *n).collect()
    }

    /// The names quoted and comma-separated, for messages.
    fn choices_text() -> String {
        Self::NAMES
            .iter()
            .map(|(n, _)| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Named for NoiseModel {
    const FIELD: &'static str = "noise_model";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("hermes", NoiseModel::Hermes),
        ("pcm", NoiseModel::Pcm),
        ("none", NoiseModel::None),
    ];
}

impl Named for WeightScaling {
    const FIELD: &'static str = "weight_scaling";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("tile", WeightScaling::PerTile),
        ("column", WeightScaling::PerColumn),
    ];
}

impl Named for Programming {
    const FIELD: &'static str = "programming";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("statistical", Programming::Statistical),
        ("iterative", Programming::Iterative),
    ];
}

impl Named for DriftCompensation {
    const FIELD: &'static str = "drift_compensation";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("global", DriftCompensation::Global),
        ("column", DriftCompensation::PerColumn),
        ("none", DriftCompensation::None),
    ];
}

impl Named for Isa {
    const FIELD: &'static str = "isa";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("scalar", Isa::Scalar),
        ("sse2", Isa::Sse2),
        ("neon", Isa::Neon),
        ("avx2", Isa::Avx2),
        ("avx512f", Isa::Avx512),
    ];
}

impl Named for Phase {
    const FIELD: &'static str = "phase";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("reset", Phase::Reset),
        ("set", Phase::Set),
        ("intermediate", Phase::Intermediate),
    ];
}

impl Named for Fault {
    const FIELD: &'static str = "fault";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("none", Fault::None),
        ("stuck_reset", Fault::StuckReset),
        ("stuck_set", Fault::StuckSet),
    ];
}

/// `(array, [(code, name)])` of the per-device state codes that
/// `pcm::DeviceArray` stores as `u8` (its `phase` and `fault` arrays), for
/// the bindings.
pub fn device_codes() -> Vec<(&'static str, Vec<(u8, &'static str)>)> {
    vec![
        (
            Phase::FIELD,
            Phase::NAMES.iter().map(|&(n, v)| (v as u8, n)).collect(),
        ),
        (
            Fault::FIELD,
            Fault::NAMES.iter().map(|&(n, v)| (v as u8, n)).collect(),
        ),
    ]
}

/// `(field, names)` of every named enum, for the bindings.
pub fn all_choices() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        (NoiseModel::FIELD, NoiseModel::choices()),
        (WeightScaling::FIELD, WeightScaling::choices()),
        (Programming::FIELD, Programming::choices()),
        (DriftCompensation::FIELD, DriftCompensation::choices()),
        (Isa::FIELD, Isa::choices()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T: Named + std::fmt::Debug>() {
        for &(name, value) in T::NAMES {
            assert_eq!(T::from_name(name), Ok(value));
            assert_eq!(value.name(), name);
        }
        let err = T::from_name("bogus").unwrap_err().to_string();
        assert!(err.contains(T::FIELD) && err.contains("bogus"), "{err}");
        assert!(err.contains(&T::choices_text()), "{err}");
    }

    #[test]
    fn every_name_round_trips_and_errors_name_the_field() {
        round_trips::<NoiseModel>();
        round_trips::<WeightScaling>();
        round_trips::<Programming>();
        round_trips::<DriftCompensation>();
        round_trips::<Isa>();
        round_trips::<Phase>();
        round_trips::<Fault>();
        assert_eq!(all_choices().len(), 5);
        // Every code once, each the enum's own discriminant.
        for (_, codes) in device_codes() {
            let mut seen: Vec<u8> = codes.iter().map(|&(c, _)| c).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..codes.len() as u8).collect::<Vec<_>>());
        }
        assert_eq!(
            device_codes()[0].1[2],
            (Phase::Intermediate as u8, "intermediate")
        );
    }
}
