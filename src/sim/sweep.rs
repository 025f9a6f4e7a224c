//! `tidepool sim sweep`: the DES over a grid of scenario values (every combination of each
//! swept setting's values), each point repeated on derived seeds, into one CSV row per point with
//! 95% confidence intervals and one plot per swept setting.
//!
//! A setting is named by its path in the scenario file (`gossipsub.d`, `topology.degree`,
//! `adversaries[0].fraction`, `tx_size`, ...), so every setting can be swept; each point's
//! scenario is range-checked as any other before it runs.

use std::{fmt::Write as _, path::Path};

use super::{
    Scenario, plots,
    report::{Interval, Repeats, Summary},
};

/// One swept setting and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Its path in the scenario file.
    pub key: String,
    pub values: Vec<toml::Value>,
}

impl Axis {
    /// Parses `key=v1,v2,...`: integers, then numbers, booleans, else strings.
    ///
    /// # Errors
    /// Without `=` or values.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (key, values) = text.split_once('=').ok_or_else(|| format!("{text:?}: expected key=value,value,..."))?;
        let values: Vec<toml::Value> = values
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<i64>()
                    .map(toml::Value::Integer)
                    .or_else(|_| v.parse::<f64>().map(toml::Value::Float))
                    .or_else(|_| v.parse::<bool>().map(toml::Value::Boolean))
                    .unwrap_or_else(|_| toml::Value::String(v.to_owned()))
            })
            .collect();
        if key.trim().is_empty() || values.is_empty() {
            return Err(format!("{text:?}: expected key=value,value,..."));
        }
        Ok(Self { key: key.trim().to_owned(), values })
    }
}

/// `scenario` with the setting at `path` set to `value`.
///
/// # Errors
/// A path that does not lead to a setting, or a value of the wrong type.
pub fn with_setting(scenario: &Scenario, path: &str, value: &toml::Value) -> Result<Scenario, String> {
    let mut root = toml::Value::try_from(scenario).map_err(|e| e.to_string())?;
    let parts: Vec<&str> = path.split('.').collect();
    let mut at = &mut root;
    for (i, part) in parts.iter().enumerate() {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => {
                let index = rest.trim_end_matches(']').parse::<usize>().map_err(|_| format!("{path}: bad index"))?;
                (name, Some(index))
            }
            None => (*part, None),
        };
        let table = at.as_table_mut().ok_or_else(|| format!("{path}: `{name}` is not inside a table"))?;
        if i + 1 == parts.len() && index.is_none() && !table.contains_key(name) {
            // An unset optional setting (`tx_size`, `validation_micros`, ...): deserialising
            // below refuses a name the scenario does not have.
            table.insert(name.to_owned(), value.clone());
        }
        at = table.get_mut(name).ok_or_else(|| format!("{path}: no setting `{name}` (see SCENARIO.md)"))?;
        if let Some(index) = index {
            at = at.get_mut(index).ok_or_else(|| format!("{path}: `{name}` has no entry {index}"))?;
        }
    }
    // An integer where the setting holds a number is that number.
    *at = match (&*at, value) {
        (toml::Value::Float(_), toml::Value::Integer(i)) => toml::Value::Float(*i as f64),
        _ => value.clone(),
    };
    root.try_into().map_err(|e: toml::de::Error| format!("{path} = {value}: {}", e.message()))
}

/// One point of the grid: its values (in axis order) and what its runs measured.
#[derive(Debug)]
pub struct Point {
    pub values: Vec<toml::Value>,
    pub repeats: Repeats,
}

/// Every combination of the axes' values, first axis slowest.
fn grid(axes: &[Axis]) -> Vec<Vec<toml::Value>> {
    axes.iter().fold(vec![Vec::new()], |points, axis| {
        points
            .into_iter()
            .flat_map(|point| {
                axis.values.iter().map(move |v| {
                    let mut next = point.clone();
                    next.push(v.clone());
                    next
                })
            })
            .collect()
    })
}

/// Runs the sweep and writes `sweep.csv` and `sweep_<key>.svg` per axis into `out`.
/// `progress` gets the fraction of runs done.
///
/// # Errors
/// A bad axis, a point whose scenario is out of range (named with the point), file errors.
pub fn run(
    base: &Scenario,
    axes: &[Axis],
    repeat: usize,
    out: &Path,
    mut progress: impl FnMut(f64),
) -> Result<Vec<Point>, String> {
    let points = grid(axes);
    let mut scenarios = Vec::with_capacity(points.len());
    for values in &points {
        let mut scenario = base.clone();
        for (axis, value) in axes.iter().zip(values) {
            scenario = with_setting(&scenario, &axis.key, value)?;
        }
        scenario.check().map_err(|e| format!("point {}: {e}", describe(axes, values)))?;
        scenarios.push(scenario);
    }
    let repeat = repeat.max(1);
    let total = (points.len() * repeat) as f64;
    let mut results = Vec::with_capacity(points.len());
    for (i, (values, scenario)) in points.into_iter().zip(scenarios).enumerate() {
        let mut seeds = Vec::with_capacity(repeat);
        let mut summaries = Vec::with_capacity(repeat);
        for k in 0..repeat {
            let seeded = Scenario { seed: super::repeat_seed(scenario.seed, k), ..scenario.clone() };
            let done = (i * repeat + k) as f64;
            let run = super::Des::new(seeded.clone())?.run(|part| progress((done + part) / total));
            summaries.push(Summary::of(&run, &seeded, None));
            seeds.push(seeded.seed);
        }
        results.push(Point { values, repeats: Repeats::of(seeds, &summaries) });
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    std::fs::write(out.join("sweep.csv"), csv(axes, &results)).map_err(|e| format!("{}: {e}", out.display()))?;
    for (index, axis) in axes.iter().enumerate() {
        let file = out.join(format!("sweep_{}.svg", file_name(&axis.key)));
        plot_axis(&file, axes, index, &results).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(results)
}

fn describe(axes: &[Axis], values: &[toml::Value]) -> String {
    axes.iter().zip(values).map(|(a, v)| format!("{} = {v}", a.key)).collect::<Vec<_>>().join(", ")
}

fn file_name(key: &str) -> String {
    key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

const MEASURES: [&str; 4] = ["t90_p50_ms", "t90_p90_ms", "coverage", "duplicates_per_node_per_tx"];

fn measures(repeats: &Repeats) -> [&Option<Interval>; 4] {
    [
        &repeats.time_to_90_percent_p50_ms,
        &repeats.time_to_90_percent_p90_ms,
        &repeats.coverage,
        &repeats.duplicates_per_node_per_tx,
    ]
}

/// One row per point: the swept values, the runs, then mean and 95% interval of each measure.
fn csv(axes: &[Axis], points: &[Point]) -> String {
    let mut text = String::new();
    let mut header: Vec<String> = axes.iter().map(|a| a.key.clone()).collect();
    header.push("runs".into());
    for measure in MEASURES {
        header.extend([format!("{measure}_mean"), format!("{measure}_ci95_low"), format!("{measure}_ci95_high")]);
    }
    let _ = writeln!(text, "{}", header.join(","));
    for point in points {
        let mut row: Vec<String> = point.values.iter().map(|v| v.to_string().trim_matches('"').to_owned()).collect();
        row.push(point.repeats.runs.to_string());
        for interval in measures(&point.repeats) {
            match interval {
                Some(i) => row.extend([i.mean, i.ci95_low, i.ci95_high].map(|v| format!("{v:.4}"))),
                None => row.extend([String::new(), String::new(), String::new()]),
            }
        }
        let _ = writeln!(text, "{}", row.join(","));
    }
    text
}

/// Time to 90% (p50 across transactions, mean over runs) against axis `index`'s values, one
/// line per combination of the other axes' values.
fn plot_axis(file: &Path, axes: &[Axis], index: usize, points: &[Point]) -> Result<(), Box<dyn std::error::Error>> {
    let numeric = |v: &toml::Value| v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
    let mut lines: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (k, point) in points.iter().enumerate() {
        let others: Vec<String> = axes
            .iter()
            .zip(&point.values)
            .enumerate()
            .filter(|(j, _)| *j != index)
            .map(|(_, (a, v))| format!("{} = {v}", a.key))
            .collect();
        let label = if others.is_empty() { "mean of runs".to_owned() } else { others.join(", ") };
        let x = numeric(&point.values[index]).unwrap_or(k as f64);
        let Some(y) = point.repeats.time_to_90_percent_p50_ms.as_ref().map(|i| i.mean) else { continue };
        match lines.iter_mut().find(|(l, _)| *l == label) {
            Some((_, line)) => line.push((x, y)),
            None => lines.push((label, vec![(x, y)])),
        }
    }
    let series: Vec<plots::Series<'_>> =
        lines.iter().enumerate().map(|(i, (label, line))| (label.as_str(), line.clone(), plots::palette(i))).collect();
    plots::line_chart(
        file,
        &format!("Time to 90% of honest nodes (p50, mean of runs) by {}", axes[index].key),
        &axes[index].key,
        "milliseconds",
        &series,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Topology;

    #[test]
    fn settings_are_set_by_their_path_in_the_scenario_file() {
        let base = Scenario::default();
        let set = |path: &str, text: &str| {
            let axis = Axis::parse(&format!("{path}={text}")).unwrap();
            with_setting(&base, &axis.key, &axis.values[0])
        };
        assert_eq!(set("gossipsub.d", "6").unwrap().gossipsub.d, 6);
        assert_eq!(set("topology.degree", "16").unwrap().topology, Topology::RandomRegular { degree: 16 });
        assert_eq!(set("jitter", "0").unwrap().jitter, 0.0, "an integer where a number is held");
        assert_eq!(set("tx_size", "300").unwrap().tx_size, Some(300));
        assert!(set("gossipsub.nope", "1").unwrap_err().contains("nope"));
        assert!(set("nope.d", "1").unwrap_err().contains("no setting `nope`"));
        assert!(set("adversaries[0].fraction", "0.1").unwrap_err().contains("no entry 0"));
        assert!(set("nodes", "many").is_err(), "a string where a number is held");
        assert!(Axis::parse("nodes").is_err() && Axis::parse("nodes=").is_err());
    }

    #[test]
    fn the_grid_holds_every_combination() {
        let axes = [Axis::parse("a=1,2").unwrap(), Axis::parse("b=x,y,z").unwrap()];
        let points = grid(&axes);
        assert_eq!(points.len(), 6);
        assert_eq!(points[1], [toml::Value::Integer(1), toml::Value::String("y".into())]);
    }
}
