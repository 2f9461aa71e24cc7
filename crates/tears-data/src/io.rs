//! File helpers: transparent gzip / xz input, latin-1 tolerant line decoding, atomic writes.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0x00];

/// Returns `path` if it exists, or a [`DataError::MissingFile`] naming `dataset`.
pub fn require_file(path: &Path, dataset: &str) -> Result<PathBuf> {
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(DataError::MissingFile { path: path.to_path_buf(), dataset: dataset.to_string() })
    }
}

/// Opens a file for buffered reading, decompressing gzip transparently (detected by its magic bytes).
///
/// xz files are decompressed in memory (they are only used for small summary files).
pub fn open(path: &Path, dataset: &str) -> Result<Box<dyn BufRead>> {
    let mut file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            DataError::MissingFile { path: path.to_path_buf(), dataset: dataset.to_string() }
        }
        _ => DataError::io(path, e),
    })?;
    let mut magic = [0u8; 6];
    let n = read_prefix(&mut file, &mut magic).map_err(|e| DataError::io(path, e))?;
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    if n >= 2 && magic[..2] == GZIP_MAGIC {
        let decoder = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 16, file));
        Ok(Box::new(BufReader::with_capacity(1 << 16, decoder)))
    } else if n == 6 && magic == XZ_MAGIC {
        let mut input = BufReader::new(file);
        let mut out = Vec::new();
        lzma_rs::xz_decompress(&mut input, &mut out)
            .map_err(|e| DataError::Decompress { path: path.to_path_buf(), message: e.to_string() })?;
        Ok(Box::new(std::io::Cursor::new(out)))
    } else {
        Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
    }
}

/// Reads a whole (possibly compressed) file into memory.
pub fn read_all(path: &Path, dataset: &str) -> Result<Vec<u8>> {
    let mut reader = open(path, dataset)?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out).map_err(|e| DataError::io(path, e))?;
    Ok(out)
}

fn read_prefix(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Decodes bytes as UTF-8 when valid, and as latin-1 (ISO-8859-1) otherwise.
///
/// MovieLens 100K/1M and Netflix ship latin-1; MovieLens latest and Goodbooks ship UTF-8.
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(bytes.iter().map(|&b| b as char).collect()),
    }
}

/// Iterates over the lines of a reader as `(line_number, text)`, 1-based, with the line ending
/// (`\n` or `\r\n`) removed and latin-1 fallback decoding.
pub struct Lines<'a> {
    reader: Box<dyn BufRead + 'a>,
    path: PathBuf,
    buf: Vec<u8>,
    line: u64,
}

impl<'a> Lines<'a> {
    /// Wraps `reader`, whose errors will name `path`.
    pub fn new(reader: Box<dyn BufRead + 'a>, path: &Path) -> Self {
        Lines { reader, path: path.to_path_buf(), buf: Vec::with_capacity(256), line: 0 }
    }

    /// The next line, or `None` at the end of the input.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<(u64, Cow<'_, str>)>> {
        self.buf.clear();
        match self.reader.read_until(b'\n', &mut self.buf) {
            Ok(0) => None,
            Ok(_) => {
                self.line += 1;
                let mut end = self.buf.len();
                while end > 0 && (self.buf[end - 1] == b'\n' || self.buf[end - 1] == b'\r') {
                    end -= 1;
                }
                Some(Ok((self.line, decode(&self.buf[..end]))))
            }
            Err(e) => Some(Err(DataError::io(&self.path, e))),
        }
    }
}

/// Writes a file atomically: the content goes to a temporary file in the same folder, which is
/// then renamed over `path`, so readers never see a half-written file.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".to_string());
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let file = File::create(&tmp)?;
        let mut writer = std::io::BufWriter::with_capacity(1 << 16, file);
        write(&mut writer)?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(DataError::io(path, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| DataError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_fallback_and_crlf() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f.txt");
        std::fs::write(&p, b"caf\xe9\r\nna\xefve\nplain").expect("write");
        let mut lines = Lines::new(open(&p, "test").expect("open"), &p);
        let mut got = Vec::new();
        while let Some(l) = lines.next() {
            let (n, s) = l.expect("line");
            got.push((n, s.into_owned()));
        }
        assert_eq!(got, vec![(1, "café".to_string()), (2, "naïve".to_string()), (3, "plain".to_string())]);
    }

    #[test]
    fn gzip_is_transparent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"a\nb\n").expect("gz");
        std::fs::write(&p, enc.finish().expect("gz")).expect("write");
        assert_eq!(read_all(&p, "t").expect("read"), b"a\nb\n");
    }

    #[test]
    fn missing_file_names_path_and_dataset() {
        let err = open(Path::new("/nonexistent/ratings.dat"), "MovieLens 1M").err().expect("must fail");
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/ratings.dat") && msg.contains("MovieLens 1M"), "{msg}");
    }

    #[test]
    fn atomic_write_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.csv");
        write_atomic(&p, |w| w.write_all(b"hello")).expect("write");
        assert_eq!(std::fs::read(&p).expect("read"), b"hello");
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names.len(), 1);
    }
}
