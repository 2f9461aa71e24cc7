//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, Tensor, TensorData, backend::Backend};

/// The CPU backend of the tests.
pub type B = Flex;
/// The CPU backend with autodiff.
pub type AD = Autodiff<Flex>;

/// Where the shared fixtures live: `$TEARS_FIXTURES_DIR`, else `../shared/fixtures` next to the
/// workspace root.
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("TEARS_FIXTURES_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"),
    }
}

/// Loads a JSON fixture, or `None` (with a message) when it is absent.
pub fn load_fixture(rel: &str) -> Option<serde_json::Value> {
    let path = fixtures_dir().join(rel);
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("fixture {} not found: skipping (set TEARS_FIXTURES_DIR)", path.display());
        return None;
    };
    Some(serde_json::from_str(&text).expect("fixture is valid JSON"))
}

/// A JSON array of numbers.
pub fn vec1(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number")).collect()
}

/// A JSON array of arrays of numbers, flattened, with its shape.
pub fn vec2(v: &serde_json::Value) -> (Vec<f64>, [usize; 2]) {
    let rows: Vec<Vec<f64>> = v.as_array().expect("array").iter().map(vec1).collect();
    let shape = [rows.len(), rows.first().map_or(0, Vec::len)];
    (rows.concat(), shape)
}

/// A `[1, n, d]` tensor of the given dtype from a JSON matrix.
pub fn cloud<Bk: Backend>(v: &serde_json::Value, dtype: DType) -> Tensor<Bk, 3> {
    let (data, [n, d]) = vec2(v);
    Tensor::from_data(TensorData::new(data, [1, n, d]), (&Default::default(), dtype))
}

/// A `[1, n]` tensor of the given dtype from a JSON vector.
pub fn weights<Bk: Backend>(v: &serde_json::Value, dtype: DType) -> Tensor<Bk, 2> {
    let data = vec1(v);
    let n = data.len();
    Tensor::from_data(TensorData::new(data, [1, n]), (&Default::default(), dtype))
}

/// Tensor values as `f64`.
pub fn values<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

/// Relative error.
pub fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

/// Deterministic pseudo-random normal cloud `[batch, n, d]` (Box–Muller on a small LCG), so that
/// tests do not depend on the backend's RNG.
pub fn randn<Bk: Backend>(shape: [usize; 3], seed: u64, shift: f64, dtype: DType) -> Tensor<Bk, 3> {
    let total = shape.iter().product::<usize>();
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let data: Vec<f64> = (0..total)
        .map(|_| {
            let (u1, u2) = (next(), next());
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos() + shift
        })
        .collect();
    Tensor::from_data(TensorData::new(data, shape), (&Default::default(), dtype))
}
