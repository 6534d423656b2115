//! Repetitions, interleaved; medians, ranges and ratios; a Markdown table per section.

use std::io;

/// One contender in a section.
pub struct Variant<'a> {
    pub name: &'static str,
    pub ours: bool,
    pub run: Box<dyn FnMut() -> io::Result<f64> + 'a>,
}

impl<'a> Variant<'a> {
    pub fn ours(name: &'static str, run: impl FnMut() -> io::Result<f64> + 'a) -> Self {
        Self {
            name,
            ours: true,
            run: Box::new(run),
        }
    }

    pub fn peer(name: &'static str, run: impl FnMut() -> io::Result<f64> + 'a) -> Self {
        Self {
            name,
            ours: false,
            run: Box::new(run),
        }
    }
}

/// What is measured, and which way is better.
#[derive(Clone, Copy)]
pub struct Unit {
    pub label: &'static str,
    pub higher_is_better: bool,
    /// What "ours ÷ theirs" measures when lower is better.
    pub lower_ratio: &'static str,
}

pub const GBPS: Unit = Unit {
    label: "GB/s",
    higher_is_better: true,
    lower_ratio: "",
};
pub const PER_SECOND: Unit = Unit {
    label: "connections/s",
    higher_is_better: true,
    lower_ratio: "",
};
pub const COMPLETIONS_PER_SECOND: Unit = Unit {
    label: "connections completed per second",
    higher_is_better: true,
    lower_ratio: "",
};
pub const BYTES_PER_CONNECTION: Unit = Unit {
    label: "bytes per connection",
    higher_is_better: false,
    lower_ratio: "the memory",
};
pub const MILLISECONDS: Unit = Unit {
    label: "milliseconds to the first byte",
    higher_is_better: false,
    lower_ratio: "the time",
};

/// Runs every variant `reps` times, interleaved (A B C A B C ...), and prints the table.
pub fn section(
    title: &str,
    unit: Unit,
    reps: usize,
    mut variants: Vec<Variant<'_>>,
) -> io::Result<()> {
    // `--variant A|B` keeps only the variants whose name contains A or B (for profiling).
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--variant")
        && let Some(text) = args.get(i + 1)
    {
        variants.retain(|v| text.split('|').any(|t| v.name.contains(t)));
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for _ in 0..reps {
        for (variant, samples) in variants.iter_mut().zip(&mut samples) {
            samples.push((variant.run)()?);
        }
    }
    let medians: Vec<f64> = samples.iter().map(|s| median(s)).collect();
    // One ratio column per variant of ours: each against every contender.
    let ours: Vec<(usize, &str)> = variants
        .iter()
        .enumerate()
        .filter(|(_, v)| v.ours)
        .map(|(i, v)| (i, v.name.split(':').next().unwrap_or(v.name)))
        .collect();
    println!("\n### {title}\n");
    println!("{} · {reps} runs each, interleaved\n", unit.label);
    let columns: String = ours
        .iter()
        .map(|(_, n)| format!(" {n} vs this |"))
        .collect();
    let aligns: String = ours.iter().map(|_| "---:|").collect();
    println!("| variant | median | min – max |{columns}");
    println!("|---|---:|---:|{aligns}");
    for (at, ((variant, samples), median)) in
        variants.iter().zip(&samples).zip(&medians).enumerate()
    {
        let (min, max) = samples
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        let ratios: String = ours
            .iter()
            .map(|&(i, _)| {
                let mine = medians[i];
                let ratio = if i == at {
                    "—".to_string()
                } else if unit.higher_is_better {
                    format!("{:.2}×", mine / median)
                } else {
                    format!("{:.2}× {}", mine / median, unit.lower_ratio)
                };
                format!(" {ratio} |")
            })
            .collect();
        let name = if variant.ours {
            format!("**{}**", variant.name)
        } else {
            variant.name.to_string()
        };
        println!(
            "| {name} | {} | {} – {} |{ratios}",
            fmt(*median),
            fmt(min),
            fmt(max)
        );
    }
    Ok(())
}

fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn fmt(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}
