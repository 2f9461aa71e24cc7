//! scratch
use burn::backend::Flex;
use burn::tensor::{Distribution, Tensor};
use std::time::Instant;
fn time<F: FnMut() -> Tensor<Flex, 3>>(name: &str, mut f: F) {
    let _ = f();
    let t = Instant::now();
    let reps = 5;
    for _ in 0..reps {
        let r = f();
        let _ = r.dims();
    }
    println!(
        "{name}: {:.3} ms",
        t.elapsed().as_secs_f64() * 1e3 / reps as f64
    );
}
fn main() {
    let device = Default::default();
    let n = 1024;
    let c = Tensor::<Flex, 3>::random([1, n, n], Distribution::Normal(0.0, 1.0), &device);
    let h = Tensor::<Flex, 3>::random([1, 1, n], Distribution::Normal(0.0, 1.0), &device);
    let hc = Tensor::<Flex, 3>::random([1, n, 1], Distribution::Normal(0.0, 1.0), &device);
    time("sub broadcast row", || h.clone() - c.clone());
    time("add broadcast col", || hc.clone() + c.clone());
    time("sub same", || c.clone() - c.clone());
    time("exp", || c.clone().exp());
    time("clamp_min", || c.clone().clamp_min(-80.0));
    time("max_dim2", || c.clone().max_dim(2));
    time("max_dim1", || c.clone().max_dim(1));
    time("sum_dim2", || c.clone().sum_dim(2));
    time("sum_dim1", || c.clone().sum_dim(1));
    time("mul_scalar", || c.clone().mul_scalar(2.0));
    time("matvec col", || c.clone().matmul(hc.clone()));
    time("matvec row", || h.clone().matmul(c.clone()));
    time("swap+mul", || c.clone().swap_dims(1, 2).mul_scalar(1.0));
    time("log_softmax", || {
        burn::tensor::activation::log_softmax(c.clone(), 2)
    });
    more();
}
pub fn more() {
    use tears_ot::*;
    let device = Default::default();
    let n = 1024;
    let x = Tensor::<Flex, 3>::random([1, n, 64], Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<Flex, 3>::random([1, n, 64], Distribution::Normal(0.0, 1.0), &device);
    time("cost", || {
        pairwise_cost(x.clone(), y.clone(), CostKind::SquaredEuclidean).unwrap()
    });
    let c = pairwise_cost(x.clone(), y.clone(), CostKind::SquaredEuclidean).unwrap();
    time("host data", || {
        let v: Vec<f64> = c.clone().into_data().iter::<f64>().collect();
        let _ = v.len();
        c.clone()
    });
    time("is_finite all", || {
        let _ = c.clone().is_finite().all().float().into_data();
        c.clone()
    });
    let p = Tensor::<Flex, 2>::random([1, n], Distribution::Normal(0.0, 1.0), &device);
    time("outer", || {
        let lhs = Tensor::cat(
            vec![
                p.clone().unsqueeze_dim::<3>(2),
                p.ones_like().unsqueeze_dim::<3>(2),
            ],
            2,
        );
        let rhs = Tensor::cat(
            vec![
                p.ones_like().unsqueeze_dim::<3>(1),
                p.clone().unsqueeze_dim::<3>(1),
            ],
            1,
        );
        lhs.matmul(rhs)
    });
    time("div_scalar", || c.clone().div_scalar(3.0));
    time("cat2", || {
        Tensor::cat(
            vec![
                p.clone().unsqueeze_dim::<3>(2),
                p.ones_like().unsqueeze_dim::<3>(2),
            ],
            2,
        )
    });
}
