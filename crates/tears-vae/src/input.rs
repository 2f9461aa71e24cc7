//! The encoder's first layer on the clicks' non-zeros.
//!
//! A click row is about 2.5 % dense on `ml1m-gpt4`, yet the first layer of Mult-DAE, Mult-VAE
//! and RecVAE (`items → hidden`) is a dense product over every item, forward and again for its
//! weight gradient: about 40 % of a Mult-VAE step's matrix products. On CPU backends the
//! trainers compute it on the host from the batch's sparse rows instead:
//!
//! - forward, `X̃ W` as a sum of the weight rows of the clicked items ([`SparseRows::product`]);
//! - backward, `X̃ᵀ G` as a scatter of the output gradient into those rows
//!   ([`SparseRows::transposed_product`]), registered as the weight's gradient.
//!
//! `X̃` is the row-normalised, dropped-out input the dense path builds: the same normalisation
//! and the same dropout draw ([`crate::NoiseSource::dropout_mask_at`]), so the two paths differ
//! only in the order of the first layer's sums (rounding; tested). Each output row is summed in
//! the row's column order and each weight-gradient row in the batch's row order, whatever the
//! number of threads, so a run is as reproducible as before.
//!
//! The path is taken on the CPU backends (flex, ndarray), where the round trip through host
//! memory is a copy; on a GPU backend the dense product stays. `TEARS_DENSE_INPUT=1` turns it
//! off (for comparisons).

use burn::module::Param;
use burn::nn::Linear;
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;
use tears_data::Interactions;

use crate::backbone::{Mode, Phase};

/// A backbone's first layer, `items → hidden`, with the input dropout applied before it.
#[derive(Debug, Clone, Copy)]
pub struct InputLayer<'a, B: Backend> {
    /// The layer (its weight is `[items, hidden]`).
    pub linear: &'a Linear<B>,
    /// The inverted-dropout probability on the normalised input while training.
    pub dropout: f32,
}

/// Whether the trainers compute the first layer from sparse rows on backend `B`: CPU backends
/// (flex, ndarray, and autodiff over them), unless the environment sets `TEARS_DENSE_INPUT=1`.
pub fn sparse_input_enabled<B: Backend>(device: &B::Device) -> bool {
    if std::env::var("TEARS_DENSE_INPUT").is_ok_and(|v| v == "1") {
        return false;
    }
    crate::ops::host_memory::<B>(device)
}

/// A batch of encoder input rows in compressed sparse row form: the non-zero entries of the
/// normalised, dropped-out clicks.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseRows {
    indptr: Vec<usize>,
    cols: Vec<u32>,
    vals: Vec<f32>,
    n_cols: usize,
}

impl SparseRows {
    /// Rows `rows` of `x` as the encoder sees them under `mode`: each divided by its L2 norm
    /// (as [`crate::ops::l2_normalize_rows`] does, to the bit) and, when `mode` trains outside
    /// the decoder phase and `dropout > 0`, multiplied by the dropout draw the dense path would
    /// make (one draw of the noise source). Entries dropped to zero are left out.
    pub fn encoder_input(x: &Interactions, rows: &[usize], dropout: f32, mode: Mode<'_>) -> Self {
        let csr = x.csr();
        let n_cols = csr.cols();
        let views: Vec<(&[usize], &[f32])> = rows
            .iter()
            .map(|&r| match csr.outer_view(r) {
                Some(v) => v.into_raw_storage(),
                None => (&[][..], &[][..]),
            })
            .collect();
        let masks = match mode {
            Mode::Train { noise, phase } if dropout > 0.0 && phase != Phase::Decoder => {
                let cols: Vec<&[usize]> = views.iter().map(|(c, _)| *c).collect();
                Some(noise.dropout_mask_at(n_cols, dropout, &cols))
            }
            _ => None,
        };
        let mut indptr = Vec::with_capacity(rows.len() + 1);
        let nnz: usize = views.iter().map(|(c, _)| c.len()).sum();
        let (mut cols, mut vals) = (Vec::with_capacity(nnz), Vec::with_capacity(nnz));
        indptr.push(0);
        for (r, (idx, data)) in views.iter().enumerate() {
            let sq: f32 = data.iter().map(|v| v * v).sum();
            let norm = sq.max(1e-20).sqrt() + 1e-10;
            for (k, (&c, &v)) in idx.iter().zip(data.iter()).enumerate() {
                let m = masks.as_ref().and_then(|m| m[r].get(k).copied()).unwrap_or(1.0);
                let value = v / norm * m;
                if value != 0.0 {
                    cols.push(c as u32);
                    vals.push(value);
                }
            }
            indptr.push(cols.len());
        }
        SparseRows { indptr, cols, vals, n_cols }
    }

    /// The number of rows.
    pub fn n_rows(&self) -> usize {
        self.indptr.len() - 1
    }

    /// The number of columns (items).
    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    /// The number of stored entries.
    pub fn nnz(&self) -> usize {
        self.vals.len()
    }

    /// The dense `[rows, n_cols]` matrix (for tests and small inputs).
    pub fn to_dense(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.n_rows() * self.n_cols];
        for r in 0..self.n_rows() {
            for k in self.indptr[r]..self.indptr[r + 1] {
                out[r * self.n_cols + self.cols[k] as usize] = self.vals[k];
            }
        }
        out
    }

    /// `X̃ W` for a row-major `w` of shape `[n_cols, d]`: `[rows, d]`, row-major.
    ///
    /// # Panics
    /// When `w` holds fewer than `n_cols · d` values.
    pub fn product(&self, w: &[f32], d: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; self.n_rows() * d];
        if d == 0 {
            return out;
        }
        out.par_chunks_mut(d).enumerate().for_each(|(r, acc)| {
            for k in self.indptr[r]..self.indptr[r + 1] {
                let c = self.cols[k] as usize;
                axpy(acc, self.vals[k], &w[c * d..(c + 1) * d]);
            }
        });
        out
    }

    /// `X̃ᵀ G` for a row-major `g` of shape `[rows, d]`: `[n_cols, d]`, row-major. Each output
    /// row sums its entries in batch-row order.
    ///
    /// # Panics
    /// When `g` holds fewer than `rows · d` values.
    pub fn transposed_product(&self, g: &[f32], d: usize) -> Vec<f32> {
        // Counting sort of the entries by column, stable in row order.
        let mut start = vec![0usize; self.n_cols + 1];
        for &c in &self.cols {
            start[c as usize + 1] += 1;
        }
        for c in 0..self.n_cols {
            start[c + 1] += start[c];
        }
        let mut fill = start.clone();
        let mut by_col = vec![(0u32, 0.0f32); self.nnz()];
        for r in 0..self.n_rows() {
            for k in self.indptr[r]..self.indptr[r + 1] {
                let c = self.cols[k] as usize;
                by_col[fill[c]] = (r as u32, self.vals[k]);
                fill[c] += 1;
            }
        }
        let mut out = vec![0.0f32; self.n_cols * d];
        if d == 0 {
            return out;
        }
        out.par_chunks_mut(d).enumerate().for_each(|(c, acc)| {
            for &(r, v) in &by_col[start[c]..start[c + 1]] {
                let r = r as usize;
                axpy(acc, v, &g[r * d..(r + 1) * d]);
            }
        });
        out
    }
}

/// `acc += a · x`.
fn axpy(acc: &mut [f32], a: f32, x: &[f32]) {
    for (y, &x) in acc.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// A host copy of a first layer's weight, `[items, hidden]` row-major: read once when the layer
/// is frozen (the TEARS fusion model), once per step when it trains.
#[derive(Debug, Clone)]
pub struct HostWeight {
    values: Vec<f32>,
    d_out: usize,
}

impl HostWeight {
    /// Reads the weight of `linear`.
    pub fn read<B: Backend>(linear: &Linear<B>) -> Self {
        let w = linear.weight.val();
        let [_, d_out] = w.dims();
        let values = w.into_data().convert::<f32>().into_vec::<f32>().unwrap_or_default();
        HostWeight { values, d_out }
    }

    /// The layer's output `X̃ W + b` as a tensor on `device` (the bias joins the graph, so its
    /// gradient flows as in the dense layer; `X̃ W` is a leaf).
    pub fn forward<B: Backend>(&self, rows: &SparseRows, linear: &Linear<B>, device: &B::Device) -> Tensor<B, 2> {
        let pre = self.leaf::<B>(rows, device);
        add_bias(pre, linear)
    }

    /// `X̃ W` as a tensor on `device`, no bias.
    pub fn leaf<B: Backend>(&self, rows: &SparseRows, device: &B::Device) -> Tensor<B, 2> {
        let product = rows.product(&self.values, self.d_out);
        Tensor::from_data(TensorData::new(product, [rows.n_rows(), self.d_out]), device)
    }
}

fn add_bias<B: Backend>(pre: Tensor<B, 2>, linear: &Linear<B>) -> Tensor<B, 2> {
    match &linear.bias {
        Some(b) => pre.add(b.val().unsqueeze_dim(0)),
        None => pre,
    }
}

/// The first layer of a training step, computed from sparse rows with its weight's gradient
/// taken by hand: [`SparseStep::output`] feeds the rest of the encoder; after the backward pass,
/// [`SparseStep::add_weight_grad`] adds `X̃ᵀ ∂L/∂(X̃W)` to the step's gradients.
#[derive(Debug)]
pub struct SparseStep<B: AutodiffBackend> {
    rows: SparseRows,
    leaf: Tensor<B, 2>,
    weight: Param<Tensor<B, 2>>,
    d_out: usize,
}

impl<B: AutodiffBackend> SparseStep<B> {
    /// Computes `X̃ W` for `rows` from `host`, the current weight of `layer` (a leaf that
    /// tracks its gradient when `trains`).
    pub fn new(layer: &Linear<B>, host: &HostWeight, rows: SparseRows, trains: bool, device: &B::Device) -> Self {
        let leaf = host.leaf::<B>(&rows, device);
        let leaf = if trains { leaf.require_grad() } else { leaf };
        SparseStep { rows, leaf, weight: layer.weight.clone(), d_out: host.d_out }
    }

    /// The layer's output `X̃ W + b` (the bias from `layer`).
    pub fn output(&self, layer: &Linear<B>) -> Tensor<B, 2> {
        add_bias(self.leaf.clone(), layer)
    }

    /// Adds the weight's gradient `X̃ᵀ ∂L/∂(X̃W)` to `params` (to what is there already: a
    /// weight penalty's gradient, for Mult-DAE). Nothing when the leaf did not track it.
    pub fn add_weight_grad(&self, grads: &B::Gradients, params: &mut GradientsParams) {
        let Some(g) = self.leaf.grad(grads) else { return };
        let [rows, d] = g.dims();
        let g = g.into_data().convert::<f32>().into_vec::<f32>().unwrap_or_default();
        if g.len() != rows * d || d != self.d_out {
            return;
        }
        let dw = self.rows.transposed_product(&g, d);
        let device = self.weight.val().device();
        let dw = Tensor::<B::InnerBackend, 2>::from_data(TensorData::new(dw, [self.rows.n_cols(), d]), &device);
        let id = self.weight.id;
        let total = match params.remove::<B::InnerBackend, 2>(id) {
            Some(existing) => existing.add(dw),
            None => dw,
        };
        params.register(id, total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::NoiseSource;
    use approx::assert_relative_eq;
    use tears_data::{Rating, UserRows, Values};

    fn clicks() -> Interactions {
        let mut rows = UserRows::new();
        for u in 0..7u64 {
            let items: Vec<Rating> = (0..40u32)
                .filter(|i| (i * 7 + u as u32 * 3).is_multiple_of(5) || *i == u as u32)
                .map(|i| Rating { item: i, rating: 5.0, timestamp: i64::from(i) })
                .collect();
            rows.push(u, items);
        }
        Interactions::from_rows(&rows, 40, Values::Binary { positive_above: 3.5 }).expect("rows")
    }

    #[test]
    fn the_sparse_input_is_the_dense_one_to_the_bit() {
        use burn::backend::Flex;
        let x = clicks();
        let rows = [3usize, 0, 6, 2];
        let device = Default::default();
        for p in [0.0f32, 0.5, 0.2] {
            let dense_noise = NoiseSource::new(11, 4);
            dense_noise.set_row_offset(9);
            let sparse_noise = NoiseSource::new(11, 4);
            sparse_noise.set_row_offset(9);
            let dense = Mode::train(&dense_noise)
                .dropout(crate::ops::l2_normalize_rows(x.to_tensor::<Flex>(&rows, &device)), p)
                .into_data()
                .to_vec::<f32>()
                .expect("f32");
            let sparse = SparseRows::encoder_input(&x, &rows, p, Mode::train(&sparse_noise));
            assert_eq!(sparse.to_dense(), dense, "p = {p}");
            assert_eq!(dense_noise.draws(), sparse_noise.draws());
        }
        // No dropout at evaluation or in the decoder phase, and no draw either.
        let noise = NoiseSource::new(1, 0);
        let decoder = Mode::Train { noise: &noise, phase: Phase::Decoder };
        let s = SparseRows::encoder_input(&x, &rows, 0.5, decoder);
        assert_eq!(s, SparseRows::encoder_input(&x, &rows, 0.5, Mode::Eval));
        assert_eq!(noise.draws(), 0);
    }

    #[test]
    fn the_products_match_dense_ones() {
        let x = clicks();
        let rows = [1usize, 5, 4];
        let noise = NoiseSource::new(2, 0);
        let s = SparseRows::encoder_input(&x, &rows, 0.5, Mode::train(&noise));
        let (n, items, d) = (rows.len(), 40usize, 3usize);
        let w: Vec<f32> = (0..items * d).map(|i| ((i * 37 % 11) as f32 - 5.0) / 7.0).collect();
        let g: Vec<f32> = (0..n * d).map(|i| ((i * 13 % 7) as f32 - 3.0) / 5.0).collect();
        let dense = s.to_dense();
        let xw = s.product(&w, d);
        let xtg = s.transposed_product(&g, d);
        for r in 0..n {
            for j in 0..d {
                let want: f32 = (0..items).map(|c| dense[r * items + c] * w[c * d + j]).sum();
                assert_relative_eq!(xw[r * d + j], want, epsilon = 1e-6);
            }
        }
        for c in 0..items {
            for j in 0..d {
                let want: f32 = (0..n).map(|r| dense[r * items + c] * g[r * d + j]).sum();
                assert_relative_eq!(xtg[c * d + j], want, epsilon = 1e-6);
            }
        }
    }
}
