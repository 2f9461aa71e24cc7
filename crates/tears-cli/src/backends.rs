//! `tears backends`: list the compiled backends and check that each can run a small kernel.

use std::time::Instant;

use anyhow::Result;
use tears::backend::{BackendJob, BackendKind};

/// A tiny matrix product: proves a backend can allocate and run kernels.
struct Probe;

impl BackendJob for Probe {
    type Output = f32;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> f32 {
        use burn::tensor::{ElementConversion, Tensor};
        let a = Tensor::<B, 2>::ones([8, 8], &device);
        a.clone().matmul(a).sum().into_scalar().elem::<f32>()
    }
}

pub fn run() -> Result<()> {
    let mut failures = 0;
    for kind in BackendKind::ALL {
        if !kind.is_compiled() {
            println!("{:<8} not compiled (rebuild with --features {})", kind.name(), kind.feature());
            continue;
        }
        let started = Instant::now();
        match tears::backend::run(kind, Probe) {
            Ok(512.0) => println!("{:<8} ok  {} ({:.1?})", kind.name(), kind.describe(), started.elapsed()),
            Ok(v) => {
                failures += 1;
                println!("{:<8} WRONG: an 8x8 ones product summed to {v}, expected 512", kind.name());
            }
            Err(e) => {
                failures += 1;
                println!("{:<8} unavailable: {e}", kind.name());
            }
        }
    }
    if failures > 0 {
        anyhow::bail!("{failures} compiled backend(s) cannot run here");
    }
    Ok(())
}
