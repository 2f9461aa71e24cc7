//! Seeded random draws for training (dropout masks, reparameterisation noise, Gumbel noise).
//!
//! Every draw is generated on the host from ChaCha8 streams and uploaded as a tensor, so a run
//! with the same seed draws the same numbers whatever the backend, the number of threads or the
//! other work in the process. Each call takes the next stream of the source; rows of one draw are
//! generated in parallel, each from its own stream, so the result does not depend on scheduling.

use std::cell::Cell;

use burn::tensor::{Tensor, TensorData, backend::Backend};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// A deterministic source of training noise: a seed and a counter of draws made so far.
///
/// ```
/// use burn::backend::Flex;
/// use tears_vae::NoiseSource;
/// let device = Default::default();
/// let a = NoiseSource::new(7, 0).normal::<Flex>([2, 3], &device);
/// let b = NoiseSource::new(7, 0).normal::<Flex>([2, 3], &device);
/// assert_eq!(a.into_data(), b.into_data());
/// ```
#[derive(Debug)]
pub struct NoiseSource {
    seed: u64,
    draws: Cell<u64>,
    row_offset: Cell<u64>,
}

/// SplitMix64 finaliser: decorrelates consecutive integers into seeds.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The largest `f32` below 1.
const BELOW_ONE: f32 = 1.0 - f32::EPSILON / 2.0;

/// A uniform draw in the open interval (0, 1).
///
/// The top of the 24-bit grid, `1 − 2⁻²⁵`, is not an `f32` and rounds to 1, where
/// `−ln(−ln U)` is infinite; it is held to the largest `f32` below 1. Every other draw is
/// unchanged.
fn open_unit(bits: u32) -> f32 {
    (((bits >> 8) as f32 + 0.5) * (1.0 / 16_777_216.0)).min(BELOW_ONE)
}

/// Fills one row of an inverted-dropout mask with probability `p` (one random bit per entry when
/// `p = 0.5`).
fn dropout_row(p: f32) -> impl Fn(&mut ChaCha8Rng, &mut [f32]) + Sync {
    let keep = 1.0 / (1.0 - p);
    let threshold = (f64::from(p) * 4_294_967_296.0) as u64;
    move |rng: &mut ChaCha8Rng, row: &mut [f32]| {
        if p == 0.5 {
            for chunk in row.chunks_mut(64) {
                let bits = rng.next_u64();
                for (j, v) in chunk.iter_mut().enumerate() {
                    *v = if (bits >> j) & 1 == 1 { keep } else { 0.0 };
                }
            }
        } else {
            for v in row.iter_mut() {
                *v = if u64::from(rng.next_u32()) >= threshold { keep } else { 0.0 };
            }
        }
    }
}

impl NoiseSource {
    /// A source for `seed` that has already made `draws` draws (0 for a fresh run; the saved
    /// counter when a run resumes).
    pub fn new(seed: u64, draws: u64) -> Self {
        NoiseSource { seed, draws: Cell::new(draws), row_offset: Cell::new(0) }
    }

    /// Keys the per-user draws ([`NoiseSource::dropout_mask`], [`NoiseSource::normal`]) from row
    /// `offset` of the whole batch on: a data-parallel worker holding rows `offset..` of a batch
    /// draws for them exactly what one process holding the whole batch draws (see
    /// [`crate::parallel`]). Per-item draws ([`NoiseSource::gumbel`]) are not shifted.
    ///
    /// ```
    /// use burn::backend::Flex;
    /// use tears_vae::NoiseSource;
    /// let device = Default::default();
    /// let whole = NoiseSource::new(7, 0).normal::<Flex>([4, 3], &device);
    /// let worker = NoiseSource::new(7, 0);
    /// worker.set_row_offset(2);
    /// let tail = worker.normal::<Flex>([2, 3], &device);
    /// assert_eq!(whole.slice([2..4, 0..3]).into_data(), tail.into_data());
    /// ```
    pub fn set_row_offset(&self, offset: usize) {
        self.row_offset.set(offset as u64);
    }

    /// The number of draws made so far (saved in checkpoints).
    pub fn draws(&self) -> u64 {
        self.draws.get()
    }

    fn next_stream(&self) -> u64 {
        let d = self.draws.get();
        self.draws.set(d + 1);
        mix(self.seed ^ mix(d))
    }

    /// The generator of row `r` of a draw from `stream` (`offset` shifts per-user draws).
    fn row_rng(stream: u64, offset: u64, r: usize) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(mix(stream ^ mix(offset + r as u64)))
    }

    fn fill<B: Backend>(
        &self,
        shape: [usize; 2],
        device: &B::Device,
        per_user: bool,
        row_fn: impl Fn(&mut ChaCha8Rng, &mut [f32]) + Sync,
    ) -> Tensor<B, 2> {
        let stream = self.next_stream();
        let offset = if per_user { self.row_offset.get() } else { 0 };
        let [rows, cols] = shape;
        let mut data = vec![0.0f32; rows * cols];
        if cols > 0 {
            data.par_chunks_mut(cols).enumerate().for_each(|(r, row)| {
                row_fn(&mut Self::row_rng(stream, offset, r), row);
            });
        }
        Tensor::from_data(TensorData::new(data, shape), device)
    }

    /// Inverted-dropout multipliers: each entry is `0` with probability `p` and `1 / (1 − p)`
    /// otherwise. `p` must be in `[0, 1)`.
    pub fn dropout_mask<B: Backend>(&self, shape: [usize; 2], p: f32, device: &B::Device) -> Tensor<B, 2> {
        self.fill(shape, device, true, dropout_row(p))
    }

    /// The entries of [`NoiseSource::dropout_mask`] of shape `[cols.len(), n_cols]` at columns
    /// `cols[r]` of each row `r`, without building the dense mask: the same draw (it takes the
    /// next stream and honours [`NoiseSource::set_row_offset`]), so a sparse encoder input gets
    /// exactly the multipliers a dense one would.
    ///
    /// ```
    /// use burn::backend::Flex;
    /// use tears_vae::NoiseSource;
    /// let device = Default::default();
    /// let dense = NoiseSource::new(3, 0).dropout_mask::<Flex>([2, 5], 0.5, &device);
    /// let dense = dense.into_data().to_vec::<f32>().expect("f32");
    /// let picked = NoiseSource::new(3, 0).dropout_mask_at(5, 0.5, &[&[1, 4], &[0]]);
    /// assert_eq!(picked, vec![vec![dense[1], dense[4]], vec![dense[5]]]);
    /// ```
    pub fn dropout_mask_at(&self, n_cols: usize, p: f32, cols: &[&[usize]]) -> Vec<Vec<f32>> {
        let stream = self.next_stream();
        let offset = self.row_offset.get();
        let row_fn = dropout_row(p);
        cols.par_iter()
            .enumerate()
            .map_init(
                || vec![0.0f32; n_cols],
                |row, (r, picked)| {
                    row_fn(&mut Self::row_rng(stream, offset, r), row);
                    picked.iter().map(|&c| row.get(c).copied().unwrap_or(0.0)).collect()
                },
            )
            .collect()
    }

    /// Standard normal draws (Box–Muller).
    pub fn normal<B: Backend>(&self, shape: [usize; 2], device: &B::Device) -> Tensor<B, 2> {
        self.fill(shape, device, true, |rng, row| {
            for pair in row.chunks_mut(2) {
                let u1 = open_unit(rng.next_u32());
                let u2 = open_unit(rng.next_u32());
                let r = (-2.0 * u1.ln()).sqrt();
                let theta = std::f32::consts::TAU * u2;
                pair[0] = r * theta.cos();
                if let Some(second) = pair.get_mut(1) {
                    *second = r * theta.sin();
                }
            }
        })
    }

    /// Standard Gumbel draws, `−ln(−ln U)`, one row per item (not shifted by
    /// [`NoiseSource::set_row_offset`]: every data-parallel worker draws the same).
    pub fn gumbel<B: Backend>(&self, shape: [usize; 2], device: &B::Device) -> Tensor<B, 2> {
        self.fill(shape, device, false, |rng, row| {
            for v in row.iter_mut() {
                *v = -(-open_unit(rng.next_u32()).ln()).ln();
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    fn values(t: Tensor<Flex, 2>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().unwrap_or_default()
    }

    #[test]
    fn dropout_masks_keep_the_expected_share_and_scale() {
        let device = Default::default();
        let source = NoiseSource::new(1, 0);
        for p in [0.5f32, 0.2] {
            let v = values(source.dropout_mask::<Flex>([100, 1000], p, &device));
            let kept = v.iter().filter(|&&x| x > 0.0).count() as f64 / v.len() as f64;
            assert!((kept - (1.0 - f64::from(p))).abs() < 0.01, "p {p}: kept {kept}");
            assert!(v.iter().all(|&x| x == 0.0 || (x - 1.0 / (1.0 - p)).abs() < 1e-6));
        }
    }

    #[test]
    fn normal_and_gumbel_have_their_moments() {
        let device = Default::default();
        let source = NoiseSource::new(2, 0);
        let n = values(source.normal::<Flex>([200, 501], &device));
        let mean = n.iter().map(|&x| f64::from(x)).sum::<f64>() / n.len() as f64;
        let var = n.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / n.len() as f64;
        assert!(mean.abs() < 0.01 && (var - 1.0).abs() < 0.02, "mean {mean} var {var}");
        let g = values(source.gumbel::<Flex>([200, 500], &device));
        let gmean = g.iter().map(|&x| f64::from(x)).sum::<f64>() / g.len() as f64;
        // The Gumbel mean is the Euler–Mascheroni constant.
        assert!((gmean - 0.577_215_66).abs() < 0.01, "gumbel mean {gmean}");
    }

    #[test]
    fn uniform_draws_stay_inside_the_open_interval() {
        // One draw in 2^24 has its top 24 bits set; unheld it rounded to 1.0 and its Gumbel
        // draw was +inf, which turned a MacridVAE concept assignment into NaN mid-training.
        for bits in [0, 255, 1 << 31, u32::MAX - 255, u32::MAX] {
            let u = open_unit(bits);
            assert!(u > 0.0 && u < 1.0, "bits {bits:#x} gave {u}");
            let g = -(-u.ln()).ln();
            assert!(g.is_finite(), "bits {bits:#x} gave a Gumbel draw of {g}");
        }
    }

    #[test]
    fn draws_are_reproducible_and_advance() {
        let device = Default::default();
        let a = NoiseSource::new(3, 0);
        let first = values(a.normal::<Flex>([4, 4], &device));
        let second = values(a.normal::<Flex>([4, 4], &device));
        assert_ne!(first, second);
        assert_eq!(a.draws(), 2);
        let resumed = NoiseSource::new(3, 1);
        assert_eq!(values(resumed.normal::<Flex>([4, 4], &device)), second);
    }
}
