//! Fuzzes every line parser of the dataset loaders: they must return a value or an error, never
//! panic, whatever the bytes.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tears_data::loaders;

fuzz_target!(|data: &[u8]| {
    let text = tears_data::io::decode(data);
    let p = Path::new("fuzz");
    for line in text.split('\n') {
        let _ = loaders::parse_ml1m_rating_line(p, 1, line);
        let _ = loaders::parse_ml100k_rating_line(p, 1, line);
        let _ = loaders::parse_ml1m_movie_line(p, 1, line);
        let _ = loaders::parse_netflix_title_line(p, 1, line);
        let _ = loaders::parse_netflix_date(line);
        let _ = loaders::split_title_year(line);
    }
});
