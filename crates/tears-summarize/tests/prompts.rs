//! Golden tests of prompt rendering, template summaries on fixtures, and edits.

use tears_data::WindowEntry;
use tears_summarize::edit;
use tears_summarize::{History, PromptTemplate, Summarizer, TemplateSummarizer};

fn entry(t: i64, title: &str, genres: &[&str], rating: f32) -> WindowEntry {
    WindowEntry {
        item_id: t as u64,
        item: None,
        title: title.to_string(),
        year: Some(1990 + t as i32),
        genres: genres.iter().map(|g| g.to_string()).collect(),
        rating,
        timestamp: 1000 + t,
    }
}

fn fixture() -> History {
    History::from_window(&[
        entry(1, "Alien (1979)", &["Horror", "Sci-Fi"], 2.0),
        entry(2, "Toy Story (1995)", &["Animation", "Children's", "Comedy"], 5.0),
        entry(3, "Heat (1995)", &["Action", "Crime", "Thriller"], 4.5),
        entry(4, "Scream (1996)", &["Horror", "Thriller"], 1.0),
        entry(5, "Airplane! (1980)", &["Comedy"], 4.0),
    ])
}

#[test]
fn golden_movie_prompt() {
    let m = PromptTemplate::movies().render(&fixture());
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].role, "system");
    assert!(m[0].content.starts_with("Task: You will now help me generate a highly detailed summary"));
    assert!(m[0].content.contains("Do not mention any specific movie titles or actors."));
    assert!(m[0].content.ends_with(
        "Summary: {Specific details about the genres the user enjoys}. {Specific details of the plot points the user seems to enjoy}. {Specific details about the genres the user does not enjoy}. {Specific details of the plot points the user does not enjoy but other users may}."
    ));
    let expected = "Here are the movies the user rated, most recent first:

Movie Title: Airplane! (1980)
User Rating: 4
Movie Genres: Comedy

Movie Title: Scream (1996)
User Rating: 1
Movie Genres: Horror, Thriller

Movie Title: Heat (1995)
User Rating: 4.5
Movie Genres: Action, Crime, Thriller

Movie Title: Toy Story (1995)
User Rating: 5
Movie Genres: Animation, Children's, Comedy

Movie Title: Alien (1979)
User Rating: 2
Movie Genres: Horror, Sci-Fi";
    assert_eq!(m[1].role, "user");
    assert_eq!(m[1].content, expected);
}

#[test]
fn golden_books_prompt_and_item_limit() {
    let mut t = PromptTemplate::books();
    t.max_items = 2;
    let m = t.render(&fixture());
    assert!(m[0].content.contains("Do not mention any specific book titles or authors."));
    assert_eq!(
        m[1].content,
        "Here are the books the user rated, most recent first:\n\nBook Title: Airplane! (1980)\nUser Rating: 4\nBook Genres: Comedy\n\nBook Title: Scream (1996)\nUser Rating: 1\nBook Genres: Horror, Thriller"
    );
}

#[test]
fn at_most_fifty_items_most_recent_first() {
    let window: Vec<WindowEntry> = (0..80).map(|t| entry(t, &format!("Film {t}"), &["Drama"], 4.0)).collect();
    let m = PromptTemplate::movies().render(&History::from_window(&window));
    assert_eq!(m[1].content.matches("Movie Title:").count(), 50);
    assert!(m[1].content.contains("Movie Title: Film 79\n"));
    assert!(m[1].content.contains("Movie Title: Film 30\n"));
    assert!(!m[1].content.contains("Movie Title: Film 29\n"));
    assert!(m[1].content.find("Film 79").unwrap_or(usize::MAX) < m[1].content.find("Film 78").unwrap_or(0));
}

#[test]
fn user_template_file_with_all_placeholders() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("p.txt");
    std::fs::write(&p, "### system\nS\n### user\nItems:\n{items}\nEnd {unknown}\n### item\n{index}. {title} [{year}] {rating}/5 {genres} {tags}\n")
        .expect("write");
    let t = PromptTemplate::load(&p).expect("load");
    let m = t.render(&History::from_window(&[entry(1, "A", &["X", "Y"], 3.5)]));
    assert_eq!(m[1].content, "Items:\n1. A [1991] 3.5/5 X, Y \nEnd {unknown}");
    std::fs::write(&p, "### system\nS\n### items\n{items}\n").expect("write");
    let err = PromptTemplate::load(&p).expect_err("bad").to_string();
    assert!(err.contains("p.txt") && err.contains("unknown section"), "{err}");
}

#[test]
fn template_summary_fixture_is_deterministic() {
    let s = TemplateSummarizer::new();
    let a = s.summarize(&fixture()).expect("summary");
    assert_eq!(a, s.summarize(&fixture()).expect("summary"));
    assert_eq!(s.prompt_hash(&fixture()), s.prompt_hash(&fixture()));
    assert_eq!(
        a,
        "Summary: The user enjoys comedy movies. They seem to enjoy witty dialogue and lighthearted situations. \
         The user does not enjoy horror and thriller movies. They are put off by dread, gore and supernatural menace, \
         as well as suspense, danger and tense cat-and-mouse plots, which other viewers may appreciate."
    );
}

#[test]
fn template_summary_uses_tags_of_liked_items() {
    let split = tears_data::prepare(tears_data::DatasetName::Synthetic, &tears_data::PrepareOptions::default())
        .expect("synthetic")
        .split;
    let t = TemplateSummarizer::from_split(&split);
    let mut with_tags = 0;
    for i in 0..split.test.len().min(20) {
        let h = History::from_eval_user(&split, tears_data::split::EvalSet::Test, i).expect("user");
        let s = t.summarize(&h).expect("summary");
        assert!(s.starts_with("Summary: "), "{s}");
        assert_eq!(s.matches(". ").count() + 1, 4, "four parts: {s}");
        with_tags += usize::from(s.contains("recurring elements such as"));
    }
    assert!(with_tags > 0, "no summary used the synthetic items' tags");
}

#[test]
fn prompts_of_evaluation_users_show_their_window_and_no_held_out_item() {
    use tears_data::split::{EvalSet, SummaryWindow};
    let options = tears_data::PrepareOptions {
        protocol: Some(tears_data::Protocol::SummaryWindow(SummaryWindow {
            window: 20,
            min_heldout: 2,
            validation_users: 10,
            test_users: 10,
            fit_to_eligible: false,
        })),
        ..Default::default()
    };
    let split = tears_data::prepare(tears_data::DatasetName::Synthetic, &options).expect("synthetic").split;
    let template = PromptTemplate::movies();
    for (set, users) in [(EvalSet::Validation, &split.validation), (EvalSet::Test, &split.test)] {
        assert!(!users.is_empty());
        for i in 0..users.len() {
            let h = History::from_eval_user(&split, set, i).expect("user");
            let prompt = &template.render(&h)[1].content;
            let shown = prompt.matches("Movie Title: ").count();
            assert_eq!(shown, users.windows[i].len().min(50));
            for r in users.heldout.row(i) {
                let title = &split.items[r.item as usize].title;
                assert!(!prompt.contains(&format!("Movie Title: {title}\n")), "held-out {title:?} in a prompt");
            }
        }
    }
}

#[test]
fn swap_genres_with_synonyms_and_case() {
    let e = edit::swap_genres(
        "Summary: Loves Science Fiction and kids movies; avoids children's tales. Sci-fi is great.",
        "Sci-Fi",
        "Children's",
    );
    assert_eq!(e.text, "Summary: Loves Children's and sci-fi movies; avoids sci-fi tales. Children's is great.");
    assert_eq!(e.record.changes.len(), 4);
    assert_eq!(e.record.changes[0].from, "Science Fiction");
    // Words containing a genre are not touched.
    let e = edit::swap_genres("Summary: warfare and war, dramatically drama.", "War", "Drama");
    assert_eq!(e.text, "Summary: warfare and drama, dramatically war.");
}

#[test]
fn edits_record_what_changed() {
    let e = edit::insert_sentence("Summary: x.", "a heist with a twist");
    assert_eq!(e.record.kind, "insert_sentence");
    assert_eq!(e.record.changes[0].to, " A heist with a twist.");
    let e = edit::guided("Summary: x.", "Horror", false, "movies");
    assert_eq!(e.text, "Summary: Less Horror movies");
    assert_eq!(e.record.params["direction"], "less");
}

#[test]
fn favourite_parsing_is_strict() {
    let g: Vec<String> = ["Action", "Sci-Fi", "Children's"].iter().map(|s| s.to_string()).collect();
    assert_eq!(
        edit::parse_favourites("Favorite: [Science Fiction]\nLeast Favorite: [kids]", &g),
        Ok(("Sci-Fi".into(), "Children's".into()))
    );
    assert!(edit::parse_favourites("Favorite: Action", &g).is_err());
    assert!(edit::parse_favourites("Favorite: Action\nLeast Favorite: Action", &g).is_err());
    assert!(edit::parse_favourites("Favorite: Polka\nLeast Favorite: Action", &g).is_err());
}
