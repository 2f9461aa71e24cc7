//! scratch
use burn::backend::Flex;
use burn::tensor::{Distribution, Tensor};
use tears_ot::*;
fn main() {
    let device = Default::default();
    let mode = if std::env::args().nth(1).as_deref() == Some("lse") {
        SinkhornMode::LogSumExp
    } else {
        SinkhornMode::Stabilized
    };
    let x = Tensor::<Flex, 3>::random([1, 1024, 64], Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<Flex, 3>::random([1, 1024, 64], Distribution::Normal(0.5, 1.0), &device);
    for _ in 0..10 {
        let cfg = SinkhornConfig::default()
            .with_eps(Epsilon::RelativeToMedian(0.05))
            .with_tol(1e-5)
            .with_mode(mode);
        let out = sinkhorn(x.clone(), y.clone(), None, None, &cfg).unwrap();
        assert!(out.report.converged);
    }
}
