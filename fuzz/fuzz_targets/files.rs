//! Fuzzes whole-file loading: the bytes become each loader's ratings file (plain), and loading must
//! return a dataset or an error naming the file, never panic, in strict and lenient mode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tears_data::{LoadOptions, loaders};

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile_dir() else { return };
    let d = dir.as_path();
    let write = |name: &str, bytes: &[u8]| std::fs::write(d.join(name), bytes).is_ok();
    let ok = write("movies.dat", b"1::Toy Story (1995)::Comedy\n")
        && write("ratings.dat", data)
        && write("u.item", b"1|Toy Story (1995)|01-Jan-1995||x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n")
        && write("u.data", data)
        && write("movies.csv", b"movieId,title,genres\n1,Toy Story (1995),Comedy\n")
        && write("ratings.csv", data)
        && write("movie_titles.txt", b"1,2003,Dinosaur Planet\n")
        && write("combined_data_1.txt", data)
        && write("books.csv", b"book_id,goodreads_book_id,title\n1,5,A Book\n");
    if ok {
        for lenient in [false, true] {
            let o = LoadOptions { lenient };
            let _ = loaders::load_ml1m(d, &o);
            let _ = loaders::load_ml100k(d, &o);
            let _ = loaders::load_ml_latest(d, &o);
            let _ = loaders::load_netflix(d, &o);
            let _ = loaders::load_goodbooks(d, &o);
        }
    }
    let _ = std::fs::remove_dir_all(d);
});

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!("tears-fuzz-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
