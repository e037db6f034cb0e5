//! Bit-accurate tiled crossbar matrix–vector engine with HERMES/PCM
//! non-idealities.
//!
//! Datapath of one MVM `y = W x` (W: `out × in`), after the IBM HERMES chip
//! (Le Gallo et al., "A 64-core mixed-signal in-memory compute chip based on
//! phase-change memory for deep neural network inference", Nat. Electron. 6,
//! 680–693, 2023) and IBM aihwkit's inference model (`inference/noise/*.py`,
//! `simulator/parameters/io.py`, `inference/compensation/drift.py`):
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
//!    kernel passes, wider sums split into digit vectors: `sums.rs`): the sum
//!    cannot depend on order, SIMD width or threads.
//! 6. **Per-MVM noise** on the column value `v = acc / (M · 2^b)` (units of
//!    normalised weight × normalised input): Gaussian output noise with
//!    `σ = out_noise` (normalised output units, as aihwkit), PCM read noise
//!    `w_noise · sqrt(Σ|ŵ| x̂²)` (aihwkit `PCM_READ`; `Σ|ĝ|·c²` an exact integer
//!    sum on a coarse |g| grid), IR drop (aihwkit's model, from the exact sums
//!    `Σ|ĝ||c|` and `Σĝ·c·j(2n−j)`). The two Gaussian terms are drawn as one
//!    normal of the summed variance (the same joint law).
//! 7. **ADC** with `output_bits` (0: none): `clamp(rint(v · K/out_bound), −K, K)
//!    · out_bound/K`, `K = 2^(output_bits−1) − 1` (round half to even, saturate
//!    at both ends); rescale to weight units, `· s · (w_max · γ)` with γ the
//!    drift-compensation factor; per-column affine correction `a·v + b`; tile
//!    partial sums added in increasing input-tile order in f64.
//! 8. **Drift compensation** (aihwkit `GlobalDriftCompensation`; Joshi et al.,
//!    Nat. Commun. 11, 2473, 2020, Methods E): a readout right after programming over the same readout at
//!    `t_inference`, per tile (global) or per output column of a tile. The
//!    readout is aihwkit's `mean|y|` over one-hot inputs, `Σ|g⁺ − g⁻|`, taken
//!    through an ideal periphery as an exact integer.
//!
//! Randomness: every draw is Philox keyed by `(seed, stream, index)`
//! ([`crate::rng`]): the device index for programming, drift and 1/f noise;
//! for the per-MVM noise the stream is the *read row* and the index `(input
//! tile, output)`. Reads are physical: each row a matrix reads takes the next
//! row of its read stream (a cursor, [`AnalogMatrix::read_into`]), so two
//! reads never share a noise realisation, and one call or any split of the
//! rows into calls gives the same bits; [`AnalogMatrix::matmul_into`] pins a
//! read to explicit `(seed, row_offset)` keys. Same seeds and the same
//! sequence of reads ⇒ the same bits for any thread count.
//!
//! Code layout, one file per stage:
//! - `params.rs`: [`CrossbarParams`] (validation, code ranges) and the mode
//!   enums [`WeightScaling`], [`Programming`], [`DriftCompensation`];
//! - `mapping.rs`: stage 1, tiles, `w_max`, target codes, cell codes and the
//!   kernel layout of the codes;
//! - `devices.rs`: stages 2, 3 and 8, programming, drift and read noise,
//!   re-quantisation, drift-compensation readout and factors;
//! - `datapath.rs`: stages 4 to 7, one MVM (DAC, accumulation, per-MVM noise,
//!   ADC, rescaling, affine correction) and its parallel loop;
//! - `sums.rs`: the plan of every integer sum of a read (digit widths, the
//!   coarse grid of the noise terms);
//! - `mvm_kernels.rs`: the SIMD integer accumulation kernels;
//! - `mod.rs` (this file): [`AnalogMatrix`] and its public API.
//!
//! [`NoiseModel`]: crate::noise_models::NoiseModel

use std::sync::atomic::{AtomicU64, Ordering};

use crate::check;
use crate::error::{Error, Result};
use crate::hadamard::Float;
use crate::rng;

mod datapath;
mod devices;
mod mapping;
mod mvm_kernels;
mod params;
mod sums;

pub use datapath::ReadTerms;
pub use params::{CrossbarParams, DriftCompensation, Programming, WeightScaling};

use mapping::Tile;

/// Streams of the counter-based generator, one per purpose.
mod stream {
    pub const PROGRAM: u64 = 1;
    pub const NU: u64 = 2;
    pub const READ: u64 = 3;
    /// The per-MVM noise (output noise and PCM read noise, one normal per
    /// read row, input tile and output). 4 and 5 keyed the two separate
    /// draws of earlier versions.
    pub const MVM_NOISE: u64 = 6;
    /// The fixed offset and gain mismatch of each ADC.
    pub const ADC_MISMATCH: u64 = 7;
}

/// A weight matrix programmed onto simulated crossbar tiles.
#[derive(Clone, Debug)]
pub struct AnalogMatrix {
    params: CrossbarParams,
    /// The programming seed; also keys the matrix's own read stream.
    seed: u64,
    /// Rows read so far from the read stream.
    cursor: ReadCursor,
    /// The integer sums of one read (digit widths, coarse grid).
    plan: sums::SumPlan,
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
    /// Coarse `(|g| + h) >> k` and `(g + h) >> k` codes of the per-MVM noise
    /// terms in the same layout (empty when those terms are off; see `sums`).
    abs_cm: Vec<i16>,
    signed_cm: Vec<i16>,
    t_inference: f64,
    /// Drift-compensation factor per (tile, output row).
    compensation: Vec<f64>,
    /// `(w_max · compensation) · affine_scale` per (tile, output row): the
    /// factor from normalised units back to weight units, affine scale
    /// included (kept current by `drift_to` and `set_affine`).
    gain: Vec<f64>,
    /// An upper bound of the outputs per unit of input scale (kept current
    /// with `gain`).
    read_bound: datapath::ReadBound,
    /// Drift-compensation readout per (tile, output row) right after programming.
    reference_sums: Vec<i64>,
    /// Per-(tile, output row) affine correction.
    affine_scale: Vec<f64>,
    affine_offset: Vec<f64>,
    /// Residual ADC gain and offset per (tile, output row), fixed at
    /// programming; the offset in the domain the ADC rounds in (codes, or
    /// normalised units without ADC). All 1 and 0 when those stages are off.
    adc_gain: Vec<f64>,
    adc_offset: Vec<f64>,
}

/// The read cursor: rows read so far from a matrix's read stream. Reads on
/// several threads each reserve their rows with one atomic add, so concurrent
/// reads never share noise (which thread gets which rows is then up to the
/// scheduler; a single thread's sequence of reads is reproducible).
#[derive(Debug, Default)]
struct ReadCursor(AtomicU64);

impl Clone for ReadCursor {
    fn clone(&self) -> Self {
        ReadCursor(AtomicU64::new(self.0.load(Ordering::SeqCst)))
    }
}

/// The error of a read whose `n` rows from stream row `first` on would pass
/// the last row of the stream (`field`: the argument that gave `first`).
fn past_stream_end(field: &'static str, first: u64, n: usize) -> Error {
    Error::value(
        field,
        format!("{first} + {n} rows would pass the last stream row 2^64 - 1"),
    )
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
        if params.input_range_quantile.is_some() {
            return Err(Error::value(
                "input_range_quantile",
                "must be resolved into input_range from data before programming \
                 (a feature map's fit does it; CrossbarConfig.with_input_range_from(X))",
            ));
        }
        if w.len() != out_dim * in_dim {
            return Err(Error::Shape(format!(
                "W has {} elements, expected out_dim × in_dim = {out_dim} × {in_dim}",
                w.len()
            )));
        }
        check::finite_matrix("W", w.iter().copied(), in_dim)?;
        let p = params.clone();
        let mapping::Mapping {
            tiles,
            n_col_tiles,
            w_max,
            target,
            cells,
            cm_len,
        } = mapping::map_weights(w, out_dim, in_dim, &p);
        let out0 = w_max.len();
        let plan = sums::SumPlan::new(&p);
        let aux_len = |used: bool| if used { cm_len } else { 0 };
        let mut m = AnalogMatrix {
            abs_cm: vec![0; aux_len(plan.abs_vectors() > 0)],
            signed_cm: vec![0; aux_len(plan.signed_vectors() > 0)],
            plan,
            seed,
            cursor: ReadCursor::default(),
            read_bound: datapath::ReadBound::default(),
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
            codes_cm: vec![0; cm_len],
            t_inference: f64::NAN,
            compensation: vec![1.0; out0],
            gain: vec![0.0; out0],
            reference_sums: vec![0; out0],
            affine_scale: vec![1.0; out0],
            affine_offset: vec![0.0; out0],
            adc_gain: vec![1.0; out0],
            adc_offset: vec![0.0; out0],
        };
        m.draw_adc_mismatch(seed);
        m.program_devices(seed)?;
        m.reference_sums = m.readout_sums(&m.cell_codes(&m.device_codes_programmed()));
        m.drift_to(0.0, seed)?;
        Ok(m)
    }

    /// Draws the residual gain and offset of every ADC (one per tile output):
    /// `gain = 1 + adc_gain_std·ξ`, `offset = adc_offset + adc_offset_std·ξ'`
    /// (normalised units, stored in ADC codes). They are a property of the
    /// chip, fixed for every read, so they are keyed by the programming seed.
    fn draw_adc_mismatch(&mut self, seed: u64) {
        let p = &self.params;
        let key = rng::derive_seed(seed, stream::ADC_MISMATCH);
        let to_code = p.to_code();
        for (i, (g, b)) in self
            .adc_gain
            .iter_mut()
            .zip(&mut self.adc_offset)
            .enumerate()
        {
            let i = i as u64;
            if p.adc_gain_std > 0.0 {
                *g = 1.0 + p.adc_gain_std * rng::normal(key, 0, 2 * i);
            }
            let spread = if p.adc_offset_std > 0.0 {
                p.adc_offset_std * rng::normal(key, 0, 2 * i + 1)
            } else {
                0.0
            };
            // `+ 0.0`: never −0, so that an offset of zero leaves every bit.
            *b = (p.adc_offset + spread) * to_code + 0.0;
        }
    }

    /// The residual gain and offset of every ADC, per (tile, output row) in
    /// tile order; the offset in ADC codes (normalised units without ADC).
    pub fn adc_mismatch(&self) -> (&[f64], &[f64]) {
        (&self.adc_gain, &self.adc_offset)
    }

    /// Moves the devices to `t_inference` seconds after programming: drift
    /// and accumulated 1/f read noise (drawn with `seed`), re-quantised; then
    /// updates the drift-compensation factors.
    pub fn drift_to(&mut self, t_inference: f64, seed: u64) -> Result<()> {
        check::time("t_inference", t_inference)?;
        let dev = self.drifted_device_codes(t_inference, seed);
        self.codes = self.cell_codes(&dev);
        self.layout_codes_cm();
        self.update_compensation();
        self.refresh_gain();
        self.t_inference = t_inference;
        Ok(())
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
        if check::first_non_finite(scale.iter().chain(offset).copied()).is_some() {
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
    /// `code · w_max / 2^b · compensation` (`out_dim` × `in_dim`, C order).
    pub fn effective_weights(&self) -> Vec<f64> {
        let full = self.params.full_code() as f64;
        let mut w = vec![0.0; self.out_dim * self.in_dim];
        for t in &self.tiles {
            for r in 0..t.rows {
                let o = t.out0 + r;
                let scale = self.w_max[o] / full * self.compensation[o];
                for c in 0..t.cols {
                    w[(t.row0 + r) * self.in_dim + t.col0 + c] =
                        f64::from(self.codes[t.cell0 + r * t.cols + c]) * scale;
                }
            }
        }
        w
    }

    /// The programming seed (it also keys the read stream).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Rows read so far from the matrix's read stream: the next
    /// [`AnalogMatrix::read_into`] reads from this row on.
    pub fn read_position(&self) -> u64 {
        self.cursor.0.load(Ordering::SeqCst)
    }

    /// Moves the read cursor (to replay reads from `position`, or to skip).
    pub fn set_read_position(&self, position: u64) {
        self.cursor.0.store(position, Ordering::SeqCst);
    }

    /// A fresh read `Y = X Wᵀ`: the rows of `x` take the next `n` rows of the
    /// matrix's read stream (the pinned read with `seed = self.seed()` and
    /// `row_offset = read_position()`), and the cursor advances by `n`, so a
    /// chip read twice, or read in any split of the rows, never repeats a noise
    /// realisation and gives the same bits as one call. Returns the stream row
    /// of `x`'s first row. The cursor does not move if `x` is rejected.
    pub fn read_into<X: Float, Y: Float>(&self, x: &[X], n: usize, y: &mut [Y]) -> Result<u64> {
        self.check_read(x, n, y)?;
        let first = self
            .cursor
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| {
                p.checked_add(n as u64)
            })
            .map_err(|p| past_stream_end("read_position", p, n))?;
        self.forward_into(x, n, self.seed, first, y)?;
        Ok(first)
    }

    /// [`AnalogMatrix::read_into`] into a new `n × out_dim` f64 array.
    pub fn read(&self, x: &[f64], n: usize) -> Result<Vec<f64>> {
        let mut y = vec![0.0f64; n * self.out_dim];
        self.read_into(x, n, &mut y)?;
        Ok(y)
    }

    /// A pinned read `Y = X Wᵀ` through the simulated datapath: the per-MVM
    /// noise of row `i` of `x` (`n × in_dim`, C order, finite) is row
    /// `row_offset + i` of the streams of `seed` — the same arguments repeat
    /// the same noise, and sub-batches with the right offsets give the bits of
    /// one call. The read cursor does not move.
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
        self.check_read(x, n, y)?;
        if row_offset.checked_add(n as u64).is_none() {
            return Err(past_stream_end("row_offset", row_offset, n));
        }
        self.forward_into(x, n, seed, row_offset, y)
    }

    /// The per-MVM noise terms of the pinned read `matmul(x, n, seed,
    /// row_offset)` before the normals are applied, per (sample, input tile,
    /// output): a test hook for an independent reference of the read model.
    pub fn read_terms(&self, x: &[f64], n: usize, seed: u64, row_offset: u64) -> Result<ReadTerms> {
        self.check_read(x, n, &vec![0.0f64; n * self.out_dim])?;
        if row_offset.checked_add(n as u64).is_none() {
            return Err(past_stream_end("row_offset", row_offset, n));
        }
        Ok(self.record_read_terms(x, n, seed, row_offset))
    }

    /// Shapes and finiteness of a read's arguments.
    fn check_read<X: Float, Y: Float>(&self, x: &[X], n: usize, y: &[Y]) -> Result<()> {
        if Some(x.len()) != n.checked_mul(self.in_dim) {
            return Err(Error::Shape(format!(
                "X has {} elements, expected n × in_dim = {n} × {}",
                x.len(),
                self.in_dim
            )));
        }
        if Some(y.len()) != n.checked_mul(self.out_dim) {
            return Err(Error::Shape(format!(
                "output has {} elements, expected n × out_dim = {n} × {}",
                y.len(),
                self.out_dim
            )));
        }
        check::finite_matrix("X", x.iter().map(|v| v.to_f64()), self.in_dim)
    }
}

#[cfg(test)]
mod tests;
