//! scratch
use burn::backend::Flex;
use burn::tensor::{Distribution, Tensor};
use std::time::Instant;
use tears_ot::*;
fn main() {
    let device = Default::default();
    for &(bsz, n, d) in &[
        (1usize, 1024usize, 64usize),
        (1, 256, 64),
        (32, 256, 64),
        (1, 4096, 64),
    ] {
        let x = Tensor::<Flex, 3>::random([bsz, n, d], Distribution::Normal(0.0, 1.0), &device);
        let y = Tensor::<Flex, 3>::random([bsz, n, d], Distribution::Normal(0.5, 1.0), &device);
        for mode in [SinkhornMode::Stabilized, SinkhornMode::LogSumExp] {
            let cfg = SinkhornConfig::default()
                .with_eps(Epsilon::RelativeToMedian(0.05))
                .with_tol(1e-5)
                .with_mode(mode)
                .with_max_iter(2000);
            let t = Instant::now();
            let out = sinkhorn(x.clone(), y.clone(), None, None, &cfg).unwrap();
            let el = t.elapsed().as_secs_f64();
            println!(
                "B={bsz} n={n} d={d} {mode:?}: {:.1} ms, iters {}, conv {}, abs {}, per-iter {:.3} ms",
                el * 1e3,
                out.report.iterations,
                out.report.converged,
                out.report.absorptions,
                el * 1e3 / out.report.iterations as f64
            );
        }
    }
}
