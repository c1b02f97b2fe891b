//! Runs the ecology simulation of docs/ecology.md: one labourer against a downstream whose capacity
//! steps down to 30%, goes out for 5 minutes and recovers, under sosw 0.7's thresholds, a fixed
//! maximum and the adaptive controller. Prints a markdown table per seed; `--svg FILE` writes the plot
//! of the first seed.
//!
//! ```text
//! cargo run -p sosw-core --example ecology-simulation -- --svg docs/ecology-simulation.svg
//! ```

use sosw_core::ecology::simulation::{Scenario, policies, simulate, svg, table};

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut svg_path = None;
    let mut seeds = vec![];
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--svg" => svg_path = Some(args.next().ok_or("--svg needs a file name")?),
            "--seed" => {
                let seed = args.next().ok_or("--seed needs a number")?;
                seeds.push(
                    seed.parse::<u64>()
                        .map_err(|e| format!("--seed `{seed}`: {e}"))?,
                );
            }
            other => {
                return Err(format!(
                    "unknown argument `{other}`; usage: ecology-simulation [--seed N]... [--svg FILE]"
                ));
            }
        }
    }
    if seeds.is_empty() {
        seeds.push(1);
    }
    for (i, seed) in seeds.iter().enumerate() {
        let scenario = Scenario::step_outage_recovery(*seed);
        let outcomes: Vec<_> = policies().iter().map(|p| simulate(&scenario, p)).collect();
        println!("Seed {seed}:\n\n{}", table(&outcomes));
        if let (0, Some(path)) = (i, &svg_path) {
            let plot = svg(
                &outcomes,
                scenario.seconds,
                f64::from(scenario.max_simultaneous_invocations),
            );
            std::fs::write(path, plot).map_err(|e| format!("cannot write `{path}`: {e}"))?;
            println!("plot written to {path}");
        }
    }
    Ok(())
}
