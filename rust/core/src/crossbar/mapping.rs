//! Stage 1, mapping: tile geometry ([`Tile`]), the cut of W into tiles with
//! its `w_max` and target device codes ([`map_weights`]), device codes to
//! cell codes, and the re-layout of cell codes for the accumulation kernel.

use super::params::{CrossbarParams, WeightScaling};
use super::{rint, AnalogMatrix};

/// Geometry of one tile.
#[derive(Clone, Debug)]
pub(super) struct Tile {
    /// First output (row of W) and first input (column of W).
    pub(super) row0: usize,
    pub(super) col0: usize,
    pub(super) rows: usize,
    pub(super) cols: usize,
    /// Offset of the tile's first cell in the cell arrays.
    pub(super) cell0: usize,
    /// Offset of the tile's rows in the per-(tile, output) arrays.
    pub(super) out0: usize,
    /// Offset of the tile in the column-major code array.
    pub(super) cm0: usize,
}

/// Rows of a tile rounded up to the kernel's vector width.
pub(super) fn padded(rows: usize) -> usize {
    rows.div_ceil(16) * 16
}

/// W mapped onto tiles: geometry, scales and device targets.
pub(super) struct Mapping {
    pub(super) tiles: Vec<Tile>,
    /// Number of input tiles (tiles are ordered row-tile-major).
    pub(super) n_col_tiles: usize,
    /// `w_max` per (tile, output row).
    pub(super) w_max: Vec<f64>,
    /// Target device codes, `cells × 2 × devices` (polarity-major per cell).
    pub(super) target: Vec<u16>,
    /// Number of cells (length of the cell-code array).
    pub(super) cells: usize,
    /// Length of the kernel-layout code array.
    pub(super) cm_len: usize,
}

/// Cuts `w` (`out_dim × in_dim`, C order, finite) into tiles, takes `w_max`
/// and the target code of every device.
pub(super) fn map_weights(w: &[f64], out_dim: usize, in_dim: usize, p: &CrossbarParams) -> Mapping {
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
            w_max[t.out0 + r] = wm;
            let q = if wm > 0.0 { full / wm } else { 0.0 };
            for (c, &wv) in row.iter().enumerate() {
                // A scale so small that 2^b / w_max overflows (|W| ≲ 1e-304):
                // the ratio |w / w_max| ≤ 1 first, then the code range.
                let code = if q.is_finite() {
                    rint(wv * q)
                } else {
                    rint(wv / wm * full)
                } as i64;
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
    Mapping {
        tiles,
        n_col_tiles,
        w_max,
        target,
        cells,
        cm_len: cm0,
    }
}

impl AnalogMatrix {
    /// Cell codes `g⁺ − g⁻` from device codes.
    pub(super) fn cell_codes(&self, dev: &[u16]) -> Vec<i32> {
        let d = self.params.devices_per_polarity;
        dev.chunks_exact(2 * d)
            .map(|cell| {
                let pos: i32 = cell[..d].iter().map(|&v| i32::from(v)).sum();
                let neg: i32 = cell[d..].iter().map(|&v| i32::from(v)).sum();
                pos - neg
            })
            .collect()
    }

    /// Copies the current cell codes into `codes_cm`, the kernel layout, and
    /// their coarse versions into `abs_cm` / `signed_cm` when the per-MVM noise
    /// terms need them.
    pub(super) fn layout_codes_cm(&mut self) {
        let plan = self.plan;
        let (with_abs, with_signed) = (!self.abs_cm.is_empty(), !self.signed_cm.is_empty());
        for t in &self.tiles {
            let rp = padded(t.rows);
            for r in 0..t.rows {
                for c in 0..t.cols {
                    let at = t.cm0 + (c / 2) * 2 * rp + 2 * r + (c % 2);
                    let g = self.codes[t.cell0 + r * t.cols + c];
                    // |code| ≤ 1.5 · 2^14 = 24576 (see device_code_ceiling): fits i16.
                    self.codes_cm[at] = g as i16;
                    if with_abs {
                        self.abs_cm[at] = plan.coarse_abs(g);
                    }
                    if with_signed {
                        self.signed_cm[at] = plan.coarse_signed(g);
                    }
                }
            }
        }
    }
}
