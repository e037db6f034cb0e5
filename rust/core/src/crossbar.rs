//! Bit-accurate tiled crossbar matrix–vector engine with HERMES/PCM
//! non-idealities.
//!
//! Datapath of one MVM `y = W x` (W: `out × in`), after the IBM HERMES chip
//! (Le Gallo et al., Nat. Electron. 2023; hardware-facts §2) and aihwkit's
//! inference model (hardware-facts §3):
//!
//! 1. **Mapping.** W is cut into tiles of at most `tile_rows × tile_cols`
//!    (outputs × inputs). Per tile (or per output row of a tile) `w_max =
//!    max|W|`; each weight becomes an integer conductance code
//!    `rint(W · 2^b / w_max)` (`b = conductance_bits`, LSB = `g_max / 2^b`),
//!    split over `devices_per_polarity` devices of its polarity, filling the
//!    first device before the second (HERMES TDP: as many devices as possible
//!    fully SET or RESET).
//! 2. **Programming.** Each device gets its target plus noise from the
//!    statistical model ([`NoiseModel`]), clamped to `[0, g_max_device]`; the
//!    drift exponent ν is drawn from the model's law at the target.
//! 3. **Time.** At `t_inference` seconds after programming:
//!    `g = g_prog · ((t_inf + t0)/t0)^(−ν)` plus accumulated 1/f noise
//!    `|g| · Q_s · sqrt(ln((t + t_read)/(2 t_read)))) · ξ`, clamped at 0, then
//!    re-quantised to the code grid.
//! 4. **DAC.** Signed `input_bits` codes `clamp(rint(x · M/s), −M, M)`,
//!    `M = 2^(input_bits−1) − 1`, with `s` the abs-max of the tile's input
//!    slice (per vector) or a fixed `input_range` (clipping).
//! 5. **Exact accumulation.** `acc = Σ code_in · (g⁺ − g⁻)` in integers (i32
//!    when it cannot overflow, else i64): the sum cannot depend on order,
//!    SIMD width or threads.
//! 6. **Per-MVM noise** on the column value `v = acc / (M · 2^b)` (units of
//!    normalised weight × normalised input): Gaussian output noise with
//!    `σ = out_noise · out_bound` (a fraction of the ADC range), PCM read noise
//!    `w_noise · sqrt(Σ|ŵ| x̂²)` (aihwkit PCM_READ), IR drop (aihwkit's model).
//! 7. **ADC** with `output_bits` (0: none): `clamp(rint(v · K/out_bound), −K, K)
//!    · out_bound/K`, `K = 2^(output_bits−1) − 1` (round half to even, saturate
//!    at both ends); rescale to weight units, `· s · (w_max · γ)` with γ the
//!    drift-compensation factor; per-column affine correction `a·v + b`; tile
//!    partial sums added in increasing input-tile order in f64.
//! 8. **Drift compensation** (aihwkit GlobalDriftCompensation; [Joshi20]
//!    Methods E): a readout right after programming over the same readout at
//!    `t_inference`, per tile (global) or per output column of a tile. The
//!    readout is aihwkit's `mean|y|` over one-hot inputs, `Σ|g⁺ − g⁻|`, taken
//!    through an ideal periphery as an exact integer.
//!
//! Randomness: every draw is Philox keyed by `(seed, stream, index)`
//! ([`crate::rng`]), the index being the device index (programming, drift,
//! read noise) or `(sample, input tile, output)` (per-MVM noise). Same seed ⇒
//! same bits for any thread count or batch split (`row_offset` places a
//! sub-batch within the full batch).

use crate::error::{Error, Result};
use crate::hadamard::Float;
use crate::noise_models::NoiseModel;
use crate::parallel;
use crate::rng;

/// How `w_max` is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightScaling {
    /// One `w_max` per tile (HERMES: "W_max the largest |W| in the core").
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
    /// Maximum conductance of one polarity (all its devices), µS.
    pub g_max: f64,
    pub prog_noise_scale: f64,
    pub drift_scale: f64,
    pub read_noise_scale: f64,
    pub t0: f64,
    pub t_read: f64,
    pub input_bits: u32,
    /// `None`: abs-max scaling per input vector and tile; `Some(r)`: fixed range.
    pub input_range: Option<f64>,
    pub out_noise: f64,
    pub w_noise: f64,
    pub ir_drop: f64,
    pub ir_drop_g_ratio: f64,
    /// 0 disables the ADC.
    pub output_bits: u32,
    pub out_bound: f64,
    pub drift_compensation: DriftCompensation,
}

impl CrossbarParams {
    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let pos = |field: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::value(
                    field,
                    format!("must be a positive finite number, got {v}"),
                ))
            }
        };
        let nonneg = |field: &'static str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(Error::value(
                    field,
                    format!("must be a finite number >= 0, got {v}"),
                ))
            }
        };
        let within = |field: &'static str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(Error::value(
                    field,
                    format!("must be in {lo}..={hi}, got {v}"),
                ))
            }
        };
        within("tile_rows", self.tile_rows as u64, 1, 4096)?;
        within("tile_cols", self.tile_cols as u64, 1, 4096)?;
        if !(1..=2).contains(&self.devices_per_polarity) {
            return Err(Error::value(
                "devices_per_polarity",
                format!("must be 1 or 2, got {}", self.devices_per_polarity),
            ));
        }
        within("conductance_bits", self.conductance_bits.into(), 2, 14)?;
        within("input_bits", self.input_bits.into(), 1, 16)?;
        if self.output_bits > 24 {
            return Err(Error::value(
                "output_bits",
                format!("must be 0 (no ADC) or in 1..=24, got {}", self.output_bits),
            ));
        }
        pos("g_max", self.g_max)?;
        pos("t0", self.t0)?;
        pos("t_read", self.t_read)?;
        pos("out_bound", self.out_bound)?;
        pos("ir_drop_g_ratio", self.ir_drop_g_ratio)?;
        nonneg("prog_noise_scale", self.prog_noise_scale)?;
        nonneg("drift_scale", self.drift_scale)?;
        nonneg("read_noise_scale", self.read_noise_scale)?;
        nonneg("out_noise", self.out_noise)?;
        nonneg("w_noise", self.w_noise)?;
        nonneg("ir_drop", self.ir_drop)?;
        if let Some(r) = self.input_range {
            pos("input_range", r)?;
        }
        Ok(())
    }

    /// `M`: the largest input code, `2^(input_bits−1) − 1` (at least 1: a
    /// 1-bit signed DAC is taken as ternary −1, 0, 1).
    fn input_max_code(&self) -> i64 {
        ((1i64 << (self.input_bits - 1)) - 1).max(1)
    }

    fn full_code(&self) -> i64 {
        1i64 << self.conductance_bits
    }

    fn device_max_code(&self) -> i64 {
        self.full_code() / self.devices_per_polarity as i64
    }

    /// Largest code a device can hold after programming. The statistical
    /// model clamps at `g_max`; a device programmed iteratively can sit fully
    /// SET above the nominal `g_max` (its SET conductance, ~1.15 g_max), so
    /// its codes may reach 1.5 × the nominal range (|cell code| ≤ 1.5 · 2^b,
    /// still within i16).
    fn device_code_ceiling(&self) -> i64 {
        match self.programming {
            Programming::Statistical => self.device_max_code(),
            Programming::Iterative => self.device_max_code() * 3 / 2,
        }
    }

    /// Largest |g⁺ − g⁻| cell code.
    fn max_cell_code(&self) -> i64 {
        self.device_code_ceiling() * self.devices_per_polarity as i64
    }
}

/// Streams of the counter-based generator, one per purpose.
mod stream {
    pub const PROGRAM: u64 = 1;
    pub const NU: u64 = 2;
    pub const READ: u64 = 3;
    pub const OUT_NOISE: u64 = 4;
    pub const W_NOISE: u64 = 5;
}

/// Geometry of one tile.
#[derive(Clone, Debug)]
struct Tile {
    /// First output (row of W) and first input (column of W).
    row0: usize,
    col0: usize,
    rows: usize,
    cols: usize,
    /// Offset of the tile's first cell in the cell arrays.
    cell0: usize,
    /// Offset of the tile's rows in the per-(tile, output) arrays.
    out0: usize,
    /// Offset of the tile in the column-major code array.
    cm0: usize,
}

/// Rows of a tile rounded up to the kernel's vector width.
fn padded(rows: usize) -> usize {
    rows.div_ceil(16) * 16
}

/// A weight matrix programmed onto simulated crossbar tiles.
#[derive(Clone, Debug)]
pub struct AnalogMatrix {
    params: CrossbarParams,
    out_dim: usize,
    in_dim: usize,
    tiles: Vec<Tile>,
    /// Number of input tiles (tiles are ordered row-tile-major).
    n_col_tiles: usize,
    /// `w_max` per (tile, output row).
    w_max: Vec<f64>,
    /// Target device codes, `cells × 2 × devices` (polarity-major per cell).
    target: Vec<u16>,
    /// Programmed conductance (µS) and drift exponent per device.
    g_prog: Vec<f32>,
    nu: Vec<f32>,
    /// Current effective cell codes `g⁺ − g⁻` (row-major per tile) and their time.
    codes: Vec<i32>,
    /// The same codes in the layout of the accumulation kernel: per tile, for
    /// each pair of inputs `(2p, 2p+1)`, the rows (padded to a multiple of 16)
    /// as interleaved i16 pairs `g[o, 2p], g[o, 2p+1]` (a multiply-add of i16
    /// pairs, `vpmaddwd`, then covers two inputs at once).
    codes_cm: Vec<i16>,
    t_inference: f64,
    /// Drift-compensation factor per (tile, output row).
    compensation: Vec<f64>,
    /// `(w_max · compensation) · affine_scale` per (tile, output row): the
    /// factor from normalised units back to weight units, affine scale
    /// included (kept current by `drift_to` and `set_affine`).
    gain: Vec<f64>,
    /// Drift-compensation readout per (tile, output row) right after programming.
    reference_sums: Vec<i64>,
    /// Per-(tile, output row) affine correction.
    affine_scale: Vec<f64>,
    affine_offset: Vec<f64>,
}

/// `max |x|` (0 for an empty slice) of finite values, with eight independent
/// lanes so that it vectorises (max is exact, so the grouping cannot change it).
#[inline(always)]
fn abs_max<X: Float>(xs: &[X]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let mut chunks = xs.chunks_exact(8);
    for chunk in &mut chunks {
        for (m, &v) in lanes.iter_mut().zip(chunk) {
            let a = v.to_f64().abs();
            *m = if a > *m { a } else { *m };
        }
    }
    for (m, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        let a = v.to_f64().abs();
        *m = if a > *m { a } else { *m };
    }
    lanes.iter().fold(0.0, |a, &m| if m > a { m } else { a })
}

/// Round half to even, as numpy's `rint`.
#[inline(always)]
fn rint(x: f64) -> f64 {
    x.round_ties_even()
}

impl AnalogMatrix {
    /// Maps `w` (`out_dim × in_dim`, C order, finite) onto tiles and programs
    /// every device with `seed`.
    pub fn program(
        w: &[f64],
        out_dim: usize,
        in_dim: usize,
        params: &CrossbarParams,
        seed: u64,
    ) -> Result<Self> {
        params.validate()?;
        if w.len() != out_dim * in_dim {
            return Err(Error::Shape(format!(
                "W has {} elements, expected out_dim × in_dim = {out_dim} × {in_dim}",
                w.len()
            )));
        }
        if let Some(pos) = w.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "W contains a non-finite value ({}) at row {}, column {}",
                w[pos],
                pos / in_dim.max(1),
                pos % in_dim.max(1)
            )));
        }
        let p = params.clone();
        let (tr, tc) = (p.tile_rows, p.tile_cols);
        let n_row_tiles = out_dim.div_ceil(tr);
        let n_col_tiles = in_dim.div_ceil(tc);
        let mut tiles = Vec::new();
        let (mut cell0, mut out0, mut cm0) = (0, 0, 0);
        for rt in 0..n_row_tiles {
            for ct in 0..n_col_tiles {
                let rows = tr.min(out_dim - rt * tr);
                let cols = tc.min(in_dim - ct * tc);
                tiles.push(Tile {
                    row0: rt * tr,
                    col0: ct * tc,
                    rows,
                    cols,
                    cell0,
                    out0,
                    cm0,
                });
                cell0 += rows * cols;
                out0 += rows;
                cm0 += padded(rows) * cols.next_multiple_of(2);
            }
        }
        let cells = cell0;
        let d = p.devices_per_polarity;
        let full = p.full_code() as f64;
        let dev_max = p.device_max_code();
        let mut w_max = vec![0.0f64; out0];
        let mut target = vec![0u16; cells * 2 * d];
        for t in &tiles {
            let tile_max = (0..t.rows)
                .flat_map(|r| (0..t.cols).map(move |c| (r, c)))
                .map(|(r, c)| w[(t.row0 + r) * in_dim + t.col0 + c].abs())
                .fold(0.0f64, f64::max);
            for r in 0..t.rows {
                let row = &w[(t.row0 + r) * in_dim + t.col0..][..t.cols];
                let wm = match p.weight_scaling {
                    WeightScaling::PerTile => tile_max,
                    WeightScaling::PerColumn => row.iter().fold(0.0f64, |m, v| m.max(v.abs())),
                };
                // A scale so small that 2^b / w_max overflows maps to zero.
                let wm = if (full / wm).is_finite() { wm } else { 0.0 };
                w_max[t.out0 + r] = wm;
                let q = if wm > 0.0 { full / wm } else { 0.0 };
                for (c, &wv) in row.iter().enumerate() {
                    let code = rint(wv * q) as i64;
                    let cell = t.cell0 + r * t.cols + c;
                    let pol = usize::from(code < 0);
                    let mut rest = code.abs();
                    for k in 0..d {
                        let take = rest.min(dev_max);
                        target[(cell * 2 + pol) * d + k] = take as u16;
                        rest -= take;
                    }
                }
            }
        }
        let mut m = AnalogMatrix {
            params: p,
            out_dim,
            in_dim,
            tiles,
            n_col_tiles,
            w_max,
            target,
            g_prog: Vec::new(),
            nu: Vec::new(),
            codes: vec![0; cells],
            codes_cm: vec![0; cm0],
            t_inference: f64::NAN,
            compensation: vec![1.0; out0],
            gain: vec![0.0; out0],
            reference_sums: vec![0; out0],
            affine_scale: vec![1.0; out0],
            affine_offset: vec![0.0; out0],
        };
        m.program_devices(seed)?;
        m.reference_sums = m.readout_sums(&m.cell_codes(&m.device_codes_programmed()));
        m.drift_to(0.0, seed)?;
        Ok(m)
    }

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

    fn program_devices(&mut self, seed: u64) -> Result<()> {
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
        let gp = SendSlice(g_prog.as_mut_ptr());
        let nv = SendSlice(nu.as_mut_ptr());
        parallel::for_each_index(n.div_ceil(chunk), |ci| {
            for i in ci * chunk..((ci + 1) * chunk).min(n) {
                let g_t = target[i] as f64 * lsb;
                // HERMES laws take the polarity's total; the noise lands on the
                // device being trimmed, the others sit fully SET or RESET.
                let cell_pol = i / d;
                let (law_g, noisy) = match model {
                    NoiseModel::Hermes => {
                        let total: f64 =
                            (0..d).map(|k| target[cell_pol * d + k] as f64 * lsb).sum();
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
                // SAFETY: chunk ci owns indices [ci*chunk, (ci+1)*chunk).
                unsafe {
                    *gp.at(i) = g as f32;
                    *nv.at(i) = v as f32;
                }
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
            .map(|c| c.iter().map(|&v| v as f64).sum::<f64>() * lsb)
            .collect();
        let mut arr = crate::pcm::DeviceArray::new(&totals, &pcm)?;
        arr.program()?;
        self.g_prog = arr.conductance.clone();
        self.nu = arr.nu.clone();
        Ok(())
    }

    /// Device codes of the programmed state (no drift, no read noise).
    fn device_codes_programmed(&self) -> Vec<u16> {
        if self.exact_devices() {
            return self.target.clone();
        }
        let lsb = self.lsb();
        let dev_max = self.params.device_code_ceiling() as f64;
        self.g_prog
            .iter()
            .map(|&g| rint(g as f64 / lsb).clamp(0.0, dev_max) as u16)
            .collect()
    }

    /// Cell codes `g⁺ − g⁻` from device codes.
    fn cell_codes(&self, dev: &[u16]) -> Vec<i32> {
        let d = self.params.devices_per_polarity;
        dev.chunks_exact(2 * d)
            .map(|cell| {
                let pos: i32 = cell[..d].iter().map(|&v| v as i32).sum();
                let neg: i32 = cell[d..].iter().map(|&v| v as i32).sum();
                pos - neg
            })
            .collect()
    }

    /// The drift-compensation readout per (tile, output row): `Σ_j |g⁺ − g⁻|`,
    /// i.e. the summed |output| for one-hot inputs through an ideal periphery
    /// (aihwkit `GlobalDriftCompensation` reads `mean|y|` over the identity
    /// input set), as an exact integer.
    fn readout_sums(&self, cells: &[i32]) -> Vec<i64> {
        let mut sums = vec![0i64; self.w_max.len()];
        for t in &self.tiles {
            for r in 0..t.rows {
                let c0 = t.cell0 + r * t.cols;
                sums[t.out0 + r] = cells[c0..c0 + t.cols]
                    .iter()
                    .map(|&v| (v as i64).abs())
                    .sum();
            }
        }
        sums
    }

    /// Moves the devices to `t_inference` seconds after programming: drift
    /// and accumulated 1/f read noise (drawn with `seed`), re-quantised; then
    /// updates the drift-compensation factors.
    pub fn drift_to(&mut self, t_inference: f64, seed: u64) -> Result<()> {
        if !(t_inference.is_finite() && t_inference >= 0.0) {
            return Err(Error::value(
                "t_inference",
                format!("must be a finite number of seconds >= 0, got {t_inference}"),
            ));
        }
        let p = &self.params;
        let d = p.devices_per_polarity;
        let dev = if self.exact_devices() {
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
            let op = SendSlice(out.as_mut_ptr());
            let (g_prog, nu) = (&self.g_prog, &self.nu);
            let chunk = 1 << 14;
            parallel::for_each_index(n.div_ceil(chunk), |ci| {
                for i in ci * chunk..((ci + 1) * chunk).min(n) {
                    let g0 = g_prog[i] as f64;
                    let gd = g0 * time_factor.powf(-(nu[i] as f64));
                    let law_g = match model {
                        NoiseModel::Hermes => (0..d).map(|k| g_prog[(i / d) * d + k] as f64).sum(),
                        _ => g0,
                    };
                    let sigma = model.read_qs(law_g / range, d) * log_term * read_scale;
                    let g = (gd + gd.abs() * sigma * rng::normal(seed_read, 0, i as u64)).max(0.0);
                    // SAFETY: chunk ci owns its indices.
                    unsafe { *op.at(i) = rint(g / lsb).clamp(0.0, dev_max) as u16 };
                }
            });
            out
        };
        self.codes = self.cell_codes(&dev);
        for t in &self.tiles {
            let rp = padded(t.rows);
            for r in 0..t.rows {
                for c in 0..t.cols {
                    // |code| ≤ 1.5 · 2^14 = 24576 (see device_code_ceiling): fits i16.
                    self.codes_cm[t.cm0 + (c / 2) * 2 * rp + 2 * r + (c % 2)] =
                        self.codes[t.cell0 + r * t.cols + c] as i16;
                }
            }
        }
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
        self.refresh_gain();
        self.t_inference = t_inference;
        Ok(())
    }

    /// Recomputes `gain` after a change of the compensation
    /// or of the affine scale.
    fn refresh_gain(&mut self) {
        for (((g, &w), &c), &a) in self
            .gain
            .iter_mut()
            .zip(&self.w_max)
            .zip(&self.compensation)
            .zip(&self.affine_scale)
        {
            *g = (w * c) * a;
        }
    }

    /// Time (s after programming) of the current device state.
    pub fn t_inference(&self) -> f64 {
        self.t_inference
    }

    /// `(out_dim, in_dim)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.out_dim, self.in_dim)
    }

    /// The parameters.
    pub fn params(&self) -> &CrossbarParams {
        &self.params
    }

    /// Tile geometry: `(row0, col0, rows, cols)` per tile, row-tile-major.
    pub fn tile_layout(&self) -> Vec<(usize, usize, usize, usize)> {
        self.tiles
            .iter()
            .map(|t| (t.row0, t.col0, t.rows, t.cols))
            .collect()
    }

    /// Sets the per-(tile, output) affine correction `a·v + b` (lengths: the
    /// number of (tile, output row) pairs, in tile order).
    pub fn set_affine(&mut self, scale: &[f64], offset: &[f64]) -> Result<()> {
        let n = self.w_max.len();
        if scale.len() != n || offset.len() != n {
            return Err(Error::Shape(format!(
                "affine scale and offset need {n} entries (one per tile output), got {} and {}",
                scale.len(),
                offset.len()
            )));
        }
        if scale.iter().chain(offset).any(|v| !v.is_finite()) {
            return Err(Error::Data(
                "affine correction contains a non-finite value".into(),
            ));
        }
        self.affine_scale = scale.to_vec();
        // Canonical zero (−0.0 + 0.0 = +0.0): the per-output stage relies on
        // offsets never being −0.
        self.affine_offset = offset.iter().map(|&b| b + 0.0).collect();
        self.refresh_gain();
        Ok(())
    }

    /// The weights the current state realises, in weight units:
    /// `code · w_max / 2^b · compensation` (out_dim × in_dim, C order).
    pub fn effective_weights(&self) -> Vec<f64> {
        let full = self.params.full_code() as f64;
        let mut w = vec![0.0; self.out_dim * self.in_dim];
        for t in &self.tiles {
            for r in 0..t.rows {
                let o = t.out0 + r;
                let scale = self.w_max[o] / full * self.compensation[o];
                for c in 0..t.cols {
                    w[(t.row0 + r) * self.in_dim + t.col0 + c] =
                        self.codes[t.cell0 + r * t.cols + c] as f64 * scale;
                }
            }
        }
        w
    }

    /// `Y = X Wᵀ` through the simulated datapath. `x`: `n × in_dim`, C order,
    /// finite. `seed` drives the per-MVM noise; `row_offset` is the index of
    /// `x`'s first row within the whole batch (for bit-identical sub-batches).
    pub fn matmul(&self, x: &[f64], n: usize, seed: u64, row_offset: u64) -> Result<Vec<f64>> {
        let mut y = vec![0.0f64; n * self.out_dim];
        self.matmul_into(x, n, seed, row_offset, &mut y)?;
        Ok(y)
    }

    /// [`AnalogMatrix::matmul`] into a caller-provided `n × out_dim` buffer, for
    /// f32 or f64 inputs and outputs. Tile partial sums are always added in f64;
    /// an f32 output is the f64 result rounded once.
    pub fn matmul_into<X: Float, Y: Float>(
        &self,
        x: &[X],
        n: usize,
        seed: u64,
        row_offset: u64,
        y: &mut [Y],
    ) -> Result<()> {
        if x.len() != n * self.in_dim {
            return Err(Error::Shape(format!(
                "X has {} elements, expected n × in_dim = {n} × {}",
                x.len(),
                self.in_dim
            )));
        }
        if y.len() != n * self.out_dim {
            return Err(Error::Shape(format!(
                "output has {} elements, expected n × out_dim = {n} × {}",
                y.len(),
                self.out_dim
            )));
        }
        if let Some(pos) = x.iter().position(|v| !v.to_f64().is_finite()) {
            return Err(Error::Data(format!(
                "X contains a non-finite value ({}) at row {}, column {}",
                x[pos].to_f64(),
                pos / self.in_dim.max(1),
                pos % self.in_dim.max(1)
            )));
        }
        let yp = SendSlice(y.as_mut_ptr());
        let seeds = (
            rng::derive_seed(seed, stream::OUT_NOISE),
            rng::derive_seed(seed, stream::W_NOISE),
        );
        let block = SAMPLES_PER_TASK;
        let bytes = std::mem::size_of_val(y);
        parallel::for_each_index_populating(n.div_ceil(block), yp.0 as *mut u8, bytes, |bi| {
            let s0 = bi * block;
            let count = block.min(n - s0);
            // SAFETY: task bi owns rows [s0, s0 + count) of y.
            let out = unsafe {
                std::slice::from_raw_parts_mut(yp.at(s0 * self.out_dim), count * self.out_dim)
            };
            let xs = &x[s0 * self.in_dim..(s0 + count) * self.in_dim];
            self.forward_block(xs, count, row_offset + s0 as u64, seeds, out);
        });
        Ok(())
    }

    /// Runs [`forward_block_body`] compiled for the best instruction set (the
    /// arithmetic is integer or IEEE-exact, so the bits do not depend on it).
    fn forward_block<X: Float, Y: Float>(
        &self,
        x: &[X],
        count: usize,
        first: u64,
        seeds: (u64, u64),
        out: &mut [Y],
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if *HAS_AVX512 {
                // SAFETY: the CPU has the features.
                return unsafe { forward_block_avx512(self, x, count, first, seeds, out) };
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU has the features.
                return unsafe { forward_block_avx2(self, x, count, first, seeds, out) };
            }
        }
        forward_block_body(self, x, count, first, seeds, out)
    }

    /// PCM read noise and IR drop on one column value (aihwkit formulas,
    /// hardware-facts §3.5), in normalised units.
    #[allow(clippy::too_many_arguments)]
    fn analog_extras(
        &self,
        mut v: f64,
        gtile: &[i32],
        t: &Tile,
        r: usize,
        codes_in: &[i32],
        m: i64,
        full: i64,
        xi: f64,
    ) -> f64 {
        let p = &self.params;
        let row = &gtile[r * t.cols..(r + 1) * t.cols];
        let (mf, ff) = (m as f64, full as f64);
        if p.w_noise > 0.0 {
            let s: f64 = row
                .iter()
                .zip(codes_in)
                .map(|(&g, &c)| (g as f64 / ff).abs() * (c as f64 / mf).powi(2))
                .sum();
            v += p.w_noise * s.sqrt() * xi;
        }
        if p.ir_drop > 0.0 {
            let n = t.cols as f64;
            let a_sum: f64 = row
                .iter()
                .zip(codes_in)
                .map(|(&g, &c)| (g as f64 / ff).abs() * (c as f64 / mf).abs())
                .sum();
            let a = n / p.ir_drop_g_ratio * a_sum;
            let cfac = a * (a * (0.05 * a - 0.2) + 0.5);
            let shaped: f64 = row
                .iter()
                .zip(codes_in)
                .enumerate()
                .map(|(j, (&g, &c))| {
                    let frac = 1.0 - j as f64 / n;
                    (g as f64 / ff) * (c as f64 / mf) * (1.0 - frac * frac)
                })
                .sum();
            v -= p.ir_drop * cfac * shaped;
        }
        v
    }
}

/// The per-output stage after accumulation, fused into one pass: output
/// noise, ADC, rescaling to weight units (with drift compensation), affine
/// correction, and the addition to the output's running sum. In formulas,
/// with `acc` the exact integer column sum, `z` the output-noise normal and
/// `g = w_max·compensation·a` (one factor per tile output):
///
/// - ADC: `code = clamp(rint(acc·(unit·to_code) + z·(σ·to_code)), ±k)`,
///   `v = code · (from_code·s_in) · g + b`;
/// - no ADC: `v = (acc·unit + z·σ) · s_in · g + b`;
///
/// each product of constants rounded once in f64 (the reference in
/// `tests/crossbar_reference.py` groups them the same way).
struct PostTerms<'a> {
    noise: &'a [f32],
    gain: &'a [f64],
    offset: &'a [f64],
}

/// Per-sample constants of the per-output stage.
#[derive(Clone, Copy)]
struct PostConsts {
    /// Multiplies the column value: `unit·to_code` (ADC) or `unit`.
    acc_factor: f64,
    /// Multiplies the noise normal: `σ·to_code` (ADC) or `σ`.
    noise_factor: f64,
    /// ADC bound `k` (codes).
    k_adc: f64,
    /// `from_code·s_in` (ADC) or `s_in`.
    out_factor: f64,
}

impl PostTerms<'_> {
    /// `dst[i] (+)= v_i` (see the type docs): with `FRESH` the running sum
    /// starts at `0.0` (the first input tile written straight to the caller's
    /// output), otherwise it continues from `dst`.
    #[inline(always)]
    fn apply<const ADC: bool, const FRESH: bool, D: Float>(
        &self,
        acc: impl Iterator<Item = f64>,
        dst: &mut [D],
        c: PostConsts,
    ) {
        let terms = acc.zip(self.noise).zip(self.gain).zip(self.offset);
        for (d, (((a, &z), &g), &b)) in dst.iter_mut().zip(terms) {
            // One rounding for the noise term (fused multiply-add, correctly
            // rounded on every path); without output noise z is 0 and the
            // result is a·acc_factor exactly (which is never −0).
            let mut v = (z as f64).mul_add(c.noise_factor, a * c.acc_factor);
            if ADC {
                v = rint(v).clamp(-c.k_adc, c.k_adc);
            }
            let v = v * c.out_factor * g + b;
            // v is never −0 (b is stored canonical, so x + b = −0 needs
            // x = −0 and b = −0), hence 0.0 + v == v for the first tile.
            *d = if FRESH {
                D::from_f64(v)
            } else {
                D::from_f64(d.to_f64() + v)
            };
        }
    }

    /// [`PostTerms::apply`] with the ADC switch resolved.
    #[inline(always)]
    fn run<const FRESH: bool, D: Float>(
        &self,
        adc: bool,
        acc: impl Iterator<Item = f64>,
        dst: &mut [D],
        c: PostConsts,
    ) {
        if adc {
            self.apply::<true, FRESH, D>(acc, dst, c)
        } else {
            self.apply::<false, FRESH, D>(acc, dst, c)
        }
    }
}

static MVM_KERNEL: std::sync::LazyLock<mvm_kernels::MultiKernel> =
    std::sync::LazyLock::new(mvm_kernels::best_multi);

/// Samples per parallel task of `matmul`.
const SAMPLES_PER_TASK: usize = 32;

#[cfg(target_arch = "x86_64")]
static HAS_AVX512: std::sync::LazyLock<bool> = std::sync::LazyLock::new(|| {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vl")
});

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
unsafe fn forward_block_avx512<X: Float, Y: Float>(
    m: &AnalogMatrix,
    x: &[X],
    count: usize,
    first: u64,
    seeds: (u64, u64),
    out: &mut [Y],
) {
    forward_block_body(m, x, count, first, seeds, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_block_avx2<X: Float, Y: Float>(
    m: &AnalogMatrix,
    x: &[X],
    count: usize,
    first: u64,
    seeds: (u64, u64),
    out: &mut [Y],
) {
    forward_block_body(m, x, count, first, seeds, out)
}

/// The datapath for `count` samples (rows of `x`), written so that the inner
/// loops vectorise: input-tile outer loop (the DAC runs once per sample and
/// input tile), output tiles inner; each output receives its tile partial sums
/// in increasing input-tile order.
#[inline(always)]
fn forward_block_body<X: Float, Y: Float>(
    m: &AnalogMatrix,
    x: &[X],
    count: usize,
    first: u64,
    (seed_out, seed_w): (u64, u64),
    out: &mut [Y],
) {
    let p = &m.params;
    let mc = p.input_max_code();
    let full = p.full_code();
    let unit = 1.0 / (mc as f64 * full as f64);
    let adc = p.output_bits > 0;
    let k_adc = if adc {
        ((1i64 << (p.output_bits - 1)) - 1).max(1) as f64
    } else {
        1.0
    };
    let (to_code, from_code) = (k_adc / p.out_bound, p.out_bound / k_adc);
    let sigma_out = p.out_noise * p.out_bound;
    let extras = p.w_noise > 0.0 || p.ir_drop > 0.0;
    let fits_i32 = (p.tile_cols as i64) * mc * p.max_cell_code() < i32::MAX as i64;
    let max_rows = padded(p.tile_rows);
    let kernel = *MVM_KERNEL;
    let tc = p.tile_cols;
    let tc_even = tc.next_multiple_of(2);
    let (n_ct, in_dim, out_dim) = (m.n_col_tiles, m.in_dim, m.out_dim);
    let out_pad = out_dim.next_multiple_of(128);
    // Per block of samples: DAC codes, integer sums, and (several input
    // tiles) the running f64 output sums — in this thread's reused scratch
    // (every element read below is written first in this block).
    let mut guard = SCRATCH.with(|cell| cell.take());
    let Scratch {
        s_ins,
        codes_in,
        codes16,
        acc32,
        acc,
        noise,
        wnoise,
        o_all,
    } = &mut guard;
    s_ins.resize(count, 0.0);
    codes_in.resize(count * tc, 0);
    codes16.resize(count * tc_even, 0);
    acc32.resize(count * max_rows, 0);
    acc.resize(max_rows, 0.0);
    noise.resize(max_rows, 0.0);
    wnoise.resize(max_rows, 0.0);
    if sigma_out == 0.0 {
        noise.fill(0.0);
    }
    o_all.clear();
    if n_ct > 1 {
        o_all.resize(count * out_dim, 0.0);
    }
    for ct in 0..n_ct {
        let t0 = &m.tiles[ct];
        let (cols, xl) = (t0.cols, t0.cols.next_multiple_of(2));
        // Input DAC of every sample of the block for this input tile.
        for s in 0..count {
            let xs = &x[s * in_dim + t0.col0..s * in_dim + t0.col0 + cols];
            let s_in = match p.input_range {
                Some(r) => r,
                None => abs_max(xs),
            };
            // A scale whose reciprocal overflows counts as an all-zero input.
            let s_in = if (mc as f64 / s_in).is_finite() {
                s_in
            } else {
                0.0
            };
            s_ins[s] = s_in;
            let ci = &mut codes_in[s * tc..s * tc + cols];
            if s_in > 0.0 {
                let r = mc as f64 / s_in;
                let lim = mc as f64;
                for (c, &v) in ci.iter_mut().zip(xs) {
                    let q = rint(v.to_f64() * r).clamp(-lim, lim);
                    // SAFETY: q is an integer in [−lim, lim] ⊂ i32 (inputs are
                    // checked finite), so the unchecked conversion is exact;
                    // unlike `as`, it vectorises.
                    *c = unsafe { q.to_int_unchecked::<i32>() };
                }
            } else {
                ci.fill(0);
            }
            if fits_i32 {
                // Input codes fit i16 (|code| ≤ 2^15 − 1); an odd tile gets a zero pad.
                let c16 = &mut codes16[s * xl..(s + 1) * xl];
                c16[cols..].fill(0);
                for (d, &c) in c16.iter_mut().zip(ci.iter()) {
                    *d = c as i16;
                }
            }
        }
        for t in m.tiles.iter().skip(ct).step_by(n_ct) {
            let rows = t.rows;
            let rp = padded(rows);
            if fits_i32 {
                let len = rp * xl;
                // SAFETY: `kernel` comes from a CPU feature check.
                unsafe {
                    kernel(
                        &m.codes_cm[t.cm0..t.cm0 + len],
                        rp,
                        &codes16[..count * xl],
                        xl,
                        count,
                        acc32,
                        max_rows,
                    )
                };
            }
            for s in 0..count {
                let sample = first + s as u64;
                let ci = &codes_in[s * tc..s * tc + cols];
                let sums = &acc32[s * max_rows..s * max_rows + rows];
                if fits_i32 {
                    if extras {
                        for (a, &v) in acc[..rows].iter_mut().zip(sums) {
                            *a = v as f64 * unit;
                        }
                    }
                } else {
                    let g = &m.codes[t.cell0..t.cell0 + rows * t.cols];
                    for (r, a) in acc[..rows].iter_mut().enumerate() {
                        let row = &g[r * t.cols..(r + 1) * t.cols];
                        let sum: i64 = row
                            .iter()
                            .zip(ci.iter())
                            .map(|(&g, &c)| g as i64 * c as i64)
                            .sum();
                        // Exact: |sum| < 2^53 for every valid configuration.
                        *a = if extras {
                            sum as f64 * unit
                        } else {
                            sum as f64
                        };
                    }
                }
                // Rows of a (sample, input tile) pair own a range of the noise
                // streams, padded to 128 so that 256-row tiles stay batch-aligned.
                let noise_index =
                    (sample * n_ct as u64 + ct as u64) * out_pad as u64 + t.row0 as u64;
                if extras {
                    if p.w_noise > 0.0 {
                        rng::fill_normals16(seed_w, 0, noise_index, &mut wnoise[..rows]);
                    }
                    let g = &m.codes[t.cell0..t.cell0 + rows * t.cols];
                    for (r, a) in acc[..rows].iter_mut().enumerate() {
                        *a = m.analog_extras(*a, g, t, r, ci, mc, full, wnoise[r] as f64);
                    }
                }
                if sigma_out > 0.0 {
                    rng::fill_normals16(seed_out, 0, noise_index, &mut noise[..rows]);
                }
                let o = t.out0;
                let post = PostTerms {
                    noise: &noise[..rows],
                    gain: &m.gain[o..o + rows],
                    offset: &m.affine_offset[o..o + rows],
                };
                let from_ints = fits_i32 && !extras;
                // Raw integer sums (i32 kernel or the i64 fallback) are scaled
                // by `unit` inside the pass; with read noise or IR drop the
                // float path holds acc·unit plus those terms.
                let (acc_unit, scale_to_code) = if adc {
                    (unit * to_code, to_code)
                } else {
                    (unit, 1.0)
                };
                let c = PostConsts {
                    acc_factor: if extras { scale_to_code } else { acc_unit },
                    noise_factor: sigma_out * scale_to_code,
                    k_adc,
                    out_factor: if adc { from_code * s_ins[s] } else { s_ins[s] },
                };
                let ints = sums.iter().map(|&v| v as f64);
                let floats = acc[..rows].iter().copied();
                let lo = s * out_dim + t.row0;
                if n_ct == 1 {
                    // One input tile: straight into the caller's output.
                    let dst = &mut out[lo..lo + rows];
                    if from_ints {
                        post.run::<true, Y>(adc, ints, dst, c);
                    } else {
                        post.run::<true, Y>(adc, floats, dst, c);
                    }
                } else {
                    let dst = &mut o_all[lo..lo + rows];
                    if from_ints {
                        post.run::<false, f64>(adc, ints, dst, c);
                    } else {
                        post.run::<false, f64>(adc, floats, dst, c);
                    }
                }
            }
        }
    }
    if n_ct > 1 {
        for (d, &v) in out.iter_mut().zip(o_all.iter()) {
            *d = Y::from_f64(v);
        }
    }
    SCRATCH.with(|cell| cell.replace(guard));
}

/// Buffers of [`forward_block_body`], kept per thread between blocks (a
/// block allocating and zeroing them cost 3 % of an MVM).
#[derive(Default)]
struct Scratch {
    s_ins: Vec<f64>,
    codes_in: Vec<i32>,
    codes16: Vec<i16>,
    acc32: Vec<i32>,
    acc: Vec<f64>,
    noise: Vec<f32>,
    wnoise: Vec<f32>,
    o_all: Vec<f64>,
}

thread_local! {
    static SCRATCH: std::cell::Cell<Scratch> = std::cell::Cell::new(Scratch::default());
}

#[derive(Clone, Copy)]
struct SendSlice<T>(*mut T);
// SAFETY: tasks write disjoint indices.
unsafe impl<T> Send for SendSlice<T> {}
unsafe impl<T> Sync for SendSlice<T> {}

impl<T> SendSlice<T> {
    /// Pointer to element `i` (a method, so closures capture the wrapper).
    ///
    /// # Safety
    /// `i` is inside the buffer.
    unsafe fn at(self, i: usize) -> *mut T {
        self.0.add(i)
    }
}

mod mvm_kernels;

#[cfg(test)]
mod tests;
