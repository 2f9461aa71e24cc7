//! What the training benchmarks share: the benchmark split and the loop over compiled backends.

use tears::data::{DatasetName, PrepareOptions, Split, prepare};

/// The `ml1m-gpt4` split (split seed 0), or the synthetic one when the shared data is absent.
pub fn split() -> Split {
    let options = PrepareOptions::default();
    match prepare(DatasetName::Ml1mGpt4, &options) {
        Ok(p) => p.split,
        Err(e) => {
            eprintln!("ml1m-gpt4 unavailable ({e}); benchmarking the synthetic dataset");
            prepare(DatasetName::Synthetic, &options).expect("the synthetic dataset").split
        }
    }
}

/// Calls `$bench::<B>(c, name, split)` for every backend this build has (CUDA only when a device
/// answers).
macro_rules! each_backend {
    ($bench:ident, $c:expr, $split:expr) => {{
        #[cfg(feature = "flex")]
        $bench::<burn::backend::Flex>($c, if cfg!(feature = "x86-v4") { "flex-x86v4" } else { "flex" }, $split);
        #[cfg(feature = "ndarray")]
        $bench::<burn::backend::NdArray>($c, "ndarray", $split);
        #[cfg(feature = "cuda")]
        if tears::backend::cuda_probe().is_ok() {
            $bench::<burn::backend::Cuda>($c, "cuda", $split);
        }
        let _ = ($c, $split);
    }};
}
pub(crate) use each_backend;

/// The benches run on the allocator our binaries use (docs/benchmarks.md, "The allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
