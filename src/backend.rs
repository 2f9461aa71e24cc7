//! Run-time backend selection: maps `--backend flex|ndarray|cuda` to a concrete burn backend.
//!
//! Library code stays generic over `B: Backend`; binaries and examples write their work as a
//! [`BackendJob`] and hand it to [`run`], which instantiates it for the chosen backend (wrapped in
//! burn's `Autodiff` so that training works; use `B::InnerBackend` for inference).
//!
//! ```
//! use burn::tensor::{ElementConversion, Tensor, backend::AutodiffBackend};
//! use tears::backend::{BackendJob, BackendKind, run};
//!
//! struct Sum;
//! impl BackendJob for Sum {
//!     type Output = f32;
//!     fn run<B: AutodiffBackend>(self, device: B::Device) -> f32 {
//!         Tensor::<B, 1>::from_floats([1.0, 2.0, 3.0], &device).sum().into_scalar().elem::<f32>()
//!     }
//! }
//! let kind = BackendKind::default();
//! assert_eq!(run(kind, Sum)?, 6.0);
//! # Ok::<(), tears::backend::BackendError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use burn::tensor::backend::AutodiffBackend;

/// The backends a build can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// burn-flex, the fast portable CPU backend (cargo feature `flex`, on by default; with the
    /// default `x86-v4` feature its matmuls use AVX-512 where the CPU has it).
    Flex,
    /// burn-ndarray, the reference CPU backend (cargo feature `ndarray`).
    Ndarray,
    /// CUDA through CubeCL (cargo feature `cuda`); needs an NVIDIA GPU and driver at run time.
    Cuda,
}

impl Default for BackendKind {
    /// `flex` when compiled in, else the first compiled backend.
    fn default() -> Self {
        BackendKind::compiled().first().copied().unwrap_or(BackendKind::Flex)
    }
}

impl BackendKind {
    /// Every backend, compiled in or not.
    pub const ALL: [BackendKind; 3] = [BackendKind::Flex, BackendKind::Ndarray, BackendKind::Cuda];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Flex => "flex",
            BackendKind::Ndarray => "ndarray",
            BackendKind::Cuda => "cuda",
        }
    }

    /// The cargo feature that compiles this backend in.
    pub fn feature(self) -> &'static str {
        self.name()
    }

    /// Whether this build includes the backend.
    pub fn is_compiled(self) -> bool {
        match self {
            BackendKind::Flex => cfg!(feature = "flex"),
            BackendKind::Ndarray => cfg!(feature = "ndarray"),
            BackendKind::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The backends this build includes.
    pub fn compiled() -> Vec<BackendKind> {
        BackendKind::ALL.into_iter().filter(|k| k.is_compiled()).collect()
    }

    /// A one-line description for logs and reports.
    pub fn describe(self) -> String {
        match self {
            BackendKind::Flex if cfg!(feature = "x86-v4") => "flex (CPU; AVX-512 kernels when the CPU has them)".into(),
            BackendKind::Flex => "flex (CPU, portable kernels)".into(),
            BackendKind::Ndarray if cfg!(feature = "openblas-system") => {
                "ndarray (CPU; matrix products in the system OpenBLAS)".into()
            }
            BackendKind::Ndarray => "ndarray (CPU)".into(),
            BackendKind::Cuda => "cuda (NVIDIA GPU)".into(),
        }
    }

    /// What a first run on this backend costs that later runs do not, for a program to tell its
    /// user before a long job; `None` when nothing.
    ///
    /// On CUDA, burn tunes its kernels for each new matrix shape on a machine (on an H200, the
    /// first Mult-VAE or RecVAE epoch on `ml1m-gpt4` took 35–66 s against 0.1–0.8 s for the
    /// next), and cubecl keeps the choices for later runs.
    ///
    /// ```
    /// use tears::backend::BackendKind;
    /// assert!(BackendKind::Flex.first_run_note().is_none());
    /// assert!(BackendKind::Cuda.first_run_note().is_some_and(|n| n.contains("autotune")));
    /// ```
    pub fn first_run_note(self) -> Option<&'static str> {
        match self {
            BackendKind::Flex | BackendKind::Ndarray => None,
            BackendKind::Cuda => Some(
                "the first use of each matrix shape on this machine runs burn's CUDA autotune, so the first \
                 epoch and the first validation pass take up to a minute or two; cubecl keeps the choices \
                 (in target/autotune of the Cargo project around the working directory, else ~/.cache/cubecl; \
                 a cubecl.toml can move them) and later runs reuse them",
            ),
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = BackendError;
    fn from_str(s: &str) -> Result<Self, BackendError> {
        match s.to_ascii_lowercase().as_str() {
            "flex" | "cpu" => Ok(BackendKind::Flex),
            "ndarray" => Ok(BackendKind::Ndarray),
            "cuda" | "gpu" => Ok(BackendKind::Cuda),
            other => Err(BackendError::Unknown(other.to_string())),
        }
    }
}

/// Why a backend cannot run.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The name is not a backend.
    #[error("unknown backend {0:?} (expected flex, ndarray or cuda)")]
    Unknown(String),
    /// The backend exists but this build does not include it.
    #[error("backend {kind} is not compiled into this build; rebuild with `--features {feature}`")]
    NotCompiled {
        /// The backend asked for.
        kind: BackendKind,
        /// The cargo feature that adds it.
        feature: &'static str,
    },
    /// The backend is compiled in but no usable device was found.
    #[error("backend {kind} has no usable device: {reason}")]
    NoDevice {
        /// The backend asked for.
        kind: BackendKind,
        /// What went wrong (for CUDA: no driver library or no GPU).
        reason: String,
    },
}

/// A piece of work written once, generically, and run on whichever backend is chosen at run time.
pub trait BackendJob {
    /// What the job returns.
    type Output;
    /// Runs the job on backend `B` (an autodiff backend) and `device`.
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output;
}

/// Runs `job` on the backend `kind`, or explains why that backend is unavailable.
pub fn run<J: BackendJob>(kind: BackendKind, job: J) -> Result<J::Output, BackendError> {
    if !kind.is_compiled() {
        return Err(BackendError::NotCompiled { kind, feature: kind.feature() });
    }
    match kind {
        #[cfg(feature = "flex")]
        BackendKind::Flex => Ok(job.run::<burn::backend::Autodiff<burn::backend::Flex>>(Default::default())),
        #[cfg(feature = "ndarray")]
        BackendKind::Ndarray => Ok(job.run::<burn::backend::Autodiff<burn::backend::NdArray>>(Default::default())),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => {
            cuda_probe()?;
            Ok(job.run::<burn::backend::Autodiff<burn::backend::Cuda>>(Default::default()))
        }
        #[allow(unreachable_patterns)]
        _ => Err(BackendError::NotCompiled { kind, feature: kind.feature() }),
    }
}

/// Whether the NVIDIA driver library (`libcuda.so.1`) is installed in a standard place or on
/// `LD_LIBRARY_PATH`.
pub fn nvidia_driver_present() -> bool {
    let mut dirs: Vec<std::path::PathBuf> =
        std::env::var_os("LD_LIBRARY_PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    dirs.extend(
        [
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/usr/lib64",
            "/usr/lib",
            "/usr/local/nvidia/lib64",
            "/usr/local/nvidia/lib",
            "/usr/local/cuda/lib64/stubs",
            "/usr/lib/wsl/lib",
        ]
        .map(std::path::PathBuf::from),
    );
    dirs.iter().any(|d| d.join("libcuda.so.1").exists() || d.join("libcuda.so").exists())
}

/// Checks that a CUDA device can run a kernel, turning burn's panic (no driver, no GPU) into an error.
#[cfg(feature = "cuda")]
pub fn cuda_probe() -> Result<(), BackendError> {
    use burn::tensor::Tensor;
    if !nvidia_driver_present() {
        return Err(BackendError::NoDevice {
            kind: BackendKind::Cuda,
            reason: "the NVIDIA driver library libcuda.so.1 was not found (no GPU driver on this machine?)".into(),
        });
    }
    type C = burn::backend::Cuda;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(|| {
        let device = Default::default();
        let t = Tensor::<C, 1>::ones([4], &device).sum();
        t.into_scalar()
    });
    std::panic::set_hook(previous);
    match outcome {
        Ok(v) if (v - 4.0).abs() < 1e-6 => Ok(()),
        Ok(v) => Err(BackendError::NoDevice {
            kind: BackendKind::Cuda,
            reason: format!("a test kernel returned {v} instead of 4"),
        }),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "CUDA initialisation failed".to_string());
            Err(BackendError::NoDevice {
                kind: BackendKind::Cuda,
                reason: format!("{msg} (is an NVIDIA GPU with its driver present?)"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in BackendKind::ALL {
            assert_eq!(k.name().parse::<BackendKind>().expect("parse"), k);
        }
        assert!("tpu".parse::<BackendKind>().is_err());
    }

    #[test]
    fn missing_backend_is_an_error_not_a_panic() {
        struct Nop;
        impl BackendJob for Nop {
            type Output = ();
            fn run<B: AutodiffBackend>(self, _: B::Device) {}
        }
        for k in BackendKind::ALL {
            match run(k, Nop) {
                Ok(()) => assert!(k.is_compiled()),
                Err(BackendError::NotCompiled { kind, .. }) => assert!(!kind.is_compiled()),
                // CUDA compiled in on a machine without a GPU.
                Err(BackendError::NoDevice { kind, .. }) => assert_eq!(kind, BackendKind::Cuda),
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }
}
