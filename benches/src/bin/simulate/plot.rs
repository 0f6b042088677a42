//! One SVG per trace: every policy's hit ratio against capacity.

use std::fmt::Display;
use std::path::Path;

use plotters::prelude::*;
use tiercache_benches::{PolicyKind, thousands};

use crate::TraceRun;

const WIDTH: u32 = 960;
const HEIGHT: u32 = 560;
/// Width of the legend column right of the chart.
const LEGEND: u32 = 190;

/// The Okabe–Ito palette, distinguishable with the common colour vision
/// deficiencies; tiercache gets the first, strongest colour. The reference
/// policies at exact capacity take its sky blue (moka synced, beside moka's
/// blue) and two darker shades outside it.
fn color(kind: PolicyKind) -> RGBColor {
    match kind {
        PolicyKind::Tiercache => RGBColor(213, 94, 0),
        PolicyKind::TiercacheExact => RGBColor(240, 170, 120),
        PolicyKind::Lru => RGBColor(0, 0, 0),
        PolicyKind::Opt => RGBColor(120, 120, 120),
        PolicyKind::Moka => RGBColor(0, 114, 178),
        PolicyKind::QuickCache => RGBColor(0, 158, 115),
        PolicyKind::FoyerLfu => RGBColor(204, 121, 167),
        PolicyKind::FoyerS3Fifo => RGBColor(230, 159, 0),
        PolicyKind::Arc => RGBColor(140, 90, 40),
        PolicyKind::Lirs => RGBColor(90, 50, 140),
        PolicyKind::MokaSynced => RGBColor(86, 180, 233),
    }
}

fn style(kind: PolicyKind) -> ShapeStyle {
    ShapeStyle {
        color: color(kind).to_rgba(),
        filled: true,
        stroke_width: if kind == PolicyKind::Tiercache { 3 } else { 2 },
    }
}

/// Draws hit ratio (%) against capacity (log scale) for every policy in
/// `policies`, OPT dashed, into the SVG file `path`.
pub(crate) fn hit_ratio_vs_capacity(
    path: &Path,
    run: &TraceRun,
    policies: &[PolicyKind],
) -> Result<(), String> {
    let fail = |e: &dyn Display| format!("cannot draw {}: {e}", path.display());
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let (plot_area, legend_area) = root.split_horizontally(WIDTH - LEGEND);

    let capacities: Vec<f64> = run.rows.iter().map(|r| r.capacity.max(1) as f64).collect();
    let lo = capacities.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = capacities.iter().copied().fold(1.0, f64::max);
    let lo = if lo.is_finite() { lo } else { 1.0 };
    // A little room either side so the end points are not on the frame.
    let (lo, hi) = (lo / 1.08, hi * 1.08);
    let top = run
        .rows
        .iter()
        .flat_map(|row| policies.iter().filter_map(|&p| row.ratio(p, run.requests)))
        .fold(0.0_f64, f64::max);
    let top = ((top / 10.0).ceil() * 10.0).clamp(10.0, 100.0);

    let mut chart = ChartBuilder::on(&plot_area)
        .caption(
            format!(
                "{}: hit ratio vs capacity ({} requests, {} keys)",
                run.name,
                thousands(run.requests),
                thousands(run.distinct_keys)
            ),
            ("sans-serif", 20),
        )
        .margin(14)
        .x_label_area_size(46)
        .y_label_area_size(54)
        .build_cartesian_2d(
            // Tick marks at the measured capacities, not at powers of ten.
            (lo..hi).log_scale().with_key_points(capacities),
            0.0..top,
        )
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc("capacity (entries, log scale)")
        .y_desc("hit ratio (%)")
        .x_label_formatter(&|x| thousands(x.round() as u64))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| fail(&e))?;

    for &kind in policies {
        let points: Vec<(f64, f64)> = run
            .rows
            .iter()
            .filter_map(|row| Some((row.capacity as f64, row.ratio(kind, run.requests)?)))
            .collect();
        if kind == PolicyKind::Opt {
            chart
                .draw_series(DashedLineSeries::new(points.clone(), 8, 5, style(kind)))
                .map_err(|e| fail(&e))?;
        } else {
            chart
                .draw_series(LineSeries::new(points.clone(), style(kind)))
                .map_err(|e| fail(&e))?;
        }
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&p| Circle::new(p, 3, style(kind).filled())),
            )
            .map_err(|e| fail(&e))?;
    }

    // The legend has its own column so it never hides a curve.
    let top_offset = 60;
    for (i, &kind) in policies.iter().enumerate() {
        let y = top_offset + 26 * i as i32;
        legend_area
            .draw(&PathElement::new(vec![(8, y), (40, y)], style(kind)))
            .map_err(|e| fail(&e))?;
        legend_area
            .draw(&Text::new(
                kind.label().to_string(),
                (48, y - 7),
                ("sans-serif", 15).into_font().color(&BLACK),
            ))
            .map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))
}
