//! Stages 2, 3 and 8, the devices: programming (statistical or iterative
//! program-and-verify), drift with accumulated 1/f read noise and
//! re-quantisation, the drift-compensation readout and factors, and the
//! per-output gain that folds `w_max`, compensation and affine scale.

use super::params::{DriftCompensation, Programming};
use super::{rint, stream, AnalogMatrix};
use crate::error::Result;
use crate::noise_models::NoiseModel;
use crate::parallel;
use crate::rng;

impl AnalogMatrix {
    /// Devices hold their exact target codes: ideal model, statistical
    /// programming (the iterative engine always adds device physics).
    fn exact_devices(&self) -> bool {
        self.params.noise_model == NoiseModel::None
            && self.params.programming == Programming::Statistical
    }

    fn lsb(&self) -> f64 {
        self.params.g_max / self.params.full_code() as f64
    }

    /// The conductance scale of the noise laws: the device for PCM, the whole
    /// polarity for HERMES (aihwkit's models, see `noise_models`).
    fn law_range(&self) -> f64 {
        match self.params.noise_model {
            NoiseModel::Hermes => self.params.g_max,
            _ => self.params.g_max / self.params.devices_per_polarity as f64,
        }
    }

    pub(super) fn program_devices(&mut self, seed: u64) -> Result<()> {
        if self.params.programming == Programming::Iterative {
            return self.program_iteratively(seed);
        }
        let p = &self.params;
        let n = self.target.len();
        let lsb = self.lsb();
        let g_dev_max = p.g_max / p.devices_per_polarity as f64;
        let d = p.devices_per_polarity;
        let range = self.law_range();
        let seed_prog = rng::derive_seed(seed, stream::PROGRAM);
        let seed_nu = rng::derive_seed(seed, stream::NU);
        let mut g_prog = vec![0f32; n];
        let mut nu = vec![0f32; n];
        let model = p.noise_model;
        let target = &self.target;
        let (prog_scale, drift_scale) = (p.prog_noise_scale, p.drift_scale);
        let chunk = 1 << 14;
        parallel::for_each_chunk_pair_mut(&mut g_prog, &mut nu, chunk, |ci, gp, nv| {
            for (j, (gp, nv)) in gp.iter_mut().zip(nv.iter_mut()).enumerate() {
                let i = ci * chunk + j;
                let g_t = f64::from(target[i]) * lsb;
                // HERMES laws take the polarity's total; the noise lands on the
                // device being trimmed, the others sit fully SET or RESET.
                let cell_pol = i / d;
                let (law_g, noisy) = match model {
                    NoiseModel::Hermes => {
                        let total: f64 = (0..d)
                            .map(|k| f64::from(target[cell_pol * d + k]) * lsb)
                            .sum();
                        let trimmed = (0..d)
                            .rev()
                            .find(|&k| target[cell_pol * d + k] > 0)
                            .unwrap_or(0);
                        (total, i % d == trimmed)
                    }
                    _ => (g_t, true),
                };
                let g = if model == NoiseModel::None || !noisy {
                    g_t
                } else {
                    let sigma = model.programming_sigma(law_g, range, d) * prog_scale;
                    (g_t + sigma * rng::normal(seed_prog, 0, i as u64)).clamp(0.0, g_dev_max)
                };
                let (mu, sd) = model.drift_nu(law_g / range, d);
                let v = (mu + sd * rng::normal(seed_nu, 0, i as u64)).abs() * drift_scale;
                *gp = g as f32;
                *nv = v as f32;
            }
        });
        self.g_prog = g_prog;
        self.nu = nu;
        Ok(())
    }

    /// Programs every polarity through the device-level program-and-verify
    /// engine; its target/device layout is the crossbar's (polarity-major,
    /// `devices_per_polarity` devices each).
    fn program_iteratively(&mut self, seed: u64) -> Result<()> {
        let p = &self.params;
        let d = p.devices_per_polarity;
        let g_dev_max = p.g_max / d as f64;
        let mut pcm = match p.noise_model {
            NoiseModel::Hermes => crate::pcm::PcmParams::hermes(g_dev_max),
            _ => crate::pcm::PcmParams::pcm_like(g_dev_max),
        };
        pcm.devices_per_polarity = d;
        pcm.seed = rng::derive_seed(seed, stream::PROGRAM);
        let lsb = self.lsb();
        let totals: Vec<f64> = self
            .target
            .chunks_exact(d)
            .map(|c| c.iter().map(|&v| f64::from(v)).sum::<f64>() * lsb)
            .collect();
        let mut arr = crate::pcm::DeviceArray::new(&totals, &pcm)?;
        arr.program()?;
        self.g_prog = arr.conductance;
        self.nu = arr.nu;
        Ok(())
    }

    /// Device codes of the programmed state (no drift, no read noise).
    pub(super) fn device_codes_programmed(&self) -> Vec<u16> {
        if self.exact_devices() {
            return self.target.clone();
        }
        let lsb = self.lsb();
        let dev_max = self.params.device_code_ceiling() as f64;
        self.g_prog
            .iter()
            .map(|&g| rint(f64::from(g) / lsb).clamp(0.0, dev_max) as u16)
            .collect()
    }

    /// The drift-compensation readout per (tile, output row): `Σ_j |g⁺ − g⁻|`,
    /// i.e. the summed |output| for one-hot inputs through an ideal periphery
    /// (aihwkit `GlobalDriftCompensation` reads `mean|y|` over the identity
    /// input set), as an exact integer.
    pub(super) fn readout_sums(&self, cells: &[i32]) -> Vec<i64> {
        let mut sums = vec![0i64; self.w_max.len()];
        for t in &self.tiles {
            for r in 0..t.rows {
                let c0 = t.cell0 + r * t.cols;
                sums[t.out0 + r] = cells[c0..c0 + t.cols]
                    .iter()
                    .map(|&v| i64::from(v).abs())
                    .sum();
            }
        }
        sums
    }

    /// Device codes at `t_inference` seconds after programming: drift and
    /// accumulated 1/f read noise (drawn with `seed`), re-quantised.
    pub(super) fn drifted_device_codes(&self, t_inference: f64, seed: u64) -> Vec<u16> {
        let p = &self.params;
        let d = p.devices_per_polarity;
        if self.exact_devices() {
            self.target.clone()
        } else {
            let lsb = self.lsb();
            let dev_max = p.device_code_ceiling() as f64;
            let range = self.law_range();
            let t = t_inference + p.t0;
            let time_factor = t / p.t0;
            let log_term = ((t + p.t_read) / (2.0 * p.t_read)).ln().max(0.0).sqrt();
            let seed_read = rng::derive_seed(seed, stream::READ);
            let model = p.noise_model;
            let read_scale = p.read_noise_scale;
            let n = self.g_prog.len();
            let mut out = vec![0u16; n];
            let (g_prog, nu) = (&self.g_prog, &self.nu);
            let chunk = 1 << 14;
            parallel::for_each_chunk_mut(&mut out, chunk, |ci, oc| {
                for (j, o) in oc.iter_mut().enumerate() {
                    let i = ci * chunk + j;
                    let g0 = f64::from(g_prog[i]);
                    let gd = g0 * time_factor.powf(-f64::from(nu[i]));
                    let law_g = match model {
                        NoiseModel::Hermes => {
                            (0..d).map(|k| f64::from(g_prog[(i / d) * d + k])).sum()
                        }
                        _ => g0,
                    };
                    let sigma = model.read_qs(law_g / range, d) * log_term * read_scale;
                    let g = (gd + gd.abs() * sigma * rng::normal(seed_read, 0, i as u64)).max(0.0);
                    *o = rint(g / lsb).clamp(0.0, dev_max) as u16;
                }
            });
            out
        }
    }

    /// Updates the drift-compensation factors: the readout of the current
    /// cell codes against the readout right after programming.
    pub(super) fn update_compensation(&mut self) {
        let p = &self.params;
        let now = self.readout_sums(&self.codes);
        match p.drift_compensation {
            DriftCompensation::None => self.compensation.fill(1.0),
            DriftCompensation::PerColumn => {
                for (f, (&r, &s)) in self
                    .compensation
                    .iter_mut()
                    .zip(self.reference_sums.iter().zip(&now))
                {
                    *f = if s > 0 { r as f64 / s as f64 } else { 1.0 };
                }
            }
            DriftCompensation::Global => {
                for t in &self.tiles {
                    let r: i64 = self.reference_sums[t.out0..t.out0 + t.rows].iter().sum();
                    let s: i64 = now[t.out0..t.out0 + t.rows].iter().sum();
                    let f = if s > 0 { r as f64 / s as f64 } else { 1.0 };
                    self.compensation[t.out0..t.out0 + t.rows].fill(f);
                }
            }
        }
    }

    /// Recomputes `gain` after a change of the compensation
    /// or of the affine scale.
    pub(super) fn refresh_gain(&mut self) {
        for (((g, &w), &c), &a) in self
            .gain
            .iter_mut()
            .zip(&self.w_max)
            .zip(&self.compensation)
            .zip(&self.affine_scale)
        {
            *g = (w * c) * a;
        }
        self.read_bound = super::datapath::ReadBound::new(self);
    }
}
