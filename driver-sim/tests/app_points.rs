//! The application's own buggify points: drawn from the run's seed (a run replays, one
//! point's draws independent of another's), on for about a run in four and then firing
//! about one time in four, and never outside a run.

use tcpclient_sim::{AppPoints, turmoil};
use tcpclient_tokio::buggify;

/// Reaches `name` `times` times inside a simulation with `seed`; returns what was drawn.
fn run(seed: u64, names: &[&'static str], times: u32) -> Vec<tcpclient_sim::AppPoint> {
    let points = AppPoints::new(seed);
    let deciding = points.install();
    let mut sim = turmoil::Builder::new().rng_seed(seed).build();
    let names = names.to_vec();
    sim.client("client", async move {
        for _ in 0..times {
            for name in &names {
                let _ = buggify::fires(name);
            }
        }
        Ok(())
    });
    sim.run().expect("the simulation runs");
    drop(deciding);
    points.reached()
}

#[test]
fn a_seed_draws_the_same_points_again() {
    for seed in 0..20 {
        assert_eq!(run(seed, &["a", "b"], 50), run(seed, &["a", "b"], 50));
    }
}

#[test]
fn one_points_draws_do_not_depend_on_another() {
    for seed in 0..20 {
        let alone = run(seed, &["a"], 50);
        let with_another = run(seed, &["b", "a"], 50);
        let a = with_another.iter().find(|p| p.name == "a");
        assert_eq!(alone.first(), a, "seed {seed}");
    }
}

#[test]
fn a_point_is_on_in_about_a_run_in_four_and_fires_about_one_time_in_four() {
    let runs: Vec<_> = (0..200)
        .map(|seed| run(seed, &["slow reply"], 100))
        .collect();
    let on: Vec<_> = runs.iter().flatten().filter(|p| p.on).collect();
    assert!(
        (30..=70).contains(&on.len()),
        "on in {} of 200 runs",
        on.len()
    );
    for point in &on {
        assert_eq!(point.reached, 100);
        assert!(
            (8..=45).contains(&point.fired),
            "fired {} of 100",
            point.fired
        );
    }
    let off = runs.iter().flatten().filter(|p| !p.on);
    assert!(off.clone().all(|p| p.fired == 0), "a point off never fires");
}

#[test]
fn no_point_fires_outside_a_run() {
    let _ = run(3, &["a"], 10);
    assert!((0..1000).all(|_| !buggify::fires("a")));
}
