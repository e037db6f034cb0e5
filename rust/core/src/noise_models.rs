//! Statistical PCM device models: programming noise, drift exponent, 1/f read
//! noise, as published in IBM aihwkit (`src/aihwkit/inference/noise/pcm.py`,
//! `src/aihwkit/inference/noise/hermes.py`).
//!
//! - [`NoiseModel::Pcm`]: aihwkit `PCMLikeNoiseModel` (Nandakumar et al., ICECS
//!   2019), `src/aihwkit/inference/noise/pcm.py`. Laws are per device, with
//!   `ĝ = g / g_max_device`; the programming polynomial was fitted at 25 µS and
//!   is scaled by `g_max_device / 25`.
//! - [`NoiseModel::Hermes`]: aihwkit `HermesNoiseModel` (fitted on HERMES
//!   devices), `src/aihwkit/inference/noise/hermes.py`. Laws are for the
//!   conductance of one polarity (1 or 2 devices), `ĝ = G / g_max`.
//! - [`NoiseModel::None`]: no programming noise, no drift, no read noise.

/// Which statistical device model to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoiseModel {
    /// Ideal devices.
    None,
    /// aihwkit `PCMLikeNoiseModel`.
    Pcm,
    /// aihwkit `HermesNoiseModel`.
    Hermes,
}

/// Floor of `ĝ` inside the logarithms (aihwkit: 1e-7).
const G_HAT_FLOOR: f64 = 1e-7;

fn clamp(x: f64, lo: f64, hi: f64) -> f64 {
    x.max(lo).min(hi)
}

impl NoiseModel {
    /// Parses `"none"`, `"pcm"`, `"hermes"` (the table is [`crate::names`]).
    pub fn from_name(name: &str) -> Option<Self> {
        <Self as crate::names::Named>::from_name(name).ok()
    }

    /// Default maximum conductance of one polarity (µS): aihwkit's `g_max` per
    /// device (PCM 25 µS; HERMES 10.35 µS per device, 20.7 µS for two).
    pub fn default_g_max(self, devices: usize) -> f64 {
        match self {
            NoiseModel::Hermes => 10.35 * devices as f64,
            _ => 25.0 * devices as f64,
        }
    }

    /// Default t0 (s): PCM 20 s; HERMES 200 s (1 device) / 300 s (2 devices).
    pub fn default_t0(self, devices: usize) -> f64 {
        match (self, devices) {
            (NoiseModel::Hermes, 1) => 200.0,
            (NoiseModel::Hermes, _) => 300.0,
            _ => 20.0,
        }
    }

    /// Default read duration `t_read` (s): PCM 250 ns, HERMES 512 ns.
    pub fn default_t_read(self) -> f64 {
        match self {
            NoiseModel::Hermes => 512e-9,
            _ => 250e-9,
        }
    }

    /// Standard deviation (µS) of the programming error at target `g` (µS).
    /// `g_ref` is the conductance range of the law (device for PCM, polarity
    /// for HERMES).
    pub fn programming_sigma(self, g: f64, g_ref: f64, devices: usize) -> f64 {
        let gh = (g / g_ref).max(0.0);
        match self {
            NoiseModel::None => 0.0,
            NoiseModel::Pcm => {
                let (c0, c1, c2) = (0.26348, 1.9650, -1.1731);
                ((c0 + c1 * gh + c2 * gh * gh) * g_ref / 25.0).max(0.0)
            }
            NoiseModel::Hermes => {
                let c = if devices == 1 {
                    [0.15781817, 2.32443916, -2.16310839, 0.68841818]
                } else {
                    [0.16603222, 4.71806468, -8.48101252, 4.68961419]
                };
                (c[0] + c[1] * gh + c[2] * gh * gh + c[3] * gh * gh * gh).max(0.0)
            }
        }
    }

    /// Mean and standard deviation of the drift exponent ν at `ĝ`.
    pub fn drift_nu(self, g_hat: f64, devices: usize) -> (f64, f64) {
        let gh = g_hat.max(G_HAT_FLOOR);
        match self {
            NoiseModel::None => (0.0, 0.0),
            NoiseModel::Pcm => (
                clamp(-0.0155 * gh.ln() + 0.0244, 0.049, 0.1),
                clamp(-0.0125 * gh.ln() - 0.0059, 0.008, 0.045),
            ),
            NoiseModel::Hermes => {
                let mu = if gh < 0.0945 {
                    clamp(-0.0387 * gh.ln() - 0.0182, 0.072, 0.13)
                } else {
                    -0.0436 * gh * gh - 0.0126 * gh + 0.0736
                };
                let sigma = if devices == 1 {
                    if gh < 0.3039 {
                        clamp(-0.0120 * gh.ln() - 0.0023, 0.0124, 0.04)
                    } else {
                        -0.0165 * gh * gh + 0.0116 * gh + 0.0104
                    }
                } else if gh < 0.3055 {
                    clamp(-0.0117 * gh.ln() - 0.0057, 0.0091, 0.04)
                } else {
                    -0.0118 * gh * gh + 0.0093 * gh + 0.0073
                };
                (mu, sigma)
            }
        }
    }

    /// 1/f read-noise amplitude `Q_s` at the programmed `ĝ`.
    pub fn read_qs(self, g_hat: f64, devices: usize) -> f64 {
        let gh = g_hat.max(0.0);
        match self {
            NoiseModel::None => 0.0,
            NoiseModel::Pcm => (0.0088 / gh.powf(0.65).max(1e-3)).min(0.2),
            NoiseModel::Hermes => {
                let gl = gh.max(G_HAT_FLOOR);
                if devices == 1 {
                    if gh < 0.1591 {
                        clamp(-0.0078 * gl.ln() + 0.0038, 0.0179, 0.04)
                    } else {
                        0.0664 * gh.powi(3) - 0.1352 * gh * gh + 0.0768 * gh + 0.0088
                    }
                } else if gh < 0.16 {
                    clamp(-0.0117 * gl.ln() - 0.0069, 0.015, 0.04)
                } else {
                    0.0069 * gh.powi(3) - 0.0280 * gh * gh + 0.0211 * gh + 0.0123
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_values() {
        // PCM: sigma at g_T = 0 is c0 = 0.26348 µS at g_max 25; at g_max it is
        // c0 + c1 + c2 = 1.05538 µS.
        let p = NoiseModel::Pcm;
        assert!((p.programming_sigma(0.0, 25.0, 1) - 0.26348).abs() < 1e-12);
        assert!((p.programming_sigma(25.0, 25.0, 1) - 1.05538).abs() < 1e-9);
        // drift mean clamps at 0.1 for tiny conductance, 0.049 near g_max.
        assert_eq!(p.drift_nu(1e-9, 1).0, 0.1);
        assert!((p.drift_nu(1.0, 1).0 - 0.049).abs() < 1e-12);
        // HERMES cubic at ĝ = 0 is c0.
        let h = NoiseModel::Hermes;
        assert!((h.programming_sigma(0.0, 20.7, 2) - 0.16603222).abs() < 1e-12);
        assert_eq!(h.default_g_max(2), 20.7);
        assert_eq!(h.default_t0(2), 300.0);
        assert_eq!(NoiseModel::None.programming_sigma(10.0, 25.0, 1), 0.0);
    }
}
