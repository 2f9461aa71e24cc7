//! SVG figures of the controllability experiments, drawn with `plotters`' SVG backend (text is
//! written as SVG `<text>`, so no system font is read):
//!
//! - [`large_scope_svg`]: Δ_up (solid) and Δ_down (dashed) against alpha, one colour per model;
//! - [`small_scope_svg`]: the mean rank change against alpha, one colour per model;
//! - [`guided_svg`]: one model's "More {genre}" (left) and "Less {genre}" (right) change against
//!   alpha, one colour per genre.
//!
//! Every point carries its standard error as a vertical bar. The functions return the SVG
//! document; writing it is the caller's business.
//!
//! ```
//! use tears_metrics::Aggregate;
//! use tears_model::control::plot::small_scope_svg;
//! use tears_model::control::{Discarded, SmallScopeResult, SmallScopeRow};
//!
//! let row = |alpha: f32, mean: f64| SmallScopeRow {
//!     alpha,
//!     rank_change: Aggregate { mean, std_err: 0.5, counted: 10, excluded: 0 },
//! };
//! let result = SmallScopeResult {
//!     rank_range: (100, 499),
//!     users: 10,
//!     counted: 10,
//!     source: "offline".into(),
//!     discarded: Discarded::default(),
//!     rows: vec![row(0.0, 0.0), row(0.5, 1.0), row(1.0, 2.5)],
//!     per_user: Vec::new(),
//!     edits: Vec::new(),
//! };
//! let svg = small_scope_svg(&[("tears-recvae", &result)]).unwrap();
//! assert!(svg.starts_with("<svg") && svg.contains("tears-recvae"));
//! ```

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{GuidedCell, GuidedResult, LargeScopeResult, SmallScopeResult};
use crate::error::{Result, TearsError};

/// Width and height of a one-panel figure, in SVG pixels.
const SIZE: (u32, u32) = (760, 480);

/// A palette that stays distinct for up to ten series (Tableau 10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn plot_error(e: impl std::fmt::Display) -> TearsError {
    TearsError::Plot(e.to_string())
}

/// One line of a panel: (alpha, mean, standard error) points.
struct Series {
    label: String,
    points: Vec<(f32, f64, f64)>,
    colour: RGBColor,
    dashed: bool,
}

/// The y range covering every point with its error bar, zero included, with a small margin.
fn y_range(series: &[Series]) -> std::ops::Range<f64> {
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for (_, m, se) in series.iter().flat_map(|s| &s.points) {
        if m.is_finite() && se.is_finite() {
            lo = lo.min(m - se);
            hi = hi.max(m + se);
        }
    }
    let pad = ((hi - lo) * 0.08).max(1e-3);
    (lo - pad)..(hi + pad)
}

/// Draws `series` on `area` against alpha in [0, 1].
fn panel(area: &DrawingArea<SVGBackend<'_>, Shift>, title: &str, y_label: &str, series: &[Series]) -> Result<()> {
    let y = y_range(series);
    // Enough decimals to tell about ten ticks apart, whatever the scale (Δ of 0.004 or ranks
    // of 30).
    let decimals = (-((y.end - y.start) / 10.0).log10()).ceil().clamp(0.0, 6.0) as usize;
    let tiny = 0.5 * 10f64.powi(-(decimals as i32));
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.02f32..1.02f32, y)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("alpha (0 = history only, 1 = text only)")
        .y_desc(y_label)
        .x_labels(11)
        .max_light_lines(1)
        .y_label_formatter(&|v| format!("{:.*}", decimals, if v.abs() < tiny { 0.0 } else { *v }))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(plot_error)?;
    // The zero line: above it the edit moved the list the way it says.
    chart
        .draw_series(LineSeries::new([(0.0f32, 0.0f64), (1.0, 0.0)], BLACK.mix(0.6).stroke_width(1)))
        .map_err(plot_error)?;
    for s in series {
        let style = s.colour.stroke_width(2);
        let points: Vec<(f32, f64)> = s.points.iter().filter(|p| p.1.is_finite()).map(|&(a, m, _)| (a, m)).collect();
        let drawn = if s.dashed {
            chart.draw_series(DashedLineSeries::new(points.clone(), 8, 5, style)).map_err(plot_error)?
        } else {
            chart.draw_series(LineSeries::new(points.clone(), style)).map_err(plot_error)?
        };
        let (c, dashed) = (s.colour, s.dashed);
        drawn.label(s.label.clone()).legend(move |(x, y)| {
            let end = if dashed { x + 9 } else { x + 18 };
            PathElement::new(vec![(x, y), (end, y)], c.stroke_width(2))
        });
        chart
            .draw_series(
                s.points
                    .iter()
                    .filter(|p| p.1.is_finite() && p.2.is_finite() && p.2 > 0.0)
                    .map(|&(a, m, se)| ErrorBar::new_vertical(a, m - se, m, m + se, s.colour.stroke_width(1), 6)),
            )
            .map_err(plot_error)?;
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, s.colour.filled()))).map_err(plot_error)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(plot_error)?;
    Ok(())
}

fn check_models<T>(models: &[(&str, &T)]) -> Result<()> {
    if models.is_empty() {
        return Err(TearsError::Plot("no results to draw".into()));
    }
    Ok(())
}

/// Renders `draw` on a white canvas of `size` and returns the SVG document.
fn render(size: (u32, u32), draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<()>) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        draw(&root)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// Δ_up (solid) and Δ_down (dashed) of the large-scope experiment against alpha, one colour per
/// `(label, result)`.
///
/// # Errors
/// No results; a drawing failure.
pub fn large_scope_svg(models: &[(&str, &LargeScopeResult)]) -> Result<String> {
    check_models(models)?;
    let mut series = Vec::new();
    for (i, (label, r)) in models.iter().enumerate() {
        let up = r.rows.iter().map(|row| (row.alpha, row.delta_up.mean, row.delta_up.std_err)).collect();
        let down = r.rows.iter().map(|row| (row.alpha, row.delta_down.mean, row.delta_down.std_err)).collect();
        series.push(Series { label: format!("{label} Δ_up"), points: up, colour: colour(i), dashed: false });
        series.push(Series { label: format!("{label} Δ_down"), points: down, colour: colour(i), dashed: true });
    }
    let k = models[0].1.k;
    let title = format!("Large-scope edit: swap favourite and least favourite genre (genre-NDCG@{k})");
    render(SIZE, |root| panel(root, &title, "Δ (positive = the edit worked)", &series))
}

/// The small-scope experiment's mean rank change (positive = moved up) against alpha, one
/// colour per `(label, result)`.
///
/// # Errors
/// No results; a drawing failure.
pub fn small_scope_svg(models: &[(&str, &SmallScopeResult)]) -> Result<String> {
    check_models(models)?;
    let series: Vec<Series> = models
        .iter()
        .enumerate()
        .map(|(i, (label, r))| Series {
            label: format!("{label} ({} users)", r.counted),
            points: r.rows.iter().map(|row| (row.alpha, row.rank_change.mean, row.rank_change.std_err)).collect(),
            colour: colour(i),
            dashed: false,
        })
        .collect();
    let (lo, hi) = models[0].1.rank_range;
    let title = format!("Small-scope edit: describe a held-out item ranked {lo}..={hi}");
    render(SIZE, |root| panel(root, &title, "rank change (positive = moved up)", &series))
}

/// One model's guided experiment: "More {genre}" (left panel) and "Less {genre}" (right, absent
/// for GERS) change of genre-NDCG@k against alpha, one colour per genre.
///
/// # Errors
/// A result without genres; a drawing failure.
pub fn guided_svg(label: &str, result: &GuidedResult) -> Result<String> {
    if result.genres.is_empty() {
        return Err(TearsError::Plot("the guided result has no genres".into()));
    }
    let lines = |cells: fn(&super::GuidedGenre) -> &Vec<GuidedCell>| -> Vec<Series> {
        result
            .genres
            .iter()
            .enumerate()
            .filter(|(_, g)| !cells(g).is_empty())
            .map(|(i, g)| Series {
                label: g.genre.clone(),
                points: cells(g).iter().map(|c| (c.alpha, c.change.mean, c.change.std_err)).collect(),
                colour: colour(i),
                dashed: false,
            })
            .collect()
    };
    let more = lines(|g| &g.more);
    let less = lines(|g| &g.less);
    let y = format!("change of genre-NDCG@{} vs {}", result.k, result.baseline);
    let width = if less.is_empty() { SIZE.0 } else { 2 * SIZE.0 };
    render((width, SIZE.1), |root| {
        if less.is_empty() {
            return panel(root, &format!("{label}: \"More {{genre}}\""), &y, &more);
        }
        let (left, right) = root.split_horizontally(SIZE.0);
        panel(&left, &format!("{label}: \"More {{genre}}\" (should rise)"), &y, &more)?;
        panel(&right, &format!("{label}: \"Less {{genre}}\" (should fall)"), &y, &less)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{Discarded, GuidedGenre, LargeScopeRow};
    use tears_metrics::Aggregate;

    fn agg(mean: f64, std_err: f64) -> Aggregate {
        Aggregate { mean, std_err, counted: 5, excluded: 0 }
    }

    fn large(scale: f64) -> LargeScopeResult {
        LargeScopeResult {
            k: 20,
            users: 6,
            counted: 5,
            source: "offline".into(),
            discarded: Discarded::default(),
            rows: (0..=10)
                .map(|i| {
                    let a = i as f32 / 10.0;
                    LargeScopeRow {
                        alpha: a,
                        delta_up: agg(scale * f64::from(a), 0.01),
                        delta_down: agg(-scale * f64::from(a), 0.02),
                    }
                })
                .collect(),
            per_user: Vec::new(),
            edits: Vec::new(),
        }
    }

    fn count(svg: &str, needle: &str) -> usize {
        svg.matches(needle).count()
    }

    #[test]
    fn the_large_scope_figure_has_a_solid_and_a_dashed_line_per_model_and_their_labels() {
        let (a, b) = (large(0.3), large(0.1));
        let svg = large_scope_svg(&[("tears-recvae", &a), ("gers-none", &b)]).expect("a figure");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        for label in ["tears-recvae Δ_up", "tears-recvae Δ_down", "gers-none Δ_up", "gers-none Δ_down"] {
            assert_eq!(count(&svg, label), 1, "{label}");
        }
        // Each model's colour draws its lines, error bars and points.
        for c in ["#1F77B4", "#FF7F0E"] {
            assert!(count(&svg, c) > 22, "{c}");
        }
        // The y axis covers the largest point with its error bar (0.3 + 0.01), labelled to two
        // decimals at this scale.
        assert!(svg.contains("\n0.30\n") && svg.contains("\n-0.30\n"), "y labels reach ±0.3");
        assert!(large_scope_svg(&[]).is_err());
    }

    #[test]
    fn the_guided_figure_has_a_panel_per_direction_only_when_less_was_run() {
        let cells = |s: f64| (0..=10).map(|i| GuidedCell { alpha: i as f32 / 10.0, change: agg(s, 0.0) }).collect();
        let genre = |name: &str, less: bool| GuidedGenre {
            genre: name.into(),
            items: 100,
            more: cells(0.1),
            less: if less { cells(-0.1) } else { Vec::new() },
        };
        let text = GuidedResult {
            k: 20,
            users: 5,
            baseline: "alpha = 0".into(),
            genres: vec![genre("Drama", true), genre("Sci-Fi", true)],
            edits: Vec::new(),
        };
        let svg = guided_svg("tears-recvae", &text).expect("a figure");
        assert!(svg.contains("Less {genre}") && svg.contains("More {genre}"));
        assert!(svg.contains("width=\"1520\""));
        assert_eq!(count(&svg, "\nSci-Fi\n"), 2, "a legend entry per panel");
        let gers = GuidedResult { genres: vec![genre("Drama", false)], ..text.clone() };
        let svg = guided_svg("gers-none", &gers).expect("a figure");
        assert!(!svg.contains("Less") && svg.contains("width=\"760\""));
        assert!(guided_svg("x", &GuidedResult { genres: Vec::new(), ..text }).is_err());
    }
}
