//! Crossbar configuration: [`CrossbarParams`] (with its validation and the
//! derived code ranges) and the mode enums [`WeightScaling`], [`Programming`]
//! and [`DriftCompensation`].

use crate::check;
use crate::error::{Error, Result};
use crate::fields::field_tables;
use crate::noise_models::NoiseModel;

/// How `w_max` is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightScaling {
    /// One `w_max` per tile (HERMES: "`W_max` the largest |W| in the core").
    PerTile,
    /// One `w_max` per output row of each tile.
    PerColumn,
}

/// How devices are programmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Programming {
    /// Target plus noise from the statistical model ([`NoiseModel`]).
    Statistical,
    /// Device-level program-and-verify ([`crate::pcm`]), calibrated to the
    /// same model's published spread.
    Iterative,
}

/// Drift compensation mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriftCompensation {
    /// None.
    None,
    /// One factor per tile.
    Global,
    /// One factor per output of each tile.
    PerColumn,
}

/// Every parameter of the simulated crossbar (see the module docs for the
/// stages; the Python `CrossbarConfig` documents units, defaults and sources).
#[derive(Clone, Debug, PartialEq)]
pub struct CrossbarParams {
    pub tile_rows: usize,
    pub tile_cols: usize,
    pub weight_scaling: WeightScaling,
    pub devices_per_polarity: usize,
    pub conductance_bits: u32,
    pub noise_model: NoiseModel,
    pub programming: Programming,
    /// Maximum conductance of one polarity (all its devices), µS (per
    /// polarity; `PcmParams::g_max` is per device).
    pub g_max: f64,
    pub prog_noise_scale: f64,
    pub drift_scale: f64,
    pub read_noise_scale: f64,
    pub t0: f64,
    pub t_read: f64,
    pub input_bits: u32,
    /// `None`: abs-max scaling per input vector and tile; `Some(r)`: fixed range.
    pub input_range: Option<f64>,
    /// `Some(q)`: the fixed range is the `q`-quantile of the absolute inputs
    /// a map is fitted on. Needs data, so it is resolved into `input_range`
    /// before programming (by the Python layer); [`AnalogMatrix::program`]
    /// refuses a config that still holds it.
    ///
    /// [`AnalogMatrix::program`]: super::AnalogMatrix::program
    pub input_range_quantile: Option<f64>,
    pub out_noise: f64,
    pub w_noise: f64,
    pub ir_drop: f64,
    pub ir_drop_g_ratio: f64,
    /// 0 disables the ADC.
    pub output_bits: u32,
    pub out_bound: f64,
    pub drift_compensation: DriftCompensation,
    /// Residual ADC offset common to every output after the per-column
    /// affine calibration, normalised output units (0: off).
    pub adc_offset: f64,
    /// Spread of the residual offset between outputs (one fixed value per
    /// ADC, drawn at programming), normalised output units.
    pub adc_offset_std: f64,
    /// Spread of the residual relative gain between outputs (one fixed value
    /// per ADC, drawn at programming).
    pub adc_gain_std: f64,
}

impl CrossbarParams {
    /// The HERMES preset: the defaults of the Python `CrossbarConfig`
    /// (Le Gallo et al. 2023 and aihwkit; the Python class documents each
    /// value and its source), with the HERMES noise model's `g_max`, `t0` and
    /// `t_read` for two devices per polarity.
    pub fn hermes() -> Self {
        let devices_per_polarity = 2;
        let noise_model = NoiseModel::Hermes;
        CrossbarParams {
            tile_rows: 256,
            tile_cols: 256,
            weight_scaling: WeightScaling::PerTile,
            devices_per_polarity,
            conductance_bits: 14,
            noise_model,
            programming: Programming::Statistical,
            g_max: noise_model.default_g_max(devices_per_polarity),
            prog_noise_scale: 1.0,
            drift_scale: 1.0,
            read_noise_scale: 1.0,
            t0: noise_model.default_t0(devices_per_polarity),
            t_read: noise_model.default_t_read(),
            input_bits: 8,
            input_range: None,
            input_range_quantile: None,
            out_noise: 0.096,
            w_noise: 0.0175,
            ir_drop: 0.0,
            ir_drop_g_ratio: 1.0 / (0.35 * 5e-6),
            output_bits: 12,
            out_bound: 24.0,
            drift_compensation: DriftCompensation::Global,
            adc_offset: 0.0,
            adc_offset_std: 0.0,
            adc_gain_std: 0.0,
        }
    }

    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<()> {
        // Bounded ranges, wide around every physical value, so that no
        // accepted config can overflow the f32 device state or the f64
        // datapath constants (a 5e-324 ADC range makes every output NaN).
        check::int_range("tile_rows", self.tile_rows as u64, 1, 4096)?;
        check::int_range("tile_cols", self.tile_cols as u64, 1, 4096)?;
        check::devices_per_polarity(self.devices_per_polarity)?;
        check::int_range("conductance_bits", self.conductance_bits.into(), 2, 14)?;
        check::int_range("input_bits", self.input_bits.into(), 1, 16)?;
        if self.output_bits > 24 {
            return Err(Error::value(
                "output_bits",
                format!("must be 0 (no ADC) or in 1..=24, got {}", self.output_bits),
            ));
        }
        check::range("g_max", self.g_max, 1e-6, 1e6)?;
        check::range("t0", self.t0, 1e-12, 1e12)?;
        check::range("t_read", self.t_read, 1e-15, 1e3)?;
        check::range("out_bound", self.out_bound, 1e-6, 1e6)?;
        check::range("ir_drop_g_ratio", self.ir_drop_g_ratio, 1e-3, 1e12)?;
        for (field, v) in [
            ("prog_noise_scale", self.prog_noise_scale),
            ("drift_scale", self.drift_scale),
            ("read_noise_scale", self.read_noise_scale),
            ("out_noise", self.out_noise),
            ("w_noise", self.w_noise),
            ("ir_drop", self.ir_drop),
        ] {
            check::range(field, v, 0.0, 1e3)?;
        }
        check::range("adc_offset", self.adc_offset, -1e3, 1e3)?;
        check::range("adc_offset_std", self.adc_offset_std, 0.0, 1e3)?;
        // At most 0.2: a gain of 1 + 0.2·ξ stays positive for every normal
        // the sampler can draw (|ξ| < 4.34), so no output flips its sign.
        check::range("adc_gain_std", self.adc_gain_std, 0.0, 0.2)?;
        if let Some(r) = self.input_range {
            check::range("input_range", r, 1e-30, 1e30)?;
        }
        if let Some(q) = self.input_range_quantile {
            // Above 1/2: a range below the median input would clip most inputs.
            check::range("input_range_quantile", q, 0.5, 1.0)?;
            if self.input_range.is_some() {
                return Err(Error::value(
                    "input_range_quantile",
                    "is set together with input_range; the quantile sets the range from data: \
                     give one of them",
                ));
            }
        }
        Ok(())
    }

    /// `M`: the largest input code, `2^(input_bits−1) − 1` (at least 1: a
    /// 1-bit signed DAC is taken as ternary −1, 0, 1).
    pub(super) fn input_max_code(&self) -> i64 {
        ((1i64 << (self.input_bits - 1)) - 1).max(1)
    }

    pub(super) fn full_code(&self) -> i64 {
        1i64 << self.conductance_bits
    }

    pub(super) fn device_max_code(&self) -> i64 {
        self.full_code() / self.devices_per_polarity as i64
    }

    /// Largest code a device can hold after programming. The statistical
    /// model clamps at `g_max`; a device programmed iteratively can sit fully
    /// SET above the nominal `g_max` (its SET conductance, ~1.15 `g_max`), so
    /// its codes may reach 1.5 × the nominal range (|cell code| ≤ 1.5 · 2^b,
    /// still within i16).
    pub(super) fn device_code_ceiling(&self) -> i64 {
        match self.programming {
            Programming::Statistical => self.device_max_code(),
            Programming::Iterative => self.device_max_code() * 3 / 2,
        }
    }

    /// ADC codes per normalised output unit (1 without an ADC): the factor
    /// from the column value in normalised units to the domain in which the
    /// per-output stage rounds.
    pub(super) fn to_code(&self) -> f64 {
        if self.output_bits > 0 {
            ((1i64 << (self.output_bits - 1)) - 1).max(1) as f64 / self.out_bound
        } else {
            1.0
        }
    }

    /// Largest |g⁺ − g⁻| cell code.
    pub(super) fn max_cell_code(&self) -> i64 {
        self.device_code_ceiling() * self.devices_per_polarity as i64
    }
}

// The numeric fields by name, for the bindings' conversions both ways (the
// mode enums are named by their `names::Named` tables, `input_range` is the
// one optional field).
field_tables!(CrossbarParams {
    real: [
        g_max,
        prog_noise_scale,
        drift_scale,
        read_noise_scale,
        t0,
        t_read,
        out_noise,
        w_noise,
        ir_drop,
        ir_drop_g_ratio,
        out_bound,
        adc_offset,
        adc_offset_std,
        adc_gain_std,
    ],
    int: [
        tile_rows: usize,
        tile_cols: usize,
        devices_per_polarity: usize,
        conductance_bits: u32,
        input_bits: u32,
        output_bits: u32,
    ],
});
