//! Writing embeddings for other tools: NumPy `.npy` and safetensors.

use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::Dtype;

use crate::error::{Result, TextError};

fn check(path: &Path, rows: &[Vec<f32>]) -> Result<usize> {
    let dim = rows.first().map_or(0, Vec::len);
    if let Some(bad) = rows.iter().position(|r| r.len() != dim) {
        return Err(TextError::InvalidOption(format!(
            "{}: row {bad} has {} values, row 0 has {dim}",
            path.display(),
            rows[bad].len()
        )));
    }
    Ok(dim)
}

/// Writes `rows` as a float32 `.npy` array of shape `[rows, dim]` (NumPy format 1.0,
/// little-endian, C order), through a temporary file renamed into place.
pub fn write_npy(path: &Path, rows: &[Vec<f32>]) -> Result<()> {
    let dim = check(path, rows)?;
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {dim}), }}", rows.len());
    // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let len = u16::try_from(header.len())
        .map_err(|_| TextError::InvalidOption(format!("{}: .npy header too long", path.display())))?;
    crate::io::write_atomic_with(path, |w| {
        w.write_all(b"\x93NUMPY\x01\x00")?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(header.as_bytes())?;
        for row in rows {
            for v in row {
                w.write_all(&v.to_le_bytes())?;
            }
        }
        Ok(())
    })
}

/// The sidecar file listing the user of each row of `path`: `emb.npy` → `emb.users.txt`.
pub fn users_sidecar(path: &Path) -> PathBuf {
    path.with_extension("users.txt")
}

/// Writes one id per line (the sidecar of an `.npy` file).
pub fn write_ids(path: &Path, ids: &[u64]) -> Result<()> {
    crate::io::write_atomic_with(path, |w| {
        for id in ids {
            writeln!(w, "{id}")?;
        }
        Ok(())
    })
}

/// Writes a safetensors file with `embeddings` (f32 `[rows, dim]`) and `users` (u64 `[rows]`).
pub fn write_embeddings_safetensors(path: &Path, rows: &[Vec<f32>], users: &[u64]) -> Result<()> {
    let dim = check(path, rows)?;
    if users.len() != rows.len() {
        return Err(TextError::InvalidOption(format!(
            "{}: {} users for {} rows",
            path.display(),
            users.len(),
            rows.len()
        )));
    }
    let emb: Vec<u8> = rows.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
    let ids: Vec<u8> = users.iter().flat_map(|v| v.to_le_bytes()).collect();
    let err = |e: safetensors::SafeTensorError| TextError::Weights { path: path.to_path_buf(), reason: e.to_string() };
    let views = vec![
        (
            "embeddings".to_string(),
            safetensors::tensor::TensorView::new(Dtype::F32, vec![rows.len(), dim], &emb).map_err(err)?,
        ),
        ("users".to_string(), safetensors::tensor::TensorView::new(Dtype::U64, vec![users.len()], &ids).map_err(err)?),
    ];
    let bytes = safetensors::serialize(views, None).map_err(err)?;
    crate::io::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_data_follows() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("e.npy");
        write_npy(&p, &[vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]]).expect("write");
        let bytes = std::fs::read(&p).expect("read");
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + hlen]).expect("utf8");
        assert!(header.contains("'shape': (2, 3)") && header.ends_with('\n'), "{header}");
        let data: Vec<f32> =
            bytes[10 + hlen..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        assert_eq!(data, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(users_sidecar(&p), dir.path().join("e.users.txt"));
        assert!(write_npy(&p, &[vec![1.0], vec![1.0, 2.0]]).is_err());
    }
}
