//! Reading and writing `model.safetensors` in the Hugging Face BERT layout.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use crate::bert::WeightSource;
use crate::error::{Result, TextError};

/// Tensors of a safetensors file, looked up by their Hugging Face names.
pub(crate) struct SafetensorsWeights<'a> {
    file: SafeTensors<'a>,
    path: PathBuf,
    prefix: &'static str,
    names: HashSet<String>,
}

impl<'a> SafetensorsWeights<'a> {
    pub(crate) fn parse(bytes: &'a [u8], path: &Path) -> Result<Self> {
        let file = SafeTensors::deserialize(bytes)
            .map_err(|e| TextError::Weights { path: path.to_path_buf(), reason: e.to_string() })?;
        let names: HashSet<String> = file.names().into_iter().map(str::to_string).collect();
        // BertModel files have bare names; BertFor* checkpoints prefix them with `bert.`.
        let probe = "embeddings.word_embeddings.weight";
        let prefix =
            ["", "bert.", "model."].into_iter().find(|p| names.contains(&format!("{p}{probe}"))).ok_or_else(|| {
                let mut some: Vec<&String> = names.iter().collect();
                some.sort();
                some.truncate(5);
                TextError::Unsupported {
                    path: path.to_path_buf(),
                    reason: format!(
                        "no {probe:?} tensor: not a BERT checkpoint (the file holds {} tensors, e.g. {some:?})",
                        names.len()
                    ),
                }
            })?;
        Ok(SafetensorsWeights { file, path: path.to_path_buf(), prefix, names })
    }

    /// The stored name of `name`, accepting the old `gamma`/`beta` LayerNorm names.
    fn resolve(&self, name: &str) -> Option<String> {
        let full = format!("{}{name}", self.prefix);
        if self.names.contains(&full) {
            return Some(full);
        }
        let alias = full
            .strip_suffix("LayerNorm.weight")
            .map(|s| format!("{s}LayerNorm.gamma"))
            .or_else(|| full.strip_suffix("LayerNorm.bias").map(|s| format!("{s}LayerNorm.beta")))?;
        self.names.contains(&alias).then_some(alias)
    }
}

fn to_f32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    let pairs = || bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    match dtype {
        Dtype::F32 => Some(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
        Dtype::F16 => Some(pairs().map(|b| half::f16::from_bits(b).to_f32()).collect()),
        Dtype::BF16 => Some(pairs().map(|b| half::bf16::from_bits(b).to_f32()).collect()),
        Dtype::F64 => Some(
            bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
                .collect(),
        ),
        _ => None,
    }
}

impl WeightSource for SafetensorsWeights<'_> {
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let stored = self.resolve(name).ok_or_else(|| TextError::MissingTensor {
            path: self.path.clone(),
            name: format!("{}{name}", self.prefix),
        })?;
        let view = self
            .file
            .tensor(&stored)
            .map_err(|e| TextError::Weights { path: self.path.clone(), reason: format!("{stored}: {e}") })?;
        let mismatch = |dtype: String| TextError::TensorShape {
            path: self.path.clone(),
            name: stored.clone(),
            found: view.shape().to_vec(),
            expected: shape.to_vec(),
            dtype,
        };
        if view.shape() != shape {
            return Err(mismatch(format!("{:?}", view.dtype())));
        }
        to_f32(view.dtype(), view.data()).ok_or_else(|| mismatch(format!("{:?}, not a float type", view.dtype())))
    }
}

/// Writes f32 tensors to a safetensors file (through a temporary file renamed into place).
pub fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Result<()> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(name, shape, data)| (name.clone(), data.iter().flat_map(|v| v.to_le_bytes()).collect(), shape.clone()))
        .collect();
    let views = bytes
        .iter()
        .map(|(name, data, shape)| {
            safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), data)
                .map(|v| (name.clone(), v))
                .map_err(|e| TextError::Weights { path: path.to_path_buf(), reason: format!("{name}: {e}") })
        })
        .collect::<Result<Vec<_>>>()?;
    let out = safetensors::serialize(views, None)
        .map_err(|e| TextError::Weights { path: path.to_path_buf(), reason: e.to_string() })?;
    crate::io::write_atomic(path, &out)
}
