//! Every loader on small fixtures written here in the exact real formats: latin-1 titles, quoted
//! commas, CRLF line endings, NULL years, gzip, and malformed lines (strict and lenient).

use std::io::Write;
use std::path::Path;

use tears_data::{DataError, LoadOptions, loaders};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(p, bytes).expect("write fixture");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

const STRICT: LoadOptions = LoadOptions { lenient: false };
const LENIENT: LoadOptions = LoadOptions { lenient: true };

fn assert_parse_error(err: DataError, file: &str, line: u64) {
    match &err {
        DataError::Parse { path, line: l, .. } => {
            assert!(path.ends_with(file), "error names {}: {err}", path.display());
            assert_eq!(*l, line, "{err}");
        }
        other => panic!("expected a parse error at {file}:{line}, got {other}"),
    }
}

#[test]
fn ml100k_fixture() {
    let dir = tempfile::tempdir().expect("tmp");
    let flags = |on: &[usize]| -> String {
        (0..19).map(|g| if on.contains(&g) { "1" } else { "0" }).collect::<Vec<_>>().join("|")
    };
    let mut item = format!("1|Toy Story (1995)|01-Jan-1995||http://x|{}\n", flags(&[3, 4, 5])).into_bytes();
    item.extend_from_slice(format!("2|Caf\u{e9} (1996)|01-Jan-1996||http://y|{}\n", flags(&[8])).as_bytes());
    // latin-1 byte for é
    let latin = String::from_utf8(item.clone()).expect("utf8").replace('é', "\u{0}");
    let mut item = latin.into_bytes();
    for b in item.iter_mut() {
        if *b == 0 {
            *b = 0xe9;
        }
    }
    item.extend_from_slice(format!("267|unknown||||{}\n", flags(&[0])).as_bytes());
    write(dir.path(), "u.item", &item);
    write(dir.path(), "u.data", b"1\t1\t5\t874965758\n2\t2\t3\t876893171\n2\t267\t4\t876893172\n");
    let d = loaders::load_ml100k(dir.path(), &STRICT).expect("load");
    assert_eq!(d.events.len(), 3);
    assert_eq!(d.items[1].title, "Café");
    assert_eq!(d.items[1].year, Some(1996));
    assert_eq!(d.items[0].genres, vec!["Animation", "Children's", "Comedy"]);
    assert_eq!(d.items[2].year, None);

    write(dir.path(), "u.data", b"1\t1\t5\t874965758\n1\tx\t5\t1\n1\t2\t4\n");
    let err = loaders::load_ml100k(dir.path(), &STRICT).expect_err("bad item id");
    assert_parse_error(err, "u.data", 2);
    let d = loaders::load_ml100k(dir.path(), &LENIENT).expect("lenient");
    assert_eq!((d.events.len(), d.skipped_records), (1, 2));
}

#[test]
fn ml1m_plain_gzip_latin1_crlf_and_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut movies = b"1::Toy Story (1995)::Animation|Children's|Comedy\r\n".to_vec();
    movies.extend_from_slice(b"2::Cit\xe9 des enfants perdus, La (1995)::Adventure|Sci-Fi\r\n");
    write(dir.path(), "movies.dat", &movies);
    let ratings = b"1::1::5::978300760\r\n1::2::3::978302109\r\n2::2::4::978300000\r\n";
    write(dir.path(), "ratings.dat.gz", &gzip(ratings));
    let d = loaders::load_ml1m(dir.path(), &STRICT).expect("gzip ratings");
    assert_eq!(d.events.len(), 3);
    assert_eq!(d.items[1].title, "Cité des enfants perdus, La");
    assert_eq!(d.items[1].genres, vec!["Adventure", "Sci-Fi"]);
    assert_eq!(d.events[1].timestamp, 978_302_109);

    // A plain ratings.dat takes precedence; a partial file name is found too.
    std::fs::remove_file(dir.path().join("ratings.dat.gz")).expect("rm");
    write(dir.path(), "ratings_partial_users1-2.dat.gz", &gzip(ratings));
    assert_eq!(loaders::load_ml1m(dir.path(), &STRICT).expect("partial").events.len(), 3);
    write(dir.path(), "ratings.dat", b"1::1::5::978300760\n1::2::five::978302109\n");
    assert_parse_error(loaders::load_ml1m(dir.path(), &STRICT).expect_err("bad rating"), "ratings.dat", 2);
    write(dir.path(), "ratings.dat", b"1::1::5::978300760\n1::2::9999::978302109\n");
    assert_parse_error(loaders::load_ml1m(dir.path(), &STRICT).expect_err("rating range"), "ratings.dat", 2);

    std::fs::remove_file(dir.path().join("movies.dat")).expect("rm");
    let err = loaders::load_ml1m(dir.path(), &STRICT).expect_err("missing movies");
    assert!(
        matches!(&err, DataError::MissingFile { path, dataset } if path.ends_with("movies.dat") && dataset.contains("1M")),
        "{err}"
    );
}

#[test]
fn ml_latest_quoted_titles_half_stars_tags() {
    let dir = tempfile::tempdir().expect("tmp");
    write(
        dir.path(),
        "movies.csv",
        "movieId,title,genres\r\n1,Toy Story (1995),Adventure|Animation\r\n11,\"American President, The (1995)\",Comedy|Drama|Romance\r\n99,\"Title with \"\"quotes\"\" (2001)\",(no genres listed)\r\n".as_bytes(),
    );
    write(
        dir.path(),
        "ratings.csv",
        b"userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n1,11,3.5,964981247\r\n2,99,0.5,964982224\r\n",
    );
    write(dir.path(), "tags.csv", b"userId,movieId,tag,timestamp\n2,11,politics,1\n3,11,romance,2\n4,11,Politics,3\n");
    let d = loaders::load_ml_latest(dir.path(), &STRICT).expect("load");
    assert_eq!(d.events.len(), 3);
    let pres = d.items.iter().find(|i| i.id == 11).expect("11");
    assert_eq!(pres.title, "American President, The");
    assert_eq!(pres.year, Some(1995));
    assert_eq!(pres.tags, vec!["politics", "romance"], "most frequent tag first, case-folded");
    let q = d.items.iter().find(|i| i.id == 99).expect("99");
    assert_eq!(q.title, "Title with \"quotes\"");
    assert!(q.genres.is_empty());
    assert_eq!(d.events[1].rating, 3.5);
    assert_eq!(d.stats(3.5).positives, 1, "3.5 is not positive with half stars");

    write(dir.path(), "ratings.csv", b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,11,,964981247\n");
    assert_parse_error(loaders::load_ml_latest(dir.path(), &STRICT).expect_err("empty rating"), "ratings.csv", 3);
    let d = loaders::load_ml_latest(dir.path(), &LENIENT).expect("lenient");
    assert_eq!((d.events.len(), d.skipped_records), (1, 1));

    // The bad rating is on line 3 whatever the line endings, and the message names the field.
    for (endings, ratings) in [
        ("LF", &b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,abc,964981247\n"[..]),
        ("CRLF", b"userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n1,3,abc,964981247\r\n"),
        ("mixed", b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\r\n\r\n1,3,abc,964981247\n"),
    ] {
        write(dir.path(), "ratings.csv", ratings);
        let err = loaders::load_ml_latest(dir.path(), &STRICT).expect_err("bad rating");
        let line = if endings == "mixed" { 4 } else { 3 };
        let msg = err.to_string();
        assert_parse_error(err, "ratings.csv", line);
        assert!(msg.contains("found \"abc\" in \"1,3,abc,964981247\""), "{endings}: {msg}");
    }
    // CRLF records parse whole: no '\r' is left on a last field.
    write(dir.path(), "ratings.csv", b"userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n");
    let d = loaders::load_ml_latest(dir.path(), &STRICT).expect("crlf");
    assert_eq!(d.events[0].timestamp, 964_982_703);
    assert!(d.items.iter().all(|i| !i.genres.iter().any(|g| g.contains('\r'))));
}

#[test]
fn netflix_combined_and_per_movie_files() {
    let dir = tempfile::tempdir().expect("tmp");
    write(
        dir.path(),
        "movie_titles.txt",
        b"1,2003,Dinosaur Planet\r\n2,NULL,Isle of Man TT 2004 Review\r\n3,1997,Character, The: A Story, Part 2\r\n4,1994,Caf\xe9 Society\r\n",
    );
    write(
        dir.path(),
        "combined_data_1.txt",
        b"1:\r\n1488844,3,2005-09-06\r\n822109,5,2005-05-13\r\n3:\r\n1488844,4,2004-02-29\r\n",
    );
    write(dir.path(), "genres.csv", b"movieId,genres\n3,Drama|Comedy\n");
    let d = loaders::load_netflix(dir.path(), &STRICT).expect("load");
    assert_eq!(d.events.len(), 3);
    assert_eq!(d.items[1].year, None, "NULL year");
    assert_eq!(d.items[2].title, "Character, The: A Story, Part 2");
    assert_eq!(d.items[3].title, "Café Society");
    assert_eq!(d.items[2].genres, vec!["Drama", "Comedy"]);
    assert_eq!(d.events[2].timestamp, tears_data::loaders::parse_netflix_date("2004-02-29").expect("leap day"));
    assert_eq!(d.events[0].timestamp, 1_125_964_800, "2005-09-06 00:00 UTC");

    // training_set/mv_*.txt when no combined file exists.
    std::fs::remove_file(dir.path().join("combined_data_1.txt")).expect("rm");
    write(dir.path(), "training_set/mv_0000001.txt", b"1:\n1488844,3,2005-09-06\n");
    write(dir.path(), "training_set/mv_0000002.txt", b"2:\n1488844,1,2005-09-07\n");
    let d = loaders::load_netflix(dir.path(), &STRICT).expect("per-movie files");
    assert_eq!(d.events.len(), 2);

    write(dir.path(), "training_set/mv_0000002.txt", b"2:\n1488844,1,2005-02-30\n");
    assert_parse_error(loaders::load_netflix(dir.path(), &STRICT).expect_err("bad date"), "mv_0000002.txt", 2);
    write(dir.path(), "training_set/mv_0000002.txt", b"1488844,1,2005-02-03\n");
    assert_parse_error(loaders::load_netflix(dir.path(), &STRICT).expect_err("no header"), "mv_0000002.txt", 1);
}

#[test]
fn goodbooks_books_tags_and_file_order_time() {
    let dir = tempfile::tempdir().expect("tmp");
    write(
        dir.path(),
        "books.csv",
        "book_id,goodreads_book_id,best_book_id,work_id,books_count,isbn,isbn13,authors,original_publication_year,original_title,title,language_code\n\
1,2767052,2767052,2792775,272,439023483,9.78043902348e+12,Suzanne Collins,2008.0,The Hunger Games,\"The Hunger Games (The Hunger Games, #1)\",eng\n\
2,3,3,4640799,491,439554934,9.78043955493e+12,\"J.K. Rowling, Mary GrandPré\",1997.0,Harry Potter,\"Harry Potter and the Sorcerer's Stone (Harry Potter, #1)\",eng\n\
3,41865,41865,3212258,226,316015849,9.78031601584e+12,Stephenie Meyer,,Twilight,\"Twilight (Twilight, #1)\",en-US\n"
            .as_bytes(),
    );
    write(dir.path(), "tags.csv", b"tag_id,tag_name\n1,to-read\n2,fantasy\n3,ya\n4,dystopian\n5,vampires\n");
    write(
        dir.path(),
        "book_tags.csv",
        b"goodreads_book_id,tag_id,count\n2767052,1,100\n2767052,4,50\n2767052,3,70\n3,2,90\n41865,5,10\n",
    );
    write(dir.path(), "ratings.csv", b"user_id,book_id,rating\n1,258,5\n2,1,4\n1,2,3\n");
    let d = loaders::load_goodbooks(dir.path(), &STRICT).expect("load");
    assert_eq!(d.items[0].genres, vec!["young-adult", "dystopia"], "genres by tag count");
    assert_eq!(d.items[1].genres, vec!["fantasy"]);
    assert!(d.items[2].tags.contains(&"vampires".to_string()));
    assert!(!d.items[0].tags.iter().any(|t| t == "to-read"), "shelf noise is dropped");
    assert_eq!(d.items[2].year, None);
    let times: Vec<i64> = d.events.iter().map(|e| e.timestamp).collect();
    assert_eq!(times, vec![0, 1, 2], "file order is time");
    assert!(d.items[1].tags.iter().any(|t| t == "author:Mary GrandPré"));

    write(dir.path(), "ratings.csv", b"user_id,book_id,rating\n1,258,5\n\"2,1,4\n");
    let err = loaders::load_goodbooks(dir.path(), &STRICT).expect_err("unterminated quote");
    assert!(err.to_string().contains("ratings.csv"), "{err}");
    write(dir.path(), "ratings.csv", b"user,book,rating\n1,258,5\n");
    assert_parse_error(loaders::load_goodbooks(dir.path(), &STRICT).expect_err("bad header"), "ratings.csv", 1);
}

#[test]
fn line_parsers_never_panic_on_garbage() {
    let p = Path::new("x");
    for s in ["", "::", "1::2::3::4::5", "\u{0}\u{ff}", "-1::-2::nan::x", "1\t2\t3", "9999999999999999999999::1::1::1"]
    {
        let _ = loaders::parse_ml1m_rating_line(p, 1, s);
        let _ = loaders::parse_ml100k_rating_line(p, 1, s);
        let _ = loaders::parse_ml1m_movie_line(p, 1, s);
        let _ = loaders::parse_netflix_title_line(p, 1, s);
        assert!(loaders::parse_ml1m_rating_line(p, 1, s).is_err());
    }
    assert!(loaders::parse_ml1m_rating_line(p, 1, "1::2::nan::4").is_err(), "NaN rating rejected");
    // Found by `cargo fuzz run line_parsers`: a huge year overflowed the day arithmetic.
    assert_eq!(loaders::parse_netflix_date("9999999999999999-03-01"), None);
    assert_eq!(loaders::parse_netflix_date("0-01-01"), None);
    assert_eq!(loaders::parse_netflix_date("2005-13-01"), None);
    assert!(loaders::parse_netflix_date("9999-12-31").is_some());
}
