//! Config dicts to core parameters and back: the one extraction helper of the
//! bindings (every config field is read through [`field`], [`int_field`] or
//! [`named_field`], with one message style), and the core's defaults, presets
//! and choice lists for the Python layer, which only views them.
//!
//! Types are converted here; values are validated by the core (its `validate`
//! methods name the field), never here.

use analogkernels_core::names::{all_choices, Named};
use analogkernels_core::noise_models::NoiseModel;
use analogkernels_core::pcm::PcmParams;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::int_in_range;
use crate::errors::{config_error, guarded, to_py};

fn item<'py>(d: &Bound<'py, PyDict>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    d.get_item(name)?
        .ok_or_else(|| config_error(format!("config field `{name}` is missing")))
}

fn describe(v: &Bound<'_, PyAny>) -> String {
    let type_name = v
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    let repr = v.repr().map(|r| r.to_string()).unwrap_or_default();
    format!("{type_name} {repr}")
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

/// The core's [`PcmParams`] from the dict of a Python `PCMConfig` (every
/// field required; the field list is the core's).
pub fn pcm_params_from_dict(d: &Bound<'_, PyDict>) -> PyResult<PcmParams> {
    // Every field is overwritten below; the preset only supplies a struct.
    let mut p = PcmParams::pcm_like(1.0);
    for &name in PcmParams::REAL_FIELDS {
        let value: f64 = field(d, name)?;
        if let Some(slot) = p.real_field_mut(name) {
            *slot = value;
        }
    }
    p.max_iterations = int_field(d, "max_iterations", u32::MAX.into())? as u32;
    p.devices_per_polarity = int_field(d, "devices_per_polarity", u32::MAX.into())? as usize;
    p.seed = int_field(d, "seed", u64::MAX)?;
    Ok(p)
}

/// [`pcm_params_from_dict`]'s inverse.
fn pcm_params_to_dict<'py>(py: Python<'py>, p: &PcmParams) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for &name in PcmParams::REAL_FIELDS {
        d.set_item(name, p.real_field(name))?;
    }
    d.set_item("max_iterations", p.max_iterations)?;
    d.set_item("devices_per_polarity", p.devices_per_polarity)?;
    d.set_item("seed", p.seed)?;
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
