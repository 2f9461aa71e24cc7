//! On-disk embedding cache keyed by (model hash, text hash).
//!
//! Layout: `DIR/<model key>/<2 hex>/<text sha-256>.emb`, one small file per text: the magic
//! `TEARSEMB`, the dimension (u32 LE), the text's SHA-256 and the vector (f32 LE). Entries are
//! written to a temporary name and renamed, so two runs sharing a cache never see a partial
//! entry; an unreadable entry counts as a miss and is rewritten.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Result, TextError};

const MAGIC: &[u8; 8] = b"TEARSEMB";
const HEADER: usize = 8 + 4 + 32;

/// SHA-256 of `bytes` as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A folder of cached sentence embeddings.
#[derive(Debug, Clone)]
pub struct EmbeddingCache {
    dir: PathBuf,
}

impl EmbeddingCache {
    /// Opens (creating if needed) the cache folder `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| TextError::io(dir, e))?;
        Ok(EmbeddingCache { dir: dir.to_path_buf() })
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry(&self, model_key: &str, text_hash: &[u8]) -> PathBuf {
        let h = hex(text_hash);
        self.dir.join(model_key).join(&h[..2]).join(format!("{h}.emb"))
    }

    /// The cached embedding of `text` under `model_key`, if any (a corrupt entry is a miss).
    pub fn get(&self, model_key: &str, text: &str) -> Option<Vec<f32>> {
        let hash = Sha256::digest(text.as_bytes());
        let path = self.entry(model_key, &hash);
        let bytes = std::fs::read(&path).ok()?;
        match decode(&bytes, &hash) {
            Ok(v) => Some(v),
            Err(reason) => {
                tracing::warn!("{}: ignoring corrupt embedding-cache entry: {reason}", path.display());
                None
            }
        }
    }

    /// Stores the embedding of `text` under `model_key`.
    pub fn put(&self, model_key: &str, text: &str, embedding: &[f32]) -> Result<()> {
        let hash = Sha256::digest(text.as_bytes());
        let path = self.entry(model_key, &hash);
        let dim = u32::try_from(embedding.len())
            .map_err(|_| TextError::Cache { path: path.clone(), reason: "embedding too long".into() })?;
        let mut bytes = Vec::with_capacity(HEADER + 4 * embedding.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&dim.to_le_bytes());
        bytes.extend_from_slice(&hash);
        for v in embedding {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        crate::io::write_atomic_fast(&path, &bytes)
    }

    /// The vectors of `texts` under `model_key`: those in the cache are read (an entry of
    /// another length than `dim`, when given, counts as a miss), the rest are made by `encode`
    /// in one call and stored. `progress` counts cached texts too.
    ///
    /// # Errors
    /// What `encode` returns; a failed write.
    pub fn get_or_encode(
        &self,
        model_key: &str,
        texts: &[&str],
        dim: Option<usize>,
        progress: &mut dyn FnMut(usize),
        encode: impl FnOnce(&[&str], &mut dyn FnMut(usize)) -> Result<Vec<Vec<f32>>>,
    ) -> Result<Vec<Vec<f32>>> {
        let mut out: Vec<Option<Vec<f32>>> =
            texts.iter().map(|t| self.get(model_key, t).filter(|v| dim.is_none_or(|d| v.len() == d))).collect();
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| out[i].is_none()).collect();
        progress(texts.len() - missing.len());
        if !missing.is_empty() {
            let todo: Vec<&str> = missing.iter().map(|&i| texts[i]).collect();
            let fresh = encode(&todo, progress)?;
            if fresh.len() != todo.len() {
                return Err(TextError::InvalidOption(format!(
                    "the encoder returned {} vectors for {} texts",
                    fresh.len(),
                    todo.len()
                )));
            }
            for (&i, v) in missing.iter().zip(fresh) {
                self.put(model_key, texts[i], &v)?;
                out[i] = Some(v);
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Number of entries stored under `model_key`.
    pub fn len(&self, model_key: &str) -> usize {
        let Ok(shards) = std::fs::read_dir(self.dir.join(model_key)) else { return 0 };
        shards
            .flatten()
            .filter_map(|s| std::fs::read_dir(s.path()).ok())
            .map(|d| d.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "emb")).count())
            .sum()
    }
}

fn decode(bytes: &[u8], hash: &[u8]) -> std::result::Result<Vec<f32>, String> {
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err("bad header".into());
    }
    let dim = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    if &bytes[12..44] != hash {
        return Err("text hash differs".into());
    }
    if bytes.len() != HEADER + 4 * dim {
        return Err(format!("{} bytes for dimension {dim}", bytes.len()));
    }
    Ok(bytes[HEADER..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption_is_a_miss() {
        let dir = tempfile::tempdir().expect("tmp");
        let cache = EmbeddingCache::open(&dir.path().join("c")).expect("open");
        assert_eq!(cache.get("m", "hello"), None);
        cache.put("m", "hello", &[1.0, -2.5, 3.25]).expect("put");
        assert_eq!(cache.get("m", "hello"), Some(vec![1.0, -2.5, 3.25]));
        assert_eq!(cache.get("other-model", "hello"), None);
        assert_eq!(cache.get("m", "hello!"), None);
        assert_eq!(cache.len("m"), 1);
        let hash = Sha256::digest(b"hello");
        let path = cache.entry("m", &hash);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes.truncate(bytes.len() - 2);
        std::fs::write(&path, &bytes).expect("write");
        assert_eq!(cache.get("m", "hello"), None);
        cache.put("m", "hello", &[4.0]).expect("put");
        assert_eq!(cache.get("m", "hello"), Some(vec![4.0]));
    }

    #[test]
    fn concurrent_writers_leave_whole_entries() {
        let dir = tempfile::tempdir().expect("tmp");
        let cache = EmbeddingCache::open(dir.path()).expect("open");
        let v: Vec<f32> = (0..384).map(|i| i as f32).collect();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..50 {
                        cache.put("m", "same text", &v).expect("put");
                        if let Some(got) = cache.get("m", "same text") {
                            assert_eq!(got, v);
                        }
                    }
                });
            }
        });
        assert_eq!(cache.get("m", "same text"), Some(v));
        let leftovers = std::fs::read_dir(cache.entry("m", &Sha256::digest(b"same text")).parent().expect("shard"))
            .expect("dir")
            .count();
        assert_eq!(leftovers, 1, "temporary files left behind");
    }
}
