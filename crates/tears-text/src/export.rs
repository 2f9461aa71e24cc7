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

/// Reads a float32 `[rows, dim]` `.npy` array as written by [`write_npy`] (NumPy format 1.0 or
/// 2.0, little-endian `<f4`, C order), returning the rows.
///
/// # Errors
/// [`TextError::InvalidOption`] naming the file when it is not such an array.
pub fn read_npy(path: &Path) -> Result<Vec<Vec<f32>>> {
    let bytes = std::fs::read(path).map_err(|e| TextError::io(path, e))?;
    let bad =
        |why: &str| TextError::InvalidOption(format!("{}: not a float32 [rows, dim] .npy file: {why}", path.display()));
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("no NumPy magic"));
    }
    let (hlen, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(bad(&format!("format version {v}"))),
    };
    let header = bytes
        .get(start..start + hlen)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| bad("a truncated header"))?;
    if !header.contains("'descr': '<f4'") {
        return Err(bad("the dtype is not '<f4'"));
    }
    if !header.contains("'fortran_order': False") {
        return Err(bad("Fortran order"));
    }
    let shape = header
        .split_once("'shape': (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(dims, _)| {
            dims.split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::parse::<usize>)
                .collect::<std::result::Result<Vec<_>, _>>()
        })
        .ok_or_else(|| bad("no shape"))?
        .map_err(|_| bad("a shape that is not integers"))?;
    let [rows, dim] = shape[..] else {
        return Err(bad(&format!("shape {shape:?} is not two-dimensional")));
    };
    let data = &bytes[start + hlen..];
    if data.len() != rows * dim * 4 {
        return Err(bad(&format!("{} data bytes for shape ({rows}, {dim})", data.len())));
    }
    let values: Vec<f32> = data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(if dim == 0 { vec![Vec::new(); rows] } else { values.chunks(dim).map(<[f32]>::to_vec).collect() })
}

/// Reads a sidecar of one id per line (see [`write_ids`]).
///
/// # Errors
/// [`TextError::InvalidOption`] naming the file and line of a line that is not an id.
pub fn read_ids(path: &Path) -> Result<Vec<u64>> {
    let text = std::fs::read_to_string(path).map_err(|e| TextError::io(path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            l.trim().parse::<u64>().map_err(|_| {
                TextError::InvalidOption(format!("{}:{}: expected a user id, found {l:?}", path.display(), n + 1))
            })
        })
        .collect()
}

/// Reads a safetensors file written by [`write_embeddings_safetensors`]: the rows of
/// `embeddings` and the ids of `users`.
///
/// # Errors
/// [`TextError::Weights`] naming the file when a tensor is missing or of the wrong type or shape.
pub fn read_embeddings_safetensors(path: &Path) -> Result<(Vec<Vec<f32>>, Vec<u64>)> {
    let bytes = std::fs::read(path).map_err(|e| TextError::io(path, e))?;
    let bad = |reason: String| TextError::Weights { path: path.to_path_buf(), reason };
    let tensors = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let emb = tensors.tensor("embeddings").map_err(|e| bad(format!("embeddings: {e}")))?;
    let ids = tensors.tensor("users").map_err(|e| bad(format!("users: {e}")))?;
    let ([rows, dim], Dtype::F32, Dtype::U64) = (emb.shape(), emb.dtype(), ids.dtype()) else {
        return Err(bad("expected f32 embeddings [rows, dim] and u64 users".into()));
    };
    let (rows, dim) = (*rows, *dim);
    let users: Vec<u64> =
        ids.data().chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect();
    if users.len() != rows {
        return Err(bad(format!("{} users for {rows} rows", users.len())));
    }
    let values: Vec<f32> = emb.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let rows_out = if dim == 0 { vec![Vec::new(); rows] } else { values.chunks(dim).map(<[f32]>::to_vec).collect() };
    Ok((rows_out, users))
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

    #[test]
    fn what_is_written_reads_back() {
        let dir = tempfile::tempdir().expect("tmp");
        let rows = vec![vec![1.5, -2.0], vec![0.25, 3.0], vec![7.0, 8.0]];
        let npy = dir.path().join("e.npy");
        write_npy(&npy, &rows).expect("write");
        assert_eq!(read_npy(&npy).expect("read"), rows);
        write_ids(&users_sidecar(&npy), &[5, 3, 9]).expect("ids");
        assert_eq!(read_ids(&users_sidecar(&npy)).expect("ids"), [5, 3, 9]);
        let st = dir.path().join("e.safetensors");
        write_embeddings_safetensors(&st, &rows, &[5, 3, 9]).expect("write");
        assert_eq!(read_embeddings_safetensors(&st).expect("read"), (rows, vec![5, 3, 9]));
        std::fs::write(&npy, b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f8'}").expect("write");
        assert!(read_npy(&npy).expect_err("f8").to_string().contains("'<f4'"));
        std::fs::write(users_sidecar(&npy), "1\nx\n").expect("write");
        assert!(read_ids(&users_sidecar(&npy)).expect_err("x").to_string().contains("e.users.txt:2"));
    }
}
