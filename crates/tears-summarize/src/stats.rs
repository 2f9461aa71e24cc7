//! Summary statistics (the talk's "Summaries are user-specific" table): length in words, and the
//! word-level edit distance and BLEU between pairs of different users' summaries, so a reader
//! sees whether summaries say something particular about each user or read alike.
//!
//! ```
//! use tears_summarize::stats::{bleu, word_edit_distance};
//! assert_eq!(word_edit_distance("likes dark comedies", "likes light comedies"), 1);
//! assert!((bleu("the cat sat on the mat", "the cat sat on the mat") - 1.0).abs() < 1e-12);
//! ```

use std::collections::HashMap;
use std::sync::LazyLock;

use rand::{Rng, SeedableRng};
use regex::Regex;
use serde::{Deserialize, Serialize};

/// The words of a summary: whitespace-separated, without the leading `Summary:` label the TEARS
/// prompt asks for (a format marker, not content).
pub fn words(text: &str) -> Vec<&str> {
    let t = text.trim_start();
    let t = t.strip_prefix("Summary:").unwrap_or(t);
    t.split_whitespace().collect()
}

/// The Levenshtein distance between the two texts' word sequences ([`words`]): insertions,
/// deletions and substitutions of whole words.
pub fn word_edit_distance(a: &str, b: &str) -> usize {
    strsim::generic_levenshtein(&words(a), &words(b))
}

static PUNCT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"([\{-~\[-` -&\(-\+:-@/])").expect("a valid pattern"));
static PERIOD_COMMA_AFTER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"([^0-9])([\.,])").expect("a valid pattern"));
static PERIOD_COMMA_BEFORE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"([\.,])([^0-9])").expect("a valid pattern"));
static DIGIT_DASH: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"([0-9])(-)").expect("a valid pattern"));

/// sacrebleu's default `13a` tokenizer (the mteval-v13a rules): punctuation split off, periods
/// and commas split unless between digits, a dash after a digit split.
pub fn tokenize_13a(text: &str) -> Vec<String> {
    let mut line = text.replace("<skipped>", "").replace("-\n", "").replace('\n', " ");
    if line.contains('&') {
        line = line.replace("&quot;", "\"").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
    }
    let line = PUNCT.replace_all(&format!(" {line} "), " $1 ").into_owned();
    let line = PERIOD_COMMA_AFTER.replace_all(&line, "$1 $2 ").into_owned();
    let line = PERIOD_COMMA_BEFORE.replace_all(&line, " $1 $2").into_owned();
    let line = DIGIT_DASH.replace_all(&line, "$1 $2 ").into_owned();
    line.split_whitespace().map(str::to_string).collect()
}

fn ngrams(tokens: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut m = HashMap::new();
    for w in tokens.windows(n) {
        *m.entry(w).or_insert(0) += 1;
    }
    m
}

/// Sentence BLEU of `hypothesis` against one `reference`, in [0, 1], as sacrebleu's
/// `sentence_bleu` computes it by default: `13a` tokens, case kept, clipped n-gram precisions up
/// to 4-grams, the brevity penalty, `exp` smoothing of zero counts and the effective order (orders
/// with no hypothesis n-gram left out). sacrebleu reports it × 100.
pub fn bleu(hypothesis: &str, reference: &str) -> f64 {
    let hyp = tokenize_13a(hypothesis);
    let refs = tokenize_13a(reference);
    const ORDER: usize = 4;
    let (mut correct, mut total) = ([0usize; ORDER], [0usize; ORDER]);
    for n in 1..=ORDER {
        let h = ngrams(&hyp, n);
        let r = ngrams(&refs, n);
        for (g, c) in &h {
            correct[n - 1] += (*c).min(r.get(g).copied().unwrap_or(0));
            total[n - 1] += c;
        }
    }
    if correct.iter().all(|&c| c == 0) {
        return 0.0;
    }
    let mut precisions = [0.0f64; ORDER];
    let mut smooth = 1.0f64;
    let mut order = ORDER;
    for n in 1..=ORDER {
        if total[n - 1] == 0 {
            break;
        }
        order = n;
        precisions[n - 1] = if correct[n - 1] == 0 {
            smooth *= 2.0;
            1.0 / (smooth * total[n - 1] as f64)
        } else {
            correct[n - 1] as f64 / total[n - 1] as f64
        };
    }
    let (h, r) = (hyp.len() as f64, refs.len() as f64);
    let bp = if h >= r { 1.0 } else { (1.0 - r / h).exp() };
    bp * (precisions[..order].iter().map(|p| p.ln()).sum::<f64>() / order as f64).exp()
}

/// Lengths in words over a set of summaries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LengthStats {
    /// Mean.
    pub mean: f64,
    /// Standard deviation (population).
    pub std: f64,
    /// Shortest.
    pub min: usize,
    /// Longest.
    pub max: usize,
    /// 10th percentile (nearest rank).
    pub p10: usize,
    /// Median.
    pub median: usize,
    /// 90th percentile.
    pub p90: usize,
}

/// Mean ± std of a measure over pairs of different users' summaries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairStats {
    /// Pairs measured.
    pub pairs: usize,
    /// Mean.
    pub mean: f64,
    /// Standard deviation (population).
    pub std: f64,
}

/// The statistics of one summaries file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryStats {
    /// Summaries counted.
    pub summaries: usize,
    /// Their lengths in words.
    pub words: LengthStats,
    /// Word-level edit distance between two users' summaries.
    pub edit_distance: PairStats,
    /// Sentence BLEU of one user's summary against another's, in [0, 1].
    pub bleu: PairStats,
    /// The seed of the pair sample.
    pub seed: u64,
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The statistics of `texts`: lengths over all of them; edit distance and BLEU over `pairs`
/// pairs of two different summaries drawn uniformly with `seed` (every pair when there are fewer;
/// BLEU takes the first of a pair as hypothesis). `None` for fewer than two texts.
pub fn summary_stats(texts: &[&str], pairs: usize, seed: u64) -> Option<SummaryStats> {
    let n = texts.len();
    if n < 2 {
        return None;
    }
    let mut lengths: Vec<usize> = texts.iter().map(|t| words(t).len()).collect();
    lengths.sort_unstable();
    let rank = |q: f64| lengths[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
    let (mean, std) = mean_std(&lengths.iter().map(|&l| l as f64).collect::<Vec<_>>());
    let words = LengthStats {
        mean,
        std,
        min: lengths[0],
        max: lengths[n - 1],
        p10: rank(0.1),
        median: rank(0.5),
        p90: rank(0.9),
    };
    let all = n * (n - 1) / 2;
    let chosen: Vec<(usize, usize)> = if all <= pairs {
        (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).collect()
    } else {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..pairs)
            .map(|_| {
                let i = rng.random_range(0..n);
                let j = (i + rng.random_range(1..n)) % n;
                (i, j)
            })
            .collect()
    };
    let edits: Vec<f64> = chosen.iter().map(|&(i, j)| word_edit_distance(texts[i], texts[j]) as f64).collect();
    let bleus: Vec<f64> = chosen.iter().map(|&(i, j)| bleu(texts[i], texts[j])).collect();
    let (em, es) = mean_std(&edits);
    let (bm, bs) = mean_std(&bleus);
    Some(SummaryStats {
        summaries: n,
        words,
        edit_distance: PairStats { pairs: chosen.len(), mean: em, std: es },
        bleu: PairStats { pairs: chosen.len(), mean: bm, std: bs },
        seed,
    })
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;

    use super::*;

    /// sacrebleu 2.6.0's `sentence_bleu(h, [r]).score / 100` on these pairs (its default settings).
    #[test]
    fn bleu_agrees_with_sacrebleu() {
        for (h, r, expected) in [
            ("the cat sat on the mat", "the cat sat on the mat", 1.0),
            ("the cat sat on the mat", "the cat is on the mat", 0.3799178428257963),
            (
                "Summary: The user enjoys sci-fi, action and thrillers.",
                "Summary: The user enjoys romantic comedies, and dramas.",
                0.3945881255591768,
            ),
            ("He paid $3.50, then left.", "He paid $3.50 and left!", 0.3655552228545123),
            ("a b c", "x y z", 0.0),
            ("short", "a much longer reference sentence here", 0.0),
            (
                "The 1990s-era films (e.g. \"Heat\") & noir.",
                "The 1990s films, e.g. Heat, and noir.",
                0.21651956746181064,
            ),
        ] {
            assert_relative_eq!(bleu(h, r), expected, epsilon = 1e-12);
        }
    }

    /// By hand: 5/6 unigrams, 3/5 bigrams, 1/4 trigrams, no 4-gram of 3 (smoothed to 1/(2·3)),
    /// equal lengths: (5/6 · 3/5 · 1/4 · 1/6)^(1/4).
    #[test]
    fn bleu_by_hand() {
        let expected = (5.0f64 / 6.0 * 3.0 / 5.0 * 0.25 / 6.0).powf(0.25);
        assert_relative_eq!(bleu("the cat sat on the mat", "the cat is on the mat"), expected, epsilon = 1e-12);
        // A hypothesis shorter than its reference pays exp(1 − r/h): 3 of 6 words, all matching.
        let bp = (1.0f64 - 6.0 / 3.0).exp();
        assert_relative_eq!(bleu("the cat sat", "the cat sat on the mat"), bp, epsilon = 1e-12);
    }

    #[test]
    fn the_13a_tokens_are_sacrebleus() {
        // sacrebleu's Tokenizer13a on the same line.
        assert_eq!(
            tokenize_13a("The 1990s-era films (e.g. \"Heat\") & noir. He paid $3.50, then left.").join(" "),
            "The 1990s-era films ( e . g . \" Heat \" ) & noir . He paid $ 3.50 , then left ."
        );
    }

    #[test]
    fn edit_distance_counts_whole_words_and_ignores_the_label() {
        assert_eq!(word_edit_distance("Summary: likes dark comedies", "likes dark comedies"), 0);
        assert_eq!(word_edit_distance("likes dark comedies", "likes light comedies a lot"), 3);
        assert_eq!(word_edit_distance("", "one two"), 2);
    }

    #[test]
    fn stats_are_seeded_and_cover_every_pair_when_few() {
        let texts = ["a b c d", "a b x", "p q r s t u", "a"];
        let s = summary_stats(&texts, 100, 7).expect("stats");
        assert_eq!((s.summaries, s.edit_distance.pairs), (4, 6));
        assert_eq!((s.words.min, s.words.max, s.words.median), (1, 6, 3));
        assert_relative_eq!(s.words.mean, 3.5);
        let sampled = summary_stats(&texts, 3, 7).expect("stats");
        assert_eq!(sampled.bleu.pairs, 3);
        assert_eq!(summary_stats(&texts, 3, 7), Some(sampled));
        assert!(summary_stats(&texts[..1], 3, 7).is_none());
        // Identical summaries: distance 0, BLEU 1.
        let same = summary_stats(&["x y z w", "x y z w"], 10, 0).expect("stats");
        assert_eq!((same.edit_distance.mean, same.bleu.mean), (0.0, 1.0));
    }
}
