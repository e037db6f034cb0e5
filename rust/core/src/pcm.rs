//! PCM device state machine: RESET/SET/trim pulses, iterative program-and-verify
//! as on HERMES, drift and read noise, stuck devices — for arrays of millions
//! of devices.
//!
//! # Device model
//! After Le Gallo et al., "A 64-core mixed-signal in-memory compute chip based
//! on phase-change memory for deep neural network inference", Nat. Electron. 6,
//! 680–693 (2023) (HERMES, Methods and Extended Data Fig. 3), Joshi et al.,
//! Nat. Commun. 11, 2473 (2020) (Methods A) and IBM aihwkit's PCM laws
//! (`src/aihwkit/inference/noise/pcm.py`).
//! - **RESET** (700 µA, 125 ns) melts and quenches: `g = g_reset` (amorphous).
//! - **SET** (125 µA, 250 ns + 50 ns tail) crystallises: `g = g_set` of the
//!   device (device-to-device spread `g_set_sd`).
//! - **Trim pulse** of amplitude `I` (µA, clamped to `[i_min, i_max]`):
//!   partial RESET following the programming curve — `log g` falls linearly
//!   from `log g_set` at `i_low` to `log g_reset` at `i_high` (HERMES Extended
//!   Data Fig. 3: fully SET to fully RESET over roughly 50–500 µA), with
//!   device-to-device shifts of `i_low`/`i_high` (`i_sd`) and cycle-to-cycle
//!   noise, multiplicative (`c2c`) and additive (`additive`).
//! - **Verify read**: `g` plus Gaussian read noise (`verify_noise`).
//! - After programming, **relaxation** multiplies `g` by `1 + relaxation·ξ`.
//! - **Phase**: SET (untrimmed crystalline), RESET, or intermediate; the drift
//!   exponent ν follows aihwkit's PCM law at the device's `ĝ` for RESET and
//!   intermediate states, and a small crystalline value for SET.
//! - **Faults**: stuck at RESET / at SET with given probabilities; a stuck
//!   device ignores pulses.
//!
//! # Program-and-verify (Le Gallo et al. 2023, Methods)
//! RESET every device of a cell, SET the device(s) of the weight's polarity,
//! then trim with the pulse current updated in proportion to the verify error
//! (a Newton step on the nominal curve, `gain` < 1) until `|error| <`
//! `tolerance_counts` ADC counts (`counts_per_gmax` counts per `g_max`) or
//! `max_iterations`. Two devices per polarity (TDP): if the target exceeds the
//! SET conductance of the higher device, that one stays SET and the lower one
//! is trimmed to the remainder; otherwise the higher device is trimmed and the
//! other RESET — as many devices as possible fully SET or RESET.
//!
//! # Calibration
//! [`PcmParams::pcm_like`] (the default) gives a programming-error spread within
//! ±10 % of aihwkit's PCM polynomial `σ = (0.26348 + 1.9650 ĝ − 1.1731 ĝ²)·g_max/25`
//! over ĝ ∈ [0.1, 1] with one device; [`PcmParams::hermes`] within ±10 % of the
//! HERMES-fitted cubic (one device) over ĝ ∈ [0.1, 0.75] and 13 % above it at
//! ĝ = 1, with a 10-count verify window (the 5-count window cannot reproduce
//! the cubic's mid-range spread in this model). The tests check these bounds.
//!
//! All randomness is Philox keyed by (seed, purpose, device index, draw), so
//! results do not depend on the thread count.

use crate::check;
use crate::error::{Error, Result};
use crate::fields::{field_tables, FieldTables};
use crate::noise_models::NoiseModel;
use crate::parallel::{self, DisjointMut};
use crate::rng;

/// A named preset of [`PcmParams::PRESETS`] and its constructor.
pub type Preset = (&'static str, fn() -> PcmParams);

/// Parameters of the device model and the programming algorithm.
/// Conductances in units of `g_max` unless stated; currents in µA.
#[derive(Clone, Debug, PartialEq)]
pub struct PcmParams {
    /// Largest target conductance of one device, µS (per device; the
    /// crossbar's `CrossbarParams::g_max` is per polarity).
    pub g_max: f64,
    pub g_set_mean: f64,
    pub g_set_sd: f64,
    pub g_reset: f64,
    pub i_low: f64,
    pub i_high: f64,
    pub i_sd: f64,
    pub i_min: f64,
    pub i_max: f64,
    pub c2c: f64,
    pub additive: f64,
    pub relaxation: f64,
    pub verify_noise: f64,
    pub tolerance_counts: f64,
    pub counts_per_gmax: f64,
    pub max_iterations: u32,
    pub gain: f64,
    pub stuck_reset_prob: f64,
    pub stuck_set_prob: f64,
    /// Devices per polarity (1, or 2 with the TDP rule).
    pub devices_per_polarity: usize,
    /// Drift reference time t0 and read duration `t_read` (s), for reads.
    pub t0: f64,
    pub t_read: f64,
    pub seed: u64,
}

impl PcmParams {
    /// The presets by name, each with the device `g_max` of its noise model
    /// ([`NoiseModel::default_g_max`] for one device): `"pcm_like"` (the
    /// default of the Python `PCMConfig`) and `"hermes"`.
    pub const PRESETS: &'static [Preset] = &[
        ("pcm_like", || {
            Self::pcm_like(NoiseModel::Pcm.default_g_max(1))
        }),
        ("hermes", || {
            Self::hermes(NoiseModel::Hermes.default_g_max(1))
        }),
    ];

    /// The preset `name` of [`PcmParams::PRESETS`].
    pub fn preset(name: &str) -> Result<Self> {
        Self::PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, make)| make())
            .ok_or_else(|| {
                let names: Vec<&str> = Self::PRESETS.iter().map(|(n, _)| *n).collect();
                Error::value("preset", format!("{name:?}; expected one of {names:?}"))
            })
    }

    /// Calibrated to aihwkit's `PCMLikeNoiseModel` spread (the default).
    pub fn pcm_like(g_max: f64) -> Self {
        PcmParams {
            g_max,
            g_set_mean: 1.15,
            g_set_sd: 0.06,
            g_reset: 0.004,
            i_low: 100.0,
            i_high: 500.0,
            i_sd: 5.0,
            i_min: 50.0,
            i_max: 700.0,
            c2c: 0.08,
            additive: 0.015,
            relaxation: 0.025,
            verify_noise: 0.005,
            tolerance_counts: 5.0,
            counts_per_gmax: 80.0,
            max_iterations: 30,
            gain: 0.8,
            stuck_reset_prob: 0.0,
            stuck_set_prob: 0.0,
            devices_per_polarity: 1,
            t0: NoiseModel::Pcm.default_t0(1),
            t_read: NoiseModel::Pcm.default_t_read(),
            seed: 0,
        }
    }

    /// Calibrated to aihwkit's HERMES-fitted programming cubic (one device).
    pub fn hermes(g_max: f64) -> Self {
        PcmParams {
            i_sd: 15.0,
            additive: 0.025,
            relaxation: 0.08,
            c2c: 0.12,
            tolerance_counts: 10.0,
            t0: NoiseModel::Hermes.default_t0(1),
            t_read: NoiseModel::Hermes.default_t_read(),
            ..PcmParams::pcm_like(g_max)
        }
    }

    /// Checks every field; the error names it.
    ///
    /// Besides sign and finiteness, every field has an upper bound far beyond
    /// any physical device ([`PcmParams::LIMITS`]): larger values made the
    /// float32 device state overflow to inf, or reads return NaN.
    pub fn validate(&self) -> Result<()> {
        for &(f, lo, hi) in Self::LIMITS {
            let v = self.real_field(f).unwrap_or(f64::NAN);
            if v.is_finite() {
                check::range(f, v, lo, hi)?;
            }
        }
        for (f, v) in [
            ("g_max", self.g_max),
            ("g_set_mean", self.g_set_mean),
            ("g_reset", self.g_reset),
            ("tolerance_counts", self.tolerance_counts),
            ("counts_per_gmax", self.counts_per_gmax),
            ("t0", self.t0),
            ("t_read", self.t_read),
            ("gain", self.gain),
        ] {
            check::positive(f, v)?;
        }
        for (f, v) in [
            ("g_set_sd", self.g_set_sd),
            ("i_sd", self.i_sd),
            ("c2c", self.c2c),
            ("additive", self.additive),
            ("relaxation", self.relaxation),
            ("verify_noise", self.verify_noise),
        ] {
            check::nonnegative(f, v)?;
        }
        check::probability("stuck_reset_prob", self.stuck_reset_prob)?;
        check::probability("stuck_set_prob", self.stuck_set_prob)?;
        if self.stuck_reset_prob + self.stuck_set_prob > 1.0 {
            return Err(Error::value(
                "stuck_set_prob",
                "stuck probabilities add up to more than 1",
            ));
        }
        for (f, v) in [
            ("i_low", self.i_low),
            ("i_high", self.i_high),
            ("i_min", self.i_min),
            ("i_max", self.i_max),
        ] {
            if !v.is_finite() {
                return Err(Error::value(f, format!("must be a finite number, got {v}")));
            }
        }
        if !(self.i_low < self.i_high && self.i_min < self.i_max) {
            return Err(Error::value(
                "i_high",
                format!(
                    "need i_low < i_high and i_min < i_max, got {}..{} and {}..{}",
                    self.i_low, self.i_high, self.i_min, self.i_max
                ),
            ));
        }
        if self.g_reset >= self.g_set_mean {
            return Err(Error::value("g_reset", "must be below g_set_mean"));
        }
        check::int_range("max_iterations", self.max_iterations.into(), 1, 255)?;
        check::devices_per_polarity(self.devices_per_polarity)
    }

    /// Range of every real field (checked after sign and finiteness):
    /// conductances up to 1 mS (PCM: 25 µS), relative spreads and noise up
    /// to 10 (PCM: below 0.1), currents up to 1 A, times from 1 fs to about
    /// 30 million years.
    pub const LIMITS: &'static [(&'static str, f64, f64)] = &[
        ("g_max", 0.0, 1e3),
        ("g_set_mean", 0.0, 100.0),
        ("g_set_sd", 0.0, 10.0),
        ("g_reset", 0.0, 100.0),
        ("i_low", -1e6, 1e6),
        ("i_high", -1e6, 1e6),
        ("i_sd", 0.0, 1e6),
        ("i_min", -1e6, 1e6),
        ("i_max", -1e6, 1e6),
        ("c2c", 0.0, 10.0),
        ("additive", 0.0, 10.0),
        ("relaxation", 0.0, 10.0),
        ("verify_noise", 0.0, 10.0),
        ("tolerance_counts", 0.0, 1e9),
        ("counts_per_gmax", 0.0, 1e9),
        ("gain", 0.0, 100.0),
        ("t0", 1e-15, 1e15),
        ("t_read", 1e-15, 1e15),
    ];

    fn tolerance(&self) -> f64 {
        self.tolerance_counts / self.counts_per_gmax
    }
}

// The numeric fields by name (the Python `PCMConfig` fields): one list for
// the bindings' conversions both ways and for [`PcmParams::LIMITS`].
field_tables!(PcmParams {
    real: [
        g_max,
        g_set_mean,
        g_set_sd,
        g_reset,
        i_low,
        i_high,
        i_sd,
        i_min,
        i_max,
        c2c,
        additive,
        relaxation,
        verify_noise,
        tolerance_counts,
        counts_per_gmax,
        gain,
        stuck_reset_prob,
        stuck_set_prob,
        t0,
        t_read,
    ],
    int: [max_iterations: u32, devices_per_polarity: usize, seed: u64],
});

/// Phase of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Reset = 0,
    Set = 1,
    Intermediate = 2,
}

/// Fault of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    None = 0,
    StuckReset = 1,
    StuckSet = 2,
}

/// Streams of the generator, one per purpose.
mod stream {
    pub const DEVICE: u64 = 11;
    pub const PULSE: u64 = 12;
    pub const READ: u64 = 13;
    pub const RELAX: u64 = 14;
    pub const NU: u64 = 15;
    pub const T_READ: u64 = 16;
}

/// Durations (s) from Le Gallo et al. (2023), Methods: RESET 125 ns, SET 250 ns + 50 ns
/// trailing edge, trim pulse 125 ns, verify read 512 ns + 256 ns precharge.
pub const PULSE_TIMES: PulseTimes = PulseTimes {
    reset: 125e-9,
    set: 300e-9,
    trim: 125e-9,
    verify: 768e-9,
};

/// Pulse and read durations, s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PulseTimes {
    pub reset: f64,
    pub set: f64,
    pub trim: f64,
    pub verify: f64,
}

impl PulseTimes {
    /// End of the last pulse of a device that got RESET, optionally SET, and
    /// `trims` trim pulses each followed by a verify read.
    fn last_pulse(&self, set: bool, trims: u32) -> f64 {
        let mut t = self.reset;
        if set {
            t += self.set;
        }
        if trims > 0 {
            t += f64::from(trims) * (self.trim + self.verify) - self.verify;
        }
        t
    }
}

/// Random draws per device and trim iteration (pulse noise ×2, verify ×1).
const DRAWS_PER_ITERATION: u64 = 4;

/// Per-device random parameters, drawn once from the device index.
struct DeviceDraw {
    g_set: f64,
    i_low: f64,
    i_high: f64,
    fault: Fault,
}

/// An array of programmed devices (structure of arrays).
#[derive(Clone, Debug)]
pub struct DeviceArray {
    params: PcmParams,
    /// Target per polarity (µS), `n_targets`.
    targets: Vec<f64>,
    /// Per device (`n_targets × devices_per_polarity`), µS.
    pub conductance: Vec<f32>,
    pub phase: Vec<u8>,
    pub fault: Vec<u8>,
    pub nu: Vec<f32>,
    pub iterations: Vec<u8>,
    pub pulses: Vec<u16>,
    /// Per device: end of its last pulse, seconds after the start of its
    /// programming sequence (pulse and verify durations of [`PULSE_TIMES`]).
    pub t_last_pulse: Vec<f32>,
    /// Per target: verify reached the tolerance.
    pub converged: Vec<bool>,
    programmed: bool,
}

/// Summary of a programming run.
#[derive(Clone, Debug, PartialEq)]
pub struct YieldReport {
    pub n_targets: usize,
    pub n_devices: usize,
    pub stuck_reset: usize,
    pub stuck_set: usize,
    /// Converged targets among those whose devices are all healthy.
    pub converged_healthy: f64,
    pub converged_all: f64,
    pub total_pulses: u64,
    pub mean_iterations: f64,
    /// Histogram of trim iterations per device, index `0..=max_iterations`.
    pub iterations_histogram: Vec<u64>,
    /// Standard deviation of (programmed total − target) over healthy targets, µS.
    pub error_std_us: f64,
}

impl DeviceArray {
    /// Devices for `targets` (µS per polarity, each in `[0, devices·g_max]`).
    pub fn new(targets: &[f64], params: &PcmParams) -> Result<Self> {
        params.validate()?;
        let d = params.devices_per_polarity;
        let top = params.g_max * d as f64;
        if let Some((i, v)) = check::first_non_finite(targets.iter().copied()) {
            return Err(Error::Data(format!("target {i} is not finite ({v})")));
        }
        if let Some((i, v)) = targets
            .iter()
            .enumerate()
            .find(|(_, v)| **v < 0.0 || **v > top)
        {
            return Err(Error::Data(format!(
                "target {i} = {v} µS is outside [0, {top}] µS (devices_per_polarity · g_max)"
            )));
        }
        let n = targets.len() * d;
        Ok(DeviceArray {
            params: params.clone(),
            targets: targets.to_vec(),
            conductance: vec![0.0; n],
            phase: vec![Phase::Reset as u8; n],
            fault: vec![Fault::None as u8; n],
            nu: vec![0.0; n],
            iterations: vec![0; n],
            pulses: vec![0; n],
            t_last_pulse: vec![0.0; n],
            converged: vec![false; targets.len()],
            programmed: false,
        })
    }

    pub fn params(&self) -> &PcmParams {
        &self.params
    }

    pub fn targets(&self) -> &[f64] {
        &self.targets
    }

    pub fn is_programmed(&self) -> bool {
        self.programmed
    }

    fn draw_device(&self, dev: u64) -> DeviceDraw {
        let p = &self.params;
        let s = rng::derive_seed(p.seed, stream::DEVICE);
        let z = |k: u64| rng::normal(s, 0, dev * 4 + k);
        let u = rng::uniform(s, 1, dev);
        let fault = if u < p.stuck_reset_prob {
            Fault::StuckReset
        } else if u < p.stuck_reset_prob + p.stuck_set_prob {
            Fault::StuckSet
        } else {
            Fault::None
        };
        DeviceDraw {
            g_set: (p.g_set_mean + p.g_set_sd * z(0)).max(p.g_reset * 2.0),
            i_low: p.i_low + p.i_sd * z(1),
            i_high: p.i_high + p.i_sd * z(2),
            fault,
        }
    }

    /// Conductance (units of `g_max`) after a trim pulse of `current` µA.
    fn pulse(&self, dd: &DeviceDraw, current: f64, dev: u64, iteration: u64) -> f64 {
        let p = &self.params;
        let s = rng::derive_seed(p.seed, stream::PULSE);
        let base = dev * 256 * DRAWS_PER_ITERATION + iteration * DRAWS_PER_ITERATION;
        // The drawn i_high can fall at or below the drawn i_low when i_sd is
        // large: the curve is then a step at i_low (0/0 would give NaN).
        let span = dd.i_high - dd.i_low;
        let frac = if span > 0.0 {
            ((current - dd.i_low) / span).clamp(0.0, 1.0)
        } else if current >= dd.i_low {
            1.0
        } else {
            0.0
        };
        let curve = dd.g_set * (-frac * (dd.g_set / p.g_reset).ln()).exp();
        (curve * (1.0 + p.c2c * rng::normal(s, 0, base)) + p.additive * rng::normal(s, 0, base + 1))
            .max(0.0)
    }

    fn verify(&self, g: f64, dev: u64, iteration: u64) -> f64 {
        let p = &self.params;
        let s = rng::derive_seed(p.seed, stream::READ);
        g + p.verify_noise * rng::normal(s, 0, dev * 256 + iteration)
    }

    /// Trims one healthy device toward `target` (units of `g_max`) from SET.
    /// Returns (conductance, iterations, converged).
    fn trim(&self, dd: &DeviceDraw, target: f64, dev: u64) -> (f64, u32, bool) {
        let p = &self.params;
        let tol = p.tolerance();
        let span = p.i_high - p.i_low;
        let log_range = (p.g_set_mean / p.g_reset).ln();
        // Initial current from the nominal curve.
        let mut current =
            p.i_low + span * ((p.g_set_mean / target.max(1e-6)).ln() / log_range).clamp(0.0, 1.0);
        let slope = span / (log_range * target.max(0.02));
        let mut g = dd.g_set;
        for it in 0..p.max_iterations {
            current = current.clamp(p.i_min, p.i_max);
            g = self.pulse(dd, current, dev, u64::from(it));
            let err = self.verify(g, dev, u64::from(it)) - target;
            if err.abs() < tol {
                return (g, it + 1, true);
            }
            current += p.gain * slope * err;
        }
        (g, p.max_iterations, false)
    }

    /// Programs every target (RESET all, SET, trim; TDP with two devices).
    pub fn program(&mut self) -> Result<YieldReport> {
        let p = self.params.clone();
        let d = p.devices_per_polarity;
        let tol = p.tolerance();
        let n_t = self.targets.len();
        let relax_seed = rng::derive_seed(p.seed, stream::RELAX);
        let nu_seed = rng::derive_seed(p.seed, stream::NU);
        let chunk = 4096usize;
        let n = n_t * d;
        let mut cond = vec![0f32; n];
        let mut phases = vec![0u8; n];
        let mut faults = vec![0u8; n];
        let mut nus = vec![0f32; n];
        let mut iterations = vec![0u8; n];
        let mut pulse_counts = vec![0u16; n];
        let mut t_last = vec![0f32; n];
        let mut converged = vec![false; n_t];
        let out = Outputs {
            cond: DisjointMut::new(&mut cond),
            phase: DisjointMut::new(&mut phases),
            fault: DisjointMut::new(&mut faults),
            nu: DisjointMut::new(&mut nus),
            iterations: DisjointMut::new(&mut iterations),
            pulses: DisjointMut::new(&mut pulse_counts),
            t_last: DisjointMut::new(&mut t_last),
            converged: DisjointMut::new(&mut converged),
        };
        let this: &DeviceArray = self;
        parallel::for_each_index(n_t.div_ceil(chunk), |c| {
            for t in c * chunk..((c + 1) * chunk).min(n_t) {
                let target = this.targets[t] / p.g_max;
                let devs: Vec<u64> = (0..d).map(|k| (t * d + k) as u64).collect();
                let draws: Vec<DeviceDraw> = devs.iter().map(|&i| this.draw_device(i)).collect();
                // Everything starts RESET (stuck-SET devices stay SET).
                let mut g: Vec<f64> = draws
                    .iter()
                    .map(|dd| {
                        if dd.fault == Fault::StuckSet {
                            dd.g_set
                        } else {
                            p.g_reset
                        }
                    })
                    .collect();
                let mut phase: Vec<Phase> = draws
                    .iter()
                    .map(|dd| {
                        if dd.fault == Fault::StuckSet {
                            Phase::Set
                        } else {
                            Phase::Reset
                        }
                    })
                    .collect();
                let mut iters = vec![0u32; d];
                let mut pulses = vec![1u32; d]; // the RESET pulse
                let mut ok = true;
                // Which devices to SET and which to trim.
                let order: Vec<usize> = if d == 2 && draws[1].g_set > draws[0].g_set {
                    vec![1, 0]
                } else {
                    (0..d).collect()
                }; // order[0]: the device with the higher G_SET
                let hi = order[0];
                let mut remainder = target;
                if d == 2 && target > draws[hi].g_set {
                    // Keep the higher device fully SET, trim the other to the rest.
                    if draws[hi].fault == Fault::None {
                        g[hi] = draws[hi].g_set;
                        phase[hi] = Phase::Set;
                        pulses[hi] += 1;
                    }
                    remainder = (target - this.verify(g[hi], devs[hi], 255)).max(0.0);
                }
                let trimmed = if d == 2 && target > draws[hi].g_set {
                    order[1]
                } else {
                    hi
                };
                let dd = &draws[trimmed];
                if remainder <= p.g_reset {
                    // Nothing to program (the other polarity, a zero weight):
                    // the device stays RESET, as on HERMES.
                    ok &= (g[trimmed] - remainder).abs() < tol;
                } else if dd.fault != Fault::None {
                    ok = false;
                } else if remainder >= dd.g_set - tol {
                    g[trimmed] = dd.g_set;
                    phase[trimmed] = Phase::Set;
                    pulses[trimmed] += 1;
                    ok &= (dd.g_set - remainder).abs() < tol;
                } else {
                    let (gt, n_it, conv) = this.trim(dd, remainder, devs[trimmed]);
                    g[trimmed] = gt;
                    phase[trimmed] = Phase::Intermediate;
                    iters[trimmed] = n_it;
                    pulses[trimmed] += 1 + n_it; // SET + trims
                    ok &= conv;
                }
                for k in 0..d {
                    let i = devs[k];
                    let mut gk = g[k];
                    if draws[k].fault == Fault::None && phase[k] != Phase::Reset {
                        gk *= 1.0 + p.relaxation * rng::normal(relax_seed, 0, i);
                        gk = gk.max(0.0);
                    }
                    let nu = if phase[k] == Phase::Set {
                        (0.005 + 0.002 * rng::normal(nu_seed, 0, i)).abs()
                    } else {
                        let (mu, sd) = NoiseModel::Pcm.drift_nu(gk, 1);
                        (mu + sd * rng::normal(nu_seed, 0, i)).abs()
                    };
                    let idx = t * d + k;
                    // SAFETY: chunk c owns the devices of targets [c·chunk, ..),
                    // and every index is inside the output buffers.
                    unsafe {
                        out.put(
                            idx,
                            (gk * p.g_max) as f32,
                            phase[k] as u8,
                            draws[k].fault as u8,
                            nu as f32,
                            iters[k] as u8,
                            pulses[k] as u16,
                        );
                    };
                }
                // SAFETY: as above, target t belongs to chunk c.
                unsafe { out.put_converged(t, ok) };
            }
        });
        if parallel::interrupted() {
            // Stopped part-way (Ctrl-C): keep the previous state whole.
            return Err(Error::Interrupted);
        }
        self.conductance = cond;
        self.phase = phases;
        self.fault = faults;
        self.nu = nus;
        self.iterations = iterations;
        self.pulses = pulse_counts;
        self.t_last_pulse = t_last;
        self.converged = converged;
        self.programmed = true;
        Ok(self.stats())
    }

    /// Conductances (µS, per device) read `t_inference` s after programming:
    /// drift `(t/t0)^−ν` and accumulated 1/f noise (aihwkit PCM law), drawn with
    /// `seed`; with `per_read_noise`, also the instantaneous noise of one read
    /// (`verify_noise`, as a verify read).
    pub fn read(&self, t_inference: f64, seed: u64, per_read_noise: bool) -> Result<Vec<f64>> {
        if !self.programmed {
            return Err(Error::value(
                "read",
                "program() the devices before reading them",
            ));
        }
        check::time("t_inference", t_inference)?;
        let p = &self.params;
        let t = t_inference + p.t0;
        let ratio = (t + p.t_read) / (2.0 * p.t_read);
        // For a huge t_inference the ratio overflows: take it in logarithms
        // then (not always: the bits of ordinary reads stay as they were).
        let log_ratio = if ratio.is_finite() {
            ratio.ln()
        } else {
            (t + p.t_read).ln() - (2.0 * p.t_read).ln()
        };
        let log_term = log_ratio.max(0.0).sqrt();
        let s = rng::derive_seed(seed, stream::T_READ);
        Ok(self
            .conductance
            .iter()
            .zip(&self.nu)
            .enumerate()
            .map(|(i, (&g, &nu))| {
                let g = f64::from(g);
                // (t/t0) may overflow to inf: inf^-nu is 0 (nu > 0) or 1, the limits.
                let gd = g * (t / p.t0).powf(-f64::from(nu));
                let qs = NoiseModel::Pcm.read_qs(g / p.g_max, 1);
                let mut v = gd + gd.abs() * qs * log_term * rng::normal(s, 0, i as u64);
                if per_read_noise {
                    v += p.verify_noise * p.g_max * rng::normal(s, 1, i as u64);
                }
                v.max(0.0)
            })
            .collect())
    }

    /// Yield report of the last programming.
    pub fn stats(&self) -> YieldReport {
        let p = &self.params;
        let d = p.devices_per_polarity;
        let n_t = self.targets.len();
        let mut hist = vec![0u64; p.max_iterations as usize + 1];
        for &it in &self.iterations {
            hist[it as usize] += 1;
        }
        let healthy: Vec<bool> = (0..n_t)
            .map(|t| {
                self.fault[t * d..(t + 1) * d]
                    .iter()
                    .all(|&f| f == Fault::None as u8)
            })
            .collect();
        let n_healthy = healthy.iter().filter(|&&h| h).count();
        let conv_healthy = (0..n_t)
            .filter(|&t| healthy[t] && self.converged[t])
            .count();
        let errors: Vec<f64> = (0..n_t)
            .filter(|&t| healthy[t])
            .map(|t| {
                let total: f64 = self.conductance[t * d..(t + 1) * d]
                    .iter()
                    .map(|&g| f64::from(g))
                    .sum();
                total - self.targets[t]
            })
            .collect();
        let mean = errors.iter().sum::<f64>() / errors.len().max(1) as f64;
        let var =
            errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / errors.len().max(1) as f64;
        let trimmed: Vec<u8> = self.iterations.iter().copied().filter(|&i| i > 0).collect();
        YieldReport {
            n_targets: n_t,
            n_devices: n_t * d,
            stuck_reset: self
                .fault
                .iter()
                .filter(|&&f| f == Fault::StuckReset as u8)
                .count(),
            stuck_set: self
                .fault
                .iter()
                .filter(|&&f| f == Fault::StuckSet as u8)
                .count(),
            converged_healthy: conv_healthy as f64 / n_healthy.max(1) as f64,
            converged_all: self.converged.iter().filter(|&&c| c).count() as f64 / n_t.max(1) as f64,
            total_pulses: self.pulses.iter().map(|&p| u64::from(p)).sum(),
            mean_iterations: trimmed.iter().map(|&i| f64::from(i)).sum::<f64>()
                / trimmed.len().max(1) as f64,
            iterations_histogram: hist,
            error_std_us: var.sqrt(),
        }
    }
}

/// Output buffers of `program`, written by tasks at disjoint indices.
#[derive(Clone, Copy)]
struct Outputs<'a> {
    cond: DisjointMut<'a, f32>,
    phase: DisjointMut<'a, u8>,
    fault: DisjointMut<'a, u8>,
    nu: DisjointMut<'a, f32>,
    iterations: DisjointMut<'a, u8>,
    pulses: DisjointMut<'a, u16>,
    t_last: DisjointMut<'a, f32>,
    converged: DisjointMut<'a, bool>,
}

impl Outputs<'_> {
    /// Writes device `idx` (methods make closures capture the whole struct).
    ///
    /// # Safety
    /// `idx` is inside the buffers and no other task writes it.
    #[allow(clippy::too_many_arguments)]
    unsafe fn put(&self, idx: usize, g: f32, phase: u8, fault: u8, nu: f32, it: u8, pulses: u16) {
        // SAFETY (every write): the caller's contract; bounds are checked.
        unsafe {
            self.cond.write(idx, g);
            self.phase.write(idx, phase);
            self.fault.write(idx, fault);
            self.nu.write(idx, nu);
            self.iterations.write(idx, it);
            self.pulses.write(idx, pulses);
        }
        // pulses = RESET (+ SET) (+ trims): a SET happened when more than the
        // RESET and the trims were applied.
        let set = u32::from(pulses) > 1 + u32::from(it);
        // SAFETY: as above.
        unsafe {
            self.t_last
                .write(idx, PULSE_TIMES.last_pulse(set, u32::from(it)) as f32);
        };
    }

    /// # Safety
    /// As [`Outputs::put`], for target `t`.
    unsafe fn put_converged(&self, t: usize, ok: bool) {
        // SAFETY: the caller's contract; bounds are checked.
        unsafe { self.converged.write(t, ok) };
    }
}

#[cfg(test)]
mod tests;
