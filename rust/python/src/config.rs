//! Config dicts to core parameters and back: the one extraction helper of the
//! bindings (every config field is read through [`field`], [`int_field`],
//! [`real_field`] or [`named_field`], with one message style), the
//! conversions of `CrossbarConfig` and `PCMConfig` (their numeric fields by
//! the core's [`FieldTables`], their mode fields by its [`Named`] tables),
//! and the core's defaults, presets, choice lists and code tables for the
//! Python layer, which only views them.
//!
//! Types are converted here; values are validated by the core (its `validate`
//! methods name the field), never here.

use analogkernels_core::crossbar::{CrossbarParams, DriftCompensation, Programming, WeightScaling};
use analogkernels_core::fields::FieldTables;
use analogkernels_core::names::{all_choices, device_codes, Named};
use analogkernels_core::noise_models::NoiseModel;
use analogkernels_core::pcm::PcmParams;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::{describe, int_in_range, real_value};
use crate::errors::{config_error, guarded, internal_error, to_py};

fn item<'py>(d: &Bound<'py, PyDict>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    d.get_item(name)?
        .ok_or_else(|| config_error(format!("config field `{name}` is missing")))
}

/// Config field `name` of `d` as `T`; a missing field or a value of the
/// wrong type is a `ConfigError` naming the field.
pub fn field<'py, T: FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, name: &str) -> PyResult<T> {
    let v = item(d, name)?;
    v.extract::<T>().map_err(|_| {
        config_error(format!(
            "invalid value for `{name}`: wrong type, got {}",
            describe(&v)
        ))
    })
}

/// Integer config field `name` of `d`, in `0..=max` (not a bool or float).
pub fn int_field(d: &Bound<'_, PyDict>, name: &str, max: u64) -> PyResult<u64> {
    int_in_range(&item(d, name)?, name, max)
}

/// Config field [`Named::FIELD`] of `d`, parsed by the core's name table.
pub fn named_field<T: Named>(d: &Bound<'_, PyDict>) -> PyResult<T> {
    let name: String = field(d, T::FIELD)?;
    T::from_name(&name).map_err(to_py)
}

/// Real config field `name` of `d` (not a bool, string or complex number).
pub fn real_field(d: &Bound<'_, PyDict>, name: &str) -> PyResult<f64> {
    real_value(&item(d, name)?, name)
}

/// Reads the numeric fields of `p` from `d`, by the core's tables.
fn numeric_from_dict<P: FieldTables>(d: &Bound<'_, PyDict>, p: &mut P) -> PyResult<()> {
    for &name in P::REAL_FIELDS {
        let value = real_field(d, name)?;
        *p.real_field_mut(name)
            .ok_or_else(|| internal_error(format!("no real field `{name}`")))? = value;
    }
    for &(name, max) in P::INT_FIELDS {
        let value = int_field(d, name, max)?;
        if !p.set_int_field(name, value) {
            return Err(internal_error(format!("cannot set integer field `{name}`")));
        }
    }
    Ok(())
}

/// Writes the numeric fields of `p` into `d`, by the core's tables.
fn numeric_to_dict<P: FieldTables>(d: &Bound<'_, PyDict>, p: &P) -> PyResult<()> {
    for &name in P::REAL_FIELDS {
        d.set_item(name, p.real_field(name))?;
    }
    for &(name, _) in P::INT_FIELDS {
        d.set_item(name, p.int_field(name))?;
    }
    Ok(())
}

/// The core's [`PcmParams`] from the dict of a Python `PCMConfig` (every
/// field required; the field list is the core's).
pub fn pcm_params_from_dict(d: &Bound<'_, PyDict>) -> PyResult<PcmParams> {
    // Every field is overwritten below; the preset only supplies a struct.
    let mut p = PcmParams::pcm_like(1.0);
    numeric_from_dict(d, &mut p)?;
    Ok(p)
}

/// [`pcm_params_from_dict`]'s inverse.
fn pcm_params_to_dict<'py>(py: Python<'py>, p: &PcmParams) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    numeric_to_dict(&d, p)?;
    Ok(d)
}

/// The optional real fields: `input_range` (`None`: abs-max scaling) and
/// `input_range_quantile` (`None`: off).
const INPUT_RANGE: &str = "input_range";
const INPUT_RANGE_QUANTILE: &str = "input_range_quantile";

/// An optional real field of `d`: `None` or a real number.
fn optional_real(d: &Bound<'_, PyDict>, name: &'static str) -> PyResult<Option<f64>> {
    let value = item(d, name)?;
    if value.is_none() {
        Ok(None)
    } else {
        Ok(Some(real_value(&value, name)?))
    }
}

/// The core's [`CrossbarParams`] from the dict of a Python `CrossbarConfig`
/// (every field required, the model defaults filled in; the field lists are
/// the core's).
pub fn crossbar_params_from_dict(d: &Bound<'_, PyDict>) -> PyResult<CrossbarParams> {
    // Every field is overwritten below; the preset only supplies a struct.
    let mut p = CrossbarParams::hermes();
    numeric_from_dict(d, &mut p)?;
    p.weight_scaling = named_field(d)?;
    p.noise_model = named_field(d)?;
    p.programming = named_field(d)?;
    p.drift_compensation = named_field(d)?;
    p.input_range = optional_real(d, INPUT_RANGE)?;
    p.input_range_quantile = optional_real(d, INPUT_RANGE_QUANTILE)?;
    Ok(p)
}

/// [`crossbar_params_from_dict`]'s inverse.
fn crossbar_params_to_dict<'py>(
    py: Python<'py>,
    p: &CrossbarParams,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    numeric_to_dict(&d, p)?;
    d.set_item(WeightScaling::FIELD, p.weight_scaling.name())?;
    d.set_item(NoiseModel::FIELD, p.noise_model.name())?;
    d.set_item(Programming::FIELD, p.programming.name())?;
    d.set_item(DriftCompensation::FIELD, p.drift_compensation.name())?;
    d.set_item(INPUT_RANGE, p.input_range)?;
    d.set_item(INPUT_RANGE_QUANTILE, p.input_range_quantile)?;
    Ok(d)
}

/// A `CrossbarConfig` dict as the engine takes it: every field converted
/// (integers as `int`, reals as `float`, the modes by their names) and
/// checked with the core's rules, or a `ConfigError` naming the field.
#[pyfunction]
pub fn _crossbar_config<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyDict>> {
    guarded(py, || {
        let p = crossbar_params_from_dict(config)?;
        p.validate().map_err(to_py)?;
        crossbar_params_to_dict(py, &p)
    })
}

/// The fields of the core's HERMES crossbar preset
/// ([`CrossbarParams::hermes`]), for the defaults of
/// `analogkernels.analog.CrossbarConfig`.
#[pyfunction]
pub fn _crossbar_hermes(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    guarded(py, || {
        crossbar_params_to_dict(py, &CrossbarParams::hermes())
    })
}

/// `{array: {code: name}}` of the per-device state codes of a PCM device
/// array (`phase`, `fault`), from the core's name tables.
#[pyfunction]
pub fn _device_codes(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    for (array, codes) in device_codes() {
        let table = PyDict::new(py);
        for (code, name) in codes {
            table.set_item(code, name)?;
        }
        d.set_item(array, table)?;
    }
    Ok(d)
}

/// The fields of the core's PCM preset `name` ("`pcm_like`" or "hermes"), for
/// the defaults of `analogkernels.pcm.PCMConfig`.
#[pyfunction]
pub fn _pcm_preset<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyDict>> {
    guarded(py, || {
        let p = PcmParams::preset(name).map_err(to_py)?;
        pcm_params_to_dict(py, &p)
    })
}

/// The core's defaults of a noise model for `devices_per_polarity` devices:
/// `{"g_max": µS per polarity, "t0": s, "t_read": s}`, for the `None` fields of
/// `analogkernels.analog.CrossbarConfig`.
#[pyfunction]
pub fn _noise_model_defaults<'py>(
    py: Python<'py>,
    noise_model: &str,
    devices_per_polarity: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    guarded(py, || {
        let model = <NoiseModel as Named>::from_name(noise_model).map_err(to_py)?;
        let devices = int_in_range(
            devices_per_polarity,
            "devices_per_polarity",
            u32::MAX.into(),
        )? as usize;
        let d = PyDict::new(py);
        d.set_item("g_max", model.default_g_max(devices))?;
        d.set_item("t0", model.default_t0(devices))?;
        d.set_item("t_read", model.default_t_read())?;
        Ok(d)
    })
}

/// `{field: [names]}` of every mode enum, from the core's name tables.
#[pyfunction]
pub fn _choices(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    for (field, names) in all_choices() {
        d.set_item(field, names)?;
    }
    Ok(d)
}
