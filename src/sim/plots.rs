//! Plots of a run, as SVG: propagation CDF, coverage over time, per-node bandwidth, and (with
//! attackers) honest propagation with vs without the attack.

use std::path::Path;

use plotters::prelude::*;

use super::record::{Run, TxRecord};

/// Points of an empirical CDF of `values`: (value, fraction ≤ value), about 400 of them, the
/// last at the largest value (the slowest delivery).
fn cdf(mut values: Vec<f64>) -> Vec<(f64, f64)> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let step = n.div_ceil(400).max(1);
    let mut points: Vec<(f64, f64)> =
        values.iter().enumerate().step_by(step).map(|(i, &v)| (v, (i + 1) as f64 / n as f64)).collect();
    if n > 0 && !(n - 1).is_multiple_of(step) {
        points.push((values[n - 1], 1.0));
    }
    points
}

/// Delays (ms) of the deliveries to the nodes honest in `run`.
fn deliveries_ms(txs: &[TxRecord], run: &Run) -> Vec<f64> {
    let honest = |node: u32| run.nodes[node as usize].is_honest();
    txs.iter().flat_map(|t| t.delays_among(honest)).map(|d| d as f64 / 1e6).collect()
}

pub(super) type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// One line on a chart: its legend, its points, its colour.
pub(super) type Series<'a> = (&'a str, Vec<(f64, f64)>, RGBColor);

/// The `i`th of a few distinguishable line colours (cycling).
pub(super) fn palette(i: usize) -> RGBColor {
    const COLOURS: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    COLOURS[i % COLOURS.len()]
}

/// The files [`write()`] may produce.
pub const FILES: [&str; 4] =
    ["propagation_cdf.svg", "coverage_over_time.svg", "bandwidth_per_node.svg", "attack_comparison.svg"];

pub(super) fn line_chart(path: &Path, title: &str, x_label: &str, y_label: &str, series: &[Series<'_>]) -> PlotResult {
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let x_max = series.iter().flat_map(|s| s.1.iter().map(|p| p.0)).fold(1.0, f64::max);
    let y_max = series.iter().flat_map(|s| s.1.iter().map(|p| p.1)).fold(1e-9, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max * 1.02, 0.0..y_max * 1.05)?;
    chart.configure_mesh().x_desc(x_label).y_desc(y_label).draw()?;
    for (name, points, color) in series {
        let color = *color;
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

/// Writes the plots into `dir`.
///
/// # Errors
/// Drawing or file errors.
pub fn write(dir: &Path, run: &Run, baseline: Option<&Run>) -> PlotResult {
    let (txs, honest_nodes) = (&run.txs, run.honest_nodes().count());
    let delivered = cdf(deliveries_ms(txs, run));
    line_chart(
        &dir.join("propagation_cdf.svg"),
        "Propagation: delay from injection to pooling",
        "milliseconds",
        "fraction of (tx, node) deliveries",
        &[("all deliveries", delivered.clone(), BLUE)],
    )?;

    // Mean coverage over time: at each delay, the fraction of honest nodes holding each tx.
    let horizon = delivered.last().map_or(1.0, |p| p.0);
    let coverage: Vec<(f64, f64)> = (0..=200)
        .map(|i| {
            let t = horizon * f64::from(i) / 200.0;
            let mean =
                txs.iter().map(|tx| tx.delays.iter().filter(|&&d| d as f64 / 1e6 <= t).count() as f64).sum::<f64>()
                    / (txs.len().max(1) * honest_nodes.max(1)) as f64;
            (t, mean)
        })
        .collect();
    line_chart(
        &dir.join("coverage_over_time.svg"),
        "Coverage over time",
        "milliseconds since injection",
        "mean fraction of honest nodes",
        &[("coverage", coverage, GREEN)],
    )?;

    // Mean upload rate over the run, in kbit/s.
    let seconds = (run.virtual_ns as f64 / 1e9).max(1e-9);
    let mut up = run.honest_uploads();
    up.sort_unstable_by_key(|&(payload, control)| payload + control);
    let to_rate = |(i, bytes): (usize, u64)| (i as f64, bytes as f64 * 8.0 / 1e3 / seconds);
    let series: Vec<Series<'_>> = if run.control_bytes_measured() {
        vec![
            ("payload", up.iter().map(|b| b.0).enumerate().map(to_rate).collect(), BLUE),
            ("control", up.iter().map(|b| b.1).enumerate().map(to_rate).collect(), RED),
        ]
    } else {
        vec![(
            "all bytes (payload and control not told apart)",
            up.iter().map(|b| b.0).enumerate().map(to_rate).collect(),
            BLUE,
        )]
    };
    line_chart(
        &dir.join("bandwidth_per_node.svg"),
        &format!("Upload rate per honest node over {seconds:.1} s (nodes sorted by total)"),
        "node rank",
        "kbit/s uploaded (mean over the run)",
        &series,
    )?;

    if let Some(baseline) = baseline {
        line_chart(
            &dir.join("attack_comparison.svg"),
            "Propagation to the honest nodes, with the attack and with its nodes honest",
            "milliseconds",
            "fraction of (tx, node) deliveries",
            &[("with attack", delivered, RED), ("attackers honest", cdf(deliveries_ms(&baseline.txs, run)), BLUE)],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::cdf;

    #[test]
    fn the_cdf_reaches_the_slowest_value() {
        for n in [1, 2, 399, 400, 401, 801, 1_000, 12_345] {
            let points = cdf((0..n).map(f64::from).collect());
            assert_eq!(points.last(), Some(&(f64::from(n - 1), 1.0)), "{n} values");
            assert!(points.len() <= 402);
        }
    }
}
